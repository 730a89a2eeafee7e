"""verify_webhook, sign_webhook and WebhookReceiver (CONTRACT §12, §15 rule 5)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import pickle
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musicapi_async import (
    ClipState,
    MusicAPIError,
    TaskFamily,
    TaskRef,
    TaskStatus,
    WebhookEvent,
    WebhookReceiver,
    WebhookResponse,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

EXAMPLES = Path(__file__).parent / "data" / "examples"
SECRET = "whsec-ZEBRA-7f3a9c"  # distinctive: searched for in every message and repr
TASK_ID = "7d0c5f0e-3b57-4a53-9f1e-2f1d7b3f9a10"
TS = 1_763_000_000  # a fixed "now" for the timestamp checks
CLIP = "26c9c592-0566-46cf-bb71-91ac1deaa7b5"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def sonic_payload(**extra: Any) -> dict[str, Any]:
    """webhook.sonic.json with a top-level task_id.

    The stored copy stops inside the second clip, so whether the real payload names its
    task after the clips is unknown; the SDK needs the id, and the fake sends it.
    """
    return {**example("webhook.sonic.json"), "task_id": TASK_ID, **extra}


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def hmac_hex(message: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def current_headers(
    body: bytes, *, ts: int = TS, secret: str = SECRET, event: str | None = "song.completed"
) -> dict[str, str]:
    """Headers built from the documented formula, independently of sign_webhook."""
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": "evt-1",
        "Idempotency-Key": "evt-1",
        "X-Webhook-Timestamp": str(ts),
        "X-Webhook-Signature": "sha256=" + hmac_hex(f"{ts}.".encode() + body, secret),
    }
    if event is not None:
        headers["X-Webhook-Event"] = event
    return headers


def rejected(body: bytes, headers: Any, **kwargs: Any) -> WebhookVerificationError:
    kwargs.setdefault("now", TS)
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(body, headers, SECRET, **kwargs)
    return info.value


# --- the current scheme ---------------------------------------------------------------------


def test_documented_sonic_payload_verifies_into_the_task_get_task_would_return() -> None:
    body = encode(sonic_payload())
    event = verify_webhook(body, current_headers(body), SECRET, now=TS)
    assert event.id == "evt-1"
    assert event.kind == "song.completed"
    assert event.scheme == "signature"
    assert event.task_id == TASK_ID
    assert event.timestamp == datetime.fromtimestamp(TS, tz=timezone.utc)
    assert event.task.ref.family is TaskFamily.SONIC
    assert event.ref == event.task.ref
    assert event.task.status is TaskStatus.SUCCEEDED
    [clip] = event.task.clips
    assert clip.clip_id == "30264033-2b01-43a7-8779-2a834b067486"
    assert clip.state is ClipState.SUCCEEDED
    assert clip.duration == 104.88  # sent as the string "104.88"
    assert clip.mv == "chirp-v5"
    assert event.raw == json.loads(body)


def test_the_documented_payload_without_a_task_id_is_a_bad_body() -> None:
    """The stored example names no task (its copy is cut off): no waiter could be resolved."""
    body = encode(example("webhook.sonic.json"))
    error = rejected(body, current_headers(body))
    assert error.reason == "bad_body"
    assert "task_id" in str(error)


def test_the_documented_payload_is_read_for_the_task_a_tag_named() -> None:
    """verify_webhook(task=...): what a receiver passes when the URL tag named the task."""
    body = encode(example("webhook.sonic.json"))
    ref = TaskRef("task-from-tag", TaskFamily.SONIC)
    event = verify_webhook(body, current_headers(body), SECRET, now=TS, task=ref)
    assert event.task_id == "task-from-tag"
    assert event.ref == ref
    assert event.task.clips[0].clip_id == "30264033-2b01-43a7-8779-2a834b067486"
    # A task named in the signed body wins over the (unsigned) tag, family included.
    named = encode(sonic_payload())
    other = TaskRef("someone-else", TaskFamily.PRODUCER)
    event = verify_webhook(named, current_headers(named), SECRET, now=TS, task=other)
    assert event.ref == TaskRef(TASK_ID, TaskFamily.SONIC)
    with pytest.raises(TypeError, match="TaskRef"):
        verify_webhook(named, current_headers(named), SECRET, now=TS, task="t-1")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_receiver_remembers_a_bounded_number_of_tags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import musicapi_async._webhooks as module

    monkeypatch.setattr(module, "WEBHOOK_TAGS_MAX", 2)
    hook = WebhookReceiver(SECRET, clock=lambda: TS)
    for k in range(3):
        hook._resolve_tag(f"tag-{k}", TaskRef(f"task-{k}", TaskFamily.SONIC))
    body = encode(example("webhook.sonic.json"))
    statuses = []
    for k in range(3):
        headers = sign_webhook(body, SECRET, timestamp=TS + k, event_id=f"evt-{k}")
        statuses.append((await hook.handle(body, headers, query=f"?musicapi_tag=tag-{k}")).status)
    assert statuses == [400, 200, 200]  # the oldest tag was forgotten
    assert hook.statistics().accepted == 2
    # ASGI hands the query string over as bytes.
    headers = sign_webhook(body, SECRET, timestamp=TS + 5, event_id="evt-5")
    assert (await hook.handle(body, headers, query=b"musicapi_tag=tag-2")).status == 200
    with pytest.raises(TypeError, match="query"):
        await hook.handle(body, sign_webhook(body, SECRET, timestamp=TS), query=7)  # type: ignore[arg-type]


def test_sign_webhook_follows_the_documented_formula() -> None:
    body = b'{"task_id": "t", "code": 200, "data": []}'
    headers = sign_webhook(body, SECRET, timestamp=TS, event_id="evt-9", kind="song.failed")
    assert headers == {
        "Content-Type": "application/json",
        "X-Webhook-Id": "evt-9",
        "Idempotency-Key": "evt-9",
        "X-Webhook-Event": "song.failed",
        "X-Webhook-Timestamp": str(TS),
        "X-Webhook-Signature": "sha256=" + hmac_hex(f"{TS}.".encode() + body),
    }
    assert verify_webhook(body, headers, SECRET, now=TS).kind == "song.failed"


def test_sign_webhook_defaults_to_now_and_a_fresh_event_id() -> None:
    body = encode(sonic_payload())
    first, second = sign_webhook(body, SECRET), sign_webhook(body, SECRET)
    assert first["X-Webhook-Id"] != second["X-Webhook-Id"]
    assert verify_webhook(body, first, SECRET).id == first["X-Webhook-Id"]  # now: the clock


def test_the_signature_covers_the_exact_bytes_not_the_json_value() -> None:
    body = encode(sonic_payload())
    spaced = json.dumps(sonic_payload(), indent=4).encode()
    assert verify_webhook(spaced, current_headers(spaced), SECRET, now=TS).task_id == TASK_ID
    assert rejected(spaced, current_headers(body)).reason == "bad_signature"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b, h: (b.replace(b"succeeded", b"failed!!!"), h), id="body"),
        pytest.param(lambda b, h: (b + b" ", h), id="trailing-space"),
        pytest.param(
            lambda b, h: (b, {**h, "X-Webhook-Timestamp": str(TS + 1)}), id="timestamp-changed"
        ),
        pytest.param(
            lambda b, h: (b, {**h, "X-Webhook-Signature": h["X-Webhook-Signature"][:-2]}),
            id="signature-cut",
        ),
    ],
)
def test_tampering_is_a_bad_signature(
    tamper: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]],
) -> None:
    body = encode(sonic_payload())
    new_body, headers = tamper(body, current_headers(body))
    assert rejected(new_body, headers).reason == "bad_signature"


def test_a_wrong_secret_is_a_bad_signature() -> None:
    body = encode(sonic_payload())
    assert rejected(body, current_headers(body, secret="another")).reason == "bad_signature"


def test_the_hex_digest_is_compared_case_insensitively() -> None:
    body = encode(sonic_payload())
    headers = current_headers(body)
    headers["X-Webhook-Signature"] = "SHA256=" + headers["X-Webhook-Signature"][7:].upper()
    assert verify_webhook(body, headers, SECRET, now=TS).scheme == "signature"


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    body = encode(sonic_payload())
    verify_webhook(body, current_headers(body), SECRET, now=TS)
    assert len(calls) == 1
    rejected(body, current_headers(body, secret="wrong"))
    assert len(calls) == 2
    legacy = {"X-Signature": hmac_hex(body)}
    verify_webhook(body, legacy, SECRET)
    assert len(calls) == 3


# --- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (TS + 300, None),  # exactly at the default tolerance: accepted
        (TS + 300.001, "stale_timestamp"),
        (TS + 86_400, "stale_timestamp"),
        (TS - 300, None),  # as far in the future as allowed
        (TS - 300.001, "future_timestamp"),
    ],
)
def test_the_timestamp_must_be_within_five_minutes(now: float, reason: str | None) -> None:
    body = encode(sonic_payload())
    if reason is None:
        assert verify_webhook(body, current_headers(body), SECRET, now=now).task_id == TASK_ID
    else:
        assert rejected(body, current_headers(body), now=now).reason == reason


def test_the_tolerance_is_configurable() -> None:
    body = encode(sonic_payload())
    headers = current_headers(body)
    assert verify_webhook(body, headers, SECRET, now=TS + 3600, tolerance=3600).task_id
    error = rejected(body, headers, now=TS + 11, tolerance=10)
    assert error.reason == "stale_timestamp"
    assert "11 s old" in str(error)
    assert "tolerance of 10 s" in str(error)


def test_a_stale_timestamp_is_reported_only_when_the_signature_is_right() -> None:
    """A forger learns nothing from the timestamp check: the signature is checked first."""
    body = encode(sonic_payload())
    forged = current_headers(body, secret="guess")
    assert rejected(body, forged, now=TS + 10_000).reason == "bad_signature"


@pytest.mark.parametrize(
    "value", ["soon", "", "  ", "1.5e9", "-1700000000", "\uff11\uff12\uff13", "0x10"]
)
def test_a_malformed_or_missing_timestamp_is_refused(value: str) -> None:
    body = encode(sonic_payload())
    headers = {**current_headers(body), "X-Webhook-Timestamp": value}
    expected = "missing_timestamp" if not value.strip() else "bad_timestamp"
    assert rejected(body, headers).reason == expected


def test_a_current_signature_without_a_timestamp_header_is_refused() -> None:
    body = encode(sonic_payload())
    headers = current_headers(body)
    del headers["X-Webhook-Timestamp"]
    assert rejected(body, headers).reason == "missing_timestamp"


# --- the legacy scheme ----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "sha256="])
def test_the_legacy_scheme_signs_the_raw_body_alone(prefix: str) -> None:
    body = encode(sonic_payload())
    event = verify_webhook(body, {"X-Signature": prefix + hmac_hex(body)}, SECRET)
    assert event.scheme == "legacy"
    assert event.timestamp is None
    assert event.id is None
    assert event.kind == "song.completed"  # inferred from the task
    assert event.task.succeeded


def test_legacy_signatures_have_no_replay_protection() -> None:
    body = encode(sonic_payload())
    headers = {"X-Signature": hmac_hex(body), "X-Webhook-Timestamp": "1"}  # unsigned, ignored
    assert verify_webhook(body, headers, SECRET, now=TS).scheme == "legacy"


def test_sign_webhook_legacy_matches_verify() -> None:
    body = encode(sonic_payload())
    headers = sign_webhook(body, SECRET, legacy=True)
    assert set(headers) == {"Content-Type", "X-Signature"}
    assert headers["X-Signature"] == hmac_hex(body)
    with_id = sign_webhook(body, SECRET, legacy=True, event_id="e-7")
    assert verify_webhook(body, with_id, SECRET).id == "e-7"


def test_with_x_webhook_signature_only_the_current_scheme_counts() -> None:
    body = encode(sonic_payload())
    headers = {
        "X-Signature": hmac_hex(body),  # right, but not looked at
        "X-Webhook-Timestamp": str(TS),
        "X-Webhook-Signature": "sha256=" + "0" * 64,
    }
    assert rejected(body, headers).reason == "bad_signature"


def test_a_legacy_signature_made_with_another_secret_is_refused() -> None:
    body = encode(sonic_payload())
    assert rejected(body, {"X-Signature": hmac_hex(body, "x")}).reason == "bad_signature"


def test_no_signature_header_at_all() -> None:
    body = encode(sonic_payload())
    error = rejected(body, {"Content-Type": "application/json"})
    assert error.reason == "missing_signature"
    assert "X-Webhook-Signature" in str(error)


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda h: {k.lower(): v for k, v in h.items()}, id="lower"),
        pytest.param(lambda h: {k.upper(): v for k, v in h.items()}, id="upper"),
        pytest.param(lambda h: list(h.items()), id="str-pairs"),
        pytest.param(
            lambda h: [(k.lower().encode(), v.encode()) for k, v in h.items()], id="asgi-bytes"
        ),
    ],
)
def test_header_names_are_case_insensitive_in_any_shape(shape: Callable[[Any], Any]) -> None:
    body = encode(sonic_payload())
    event = verify_webhook(body, shape(current_headers(body)), SECRET, now=TS)
    assert (event.id, event.kind) == ("evt-1", "song.completed")


def test_idempotency_key_stands_in_for_a_missing_event_id() -> None:
    body = encode(sonic_payload())
    headers = current_headers(body)
    del headers["X-Webhook-Id"]
    assert verify_webhook(body, headers, SECRET, now=TS).id == "evt-1"


# --- payloads -------------------------------------------------------------------------------


def producer_payload(status: str = "SUCCESS") -> dict[str, Any]:
    body: dict[str, Any] = example("producer-task.response.succeeded.partial.json")
    body["data"][0]["image_url"] = "https://musicapi-cdn.b-cdn.net/producer/x.jpg"
    body["status"] = status
    return {"task_id": TASK_ID, **body}


def nuro_payload() -> dict[str, Any]:
    body: dict[str, Any] = example("nuro-task.response.succeeded.partial.json")
    body.update(duration=180, genre="Pop", mood="Happy", gender="Female", timbre="Warm")
    return body


def test_a_producer_payload_is_read_as_a_producer_task() -> None:
    body = encode(producer_payload())
    event = verify_webhook(body, current_headers(body, event=None), SECRET, now=TS)
    assert event.task.ref.family is TaskFamily.PRODUCER
    assert event.task.status is TaskStatus.SUCCEEDED
    assert event.kind == "song.completed"
    assert event.task.clips[0].audio_url is not None


def test_a_failed_producer_payload_is_song_failed() -> None:
    body = encode({**producer_payload("FAILED"), "data": [], "message": "refunded"})
    event = verify_webhook(body, current_headers(body, event=None), SECRET, now=TS)
    assert (event.kind, event.task.status, event.task.error) == (
        "song.failed",
        TaskStatus.FAILED,
        "refunded",
    )


def test_a_nuro_payload_is_read_as_a_nuro_task() -> None:
    body = encode(nuro_payload())
    event = verify_webhook(body, current_headers(body), SECRET, now=TS)
    assert event.task_id == "4c35433b-1649-433d-b513-8422af70fbaa"
    assert event.task.ref.family is TaskFamily.NURO
    assert event.task.succeeded
    assert event.task.clips[0].duration == 180.0


@pytest.mark.parametrize(
    ("platform", "family"),
    [("suno", TaskFamily.SONIC), ("Producer", TaskFamily.PRODUCER), ("nuro", TaskFamily.NURO)],
)
def test_a_platform_field_decides_the_family(platform: str, family: TaskFamily) -> None:
    payload = {"task_id": TASK_ID, "platform": platform, "code": 200, "data": []}
    body = encode(payload)
    assert verify_webhook(body, current_headers(body), SECRET, now=TS).task.ref.family is family


def test_a_failed_sonic_task_payload() -> None:
    body = encode({"task_id": TASK_ID, "type": "failed", "message": "Task failed."})
    event = verify_webhook(body, current_headers(body, event=None), SECRET, now=TS)
    assert event.kind == "song.failed"
    assert event.task.status is TaskStatus.FAILED
    assert (event.task.error_type, event.task.error) == ("failed", "Task failed.")


def test_a_streaming_snapshot_is_song_streaming_when_the_header_is_absent() -> None:
    clips = [{"clip_id": CLIP, "state": "streaming", "audio_url": "https://audiopipe.suno.ai/x"}]
    body = encode({"task_id": TASK_ID, "code": 200, "data": clips})
    event = verify_webhook(body, current_headers(body, event=None), SECRET, now=TS)
    assert event.kind == "song.streaming"
    assert not event.task.is_terminal
    assert event.task.audio_urls == ("https://audiopipe.suno.ai/x",)


def test_the_event_header_wins_over_the_inferred_kind() -> None:
    body = encode(sonic_payload())
    event = verify_webhook(body, current_headers(body, event="song.remixed"), SECRET, now=TS)
    assert event.kind == "song.remixed"  # an unknown kind is kept, never refused


def test_the_task_id_may_come_from_the_clips() -> None:
    payload = example("webhook.sonic.json")
    payload["data"][0]["task_id"] = TASK_ID
    body = encode(payload)
    assert verify_webhook(body, current_headers(body), SECRET, now=TS).task_id == TASK_ID


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'"text"', id="string"),
        pytest.param(encode({"code": 200, "data": []}), id="no-task-id"),
        pytest.param(
            encode({"task_id": "t", "code": 200, "data": [{"clip_id": "c", "duration": "abc"}]}),
            id="unreadable-clip",
        ),
        pytest.param(encode({"task_id": "t", "code": 200, "data": "x"}), id="data-not-a-list"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
    ],
)
def test_a_correctly_signed_body_that_is_not_a_task_payload_is_a_bad_body(body: bytes) -> None:
    error = rejected(body, current_headers(body))
    assert error.reason == "bad_body"
    assert "signature is valid" in str(error)


# --- misuse and secrecy ---------------------------------------------------------------------


def test_misuse_raises_value_or_type_errors() -> None:
    body = encode(sonic_payload())
    with pytest.raises(ValueError, match="secret is empty"):
        verify_webhook(body, current_headers(body), "")
    with pytest.raises(TypeError, match="raw body bytes"):
        verify_webhook(body.decode(), current_headers(body), SECRET)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tolerance"):
        verify_webhook(body, current_headers(body), SECRET, tolerance=-1)
    with pytest.raises(ValueError, match="tolerance"):
        verify_webhook(body, current_headers(body), SECRET, tolerance=float("nan"))
    with pytest.raises(ValueError, match="secret is empty"):
        WebhookReceiver("")
    with pytest.raises(ValueError, match="remember"):
        WebhookReceiver(SECRET, remember=0)


def failures() -> list[tuple[bytes, dict[str, str], float]]:
    """One delivery for every reason, each carrying the secret's own signature somewhere."""
    good = encode(sonic_payload())
    headers = current_headers(good)
    return [
        (good, {}, TS),
        (good + b"x", headers, TS),
        (good, {k: v for k, v in headers.items() if k != "X-Webhook-Timestamp"}, TS),
        (good, {**headers, "X-Webhook-Timestamp": "abc"}, TS),
        (good, headers, TS + 1000),
        (good, headers, TS - 1000),
        (b"[]", current_headers(b"[]"), TS),
        (good, {"X-Signature": "00"}, TS),
    ]


