"""The response readers of ``musicapi_async._serde`` never crash, and models round-trip.

Property tests feed arbitrary JSON (biased toward the keys MusicAPI really sends) to every
reader: each returns its model or raises :class:`ResponseValidationError`, nothing else.
Example tests pin the decoding rules of CONTRACT §15 rule 6 (durations, timestamps,
unknown fields and states, error messages).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from musicapi_async import (
    AlignedLyrics,
    BadRequestError,
    Batch,
    BatchSubmission,
    Bpm,
    Clip,
    ClipState,
    Credits,
    DownloadLinks,
    GeneratedLyrics,
    Midi,
    MusicAPI,
    Persona,
    ResponseValidationError,
    Task,
    TaskFamily,
    TaskRef,
    TaskStatus,
    UploadedClip,
    UpsampledTags,
    Vox,
    WavFile,
)
from musicapi_async._serde import (
    error_text,
    parse_aligned_lyrics,
    parse_batch,
    parse_batch_submission,
    parse_bpm,
    parse_credits,
    parse_download_links,
    parse_lyrics,
    parse_midi,
    parse_persona,
    parse_submit,
    parse_task,
    parse_uploaded_clip,
    parse_upsampled_tags,
    parse_vox,
    parse_wav,
)

# --- strategies -------------------------------------------------------------------------------

#: Keys MusicAPI answers really carry (CONTRACT §3-§9), so that generated objects reach
#: the readers' field handling instead of stopping at "missing task_id".
REAL_KEYS = (
    "code",
    "data",
    "type",
    "status",
    "message",
    "error",
    "detail",
    "task_id",
    "clip_id",
    "state",
    "duration",
    "created_at",
    "audio_url",
    "wav_url",
    "image_url",
    "video_url",
    "progress",
    "results",
    "alignment",
    "title",
    "tags",
    "lyrics",
    "mv",
    "seed",
    "sound",
    "style_weight",
    "persona_id",
    "midi_url",
    "instruments",
    "avg_bpm",
    "max_bpm",
    "min_bpm",
    "credits",
    "extra_credits",
    "upsampled_tags",
    "vox_audio_id",
    "vocal_start_s",
    "wave_response",
    "word",
    "start_s",
    "end_s",
    "p_align",
    "success",
    "batch_id",
    "tasks",
    "submitted",
    "failed_step",
    "steps",
    "warning",
)

#: Any text json.loads can produce, lone surrogates included.
TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
#: Strings the readers treat specially: numbers, timestamps, states, statuses, URLs.
SPECIAL_TEXT = st.sampled_from(
    [
        "",
        " ",
        "104.88",
        " 7 ",
        "-0",
        "1e999",
        "nan",
        "Infinity",
        "abc",
        "2025-10-12T13:13:02.488Z",
        "2025-10-12T15:13:02+02:00",
        "2025-10-12T13:13:02",
        "2025-10-12",
        "yesterday",
        "pending",
        "running",
        "streaming",
        "succeeded",
        "SUCCEEDED",
        "failed",
        "PENDING",
        "RUNNING",
        "SUCCESS",
        "FAILED",
        "not_ready",
        "timeout",
        "api_error",
        "https://cdn1.suno.ai/clip.mp3",
        "http://x",
        "200",
    ]
)
#: json.loads reads the literals NaN, Infinity and -Infinity, so answers may carry them.
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 200, 202, 2**63, 10**400, -(10**400)]),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.floats(),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, SPECIAL_TEXT)
KEYS = st.one_of(st.sampled_from(REAL_KEYS), TEXT)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=6)
    ),
    max_leaves=20,
)
#: Objects made of the real keys only, with values of any JSON type.
OBJECTS = st.dictionaries(st.sampled_from(REAL_KEYS), st.one_of(SCALARS, JSON), max_size=10)
#: Answer envelopes: every real key optional, ``data`` / ``results`` / ``tasks`` shaped.
ENVELOPES = st.fixed_dictionaries(
    {},
    optional={
        **{key: st.one_of(SCALARS, JSON) for key in REAL_KEYS},
        "code": st.one_of(st.just(200), SCALARS),
        "type": st.one_of(st.sampled_from(["not_ready", "failed", "timeout"]), SCALARS),
        "task_id": st.one_of(st.just("3f1c-task"), SCALARS),
        "data": st.one_of(st.lists(st.one_of(OBJECTS, JSON), max_size=3), OBJECTS, JSON),
        "results": st.one_of(st.lists(st.one_of(OBJECTS, JSON), max_size=3), JSON),
        "tasks": st.one_of(st.lists(st.one_of(OBJECTS, TEXT), max_size=3), JSON),
        "alignment": st.one_of(st.lists(st.one_of(OBJECTS, JSON), max_size=3), JSON),
    },
)

# Well-formed answers of every kind, so that the readers' success paths are exercised too.
NUMBER = st.one_of(
    st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32)
)
DECIMAL = st.one_of(NUMBER, NUMBER.map(str))
MAYBE_TEXT = st.one_of(st.none(), TEXT)
ID = st.text(st.characters(exclude_categories=()), min_size=1, max_size=12)
TIMESTAMP = st.builds(
    lambda moment, zone, zulu: (
        moment.replace(tzinfo=zone).isoformat().replace("+00:00", "Z" if zulu else "+00:00")
    ),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)),
    st.sampled_from([None, timezone.utc, timezone(timedelta(hours=-5, minutes=-30))]),
    st.booleans(),
)
CLIP_STATE = st.one_of(
    st.sampled_from(["pending", "running", "streaming", "succeeded", "failed"]), TEXT
)
CLIP = st.fixed_dictionaries(
    {"clip_id": ID},
    optional={
        "state": CLIP_STATE,
        **dict.fromkeys(
            (
                "title",
                "tags",
                "lyrics",
                "audio_url",
                "wav_url",
                "image_url",
                "video_url",
                "mv",
                "gpt_description_prompt",
                "negative_tags",
                "sound",
                "persona_id",
            ),
            MAYBE_TEXT,
        ),
        "duration": st.one_of(st.none(), DECIMAL),
        "created_at": st.one_of(st.none(), TIMESTAMP),
        "style_weight": st.one_of(st.none(), NUMBER),
        "weirdness_constraint": st.one_of(st.none(), NUMBER),
        "seed": st.one_of(st.none(), TEXT, st.integers()),
        "brand_new_field": JSON,
    },
)
SNAPSHOT = st.fixed_dictionaries(
    {"code": st.just(200), "data": st.lists(CLIP, max_size=3)},
    optional={
        "message": TEXT,
        "status": st.sampled_from(["PENDING", "RUNNING", "SUCCESS", "FAILED", "QUEUED"]),
    },
)
NURO_TASK = st.fixed_dictionaries(
    {"task_id": ID, "status": st.sampled_from(["pending", "running", "succeeded", "failed", "x"])},
    optional={
        "progress": st.integers(0, 100),
        "audio_url": MAYBE_TEXT,
        "lyrics": MAYBE_TEXT,
        "duration": DECIMAL,
        "genre": TEXT,
    },
)
FAILURE = st.fixed_dictionaries(
    {"type": st.sampled_from(["not_ready", "failed", "timeout", "forbidden", "api_error"])},
    optional={"error": TEXT, "message": TEXT, "detail": TEXT},
)
SUBMIT = st.fixed_dictionaries(
    {"message": st.just("success"), "task_id": ID},
    optional={"code": st.just(200), "warning": TEXT, "steps": OBJECTS},
)
FAILED_STEP = st.fixed_dictionaries(
    {"code": st.just(200), "failed_step": st.sampled_from(["upload", "extend", "sample"])},
    optional={"message": TEXT, "steps": OBJECTS},
)


def _fields_or_data(fields: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """The fields at the top level, or wrapped as {code, message, data: fields}."""
    wrapped = st.builds(lambda f: {"code": 200, "message": "success", "data": f}, fields)
    return st.one_of(fields, wrapped)


#: A well-formed answer of each kind a reader handles.
WELL_FORMED: dict[str, st.SearchStrategy[Any]] = {
    "snapshot": SNAPSHOT,
    "nuro-task": NURO_TASK,
    "task-failure": FAILURE,
    "submit": SUBMIT,
    "submit-failed-step": FAILED_STEP,
    "credits": st.fixed_dictionaries({"credits": NUMBER, "extra_credits": NUMBER}),
    "upload": st.fixed_dictionaries({"code": st.just(200), "clip_id": ID, "message": TEXT}),
    "persona": _fields_or_data(
        st.fixed_dictionaries({"persona_id": ID}, optional={"message": TEXT})
    ),
    "wav": _fields_or_data(st.fixed_dictionaries({"wav_url": ID})),
    "midi": _fields_or_data(
        st.fixed_dictionaries(
            {"midi_url": MAYBE_TEXT}, optional={"instruments": st.lists(JSON, max_size=3)}
        )
    ),
    "bpm": _fields_or_data(
        st.fixed_dictionaries(
            {}, optional={"avg_bpm": NUMBER, "max_bpm": NUMBER, "min_bpm": NUMBER}
        )
    ),
    "vox": _fields_or_data(
        st.fixed_dictionaries(
            {},
            optional={
                "vox_audio_id": TEXT,
                "status": TEXT,
                "source_clip_id": TEXT,
                "vocal_start_s": DECIMAL,
                "vocal_end_s": DECIMAL,
                "wave_response": JSON,
            },
        )
    ),
    "upsampled-tags": _fields_or_data(st.fixed_dictionaries({"upsampled_tags": ID})),
    "aligned-lyrics": _fields_or_data(
        st.fixed_dictionaries(
            {
                "alignment": st.lists(
                    st.fixed_dictionaries(
                        {"word": TEXT},
                        optional={
                            "start_s": NUMBER,
                            "end_s": NUMBER,
                            "p_align": NUMBER,
                            "success": st.booleans(),
                        },
                    ),
                    max_size=4,
                )
            }
        )
    ),
    "lyrics": st.fixed_dictionaries(
        {
            "code": st.just(200),
            "results": st.lists(
                st.fixed_dictionaries({"title": MAYBE_TEXT, "lyrics": MAYBE_TEXT}), max_size=2
            ),
        }
    ),
    "download": _fields_or_data(
        st.dictionaries(st.sampled_from(["mp3_url", "wav", "m4a_url"]), TEXT)
    ),
    "batch": _fields_or_data(
        st.fixed_dictionaries(
            {},
            optional={
                "message": TEXT,
                "batch_id": ID,
                "submitted": st.integers(0, 10),
                "tasks": st.lists(st.one_of(ID, st.fixed_dictionaries({"task_id": ID}), JSON)),
            },
        )
    ),
}


def _containers(node: Any) -> list[Any]:
    found = [node] if isinstance(node, (dict, list)) else []
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        found.extend(_containers(child))
    return found


@st.composite
def _corrupted(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> Any:
    """A well-formed body with one value somewhere replaced (or added) by arbitrary JSON."""
    body = copy.deepcopy(draw(bodies))
    containers = _containers(body)
    if not containers:
        return body
    target = draw(st.sampled_from(containers))
    value = draw(st.one_of(SCALARS, JSON))
    if isinstance(target, dict):
        keys = st.sampled_from(sorted(target)) if target else st.sampled_from(REAL_KEYS)
        target[draw(st.one_of(keys, st.sampled_from(REAL_KEYS)))] = value
    elif target:
        target[draw(st.integers(0, len(target) - 1))] = value
    else:
        target.append(value)
    return body


#: Arbitrary JSON, and objects made of the keys MusicAPI really sends.
BODIES = st.one_of(JSON, OBJECTS, ENVELOPES)


# --- every reader ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """A reader of one kind of answer and the check its result must pass."""

    name: str
    read: Callable[[Any], object]
    check: Callable[[Any], bool]


def _is_task(family: TaskFamily) -> Callable[[Any], bool]:
    def check(task: Any) -> bool:
        return (
            isinstance(task, Task)
            and task.ref.family is family
            and isinstance(task.status, TaskStatus)
            and all(isinstance(c, Clip) and isinstance(c.state, ClipState) for c in task.clips)
        )

    return check


def _task_reader(family: TaskFamily, status: int) -> Reader:
    ref = TaskRef("3f1c-task", family)
    return Reader(
        f"parse_task[{family.value}-{status}]",
        lambda body: parse_task(ref, status, body),
        _is_task(family),
    )


def _submit_reader(family: TaskFamily) -> Reader:
    return Reader(
        f"parse_submit[{family.value}]",
        lambda body: parse_submit(body, family),
        lambda ref: isinstance(ref, TaskRef) and ref.family is family and bool(ref.task_id),
    )


def _model(cls: type) -> Callable[[Any], bool]:
    return lambda result: isinstance(result, cls)


READERS = [
    *(_task_reader(family, status) for family in TaskFamily for status in (200, 202)),
    *(_submit_reader(family) for family in TaskFamily),
    Reader("parse_credits", parse_credits, _model(Credits)),
    Reader("parse_uploaded_clip", parse_uploaded_clip, _model(UploadedClip)),
    Reader("parse_persona", parse_persona, _model(Persona)),
    Reader("parse_wav", parse_wav, _model(WavFile)),
    Reader("parse_midi", parse_midi, _model(Midi)),
    Reader("parse_bpm", parse_bpm, _model(Bpm)),
    Reader("parse_vox", parse_vox, _model(Vox)),
    Reader("parse_upsampled_tags", parse_upsampled_tags, _model(UpsampledTags)),
    Reader("parse_aligned_lyrics", parse_aligned_lyrics, _model(AlignedLyrics)),
    Reader(
        "parse_lyrics",
        parse_lyrics,
        lambda r: isinstance(r, tuple) and all(isinstance(x, GeneratedLyrics) for x in r),
    ),
    Reader("parse_download_links", parse_download_links, _model(DownloadLinks)),
    Reader("parse_batch_submission", parse_batch_submission, _model(BatchSubmission)),
    Reader("parse_batch", parse_batch, _model(Batch)),
]


def _read(reader: Reader, body: Any) -> tuple[object, ResponseValidationError | None]:
    try:
        return reader.read(body), None
    except ResponseValidationError as exc:
        return None, exc


def _check_every_reader(body: Any) -> None:
    for reader in READERS:
        result, refused = _read(reader, body)
        if refused is not None:
            assert refused.field_path is not None, reader.name
            assert refused.field_path.startswith("$"), (reader.name, refused.field_path)
        else:
            assert reader.check(result), (reader.name, result)
            hash(result)  # frozen results go in sets and dict keys, whatever was read


@settings(max_examples=300, deadline=None)
@given(body=BODIES)
@example(body={"code": 200, "data": [{"clip_id": "c", "duration": 10**400}]})
@example(body={"code": 200, "data": [{"clip_id": "c", "created_at": "\ud800"}]})
@example(body={"data": {"alignment": "not a list"}})
@example(body=json.loads('{"task_id": "t", "status": "running", "progress": NaN}'))
@example(body=json.loads('{"status": "RUNNING", "progress": -Infinity, "duration": Infinity}'))
@example(body=json.loads('{"code": 200, "data": [{"clip_id": "c", "duration": NaN}]}'))
@example(body=json.loads('{"credits": Infinity, "extra_credits": NaN, "submitted": NaN}'))
def test_every_reader_returns_its_model_or_raises_on_arbitrary_json(body: Any) -> None:
    """Whatever the JSON, a reader returns its model or raises ResponseValidationError."""
    _check_every_reader(body)


@pytest.mark.parametrize("kind", sorted(WELL_FORMED))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_every_reader_returns_its_model_or_raises_on_near_miss_answers(
    kind: str, data: st.DataObject
) -> None:
    """Well-formed answers, and the same with any one value replaced, never crash a reader."""
    body = data.draw(st.one_of(WELL_FORMED[kind], _corrupted(WELL_FORMED[kind])), label=kind)
    _check_every_reader(body)


@settings(max_examples=100, deadline=None)
@given(body=BODIES, family=st.sampled_from(TaskFamily))
def test_a_202_answer_is_pending_whatever_its_body(body: Any, family: TaskFamily) -> None:
    """HTTP 202 means "still running" with any body, even one that is not an object."""
    task = parse_task(TaskRef("t", family), 202, body)
    assert task.status is TaskStatus.PENDING
    assert task.http_status == 202


_KNOWN_STATES = {state.value for state in ClipState}


@settings(max_examples=200, deadline=None)
@given(
    state=st.one_of(TEXT, st.sampled_from(["queued", "complete", "error", "STREAMING_V2"])).filter(
        lambda s: s.lower() not in _KNOWN_STATES
    ),
    other=st.sampled_from(["succeeded", "failed", "running", None]),
    family=st.sampled_from(TaskFamily),
)
def test_unknown_clip_state_is_kept_raw_and_never_terminal(
    state: str, other: str | None, family: TaskFamily
) -> None:
    """A snapshot with an unknown state never raises; that clip is UNKNOWN and unfinished."""
    clips: list[dict[str, Any]] = [{"clip_id": "c1", "state": state}]
    if other is not None:
        clips.append({"clip_id": "c2", "state": other})
    body = {"code": 200, "data": clips, "message": "success"}
    task = parse_task(TaskRef("t", family), 200, body)
    assert task.clips[0].state is ClipState.UNKNOWN
    assert task.clips[0].raw_state == state
    assert isinstance(task.status, TaskStatus)
    assert not task.is_terminal


# --- TaskRef serialisation ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    task_id=st.text(st.characters(exclude_categories=()), min_size=1),
    family=st.sampled_from(TaskFamily),
)
def test_task_ref_survives_a_json_round_trip(task_id: str, family: TaskFamily) -> None:
    """TaskRef.from_json(ref.to_json()) == ref for any non-empty id and every family."""
    ref = TaskRef(task_id, family)
    assert TaskRef.from_json(ref.to_json()) == ref
    assert TaskRef.from_dict(ref.to_dict()) == ref
    try:
        encoded = ref.to_json().encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form; str round trip above
        return
    assert TaskRef.from_json(encoded) == ref


@settings(max_examples=300, deadline=None)
@given(data=JSON)
@example(data={"task_id": "t", "family": []})
@example(data={"task_id": "t", "family": {"x": 1}})
def test_task_ref_from_dict_raises_only_value_error(data: Any) -> None:
    """Any JSON value either is a task reference or is refused with ValueError."""
    try:
        ref = TaskRef.from_dict(data)
    except ValueError:
        return
    assert isinstance(ref, TaskRef)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(TEXT, st.binary(max_size=20), JSON.map(json.dumps)))
@example(text="[" * 100_000)
@example(text=b"\xff\xfe\x00")
def test_task_ref_from_json_raises_only_value_error(text: str | bytes) -> None:
    """Any text (bad JSON, bad UTF-8, nesting too deep) is refused with ValueError."""
    try:
        ref = TaskRef.from_json(text)
    except ValueError:
        return
    assert isinstance(ref, TaskRef)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "needs a non-empty string 'task_id'"),
        ({"family": "sonic"}, "needs a non-empty string 'task_id'"),
        ({"task_id": ""}, "needs a non-empty string 'task_id'"),
        ({"task_id": 5}, "needs a non-empty string 'task_id'"),
        (
            {"task_id": "t", "family": "studio"},
            "unknown task family 'studio'; expected one of sonic, producer, nuro",
        ),
        ({"task_id": "t", "family": None}, "unknown task family None"),
        (["t", "sonic"], "must be a JSON object, got an array"),
        ("t", "must be a JSON object, got a string"),
        (None, "must be a JSON object, got null"),
    ],
)
def test_task_ref_from_dict_refuses_bad_input_with_a_helpful_message(
    data: Any, message: str
) -> None:
    """Missing id, unknown family, non-object: ValueError saying which."""
    with pytest.raises(ValueError, match=r"task reference|task family") as refused:
        TaskRef.from_dict(data)
    assert message in str(refused.value)


def test_task_ref_from_json_refuses_text_that_is_not_json() -> None:
    """from_json says the text is not JSON rather than failing obscurely."""
    with pytest.raises(ValueError, match="a task reference must be JSON"):
        TaskRef.from_json("sonic:3f1c")


def test_task_ref_from_json_ignores_unknown_keys() -> None:
    """Keys a newer version may write (or raw payloads) do not stop an older reader."""
    text = '{"task_id": "t-1", "family": "producer", "created": 1, "raw": {"steps": {}}}'
    assert TaskRef.from_json(text) == TaskRef("t-1", TaskFamily.PRODUCER)


def test_task_ref_without_family_is_a_sonic_task() -> None:
    """A reference with no family reads as Sonic, the default platform."""
    assert TaskRef.from_dict({"task_id": "t-1"}) == TaskRef("t-1", TaskFamily.SONIC)


# --- decoding rules (CONTRACT §15 rule 6) --------------------------------------------------

SONIC = TaskRef("t-1", TaskFamily.SONIC)


def _snapshot(**clip: Any) -> dict[str, Any]:
    return {"code": 200, "data": [{"clip_id": "c1", "state": "succeeded", **clip}], "message": ""}


def _clip(**clip: Any) -> Clip:
    return parse_task(SONIC, 200, _snapshot(**clip)).clips[0]


@pytest.mark.parametrize("duration", ["104.88", 104.88, " 104.88 "])
def test_duration_as_string_or_number_is_float_seconds(duration: object) -> None:
    """Durations arrive as "104.88" or 104.88; both read as the float 104.88."""
    value = _clip(duration=duration).duration
    assert value == 104.88
    assert isinstance(value, float)


def test_integer_duration_is_float_seconds() -> None:
    """An integer duration (the old docs' type) reads as a float."""
    value = _clip(duration=180).duration
    assert value == 180.0
    assert isinstance(value, float)


@pytest.mark.parametrize("duration", ["about 3 minutes", "nan", "1e999", True, [1]])
def test_unreadable_duration_names_its_field_path(duration: object) -> None:
    """A duration that is not a finite number raises with field_path $.data[0].duration."""
    body = _snapshot(duration=duration)
    with pytest.raises(ResponseValidationError) as refused:
        parse_task(SONIC, 200, body)
    assert refused.value.field_path == "$.data[0].duration"
    assert refused.value.body is body


@pytest.mark.parametrize("blank", ["", " ", "\t\n"], ids=["empty", "space", "whitespace"])
@pytest.mark.parametrize(
    "field", ["duration", "created_at", "style_weight", "weirdness_constraint"]
)
def test_a_blank_optional_number_or_timestamp_reads_as_none(field: str, blank: str) -> None:
    """One odd optional field ("duration": "") must not fail the whole poll."""
    task = parse_task(SONIC, 200, _snapshot(**{field: blank}))
    assert getattr(task.clips[0], field) is None
    assert task.clips[0].raw[field] == blank


def test_blank_optional_fields_elsewhere_read_as_none() -> None:
    """Aligned words, Nuro durations: the same rule for every optional number."""
    words = parse_aligned_lyrics({"data": {"alignment": [{"word": "a", "start_s": ""}]}}).words
    assert words[0].start_s is None
    nuro = parse_task(TaskRef("t", TaskFamily.NURO), 200, {"status": "running", "duration": ""})
    assert nuro.clips[0].duration is None


def test_a_blank_required_number_still_raises() -> None:
    """Only optional fields are lenient: a blank credit balance is still an error."""
    with pytest.raises(ResponseValidationError) as refused:
        parse_credits({"credits": "", "extra_credits": 0})
    assert refused.value.field_path == "$.credits"


def test_field_path_points_at_the_right_clip() -> None:
    """In a two-clip snapshot, the bad value of the second clip is reported as data[1]."""
    body = {
        "code": 200,
        "data": [{"clip_id": "c1", "duration": 1.0}, {"clip_id": "c2", "duration": "long"}],
    }
    with pytest.raises(ResponseValidationError) as refused:
        parse_task(SONIC, 200, body)
    assert refused.value.field_path == "$.data[1].duration"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2025-10-12T13:13:02.488Z",
            datetime(2025, 10, 12, 13, 13, 2, 488000, tzinfo=timezone.utc),
        ),
        (
            "2025-10-12T15:13:02.488+02:00",
            datetime(2025, 10, 12, 15, 13, 2, 488000, tzinfo=timezone(timedelta(hours=2))),
        ),
        (
            "2025-10-12T13:13:02.488",
            datetime(2025, 10, 12, 13, 13, 2, 488000, tzinfo=timezone.utc),
        ),
        (
            "2025-10-12T13:13:02.48Z",
            datetime(2025, 10, 12, 13, 13, 2, 480000, tzinfo=timezone.utc),
        ),
        (
            "2025-10-12T13:13:02.4Z",
            datetime(2025, 10, 12, 13, 13, 2, 400000, tzinfo=timezone.utc),
        ),
        (
            "2025-10-12T13:13:02.4880019Z",
            datetime(2025, 10, 12, 13, 13, 2, 488001, tzinfo=timezone.utc),
        ),
        (
            "2025-10-12T15:13:02.48812+02:00",
            datetime(2025, 10, 12, 15, 13, 2, 488120, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
    ids=[
        "zulu",
        "offset",
        "naive-read-as-utc",
        "two-digit-fraction",
        "one-digit-fraction",
        "seven-digit-fraction-truncated",
        "five-digit-fraction-with-offset",
    ],
)
def test_created_at_is_an_aware_datetime(text: str, expected: datetime) -> None:
    """created_at with Z, with an offset, or without one (read as UTC, never local time):
    the instant sent, always in UTC, as the model promises."""
    created = _clip(created_at=text).created_at
    assert created == expected
    assert created is not None
    assert created.tzinfo is timezone.utc


@pytest.mark.parametrize(
    ("seed", "expected"),
    [("abc", "abc"), (12345, "12345"), (12345.0, "12345"), (1.5, "1.5"), (-7, "-7")],
)
def test_a_seed_is_a_string_or_any_number_read_as_text(seed: object, expected: str) -> None:
    """CONTRACT: a seed is a "string or number"; a float one must not fail the whole poll."""
    assert _clip(seed=seed).seed == expected


@pytest.mark.parametrize("seed", [True, [1], {"a": 1}, float("nan")])
def test_a_seed_of_another_type_names_its_field_path(seed: object) -> None:
    with pytest.raises(ResponseValidationError) as refused:
        parse_task(SONIC, 200, _snapshot(seed=seed))
    assert refused.value.field_path == "$.data[0].seed"


@pytest.mark.parametrize("family", list(TaskFamily))
def test_a_task_ref_takes_its_family_as_a_string_too(family: TaskFamily) -> None:
    """A reference rebuilt from a database row (``TaskRef(row.id, row.family)``) is the
    same reference: equal, hashed alike, serialised alike."""
    ref = TaskRef("t-1", family.value)
    assert ref.family is family
    assert ref == TaskRef("t-1", family)
    assert hash(ref) == hash(TaskRef("t-1", family))
    assert ref.to_json() == TaskRef("t-1", family).to_json()


def test_a_task_ref_with_an_unknown_family_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="unknown task family 'studio'; expected one of sonic"):
        TaskRef("t-1", "studio")


