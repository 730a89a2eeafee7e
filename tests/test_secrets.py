"""Secrets never reach messages or reprs: what a leak audit found, pinned.

Every secret here is a canary string; each test greps what the user could see for it.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest

from musicapi_async import (
    APIStatusError,
    BatchInputError,
    MusicAPI,
    MusicAPIError,
    RetryEvent,
    RetryPolicy,
    TaskFamily,
    TaskRef,
    read_batch_jobs,
)
from musicapi_async._cli import Settings
from musicapi_async._serde import parse_download_links, parse_midi, parse_task, parse_wav
from musicapi_async.testing import FakeMusicAPI
from tests._scripted import (
    CREDITS_BODY,
    ScriptedTransport,
    json_response,
    scripted_client,
    text_response,
)

pytestmark = pytest.mark.anyio

PASSWORD = "LEAKCANARY-PASS789"
TOKEN = "LEAKCANARY-TOK000"
SECRET = "whsec-LEAKCANARY-WHS456"
KEY = "sk-LEAKCANARY-KEY123"
URL = f"https://sso-user:{PASSWORD}@login.example.com/cb?token={TOKEN}"


def assert_clean(*shown: object) -> None:
    for text in shown:
        for canary in (PASSWORD, TOKEN, SECRET, KEY):
            assert canary not in str(text), f"{canary} leaked in {text!r}"


@pytest.mark.parametrize(
    "answer",
    [
        text_response(302, f"Found. Redirecting to {URL}", headers={"location": URL}),
        json_response(500, {"error": f"upstream {URL} failed"}),
        json_response(400, {"message": f"cannot fetch <{URL}>"}),
    ],
    ids=["redirect body", "5xx text", "4xx text"],
)
async def test_urls_in_a_servers_error_text_lose_their_credentials_and_token(
    answer: httpx.Response,
) -> None:
    """A redirect's body repeats its Location whole (Express, Werkzeug); the message, its
    pickle (Celery) and a batch journal that stores it must not carry the credentials."""
    transport = ScriptedTransport(answer)
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.credits.get()
    error = caught.value
    assert "login.example.com/cb" in str(error)  # still says where
    assert_clean(str(error), repr(error), error.message)
    assert_clean(pickle.loads(pickle.dumps(error)))


@pytest.mark.parametrize(
    ("answer", "call"),
    [
        (json_response(401, {"message": f"Invalid API key: {KEY}"}), "get"),
        (json_response(403, {"error": {"detail": [f"key {KEY} has no plan"]}}), "create"),
        (text_response(400, f"<p>bad Authorization: Bearer {KEY}</p>"), "create"),
        (
            json_response(502, {"message": "bad gateway"}, headers={"x-echo": f"Bearer {KEY}"}),
            "create",
        ),
        (text_response(200, f"<p>welcome {KEY}</p>"), "create"),
        (json_response(200, {"message": f"hello {KEY}"}), "create"),
    ],
    ids=["401 json", "403 nested", "400 text", "502 header", "2xx text", "2xx json"],
)
async def test_a_server_echoing_the_api_key_puts_it_in_no_error(
    answer: httpx.Response, call: str
) -> None:
    """ "Invalid API key: sk-...": the message, repr, body, headers and pickle of the error
    show ``***`` instead (logs and journals store them)."""
    transport = ScriptedTransport(answer)
    async with scripted_client(transport, api_key=KEY, max_retries=0) as client:
        send: Callable[[], Awaitable[object]] = (
            client.credits.get
            if call == "get"
            else (lambda: client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi"))
        )
        with pytest.raises(MusicAPIError) as caught:
            await send()
    error = caught.value
    assert transport.sent[0].request.headers["authorization"] == f"Bearer {KEY}"
    assert "***" in str(error) or "***" in repr(vars(error))
    assert_clean(error, repr(error), repr(vars(error)), pickle.loads(pickle.dumps(error)))
    assert_clean(repr(pickle.loads(pickle.dumps(error)).__dict__))


async def test_the_retry_log_and_events_never_show_an_echoed_api_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="musicapi_async")
    echo = json_response(503, {"message": f"upstream said: bad token Bearer {KEY}"})
    transport = ScriptedTransport(echo, echo, json_response(200, CREDITS_BODY))
    events: list[RetryEvent] = []
    async with scripted_client(
        transport, api_key=KEY, retry=RetryPolicy(jitter=0.0), on_retry=events.append
    ) as client:
        await client.credits.get()
    retries = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retries) == len(events) == 2
    assert "bad token Bearer ***" in retries[0].getMessage()
    assert_clean(*(r.getMessage() for r in caplog.records), *events)


@pytest.mark.parametrize(
    ("key", "message", "shown"),
    [
        pytest.param(
            "k1",
            "Bearer k1 is not a key (nor Bearer k1x-other)",
            "Bearer *** is not a key (nor Bearer k1x-other)",
            id="under 4: after Bearer only",
        ),
        pytest.param(
            "abc1234",
            "Invalid API key abc1234 (not abc12345 or xabc1234)",
            "Invalid API key *** (not abc12345 or xabc1234)",
            id="4 to 7: where it stands alone",
        ),
    ],
)
async def test_a_short_key_is_hidden_without_mangling_the_words(
    key: str, message: str, shown: str
) -> None:
    """A key of a few letters would match ordinary words, and inside longer tokens."""
    transport = ScriptedTransport(json_response(401, {"message": message}))
    async with scripted_client(transport, api_key=key, max_retries=0) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.credits.get()
    assert f"401: {shown}" in str(caught.value)


@pytest.mark.parametrize("where", ["client", "call"])
async def test_a_server_echoing_the_webhook_secret_sent_puts_it_in_no_error(where: str) -> None:
    """The SDK sends webhook_secret in each create body; a 400 quoting the body back must not
    carry it into the error's text, body or a log line."""
    secret = "whsec-canary-0123456789"
    body = {"message": "Invalid body", "echo": {"webhook_secret": secret, "mv": "sonic-v5"}}
    transport = ScriptedTransport(json_response(400, body))
    url = "https://hooks.example.com/h"
    options = {"webhook_url": url, "webhook_secret": secret} if where == "client" else {}
    call_url, call_secret = (None, None) if where == "client" else (url, secret)
    async with scripted_client(transport, max_retries=0, **options) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.sonic.create(
                mv="sonic-v5",
                gpt_description_prompt="x",
                webhook_url=call_url,
                webhook_secret=call_secret,
            )
    error = caught.value
    for text in (str(error), repr(error), repr(error.body), repr(pickle.dumps(error))):
        assert secret not in text


