"""JSON in and out: the SDK's one private cattrs converter and the readers of every answer.

Readers take the decoded JSON body and return a model, or raise
:class:`ResponseValidationError` naming the bad field (``$.data[0].duration``). They never
raise anything else, whatever the JSON: an unknown field is ignored (and kept in ``raw``),
an unknown state becomes ``UNKNOWN``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception

from ._exceptions import ResponseValidationError
from ._models import (
    AlignedLyrics,
    AlignedWord,
    Batch,
    BatchSubmission,
    Bpm,
    Clip,
    ClipState,
    Credits,
    DownloadLinks,
    GeneratedLyrics,
    Midi,
    Persona,
    Task,
    TaskFamily,
    TaskRef,
    TaskStatus,
    UploadedClip,
    UpsampledTags,
    Vox,
    WavFile,
)
from ._redact import scrub_urls

T = TypeVar("T")

#: Task ``type`` values that mean "still running"; any other ``type`` without ``data`` is a
#: failure, unless a Producer or Nuro answer carries a string ``status`` (which decides).
NOT_READY_TYPE = "not_ready"
#: The documented ``type`` of a failed task (CONTRACT §9.1; ``bad_request``: Nuro's, §10).
FAILURE_TYPES = frozenset({"failed", "timeout", "forbidden", "api_error", "bad_request"})

#: The longest server value a message quotes, and the longest server error text it shows.
_VALUE_MAX = 200
_ERROR_TEXT_MAX = 500


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters ending in "..." when it is longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quoted(value: str) -> str:
    """A server's string fit for a message: its URLs without credentials or query, cut to
    ``_VALUE_MAX`` characters, quoted. Scrubbed whole, then cut: a cut inside a URL's
    "user:password@" would hide its "@"."""
    return repr(_cut(scrub_urls(value), _VALUE_MAX))


# --- the converter --------------------------------------------------------------------------


def _strict_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {_json_type(value)}")


def _lenient_float(value: Any, _: Any) -> float:
    # Durations arrive as numbers or as decimal strings ("104.88").
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, float):
        result = value
    elif isinstance(value, int):
        try:
            result = float(value)
        except OverflowError:  # an integer such as 10**400
            raise ValueError(
                f"expected a finite number, got an integer too large for a float "
                f"({value.bit_length()} bits)"
            ) from None
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got the string {_quoted(value)}") from None
    else:
        raise TypeError(f"expected a number, got {_json_type(value)}")
    if not math.isfinite(result):
        shown = _quoted(value) if isinstance(value, str) else repr(value)
        raise ValueError(f"expected a finite number, got {shown}")
    return result


def _strict_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected a boolean, got {_json_type(value)}")


#: The offset of an ISO-8601 date-time: Z, +HH, +HHMM or +HH:MM.
_OFFSET = r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<oh>[0-9]{2})(?::?(?P<om>[0-9]{2}))?)?"
#: An ISO-8601 date or date-time read alike on every Python (3.10's fromisoformat refuses
#: "+0000", "+00" and the basic form that 3.11's accepts): the extended form
#: ("2025-10-12T13:13:02.488Z", "2025-10-12 13:13"), or the basic one ("20251012T131302Z").
_ISO_8601 = (
    re.compile(
        r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
        r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
        r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]+))?)?" + _OFFSET + ")?"
    ),
    re.compile(
        r"(?P<year>[0-9]{4})(?P<month>[0-9]{2})(?P<day>[0-9]{2})"
        r"(?:[Tt](?P<hour>[0-9]{2})(?P<minute>[0-9]{2})"
        r"(?:(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]+))?)?" + _OFFSET + ")?"
    ),
)


def _parse_iso_8601(text: str) -> datetime | None:
    """``text`` as an aware UTC datetime, or None if it is not an ISO-8601 date(-time)."""
    match = next((m for m in (p.fullmatch(text) for p in _ISO_8601) if m), None)
    if match is None:
        return None
    part = match.groupdict()
    try:
        parsed = datetime(
            int(part["year"]),
            int(part["month"]),
            int(part["day"]),
            int(part["hour"] or 0),
            int(part["minute"] or 0),
            int(part["second"] or 0),
            # Any number of digits of fraction, truncated to microseconds.
            int((part["fraction"] or "")[:6].ljust(6, "0")),
        )
        if part["sign"] is None:
            # The API sends UTC: a timestamp without an offset (or with Z) is read as UTC,
            # never as local time.
            return parsed.replace(tzinfo=timezone.utc)
        minutes = int(part["om"] or 0)
        if minutes > 59:
            return None
        offset = timedelta(hours=int(part["oh"]), minutes=minutes)
        zone = timezone(-offset if part["sign"] == "-" else offset)
        # Another offset is the same instant in UTC (what the model promises).
        return parsed.replace(tzinfo=zone).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # month 13, offset +25:00, 0001-01-01 at +05:00
        return None


def _timestamp(value: Any, _: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 timestamp, got {_json_type(value)}")
    parsed = _parse_iso_8601(value.strip())
    if parsed is None:
        raise ValueError(f"expected an ISO-8601 timestamp, got {_quoted(value)}")
    return parsed


def _optional_timestamp(value: Any, type_: Any) -> datetime | None:
    # An optional timestamp (a clip's created_at) only says when: one the SDK cannot read
    # must not fail the snapshot of a finished, paid task. It reads as None; the value as
    # sent stays in the model's raw.
    try:
        return _timestamp(value, type_)
    except (TypeError, ValueError):
        return None


def _seed(value: Any, _: Any) -> str | None:
    # Producer seeds are strings, or numbers in the vendor spec (CONTRACT: "string or number").
    # Like every clip field but clip_id and state, a seed may be null: null or blank is None.
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    raise TypeError(f"expected a string or number seed, got {_json_type(value)}")


def _is_optional(cls: type[Any]) -> Callable[[Any], bool]:
    """The predicate of ``cls | None`` for register_structure_hook_func."""

    def is_optional(type_: Any) -> bool:
        return get_origin(type_) in (Union, UnionType) and set(get_args(type_)) == {
            cls,
            type(None),
        }

    return is_optional


def _blank_is_none(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T | None]:
    """The hook of ``cls | None`` from that of ``cls``: also reads ``""`` (or blanks) as None."""

    def structure(value: Any, type_: Any) -> T | None:
        # One odd optional field ("duration": "") must not fail the whole snapshot.
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return hook(value, type_)

    return structure


def _from_object(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T]:
    """A model's hook that refuses what is not a JSON object: without it, a model nested in
    a list (``{"results": ["text"]}``) reads a string as an object without keys, all None."""

    def structure(value: Any, type_: Any) -> T:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object, got {_json_type(value)}")
        return hook(value, type_)

    return structure


def _build_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(float, _lenient_float)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(datetime, _timestamp)
    conv.register_structure_hook_func(_is_optional(float), _blank_is_none(_lenient_float))
    conv.register_structure_hook_func(_is_optional(datetime), _optional_timestamp)
    omit = override(omit=True)
    conv.register_structure_hook(
        Clip,
        _from_object(
            make_dict_structure_fn(
                Clip,
                conv,
                state=omit,
                raw_state=omit,
                raw=omit,
                seed=override(struct_hook=_seed),
            )
        ),
    )
    for cls in (Bpm, Vox, Midi, WavFile, UploadedClip, Persona, UpsampledTags, Credits):
        conv.register_structure_hook(cls, _from_object(make_dict_structure_fn(cls, conv, raw=omit)))
    for plain in (AlignedWord, GeneratedLyrics):
        conv.register_structure_hook(plain, _from_object(make_dict_structure_fn(plain, conv)))
    return conv


_converter = _build_converter()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _describe(exc: BaseException, type_: Any) -> str:
    # Our hooks raise messages worth showing ("expected a number, got the string 'abc'").
    if isinstance(exc, (ValueError, TypeError)) and str(exc).startswith("expected"):
        return str(exc)
    return format_exception(exc, type_)


def _structure(value: Any, cls: type[T], path: str, body: Any) -> T:
    """Structure with the converter, turning any failure into a ResponseValidationError."""
    if attrs.has(cls) and not isinstance(value, Mapping):
        raise ResponseValidationError(
            f"expected an object at {path}, got {_json_type(value)}", field_path=path, body=body
        )
    try:
        return _converter.structure(value, cls)
    except Exception as exc:  # cattrs wraps the hooks' errors in (nested) groups
        messages = cattrs.transform_error(exc, path=path, format_exception=_describe)
        first = messages[0] if messages else str(exc)
        field_path = first.rsplit(" @ ", 1)[-1] if " @ " in first else path
        raise ResponseValidationError(
            f"unexpected value in the response: {first}", field_path=field_path, body=body
        ) from exc


def _object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ResponseValidationError(
            f"expected a JSON object for {what}, got {_json_type(body)}", field_path="$", body=body
        )
    return body


def _data_or_top(body: Mapping[str, Any], path: str = "$") -> tuple[Mapping[str, Any], str]:
    """Fields wrapped in ``data`` when present, else at the top level (bpm, vox, upsample-tags)."""
    data = body.get("data")
    if isinstance(data, Mapping):
        return data, f"{path}.data"
    return body, path


def _top_or_data(body: Mapping[str, Any], key: str) -> tuple[Mapping[str, Any], str]:
    """Fields at the top level, as documented (credits, uploads, lyrics), or wrapped in a
    ``data`` object when only that holds ``key``: the wrapper other endpoints use."""
    data = body.get("data")
    if key not in body and isinstance(data, Mapping) and key in data:
        return data, "$.data"
    return body, "$"


def _required_str(obj: Mapping[str, Any], key: str, path: str, body: Any) -> str:
    value = obj.get(key)
    if isinstance(value, str) and value:
        return value
    shown = "missing" if key not in obj else f"{_json_type(value)}"
    raise ResponseValidationError(
        f"expected a non-empty string at {path}.{key}, got {shown}",
        field_path=f"{path}.{key}",
        body=body,
    )


#: How deep error_text looks into nested objects ({"error": {"message": ...}} is one level).
#: Without a bound, a body nested as deep as json.loads allows exhausts the stack here.
_ERROR_NESTING_MAX = 8


def error_text(body: Any, _depth: int = 0) -> str | None:
    """The message of an error or failure body: ``error``, then ``message``, then ``detail``;
    its URLs without credentials or query."""
    if isinstance(body, str):
        # Scrubbed whole, then cut: a cut inside a URL's "user:password@" hides its "@".
        return _cut(scrub_urls(body.strip()), _ERROR_TEXT_MAX) or None
    if not isinstance(body, Mapping):
        return None
    for key in ("error", "message", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value:
            # The server's words, their URLs without credentials or query (a redirect's
            # body repeats its Location whole, token and all), cut: a message of megabytes
            # must not become the exception's text.
            return _cut(scrub_urls(value), _ERROR_TEXT_MAX)
        if isinstance(value, Mapping) and _depth < _ERROR_NESTING_MAX:
            nested = error_text(value, _depth + 1)
            if nested:
                return nested
    return None


def error_type(body: Any) -> str | None:
    """The machine-readable kind of an error body: ``type``, else a string ``code``."""
    if not isinstance(body, Mapping):
        return None
    kind = body.get("type")
    if isinstance(kind, str) and kind:
        return kind
    code = body.get("code")
    if isinstance(code, str) and code:
        return code
    return None


# --- task references ------------------------------------------------------------------------


def task_ref_from_dict(data: Mapping[str, Any]) -> TaskRef:
    if not isinstance(data, Mapping):
        # ValueError, not TypeError: from_json callers handle bad input with one except clause.
        raise ValueError(  # noqa: TRY004
            f"a task reference must be a JSON object, got {_json_type(data)}"
        )
    task_id = data.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("a task reference needs a non-empty string 'task_id'")
    return TaskRef(task_id, data.get("family", TaskFamily.SONIC.value))


def task_ref_from_json(text: str | bytes) -> TaskRef:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep to decode
        raise ValueError(f"a task reference must be JSON: {exc}") from exc
    return task_ref_from_dict(data)


def task_refs_from_json(text: str | bytes) -> list[TaskRef]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"a list of task references must be JSON: {exc}") from exc
    if not isinstance(data, list):
        # ValueError, as for one reference: callers handle bad input with one except clause.
        raise ValueError(  # noqa: TRY004
            f"expected a JSON list of task references, got {_json_type(data)}"
        )
    refs = []
    for index, item in enumerate(data):
        try:
            refs.append(task_ref_from_dict(item))
        except ValueError as exc:
            raise ValueError(f"entry {index}: {exc}") from exc
    return refs


def reports_no_task(body: Any) -> bool:
    """True when a submit answer itself says no task was started (a ``failed_step``)."""
    return isinstance(body, Mapping) and not body.get("task_id") and bool(body.get("failed_step"))


#: The call that retries a multi-step call's failed step from its uploaded clip.
_RETRY_WITH_UPLOAD = {
    "extend": "client.sonic.extend_upload(clip_id, ...)",
    "cover": "client.sonic.cover_upload(clip_id, ...)",
    "sample": "client.sonic.sample(sample_clip_id=..., ...)",
}


def _unless_success(text: str | None) -> str | None:
    """``text``, unless it is only a "success" that says nothing of a failure."""
    return None if text is None or text.strip().rstrip(".").lower() == "success" else text


def parse_submit(body: Any, family: TaskFamily) -> TaskRef:
    """``{"message": "success", "task_id": ...}`` (plus ``steps``, ``warning``...) -> TaskRef."""
    obj = _object(body, "a task submission")
    if obj.get("failed_step"):
        step = obj.get("failed_step")
        shown = _quoted(step) if isinstance(step, str) else _json_type(step)
        steps = obj.get("steps")
        steps = steps if isinstance(steps, Mapping) else {}
        failed = steps.get(step) if isinstance(step, str) else None
        # The step's own reason first: the top-level message of such an answer is often a
        # bare "success" (CONTRACT §4: each step may hold clip_id, task_id, error).
        detail = (
            (error_text(failed) if isinstance(failed, Mapping) else None)
            or _unless_success(error_text(obj))
            or "no reason given"
        )
        if detail.endswith(".") and not detail.endswith("..."):
            detail = detail[:-1]  # the sentence goes on; an ellipsis (a cut URL) stays
        returned = obj.get("task_id")
        if returned:
            # A failure all the same (CONTRACT §4: failed_step means failure; task_id "may
            # be missing"): the task returned cannot hold what was asked (an upload's own
            # task, say). Not returned as if all went well, to be awaited for nothing.
            shown_id = _quoted(returned) if isinstance(returned, str) else _json_type(returned)
            message = (
                f"the server accepted the call but its step {shown} failed: {detail}. It "
                f"still returned task {shown_id}, which cannot hold that step's result "
                "(await it to see what it holds)"
            )
        else:
            message = (
                f"the server accepted the call but its step {shown} failed and no task was "
                f"started: {detail}"
            )
        uploaded = steps.get("upload")
        clip_id = uploaded.get("clip_id") if isinstance(uploaded, Mapping) else None
        retry = _RETRY_WITH_UPLOAD.get(step) if isinstance(step, str) else None
        if retry is not None and isinstance(clip_id, str) and clip_id:
            # The upload went through (and may have been paid): reuse it, not the URL.
            message += (
                f". The upload itself succeeded as clip {_quoted(clip_id)}: to try again "
                f"without uploading the audio again, call {retry} with that clip"
            )
        raise ResponseValidationError(message, field_path="$.task_id", body=body)
    if not obj.get("task_id"):
        step_task = _task_of_last_step(obj)
        if step_task is not None:
            return TaskRef(step_task, family, raw=obj)
    task_id = _required_str(obj, "task_id", "$", body)
    return TaskRef(task_id, family, raw=obj)


def _task_of_last_step(obj: Mapping[str, Any]) -> str | None:
    """The task a multi-step answer without a top-level ``task_id`` started: the one task
    id among its successful steps after the upload (CONTRACT §4: each entry of ``steps``
    may hold ``task_id``); None unless there is exactly one."""
    steps = obj.get("steps")
    if not isinstance(steps, Mapping):
        return None
    found = {
        entry["task_id"]
        for name, entry in steps.items()
        if name != "upload"
        and isinstance(entry, Mapping)
        and entry.get("success") is True
        and isinstance(entry.get("task_id"), str)
        and entry["task_id"]
    }
    return found.pop() if len(found) == 1 else None


# --- tasks ----------------------------------------------------------------------------------

_CLIP_STATES = {state.value: state for state in ClipState if state is not ClipState.UNKNOWN}
_PRODUCER_STATUS = {
    "PENDING": TaskStatus.PENDING,
    "RUNNING": TaskStatus.RUNNING,
    "SUCCESS": TaskStatus.SUCCEEDED,
    "FAILED": TaskStatus.FAILED,
}
_NURO_STATUS = {
    "pending": TaskStatus.PENDING,
    "running": TaskStatus.RUNNING,
    "succeeded": TaskStatus.SUCCEEDED,
    "failed": TaskStatus.FAILED,
}


def _parse_clip(item: Any, path: str, body: Any) -> Clip:
    obj = _object_at(item, path, body)
    clip = _structure(obj, Clip, path, body)
    raw_state = obj.get("state")
    if raw_state is not None and not isinstance(raw_state, str):
        raise ResponseValidationError(
            f"expected a string at {path}.state, got {_json_type(raw_state)}",
            field_path=f"{path}.state",
            body=body,
        )
    state = (
        _CLIP_STATES.get(raw_state.lower(), ClipState.UNKNOWN) if raw_state else ClipState.UNKNOWN
    )
    return attrs.evolve(clip, state=state, raw_state=raw_state, raw=obj)


def _object_at(item: Any, path: str, body: Any) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise ResponseValidationError(
            f"expected an object at {path}, got {_json_type(item)}", field_path=path, body=body
        )
    return item


def _status_from_clips(clips: tuple[Clip, ...]) -> TaskStatus:
    if not clips:
        return TaskStatus.PENDING  # an empty snapshot: nothing to judge yet
    states = {clip.state for clip in clips}
    if all(state.is_terminal for state in states):
        # One good clip of two is a success; the failed one shows in clips.
        return TaskStatus.SUCCEEDED if ClipState.SUCCEEDED in states else TaskStatus.FAILED
    if states <= {ClipState.PENDING}:
        return TaskStatus.PENDING
    if states & {ClipState.RUNNING, ClipState.STREAMING, ClipState.SUCCEEDED, ClipState.FAILED}:
        return TaskStatus.RUNNING
    return TaskStatus.UNKNOWN


def _parse_clip_list(obj: Mapping[str, Any], body: Any) -> tuple[Clip, ...]:
    data = obj.get("data")
    if not isinstance(data, list):
        raise ResponseValidationError(
            f"expected an array at $.data, got {_json_type(data)}", field_path="$.data", body=body
        )
    return tuple(_parse_clip(item, f"$.data[{i}]", body) for i, item in enumerate(data))


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return round(value)
    return None


def parse_task(ref: TaskRef, http_status: int, body: Any) -> Task:
    """Read one poll answer of any family into a :class:`Task` snapshot (CONTRACT §9, §15)."""

    def task(status: TaskStatus, **kwargs: Any) -> Task:
        return Task(ref=ref, status=status, http_status=http_status, raw=body, **kwargs)

    if http_status == 202:
        return task(TaskStatus.PENDING)
    obj = _object(body, "a task snapshot")
    kind = obj.get("type")
    has_data = "data" in obj and obj.get("data") is not None
    if _status_decides(ref.family, obj):
        # Producer and Nuro: a task-level status it knows decides (§15 rule 2), whatever
        # the type beside it: Nuro echoes the request's ("vocal", "bgm"), Producer may name
        # its operation ("create_music"). "Any other type is a failure" is for answers
        # without, or whose status it does not know but whose type is a documented failure.
        if ref.family is TaskFamily.NURO:
            return _parse_nuro(ref, http_status, obj, body)
        clips = _parse_clip_list(obj, body) if has_data else ()
        return _parse_producer(ref, http_status, obj, body, clips)
    if kind == NOT_READY_TYPE:
        return task(TaskStatus.PENDING)
    # A failure type with an empty clip list is as final as one with none at all.
    if kind is not None and (not has_data or obj.get("data") == []):
        return task(
            TaskStatus.FAILED,
            error=error_text(obj),
            error_type=kind if isinstance(kind, str) else _json_type(kind),
        )
    if ref.family is TaskFamily.NURO and not has_data:
        return _parse_nuro(ref, http_status, obj, body)
    if not has_data:
        # Neither a snapshot nor a known failure: keep waiting, keep what the server said.
        return task(TaskStatus.UNKNOWN, error=error_text(obj))
    clips = _parse_clip_list(obj, body)
    if ref.family is TaskFamily.PRODUCER:
        return _parse_producer(ref, http_status, obj, body, clips)
    return task(_status_from_clips(clips), clips=clips)


def _parse_producer(
    ref: TaskRef, http_status: int, obj: Mapping[str, Any], body: Any, clips: tuple[Clip, ...]
) -> Task:
    raw_status = obj.get("status")
    if isinstance(raw_status, str):
        status = _known_status(raw_status) or TaskStatus.UNKNOWN
    elif clips and all(clip.raw_state is None for clip in clips) and _is_code_200(obj):
        # The vendor spec's shape: no status, items without state, code 200 = done.
        status = TaskStatus.SUCCEEDED
    else:
        status = _status_from_clips(clips)
    if status.is_terminal:
        # Producer items often carry no state of their own: they share the task's outcome.
        done = ClipState.SUCCEEDED if status is TaskStatus.SUCCEEDED else ClipState.FAILED
        clips = tuple(
            attrs.evolve(clip, state=done) if clip.raw_state is None else clip for clip in clips
        )
    failed = status is TaskStatus.FAILED
    return Task(
        ref=ref,
        status=status,
        clips=clips,
        error=error_text(obj) if failed else None,
        error_type=_failure_type(obj) if failed else None,
        http_status=http_status,
        raw=body,
    )


def _status_decides(family: TaskFamily, obj: Mapping[str, Any]) -> bool:
    """Whether a Producer or Nuro answer's ``status`` decides over its ``type``: when the
    status is one the SDK knows, or the type is no documented failure."""
    raw = obj.get("status")
    if family is TaskFamily.SONIC or not isinstance(raw, str):
        return False
    return _known_status(raw) is not None or obj.get("type") not in FAILURE_TYPES


def _known_status(raw: str) -> TaskStatus | None:
    """A Producer or Nuro task ``status`` the SDK knows, in either family's spelling
    (``SUCCESS``, ``succeeded``...): the same table decides whether the status decides and
    what it says, or a Producer ``succeeded`` decided and then read as unknown."""
    return _PRODUCER_STATUS.get(raw.upper()) or _NURO_STATUS.get(raw.lower())


def body_code(obj: Mapping[str, Any]) -> int | None:
    """The body's ``code``, sent as an integer or a string of digits (CONTRACT §1), or None."""
    code = obj.get("code")
    if isinstance(code, str) and code.strip().isascii() and code.strip().isdigit():
        return int(code)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _is_code_200(obj: Mapping[str, Any]) -> bool:
    """True when the body's ``code`` is 200, as the integer or the string (CONTRACT §1)."""
    return body_code(obj) == 200


