"""The ``MusicAPI`` client: key, base URL, the HTTP client it uses, headers, dispatch, options."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import musicapi_async
from musicapi_async import APIConnectionError, MusicAPI, TaskFamily, TaskRef, TaskStatus
from musicapi_async.testing import FakeMusicAPI
from tests._scripted import (
    CREDITS_BODY,
    SONIC_TASK_BODY,
    SUBMIT_BODY,
    TEST_BASE_URL,
    ScriptedTransport,
    json_response,
    scripted_client,
)

PRODUCER_TASK_BODY = {
    "code": 200,
    "status": "SUCCESS",
    "message": "success",
    "data": [{"clip_id": "p-1", "audio_url": "https://musicapi-cdn.b-cdn.net/p-1.m4a"}],
}
NURO_TASK_BODY = {"task_id": "t-1", "status": "succeeded", "progress": 100}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no key or base URL from the developer's environment."""
    monkeypatch.delenv("MUSICAPI_KEY", raising=False)
    monkeypatch.delenv("MUSICAPI_BASE_URL", raising=False)


# --- the API key ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_key_falls_back_to_the_musicapi_key_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MUSICAPI_KEY", "env-key")
    transport = ScriptedTransport(json_response(200, CREDITS_BODY))
    client = MusicAPI(base_url=TEST_BASE_URL, http_client=httpx.AsyncClient(transport=transport))
    async with client:
        await client.credits.get()
    assert transport.sent[0].request.headers["authorization"] == "Bearer env-key"


@pytest.mark.anyio
async def test_an_explicit_key_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICAPI_KEY", "env-key")
    transport = ScriptedTransport(json_response(200, CREDITS_BODY))
    async with scripted_client(transport, api_key="given-key") as client:
        await client.credits.get()
    assert transport.sent[0].request.headers["authorization"] == "Bearer given-key"


@pytest.mark.parametrize("key", [None, "", "   "])
def test_no_key_raises_value_error_naming_api_key_and_the_variable(key: str | None) -> None:
    with pytest.raises(ValueError, match="api_key") as caught:
        MusicAPI(key)
    assert "MUSICAPI_KEY" in str(caught.value)


def test_an_empty_musicapi_key_variable_counts_as_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICAPI_KEY", "")
    with pytest.raises(ValueError, match="MUSICAPI_KEY"):
        MusicAPI()


@pytest.mark.parametrize(
    "key",
    [
        "sk-abc\n",
        "sk-abc\r\n",
        " sk-abc",
        "sk-abc ",
        "sk-abc\tdef",
        "sk-abc def",
        "sk-\x00abc",
        "sk-é",
    ],
)
def test_keys_with_whitespace_line_breaks_or_control_characters_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="whitespace"):
        MusicAPI(key)