def test_fields_typed_any_are_kept_exactly_as_sent() -> None:
    """Untyped payloads (vox wave_response, MIDI instruments) pass through unconverted."""
    wave = {"peaks": [0.1, None, "x"], "nested": {"a": [1, 2]}}
    assert parse_vox({"data": {"vox_audio_id": "v", "wave_response": wave}}).wave_response is wave
    notes = [{"name": "piano", "notes": [{"pitch": 60}]}, "odd", 3]
    assert parse_midi({"data": {"midi_url": None, "instruments": notes}}).instruments == tuple(
        notes
    )


@pytest.mark.parametrize("kind", ["failed", "timeout", "forbidden", "api_error", "brand_new"])
@pytest.mark.parametrize("data", [[], None, "absent"], ids=["empty", "null", "absent"])
@pytest.mark.parametrize("family", list(TaskFamily))
def test_a_failure_type_without_clips_is_a_failed_task(
    kind: str, data: object, family: TaskFamily
) -> None:
    """{"type": "failed", "data": []} is a failure, not an empty (pending) snapshot."""
    body: dict[str, Any] = {"type": kind, "message": "generation failed"}
    if data != "absent":
        body["data"] = data
    task = parse_task(TaskRef("t", family), 200, body)
    assert task.status is TaskStatus.FAILED
    assert task.error_type == kind
    assert task.error == "generation failed"