def _failure_type(obj: Mapping[str, Any]) -> str | None:
    """The ``type`` of a failed Producer or Nuro task when it is a documented failure type;
    another one (Nuro's echoed "vocal") says nothing about the failure."""
    kind = obj.get("type")
    return kind if isinstance(kind, str) and kind in FAILURE_TYPES else None


def _parse_nuro(ref: TaskRef, http_status: int, obj: Mapping[str, Any], body: Any) -> Task:
    raw_status = obj.get("status")
    status = (
        _known_status(raw_status) or TaskStatus.UNKNOWN
        if isinstance(raw_status, str)
        else TaskStatus.UNKNOWN
    )
    clip_state = {
        TaskStatus.PENDING: ClipState.PENDING,
        TaskStatus.RUNNING: ClipState.RUNNING,
        TaskStatus.SUCCEEDED: ClipState.SUCCEEDED,
        TaskStatus.FAILED: ClipState.FAILED,
    }.get(status, ClipState.UNKNOWN)
    # Nuro answers one flat song; present it as the task's only clip.
    fields = {key: obj[key] for key in ("audio_url", "lyrics", "duration") if key in obj}
    clip = attrs.evolve(
        _structure({"clip_id": None, **fields}, Clip, "$", body),
        state=clip_state,
        raw_state=raw_status if isinstance(raw_status, str) else None,
        raw=obj,
    )
    clips = (clip,) if status is not TaskStatus.UNKNOWN or clip.audio_url else ()
    return Task(
        ref=ref,
        status=status,
        clips=clips,
        progress=_int_or_none(obj.get("progress")),
        error=error_text(obj) if status is TaskStatus.FAILED else None,
        error_type=_failure_type(obj) if status is TaskStatus.FAILED else None,
        http_status=http_status,
        raw=body,
    )


