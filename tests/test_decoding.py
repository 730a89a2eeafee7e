"""Decoding rules pinned by a review of ``musicapi_async._serde``: null seeds, a Producer or
Nuro status beside a ``type``, timestamps read alike on every Python, string enums that
format as their values, a string ``code``, results without their documented value, error
messages that quote server values scrubbed and cut, and models that need an object."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import musicapi_async
from musicapi_async import (
    BadRequestError,
    ClipState,
    Midi,
    ResponseValidationError,
    TaskFailedError,
    TaskFamily,
    TaskRef,
    TaskStatus,
    _serde,
)
from musicapi_async._serde import (
    error_text,
    parse_aligned_lyrics,
    parse_credits,
    parse_lyrics,
    parse_midi,
    parse_submit,
    parse_task,
    parse_vox,
)
from tests._recording import Reply, make_client

SONIC = TaskRef("t-1", TaskFamily.SONIC)
PRODUCER = TaskRef("p-1", TaskFamily.PRODUCER)
NURO = TaskRef("n-1", TaskFamily.NURO)

#: A signed CDN link: its token must never reach a message.
SECRET_URL = "https://cdn1.suno.ai/a.mp3?token=SECRET123"


def _snapshot(**clip: Any) -> dict[str, Any]:
    return {"code": 200, "data": [{"clip_id": "c1", "state": "succeeded", **clip}]}


# --- 1. a null seed ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [None, "", "  "], ids=["null", "empty", "blank"])
@pytest.mark.parametrize("ref", [SONIC, PRODUCER], ids=["sonic", "producer"])
def test_a_null_or_blank_seed_reads_as_none(ref: TaskRef, seed: object) -> None:
    """Every clip field but clip_id and state is nullable: "seed": null must not fail the
    poll of a finished task."""
    body = {"code": 200, "status": "SUCCESS", "data": [{"clip_id": "c1", "seed": seed}]}
    task = parse_task(ref, 200, body)
    assert task.clips[0].seed is None
    assert task.clips[0].raw["seed"] == seed


@pytest.mark.anyio
async def test_a_producer_result_with_a_null_seed_is_a_result() -> None:
    """The whole path: a finished Producer task whose items carry "seed": null."""
    answer = {
        "code": 200,
        "status": "SUCCESS",
        "message": "success",
        "data": [
            {
                "clip_id": "c1",
                "seed": None,
                "sound": None,
                "audio_url": "https://musicapi-cdn.b-cdn.net/producer/c1.m4a",
            }
        ],
    }
    client, _ = make_client(Reply(answer))
    task = await client.producer.get_task("p-1")
    assert task.status is TaskStatus.SUCCEEDED
    assert task.audio_urls == ("https://musicapi-cdn.b-cdn.net/producer/c1.m4a",)


# --- 2. a Producer or Nuro status beside a type -----------------------------------------------


@pytest.mark.parametrize(
    ("ref", "body", "status", "clips"),
    [
        (
            NURO,
            {
                "task_id": "n-1",
                "type": "vocal",
                "status": "succeeded",
                "progress": 100,
                "audio_url": "https://cdn.musicapi.ai/x.wav",
            },
            TaskStatus.SUCCEEDED,
            1,
        ),
        (NURO, {"type": "bgm", "status": "running", "progress": 40}, TaskStatus.RUNNING, 1),
        (
            PRODUCER,
            {"code": 200, "type": "create_music", "status": "RUNNING", "data": []},
            TaskStatus.RUNNING,
            0,
        ),
        (
            PRODUCER,
            {"code": 200, "type": "create_music", "status": "PENDING", "data": None},
            TaskStatus.PENDING,
            0,
        ),
        (
            PRODUCER,
            {
                "code": 200,
                "type": "create_music",
                "status": "SUCCESS",
                "data": [{"clip_id": "c1", "audio_url": "https://x/c1.m4a"}],
            },
            TaskStatus.SUCCEEDED,
            1,
        ),
        (PRODUCER, {"type": "not_ready", "status": "RUNNING"}, TaskStatus.RUNNING, 0),
    ],
    ids=[
        "nuro-echoed-type-succeeded",
        "nuro-echoed-type-running",
        "producer-type-running-empty",
        "producer-type-pending-null",
        "producer-type-success",
        "producer-not-ready-type-running",
    ],
)
def test_a_producer_or_nuro_status_decides_over_a_type(
    ref: TaskRef, body: dict[str, Any], status: TaskStatus, clips: int
) -> None:
    """CONTRACT §15 rule 2: Producer's and Nuro's status decide; their type (Nuro echoes the
    request's, Producer may name its operation) is no failure."""
    task = parse_task(ref, 200, body)
    assert task.status is status
    assert task.error_type is None
    assert len(task.clips) == clips


@pytest.mark.parametrize(
    ("ref", "body", "error_type"),
    [
        (PRODUCER, {"type": "create_music", "status": "FAILED", "message": "refunded"}, None),
        (PRODUCER, {"type": "timeout", "status": "FAILED", "message": "refunded"}, "timeout"),
        (NURO, {"type": "vocal", "status": "failed", "error": "refunded"}, None),
        (NURO, {"type": "api_error", "status": "failed", "error": "refunded"}, "api_error"),
    ],
    ids=["producer-operation", "producer-failure-type", "nuro-echo", "nuro-failure-type"],
)
def test_a_failed_status_keeps_only_a_documented_failure_type(
    ref: TaskRef, body: dict[str, Any], error_type: str | None
) -> None:
    task = parse_task(ref, 200, body)
    assert task.status is TaskStatus.FAILED
    assert task.error == "refunded"
    assert task.error_type == error_type


@pytest.mark.parametrize("status", [None, 3, ["RUNNING"]], ids=["null", "number", "array"])
@pytest.mark.parametrize("ref", [PRODUCER, NURO], ids=["producer", "nuro"])
def test_without_a_string_status_a_type_still_means_failure(ref: TaskRef, status: object) -> None:
    body = {"type": "failed", "status": status, "message": "generation failed"}
    task = parse_task(ref, 200, body)
    assert task.status is TaskStatus.FAILED
    assert task.error_type == "failed"


def test_a_sonic_failure_type_wins_over_a_status() -> None:
    """Sonic has no task-level status: its documented failure answers stay failures."""
    task = parse_task(SONIC, 200, {"type": "timeout", "status": "succeeded", "error": "slow"})
    assert task.status is TaskStatus.FAILED
    assert task.error_type == "timeout"


# --- 3. timestamps ----------------------------------------------------------------------------

UTC_INSTANT = datetime(2025, 10, 12, 13, 13, 2, 488000, tzinfo=timezone.utc)


class _NoFromIsoformat(datetime):
    """A datetime whose fromisoformat reads nothing, as 3.10's reads no "+0000", "+00" or
    basic form: the SDK's reading must not depend on the interpreter's."""

    @classmethod
    def fromisoformat(cls, date_string: str) -> _NoFromIsoformat:
        raise ValueError(f"Invalid isoformat string: {date_string!r}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-12T13:13:02.488Z", UTC_INSTANT),
        ("2025-10-12T13:13:02.488+0000", UTC_INSTANT),
        ("2025-10-12 13:13:02.488+00", UTC_INSTANT),
        ("2025-10-12T13:13:02.488+00:00", UTC_INSTANT),
        ("2025-10-12t13:13:02.488z", UTC_INSTANT),
        ("2025-10-12T15:13:02.488+0200", UTC_INSTANT),
        ("2025-10-12T07:43:02.488-05:30", UTC_INSTANT),
        ("2025-10-12T13:13:02,488Z", UTC_INSTANT),
        ("2025-10-12T13:13:02.4880009Z", UTC_INSTANT),
        ("20251012T131302.488Z", UTC_INSTANT),
        ("20251012T151302.488+0200", UTC_INSTANT),
        ("2025-10-12T13:13Z", UTC_INSTANT.replace(second=0, microsecond=0)),
        ("20251012T131302Z", UTC_INSTANT.replace(microsecond=0)),
        ("2025-10-12", datetime(2025, 10, 12, tzinfo=timezone.utc)),
    ],
)
def test_created_at_reads_alike_whatever_the_interpreter(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: datetime
) -> None:
    """Offsets as +0000, +00, +HH:MM or Z, the basic form: one reading on 3.10 and 3.11."""
    monkeypatch.setattr(_serde, "datetime", _NoFromIsoformat)
    created = parse_task(SONIC, 200, _snapshot(created_at=text)).clips[0].created_at
    assert created == expected
    assert created is not None
    assert created.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "created_at",
    [
        "last tuesday",
        "Sun, 12 Oct 2025 13:13:02 GMT",
        "2025-13-12T13:13:02Z",
        "2025-10-12T13:13:02+25:00",
        "2025-10-12T13:13:02+05:75",
        "0001-01-01T00:00:00+05:00",
        "2025-10-12T13:13:02Z " + SECRET_URL,
        1697116382,
        True,
        ["2025-10-12"],
    ],
)
def test_an_unreadable_created_at_reads_as_none_and_stays_in_raw(created_at: object) -> None:
    """created_at only says when: an unreadable one must not fail the snapshot of a
    finished, paid task."""
    body = _snapshot(created_at=created_at, audio_url="https://cdn1.suno.ai/c1.mp3")
    task = parse_task(SONIC, 200, body)
    assert task.status is TaskStatus.SUCCEEDED
    assert task.clips[0].created_at is None
    assert task.clips[0].raw["created_at"] == created_at