def test_an_empty_snapshot_without_a_failure_type_is_still_pending() -> None:
    assert parse_task(SONIC, 200, {"code": 200, "data": []}).status is TaskStatus.PENDING


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_nuro_progress_reads_as_unknown(literal: str) -> None:
    """json.loads accepts NaN and Infinity: a progress the SDK cannot use is None."""
    body = json.loads(f'{{"task_id": "t", "status": "running", "progress": {literal}}}')
    task = parse_task(TaskRef("t", TaskFamily.NURO), 200, body)
    assert task.status is TaskStatus.RUNNING
    assert task.progress is None


def test_unreadable_created_at_reads_as_none() -> None:
    """A created_at that is not ISO-8601 reads as None (kept in raw): an optional
    timestamp must not fail the snapshot of a finished task (tests/test_decoding.py)."""
    clip = _clip(created_at="last tuesday")
    assert clip.created_at is None
    assert clip.raw["created_at"] == "last tuesday"


@pytest.mark.parametrize(
    ("read", "body", "field_path"),
    [
        (lambda b: parse_task(SONIC, 200, b), _snapshot(title=5), "$.data[0].title"),
        (lambda b: parse_task(SONIC, 200, b), _snapshot(state=3), "$.data[0].state"),
        (lambda b: parse_task(SONIC, 200, b), {"code": 200, "data": {"x": 1}}, "$.data"),
        (lambda b: parse_task(SONIC, 200, b), {"code": 200, "data": [7]}, "$.data[0]"),
        (parse_credits, {"credits": "many", "extra_credits": 0}, "$.credits"),
        (parse_credits, {"credits": 1}, "$.extra_credits"),
        (parse_bpm, {"data": {"avg_bpm": "fast"}}, "$.data.avg_bpm"),
        (parse_wav, {"data": {"wav_url": 5}}, "$.data.wav_url"),
        (parse_uploaded_clip, {"code": 200}, "$.clip_id"),
        (parse_lyrics, {"results": [{"title": 1, "lyrics": "x"}]}, "$.results[0].title"),
        (
            parse_aligned_lyrics,
            {"data": {"alignment": [{"word": "a", "start_s": "soon"}]}},
            "$.data.alignment[0].start_s",
        ),
        (lambda b: parse_submit(b, TaskFamily.SONIC), {"message": "success"}, "$.task_id"),
        (parse_midi, [], "$"),
    ],
    ids=[
        "title-number",
        "state-number",
        "data-object",
        "clip-not-object",
        "credits-string",
        "credits-missing",
        "bpm-string",
        "wav-url-number",
        "upload-no-clip-id",
        "lyrics-title-number",
        "alignment-start-string",
        "submit-no-task-id",
        "midi-not-object",
    ],
)
def test_wrong_type_raises_with_the_field_path(
    read: Callable[[Any], object], body: Any, field_path: str
) -> None:
    """A value of the wrong type raises ResponseValidationError naming where it is."""
    with pytest.raises(ResponseValidationError) as refused:
        read(body)
    assert refused.value.field_path == field_path