# --- synchronous results --------------------------------------------------------------------


def _fields(obj: Mapping[str, Any], top: str | None) -> tuple[Mapping[str, Any], str]:
    """Where a flat result's fields are. ``top``: the key of a result documented at the top
    level (credits, uploads), read from ``data`` only when that alone holds it; otherwise the
    fields are in ``data`` when present."""
    return _data_or_top(obj) if top is None else _top_or_data(obj, top)


def _parse_flat(body: Any, cls: type[T], what: str, *, top: str | None = None) -> T:
    obj = _object(body, what)
    fields, path = _fields(obj, top)
    result = _structure(fields, cls, path, body)
    return attrs.evolve(result, raw=obj)  # type: ignore[misc]


def _parse_required(body: Any, cls: type[T], what: str, required: str, *, top: bool = False) -> T:
    """A flat result whose ``required`` field must be a non-empty string (``top``: documented
    at the top level, see :func:`_fields`)."""
    obj = _object(body, what)
    key = required if top else None
    fields, path = _fields(obj, key)
    _required_str(fields, required, path, body)
    return _parse_flat(body, cls, what, top=key)


def parse_credits(body: Any) -> Credits:
    return _parse_flat(body, Credits, "the credit balance", top="credits")


def parse_uploaded_clip(body: Any) -> UploadedClip:
    return _parse_required(body, UploadedClip, "an upload result", "clip_id", top=True)