def test_a_key_from_the_variable_with_a_trailing_newline_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``export MUSICAPI_KEY=$(cat key.txt)``-style mistakes fail early, not as a 401 later."""
    monkeypatch.setenv("MUSICAPI_KEY", "sk-abc\n")
    with pytest.raises(ValueError, match="line breaks"):
        MusicAPI()


# --- the base URL --------------------------------------------------------------------------


def test_a_plain_with_block_says_to_use_async_with() -> None:
    """Sync code that tries ``with MusicAPI()`` is told what to do, not that the object
    "does not support the context manager protocol"."""
    client = MusicAPI("sk-test")
    expected = r"asynchronous: use `async with MusicAPI\(\) as client:`"
    with pytest.raises(TypeError, match=expected), client:
        pass


def test_the_default_base_url_is_production_https() -> None:
    assert MusicAPI("k").base_url == "https://api.musicapi.ai/api/v1"
    assert musicapi_async.DEFAULT_BASE_URL == "https://api.musicapi.ai/api/v1"


def test_the_base_url_falls_back_to_musicapi_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICAPI_BASE_URL", "https://proxy.example.com/musicapi/v1")
    assert MusicAPI("k").base_url == "https://proxy.example.com/musicapi/v1"
    assert MusicAPI("k", base_url="https://other.example.com").base_url == (
        "https://other.example.com"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://api.musicapi.ai/api/v1",
        "http://example.com",
        "http://10.0.0.5:8000",
        "http://localhost.example.com",
        # A DNS name that merely starts like a loopback address may resolve anywhere.
        "http://127.evil.example",
        "http://127.0.0.1.nip.io",
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused_with_the_reason(url: str) -> None:
    with pytest.raises(ValueError, match=r"https://") as caught:
        MusicAPI("k", base_url=url)
    message = str(caught.value)
    assert "loopback" in message
    assert "clear text" in message


def test_plain_http_from_the_variable_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICAPI_BASE_URL", "http://api.musicapi.ai/api/v1")
    with pytest.raises(ValueError, match="loopback"):
        MusicAPI("k")


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost",
        "http://localhost:8080/api/v1",
        "http://127.0.0.1:8000",
        "http://127.0.0.2",
        "http://[::1]:9",
        "https://api.musicapi.ai/api/v1",
    ],
)
def test_https_and_loopback_http_urls_are_accepted(url: str) -> None:
    assert MusicAPI("k", base_url=url).base_url.startswith(url)


@pytest.mark.parametrize(
    "url", ["not a url", "::::", "ftp://api.musicapi.ai", "https://", "api.musicapi.ai/api/v1"]
)
def test_garbage_base_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        MusicAPI("k", base_url=url)


@pytest.mark.anyio
@pytest.mark.parametrize("base_url", [TEST_BASE_URL, TEST_BASE_URL + "/"])
async def test_paths_are_joined_under_the_base_url(base_url: str) -> None:
    transport = ScriptedTransport(json_response(200, CREDITS_BODY))
    client = MusicAPI("k", base_url=base_url, http_client=httpx.AsyncClient(transport=transport))
    async with client:
        await client.credits.get()
    assert str(transport.sent[0].request.url) == "http://localhost/api/v1/get-credits"


# --- the HTTP client -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_injected_http_client_is_used_and_left_open() -> None:
    transport = ScriptedTransport(
        json_response(200, CREDITS_BODY), json_response(200, CREDITS_BODY)
    )
    http_client = httpx.AsyncClient(transport=transport)
    async with MusicAPI("k", base_url=TEST_BASE_URL, http_client=http_client) as client:
        await client.credits.get()
    await client.aclose()
    assert not http_client.is_closed
    # Still usable by its owner after the SDK client is closed.
    response = await http_client.get("http://localhost/elsewhere")
    assert response.status_code == 200
    assert len(transport.sent) == 2
    await http_client.aclose()


@pytest.mark.anyio
async def test_an_owned_http_client_is_closed_by_async_with() -> None:
    async with MusicAPI("k") as client:
        pool = client._core.http()  # made on first use
    assert pool.is_closed
    # Observable without private access: the closed client refuses to send (no network).
    with pytest.raises(RuntimeError, match="closed"):
        await client.credits.get()


@pytest.mark.anyio
async def test_a_closed_client_with_an_injected_http_client_sends_nothing_until_reopened() -> None:
    """As with an owned pool: tests on a fake (always injected) must catch a use after
    close that production would hit, and a paid create must not go out from a closed client."""
    transport = ScriptedTransport(
        json_response(200, CREDITS_BODY), json_response(200, CREDITS_BODY)
    )
    http_client = httpx.AsyncClient(transport=transport)
    client = MusicAPI("k", base_url=TEST_BASE_URL, http_client=http_client)
    async with client:
        await client.credits.get()
    with pytest.raises(RuntimeError, match="closed"):
        await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    assert len(transport.sent) == 1
    async with client:  # open again: it sends again
        await client.credits.get()
    assert len(transport.sent) == 2
    await http_client.aclose()


@pytest.mark.anyio
async def test_waiting_on_a_closed_client_says_it_is_closed_not_closed_while_waiting() -> None:
    fake = FakeMusicAPI()
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    with pytest.raises(RuntimeError) as caught:
        await client.await_task(ref)
    assert "was closed: open it again" in str(caught.value)
    assert "while waiting" not in str(caught.value)


@pytest.mark.anyio
async def test_waiting_through_a_view_of_an_unopened_client_says_to_open_the_parent() -> None:
    fake = FakeMusicAPI()
    client = fake.client()
    async with client.with_options(max_retries=0) as view:
        ref = await view.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
        with pytest.raises(RuntimeError, match="open the parent"):
            await view.await_task(ref)


@pytest.mark.anyio
async def test_aclose_closes_an_owned_http_client_but_closing_a_view_does_not() -> None:
    client = MusicAPI("k")
    view = client.with_options(max_retries=0)
    pool = client._core.http()
    assert view._core.http() is pool
    await view.aclose()
    assert not pool.is_closed
    await client.aclose()
    assert pool.is_closed


def test_http_client_must_be_an_httpx_async_client() -> None:
    with httpx.Client() as sync_client, pytest.raises(TypeError, match=r"httpx\.AsyncClient"):
        MusicAPI("k", http_client=sync_client)  # type: ignore[arg-type]


# --- headers -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_request_carries_user_agent_bearer_key_and_default_headers() -> None:
    transport = ScriptedTransport(
        json_response(503, {"error": "busy"}),
        json_response(200, CREDITS_BODY),
        json_response(200, SUBMIT_BODY),
    )
    async with scripted_client(
        transport, api_key="key-1", default_headers={"X-Team": "audio"}, max_retries=1
    ) as client:
        await client.credits.get()  # retried once: both attempts are checked
        await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    assert len(transport.sent) == 3
    user_agent = re.compile(rf"^musicapi-async/{re.escape(musicapi_async.__version__)} \S")
    for sent in transport.sent:
        headers = sent.request.headers
        assert user_agent.match(headers["user-agent"]), headers["user-agent"]
        assert headers.get_list("authorization") == ["Bearer key-1"]
        assert headers["x-team"] == "audio"
        assert headers["accept"] == "application/json"
    post = transport.sent[2]
    assert post.request.headers["content-type"] == "application/json"
    assert post.json()["gpt_description_prompt"] == "lofi"


@pytest.mark.anyio
async def test_a_view_sends_the_same_key_and_headers() -> None:
    transport = ScriptedTransport(json_response(200, CREDITS_BODY))
    async with scripted_client(transport, default_headers={"X-Team": "audio"}) as client:
        await client.with_options(timeout=5).credits.get()
    headers = transport.sent[0].request.headers
    assert headers["authorization"] == "Bearer test-key"
    assert headers["x-team"] == "audio"


# --- task dispatch -------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("family", "body", "path"),
    [
        (TaskFamily.SONIC, SONIC_TASK_BODY, "/sonic/task/t-1"),
        (TaskFamily.PRODUCER, PRODUCER_TASK_BODY, "/producer/task/t-1"),
        (TaskFamily.NURO, NURO_TASK_BODY, "/nuro/task/t-1"),
    ],
)
async def test_client_get_task_polls_the_endpoint_of_the_task_family(
    family: TaskFamily, body: dict[str, object], path: str
) -> None:
    transport = ScriptedTransport(json_response(200, body))
    async with scripted_client(transport) as client:
        task = await client.get_task(TaskRef("t-1", family))
    assert transport.sent[0].request.method == "GET"
    assert transport.sent[0].path == path
    assert task.status is TaskStatus.SUCCEEDED


@pytest.mark.anyio
async def test_a_ref_returned_by_create_is_polled_on_its_own_family() -> None:
    transport = ScriptedTransport(
        json_response(200, SUBMIT_BODY), json_response(200, PRODUCER_TASK_BODY)
    )
    async with scripted_client(transport) as client:
        ref = await client.producer.create(sound="synthwave")
        await client.get_task(ref)
    assert ref.family is TaskFamily.PRODUCER
    assert transport.sent[1].path == "/producer/task/t-1"


@pytest.mark.anyio
async def test_polling_a_task_of_another_family_raises_value_error_naming_it() -> None:
    transport = ScriptedTransport()
    async with scripted_client(transport) as client:
        with pytest.raises(ValueError, match=r"client\.producer\.get_task"):
            await client.sonic.get_task(TaskRef("t-1", TaskFamily.PRODUCER))
        with pytest.raises(ValueError, match=r"client\.sonic\.get_task"):
            await client.producer.get_task(TaskRef("t-1", TaskFamily.SONIC))
    assert transport.sent == []


@pytest.mark.anyio
async def test_bare_task_id_strings_are_accepted_and_quoted_into_the_path() -> None:
    transport = ScriptedTransport(
        json_response(200, SONIC_TASK_BODY),
        json_response(200, PRODUCER_TASK_BODY),
        json_response(200, SONIC_TASK_BODY),
    )
    async with scripted_client(transport) as client:
        task = await client.sonic.get_task("abc-123")
        await client.producer.get_task("abc-123")
        await client.sonic.get_task("a/b?c")
    assert task.ref == TaskRef("abc-123", TaskFamily.SONIC)
    paths = [sent.request.url.raw_path for sent in transport.sent]
    assert paths == [
        b"/api/v1/sonic/task/abc-123",
        b"/api/v1/producer/task/abc-123",
        b"/api/v1/sonic/task/a%2Fb%3Fc",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("task", ["", "   ", TaskRef(""), TaskRef(" ", TaskFamily.SONIC)])
async def test_an_empty_task_id_is_refused_before_any_request(task: str | TaskRef) -> None:
    transport = ScriptedTransport()
    async with scripted_client(transport) as client:
        with pytest.raises(ValueError, match="task id is empty"):
            await client.sonic.get_task(task)
    assert transport.sent == []


@pytest.mark.anyio
async def test_client_get_task_needs_a_task_ref_not_a_bare_id() -> None:
    """A bare id does not say which platform to poll: the error says what to call instead."""
    async with scripted_client(ScriptedTransport()) as client:
        with pytest.raises(TypeError, match=r"client\.sonic\.get_task"):
            await client.get_task("t-1")  # type: ignore[arg-type]


# --- timeouts ------------------------------------------------------------------------------


def timeout_of(sent_request: httpx.Request) -> dict[str, float | None]:
    timeout: dict[str, float | None] = sent_request.extensions["timeout"]
    return timeout


@pytest.mark.anyio
async def test_with_options_timeout_changes_the_timeout_the_transport_sees() -> None:
    transport = ScriptedTransport(*[json_response(200, CREDITS_BODY)] * 4)
    async with scripted_client(transport) as client:
        await client.credits.get()
        await client.with_options(timeout=5).credits.get()
        await client.with_options(timeout=httpx.Timeout(3.0, read=30.0)).credits.get()
        await client.credits.get()
    seen = [timeout_of(sent.request) for sent in transport.sent]
    assert seen[0] == {"connect": 10.0, "read": 60.0, "write": 60.0, "pool": 60.0}
    # A shorter total also shortens the connect timeout.
    assert seen[1] == {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    assert seen[2] == {"connect": 3.0, "read": 30.0, "write": 3.0, "pool": 3.0}
    # The original client is unchanged.
    assert seen[3] == seen[0]
    assert client.timeout == httpx.Timeout(60.0, connect=10.0)


@pytest.mark.anyio
async def test_client_timeout_and_connect_timeout_reach_the_transport() -> None:
    transport = ScriptedTransport(json_response(200, CREDITS_BODY))
    async with scripted_client(transport, timeout=30, connect_timeout=2) as client:
        await client.credits.get()
    assert timeout_of(transport.sent[0].request) == {
        "connect": 2.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 30.0,
    }


BAD_SECONDS: list[tuple[object, type[Exception]]] = [
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    (0, ValueError),
    (-1.0, ValueError),
    ("30", TypeError),
    (True, TypeError),
]


@pytest.mark.parametrize(("value", "error"), BAD_SECONDS, ids=repr)
@pytest.mark.parametrize(
    ("argument", "name"),
    [
        ("timeout", "timeout"),
        ("connect_timeout", "connect_timeout"),
        ("read part", "timeout.read"),
    ],
)
def test_a_timeout_that_is_not_a_finite_number_of_seconds_is_refused_naming_it(
    value: object, error: type[Exception], argument: str, name: str
) -> None:
    """NaN, 0 or a negative timeout fails at once; infinity would never time out."""
    kwargs: dict[str, Any] = (
        {"timeout": httpx.Timeout(10.0, read=value)}  # type: ignore[arg-type]
        if argument == "read part"
        else {argument: value}
    )
    with pytest.raises(error, match=f"^{re.escape(name)} must"):
        MusicAPI("k", **kwargs)
    if argument != "connect_timeout":  # not an argument of with_options
        with pytest.raises(error, match=f"^{re.escape(name)} must"):
            MusicAPI("k").with_options(**kwargs)


def test_no_timeout_at_all_is_still_allowed() -> None:
    client = MusicAPI("k", timeout=None, connect_timeout=None)
    assert client.timeout == httpx.Timeout(None)
    assert client.with_options(timeout=httpx.Timeout(None)).timeout == httpx.Timeout(None)


@pytest.mark.parametrize("key", [b"sk-abc", 12345, ["sk-abc"]], ids=repr)
def test_an_api_key_that_is_not_a_str_is_refused_with_a_type_error(key: object) -> None:
    with pytest.raises(TypeError, match="api_key must be a str") as caught:
        MusicAPI(key)  # type: ignore[arg-type]
    assert "sk-abc" not in str(caught.value)
    assert "12345" not in str(caught.value)


@pytest.mark.parametrize("key", ["sk-abc\r", "sk-abc\n", "sk abc"], ids=repr)
def test_a_bad_key_from_musicapi_key_names_the_variable_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("MUSICAPI_KEY", key)
    with pytest.raises(ValueError, match="MUSICAPI_KEY environment variable") as caught:
        MusicAPI()
    assert "abc" not in str(caught.value)
    with pytest.raises(ValueError, match="api_key=") as given:
        MusicAPI(key)
    assert "MUSICAPI_KEY" not in str(given.value)


# --- follow-ups: header merging and an empty base URL ------------------------------------------


@pytest.mark.parametrize(
    "name", ["Content-Type", "content-length", "HOST", "Transfer-Encoding", b"content-type"]
)
def test_default_headers_may_not_set_what_each_request_sets_itself(name: str | bytes) -> None:
    """A default Content-Type was sent beside the JSON one; a Content-Length replaced the
    body's own: broken requests, refused at once."""
    with pytest.raises(ValueError, match="the SDK sets it on each request"):
        MusicAPI("test-key", default_headers={name: "x"})  # type: ignore[dict-item]


