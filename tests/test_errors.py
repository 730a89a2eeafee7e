"""How error answers become exceptions: the status table, every envelope, and no secret leaks."""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from musicapi_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Clip,
    ClipState,
    GoneError,
    InsufficientCreditsError,
    MusicAPI,
    MusicAPIError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ResultNotReadyError,
    RetryEvent,
    RetryPolicy,
    ServerError,
    SonicCreate,
    Task,
    TaskFailedError,
    TaskFamily,
    TaskRef,
    TaskStatus,
    UpstreamTimeoutError,
    WaitTimeoutError,
)
from tests._scripted import (
    SONIC_TASK_BODY,
    ScriptedTransport,
    json_response,
    scripted_client,
    text_response,
)

pytestmark = pytest.mark.anyio

CREDITS_MESSAGE = (
    "The remaining credits are not enough. You can buy more one-time credit packs or subscribe."
)


async def raised_by(response: httpx.Response, *, call: str = "credits") -> APIStatusError:
    """The exception one error answer raises, retries off."""
    transport = ScriptedTransport(response)
    async with scripted_client(transport, max_retries=0) as client:
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "credits": client.credits.get,
            "nuro": lambda: client.nuro.get_task("t-1"),
            "sonic": lambda: client.sonic.get_task("t-1"),
        }
        with pytest.raises(APIStatusError) as caught:
            await calls[call]()
    assert len(transport.sent) == 1
    return caught.value


# --- status -> class -----------------------------------------------------------------------

STATUS_TABLE: list[tuple[int, str, type[APIStatusError]]] = [
    (400, "The 'mv' field is invalid.", BadRequestError),
    (400, "task not found.", NotFoundError),
    (401, "Invalid authorization format.", AuthenticationError),
    (402, "Payment required.", InsufficientCreditsError),
    (403, "You do not have an active subscription.", PermissionDeniedError),
    (403, CREDITS_MESSAGE, InsufficientCreditsError),
    (403, "Insufficient credits for this task.", InsufficientCreditsError),
    (404, "Clip not found.", NotFoundError),
    (410, "Gone.", GoneError),
    (429, "Too many requests.", RateLimitError),
    (500, "Internal Server Error.", ServerError),
    (502, "provider did not return a job id", ServerError),
    (503, "Service Unavailable", ServerError),
    (504, "Task failed due to timeout. Credits were previously refunded.", UpstreamTimeoutError),
    (418, "I'm a teapot", APIStatusError),
    (422, "Unprocessable", APIStatusError),
    (409, "Conflict", APIStatusError),
]


#: Each row of the table as a test case.
each_status = pytest.mark.parametrize(
    ("status", "message", "cls"),
    [pytest.param(*row, id=f"{row[0]}-{row[2].__name__}") for row in STATUS_TABLE],
)


@each_status
async def test_each_status_raises_its_exception_class(
    status: int, message: str, cls: type[APIStatusError]
) -> None:
    error = await raised_by(json_response(status, {"error": message}))
    assert type(error) is cls
    assert isinstance(error, MusicAPIError)
    assert error.status_code == status
    assert message in str(error)


@each_status
async def test_an_error_code_in_a_2xx_body_raises_the_class_of_that_code(
    status: int, message: str, cls: type[APIStatusError]
) -> None:
    """The {code, message} envelope sent with HTTP 200: the error its code names, not an
    unreadable answer (which, for a paid call, says a task may exist)."""
    transport = ScriptedTransport(json_response(200, {"code": status, "message": message}))
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.credits.get()
    assert type(caught.value) is cls
    assert caught.value.status_code == status
    assert f"-> 200, with the error code {status} in its body: {message}" in str(caught.value)