def test_results_documented_flat_are_read_from_a_data_wrapper_too() -> None:
    """Credits, uploads and lyrics are documented at the top level; the same fields in the
    ``{"code": 200, "data": {...}}`` wrapper other endpoints use read alike, and an error
    inside the wrapper names its path there."""
    wrapped = {"code": 200, "data": {"credits": 10, "extra_credits": 2.5}}
    assert parse_credits(wrapped) == Credits(credits=10, extra_credits=2.5)
    assert parse_credits(wrapped).raw == wrapped
    assert parse_uploaded_clip({"code": 200, "data": {"clip_id": "c-1"}}).clip_id == "c-1"
    lyrics = parse_lyrics({"code": 200, "data": {"results": [{"title": "t", "lyrics": "l"}]}})
    assert lyrics == (GeneratedLyrics(title="t", lyrics="l"),)
    # The documented top level wins over a wrapper that also holds the key.
    both = {"credits": 1, "extra_credits": 0, "data": {"credits": 9, "extra_credits": 9}}
    assert parse_credits(both).credits == 1
    with pytest.raises(ResponseValidationError) as refused:
        parse_credits({"data": {"credits": "many", "extra_credits": 0}})
    assert refused.value.field_path == "$.data.credits"
    with pytest.raises(ResponseValidationError) as refused:
        parse_lyrics({"data": {"results": [{"title": 1}]}})
    assert refused.value.field_path == "$.data.results[0].title"