@pytest.mark.parametrize(
    ("status", "cut"), [(502, 500), (200, 200)], ids=["error text", "unreadable 2xx"]
)
async def test_a_url_cut_by_the_quote_of_a_long_body_leaks_no_part_of_its_password(
    status: int, cut: int
) -> None:
    """Scrubbed first, then cut: a cut inside ``user:password`` leaves no ``@`` to find."""
    body = " " * (cut - len("https://sso-user:LEAKCA")) + URL  # the cut: 6 of its letters
    transport = ScriptedTransport(text_response(status, body))
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - its text is checked
            await client.credits.get()
    assert "sso-user" not in str(caught.value)
    assert "LEAKCA" not in str(caught.value)


async def test_a_failed_step_reason_from_the_server_is_scrubbed_too() -> None:
    body = {"code": 200, "message": f"could not fetch {URL}", "failed_step": "upload"}
    transport = ScriptedTransport(json_response(200, body))
    async with scripted_client(transport) as client:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - its text is checked
            await client.sonic.upload_extend("https://example.com/a.mp3", mv="sonic-v5")
    assert "could not fetch https://***@login.example.com/cb?..." in str(caught.value)
    assert_clean(caught.value)


async def test_punctuation_after_a_scrubbed_url_is_kept() -> None:
    answer = json_response(400, {"message": f"see ({URL}). Or https://a.example/?t={TOKEN}, ok"})
    transport = ScriptedTransport(answer)
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.credits.get()
    assert "(https://***@login.example.com/cb?...). Or https://a.example/?..., ok" in str(
        caught.value
    )


async def test_a_body_that_is_not_json_is_quoted_without_the_tokens_of_its_urls() -> None:
    transport = ScriptedTransport(text_response(200, f"<a href='{URL}'>maintenance</a>"))
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - any error: its text is checked
            await client.credits.get()
    assert "maintenance" in str(caught.value)
    assert_clean(str(caught.value), getattr(caught.value, "body", ""))