def parse_persona(body: Any) -> Persona:
    return _parse_required(body, Persona, "a persona", "persona_id")


def parse_wav(body: Any) -> WavFile:
    return _parse_required(body, WavFile, "a WAV result", "wav_url")


def parse_midi(body: Any) -> Midi:
    obj = _object(body, "a MIDI result")
    fields, path = _data_or_top(obj)
    instruments = fields.get("instruments")
    if instruments is not None and not isinstance(instruments, list):
        raise ResponseValidationError(
            f"expected an array at {path}.instruments, got {_json_type(instruments)}",
            field_path=f"{path}.instruments",
            body=body,
        )
    if instruments is None and fields.get("midi_url") is None:
        # A paid answer without the MIDI: an error to see, not an empty result to trust.
        raise ResponseValidationError(
            f"expected midi_url or instruments at {path}, got neither",
            field_path=f"{path}.midi_url",
            body=body,
        )
    return _parse_flat(body, Midi, "a MIDI result")


def parse_bpm(body: Any) -> Bpm:
    result = _parse_flat(body, Bpm, "a BPM result")
    if result.avg_bpm is None and result.max_bpm is None and result.min_bpm is None:
        _, path = _data_or_top(_object(body, "a BPM result"))
        raise ResponseValidationError(
            f"expected avg_bpm, max_bpm or min_bpm at {path}, got none of them",
            field_path=f"{path}.avg_bpm",
            body=body,
        )
    return result