def test_a_required_timestamp_names_the_value_scrubbed_and_cut() -> None:
    """A timestamp that must be read quotes the server's value without its URL token."""
    text = SECRET_URL + " " + "x" * 1000
    with pytest.raises(ResponseValidationError) as refused:
        _serde._structure(text, datetime, "$.when", {"when": text})
    message = str(refused.value)
    assert "SECRET" not in message
    assert "expected an ISO-8601 timestamp" in message
    assert len(message) < 400


# --- 4. enums format as their values --------------------------------------------------------


@pytest.mark.parametrize(
    "member", [*TaskFamily, *TaskStatus, *ClipState], ids=lambda member: repr(member)
)
def test_an_enum_member_reads_as_its_value(member: TaskFamily | TaskStatus | ClipState) -> None:
    """str(), f-strings and %s give the value on every Python, as 3.11's StrEnum does."""
    assert str(member) == member.value
    assert f"{member}" == member.value
    assert "%s" % member == member.value  # noqa: UP031
    assert f"{member:>12}" == f"{member.value:>12}"


@pytest.mark.parametrize("family", list(TaskFamily))
def test_a_family_written_with_an_f_string_reads_back(family: TaskFamily) -> None:
    ref = TaskRef("3f1c", family)
    row = (ref.task_id, f"{ref.family}")  # an INSERT built with an f-string
    assert TaskRef(*row) == ref