@pytest.mark.parametrize(
    "url",
    [f"hookuser:{PASSWORD}@hooks.example.com/hook?token={TOKEN}", f"{URL.replace('https', 'ftp')}"],
    ids=["no scheme", "wrong scheme"],
)
async def test_a_refused_webhook_url_is_named_without_its_password(url: str) -> None:
    """``user:password@host`` reads as the scheme ``user`` with the password in its path."""
    async with FakeMusicAPI().client() as client:
        with pytest.raises(ValueError, match="webhook_url") as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi", webhook_url=url)
    assert_clean(caught.value)


async def test_a_download_url_is_never_quoted_with_its_token(tmp_path: Path) -> None:
    async with FakeMusicAPI().client() as client:
        with pytest.raises(ValueError, match="not a valid URL") as invalid:
            await client.download(f"https://cdn.example.com:443x/a.mp3?token={TOKEN}", tmp_path)
        with pytest.raises(Exception) as unreachable:  # noqa: PT011 - its text is checked
            # Not served by the fake: the transport's own error names the URL.
            await client.download(f"https://other.example.com/a.mp3?token={TOKEN}", tmp_path)
    assert_clean(invalid.value, unreachable.value, repr(unreachable.value))


def test_reprs_hide_the_key_and_the_base_urls_token() -> None:
    client = MusicAPI(KEY, base_url=f"https://api.example.com/api/v1?t={TOKEN}")
    settings = Settings(sandbox=False, api_key=KEY, json=False)
    assert_clean(repr(client), repr(client.sonic), repr(client._core), repr(settings))
    assert "api.example.com" in repr(client)


def test_a_base_url_with_credentials_is_refused_without_echoing_them() -> None:
    """Refused (httpx would send them as Basic auth instead of the key), and not quoted."""
    with pytest.raises(ValueError, match="base_url") as caught:
        MusicAPI(KEY, base_url=f"https://api-user:{PASSWORD}@api.example.com/api/v1?t={TOKEN}")
    assert_clean(caught.value, repr(caught.value))


def test_result_reprs_hide_the_tokens_of_signed_links() -> None:
    """Logging a task or a result must not log its signed links: the URL fields keep their
    value, and their repr shows neither the query nor a password."""
    signed = f"https://cdn-user:{PASSWORD}@cdn.example.com/c-1.mp3?token={TOKEN}"
    snapshot = {
        "code": 200,
        "data": [
            {"clip_id": "c-1", "state": "succeeded", "audio_url": signed, "wav_url": signed}
            | {"image_url": signed, "video_url": signed}
        ],
    }
    task = parse_task(TaskRef("t-1", TaskFamily.SONIC), 200, snapshot)
    assert task.clips[0].audio_url == signed
    results = [
        task,
        parse_wav({"code": 200, "data": {"wav_url": signed}}),
        parse_midi({"code": 200, "data": {"midi_url": signed}}),
        parse_download_links({"code": 200, "data": {"mp3_url": signed, "wav_url": signed}}),
    ]
    assert_clean(*(repr(result) for result in results))
    assert "cdn.example.com/c-1.mp3" in repr(task)
    assert "'mp3': 'https://***@cdn.example.com/c-1.mp3?...'" in repr(results[-1])


async def test_the_fakes_records_hide_url_credentials_and_tokens() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=0.0)
    hook = f"https://hook-user:{PASSWORD}@hooks.example.com/h?token={TOKEN}"
    async with fake.client() as client:
        await client.sonic.create(
            mv="sonic-v5", gpt_description_prompt="lofi", webhook_url=hook, webhook_secret=SECRET
        )
        async with fake.webhooks.running(lambda url, body, headers: _answer_200()):
            await _let_deliveries_run()
    assert fake.webhooks.deliveries
    assert_clean(repr(fake.requests), repr(fake.webhooks.deliveries))


async def _answer_200() -> int:
    return 200


async def _let_deliveries_run() -> None:
    await anyio.sleep(1)


def test_a_batch_line_with_a_mistyped_secret_is_refused_without_echoing_it(
    tmp_path: Path,
) -> None:
    lines = tmp_path / "jobs.jsonl"
    lines.write_text(json.dumps({"prompt": "lofi", "webhook_secret": [SECRET]}) + "\n")
    with pytest.raises(BatchInputError, match="webhook_secret") as caught:
        read_batch_jobs(lines)
    assert "must be a string, got list" in str(caught.value)
    assert_clean(caught.value)