def parse_vox(body: Any) -> Vox:
    return _parse_required(body, Vox, "a vox result", "vox_audio_id")


def parse_upsampled_tags(body: Any) -> UpsampledTags:
    return _parse_required(body, UpsampledTags, "upsampled tags", "upsampled_tags")


def parse_aligned_lyrics(body: Any) -> AlignedLyrics:
    obj = _object(body, "aligned lyrics")
    fields, path = _data_or_top(obj)
    alignment = fields.get("alignment")
    if not isinstance(alignment, list):
        # A paid call's answer without its words is no result (an empty list is one).
        shown = "missing" if "alignment" not in fields else _json_type(alignment)
        raise ResponseValidationError(
            f"expected an array of aligned words at {path}.alignment, got {shown}",
            field_path=f"{path}.alignment",
            body=body,
        )
    words = _structure(alignment, tuple[AlignedWord, ...], f"{path}.alignment", body)
    return AlignedLyrics(words=words, raw=obj)


def parse_lyrics(body: Any) -> tuple[GeneratedLyrics, ...]:
    obj = _object(body, "generated lyrics")
    fields, path = _top_or_data(obj, "results")
    results = fields.get("results")
    path = f"{path}.results"
    if results is None and isinstance(obj.get("data"), list):
        results, path = obj["data"], "$.data"
    if not isinstance(results, list):
        raise ResponseValidationError(
            f"expected an array at {path}, got {_json_type(results)}", field_path=path, body=body
        )
    return _structure(results, tuple[GeneratedLyrics, ...], path, body)