@pytest.mark.parametrize(
    ("read", "body", "field_path"),
    [
        (parse_download_links, {"code": 200, "data": {}}, "$.data"),
        (parse_download_links, {"code": 200, "message": "success"}, "$"),
        (parse_download_links, {"data": {"mp3_url": None, "wav_url": "ftp://x"}}, "$.data"),
        (parse_bpm, {"code": 200, "data": {}}, "$.data.avg_bpm"),
        (parse_bpm, {"code": 200, "message": "success"}, "$.avg_bpm"),
        (parse_bpm, {"data": {"avg_bpm": None, "max_bpm": ""}}, "$.data.avg_bpm"),
        (parse_vox, {"code": 200, "data": {"status": "done"}}, "$.data.vox_audio_id"),
        (parse_vox, {"vox_audio_id": ""}, "$.vox_audio_id"),
    ],
    ids=[
        "download-empty-data",
        "download-no-data",
        "download-no-http-url",
        "bpm-empty-data",
        "bpm-no-data",
        "bpm-all-blank",
        "vox-no-id",
        "vox-empty-id",
    ],
)
def test_a_result_without_its_documented_value_raises(
    read: Callable[[Any], object], body: Any, field_path: str
) -> None:
    """Download links without a URL, a BPM without a tempo, a vox without its id: not a result."""
    with pytest.raises(ResponseValidationError) as refused:
        read(body)
    assert refused.value.field_path == field_path
    assert refused.value.body is body
    assert refused.value.body is body