async def test_a_credits_error_sent_with_200_to_a_create_says_nothing_was_made() -> None:
    body = {"code": "403", "message": CREDITS_MESSAGE}
    transport = ScriptedTransport(json_response(200, body))
    async with scripted_client(transport) as client:
        with pytest.raises(InsufficientCreditsError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    assert not caught.value.task_may_exist
    assert "may already have started" not in str(caught.value)
    assert len(transport.sent) == 1


async def test_a_task_not_found_sent_with_200_ends_the_wait_instead_of_polling_on() -> None:
    transport = ScriptedTransport(json_response(200, {"code": 404, "message": "task not found."}))
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(NotFoundError):
            await client.sonic.get_task("t-1")


async def test_a_server_error_code_in_a_200_is_retried_like_the_status() -> None:
    transport = ScriptedTransport(
        json_response(200, {"code": 503, "message": "busy"}),
        json_response(200, {"credits": 50, "extra_credits": 0}),
    )
    async with scripted_client(transport, retry=RetryPolicy(jitter=0.0)) as client:
        credits = await client.credits.get()
    assert credits.credits == 50
    assert len(transport.sent) == 2


@pytest.mark.parametrize(
    ("call", "body"),
    [
        ("sonic", {"type": "timeout", "code": 504, "message": "timed out, refunded"}),
        ("sonic", {"type": "forbidden", "code": 403, "message": "lyrics need moderation"}),
        ("producer", {"status": "FAILED", "code": 500, "message": "generation failed"}),
        ("nuro", {"status": "failed", "code": "500", "message": "Algorithm error"}),
    ],
)
async def test_a_failed_task_whose_answer_carries_an_error_code_is_a_failed_task(
    call: str, body: dict[str, Any]
) -> None:
    """A failed task is a result (CONTRACT §15 rules 1 and 2), whatever code its answer
    carries: only a bare error envelope is raised as the error of its code."""
    transport = ScriptedTransport(json_response(200, body))
    async with scripted_client(transport, max_retries=0) as client:
        task = await {
            "sonic": client.sonic.get_task,
            "producer": client.producer.get_task,
            "nuro": client.nuro.get_task,
        }[call]("t-1")
    assert task.status is TaskStatus.FAILED
    assert task.error == body["message"]


@pytest.mark.parametrize(
    ("fields", "flagged", "said"),
    [
        # An error code beside a multi-step report keeps the report's meaning: no 5xx.
        ({"code": 500}, False, "no task was started"),
        # A task id beside a failed step: a failure all the same, and maybe paid.
        ({"code": 200, "task_id": "t-upload"}, True, "It still returned task 't-upload'"),
    ],
    ids=["error code", "task id"],
)
async def test_a_failed_multi_step_answer_names_the_upload_to_reuse(
    fields: dict[str, object], flagged: bool, said: str
) -> None:
    body = {
        "message": "success",
        "failed_step": "extend",
        "steps": {"upload": {"success": True, "clip_id": "up-1"}, "extend": {"error": "no"}},
        **fields,
    }
    transport = ScriptedTransport(json_response(200, body))
    async with scripted_client(transport) as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.sonic.upload_extend(
                "https://example.com/a.mp3", custom_mode=False, mv="sonic-v5"
            )
    assert caught.value.task_may_exist is flagged
    assert said in str(caught.value)
    assert "client.sonic.extend_upload(clip_id, ...)" in str(caught.value)


async def test_a_code_written_with_a_non_ascii_digit_is_no_error_code() -> None:
    transport = ScriptedTransport(
        json_response(200, {"code": "\u00b2", "credits": 5, "extra_credits": 0})
    )
    async with scripted_client(transport) as client:
        assert (await client.credits.get()).credits == 5


async def test_insufficient_credits_is_a_permission_denied_error() -> None:
    """Code catching the documented 403 still catches the credits case."""
    error = await raised_by(json_response(403, {"error": CREDITS_MESSAGE}))
    assert isinstance(error, PermissionDeniedError)
    assert "buy credits" in str(error)


async def test_gone_error_points_to_sonic_and_producer() -> None:
    error = await raised_by(json_response(410, {"error": "Gone"}), call="nuro")
    assert "client.sonic" in str(error)
    assert "client.producer" in str(error)
    assert error.path == "/nuro/task/t-1"


async def test_a_retired_producer_task_type_is_not_called_a_retired_endpoint() -> None:
    """A 410 on /producer/create retires a task_type: moving to client.producer (where the
    user is) is no advice."""
    body = {"error": "This task type has been retired."}
    transport = ScriptedTransport(json_response(410, body))
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(GoneError) as caught:
            await client.producer.create(task_type="music_variation", clip_id="c-1")
    message = str(caught.value)
    assert "task_type" in message
    assert "client.producer instead" not in message


async def test_rate_limit_error_reads_retry_after() -> None:
    error = await raised_by(
        json_response(429, {"error": "slow down"}, headers={"Retry-After": "12"})
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 12.0


async def test_authentication_error_says_where_the_key_comes_from() -> None:
    error = await raised_by(json_response(401, {"error": "Authorization header is missing."}))
    assert "MUSICAPI_KEY" in str(error)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_an_error_that_names_where_and_says_nothing_was_done(
    status: int,
) -> None:
    """Not a success whose empty body fails to parse ("got null"), and for a create not a
    "may have been charged": a redirect is not followed, so nothing was done."""
    from musicapi_async.testing import FakeMusicAPI

    fake = FakeMusicAPI(rate_limit=None)
    target = "https://user:pw@elsewhere.example/api/v1/sonic/create?token=s3cret#x"
    fake.inject("/sonic/create", status=status, headers={"location": target}, body="")
    async with fake.client() as client:
        with pytest.raises(APIStatusError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    error = caught.value
    assert type(error) is APIStatusError
    assert error.status_code == status
    assert not error.task_may_exist
    assert "https://elsewhere.example/api/v1/sonic/create" in str(error)
    assert "MUSICAPI_BASE_URL" in str(error)
    for secret in ("s3cret", "pw@", "token"):
        assert secret not in str(error)
    assert len(fake.requests_to("/sonic/create")) == 1  # not retried, not followed
    assert not fake.tasks


async def test_a_303_to_a_create_says_the_task_may_exist() -> None:
    """A 303 "see other" answers a request that was carried out: a create may have started
    a task, so it is flagged and advised like any unclear paid answer, never "nothing was
    done". To a call that spends nothing it stays a plain redirect."""
    from musicapi_async.testing import FakeMusicAPI

    fake = FakeMusicAPI(rate_limit=None)
    fake.inject("/sonic/create", status=303, headers={"location": "/api/v1/sonic/task/t-1"})
    fake.inject("/get-credits", status=303, headers={"location": "/api/v1/elsewhere"})
    async with fake.client() as client:
        with pytest.raises(APIStatusError) as created:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
        with pytest.raises(APIStatusError) as read:
            await client.credits.get()
    assert created.value.task_may_exist
    assert "may already have started" in str(created.value)
    assert "nothing was done" not in str(created.value)
    assert not read.value.task_may_exist


@pytest.mark.parametrize("status", [302, 307, 308])
async def test_a_redirect_is_not_followed_even_by_an_injected_client_that_follows_them(
    status: int,
) -> None:
    """An app-wide ``httpx.AsyncClient(follow_redirects=True)`` given as ``http_client``: a
    307 must not re-send a paid create (past the rate limiter) to where it points."""
    transport = ScriptedTransport(
        text_response(status, headers={"location": "/api/v1/sonic/create/"})
    )  # a second request would fail the test: the script has one step
    http = httpx.AsyncClient(transport=transport, follow_redirects=True)
    async with MusicAPI(
        "test-key", base_url="http://localhost/api/v1", http_client=http, limiter=None
    ) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    assert caught.value.status_code == status
    assert not caught.value.task_may_exist
    assert len(transport.sent) == 1


# --- envelopes -----------------------------------------------------------------------------

ENVELOPES: list[tuple[str, httpx.Response, str, str | None, object]] = [
    ("error", json_response(400, {"error": "bad mv"}), "bad mv", None, {"error": "bad mv"}),
    ("message", json_response(400, {"message": "bad mv"}), "bad mv", None, {"message": "bad mv"}),
    (
        "type+error",
        json_response(400, {"type": "bad_request", "error": "bad mv"}),
        "bad mv",
        "bad_request",
        {"type": "bad_request", "error": "bad mv"},
    ),
    (
        "int code+message",
        json_response(400, {"code": 400, "message": "bad mv"}),
        "bad mv",
        None,
        {"code": 400, "message": "bad mv"},
    ),
    (
        "str code+message",
        json_response(400, {"code": "INVALID_MV", "message": "bad mv"}),
        "bad mv",
        "INVALID_MV",
        {"code": "INVALID_MV", "message": "bad mv"},
    ),
    ("detail", json_response(400, {"detail": "bad mv"}), "bad mv", None, {"detail": "bad mv"}),
    (
        "nested error.message",
        json_response(400, {"error": {"message": "bad mv"}}),
        "bad mv",
        None,
        {"error": {"message": "bad mv"}},
    ),
    (
        "error before message",
        json_response(400, {"message": "generic", "error": "bad mv"}),
        "bad mv",
        None,
        {"message": "generic", "error": "bad mv"},
    ),
    (
        "text",
        text_response(400, "bad mv from the proxy"),
        "bad mv from the proxy",
        None,
        "bad mv from the proxy",
    ),
    ("empty", text_response(400, ""), "Bad Request", None, None),
]


@pytest.mark.parametrize(
    ("response", "text", "kind", "body"),
    [case[1:] for case in ENVELOPES],
    ids=[case[0] for case in ENVELOPES],
)
async def test_every_error_envelope_is_read(
    response: httpx.Response, text: str, kind: str | None, body: object
) -> None:
    response.headers["x-request-id"] = "req-42"
    response.headers["x-extra"] = "kept"
    error = await raised_by(response)
    assert type(error) is BadRequestError
    assert isinstance(error, MusicAPIError)
    assert error.status_code == 400
    assert error.message == str(error)
    assert text in str(error)
    assert error.error_type == kind
    assert error.body == body
    assert error.request_id == "req-42"
    assert "req-42" in str(error)
    assert error.headers["x-extra"] == "kept"
    assert error.method == "GET"
    assert error.path == "/get-credits"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-request-id": "a", "x-vercel-id": "b", "cf-ray": "c"}, "a"),
        ({"x-vercel-id": "b", "cf-ray": "c"}, "b"),
        ({"cf-ray": "c"}, "c"),
        ({}, None),
    ],
)
async def test_request_id_prefers_x_request_id_then_x_vercel_id_then_cf_ray(
    headers: dict[str, str], expected: str | None
) -> None:
    error = await raised_by(json_response(404, {"error": "nope"}, headers=headers))
    assert error.request_id == expected


# --- the vendor's error catalogs (examples/error.catalog.*.json) ---------------------------

NURO_CATALOG: list[dict[str, Any]] = [
    {
        "http": 500,
        "type": "api_error",
        "description": "API system error, please contact administrator",
    },
    {"http": 401, "type": "unauthorized", "description": "Invalid signature"},
    {"http": 401, "type": "unauthorized", "description": "Authorization expired"},
    {"http": 403, "type": "forbidden", "description": "API usage limit exceeded"},
    {"http": 403, "type": "forbidden", "description": "API QPS limit exceeded"},
    {"http": 500, "type": "api_error", "description": "Algorithm error"},
    {"http": 404, "type": "not_found", "description": "Task not found"},
    {"http": 400, "type": "bad_request", "description": "Input language not supported"},
    {"http": 500, "type": "api_error", "description": "Semantic error, please try again"},
    {"http": 403, "type": "forbidden", "description": "Queue is full"},
]
NURO_CLASSES: dict[str, type[APIStatusError]] = {
    "api_error": ServerError,
    "unauthorized": AuthenticationError,
    # Quotas and full queues are not a lack of credits.
    "forbidden": PermissionDeniedError,
    "not_found": NotFoundError,
    "bad_request": BadRequestError,
}


@pytest.mark.parametrize("row", NURO_CATALOG, ids=lambda row: row["description"][:30])
async def test_nuro_catalog_rows_map_to_their_classes(row: dict[str, Any]) -> None:
    body = {"type": row["type"], "error": row["description"]}
    error = await raised_by(json_response(row["http"], body), call="nuro")
    assert type(error) is NURO_CLASSES[row["type"]]
    assert error.error_type == row["type"]
    assert row["description"] in str(error)
    assert error.body == body


SONIC_CATALOG: list[dict[str, Any]] = [
    {
        "http": 400,
        "message": "The 'mv' field is invalid. The model should be 'sonic-v3-5' or 'sonic-v4'.",
    },
    {"http": 400, "message": "The 'persona_id' field is required when task_type = persona_music."},
    {"http": 400, "message": "The 'make_instrumental' field should be boolean."},
    {"http": 400, "message": "The title character length should be less than 80."},
    {"http": 400, "message": "name and continue_clip_id are required fields."},
    {"http": 400, "message": "task not found."},
    {"http": 400, "message": "missing task id."},
    {"http": 401, "message": "Authorization header is missing."},
    {"http": 401, "message": "Invalid authorization format."},
    {"http": 403, "message": CREDITS_MESSAGE},
    {
        "http": 403,
        "message": "You do not have an active subscription. "
        "Please check whether your renewal was successful.",
    },
    {"http": 403, "message": "The lyrics format is invalid. Please check and try again."},
    {
        "http": 403,
        "message": "The lyrics contain copyrighted content: 'specificError'. "
        "Please use original lyrics.",
    },
    {"http": 403, "message": "The song description needs moderation review."},
    {"http": 504, "message": "Task failed due to timeout. Credits were previously refunded."},
    {"http": 500, "message": "Internal Server Error."},
]
SONIC_CLASSES: dict[str, type[APIStatusError]] = {
    "task not found.": NotFoundError,
    CREDITS_MESSAGE: InsufficientCreditsError,
}
SONIC_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    500: ServerError,
    504: UpstreamTimeoutError,
}