def parse_download_links(body: Any) -> DownloadLinks:
    obj = _object(body, "download links")
    fields, path = _data_or_top(obj)
    urls: dict[str, str] = {}
    for key, value in fields.items():
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            name = key[: -len("_url")] if key.endswith("_url") else key
            urls[name] = value
    if not urls:
        raise ResponseValidationError(
            f"expected at least one download URL (mp3_url, m4a_url, wav_url...) at {path}, "
            "got none",
            field_path=path,
            body=body,
        )
    return DownloadLinks(urls=urls, raw=obj)


def _refs_in(items: Any, path: str, body: Any) -> tuple[tuple[TaskRef, ...], tuple[Any, ...]]:
    if items is None:
        return (), ()
    if not isinstance(items, list):
        raise ResponseValidationError(
            f"expected an array at {path}, got {_json_type(items)}", field_path=path, body=body
        )
    refs: list[TaskRef] = []
    errors: list[Any] = []
    for item in items:
        if isinstance(item, str) and item:
            refs.append(TaskRef(item, TaskFamily.SONIC))
        elif isinstance(item, Mapping) and isinstance(item.get("task_id"), str) and item["task_id"]:
            refs.append(TaskRef(item["task_id"], TaskFamily.SONIC, raw=item))
        else:
            errors.append(item)
    return tuple(refs), tuple(errors)