def test_no_error_shows_the_secret_or_the_expected_signature() -> None:
    reasons = set()
    for body, headers, now in failures():
        error = rejected(body, headers, now=now)
        reasons.add(error.reason)
        expected_current = hmac_hex(f"{TS}.".encode() + body)
        expected_legacy = hmac_hex(body)
        for shown in (str(error), repr(error), repr(error.args), repr(error.__dict__)):
            assert SECRET not in shown
            assert expected_current not in shown
            assert expected_legacy not in shown
    assert len(reasons) == 7  # every reason was exercised


def test_verification_errors_are_musicapi_errors_and_pickle() -> None:
    body = encode(sonic_payload())
    error = rejected(body, current_headers(body), now=TS + 1000)
    assert isinstance(error, MusicAPIError)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is WebhookVerificationError
    assert (copy.reason, str(copy)) == ("stale_timestamp", str(error))


# --- properties -----------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        "X-Webhook-Signature",
        "x-webhook-timestamp",
        "X-Signature",
        "X-Webhook-Id",
        "X-Webhook-Event",
        "Content-Type",
        "other",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=200),
    headers=st.dictionaries(HEADER_NAMES, st.text(max_size=80), max_size=6),
    now=st.floats(allow_nan=False, allow_infinity=False),
)
def test_arbitrary_input_raises_only_verification_errors(
    body: bytes, headers: dict[str, str], now: float
) -> None:
    with contextlib.suppress(WebhookVerificationError):
        verify_webhook(body, headers, SECRET, now=now)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.dictionaries(
        st.sampled_from(["task_id", "code", "data", "type", "status", "platform", "message"]),
        JSON,
    ),
    legacy=st.booleans(),
)
def test_a_signed_json_object_is_an_event_or_a_bad_body(
    payload: dict[str, Any], legacy: bool
) -> None:
    body = encode(payload)
    headers = sign_webhook(body, SECRET, timestamp=TS, legacy=legacy)
    outcome: WebhookEvent | WebhookVerificationError
    try:
        outcome = verify_webhook(body, headers, SECRET, now=TS)
    except WebhookVerificationError as error:
        outcome = error
    if isinstance(outcome, WebhookVerificationError):
        assert outcome.reason == "bad_body"
    else:
        assert outcome.task_id
        assert outcome.task.task_id == outcome.task_id