@pytest.mark.parametrize("row", SONIC_CATALOG, ids=lambda row: row["message"][:30])
async def test_sonic_catalog_rows_map_to_their_classes(row: dict[str, Any]) -> None:
    body = {"code": row["http"], "message": row["message"]}
    error = await raised_by(json_response(row["http"], body), call="sonic")
    expected = SONIC_CLASSES.get(row["message"], SONIC_STATUS_CLASSES[row["http"]])
    assert type(error) is expected
    assert row["message"] in str(error)
    assert error.path == "/sonic/task/t-1"


# --- 2xx answers the SDK cannot read -------------------------------------------------------


async def test_a_2xx_that_is_not_json_raises_response_validation_error_once() -> None:
    transport = ScriptedTransport(text_response(200, "<html>maintenance</html>"))
    async with scripted_client(transport) as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.credits.get()
    assert len(transport.sent) == 1
    error = caught.value
    assert error.method == "GET"
    assert error.path == "/get-credits"
    assert "not JSON" in str(error)
    assert "maintenance" in str(error)


async def test_an_unreadable_2xx_to_a_create_carries_its_status_request_id_and_headers() -> None:
    """``task_may_exist``: the request id is what support needs to find the task."""
    answer = text_response(200, "<html>cf</html>", headers={"X-Request-Id": "req-42"})
    transport = ScriptedTransport(answer)
    async with scripted_client(transport) as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    error = caught.value
    assert error.task_may_exist
    assert (error.status_code, error.request_id) == (200, "req-42")
    assert error.headers is not None
    assert error.headers["x-request-id"] == "req-42"
    assert str(error).endswith(" [request id req-42]")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.status_code, copy.request_id, copy.headers) == (200, "req-42", error.headers)