def _optional(obj: Mapping[str, Any], key: str, cls: type[T], body: Any) -> T | None:
    value = obj.get(key)
    return None if value is None else _structure(value, cls, f"$.{key}", body)


def parse_batch_submission(body: Any) -> BatchSubmission:
    obj = _object(body, "a batch submission")
    # At the top level as the guide shows it, or wrapped in ``data`` (as the GET reads it).
    fields, path = _data_or_top(obj)
    tasks, errors = _refs_in(fields.get("tasks"), f"{path}.tasks", body)
    batch_id = fields.get("batch_id")
    if not tasks and not errors and not (isinstance(batch_id, str) and batch_id):
        # Up to ten paid tasks may have started: an answer that names none of them and no
        # batch to look them up by is unreadable, not an empty success.
        raise ResponseValidationError(
            "expected a batch_id or a list of tasks in a batch submission, got neither "
            f"(keys: {', '.join(sorted(map(str, obj))[:10]) or 'none'})",
            field_path=f"{path}.tasks",
            body=body,
        )
    return BatchSubmission(
        batch_id=_optional(fields, "batch_id", str, body),
        submitted=_int_or_none(fields.get("submitted")),
        tasks=tasks,
        errors=errors,
        raw=obj,
    )


def parse_batch(body: Any) -> Batch:
    obj = _object(body, "a batch")
    fields, path = _data_or_top(obj)
    tasks, errors = _refs_in(fields.get("tasks"), f"{path}.tasks", body)
    batch_id = fields.get("batch_id")
    return Batch(
        batch_id=batch_id if isinstance(batch_id, str) else None,
        tasks=tasks,
        errors=errors,
        raw=obj,
    )


#: Parsers by result type, for the resources' generic request helper.
PARSERS: Mapping[type[Any], Callable[[Any], Any]] = {
    Credits: parse_credits,
    UploadedClip: parse_uploaded_clip,
    Persona: parse_persona,
    WavFile: parse_wav,
    Midi: parse_midi,
    Bpm: parse_bpm,
    Vox: parse_vox,
    UpsampledTags: parse_upsampled_tags,
    AlignedLyrics: parse_aligned_lyrics,
    DownloadLinks: parse_download_links,
    BatchSubmission: parse_batch_submission,
    Batch: parse_batch,
}