@settings(max_examples=200, deadline=None)
@given(data=st.data(), legacy=st.booleans())
def test_changing_any_byte_breaks_the_signature(data: st.DataObject, legacy: bool) -> None:
    body = encode(sonic_payload())
    index = data.draw(st.integers(0, len(body) - 1))
    delta = data.draw(st.integers(1, 255))
    changed = body[:index] + bytes([(body[index] + delta) % 256]) + body[index + 1 :]
    headers = sign_webhook(body, SECRET, timestamp=TS, legacy=legacy)
    assert rejected(changed, headers).reason == "bad_signature"


# --- the receiver ---------------------------------------------------------------------------


def delivery(
    payload: Any | None = None, *, event_id: str = "evt-1", legacy: bool = False, ts: int = TS
) -> tuple[bytes, dict[str, str]]:
    """A signed delivery; a legacy one carries no event id, as MusicAPI's legacy scheme."""
    body = encode(sonic_payload() if payload is None else payload)
    shown_id = None if legacy else event_id
    return body, sign_webhook(body, SECRET, timestamp=ts, event_id=shown_id, legacy=legacy)


def receiver(**kwargs: Any) -> tuple[WebhookReceiver, list[WebhookEvent]]:
    seen: list[WebhookEvent] = []
    kwargs.setdefault("on_event", seen.append)
    kwargs.setdefault("clock", lambda: TS)
    return WebhookReceiver(SECRET, **kwargs), seen