def test_default_headers_may_not_set_authorization_in_any_case() -> None:
    for name in ("Authorization", "authorization"):
        with pytest.raises(ValueError, match="api_key="):
            MusicAPI("test-key", default_headers={name: "Bearer other"})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"default_headers": {"Authorization": "Bearer other"}},
        {"default_headers": {"X-Count": 3}},
        {"limiter": "1 per 3 s"},
        {"max_retries": -1},
    ],
    ids=["authorization-header", "non-text-header", "limiter-not-a-limiter", "negative-retries"],
)
def test_bad_arguments_are_refused_before_an_http_client_is_opened(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any]
) -> None:
    """A refused construction leaves no connection pool behind that nobody can close."""
    opened: list[httpx.AsyncClient] = []

    class RecordingAsyncClient(httpx.AsyncClient):
        def __init__(self, *args: Any, **options: Any) -> None:
            super().__init__(*args, **options)
            opened.append(self)

    monkeypatch.setattr(httpx, "AsyncClient", RecordingAsyncClient)
    with pytest.raises((ValueError, TypeError)):
        MusicAPI("test-key", **kwargs)
    assert opened == []


@pytest.mark.anyio
async def test_a_default_user_agent_replaces_ours_case_insensitively() -> None:
    transport = ScriptedTransport(json_response(200, {"credits": 1, "extra_credits": 0}))
    client = scripted_client(transport, default_headers={"user-agent": "my-app/1.0"})
    async with client:
        await client.credits.get()
    assert transport.sent[0].request.headers.get_list("user-agent") == ["my-app/1.0"]