# --- 5. a string code -------------------------------------------------------------------------


@pytest.mark.parametrize("code", [200, "200", " 200 "])
def test_a_producer_answer_without_status_with_code_200_is_done(code: object) -> None:
    """CONTRACT §1: code is int | str; the spec's Producer shape with "200" is a result."""
    body = {"code": code, "message": "success", "data": [{"clip_id": "c1", "audio_url": "u"}]}
    task = parse_task(PRODUCER, 200, body)
    assert task.status is TaskStatus.SUCCEEDED
    assert task.clips[0].state is ClipState.SUCCEEDED


@pytest.mark.parametrize("code", [True, "404", 404, None, "2000"])
def test_a_producer_answer_without_status_or_code_200_is_not_done(code: object) -> None:
    body = {"code": code, "message": "success", "data": [{"clip_id": "c1", "audio_url": "u"}]}
    assert not parse_task(PRODUCER, 200, body).is_terminal


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("SUCCESS", TaskStatus.SUCCEEDED),
        ("succeeded", TaskStatus.SUCCEEDED),
        ("Succeeded", TaskStatus.SUCCEEDED),
        ("failed", TaskStatus.FAILED),
        ("running", TaskStatus.RUNNING),
    ],
)
def test_a_producer_status_in_either_familys_spelling_is_read(
    status: str, expected: TaskStatus
) -> None:
    """A status the SDK knows decides over the answer's other fields, and is read with the
    same table: a Producer ``succeeded`` once decided, then read as unknown, and the task
    was polled to its deadline with its audio in hand."""
    body = {"code": 200, "status": status, "data": [{"clip_id": "c1", "audio_url": "u"}]}
    assert parse_task(PRODUCER, 200, body).status is expected