def answer(response: WebhookResponse) -> tuple[int, Any]:
    assert response.headers["content-type"] == "application/json"
    return response.status, json.loads(response.body)


@pytest.mark.anyio
async def test_a_new_event_is_accepted_once_and_a_replay_is_a_duplicate() -> None:
    hook, seen = receiver()
    body, headers = delivery()
    assert answer(await hook.handle(body, headers)) == (200, {"status": "accepted"})
    resent = sign_webhook(body, SECRET, timestamp=TS + 60, event_id="evt-1")  # re-signed retry
    assert answer(await hook.handle(body, resent)) == (200, {"status": "duplicate"})
    assert [e.task_id for e in seen] == [TASK_ID]
    stats = hook.statistics()
    assert (stats.accepted, stats.duplicate, stats.rejected_total, stats.remembered) == (1, 1, 0, 1)


@pytest.mark.anyio
async def test_a_bad_delivery_changes_nothing() -> None:
    hook, seen = receiver()
    body, headers = delivery()
    forged = {**headers, "X-Webhook-Signature": "sha256=" + "ab" * 32}
    assert answer(await hook.handle(body, forged)) == (401, {"error": "bad_signature"})
    assert answer(await hook.handle(body, {})) == (401, {"error": "missing_signature"})
    assert seen == []
    # The forged copy did not burn the event id: the genuine delivery is accepted.
    assert (await hook.handle(body, headers)).status == 200
    assert len(seen) == 1
    assert hook.statistics().rejected == {"bad_signature": 1, "missing_signature": 1}