#: Modules whose public classes must document every public method and property.
DOCUMENTED_MODULES = {
    "musicapi_async._batch",
    "musicapi_async._client",
    "musicapi_async._download",
    "musicapi_async._exceptions",
    "musicapi_async._models",
    "musicapi_async._retry",
    "musicapi_async._poller",
    "musicapi_async._ratelimit",
    "musicapi_async._sonic",
    "musicapi_async._webhooks",
}


def test_every_public_class_method_and_property_has_a_docstring() -> None:
    """help(), IDEs and the docs show a summary for every public member."""
    missing: list[str] = []
    for name in musicapi_async.__all__:
        cls = getattr(musicapi_async, name)
        if not inspect.isclass(cls) or cls.__module__ not in DOCUMENTED_MODULES:
            continue
        if not (cls.__doc__ or "").strip():
            missing.append(name)
        for attr, value in vars(cls).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, (classmethod, staticmethod)):
                value = value.__func__
            if (isinstance(value, property) or inspect.isfunction(value)) and not (
                value.__doc__ or ""
            ).strip():
                missing.append(f"{name}.{attr}")
    assert missing == []


def test_an_empty_base_url_is_refused_not_replaced_by_production() -> None:
    with pytest.raises(ValueError, match="base_url"):
        MusicAPI("test-key", base_url="")