@pytest.mark.parametrize(
    "body", [{"message": "success"}, {"task_id": 12345678901234567890123}], ids=str
)
async def test_a_2xx_body_without_the_expected_fields_carries_the_answers_request_id(
    body: object,
) -> None:
    transport = ScriptedTransport(json_response(202, body, headers={"x-vercel-id": "v-1"}))
    async with scripted_client(transport) as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    error = caught.value
    assert error.task_may_exist
    assert (error.status_code, error.request_id) == (202, "v-1")
    assert error.headers is not None
    assert error.headers["X-Vercel-Id"] == "v-1"
    assert "[request id v-1]" in str(error)


def test_a_validation_error_made_without_an_answer_has_none_of_its_fields() -> None:
    error = ResponseValidationError("bad", field_path="$.x")
    assert (error.status_code, error.request_id, error.headers) == (None, None, None)


async def test_a_submit_answer_without_task_id_raises_with_the_field_path() -> None:
    transport = ScriptedTransport(json_response(200, {"message": "success"}))
    async with scripted_client(transport) as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    assert len(transport.sent) == 1
    error = caught.value
    assert error.field_path == "$.task_id"
    assert error.method == "POST"
    assert error.path == "/sonic/create"
    assert "task_id" in str(error)


def assert_paid_advice(error: MusicAPIError) -> None:
    """The never-pay-twice warning every uncertain paid call carries."""
    assert error.task_may_exist is True
    message = str(error)
    assert "may already have started" in message
    assert "client.credits.get()" in message
    assert "webhook" in message