@pytest.mark.anyio
async def test_stale_future_and_unreadable_deliveries_get_4xx() -> None:
    hook, seen = receiver()
    body, _ = delivery()
    stale = sign_webhook(body, SECRET, timestamp=TS - 301)
    future = sign_webhook(body, SECRET, timestamp=TS + 301)
    assert answer(await hook.handle(body, stale)) == (401, {"error": "stale_timestamp"})
    assert answer(await hook.handle(body, future)) == (401, {"error": "future_timestamp"})
    junk = b"<html>"
    assert answer(await hook.handle(junk, sign_webhook(junk, SECRET, timestamp=TS))) == (
        400,
        {"error": "bad_body"},
    )
    assert seen == []


@pytest.mark.anyio
async def test_the_receiver_clock_defaults_to_the_wall_clock() -> None:
    hook = WebhookReceiver(SECRET)
    body = encode(sonic_payload())
    assert (await hook.handle(body, sign_webhook(body, SECRET))).status == 200
    old = sign_webhook(body, SECRET, timestamp=TS - 10**6)
    assert (await hook.handle(body, old)).status == 401


@pytest.mark.anyio
async def test_legacy_deliveries_deduplicate_by_body() -> None:
    hook, seen = receiver()
    body, headers = delivery(legacy=True)
    assert answer(await hook.handle(body, headers))[1] == {"status": "accepted"}
    assert answer(await hook.handle(body, headers))[1] == {"status": "duplicate"}
    other, other_headers = delivery(sonic_payload(task_id="another"), legacy=True)
    assert answer(await hook.handle(other, other_headers))[1] == {"status": "accepted"}
    assert [e.task_id for e in seen] == [TASK_ID, "another"]


@pytest.mark.anyio
async def test_a_failing_callback_answers_500_and_the_retry_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[str | None] = []

    def flaky(event: WebhookEvent) -> None:
        attempts.append(event.id)
        if len(attempts) == 1:
            raise RuntimeError("database down")

    hook, _ = receiver(on_event=flaky)
    body, headers = delivery()
    with caplog.at_level(logging.ERROR, logger="musicapi_async"):
        assert answer(await hook.handle(body, headers)) == (500, {"error": "callback_failed"})
    assert "database down" in caplog.text  # the traceback is logged...
    assert SECRET not in caplog.text  # ...never the secret
    assert (await hook.handle(body, headers)).status == 200  # not remembered: retried
    assert (await hook.handle(body, headers)).status == 200  # now a duplicate
    assert attempts == ["evt-1", "evt-1"]
    stats = hook.statistics()
    assert (stats.accepted, stats.duplicate, stats.failed) == (1, 1, 1)