def test_a_nuro_bad_request_failure_keeps_its_type() -> None:
    """CONTRACT §10: ``bad_request`` is one of Nuro's refunded failure types."""
    body = {"status": "failed", "type": "bad_request", "error": "Input language not supported"}
    task = parse_task(NURO, 200, body)
    assert (task.status, task.error_type) == (TaskStatus.FAILED, "bad_request")


# --- 6. results without their documented value --------------------------------------------


@pytest.mark.parametrize("fields", [{"instruments": []}, {"midi_url": None, "instruments": []}])
def test_a_midi_result_without_a_midi_url_reads_as_none(fields: dict[str, Any]) -> None:
    """midi_url is optional when the instruments came: absent reads like null."""
    midi = parse_midi({"code": 200, "data": fields})
    assert midi.midi_url is None
    assert Midi().midi_url is None


@pytest.mark.parametrize(
    "body",
    [
        {"code": 200, "message": "success"},
        {"code": 200, "message": "success", "data": None},
        {"code": 200, "data": {}},
        {"code": 200, "data": {"midi_url": None}},
    ],
    ids=["no-data", "null-data", "empty", "null-url"],
)
def test_a_midi_result_with_neither_url_nor_instruments_raises(body: Any) -> None:
    """A paid call whose answer holds no MIDI at all is no result, as for bpm, wav and vox."""
    with pytest.raises(ResponseValidationError) as refused:
        parse_midi(body)
    assert refused.value.body is body
    assert "expected midi_url or instruments" in str(refused.value)


@pytest.mark.parametrize(
    ("body", "field_path"),
    [
        ({"code": 200, "message": "success"}, "$.alignment"),
        ({"code": 200, "data": {"aligned_words": [{"word": "a"}]}}, "$.data.alignment"),
        ({"code": 200, "data": {"alignment": None}}, "$.data.alignment"),
        ({"code": 200, "data": {"alignment": "hello"}}, "$.data.alignment"),
        ({"code": 200, "data": {"alignment": {"word": "hi"}}}, "$.data.alignment"),
    ],
    ids=["missing", "other-key", "null", "string", "object"],
)
def test_aligned_lyrics_without_an_alignment_array_raise(body: Any, field_path: str) -> None:
    """A paid call whose answer lacks its words is no result, as for bpm, wav and vox."""
    with pytest.raises(ResponseValidationError) as refused:
        parse_aligned_lyrics(body)
    assert refused.value.field_path == field_path
    assert refused.value.body is body
    assert "expected an array of aligned words" in str(refused.value)


def test_aligned_lyrics_with_an_empty_alignment_are_a_result() -> None:
    assert parse_aligned_lyrics({"data": {"alignment": []}}).words == ()


# --- 7. messages quote server values scrubbed and cut -------------------------------------