@pytest.mark.parametrize(
    "answer",
    [
        text_response(200, "<html>maintenance</html>"),
        text_response(200, ""),
        json_response(200, {"message": "success"}),
        json_response(200, {"message": "success", "task_id": ""}),
        json_response(200, ["t-1"]),
    ],
    ids=["not-json", "empty-body", "no-task-id", "empty-task-id", "not-an-object"],
)
async def test_an_unreadable_2xx_to_a_paid_call_says_the_task_may_exist(
    answer: httpx.Response,
) -> None:
    """A create answered 2xx was received: without a task_id the task may still exist."""
    transport = ScriptedTransport(answer)
    async with scripted_client(transport) as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    assert len(transport.sent) == 1
    assert caught.value.method == "POST"
    assert_paid_advice(caught.value)


async def test_an_unreadable_2xx_to_a_paid_sync_call_says_the_task_may_exist() -> None:
    """/sonic/wav spends credits too: a body without wav_url leaves the charge uncertain."""
    transport = ScriptedTransport(json_response(200, {"code": 200, "data": {}}))
    async with scripted_client(transport) as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.sonic.wav("c-1")
    assert caught.value.field_path == "$.data.wav_url"
    assert_paid_advice(caught.value)


async def test_an_unreadable_2xx_to_a_get_never_claims_a_task_may_exist() -> None:
    transport = ScriptedTransport(
        text_response(200, "<html>maintenance</html>"), json_response(200, {"credits": "x"})
    )
    async with scripted_client(transport) as client:
        for _ in range(2):
            with pytest.raises(ResponseValidationError) as caught:
                await client.credits.get()
            assert caught.value.task_may_exist is False
            assert "may already have started" not in str(caught.value)