@pytest.mark.anyio
async def test_coroutine_callbacks_are_awaited_and_subscribers_called() -> None:
    order: list[str] = []

    async def first(event: WebhookEvent) -> None:
        await anyio.sleep(1)
        order.append("on_event")

    hook, _ = receiver(on_event=first)
    unsubscribe = hook.subscribe(lambda e: order.append("subscriber"))
    body, headers = delivery()
    assert (await hook.handle(body, headers)).status == 200
    assert order == ["on_event", "subscriber"]
    unsubscribe()
    unsubscribe()  # twice is harmless
    body, headers = delivery(sonic_payload(task_id="t-2"), event_id="evt-2")
    await hook.handle(body, headers)
    assert order == ["on_event", "subscriber", "on_event"]


@pytest.mark.anyio
async def test_every_callback_runs_even_when_one_fails() -> None:
    got: list[str] = []

    def boom(event: WebhookEvent) -> None:
        raise ValueError("boom")

    hook, _ = receiver(on_event=boom)
    hook.subscribe(lambda e: got.append(e.task_id))
    body, headers = delivery()
    assert (await hook.handle(body, headers)).status == 500
    assert got == [TASK_ID]


@pytest.mark.anyio
@pytest.mark.parametrize("first_fails", [False, True])
@pytest.mark.parametrize("copy_id", [None, "evt-forged"], ids=["same-id", "another-id"])
async def test_a_copy_arriving_during_the_first_waits_for_its_outcome(
    first_fails: bool, copy_id: str | None
) -> None:
    """A copy (same id, or replayed under another id) arriving while the first is handled
    waits for its outcome: "duplicate" if it succeeded, handled afresh if it failed."""
    release = anyio.Event()
    calls = 0

    async def slow(event: WebhookEvent) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await release.wait()
            if first_fails:
                raise RuntimeError("first copy failed")

    hook, _ = receiver(on_event=slow)
    body, headers = delivery()
    statuses: dict[str, Any] = {}

    async def send(name: str, sent: dict[str, str]) -> None:
        statuses[name] = answer(await hook.handle(body, sent))

    async with anyio.create_task_group() as tg:
        tg.start_soon(send, "first", headers)
        await anyio.sleep(1)
        tg.start_soon(send, "copy", headers if copy_id is None else with_id(headers, copy_id))
        await anyio.sleep(1)
        assert "copy" not in statuses  # waiting, not answered "duplicate" early
        release.set()
    if first_fails:
        assert statuses == {
            "first": (500, {"error": "callback_failed"}),
            "copy": (200, {"status": "accepted"}),
        }
        assert calls == 2
    else:
        assert statuses == {
            "first": (200, {"status": "accepted"}),
            "copy": (200, {"status": "duplicate"}),
        }
        assert calls == 1


@pytest.mark.anyio
async def test_a_cancelled_delivery_does_not_block_the_next_copy() -> None:
    calls: list[str | None] = []

    async def hangs_once(event: WebhookEvent) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            await anyio.sleep_forever()

    hook, _ = receiver(on_event=hangs_once)
    body, headers = delivery()
    with anyio.move_on_after(5) as scope:
        await hook.handle(body, headers)
    assert scope.cancelled_caught
    with anyio.fail_after(1):
        assert answer(await hook.handle(body, headers))[1] == {"status": "accepted"}
    assert calls == ["evt-1", "evt-1"]


@pytest.mark.anyio
async def test_memory_is_bounded_least_recently_seen_first() -> None:
    hook, seen = receiver(remember=2)

    def event(event_id: str) -> tuple[bytes, dict[str, str]]:
        return delivery(sonic_payload(task_id=event_id), event_id=event_id)

    for event_id in ("a", "b", "a", "c"):  # "a" seen again: "b" is now the oldest
        await hook.handle(*event(event_id))
    assert hook.statistics().remembered == 2
    assert answer(await hook.handle(*event("a")))[1] == {"status": "duplicate"}
    assert answer(await hook.handle(*event("b")))[1] == {"status": "accepted"}
    assert [e.id for e in seen] == ["a", "b", "c", "b"]


def test_the_receiver_repr_and_statistics_never_show_the_secret() -> None:
    hook, _ = receiver()
    assert SECRET not in repr(hook)
    assert SECRET not in repr(hook.statistics())
    assert hook.tolerance == 300.0
    assert "WebhookReceiver(" in repr(hook)


@pytest.mark.anyio
async def test_responses_never_show_the_secret() -> None:
    for body, headers, now in failures():
        hook, seen = receiver(clock=lambda now=now: now)
        response = await hook.handle(body, headers)
        assert seen == []
        assert SECRET.encode() not in response.body
        assert not response.accepted


# --- replays that change what the signature does not cover ----------------------------------


def with_id(headers: dict[str, str], event_id: str) -> dict[str, str]:
    """The same delivery with another (unsigned) event id in both id headers."""
    return {**headers, "X-Webhook-Id": event_id, "Idempotency-Key": event_id}