def test_unknown_fields_are_kept_in_clip_raw() -> None:
    """Fields the SDK does not model stay available on Clip.raw; the whole body on Task.raw."""
    body = _snapshot(brand_new={"x": [1, 2]}, persona_id="p-1", major_version=6)
    task = parse_task(SONIC, 200, body)
    clip = task.clips[0]
    assert clip.raw["brand_new"] == {"x": [1, 2]}
    assert clip.raw["major_version"] == 6
    assert clip.persona_id == "p-1"
    assert task.raw is body


def test_unknown_clip_state_becomes_unknown_and_keeps_the_raw_state() -> None:
    """A new state string is ClipState.UNKNOWN, with the server's string in raw_state."""
    clip = _clip(state="queued_for_mastering")
    assert clip.state is ClipState.UNKNOWN
    assert clip.raw_state == "queued_for_mastering"


def test_clip_states_are_read_case_insensitively() -> None:
    """ "SUCCEEDED" is SUCCEEDED; raw_state keeps the exact spelling."""
    clip = _clip(state="SUCCEEDED")
    assert clip.state is ClipState.SUCCEEDED
    assert clip.raw_state == "SUCCEEDED"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"error": "e", "message": "m", "detail": "d"}, "e"),
        ({"message": "m", "detail": "d"}, "m"),
        ({"detail": "d"}, "d"),
        ({"error": "", "message": "m"}, "m"),
        ({"error": None, "message": 5, "detail": "d"}, "d"),
        ({"error": {"message": "nested"}, "message": "m"}, "nested"),
        ({"type": "failed"}, None),
        ("  plain text  ", "plain text"),
        (["error"], None),
    ],
)
def test_error_text_prefers_error_then_message_then_detail(body: Any, text: str | None) -> None:
    """The failure message comes from error, else message, else detail (CONTRACT §15)."""
    assert error_text(body) == text