async def test_a_submit_whose_failed_step_says_no_task_started_is_not_flagged() -> None:
    """upload-extend answering failed_step without task_id: the server says nothing started."""
    body = {"code": 200, "message": "upload failed", "failed_step": "upload", "steps": {}}
    transport = ScriptedTransport(json_response(200, body))
    async with scripted_client(transport) as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.sonic.upload_extend("https://example.com/a.mp3", mv="sonic-v5")
    assert caught.value.task_may_exist is False
    assert "no task was started" in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "call", "added"),
    [
        (json_response(500, {"error": "boom"}), "create", "may already have started"),
        (json_response(200, {"message": "success"}), "create", "may already have started"),
        (
            json_response(429, {"error": "slow"}, headers={"Retry-After": "3600"}),
            "credits",
            "max_retry_after",
        ),
    ],
    ids=["paid 5xx", "unreadable paid 2xx", "retry-after too long"],
)
async def test_what_is_added_to_a_message_reaches_repr_args_and_tracebacks(
    answer: httpx.Response, call: str, added: str
) -> None:
    """``repr()``, ``%r`` logging and a traceback's last line read ``args``, not ``message``:
    the advice appended after the error was made must be in both."""
    transport = ScriptedTransport(answer)  # none of them is retried
    async with scripted_client(transport) as client:
        send: Callable[[], Awaitable[object]] = (
            (lambda: client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi"))
            if call == "create"
            else client.credits.get
        )
        with pytest.raises(MusicAPIError) as caught:
            await send()
    error = caught.value
    assert added in str(error)
    assert error.args == (error.message,)
    assert added in repr(error)
    assert added in traceback.format_exception_only(error)[-1]


def test_setting_a_message_keeps_args_in_step() -> None:
    error = ServerError("POST /sonic/create -> 500: boom", status_code=500)
    error.message += " Check the task history."
    assert error.args == ("POST /sonic/create -> 500: boom Check the task history.",)
    assert repr(error) == f"ServerError({error.message!r})"
    assert str(pickle.loads(pickle.dumps(error))) == error.message


# --- pickling (Celery, multiprocessing) -----------------------------------------------------

FAILED_TASK = Task(
    ref=TaskRef("t-1", TaskFamily.SONIC),
    status=TaskStatus.FAILED,
    clips=(Clip(clip_id="c-1", state=ClipState.FAILED, raw={"clip_id": "c-1"}),),
    error="generation failed",
    error_type="failed",
    raw={"type": "failed", "error": "generation failed"},
)
STATUS_KWARGS: dict[str, Any] = {
    "status_code": 429,
    "error_type": "rate_limited",
    "request_id": "r-1",
    "body": {"error": "slow down", "nested": [1, {"a": None}]},
    "headers": httpx.Headers({"Retry-After": "3", "X-Request-Id": "r-1"}),
    "retry_after": 3.0,
    "method": "POST",
    "path": "/sonic/create",
    "task_may_exist": True,
}
STATUS_CLASSES = [
    APIStatusError,
    BadRequestError,
    AuthenticationError,
    PermissionDeniedError,
    InsufficientCreditsError,
    NotFoundError,
    GoneError,
    RateLimitError,
    ServerError,
    UpstreamTimeoutError,
]
EVERY_ERROR: list[MusicAPIError] = [
    MusicAPIError("base", method="GET", path="/get-credits"),
    APIConnectionError("refused", method="POST", path="/sonic/create", task_may_exist=True),
    APITimeoutError("read timeout", method="GET", path="/sonic/task/t-1"),
    *(cls(f"{cls.__name__} message", **STATUS_KWARGS) for cls in STATUS_CLASSES),
    ResponseValidationError(
        "bad duration",
        field_path="$.data[0].duration",
        body={"code": 200, "data": [{"duration": "x"}]},
        method="POST",
        path="/sonic/create",
        task_may_exist=True,
        status_code=200,
        request_id="r-1",
        headers={"X-Request-Id": "r-1"},
    ),
    ResultNotReadyError("still building", method="POST", path="/sonic/midi"),
    TaskFailedError("sonic task t-1 failed", task=FAILED_TASK),
    WaitTimeoutError(
        "deadline", pending=(TaskRef("t-2", TaskFamily.PRODUCER),), completed=(FAILED_TASK,)
    ),
]


@pytest.mark.parametrize("error", EVERY_ERROR, ids=lambda e: type(e).__name__)
def test_every_sdk_exception_survives_pickling_with_its_attributes(error: MusicAPIError) -> None:
    """Celery and multiprocessing pickle exceptions: class, message and attributes survive."""
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(error, protocol=protocol))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.args == error.args
        assert vars(copy) == vars(error)
        if isinstance(error, TaskFailedError):
            assert isinstance(copy, TaskFailedError)
            assert copy.task == error.task
            assert copy.task.raw == error.task.raw
            assert copy.task.clips[0].raw == error.task.clips[0].raw