@pytest.mark.parametrize(
    "bad",
    ["[1]", '{"task_id": "t"}', "not json", '[{"task_id": "t", "family": "nope"}]'],
)
def test_task_ref_list_from_json_refuses_what_is_not_a_list_of_refs(bad: str) -> None:
    with pytest.raises(ValueError, match=r"task ref|JSON|entry 0|family"):
        TaskRef.list_from_json(bad)


def test_task_ref_list_from_json_reads_refs_of_every_family() -> None:
    refs = [TaskRef("a"), TaskRef("b", TaskFamily.PRODUCER)]
    text = json.dumps([ref.to_dict() for ref in refs])
    assert TaskRef.list_from_json(text) == refs
    assert TaskRef.list_from_json(text.encode()) == refs


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2@api.example.com/api/v1",
        "http://api.example.com/api/v1?token=hunter2",
        "ftp://api.example.com/x#hunter2",
    ],
)
def test_a_refused_base_url_is_shown_without_its_credentials(url: str) -> None:
    with pytest.raises(ValueError, match="base_url") as caught:
        MusicAPI("k", base_url=url)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@api.musicapi.ai/api/v1",
        "https://hunter2@api.musicapi.ai/api/v1",
        "http://user:hunter2@localhost:8000/api/v1",
    ],
)
def test_a_base_url_with_a_user_or_password_is_refused_without_echoing_them(url: str) -> None:
    """httpx would send them as Basic auth, silently in place of the Bearer key."""
    with pytest.raises(ValueError, match="user name or password") as caught:
        MusicAPI("k", base_url=url)
    assert "hunter2" not in str(caught.value)
    assert "api_key=" in str(caught.value)