@pytest.mark.anyio
async def test_a_replay_with_a_changed_event_id_is_still_a_duplicate() -> None:
    hook, seen = receiver()
    body, headers = delivery()
    assert answer(await hook.handle(body, headers))[1] == {"status": "accepted"}
    for forged in ("evt-forged", "evt-forged-2"):
        assert answer(await hook.handle(body, with_id(headers, forged)))[1] == {
            "status": "duplicate"
        }
    no_id = {k: v for k, v in headers.items() if k not in ("X-Webhook-Id", "Idempotency-Key")}
    assert answer(await hook.handle(body, no_id))[1] == {"status": "duplicate"}
    shouted = {**headers, "X-Webhook-Signature": headers["X-Webhook-Signature"].upper()}
    assert answer(await hook.handle(body, with_id(shouted, "evt-3")))[1] == {"status": "duplicate"}
    assert len(seen) == 1
    assert hook.statistics().remembered == 1


@pytest.mark.anyio
async def test_a_legacy_replay_with_an_invented_event_id_is_still_a_duplicate() -> None:
    hook, seen = receiver()
    body, headers = delivery(legacy=True)
    assert answer(await hook.handle(body, headers))[1] == {"status": "accepted"}
    for invented in ("evt-a", "evt-b", "evt-c"):
        assert answer(await hook.handle(body, with_id(headers, invented)))[1] == {
            "status": "duplicate"
        }
    assert len(seen) == 1


@pytest.mark.anyio
async def test_a_legacy_delivery_is_keyed_by_its_body_even_when_it_carries_an_id() -> None:
    hook, seen = receiver()
    body, headers = delivery(legacy=True)
    assert answer(await hook.handle(body, with_id(headers, "evt-1")))[1] == {"status": "accepted"}
    assert answer(await hook.handle(body, headers))[1] == {"status": "duplicate"}
    # The unsigned id of a legacy delivery is no key: another body under it is a new event.
    other, other_headers = delivery(sonic_payload(task_id="another"), legacy=True)
    assert answer(await hook.handle(other, with_id(other_headers, "evt-1")))[1] == {
        "status": "accepted"
    }
    assert [e.task_id for e in seen] == [TASK_ID, "another"]


@pytest.mark.anyio
async def test_a_duplicate_does_not_burn_the_id_it_was_replayed_with() -> None:
    """Only accepted events add keys: a replay cannot make a future event look seen."""
    hook, seen = receiver()
    body, headers = delivery(event_id="evt-1")
    await hook.handle(body, headers)
    assert answer(await hook.handle(body, with_id(headers, "evt-2")))[1] == {"status": "duplicate"}
    later = delivery(sonic_payload(task_id="another"), event_id="evt-2", ts=TS + 1)
    assert answer(await hook.handle(*later))[1] == {"status": "accepted"}
    assert [e.id for e in seen] == ["evt-1", "evt-2"]


@pytest.mark.anyio
async def test_a_failed_callback_leaves_neither_the_id_nor_the_signature_remembered() -> None:
    calls: list[str | None] = []

    def fails_once(event: WebhookEvent) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    hook, _ = receiver(on_event=fails_once)
    body, headers = delivery()
    assert (await hook.handle(body, headers)).status == 500
    assert hook.statistics().remembered == 0
    assert answer(await hook.handle(body, with_id(headers, "evt-9")))[1] == {"status": "accepted"}
    assert answer(await hook.handle(body, headers))[1] == {"status": "duplicate"}
    assert calls == ["evt-1", "evt-9"]


@pytest.mark.anyio
async def test_memory_counts_events_not_keys_and_forgets_all_keys_of_an_event() -> None:
    hook, seen = receiver(remember=2)
    a, b, c = (delivery(sonic_payload(task_id=t), event_id=t) for t in ("a", "b", "c"))
    await hook.handle(*a)
    await hook.handle(*b)
    assert hook.statistics().remembered == 2  # two events, four keys
    # Seen again through its signature alone: "a" is refreshed, "b" is now the oldest.
    assert answer(await hook.handle(a[0], with_id(a[1], "x")))[1] == {"status": "duplicate"}
    await hook.handle(*c)
    assert hook.statistics().remembered == 2
    assert answer(await hook.handle(*a))[1] == {"status": "duplicate"}
    # "b" is forgotten under both its keys.
    assert answer(await hook.handle(b[0], with_id(b[1], "y")))[1] == {"status": "accepted"}
    assert [e.id for e in seen] == ["a", "b", "c", "y"]


# --- allow_legacy=False ---------------------------------------------------------------------


@pytest.mark.parametrize("legacy_header", [True, False])
def test_with_allow_legacy_false_an_unsigned_or_legacy_delivery_is_refused(
    legacy_header: bool,
) -> None:
    body = encode(sonic_payload())
    headers = {"X-Signature": hmac_hex(body)} if legacy_header else {}
    error = rejected(body, headers, allow_legacy=False)
    assert error.reason == "missing_signature"
    assert "legacy" in str(error)
    assert "disabled" in str(error)
    assert "allow_legacy" in str(error)
    # The current scheme is unaffected.
    event = verify_webhook(body, current_headers(body), SECRET, now=TS, allow_legacy=False)
    assert event.scheme == "signature"


def test_legacy_stays_accepted_by_default() -> None:
    body = encode(sonic_payload())
    assert verify_webhook(body, {"X-Signature": hmac_hex(body)}, SECRET).scheme == "legacy"