async def test_an_error_raised_by_a_call_pickles_and_keeps_its_headers() -> None:
    transport = ScriptedTransport(
        json_response(429, {"error": "slow down"}, headers={"Retry-After": "600"})
    )
    async with scripted_client(transport) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.credits.get()
    copy = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copy, RateLimitError)
    assert copy.retry_after == 600.0
    assert copy.headers["Retry-After"] == "600"
    assert copy.status_code == 429
    assert copy.body == {"error": "slow down"}


async def test_status_error_headers_are_case_insensitive() -> None:
    """``error.headers["Retry-After"]`` works whatever case the server used."""
    transport = ScriptedTransport(
        json_response(503, {"error": "busy"}, headers={"retry-after": "7", "X-Vercel-Id": "v"})
    )
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(ServerError) as caught:
            await client.credits.get()
    headers = caught.value.headers
    assert headers["Retry-After"] == headers["retry-after"] == "7"
    assert headers["x-vercel-id"] == "v"
    assert "RETRY-AFTER" in headers


def test_status_error_headers_from_a_plain_dict_are_case_insensitive_too() -> None:
    error = APIStatusError("m", status_code=418, headers={"Retry-After": "1"})
    assert error.headers["retry-after"] == "1"


# --- secrets -------------------------------------------------------------------------------

SECRET = "sk-SECRET-123"