@pytest.mark.parametrize(
    ("read", "field_path"),
    [
        (lambda v: parse_task(SONIC, 200, _snapshot(duration=v)), "$.data[0].duration"),
        (lambda v: parse_vox({"vox_audio_id": "v", "vocal_start_s": v}), "$.vocal_start_s"),
        (lambda v: parse_credits({"credits": v, "extra_credits": 0}), "$.credits"),
    ],
    ids=["duration", "vox-start", "credits"],
)
@pytest.mark.parametrize(
    "value",
    [SECRET_URL, "see " + SECRET_URL + " " + "y" * 5000, "9" * 400 + " ", "x" * 5000],
    ids=["url", "url-then-long", "too-large", "long"],
)
def test_a_bad_number_is_quoted_scrubbed_and_cut(read: Any, field_path: str, value: str) -> None:
    with pytest.raises(ResponseValidationError) as refused:
        read(value)
    message = str(refused.value)
    assert refused.value.field_path == field_path
    assert "SECRET" not in message
    assert len(message) < 400
    assert "expected a" in message


def test_an_integer_too_large_for_a_float_says_so() -> None:
    """10**400 is a number, but no float: the message says that, not "unknown error"."""
    with pytest.raises(ResponseValidationError) as refused:
        parse_task(SONIC, 200, _snapshot(duration=10**400))
    assert refused.value.field_path == "$.data[0].duration"
    assert "too large for a float" in str(refused.value)
    assert "unknown error" not in str(refused.value)


@pytest.mark.parametrize(
    "step", [SECRET_URL, "upload" * 1000], ids=["url-with-token", "megabyte-name"]
)
def test_a_failed_step_is_quoted_scrubbed_and_cut(step: str) -> None:
    body = {"code": 200, "failed_step": step, "message": "audio rejected"}
    with pytest.raises(ResponseValidationError) as refused:
        parse_submit(body, TaskFamily.SONIC)
    message = str(refused.value)
    assert "SECRET" not in message
    assert len(message) < 400
    assert message.endswith("failed and no task was started: audio rejected")


@pytest.mark.parametrize("key", ["error", "message", "detail"])
def test_the_error_text_of_an_object_body_is_cut(key: str) -> None:
    text = error_text({key: SECRET_URL + " " + "x" * 5_000_000})
    assert text is not None
    assert len(text) <= 500
    assert text.endswith("...")
    assert "SECRET" not in text


def test_a_failed_task_with_a_megabyte_message_raises_a_short_error() -> None:
    task = parse_task(SONIC, 200, {"type": "failed", "error": "x" * 5_000_000})
    with pytest.raises(TaskFailedError) as failed:
        task.raise_for_status()
    assert len(str(failed.value)) < 1000


@pytest.mark.anyio
async def test_an_error_answer_with_a_megabyte_message_raises_a_short_error() -> None:
    client, _ = make_client(Reply({"message": "x" * 5_000_000}, status=400))
    with pytest.raises(BadRequestError) as refused:
        await client.credits.get()
    assert len(str(refused.value)) < 2000


# --- 8. public names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("Sonic", "musicapi_async._sonic"),
        ("Producer", "musicapi_async._producer"),
        ("Nuro", "musicapi_async._nuro"),
        ("CreditsResource", "musicapi_async._credits"),
        ("DOWNLOAD_FORMATS", "musicapi_async._sonic"),
        ("PRODUCER_DOWNLOAD_FORMATS", "musicapi_async._producer"),
        ("ProgressCallback", "musicapi_async._download"),
    ],
)
def test_names_in_public_signatures_are_exported(name: str, module: str) -> None:
    """What client.sonic is, what download() takes: importable from the package."""
    import importlib

    assert name in musicapi_async.__all__
    assert getattr(musicapi_async, name) is getattr(importlib.import_module(module), name)


def test_the_client_resources_are_the_exported_classes() -> None:
    client, _ = make_client()
    assert isinstance(client.sonic, musicapi_async.Sonic)
    assert isinstance(client.producer, musicapi_async.Producer)
    assert isinstance(client.nuro, musicapi_async.Nuro)
    assert isinstance(client.credits, musicapi_async.CreditsResource)


# --- 9. models need an object -------------------------------------------------------------