@pytest.mark.anyio
async def test_a_receiver_with_allow_legacy_false_answers_401_to_a_legacy_delivery() -> None:
    hook, seen = receiver(allow_legacy=False)
    assert hook.allow_legacy is False
    assert receiver()[0].allow_legacy is True
    assert answer(await hook.handle(*delivery(legacy=True))) == (
        401,
        {"error": "missing_signature"},
    )
    assert (await hook.handle(*delivery())).status == 200
    assert len(seen) == 1
    assert hook.statistics().rejected == {"missing_signature": 1}


def test_allow_legacy_is_keyword_only_and_a_bool() -> None:
    body = encode(sonic_payload())
    with pytest.raises(TypeError, match="allow_legacy"):
        verify_webhook(body, {}, SECRET, allow_legacy="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="allow_legacy"):
        WebhookReceiver(SECRET, allow_legacy=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WebhookReceiver(SECRET, 300.0, None, 10, None, False)  # type: ignore[call-arg]


# --- absurd tolerances and timestamps -------------------------------------------------------


def test_the_tolerance_must_be_finite() -> None:
    body = encode(sonic_payload())
    for infinite in (float("inf"), float("-inf"), 10**400):
        with pytest.raises(ValueError, match="tolerance"):
            verify_webhook(body, current_headers(body), SECRET, tolerance=infinite)
        with pytest.raises(ValueError, match="tolerance"):
            WebhookReceiver(SECRET, tolerance=infinite)


@pytest.mark.parametrize("stamp", [999_999_999_999, 253_402_300_800])  # year 33658; year 10000
def test_a_correctly_signed_absurd_timestamp_is_a_bad_timestamp_not_a_crash(stamp: int) -> None:
    body = encode(sonic_payload())
    headers = current_headers(body, ts=stamp)
    error = rejected(body, headers, tolerance=1e13)
    assert error.reason == "bad_timestamp"
    assert isinstance(error.__cause__, (ValueError, OverflowError, OSError))
    # Still the signature first: a forger learns nothing about the timestamp.
    forged = current_headers(body, ts=stamp, secret="guess")
    assert rejected(body, forged, tolerance=1e13).reason == "bad_signature"


@pytest.mark.anyio
async def test_a_receiver_answers_401_to_an_absurd_timestamp() -> None:
    hook, seen = receiver(tolerance=1e13)
    body = encode(sonic_payload())
    response = await hook.handle(body, current_headers(body, ts=999_999_999_999))
    assert answer(response) == (401, {"error": "bad_timestamp"})
    assert seen == []


# --- what a traceback keeps -----------------------------------------------------------------


def bad_signature_error(body: bytes, headers: dict[str, str]) -> WebhookVerificationError:
    try:
        verify_webhook(body, headers, SECRET, now=TS)
    except WebhookVerificationError as error:
        return error
    raise AssertionError("the delivery was accepted")


@pytest.mark.parametrize("legacy", [False, True])
def test_no_frame_of_a_bad_signature_traceback_holds_the_valid_signature(legacy: bool) -> None:
    """Error trackers record frame locals: only ``secret`` itself, a parameter, is there."""
    body = encode(sonic_payload())
    if legacy:
        valid = hmac_hex(body)
        headers = {"X-Signature": "0" * 64}
    else:
        valid = hmac_hex(f"{TS}.".encode() + body)
        headers = {**current_headers(body), "X-Webhook-Signature": "sha256=" + "0" * 64}
    error = bad_signature_error(body, headers)
    assert error.reason == "bad_signature"
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    assert len(frames) >= 2  # down into the library's frames
    for frame in frames:
        for name, value in frame.f_locals.items():
            shown = repr(value)
            assert valid not in shown, (frame.f_code.co_name, name)
            assert valid.upper() not in shown, (frame.f_code.co_name, name)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_copy_handled_in_another_event_loop_waits_for_the_first_and_is_a_duplicate(
    backend: str,
) -> None:
    """One receiver, two event loops in two threads (Django under WSGI runs each async view
    so): a retry arriving while the first copy's callback still runs waited on the other
    loop's Event and hung for ever (asyncio), or broke the first request (trio)."""
    inside, release, asked = threading.Event(), threading.Event(), threading.Event()

    async def slow_store(event: WebhookEvent) -> None:
        inside.set()
        await anyio.to_thread.run_sync(release.wait)

    receiver = WebhookReceiver(SECRET, on_event=slow_store)
    body = b'{"task_id": "t-1", "code": 200, "data": [{"state": "succeeded"}]}'
    headers = sign_webhook(body, SECRET, event_id="evt-1")
    answers: dict[str, object] = {}

    def deliver(name: str, before: threading.Event | None = None) -> None:
        async def go() -> None:
            if before is not None:
                before.set()
            with anyio.move_on_after(30):  # a bound for the hang, should it come back
                answers[name] = (await receiver.handle(body, headers)).body

        try:
            anyio.run(go, backend=backend)
        except BaseException as exc:  # recorded: the assertion below shows it
            answers[name] = exc

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    assert inside.wait(5)
    retry = threading.Thread(target=deliver, args=("retry", asked))
    retry.start()
    assert asked.wait(5)
    time.sleep(0.1)  # let the retry reach its wait (the outcome does not depend on it)
    release.set()
    for thread in (first, retry):
        thread.join(5)  # liveness, not speed: a hung retry waited out its 30 s bound
        assert not thread.is_alive()
    assert answers == {"first": b'{"status":"accepted"}', "retry": b'{"status":"duplicate"}'}