def test_credentials_in_musicapi_base_url_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MUSICAPI_BASE_URL", "https://u:hunter2@proxy.example.com/api/v1")
    with pytest.raises(ValueError, match="MUSICAPI_BASE_URL") as caught:
        MusicAPI("k")
    assert "hunter2" not in str(caught.value)


def test_a_refused_webhook_url_is_shown_without_its_credentials() -> None:
    with pytest.raises(ValueError, match="webhook_url") as caught:
        MusicAPI("k", webhook_url="http://u:hunter2@hooks.example/h?t=hunter2", webhook_secret="s")
    assert "hunter2" not in str(caught.value)


def test_a_base_url_from_the_environment_is_named_as_such(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MUSICAPI_BASE_URL", "http://api.example.com/api/v1")
    with pytest.raises(ValueError, match="MUSICAPI_BASE_URL"):
        MusicAPI("k")


@pytest.mark.anyio
async def test_a_connection_error_names_the_server() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    transport = httpx.MockTransport(refuse)
    async with httpx.AsyncClient(transport=transport) as http:
        client = MusicAPI("k", base_url="https://api.example.com/api/v1", http_client=http)
        with pytest.raises(APIConnectionError, match=r"server api\.example\.com"):
            await client.with_options(max_retries=0).credits.get()


def test_the_version_has_one_source_read_by_the_package_metadata() -> None:
    """pyproject.toml takes the version from _constants.py: the User-Agent and
    `musicapi --version` cannot drift from what pip installed."""
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject
    assert 'path = "musicapi_async/_constants.py"' in pyproject
    pattern = re.search(r"^pattern = '(.*)'$", pyproject, re.MULTILINE)
    assert pattern is not None
    constants = (Path(musicapi_async.__file__).parent / "_constants.py").read_text("utf-8")
    found = re.search(pattern.group(1), constants, re.MULTILINE)
    assert found is not None
    assert found.group("version") == musicapi_async.__version__