def test_task_failure_reads_error_before_message() -> None:
    """A failed task's error is taken from error, then message; its type is kept."""
    body = {"type": "timeout", "message": "m", "error": "upstream timed out"}
    task = parse_task(SONIC, 200, body)
    assert task.status is TaskStatus.FAILED
    assert task.error == "upstream timed out"
    assert task.error_type == "timeout"


def test_deeply_nested_error_body_does_not_exhaust_the_stack() -> None:
    """A failure body nested as deep as json.loads allows still reads without crashing."""
    depth = 10
    while True:  # the deepest nesting this interpreter's json.loads accepts from here
        try:
            json.loads('{"error":' * (depth + 10) + "1" + "}" * (depth + 10))
        except RecursionError:
            break
        depth += 10
    body = json.loads('{"type":"failed","error":' * depth + '"x"' + "}" * depth)
    task = parse_task(SONIC, 200, body)
    assert task.status is TaskStatus.FAILED


@pytest.mark.anyio
@pytest.mark.parametrize("status", [200, 400])
async def test_body_nested_too_deep_to_decode_raises_a_musicapi_error(status: int) -> None:
    """A 2xx body json cannot decode is a ResponseValidationError; an error body stays text."""
    nested = b"[" * 100_000 + b"]" * 100_000

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=nested)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        MusicAPI("test-key", base_url="http://localhost/api/v1", http_client=http) as client,
    ):
        expected = ResponseValidationError if status == 200 else BadRequestError
        with pytest.raises(expected):
            await client.credits.get()