@pytest.mark.parametrize(
    ("read", "body", "field_path", "got"),
    [
        (parse_lyrics, {"code": 200, "results": ["[Verse]\nHello"]}, "$.results[0]", "a string"),
        (parse_lyrics, {"results": [{"title": "a"}, 7]}, "$.results[1]", "a number"),
        (parse_aligned_lyrics, {"data": {"alignment": [5]}}, "$.data.alignment[0]", "a number"),
        (
            parse_aligned_lyrics,
            {"data": {"alignment": ["lyrics"]}},
            "$.data.alignment[0]",
            "a string",
        ),
    ],
    ids=["lyrics-string", "lyrics-number", "word-number", "word-string"],
)
def test_a_model_from_a_non_object_raises_with_its_path(
    read: Any, body: Any, field_path: str, got: str
) -> None:
    """["text"] is not a list of lyrics objects: no silent empty model."""
    with pytest.raises(ResponseValidationError) as refused:
        read(body)
    assert refused.value.field_path == field_path
    assert re.search(
        f"expected an object, got {got} @ {re.escape(field_path)}$", str(refused.value)
    )


# --- a multi-step call that failed part-way --------------------------------------------------


def test_a_failed_step_gives_its_own_reason_not_the_bare_success_beside_it() -> None:
    body = {
        "code": 200,
        "message": "success",
        "failed_step": "upload",
        "steps": {"upload": {"success": False, "error": "audio matches an existing recording"}},
    }
    with pytest.raises(ResponseValidationError) as caught:
        parse_submit(body, TaskFamily.SONIC)
    assert "step 'upload' failed" in str(caught.value)
    assert "audio matches an existing recording" in str(caught.value)
    assert "uploaded" not in str(caught.value)


@pytest.mark.parametrize("step", ["extend", "sample"])
def test_a_failed_step_is_a_failure_even_beside_a_task_id(step: str) -> None:
    """CONTRACT §4: ``failed_step`` means the call failed, and its ``task_id`` "may be
    missing": one that is there (the upload's own task, say) cannot hold the step's result,
    so it is named in the error rather than returned as if all went well."""
    body = {
        "code": 200,
        "message": "success",
        "task_id": "t-upload",
        "failed_step": step,
        "steps": {"upload": {"success": True}, step: {"success": False, "error": "too short."}},
    }
    with pytest.raises(ResponseValidationError) as caught:
        parse_submit(body, TaskFamily.SONIC)
    message = str(caught.value)
    assert f"step '{step}' failed: too short. It still returned task 't-upload'" in message


def test_a_task_id_given_only_by_the_step_that_started_it_is_taken() -> None:
    steps: dict[str, object] = {
        "upload": {"success": True, "clip_id": "up-1", "task_id": "t-upload"},
        "extend": {"success": True, "task_id": "t-extend"},
    }
    body = {"code": 200, "message": "success", "steps": steps}
    assert parse_submit(body, TaskFamily.SONIC).task_id == "t-extend"
    steps["cover"] = {"success": True, "task_id": "t-cover"}  # which one? Neither
    with pytest.raises(ResponseValidationError):
        parse_submit(body, TaskFamily.SONIC)


def test_an_extend_that_failed_after_its_upload_names_the_uploaded_clip_to_reuse() -> None:
    body = {
        "code": 200,
        "message": "success",
        "failed_step": "extend",
        "steps": {
            "upload": {"success": True, "clip_id": "up-123"},
            "extend": {"success": False},
        },
    }
    with pytest.raises(ResponseValidationError) as caught:
        parse_submit(body, TaskFamily.SONIC)
    message = str(caught.value)
    assert "no reason given" in message  # "success" is no reason
    assert "clip 'up-123'" in message
    assert "client.sonic.extend" in message


@pytest.mark.parametrize(
    ("ref", "status", "kind"),
    [(NURO, "error", "api_error"), (NURO, "timeout", "timeout"), (PRODUCER, "ERROR", "failed")],
)
def test_a_status_the_sdk_does_not_know_beside_a_failure_type_is_a_failure(
    ref: TaskRef, status: str, kind: str
) -> None:
    task = parse_task(ref, 200, {"status": status, "type": kind, "message": "it broke"})
    assert task.status is TaskStatus.FAILED
    assert task.error_type == kind