def assert_no_secret(*things: object) -> None:
    for thing in things:
        assert SECRET not in repr(thing)
        assert SECRET not in str(thing)


def test_the_webhook_secret_is_absent_from_request_parameter_reprs() -> None:
    """SonicCreate items end up in logs and tracebacks; their webhook_secret must not."""
    item = SonicCreate(
        mv="sonic-v5",
        custom_mode=False,
        gpt_description_prompt="lofi",
        webhook_url="https://example.com/hook",
        webhook_secret=SECRET,
    )
    assert_no_secret(item)
    assert "https://example.com/hook" in repr(item)
    assert item.webhook_secret == SECRET
    assert item.to_body()["webhook_secret"] == SECRET


def test_credentials_in_a_webhook_url_are_absent_from_reprs() -> None:
    """A batch job's repr (logs, tracebacks) must not show what its journal strips."""
    from musicapi_async import BatchJob

    url = "https://user:pw@example.com/hook?token=T0P-SECRET"
    item = SonicCreate(mv="sonic-v5", gpt_description_prompt="lofi", webhook_url=url)
    for thing in (item, BatchJob("job", item)):
        shown = repr(thing)
        assert "example.com/hook" in shown
        for secret in ("T0P-SECRET", "pw@", "user:"):
            assert secret not in shown
    assert item.webhook_url == url
    assert item.to_body()["webhook_url"] == url


async def test_the_api_key_is_absent_from_client_reprs() -> None:
    transport = ScriptedTransport()
    async with scripted_client(transport, api_key=SECRET) as client:
        view = client.with_options(timeout=5)
        assert_no_secret(client, view, client.sonic, client.producer, client.credits, vars(client))


async def test_the_api_key_is_absent_from_errors_and_debug_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="musicapi_async")
    events: list[RetryEvent] = []
    transport = ScriptedTransport(
        # GET: a timeout, a 429 and a 500 retried, then a 401.
        httpx.ReadTimeout,
        json_response(429, {"error": "slow down"}, headers={"Retry-After": "2"}),
        json_response(500, {"error": "boom"}),
        json_response(401, {"error": "Invalid authorization format."}),
        # GET: connection failures until retries run out.
        *[httpx.ConnectError] * 4,
        # POST: a 502 is not retried; a read timeout is not retried.
        json_response(502, {"message": "upstream"}, headers={"x-request-id": "r-1"}),
        httpx.ReadTimeout,
        # POST: the server answered 200 without JSON.
        text_response(200, "oops"),
        # A success, so that the debug log of a good answer is covered too.
        json_response(200, SONIC_TASK_BODY),
    )
    errors: list[MusicAPIError] = []
    async with scripted_client(
        transport, api_key=SECRET, retry=RetryPolicy(jitter=0.0), on_retry=events.append
    ) as client:
        for call in (
            client.credits.get,
            client.credits.get,
            lambda: client.sonic.create(mv="sonic-v5", gpt_description_prompt="x"),
            lambda: client.producer.create(sound="x"),
            lambda: client.sonic.create(mv="sonic-v5", gpt_description_prompt="x"),
        ):
            with pytest.raises(MusicAPIError) as caught:
                await call()
            errors.append(caught.value)
        await client.sonic.get_task("t-1")
    assert transport.remaining == 0
    # The key did go over the wire...
    assert all(
        sent.request.headers["authorization"] == f"Bearer {SECRET}" for sent in transport.sent
    )
    # ...and nowhere else.
    assert [type(e) for e in errors] == [
        AuthenticationError,
        APIConnectionError,
        ServerError,
        APITimeoutError,
        ResponseValidationError,
    ]
    for error in errors:
        assert_no_secret(error, error.args, vars(error), error.__cause__)
        if isinstance(error, APIStatusError):
            assert_no_secret(error.body, error.headers)
    assert_no_secret(*events)
    ours = [r for r in caplog.records if r.name.startswith("musicapi_async")]
    assert any(r.levelno == logging.INFO for r in ours), "expected the retry loop to log"
    assert any(r.levelno == logging.DEBUG for r in ours), "expected per-request debug logs"
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in str(record.msg)
        assert SECRET not in repr(record.args)
