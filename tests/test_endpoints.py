"""Every endpoint of CONTRACT §2, exactly: method, path, query, JSON body, headers, parsed result.

Requests go through the real client and a real ``httpx.AsyncClient`` onto a recording
transport (``tests/_recording.py``) that answers from a script. Documented bodies come from
``tests/data/examples/`` (copies of the vendor's examples); where a stored example is cut short
(``<TRUNCATED ...>``), the test substitutes a realistic value and says so.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
from attrs import field, frozen

from musicapi_async import (
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
    MusicAPI,
    MusicAPIError,
    NotFoundError,
    Persona,
    ResponseValidationError,
    ResultNotReadyError,
    SonicCreate,
    Task,
    TaskFailedError,
    TaskFamily,
    TaskRef,
    TaskStatus,
    UploadedClip,
    UpsampledTags,
    Vox,
    WavFile,
)
from musicapi_async._constants import NOT_READY_DELAY, NOT_READY_TIMEOUT
from musicapi_async._serde import parse_task
from tests._recording import Recorded, Reply, make_client
from tests._scripted import ScriptedTransport, json_response, scripted_client

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parent / "data" / "examples"

TASK_ID = "7d0c5f0e-3b57-4a53-9f1e-2f1d7b3f9a10"
CLIP = "26c9c592-0566-46cf-bb71-91ac1deaa7b5"
CLIP_B = "30264033-2b01-43a7-8779-2a834b067486"
PERSONA = "c08806c1-34fa-4290-a78d-0c623eb1dd1c"
MP3 = f"https://cdn1.suno.ai/{CLIP}.mp3"
SOURCE_MP3 = "https://audio.jukehost.co.uk/Ij5SXdAJKLg4tggS8T1xIH1Z0DuOWq5e.mp3"
HOOK = "https://yourdomain.com/api/music-callback"
LYRICS = "[Verse]\nStars they shine above me\n\n[Chorus]\nStarry night"
#: Realistic stand-ins for values the stored examples cut off (same shapes as webhook.sonic.json).
CREATED_AT = "2025-10-12T13:13:02.488Z"
CREATED_AT_UTC = datetime(2025, 10, 12, 13, 13, 2, 488000, tzinfo=timezone.utc)

SUBMITTED = {"message": "success", "task_id": TASK_ID}
SONIC_REF = TaskRef(TASK_ID, TaskFamily.SONIC)
PRODUCER_REF = TaskRef(TASK_ID, TaskFamily.PRODUCER)
NURO_REF = TaskRef(TASK_ID, TaskFamily.NURO)


def example(name: str) -> Any:
    """A documented body from tests/data/examples/ (a fresh copy on every call)."""
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def assert_no_truncation_left(body: Any) -> None:
    assert "<TRUNCATED" not in json.dumps(body), "substitute every truncated value"


def assert_json_exact(actual: Any, expected: Any) -> None:
    """Equal JSON, with types: ``1`` is not ``1.0`` and ``true`` is not ``1`` here."""
    assert actual == expected
    assert json.dumps(actual, sort_keys=True) == json.dumps(expected, sort_keys=True)


def assert_standard_headers(sent: Recorded) -> None:
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["user-agent"].startswith("musicapi-async/")
    if sent.method == "POST":
        assert sent.headers["content-type"] == "application/json"
    else:
        assert "content-type" not in sent.headers
        assert sent.json is None


def sonic_clip(state: str | None, clip_id: str = CLIP, **extra: Any) -> dict[str, Any]:
    clip: dict[str, Any] = {"clip_id": clip_id, **extra}
    if state is not None:
        clip["state"] = state
    return clip


def snapshot(*clips: dict[str, Any]) -> dict[str, Any]:
    return {"code": 200, "data": list(clips), "message": "success"}


# --- 1. every endpoint: the exact request and the parsed answer ---------------------------


@frozen
class Case:
    """One endpoint call: what it must send, what the server answers, what it must return."""

    call: Callable[[MusicAPI], Awaitable[object]]
    method: str
    path: str
    #: The exact JSON body (``None`` for a GET).
    body: Any
    #: The JSON the transport answers with.
    reply: Any
    #: The parsed result, compared with ``==`` (``raw`` fields are left out of equality).
    result: object
    query: Mapping[str, str] = field(factory=dict)


def documented_create(name: str) -> dict[str, Any]:
    """A documented /sonic/create body with the task_type the SDK always sends."""
    return {"task_type": "create_music", **example(name)}


WAVE = {"peaks": [0.1, 0.7, 0.4]}
ALIGNMENT = [
    {"word": "Stars", "start_s": 0.52, "end_s": 0.91, "p_align": 0.98, "success": True},
    {"word": "they", "start_s": 0.91, "end_s": 1.1, "p_align": 0.5, "success": False},
]
MIDI_INSTRUMENTS = [{"name": "Piano", "notes": [{"pitch": 60, "start": 0.0, "end": 0.5}]}]

CASES: dict[str, Case] = {
    # /sonic/create and every named task_type helper
    "sonic.create description mode (custom_mode inferred False)": Case(
        lambda c: c.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi hip hop"),
        "POST",
        "/sonic/create",
        {
            "task_type": "create_music",
            "custom_mode": False,
            "mv": "sonic-v5",
            "gpt_description_prompt": "lofi hip hop",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.create custom mode (custom_mode inferred True)": Case(
        lambda c: c.sonic.create(mv="sonic-v4-5", prompt=LYRICS, title="Starry", tags="pop"),
        "POST",
        "/sonic/create",
        {
            "task_type": "create_music",
            "custom_mode": True,
            "mv": "sonic-v4-5",
            "prompt": LYRICS,
            "title": "Starry",
            "tags": "pop",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.create documented custom body": Case(
        lambda c: c.sonic.create(**example("sonic-create.request.custom.json")),
        "POST",
        "/sonic/create",
        documented_create("sonic-create.request.custom.json"),
        example("sonic-create.response.observed.json") | {"task_id": TASK_ID},
        SONIC_REF,
    ),
    "sonic.create every optional field": Case(
        lambda c: c.sonic.create(
            custom_mode=True,
            mv="sonic-v5",
            prompt="a brief",
            title="T" * 80,
            tags="pop",
            negative_tags="metal",
            make_instrumental=False,
            auto_lyrics=True,
            vocal_gender="m",
            style_weight=0.0,
            weirdness_constraint=1.0,
            audio_weight=0.5,
            use_suno_cdn=True,
            duration=120,
            webhook_url=HOOK,
            webhook_secret="your-secret-key",
        ),
        "POST",
        "/sonic/create",
        {
            "task_type": "create_music",
            "custom_mode": True,
            "mv": "sonic-v5",
            "prompt": "a brief",
            "title": "T" * 80,
            "tags": "pop",
            "negative_tags": "metal",
            "make_instrumental": False,
            "auto_lyrics": True,
            "vocal_gender": "m",
            "style_weight": 0.0,
            "weirdness_constraint": 1.0,
            "audio_weight": 0.5,
            "use_suno_cdn": True,
            "duration": 120,
            "webhook_url": HOOK,
            "webhook_secret": "your-secret-key",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.extend with lyrics": Case(
        lambda c: c.sonic.extend(CLIP, continue_at=30.5, mv="sonic-v5", prompt=LYRICS),
        "POST",
        "/sonic/create",
        {
            "task_type": "extend_music",
            "continue_clip_id": CLIP,
            "continue_at": 30.5,
            "custom_mode": True,
            "mv": "sonic-v5",
            "prompt": LYRICS,
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.extend without lyrics sends custom_mode false": Case(
        lambda c: c.sonic.extend(CLIP, continue_at=60.0, mv="sonic-v5", tags="pop"),
        "POST",
        "/sonic/create",
        {
            "task_type": "extend_music",
            "continue_clip_id": CLIP,
            "continue_at": 60.0,
            "custom_mode": False,
            "mv": "sonic-v5",
            "tags": "pop",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.extend with create's own fields (typed: CreateOptions)": Case(
        lambda c: c.sonic.extend(
            CLIP,
            continue_at=60.0,
            mv="sonic-v5",
            custom_mode=True,
            auto_lyrics=True,
            use_suno_cdn=False,
            duration=90,
        ),
        "POST",
        "/sonic/create",
        {
            "task_type": "extend_music",
            "continue_clip_id": CLIP,
            "continue_at": 60.0,
            "custom_mode": True,
            "mv": "sonic-v5",
            "auto_lyrics": True,
            "use_suno_cdn": False,
            "duration": 90,
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.extend_upload (documented body, default continue_at 0.1)": Case(
        lambda c: c.sonic.extend_upload(
            "your-uploaded-clip-id",
            mv="sonic-v4-5",
            prompt="[Verse 2]\nContinuing the song...\n\n[Chorus]\nNew chorus lyrics",
            tags="pop, upbeat",
        ),
        "POST",
        "/sonic/create",
        example("sonic-create.request.extend-upload.json"),
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.cover": Case(
        lambda c: c.sonic.cover("YOUR_CLIP_ID", mv="sonic-v5", tags="lo-fi, acoustic, mellow"),
        "POST",
        "/sonic/create",
        # The documented minimal body plus custom_mode, which CONTRACT §3.2 calls required.
        example("sonic-create.request.cover.json") | {"custom_mode": False},
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.cover_upload (documented body)": Case(
        lambda c: c.sonic.cover_upload(
            "your-uploaded-clip-id",
            mv="sonic-v4-5",
            prompt="[Verse]\nNew lyrics for the cover...\n\n[Chorus]\nCover chorus",
            tags="jazz, smooth, acoustic",
            audio_weight=0.6,
        ),
        "POST",
        "/sonic/create",
        example("sonic-create.request.cover-upload.json"),
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.concat": Case(
        lambda c: c.sonic.concat(CLIP),
        "POST",
        "/sonic/create",
        {"task_type": "concat_music", "continue_clip_id": CLIP},
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.concat with webhook": Case(
        lambda c: c.sonic.concat(
            CLIP,
            **example("webhook.request-fields.webhook_url.json"),
            **example("webhook.request-fields.webhook_secret.json"),
        ),
        "POST",
        "/sonic/create",
        {
            "task_type": "concat_music",
            "continue_clip_id": CLIP,
            "webhook_url": HOOK,
            "webhook_secret": "your-secret-key",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.persona_music (documented body)": Case(
        lambda c: c.sonic.persona_music(
            PERSONA,
            mv="sonic-v3-5",
            prompt=example("sonic-create.request.persona-music.json")["prompt"],
            title="Starts",
            tags="pop",
        ),
        "POST",
        "/sonic/create",
        example("sonic-create.request.persona-music.json"),
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.remaster": Case(
        lambda c: c.sonic.remaster(CLIP, mv="sonic-v5", variation_category="subtle"),
        "POST",
        "/sonic/create",
        {
            "task_type": "remaster",
            "continue_clip_id": CLIP,
            "mv": "sonic-v5",
            "variation_category": "subtle",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.add_instrumental": Case(
        lambda c: c.sonic.add_instrumental(
            CLIP,
            mv="sonic-v4-5",
            overpainting_start_s=0.0,
            overpainting_end_s=30.0,
            tags="acoustic guitar",
        ),
        "POST",
        "/sonic/create",
        {
            "task_type": "add_instrumental",
            "continue_clip_id": CLIP,
            "mv": "sonic-v4-5",
            "overpainting_start_s": 0.0,
            "overpainting_end_s": 30.0,
            "tags": "acoustic guitar",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.add_vocals": Case(
        lambda c: c.sonic.add_vocals(CLIP, prompt=LYRICS, mv="sonic-v4-5", style_weight=0.6),
        "POST",
        "/sonic/create",
        {
            "task_type": "add_vocals",
            "continue_clip_id": CLIP,
            "prompt": LYRICS,
            "mv": "sonic-v4-5",
            "style_weight": 0.6,
        },
        SUBMITTED,
        SONIC_REF,
    ),
    # the other Sonic async endpoints
    "sonic.upload_extend": Case(
        lambda c: c.sonic.upload_extend(
            SOURCE_MP3,
            mv="sonic-v4-5",
            prompt=LYRICS,
            continue_at=12.5,
            auto_concat=True,
            tags="pop",
        ),
        "POST",
        "/sonic/upload-extend",
        {
            "url": SOURCE_MP3,
            "custom_mode": True,
            "mv": "sonic-v4-5",
            "prompt": LYRICS,
            "continue_at": 12.5,
            "auto_concat": True,
            "tags": "pop",
        },
        {
            "code": 200,
            "message": "success",
            "task_id": TASK_ID,
            "steps": {"upload": {"success": True}, "extend": {"success": True}},
        },
        SONIC_REF,
    ),
    "sonic.upload_cover": Case(
        lambda c: c.sonic.upload_cover(
            SOURCE_MP3, mv="sonic-v4-5", gpt_description_prompt="bossa nova", audio_weight=0.4
        ),
        "POST",
        "/sonic/upload-cover",
        {
            "url": SOURCE_MP3,
            "custom_mode": False,
            "mv": "sonic-v4-5",
            "gpt_description_prompt": "bossa nova",
            "audio_weight": 0.4,
        },
        {"code": 200, "message": "success", "task_id": TASK_ID, "steps": {}},
        SONIC_REF,
    ),
    "sonic.sample from a url (make_instrumental defaults to false)": Case(
        lambda c: c.sonic.sample(
            url=SOURCE_MP3,
            chop_sample_start_s=5.0,
            chop_sample_end_s=20.0,
            mv="sonic-v4-5-all",
            gpt_description_prompt="a drill beat",
        ),
        "POST",
        "/sonic/sample",
        {
            "url": SOURCE_MP3,
            "chop_sample_start_s": 5.0,
            "chop_sample_end_s": 20.0,
            "custom_mode": False,
            "mv": "sonic-v4-5-all",
            "make_instrumental": False,
            "gpt_description_prompt": "a drill beat",
        },
        {"code": 200, "message": "success", "task_id": TASK_ID, "failed_step": None},
        SONIC_REF,
    ),
    "sonic.sample from a clip": Case(
        lambda c: c.sonic.sample(
            sample_clip_id=CLIP,
            chop_sample_start_s=0,
            chop_sample_end_s=10,
            mv="sonic-v4-5-all",
            prompt="a brief",
            auto_lyrics=True,
            make_instrumental=True,
            tags="trap",
        ),
        "POST",
        "/sonic/sample",
        {
            "sample_clip_id": CLIP,
            "chop_sample_start_s": 0,
            "chop_sample_end_s": 10,
            "custom_mode": True,
            "mv": "sonic-v4-5-all",
            "make_instrumental": True,
            "auto_lyrics": True,
            "prompt": "a brief",
            "tags": "trap",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.mashup": Case(
        lambda c: c.sonic.mashup(
            [CLIP, CLIP_B], mv="sonic-v4-5-all", gpt_description_prompt="blend them"
        ),
        "POST",
        "/sonic/mashup",
        {
            "mashup_clip_ids": [CLIP, CLIP_B],
            "custom_mode": False,
            "mv": "sonic-v4-5-all",
            "gpt_description_prompt": "blend them",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.replace_section (documented body)": Case(
        lambda c: c.sonic.replace_section(
            "YOUR_CLIP_ID",
            mv="sonic-v5",
            infill_start_s=30,
            infill_end_s=45,
            prompt="soaring chorus with layered harmonies",
        ),
        "POST",
        "/sonic/replace-section",
        example("sonic-replace-section.request.json"),
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.replace_section every optional field": Case(
        lambda c: c.sonic.replace_section(
            CLIP,
            mv="sonic-v5-5",
            infill_start_s=10.5,
            infill_end_s=20.25,
            prompt="context",
            infill_lyrics="new words",
            title="Fixed",
            tags="pop",
            negative_tags="metal",
            style_weight=0.3,
            weirdness_constraint=0.2,
            vocal_gender="f",
            auto_concat=True,
            webhook_url=HOOK,
            webhook_secret="s",
        ),
        "POST",
        "/sonic/replace-section",
        {
            "clip_id": CLIP,
            "mv": "sonic-v5-5",
            "infill_start_s": 10.5,
            "infill_end_s": 20.25,
            "prompt": "context",
            "infill_lyrics": "new words",
            "title": "Fixed",
            "tags": "pop",
            "negative_tags": "metal",
            "style_weight": 0.3,
            "weirdness_constraint": 0.2,
            "vocal_gender": "f",
            "auto_concat": True,
            "webhook_url": HOOK,
            "webhook_secret": "s",
        },
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.create_voice": Case(
        lambda c: c.sonic.create_voice(SOURCE_MP3, webhook_url=HOOK, webhook_secret="s"),
        "POST",
        "/sonic/create-voice",
        {"audio_url": SOURCE_MP3, "webhook_url": HOOK, "webhook_secret": "s"},
        SUBMITTED | {"warning": "keep the source online"},
        SONIC_REF,
    ),
    "sonic.stems_basic (documented body)": Case(
        lambda c: c.sonic.stems_basic(**example("sonic-stems.request.json")),
        "POST",
        "/sonic/stems/basic",
        example("sonic-stems.request.json"),
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.stems_full (documented body)": Case(
        lambda c: c.sonic.stems_full(**example("sonic-stems.request.json")),
        "POST",
        "/sonic/stems/full",
        example("sonic-stems.request.json"),
        SUBMITTED,
        SONIC_REF,
    ),
    "sonic.batch (documented body; each item carries its task_type)": Case(
        lambda c: c.sonic.batch(
            [SonicCreate(**item) for item in example("sonic-batch.request.json")["items"]]
        ),
        "POST",
        "/sonic/batch",
        {
            "items": [
                {"task_type": "create_music", **item}
                for item in example("sonic-batch.request.json")["items"]
            ]
        },
        example("sonic-batch.response.json"),
        BatchSubmission(batch_id="BATCH_ID", submitted=2, tasks=()),
    ),
    "sonic.batch with webhook, per-item tasks and errors": Case(
        lambda c: c.sonic.batch(
            [
                SonicCreate(custom_mode=False, mv="sonic-v5", gpt_description_prompt="a"),
                SonicCreate(custom_mode=False, mv="sonic-v5", gpt_description_prompt="b"),
                SonicCreate(custom_mode=False, mv="sonic-v5", gpt_description_prompt="c"),
            ],
            webhook_url=HOOK,
            webhook_secret="s",
        ),
        "POST",
        "/sonic/batch",
        {
            "items": [
                {
                    "task_type": "create_music",
                    "custom_mode": False,
                    "mv": "sonic-v5",
                    "gpt_description_prompt": p,
                }
                for p in "abc"
            ],
            "webhook_url": HOOK,
            "webhook_secret": "s",
        },
        {
            "message": "success",
            "batch_id": "b-1",
            "submitted": 2,
            "tasks": ["t-1", {"task_id": "t-2"}, {"error": "moderation"}],
        },
        BatchSubmission(
            batch_id="b-1",
            submitted=2,
            tasks=(TaskRef("t-1"), TaskRef("t-2")),
            errors=({"error": "moderation"},),
        ),
    ),
    "sonic.get_batch": Case(
        lambda c: c.sonic.get_batch("BATCH_ID"),
        "GET",
        "/sonic/batch",
        None,
        {"batch_id": "BATCH_ID", "tasks": [{"task_id": "t-1"}, {"task_id": "t-2"}]},
        Batch(batch_id="BATCH_ID", tasks=(TaskRef("t-1"), TaskRef("t-2"))),
        query={"batch_id": "BATCH_ID"},
    ),
    "sonic.get_batch (an item that started no task)": Case(
        lambda c: c.sonic.get_batch("BATCH_ID"),
        "GET",
        "/sonic/batch",
        None,
        {"batch_id": "BATCH_ID", "tasks": [{"task_id": "t-1"}, {"index": 1, "status": 400}]},
        Batch(batch_id="BATCH_ID", tasks=(TaskRef("t-1"),), errors=({"index": 1, "status": 400},)),
        query={"batch_id": "BATCH_ID"},
    ),
    # synchronous Sonic tools
    "sonic.upload (documented bodies)": Case(
        lambda c: c.sonic.upload(**example("sonic-upload.request.json")),
        "POST",
        "/sonic/upload",
        example("sonic-upload.request.json"),
        example("sonic-upload.response.json"),
        UploadedClip(clip_id="abc123-def456-..."),
    ),
    "sonic.create_persona (documented current body)": Case(
        lambda c: c.sonic.create_persona(**example("sonic-persona.request.current.json")),
        "POST",
        "/sonic/persona",
        example("sonic-persona.request.current.json"),
        {"code": 200, "persona_id": PERSONA, "message": "success"},
        Persona(persona_id=PERSONA, message="success"),
    ),
    "sonic.create_persona from a vox segment": Case(
        lambda c: c.sonic.create_persona(
            CLIP, name="Me", vox_audio_id="vox-1", vocal_start_s=10.0, vocal_end_s=40.0
        ),
        "POST",
        "/sonic/persona",
        {
            "clip_id": CLIP,
            "name": "Me",
            "vox_audio_id": "vox-1",
            "vocal_start_s": 10.0,
            "vocal_end_s": 40.0,
        },
        {"code": 200, "persona_id": PERSONA, "message": "success"},
        Persona(persona_id=PERSONA, message="success"),
    ),
    "sonic.wav (documented body)": Case(
        lambda c: c.sonic.wav(**example("sonic-wav.request.json")),
        "POST",
        "/sonic/wav",
        example("sonic-wav.request.json"),
        {"message": "success", "data": {"wav_url": f"https://cdn1.suno.ai/{CLIP}.wav"}},
        WavFile(wav_url=f"https://cdn1.suno.ai/{CLIP}.wav"),
    ),
    "sonic.midi": Case(
        lambda c: c.sonic.midi(CLIP),
        "POST",
        "/sonic/midi",
        {"clip_id": CLIP},
        {
            "code": 200,
            "message": "success",
            "data": {"midi_url": "https://cdn1.suno.ai/x.mid", "instruments": MIDI_INSTRUMENTS},
        },
        Midi(midi_url="https://cdn1.suno.ai/x.mid", instruments=tuple(MIDI_INSTRUMENTS)),
    ),
    "sonic.aligned_lyrics (documented body)": Case(
        lambda c: c.sonic.aligned_lyrics(**example("sonic-aligned-lyrics.request.json")),
        "POST",
        "/sonic/aligned-lyrics",
        example("sonic-aligned-lyrics.request.json"),
        {"code": 200, "message": "success", "data": {"alignment": ALIGNMENT}},
        AlignedLyrics(
            words=(
                AlignedWord("Stars", start_s=0.52, end_s=0.91, p_align=0.98, success=True),
                AlignedWord("they", start_s=0.91, end_s=1.1, p_align=0.5, success=False),
            )
        ),
    ),
    "sonic.bpm wrapped in data (spec)": Case(
        lambda c: c.sonic.bpm(CLIP),
        "POST",
        "/sonic/bpm",
        {"clip_id": CLIP},
        {"code": 200, "message": "success", "data": {"avg_bpm": 120, "max_bpm": 124.5}},
        Bpm(avg_bpm=120.0, max_bpm=124.5, min_bpm=None),
    ),
    "sonic.bpm at the top level (observed)": Case(
        lambda c: c.sonic.bpm(CLIP),
        "POST",
        "/sonic/bpm",
        {"clip_id": CLIP},
        {"avg_bpm": 120.0, "max_bpm": 124.5, "min_bpm": 118},
        Bpm(avg_bpm=120.0, max_bpm=124.5, min_bpm=118.0),
    ),
    "sonic.vox": Case(
        lambda c: c.sonic.vox(CLIP, vocal_start_s=10.0, vocal_end_s=40.0),
        "POST",
        "/sonic/vox",
        {"clip_id": CLIP, "vocal_start_s": 10.0, "vocal_end_s": 40.0},
        {
            "vox_audio_id": "vox-1",
            "status": "complete",
            "source_clip_id": CLIP,
            "vocal_start_s": 10,
            "vocal_end_s": 40,
            "wave_response": WAVE,
        },
        Vox(
            vox_audio_id="vox-1",
            status="complete",
            source_clip_id=CLIP,
            vocal_start_s=10.0,
            vocal_end_s=40.0,
            wave_response=WAVE,
        ),
    ),
    "sonic.vox without a window": Case(
        lambda c: c.sonic.vox(CLIP),
        "POST",
        "/sonic/vox",
        {"clip_id": CLIP},
        {"code": 200, "data": {"vox_audio_id": "vox-2", "status": "processing"}},
        Vox(vox_audio_id="vox-2", status="processing"),
    ),
    "sonic.upsample_tags": Case(
        lambda c: c.sonic.upsample_tags("lofi"),
        "POST",
        "/sonic/upsample-tags",
        {"tags": "lofi"},
        {"code": 200, "message": "success", "data": {"upsampled_tags": "lofi, dusty, warm"}},
        UpsampledTags(upsampled_tags="lofi, dusty, warm"),
    ),
    "sonic.lyrics (documented body)": Case(
        lambda c: c.sonic.lyrics(**example("sonic-lyrics.request.json")),
        "POST",
        "/sonic/lyrics",
        example("sonic-lyrics.request.json"),
        {"code": 200, "results": [{"title": "Sky", "lyrics": "[Verse]\nBlue"}], "message": "ok"},
        (GeneratedLyrics(title="Sky", lyrics="[Verse]\nBlue"),),
    ),
    "sonic.download (default format mp3)": Case(
        lambda c: c.sonic.download(CLIP),
        "POST",
        "/sonic/download",
        {"clip_id": CLIP, "formats": ["mp3"]},
        {"code": 200, "data": {"mp3_url": MP3}},
        DownloadLinks(urls={"mp3": MP3}),
    ),
    "sonic.download several formats": Case(
        lambda c: c.sonic.download(CLIP, formats=("mp3", "wav")),
        "POST",
        "/sonic/download",
        {"clip_id": CLIP, "formats": ["mp3", "wav"]},
        {"mp3": MP3, "wav": f"https://cdn1.suno.ai/{CLIP}.wav", "expires_in": 3600},
        DownloadLinks(urls={"mp3": MP3, "wav": f"https://cdn1.suno.ai/{CLIP}.wav"}),
    ),
    "sonic.get_task by id": Case(
        lambda c: c.sonic.get_task(TASK_ID),
        "GET",
        f"/sonic/task/{TASK_ID}",
        None,
        snapshot(sonic_clip("succeeded", audio_url=MP3)),
        Task(
            ref=SONIC_REF,
            status=TaskStatus.SUCCEEDED,
            clips=(Clip(CLIP, state=ClipState.SUCCEEDED, raw_state="succeeded", audio_url=MP3),),
        ),
    ),
    "sonic.get_task percent-encodes the id": Case(
        lambda c: c.sonic.get_task("a/b c"),
        "GET",
        "/sonic/task/a%2Fb%20c",
        None,
        {"type": "not_ready"},
        Task(ref=TaskRef("a/b c"), status=TaskStatus.PENDING),
    ),
    # Producer
    "producer.create (documented Lyria body)": Case(
        lambda c: c.producer.create(**example("producer-create.request.lyrics-lyria.json")),
        "POST",
        "/producer/create",
        example("producer-create.request.lyrics-lyria.json"),
        example("producer-create.response.json"),
        TaskRef("6d7253ac-916e-49a8-b288-91ffa7f8a8cd", TaskFamily.PRODUCER),
    ),
    "producer.create every optional field": Case(
        lambda c: c.producer.create(
            sound="synthwave",
            lyrics=LYRICS,
            mv="FUZZ-2.0",
            title="Night",
            seed=42,
            bpm="90",
            length=60,
            strength=0.5,
            webhook_url=HOOK,
            webhook_secret="s",
        ),
        "POST",
        "/producer/create",
        {
            "task_type": "create_music",
            "sound": "synthwave",
            "lyrics": LYRICS,
            "mv": "FUZZ-2.0",
            "title": "Night",
            "seed": 42,
            "bpm": "90",
            "length": 60,
            "strength": 0.5,
            "webhook_url": HOOK,
            "webhook_secret": "s",
        },
        SUBMITTED,
        PRODUCER_REF,
    ),
    "producer.create extend_music in the spec's words (extend_s, a long length)": Case(
        lambda c: c.producer.create(
            task_type="extend_music", clip_id="c", extend_s=30, length=300, sound="more"
        ),
        "POST",
        "/producer/create",
        {
            "task_type": "extend_music",
            "clip_id": "c",
            "extend_s": 30,
            "length": 300,
            "sound": "more",
        },
        SUBMITTED,
        PRODUCER_REF,
    ),
    "producer.extend (documented body)": Case(
        lambda c: c.producer.extend(
            "abc123xyz789",
            starts_at=45,
            instruction=example("producer-create.request.extend.json")["instruction"],
            length=30,
        ),
        "POST",
        "/producer/create",
        example("producer-create.request.extend.json"),
        SUBMITTED,
        PRODUCER_REF,
    ),
    "producer.replace (documented body)": Case(
        lambda c: c.producer.replace(
            "abc123xyz789",
            starts_at=30,
            ends_at=45,
            instruction=example("producer-create.request.replace.json")["instruction"],
        ),
        "POST",
        "/producer/create",
        example("producer-create.request.replace.json"),
        SUBMITTED,
        PRODUCER_REF,
    ),
    "producer.upload": Case(
        lambda c: c.producer.upload(SOURCE_MP3),
        "POST",
        "/producer/upload",
        {"audio_url": SOURCE_MP3},
        SUBMITTED,
        PRODUCER_REF,
    ),
    "producer.download (default mp3)": Case(
        lambda c: c.producer.download("abc123xyz789"),
        "POST",
        "/producer/download",
        {"clip_id": "abc123xyz789", "format": "mp3"},
        SUBMITTED,
        PRODUCER_REF,
    ),
    "producer.download wav with webhook": Case(
        lambda c: c.producer.download("abc", format="wav", webhook_url=HOOK, webhook_secret="s"),
        "POST",
        "/producer/download",
        {"clip_id": "abc", "format": "wav", "webhook_url": HOOK, "webhook_secret": "s"},
        SUBMITTED,
        PRODUCER_REF,
    ),
    "producer.get_task": Case(
        lambda c: c.producer.get_task(TASK_ID),
        "GET",
        f"/producer/task/{TASK_ID}",
        None,
        {"code": 200, "status": "RUNNING", "message": "success", "data": [{"clip_id": "p1"}]},
        Task(ref=PRODUCER_REF, status=TaskStatus.RUNNING, clips=(Clip("p1"),)),
    ),
    # Nuro
    "nuro.create vocal": Case(
        lambda c: c.nuro.create(
            type="vocal",
            lyrics="[verse] We were both young",
            gender="Female",
            duration=120,
            genre="Pop",
            mood="Happy",
            timbre="Warm",
        ),
        "POST",
        "/nuro/create",
        {
            "type": "vocal",
            "lyrics": "[verse] We were both young",
            "gender": "Female",
            "duration": 120,
            "genre": "Pop",
            "mood": "Happy",
            "timbre": "Warm",
        },
        example("nuro-create.response.json"),
        TaskRef("b1eac403-06cb-4e58-971d-835d3b321508", TaskFamily.NURO),
    ),
    "nuro.create bgm v1 (documented body)": Case(
        lambda c: c.nuro.create(**example("nuro-create.request.bgm-v1.json")),
        "POST",
        "/nuro/create",
        example("nuro-create.request.bgm-v1.json"),
        SUBMITTED,
        NURO_REF,
    ),
    "nuro.create bgm v2 with segments (documented body)": Case(
        lambda c: c.nuro.create(**example("nuro-create.request.bgm-v2.json")),
        "POST",
        "/nuro/create",
        example("nuro-create.request.bgm-v2.json"),
        SUBMITTED,
        NURO_REF,
    ),
    "nuro.get_task": Case(
        lambda c: c.nuro.get_task(TASK_ID),
        "GET",
        f"/nuro/task/{TASK_ID}",
        None,
        {"task_id": TASK_ID, "status": "running", "progress": 40},
        Task(
            ref=NURO_REF,
            status=TaskStatus.RUNNING,
            clips=(Clip(None, state=ClipState.RUNNING, raw_state="running"),),
            progress=40,
        ),
    ),
    # credits and the client-level dispatch
    "credits.get (documented answer)": Case(
        lambda c: c.credits.get(),
        "GET",
        "/get-credits",
        None,
        example("get-credits.response.json"),
        Credits(credits=50.0, extra_credits=0.0),
    ),
    "client.get_task dispatches a sonic ref": Case(
        lambda c: c.get_task(SONIC_REF),
        "GET",
        f"/sonic/task/{TASK_ID}",
        None,
        {"type": "not_ready"},
        Task(ref=SONIC_REF, status=TaskStatus.PENDING),
    ),
    "client.get_task dispatches a producer ref": Case(
        lambda c: c.get_task(PRODUCER_REF),
        "GET",
        f"/producer/task/{TASK_ID}",
        None,
        {"code": 200, "status": "PENDING", "message": "success", "data": []},
        Task(ref=PRODUCER_REF, status=TaskStatus.PENDING),
    ),
    "client.get_task dispatches a nuro ref": Case(
        lambda c: c.get_task(NURO_REF),
        "GET",
        f"/nuro/task/{TASK_ID}",
        None,
        {"task_id": TASK_ID, "status": "pending", "progress": 0},
        Task(
            ref=NURO_REF,
            status=TaskStatus.PENDING,
            clips=(Clip(None, state=ClipState.PENDING, raw_state="pending"),),
            progress=0,
        ),
    ),
}


@pytest.mark.parametrize("case", [pytest.param(case, id=name) for name, case in CASES.items()])
async def test_endpoint_sends_exact_request_and_returns_parsed_result(case: Case) -> None:
    """One call -> one request with the exact method, path, query, body and headers."""
    client, transport = make_client(Reply(case.reply))
    result = await case.call(client)
    assert len(transport.requests) == 1
    sent = transport.last
    assert (sent.method, sent.path) == (case.method, case.path)
    assert dict(sent.query) == dict(case.query)
    assert_json_exact(sent.json, case.body)
    assert_standard_headers(sent)
    assert type(result) is type(case.result)
    assert result == case.result


def test_every_documented_endpoint_has_a_case() -> None:
    """The table above covers every row of CONTRACT §2 (and every named task_type helper)."""
    covered = {
        (case.method, re.sub(r"/task/.*", "/task/{id}", case.path)) for case in CASES.values()
    }
    contract_rows = {
        ("POST", "/sonic/create"),
        ("GET", "/sonic/task/{id}"),
        ("POST", "/sonic/upload"),
        ("POST", "/sonic/upload-extend"),
        ("POST", "/sonic/upload-cover"),
        ("POST", "/sonic/persona"),
        ("POST", "/sonic/create-voice"),
        ("POST", "/sonic/sample"),
        ("POST", "/sonic/mashup"),
        ("POST", "/sonic/replace-section"),
        ("POST", "/sonic/stems/basic"),
        ("POST", "/sonic/stems/full"),
        ("POST", "/sonic/wav"),
        ("POST", "/sonic/midi"),
        ("POST", "/sonic/aligned-lyrics"),
        ("POST", "/sonic/bpm"),
        ("POST", "/sonic/vox"),
        ("POST", "/sonic/upsample-tags"),
        ("POST", "/sonic/lyrics"),
        ("POST", "/sonic/download"),
        ("POST", "/sonic/batch"),
        ("GET", "/sonic/batch"),
        ("GET", "/get-credits"),
        ("POST", "/producer/create"),
        ("GET", "/producer/task/{id}"),
        ("POST", "/producer/upload"),
        ("POST", "/producer/download"),
        ("POST", "/nuro/create"),
        ("GET", "/nuro/task/{id}"),
    }
    assert covered == contract_rows
    create_task_types = {
        case.body["task_type"]
        for case in CASES.values()
        if case.path in ("/sonic/create", "/producer/create")
    }
    assert {
        "create_music",
        "extend_music",
        "extend_upload_music",
        "concat_music",
        "cover_music",
        "cover_upload_music",
        "persona_music",
        "remaster",
        "add_instrumental",
        "add_vocals",
        "replace_music",
    } <= create_task_types


async def test_submit_answer_extra_fields_stay_on_the_ref() -> None:
    """upload-extend's ``steps`` and create-voice's ``warning`` are kept in ``TaskRef.raw``."""
    steps = {"upload": {"success": True, "clip_id": CLIP}, "extend": {"success": True}}
    client, _ = make_client(
        Reply({"code": 200, "message": "success", "task_id": "t", "steps": steps})
    )
    ref = await client.sonic.upload_extend(SOURCE_MP3, mv="sonic-v4-5")
    assert ref.raw["steps"] == steps
    client, _ = make_client(Reply({"message": "success", "task_id": "t", "warning": "keep it"}))
    ref = await client.sonic.create_voice(SOURCE_MP3)
    assert ref.raw["warning"] == "keep it"


# --- 2. the documented request bodies ---------------------------------------------------------

CREATE_EXAMPLES = [
    "sonic-create.request.auto-lyrics.json",
    "sonic-create.request.cover-upload.json",
    "sonic-create.request.custom.json",
    "sonic-create.request.description.json",
    "sonic-create.request.extend-upload.json",
    "sonic-create.request.faq-custom.json",
    "sonic-create.request.faq-description.json",
    "sonic-create.request.instrumental.json",
    "sonic-create.request.intro-custom.json",
    "sonic-create.request.intro-description.json",
    "sonic-create.request.persona-music.json",
    "sonic-create.request.vocal-gender.json",
]


@pytest.mark.parametrize("name", CREATE_EXAMPLES)
async def test_documented_create_body_is_sent_unchanged(name: str) -> None:
    """``sonic.create(**documented_body)`` sends that body, plus ``task_type`` when it lacks one."""
    client, transport = make_client(Reply(SUBMITTED))
    assert await client.sonic.create(**example(name)) == SONIC_REF
    assert_json_exact(transport.last.json, documented_create(name))


@pytest.mark.parametrize(
    ("name", "missing", "helper_adds"),
    [
        (
            "sonic-create.request.extend.json",
            "continue_at",
            {"continue_at": 0.0, "custom_mode": False},
        ),
        ("sonic-create.request.cover.json", "custom_mode", {"custom_mode": False}),
    ],
)
async def test_minimal_guide_bodies_lack_fields_the_sdk_requires(
    name: str, missing: str, helper_adds: dict[str, Any]
) -> None:
    """The guide's minimal extend/cover bodies omit §3.2-required fields: refused locally, and
    adding exactly those fields makes the body the SDK sends."""
    documented = example(name)
    client, transport = make_client(Reply(SUBMITTED))
    with pytest.raises(ValueError, match=rf"\b{missing}\b"):
        await client.sonic.create(**documented)
    assert transport.requests == []
    await client.sonic.create(**documented, **helper_adds)
    assert_json_exact(transport.last.json, documented | helper_adds)


@pytest.mark.parametrize(
    "name", ["producer-create.request.lyrics-fuzz.json", "producer-create.request.sound-only.json"]
)
async def test_fuzz_era_producer_bodies_are_sent_without_make_instrumental(name: str) -> None:
    """FUZZ-era bodies carry make_instrumental, ignored upstream since 2026-04 (CONTRACT §5):
    producer.create has no such argument and sends everything else unchanged."""
    documented = example(name)
    assert documented.pop("make_instrumental") is False
    client, transport = make_client(Reply(SUBMITTED))
    assert await client.producer.create(**documented) == PRODUCER_REF
    assert_json_exact(transport.last.json, documented)


async def test_documented_nuro_vocal_body_is_sent_unchanged() -> None:
    """The Nuro vocal example (lyrics cut in the stored copy, completed here) is sent as is."""
    documented = example("nuro-create.request.vocal.partial.json")
    # The stored copy cuts the lyrics mid-word; a short made-up ending stands in.
    documented["lyrics"] = documented["lyrics"].replace("<TRUNCATED IN STORED COPY>", "y yes'")
    assert_no_truncation_left(documented)
    client, transport = make_client(Reply(SUBMITTED))
    assert await client.nuro.create(**documented) == NURO_REF
    assert_json_exact(transport.last.json, documented)


async def test_webhook_request_fields_are_sent_as_given() -> None:
    """The documented webhook_url / webhook_secret fields travel in the create body as is."""
    fields = example("webhook.request-fields.webhook_url.json") | example(
        "webhook.request-fields.webhook_secret.json"
    )
    client, transport = make_client(Reply(SUBMITTED))
    await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x", **fields)
    assert transport.last.json["webhook_url"] == fields["webhook_url"]
    assert transport.last.json["webhook_secret"] == fields["webhook_secret"]


# --- 3. the documented response bodies --------------------------------------------------------


def sonic_task_example() -> dict[str, Any]:
    """sonic-task.response.succeeded.partial.json with its truncated values filled in."""
    body: dict[str, Any] = example("sonic-task.response.succeeded.partial.json")
    clip = body["data"][0]
    # The stored copy is cut from audio_url on; these realistic values stand in (the shapes of
    # webhook.sonic.json: a cdn1.suno.ai mp3, an ISO timestamp, the upstream mv, a string length).
    clip_id = clip["clip_id"]
    clip["audio_url"] = f"https://cdn1.suno.ai/{clip_id}.mp3"
    clip["video_url"] = f"https://cdn1.suno.ai/{clip_id}.mp4"
    clip["created_at"] = CREATED_AT
    clip["mv"] = "chirp-v3-5"
    clip["duration"] = "104.88"
    body["message"] = "success"
    assert_no_truncation_left(body)
    return body


async def test_documented_sonic_task_answer_parses_to_typed_clip() -> None:
    """The get-sonic-music example: string duration -> float seconds, created_at -> aware UTC."""
    client, _ = make_client(Reply(sonic_task_example()))
    task = await client.sonic.get_task(TASK_ID)
    assert task.status is TaskStatus.SUCCEEDED
    assert task.is_terminal
    assert task.succeeded
    (clip,) = task.clips
    assert clip.clip_id == CLIP
    assert clip.state is ClipState.SUCCEEDED
    assert clip.raw_state == "succeeded"
    assert clip.title == "Starts"
    assert clip.tags == "pop"
    assert clip.lyrics is not None
    assert clip.lyrics.startswith("[Verse]\nStars they shine above me")
    assert clip.image_url == f"https://cdn2.sonic.ai/image_{CLIP}.jpeg"
    assert clip.audio_url == MP3
    assert clip.video_url == f"https://cdn1.suno.ai/{CLIP}.mp4"
    assert clip.mv == "chirp-v3-5"
    assert clip.gpt_description_prompt is None
    assert isinstance(clip.duration, float)
    assert clip.duration == 104.88
    assert clip.created_at == CREATED_AT_UTC
    assert clip.created_at is not None
    assert clip.created_at.utcoffset() == timedelta(0)
    assert task.audio_urls == (MP3,)
    assert task.raise_for_status() is task


async def test_unknown_keys_are_kept_in_raw_and_never_raise() -> None:
    """Fields the SDK does not know (top level and per clip) end up in ``raw``."""
    body = sonic_task_example()
    body["data"][0]["future_field"] = {"nested": [1, 2]}
    body["data"][0]["persona_id"] = PERSONA
    body["trace_id"] = "abc"
    client, _ = make_client(Reply(body))
    task = await client.sonic.get_task(TASK_ID)
    (clip,) = task.clips
    assert clip.raw["future_field"] == {"nested": [1, 2]}
    assert clip.persona_id == PERSONA
    assert task.raw["trace_id"] == "abc"


async def test_null_clip_fields_are_tolerated() -> None:
    """Every field the spec marks nullable may be null; the clip still parses."""
    nullable = [
        "title",
        "tags",
        "lyrics",
        "image_url",
        "audio_url",
        "video_url",
        "created_at",
        "mv",
        "gpt_description_prompt",
        "negative_tags",
        "duration",
        "style_weight",
        "weirdness_constraint",
    ]
    nulls: dict[str, Any] = dict.fromkeys(nullable)
    client, _ = make_client(Reply(snapshot(sonic_clip("running", **nulls))))
    task = await client.sonic.get_task(TASK_ID)
    (clip,) = task.clips
    assert clip == Clip(CLIP, state=ClipState.RUNNING, raw_state="running")
    assert all(getattr(clip, name) is None for name in nullable)


@pytest.mark.parametrize(
    ("duration", "seconds"), [("104.88", 104.88), (104.88, 104.88), (240, 240.0), ("30", 30.0)]
)
async def test_duration_becomes_float_seconds(duration: object, seconds: float) -> None:
    """Durations arrive as decimal strings or numbers (CONTRACT §15 rule 6)."""
    client, _ = make_client(Reply(snapshot(sonic_clip("succeeded", duration=duration))))
    (clip,) = (await client.sonic.get_task(TASK_ID)).clips
    assert isinstance(clip.duration, float)
    assert clip.duration == seconds


async def test_documented_sonic_not_ready_answer_is_pending() -> None:
    """The observed early answer ``{"type": "not_ready"}`` reads as a pending task."""
    client, _ = make_client(Reply(example("sonic-task.response.not-ready.observed.json")))
    task = await client.sonic.get_task(TASK_ID)
    assert task == Task(ref=SONIC_REF, status=TaskStatus.PENDING, http_status=200)
    assert not task.is_terminal


def test_documented_webhook_payload_parses_like_a_poll() -> None:
    """webhook.sonic.json uses the polling envelope; the task parser reads it."""
    body = example("webhook.sonic.json")
    task = parse_task(SONIC_REF, 200, body)
    assert task.status is TaskStatus.SUCCEEDED
    (clip,) = task.clips
    assert clip.clip_id == CLIP_B
    assert clip.state is ClipState.SUCCEEDED
    assert clip.title == "Sunshine in My Pocket"
    assert clip.audio_url == f"https://cdn1.suno.ai/{CLIP_B}.mp3"
    assert clip.image_url == f"https://cdn2.suno.ai/image_{CLIP_B}.jpeg"
    assert clip.video_url is None
    assert clip.duration == 104.88
    assert clip.created_at == CREATED_AT_UTC
    assert clip.mv == "chirp-v5"
    assert (clip.negative_tags, clip.style_weight, clip.weirdness_constraint) == (None,) * 3
    assert clip.raw == body["data"][0]


async def test_documented_submit_answers_parse_to_refs() -> None:
    """The create answers of Sonic (observed), Producer and Nuro carry the task id."""
    # The observed Sonic answer shows a "<uuid>" placeholder; a real id stands in.
    sonic = example("sonic-create.response.observed.json") | {"task_id": TASK_ID}
    client, _ = make_client(Reply(sonic))
    assert await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x") == SONIC_REF
    client, _ = make_client(Reply(example("producer-create.response.json")))
    ref = await client.producer.create(sound="pop")
    assert ref == TaskRef("6d7253ac-916e-49a8-b288-91ffa7f8a8cd", TaskFamily.PRODUCER)
    client, _ = make_client(Reply(example("nuro-create.response.json")))
    ref = await client.nuro.create(type="bgm", description="calm")
    assert ref == TaskRef("b1eac403-06cb-4e58-971d-835d3b321508", TaskFamily.NURO)


async def test_documented_upload_answer_parses() -> None:
    client, _ = make_client(Reply(example("sonic-upload.response.json")))
    uploaded = await client.sonic.upload(SOURCE_MP3)
    assert uploaded == UploadedClip(clip_id="abc123-def456-...")
    assert uploaded.raw == example("sonic-upload.response.json")


async def test_documented_aligned_lyrics_answer_with_empty_alignment_parses() -> None:
    """The guide's example holds an empty alignment array."""
    client, _ = make_client(Reply(example("sonic-aligned-lyrics.response.json")))
    aligned = await client.sonic.aligned_lyrics(CLIP)
    assert aligned == AlignedLyrics(words=())


async def test_documented_batch_answer_parses() -> None:
    client, _ = make_client(Reply(example("sonic-batch.response.json")))
    batch = await client.sonic.batch(
        [SonicCreate(mv="sonic-v5", custom_mode=False, gpt_description_prompt="x")]
    )
    assert batch == BatchSubmission(batch_id="BATCH_ID", submitted=2, tasks=(), errors=())
    assert batch.raw["message"] == "success"


@pytest.mark.parametrize(
    "answer",
    [{"message": "success"}, {"code": 200, "task_ids": ["t-1", "t-2"]}, {"tasks": []}],
    ids=["bare success", "unknown key", "empty tasks"],
)
async def test_a_batch_answer_naming_no_task_nor_batch_is_unreadable_and_maybe_paid(
    answer: dict[str, object],
) -> None:
    """Up to ten paid tasks may have started: an answer that names neither them nor a
    batch to look them up by is no empty success."""
    client, _ = make_client(Reply(answer))
    with pytest.raises(ResponseValidationError) as caught:
        await client.sonic.batch(
            [SonicCreate(mv="sonic-v5", custom_mode=False, gpt_description_prompt="x")]
        )
    assert caught.value.task_may_exist is True


async def test_a_batch_answer_wrapped_in_data_is_read() -> None:
    answer = {"code": 200, "data": {"batch_id": "b-1", "submitted": 1, "tasks": ["t-1"]}}
    client, _ = make_client(Reply(answer))
    batch = await client.sonic.batch(
        [SonicCreate(mv="sonic-v5", custom_mode=False, gpt_description_prompt="x")]
    )
    assert batch == BatchSubmission(batch_id="b-1", submitted=1, tasks=(TaskRef("t-1"),))


async def test_documented_lyrics_answer_parses_to_two_candidates() -> None:
    body = example("sonic-lyrics.response.json")
    # The stored copy cuts the second lyric and the message; realistic values stand in.
    second = body["results"][1]
    second["lyrics"] = second["lyrics"].replace("<TRUNCATED IN STORED COPY>", "inting the hall")
    body["message"] = "success"
    assert_no_truncation_left(body)
    client, _ = make_client(Reply(body))
    lyrics = await client.sonic.lyrics("a song about sky")
    assert [item.title for item in lyrics] == ["Whisper of Shadows", "Midnight Shadows"]
    assert all(isinstance(item, GeneratedLyrics) for item in lyrics)
    assert lyrics[0].lyrics is not None
    assert lyrics[0].lyrics.startswith("[Verse]\nIn the alley dark as night")


async def test_documented_credits_answer_parses_to_floats() -> None:
    client, _ = make_client(Reply(example("get-credits.response.json")))
    credits = await client.credits.get()
    assert (credits.credits, credits.extra_credits, credits.total) == (50.0, 0.0, 50.0)
    assert isinstance(credits.credits, float)
    assert isinstance(credits.extra_credits, float)


async def test_documented_nuro_task_answer_is_one_succeeded_clip_with_progress() -> None:
    body = example("nuro-task.response.succeeded.partial.json")
    # The stored copy cuts the lyrics and gives only the types of the last fields.
    body["lyrics"] = body["lyrics"].replace("<TRUNCATED IN STORED COPY>", "n a summer night")
    body.update(duration=238.5, genre="Pop", mood="Romantic", gender="Female", timbre="Warm")
    assert_no_truncation_left(body)
    client, _ = make_client(Reply(body))
    task = await client.nuro.get_task("4c35433b-1649-433d-b513-8422af70fbaa")
    assert task.status is TaskStatus.SUCCEEDED
    assert task.progress == 100
    (clip,) = task.clips
    assert clip.clip_id is None
    assert clip.state is ClipState.SUCCEEDED
    assert clip.audio_url == body["audio_url"]
    assert clip.audio_url is not None
    assert clip.audio_url.endswith(".wav")
    assert clip.duration == 238.5
    assert clip.lyrics == body["lyrics"]
    assert (clip.raw["genre"], clip.raw["timbre"]) == ("Pop", "Warm")


async def test_documented_producer_task_answer_parses() -> None:
    body = example("producer-task.response.succeeded.partial.json")
    # The stored copy cuts image_url; a CDN jpeg in the style of the other URLs stands in.
    clip_id = body["data"][0]["clip_id"]
    body["data"][0]["image_url"] = f"https://musicapi-cdn.b-cdn.net/producer/{clip_id}.jpeg"
    assert_no_truncation_left(body)
    client, _ = make_client(Reply(body))
    task = await client.producer.get_task(TASK_ID)
    assert task.status is TaskStatus.SUCCEEDED
    (clip,) = task.clips
    assert clip.clip_id == clip_id
    # Producer items have no state of their own: they take the task's outcome.
    assert clip.state is ClipState.SUCCEEDED
    assert clip.raw_state is None
    assert clip.title == "Back to You"
    assert clip.sound is None
    assert clip.audio_url == f"https://musicapi-cdn.b-cdn.net/producer/{clip_id}.m4a"
    assert clip.wav_url == f"https://musicapi-cdn.b-cdn.net/producer/{clip_id}-wav.wav"
    assert clip.image_url == body["data"][0]["image_url"]


# --- 4. task answers (CONTRACT §15 rules 1 and 2) ---------------------------------------------

FAILED_TYPES = ["failed", "timeout", "forbidden", "api_error"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(202, {"type": "not_ready"}, id="202 not_ready"),
        pytest.param(202, None, id="202 empty body"),
        pytest.param(202, snapshot(sonic_clip("succeeded", audio_url=MP3)), id="202 snapshot"),
        pytest.param(202, {"type": "failed", "error": "x"}, id="202 failure-looking body"),
        pytest.param(200, {"type": "not_ready"}, id="200 not_ready"),
        pytest.param(200, snapshot(), id="200 empty data list"),
    ],
)
async def test_not_ready_answers_are_pending(status: int, body: Any) -> None:
    """202 with any body, 200 ``not_ready`` and an empty snapshot all mean "still running"."""
    client, _ = make_client(Reply(body, status=status))
    task = await client.sonic.get_task(TASK_ID)
    assert task.status is TaskStatus.PENDING
    assert task.http_status == status
    assert task.clips == ()
    assert not task.is_terminal
    assert task.raise_for_status() is task


@pytest.mark.parametrize("raw", [b"Accepted", b"<html>queued</html>", b"\xff\xfe"])
async def test_a_202_whose_body_is_not_json_is_pending_too(raw: bytes) -> None:
    """Any 202 body means not ready: a proxy's text or HTML is not an unreadable answer."""
    client, _ = make_client(Reply(status=202, raw=raw))
    task = await client.sonic.get_task(TASK_ID)
    assert task.status is TaskStatus.PENDING
    assert task.http_status == 202


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["pending", "pending"], TaskStatus.PENDING),
        (["pending", "running"], TaskStatus.RUNNING),
        (["running", "streaming"], TaskStatus.RUNNING),
        (["succeeded", "streaming"], TaskStatus.RUNNING),
        (["succeeded", "pending"], TaskStatus.RUNNING),
        (["failed", "running"], TaskStatus.RUNNING),
    ],
)
async def test_snapshot_with_unfinished_clip_is_not_terminal(
    states: list[str], expected: TaskStatus
) -> None:
    """A snapshot is terminal only when every clip is; pending/running/streaming are not."""
    clips = [sonic_clip(state, f"clip-{i}") for i, state in enumerate(states)]
    client, _ = make_client(Reply(snapshot(*clips)))
    task = await client.sonic.get_task(TASK_ID)
    assert task.status is expected
    assert not task.is_terminal
    assert [clip.raw_state for clip in task.clips] == states


async def test_streaming_clip_exposes_its_early_audio_url() -> None:
    """A ``streaming`` clip is playable before the task finishes."""
    body = snapshot(sonic_clip("streaming", audio_url=MP3), sonic_clip("running", CLIP_B))
    client, _ = make_client(Reply(body))
    task = await client.sonic.get_task(TASK_ID)
    assert not task.is_terminal
    assert task.clips[0].state is ClipState.STREAMING
    assert task.clips[0].audio_url == MP3
    assert task.audio_urls == (MP3,)


async def test_all_clips_succeeded_is_succeeded() -> None:
    body = snapshot(
        sonic_clip("succeeded", audio_url=MP3), sonic_clip("succeeded", CLIP_B, audio_url=MP3)
    )
    client, _ = make_client(Reply(body))
    task = await client.sonic.get_task(TASK_ID)
    assert task.status is TaskStatus.SUCCEEDED
    assert task.raise_for_status() is task


async def test_one_succeeded_one_failed_is_succeeded_with_the_failed_clip_visible() -> None:
    """The SDK's documented choice (Task.raise_for_status): one good clip makes a success."""
    assert "SUCCEEDED" in (Task.raise_for_status.__doc__ or "")
    body = snapshot(sonic_clip("succeeded", audio_url=MP3), sonic_clip("failed", CLIP_B))
    client, _ = make_client(Reply(body))
    task = await client.sonic.get_task(TASK_ID)
    assert task.status is TaskStatus.SUCCEEDED
    assert [clip.state for clip in task.clips] == [ClipState.SUCCEEDED, ClipState.FAILED]
    assert task.raise_for_status() is task
    assert task.audio_urls == (MP3,)


async def test_all_clips_failed_is_failed_and_raise_for_status_raises() -> None:
    body = snapshot(sonic_clip("failed"), sonic_clip("failed", CLIP_B))
    client, _ = make_client(Reply(body))
    task = await client.sonic.get_task(TASK_ID)
    assert task.status is TaskStatus.FAILED
    assert task.is_terminal
    with pytest.raises(TaskFailedError) as info:
        task.raise_for_status()
    assert info.value.task is task


@pytest.mark.parametrize("kind", [*FAILED_TYPES, "some_future_failure"])
@pytest.mark.parametrize("text_key", ["message", "error"])
async def test_typed_failure_body_fails_the_task(kind: str, text_key: str) -> None:
    """200 ``{"type": <failure>, "message"|"error": ...}`` is a terminal failure of the task."""
    client, _ = make_client(Reply({"type": kind, text_key: "Generation failed, refunded"}))
    task = await client.sonic.get_task(TASK_ID)
    assert task.status is TaskStatus.FAILED
    assert task.error == "Generation failed, refunded"
    assert task.error_type == kind
    assert task.clips == ()
    with pytest.raises(TaskFailedError, match="Generation failed, refunded") as info:
        task.raise_for_status()
    assert info.value.task is task


async def test_clip_without_state_is_unknown_and_not_terminal() -> None:
    client, _ = make_client(Reply(snapshot(sonic_clip(None, audio_url=MP3))))
    task = await client.sonic.get_task(TASK_ID)
    (clip,) = task.clips
    assert clip.state is ClipState.UNKNOWN
    assert clip.raw_state is None
    assert not task.is_terminal


async def test_unknown_clip_state_is_kept_raw_and_not_terminal() -> None:
    body = snapshot(sonic_clip("queued_for_mastering"), sonic_clip("succeeded", CLIP_B))
    client, _ = make_client(Reply(body))
    task = await client.sonic.get_task(TASK_ID)
    assert task.clips[0].state is ClipState.UNKNOWN
    assert task.clips[0].raw_state == "queued_for_mastering"
    assert not task.is_terminal


@pytest.mark.parametrize("key", ["message", "error"])
async def test_task_not_found_400_raises_not_found(key: str) -> None:
    """400 "task not found." (the docs' error table) raises NotFoundError, like a 404 would."""
    (row,) = [r for r in example("error.catalog.sonic.json") if "task not found" in r["message"]]
    assert row["http"] == 400
    client, transport = make_client(Reply({key: row["message"]}, status=400))
    with pytest.raises(NotFoundError) as info:
        await client.sonic.get_task(TASK_ID)
    assert info.value.status_code == 400
    assert info.value.path == f"/sonic/task/{TASK_ID}"
    assert len(transport.requests) == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("PENDING", TaskStatus.PENDING),
        ("RUNNING", TaskStatus.RUNNING),
        ("SUCCESS", TaskStatus.SUCCEEDED),
        ("FAILED", TaskStatus.FAILED),
    ],
)
async def test_producer_status_decides_the_task(status: str, expected: TaskStatus) -> None:
    body = {
        "code": 200,
        "status": status,
        "message": "refund ok" if status == "FAILED" else "success",
        "data": [{"clip_id": "p1", "audio_url": "https://musicapi-cdn.b-cdn.net/p1.m4a"}],
    }
    client, _ = make_client(Reply(body))
    task = await client.producer.get_task(TASK_ID)
    assert task.status is expected
    assert task.ref == PRODUCER_REF
    if expected is TaskStatus.FAILED:
        assert task.error == "refund ok"
        with pytest.raises(TaskFailedError):
            task.raise_for_status()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("PENDING", TaskStatus.PENDING),
        ("RUNNING", TaskStatus.RUNNING),
        ("FAILED", TaskStatus.FAILED),
    ],
)
@pytest.mark.parametrize("data", [None, "absent"])
async def test_producer_status_counts_without_a_data_list(
    status: str, expected: TaskStatus, data: str | None
) -> None:
    """A Producer answer with ``status`` but no (or null) ``data`` still follows its status."""
    body: dict[str, Any] = {"code": 200, "status": status, "message": "credits refunded"}
    if data is None:
        body["data"] = None
    client, _ = make_client(Reply(body))
    task = await client.producer.get_task(TASK_ID)
    assert task.status is expected
    assert task.clips == ()


async def test_producer_spec_shape_without_status_is_succeeded() -> None:
    """The spec's ``{code: 200, data: [items without state]}`` counts as a finished task."""
    body = {"code": 200, "message": "success", "data": [{"clip_id": "p1"}, {"clip_id": "p2"}]}
    client, _ = make_client(Reply(body))
    task = await client.producer.get_task(TASK_ID)
    assert task.status is TaskStatus.SUCCEEDED
    assert [clip.state for clip in task.clips] == [ClipState.SUCCEEDED] * 2


async def test_producer_202_is_pending() -> None:
    client, _ = make_client(Reply({"type": "not_ready"}, status=202))
    task = await client.producer.get_task(TASK_ID)
    assert task.status is TaskStatus.PENDING


@pytest.mark.parametrize(
    ("body", "status", "clip_state"),
    [
        ({"status": "pending", "progress": 0}, TaskStatus.PENDING, ClipState.PENDING),
        ({"status": "running", "progress": 55}, TaskStatus.RUNNING, ClipState.RUNNING),
        (
            {"status": "succeeded", "progress": 100, "audio_url": "https://cdn.musicapi.ai/a.wav"},
            TaskStatus.SUCCEEDED,
            ClipState.SUCCEEDED,
        ),
        ({"status": "failed", "progress": 30}, TaskStatus.FAILED, ClipState.FAILED),
    ],
)
async def test_nuro_flat_answer_is_one_clip_with_progress(
    body: dict[str, Any], status: TaskStatus, clip_state: ClipState
) -> None:
    client, _ = make_client(Reply({"task_id": TASK_ID, **body}))
    task = await client.nuro.get_task(TASK_ID)
    assert task.status is status
    assert task.progress == body["progress"]
    (clip,) = task.clips
    assert clip.state is clip_state
    assert clip.audio_url == body.get("audio_url")


async def test_nuro_typed_error_fails_the_task() -> None:
    body = {"task_id": TASK_ID, "type": "api_error", "error": "Algorithm error"}
    client, _ = make_client(Reply(body))
    task = await client.nuro.get_task(TASK_ID)
    assert (task.status, task.error_type, task.error) == (
        TaskStatus.FAILED,
        "api_error",
        "Algorithm error",
    )


# --- 5. client-side checks: nothing is sent ---------------------------------------------------


async def assert_refused(
    call: Callable[[MusicAPI], Awaitable[object]],
    error: type[Exception],
    names: str,
) -> str:
    """The call raises ``error`` whose message names ``names`` (a word), and sends nothing."""
    client, transport = make_client(Reply(SUBMITTED))
    with pytest.raises(error) as info:
        await call(client)
    assert re.search(rf"\b{re.escape(names)}\b", str(info.value)), str(info.value)
    assert transport.requests == []
    return str(info.value)


#: CONTRACT §3.2, per task_type: a complete /sonic/create body and the fields it requires.
REQUIRED_BY_TASK_TYPE: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "create_music custom": (
        {"task_type": "create_music", "custom_mode": True, "mv": "sonic-v5", "prompt": LYRICS},
        ("mv", "prompt"),
    ),
    "create_music description": (
        {
            "task_type": "create_music",
            "custom_mode": False,
            "mv": "sonic-v5",
            "gpt_description_prompt": "lofi",
        },
        ("mv", "gpt_description_prompt"),
    ),
    "extend_music": (
        {
            "task_type": "extend_music",
            "continue_clip_id": CLIP,
            "continue_at": 30.0,
            "custom_mode": False,
            "mv": "sonic-v5",
        },
        ("continue_clip_id", "continue_at", "custom_mode", "mv"),
    ),
    "extend_upload_music": (
        {
            "task_type": "extend_upload_music",
            "continue_clip_id": CLIP,
            "continue_at": 0.1,
            "custom_mode": False,
            "mv": "sonic-v5",
        },
        ("continue_clip_id", "continue_at", "custom_mode", "mv"),
    ),
    "concat_music": (
        {"task_type": "concat_music", "continue_clip_id": CLIP},
        ("continue_clip_id",),
    ),
    "cover_music": (
        {"task_type": "cover_music", "continue_clip_id": CLIP, "custom_mode": False, "mv": "v"},
        ("continue_clip_id", "custom_mode", "mv"),
    ),
    "cover_upload_music": (
        {
            "task_type": "cover_upload_music",
            "continue_clip_id": CLIP,
            "custom_mode": True,
            "mv": "v",
        },
        ("continue_clip_id", "custom_mode", "mv"),
    ),
    "persona_music": (
        {"task_type": "persona_music", "persona_id": PERSONA, "custom_mode": False, "mv": "v"},
        ("persona_id", "custom_mode", "mv"),
    ),
    "remaster": (
        {"task_type": "remaster", "continue_clip_id": CLIP, "mv": "sonic-v5"},
        ("continue_clip_id", "mv"),
    ),
    "add_instrumental": (
        {"task_type": "add_instrumental", "continue_clip_id": CLIP, "mv": "sonic-v4-5"},
        ("continue_clip_id", "mv"),
    ),
    "add_vocals": (
        {"task_type": "add_vocals", "continue_clip_id": CLIP, "mv": "sonic-v4-5", "prompt": "la"},
        ("continue_clip_id", "mv", "prompt"),
    ),
}


@pytest.mark.parametrize(
    "complete",
    [pytest.param(body, id=label) for label, (body, _) in REQUIRED_BY_TASK_TYPE.items()],
)
async def test_complete_create_body_for_each_task_type_is_sent_as_is(
    complete: dict[str, Any],
) -> None:
    """The reference bodies above are valid: with every required field, create sends them."""
    client, transport = make_client(Reply(SUBMITTED))
    await client.sonic.create(**complete)
    assert_json_exact(transport.last.json, complete)


@pytest.mark.parametrize(
    ("kwargs", "missing"),
    [
        pytest.param({k: v for k, v in body.items() if k != name}, name, id=f"{label}: {name}")
        for label, (body, required) in REQUIRED_BY_TASK_TYPE.items()
        for name in required
    ],
)
async def test_missing_required_field_is_refused_before_sending(
    kwargs: dict[str, Any], missing: str
) -> None:
    """Each field CONTRACT §3.2 requires for a task_type: ValueError naming it, no request."""
    await assert_refused(lambda c: c.sonic.create(**kwargs), ValueError, missing)


@pytest.mark.parametrize(
    ("kwargs", "advice"),
    [
        pytest.param(
            {"mv": "sonic-v5"},
            "give the song's words for task_type='create_music': gpt_description_prompt",
            id="neither prompt nor description",
        ),
        pytest.param(
            {"mv": "sonic-v5", "prompt": "p", "gpt_description_prompt": "d"},
            "both prompt and gpt_description_prompt are given: set custom_mode=True",
            id="both",
        ),
        pytest.param(
            {"mv": "v", "task_type": "extend_music", "continue_clip_id": CLIP, "continue_at": 1.0}
            | {"prompt": "[Verse] la"},
            "custom_mode is required for task_type='extend_music': True with prompt",
            id="not derived for other task types",
        ),
    ],
)
async def test_create_music_without_inferable_custom_mode_is_refused(
    kwargs: dict[str, Any], advice: str
) -> None:
    """The error names what to give: a prompt when none is, custom_mode when it is unclear."""
    message = await assert_refused(lambda c: c.sonic.create(**kwargs), ValueError, "custom_mode")
    assert message.startswith(advice), message


BOTH_TEXTS = {"prompt": "[Verse] la", "gpt_description_prompt": "a sea shanty"}


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.sonic.extend(CLIP, continue_at=1, mv="v", **BOTH_TEXTS), id="ext"),
        pytest.param(lambda c: c.sonic.cover(CLIP, mv="v", **BOTH_TEXTS), id="cover"),
        pytest.param(lambda c: c.sonic.persona_music(PERSONA, mv="v", **BOTH_TEXTS), id="persona"),
        pytest.param(lambda c: c.sonic.upload_extend(SOURCE_MP3, mv="v", **BOTH_TEXTS), id="up"),
        pytest.param(
            lambda c: c.sonic.sample(
                chop_sample_start_s=0,
                chop_sample_end_s=5,
                mv="v",
                sample_clip_id=CLIP,
                **BOTH_TEXTS,
            ),
            id="sample",
        ),
        pytest.param(lambda c: c.sonic.mashup([CLIP, CLIP_B], mv="v", **BOTH_TEXTS), id="mashup"),
    ],
)
async def test_a_shortcut_given_both_texts_without_custom_mode_is_refused_like_create(
    call: Callable[[MusicAPI], Awaitable[object]],
) -> None:
    """Description mode would have been sent, the lyrics silently dropped, on a paid call."""
    message = await assert_refused(call, ValueError, "custom_mode")
    assert message.startswith("both prompt and gpt_description_prompt are given"), message


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda c: c.sonic.create(mv="v", gpt_description_prompt="d", auto_lyrics=True),
            id="create derived",
        ),
        pytest.param(
            lambda c: c.sonic.create(mv="v", custom_mode=False, prompt="p", auto_lyrics=True),
            id="create explicit",
        ),
        pytest.param(
            lambda c: c.sonic.mashup(
                [CLIP, CLIP_B], mv="v", gpt_description_prompt="d", auto_lyrics=True
            ),
            id="mashup",
        ),
    ],
)
async def test_auto_lyrics_in_description_mode_is_refused(
    call: Callable[[MusicAPI], Awaitable[object]],
) -> None:
    """CONTRACT §3.1: auto_lyrics works with custom_mode true only."""
    await assert_refused(call, ValueError, "auto_lyrics")


async def test_auto_lyrics_alone_makes_a_shortcut_custom_mode() -> None:
    client, transport = make_client(Reply(SUBMITTED))
    await client.sonic.sample(
        chop_sample_start_s=0, chop_sample_end_s=5, mv="v", sample_clip_id=CLIP, auto_lyrics=True
    )
    assert transport.last.json["custom_mode"] is True
    assert transport.last.json["auto_lyrics"] is True


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.sonic.create_persona(CLIP, name="n" * 79), id="persona name 79"),
    ],
)
async def test_a_text_at_its_limit_is_sent(call: Callable[[MusicAPI], Awaitable[object]]) -> None:
    client, transport = make_client(Reply({"code": 200, "persona_id": "p", "results": []}))
    # The answer may not parse as the call's result: what matters is that it was sent.
    with contextlib.suppress(MusicAPIError):
        await call(client)
    assert len(transport.requests) == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(
            lambda c: c.sonic.create(mv="sonic-v5", gpt_description_prompt=123),
            "gpt_description_prompt",
            id="sonic description",
        ),
        pytest.param(
            lambda c: c.sonic.create(mv=5, gpt_description_prompt="d"), "mv", id="sonic mv"
        ),
        pytest.param(lambda c: c.producer.create(sound=["synth"]), "sound", id="producer sound"),
        pytest.param(
            lambda c: c.producer.create(sound="synth", webhook_secret=1234), "webhook_secret"
        ),
        pytest.param(
            lambda c: c.sonic.replace_section(
                CLIP, mv="v", infill_start_s=1, infill_end_s=2, tags=5
            ),
            "tags",
            id="replace_section tags",
        ),
        pytest.param(
            lambda c: c.sonic.upload_cover(SOURCE_MP3, mv="v", tags=5), "tags", id="upload tags"
        ),
        pytest.param(
            lambda c: c.sonic.sample(
                chop_sample_start_s=0, chop_sample_end_s=5, mv="v", sample_clip_id=CLIP, prompt=7
            ),
            "prompt",
            id="sample prompt",
        ),
        pytest.param(
            lambda c: c.sonic.mashup([CLIP, 2], mv="v"), "each of clip_ids", id="mashup ids"
        ),
        pytest.param(lambda c: c.sonic.create_persona(CLIP, name=123), "name", id="persona name"),
        pytest.param(lambda c: c.sonic.lyrics(["d"]), "description", id="lyrics description"),
        pytest.param(lambda c: c.sonic.wav(123), "clip_id", id="wav"),
        pytest.param(lambda c: c.sonic.midi(123), "clip_id", id="midi"),
        pytest.param(lambda c: c.sonic.vox(123), "clip_id", id="vox"),
        pytest.param(lambda c: c.sonic.download(123), "clip_id", id="download"),
        pytest.param(lambda c: c.sonic.stems_basic(123), "clip_id", id="stems"),
        pytest.param(lambda c: c.sonic.extend(123, continue_at=1, mv="v"), "clip_id", id="extend"),
        pytest.param(
            lambda c: c.sonic.sample(
                chop_sample_start_s=0, chop_sample_end_s=5, mv="v", sample_clip_id=5
            ),
            "sample_clip_id",
            id="sample_clip_id",
        ),
    ],
)
async def test_a_text_field_of_another_type_is_refused_before_sending(
    call: Callable[[MusicAPI], Awaitable[object]], field: str
) -> None:
    """The server's 400 would not say which field; the SDK names it (and never echoes the
    value: it may be a secret)."""
    message = await assert_refused(call, TypeError, field)
    assert re.fullmatch(rf"{field} must be a string, got \w+", message), message


@pytest.mark.parametrize(
    ("call", "names"),
    [
        pytest.param(
            lambda c: c.sonic.extend("", continue_at=1.0, mv="v"),
            "clip_id",
            id="extend clip",
        ),
        pytest.param(lambda c: c.sonic.extend(CLIP, continue_at=1.0, mv=""), "mv", id="extend mv"),
        pytest.param(lambda c: c.sonic.cover(CLIP, mv=" "), "mv", id="cover blank mv"),
        pytest.param(lambda c: c.sonic.concat(""), "clip_id", id="concat"),
        pytest.param(lambda c: c.sonic.persona_music("", mv="v"), "persona_id", id="persona_music"),
        pytest.param(
            lambda c: c.sonic.add_vocals(CLIP, prompt="", mv="v"), "prompt", id="add_vocals"
        ),
        pytest.param(
            lambda c: c.sonic.upload_extend(SOURCE_MP3, mv=""), "mv", id="upload_extend mv"
        ),
        pytest.param(
            lambda c: c.sonic.upload_cover("file.mp3", mv="v"), "url", id="upload_cover url"
        ),
        pytest.param(lambda c: c.sonic.upload("ftp://x/a.mp3"), "url", id="upload url"),
        pytest.param(lambda c: c.sonic.create_voice("a.mp3"), "audio_url", id="create_voice"),
        pytest.param(lambda c: c.sonic.stems_basic(""), "clip_id", id="stems_basic"),
        pytest.param(lambda c: c.sonic.stems_full(""), "clip_id", id="stems_full"),
        pytest.param(lambda c: c.sonic.wav(""), "clip_id", id="wav"),
        pytest.param(lambda c: c.sonic.midi(""), "clip_id", id="midi"),
        pytest.param(lambda c: c.sonic.download(""), "clip_id", id="download"),
        pytest.param(
            lambda c: c.sonic.download(CLIP, formats=()), "formats", id="download formats"
        ),
        pytest.param(lambda c: c.sonic.create_persona(CLIP, name=""), "name", id="persona name"),
        pytest.param(lambda c: c.sonic.upsample_tags(""), "tags", id="upsample_tags"),
        pytest.param(lambda c: c.sonic.lyrics(""), "description", id="lyrics"),
        pytest.param(lambda c: c.sonic.get_batch(""), "batch_id", id="get_batch"),
        pytest.param(lambda c: c.producer.create(title="x"), "sound", id="producer sound/lyrics"),
        pytest.param(lambda c: c.producer.extend("", starts_at=1), "clip_id", id="producer extend"),
        pytest.param(
            lambda c: c.producer.create(task_type="replace_music", clip_id="c", starts_at=1),
            "ends_at",
            id="producer replace ends_at",
        ),
        pytest.param(
            lambda c: c.producer.create(task_type="replace_upload_music", clip_id="c", starts_at=1),
            "ends_at",
            id="producer replace_upload ends_at",
        ),
        pytest.param(
            lambda c: c.producer.create(task_type="replace_upload_music", clip_id="c", ends_at=9),
            "starts_at",
            id="producer replace_upload starts_at",
        ),
        pytest.param(
            lambda c: c.producer.create(task_type="extend_upload_music", clip_id="c"),
            "starts_at",
            id="producer extend_upload starts_at",
        ),
        pytest.param(
            lambda c: c.sonic.create_persona(CLIP, name="n", vocal_start_s=10, vocal_end_s=2),
            "vocal_end_s",
            id="persona vocal window",
        ),
        pytest.param(
            lambda c: c.sonic.add_instrumental(
                CLIP, mv="v", overpainting_start_s=10, overpainting_end_s=2
            ),
            "overpainting_end_s",
            id="overpainting window",
        ),
        pytest.param(
            lambda c: c.sonic.create_persona(CLIP, name="n" * 80), "name", id="persona name 80"
        ),
        pytest.param(lambda c: c.producer.upload("x.mp3"), "audio_url", id="producer upload"),
        pytest.param(lambda c: c.producer.download(""), "clip_id", id="producer download"),
        pytest.param(lambda c: c.nuro.create(type="vocal"), "lyrics", id="nuro vocal lyrics"),
        pytest.param(lambda c: c.nuro.create(type="bgm"), "description", id="nuro bgm description"),
    ],
)
async def test_helper_missing_or_blank_value_is_refused_before_sending(
    call: Callable[[MusicAPI], Awaitable[object]], names: str
) -> None:
    await assert_refused(call, ValueError, names)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda c: c.sonic.create(mv="v", gpt_description_prompt="d", title="x" * 81),
            id="create",
        ),
        pytest.param(
            lambda c: c.sonic.extend(CLIP, continue_at=1, mv="v", title="x" * 81), id="extend"
        ),
        pytest.param(
            lambda c: c.sonic.upload_cover(SOURCE_MP3, mv="v", title="x" * 81), id="upload_cover"
        ),
        pytest.param(lambda c: c.sonic.mashup([CLIP, CLIP_B], mv="v", title="x" * 81), id="mashup"),
        pytest.param(
            lambda c: c.sonic.replace_section(
                CLIP, mv="v", infill_start_s=1, infill_end_s=2, title="x" * 81
            ),
            id="replace_section",
        ),
        pytest.param(lambda c: c.producer.create(sound="pop", title="x" * 81), id="producer"),
        pytest.param(
            lambda c: c.sonic.batch(
                [SonicCreate(mv="v", custom_mode=False, gpt_description_prompt="d", title="x" * 81)]
            ),
            id="batch item",
        ),
    ],
)
async def test_title_over_80_characters_is_refused(
    call: Callable[[MusicAPI], Awaitable[object]],
) -> None:
    message = await assert_refused(call, ValueError, "title")
    assert "80" in message


@pytest.mark.parametrize("name", ["style_weight", "weirdness_constraint", "audio_weight"])
@pytest.mark.parametrize("value", [1.01, -0.01])
async def test_weight_outside_0_1_is_refused(name: str, value: float) -> None:
    kwargs: dict[str, Any] = {"mv": "sonic-v5", "gpt_description_prompt": "d", name: value}
    await assert_refused(lambda c: c.sonic.create(**kwargs), ValueError, name)


#: Every number argument, with the call that takes it; the value is filled in by the test.
NUMBER_ARGUMENTS: list[tuple[str, Callable[[MusicAPI, float], Awaitable[object]]]] = [
    (
        "style_weight",
        lambda c, x: c.sonic.create(mv="v", gpt_description_prompt="d", style_weight=x),
    ),
    (
        "weirdness_constraint",
        lambda c, x: c.sonic.cover(CLIP, mv="v", weirdness_constraint=x),
    ),
    ("audio_weight", lambda c, x: c.sonic.upload_cover(SOURCE_MP3, mv="v", audio_weight=x)),
    ("continue_at", lambda c, x: c.sonic.extend(CLIP, continue_at=x, mv="v")),
    (
        "overpainting_start_s",
        lambda c, x: c.sonic.add_vocals(CLIP, prompt="p", mv="v", overpainting_start_s=x),
    ),
    ("duration", lambda c, x: c.sonic.create(mv="v", gpt_description_prompt="d", duration=x)),  # type: ignore[arg-type]
    (
        "chop_sample_end_s",
        lambda c, x: c.sonic.sample(
            url=SOURCE_MP3, mv="v", chop_sample_start_s=0, chop_sample_end_s=x
        ),
    ),
    (
        "infill_end_s",
        lambda c, x: c.sonic.replace_section(CLIP, mv="v", infill_start_s=0, infill_end_s=x),
    ),
    ("vocal_start_s", lambda c, x: c.sonic.vox(CLIP, vocal_start_s=x)),
    ("vocal_end_s", lambda c, x: c.sonic.create_persona(CLIP, name="n", vocal_end_s=x)),
    ("starts_at", lambda c, x: c.producer.extend(CLIP, starts_at=x)),
    ("length", lambda c, x: c.producer.create(sound="pop", length=x)),
    ("strength", lambda c, x: c.producer.create(sound="pop", strength=x)),
    ("extend_s", lambda c, x: c.producer.create(sound="pop", extend_s=x)),
    ("bpm", lambda c, x: c.producer.create(sound="pop", bpm=x)),
    ("duration", lambda c, x: c.nuro.create(type="bgm", description="d", duration=x)),  # type: ignore[arg-type]
    (
        "style_weight",
        lambda c, x: c.sonic.batch(
            [SonicCreate(mv="v", custom_mode=False, gpt_description_prompt="d", style_weight=x)]
        ),
    ),
    # Unchecked fields still fail naming where the value sits in the body.
    (
        "segments[0].start",
        lambda c, x: c.nuro.create(type="bgm", description="d", segments=[{"start": x}]),
    ),
]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    ("name", "call"),
    NUMBER_ARGUMENTS,
    ids=[f"{i}-{name}" for i, (name, _) in enumerate(NUMBER_ARGUMENTS)],
)
async def test_a_non_finite_number_is_refused_naming_its_argument(
    name: str, call: Callable[[MusicAPI, float], Awaitable[object]], value: float
) -> None:
    """NaN passes every range check and JSON cannot carry it: refused before sending."""
    message = await assert_refused(lambda c: call(c, value), ValueError, name)
    assert "finite" in message


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"custom_mode": "true", "prompt": "p"}, id="string true with lyrics"),
        pytest.param({"custom_mode": "false", "gpt_description_prompt": "d"}, id="string false"),
        pytest.param({"custom_mode": 1, "prompt": "p"}, id="integer 1"),
        pytest.param({"custom_mode": 0, "gpt_description_prompt": "d"}, id="integer 0"),
    ],
)
async def test_non_bool_custom_mode_is_a_type_error(kwargs: dict[str, Any]) -> None:
    """The server answers 400 "should be boolean"; the SDK refuses it first, as a TypeError."""
    await assert_refused(
        lambda c: c.sonic.create(mv="sonic-v5", **kwargs), TypeError, "custom_mode"
    )


@pytest.mark.parametrize("value", ["yes", 0, ""], ids=["truthy string", "zero", "empty string"])
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda c, x: c.sonic.extend(CLIP, continue_at=1.0, mv="v", prompt="[Verse] la", **x),
            id="extend",
        ),
        pytest.param(
            lambda c, x: c.sonic.upload_extend(SOURCE_MP3, mv="v", prompt="[Verse] la", **x),
            id="upload_extend",
        ),
        pytest.param(
            lambda c, x: c.sonic.sample(
                url=SOURCE_MP3, chop_sample_start_s=0, chop_sample_end_s=5, mv="v", **x
            ),
            id="sample",
        ),
        pytest.param(lambda c, x: c.sonic.mashup([CLIP, CLIP_B], mv="v", **x), id="mashup"),
    ],
)
async def test_non_bool_custom_mode_on_a_helper_is_a_type_error(
    call: Callable[[MusicAPI, dict[str, Any]], Awaitable[object]], value: object
) -> None:
    """A falsy non-bool (0, "") must not slip through as False: the lyrics would go out
    in description mode, in a paid task."""
    await assert_refused(lambda c: call(c, {"custom_mode": value}), TypeError, "custom_mode")


async def test_sample_sends_make_instrumental_even_when_given_none() -> None:
    """/sonic/sample requires the field: None (the SDK's "not set") is sent as false."""
    client, transport = make_client(Reply(SUBMITTED))
    unset: dict[str, Any] = {"make_instrumental": None}
    await client.sonic.sample(
        url=SOURCE_MP3, chop_sample_start_s=0, chop_sample_end_s=5, mv="v", **unset
    )
    assert transport.last.json["make_instrumental"] is False


@pytest.mark.parametrize("count", [0, 11])
async def test_batch_needs_1_to_10_items(count: int) -> None:
    items = [SonicCreate(custom_mode=False, mv="v", gpt_description_prompt="d")] * count
    await assert_refused(lambda c: c.sonic.batch(items), ValueError, "items")


async def test_batch_of_10_items_is_sent() -> None:
    items = [
        SonicCreate(custom_mode=False, mv="v", gpt_description_prompt=str(i)) for i in range(10)
    ]
    client, transport = make_client(Reply(example("sonic-batch.response.json")))
    await client.sonic.batch(items)
    assert len(transport.last.json["items"]) == 10


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.sonic.extend(CLIP, continue_at=30, mv="v"), id="extend"),
        pytest.param(
            lambda c: c.sonic.extend_upload(CLIP, continue_at=30, mv="v"), id="extend_upload"
        ),
        pytest.param(
            lambda c: c.sonic.create(
                task_type="extend_music",
                continue_clip_id=CLIP,
                continue_at=30,
                custom_mode=False,
                mv="v",
            ),
            id="create extend_music",
        ),
        pytest.param(
            lambda c: c.sonic.upload_extend(SOURCE_MP3, continue_at=30, mv="v"),
            id="upload_extend",
        ),
        pytest.param(
            lambda c: c.sonic.batch(
                [
                    SonicCreate(
                        task_type="extend_music",
                        continue_clip_id=CLIP,
                        continue_at=30,
                        custom_mode=False,
                        mv="v",
                    )
                ]
            ),
            id="batch item",
        ),
    ],
)
async def test_continue_at_goes_over_the_wire_as_a_json_float(
    call: Callable[[MusicAPI], Awaitable[object]],
) -> None:
    """An int continue_at is sent as 30.0 (CONTRACT: send a float), checked on the raw bytes.

    Parsed JSON cannot tell: 30 == 30.0 in Python, so the other tests would not notice.
    """
    transport = ScriptedTransport(json_response(200, {**SUBMITTED, "tasks": [TASK_ID]}))
    async with scripted_client(transport) as client:
        await call(client)
    [sent] = transport.sent
    assert b'"continue_at":30.0' in sent.request.content


async def test_batch_items_derive_custom_mode_like_create() -> None:
    """A description-only item is description mode, a lyrics-only item custom mode."""
    items = [
        SonicCreate(mv="v", gpt_description_prompt="a sea shanty"),
        SonicCreate(mv="v", prompt="[Verse]\nla la", title="t", tags="pop"),
    ]
    assert [item.custom_mode for item in items] == [False, True]
    client, transport = make_client(Reply(example("sonic-batch.response.json")))
    await client.sonic.batch(items)
    assert [body["custom_mode"] for body in transport.last.json["items"]] == [False, True]


def test_sonic_create_keeps_an_explicit_or_undecidable_custom_mode() -> None:
    """Given, it is kept; with both texts (or neither) it stays unset and to_body names it."""
    assert SonicCreate(mv="v", custom_mode=True, gpt_description_prompt="d").custom_mode is True
    both = SonicCreate(mv="v", prompt="p", gpt_description_prompt="d")
    assert both.custom_mode is None
    with pytest.raises(ValueError, match="custom_mode"):
        both.to_body()
    # Other task types keep the rule of create(task_type=...): custom_mode is required.
    extend = SonicCreate(task_type="extend_music", mv="v", continue_clip_id=CLIP, continue_at=3)
    assert extend.custom_mode is None


async def test_open_enum_arguments_send_new_values_as_given() -> None:
    """formats, format, variation_category, vocal_gender are open: a new value is sent as is."""
    client, transport = make_client(Reply({"data": {"flac_url": "https://cdn1.suno.ai/x.flac"}}))
    links = await client.sonic.download(CLIP, formats=["mp3", "flac"])
    assert transport.last.json["formats"] == ["mp3", "flac"]
    assert links.urls == {"flac": "https://cdn1.suno.ai/x.flac"}
    client, transport = make_client(Reply(SUBMITTED))
    await client.producer.download(CLIP, format="flac")
    assert transport.last.json["format"] == "flac"
    await client.sonic.remaster(CLIP, mv="sonic-v5", variation_category="extreme")
    assert transport.last.json["variation_category"] == "extreme"
    await client.sonic.cover(CLIP, mv="sonic-v5", vocal_gender="duet")
    assert transport.last.json["vocal_gender"] == "duet"
    await client.sonic.replace_section(
        CLIP, mv="sonic-v5", infill_start_s=1, infill_end_s=2, vocal_gender="duet"
    )
    assert transport.last.json["vocal_gender"] == "duet"


async def test_batch_item_missing_a_field_is_refused_with_its_index() -> None:
    items = [
        SonicCreate(custom_mode=False, mv="v", gpt_description_prompt="d"),
        SonicCreate(custom_mode=False, gpt_description_prompt="d"),
    ]
    message = await assert_refused(lambda c: c.sonic.batch(items), ValueError, "mv")
    assert "items[1]" in message


@pytest.mark.parametrize(
    "source",
    [
        pytest.param({"url": SOURCE_MP3, "sample_clip_id": CLIP}, id="both"),
        pytest.param({}, id="neither"),
    ],
)
async def test_sample_needs_exactly_one_source(source: dict[str, Any]) -> None:
    await assert_refused(
        lambda c: c.sonic.sample(
            chop_sample_start_s=0, chop_sample_end_s=10, mv="sonic-v4-5-all", **source
        ),
        ValueError,
        "sample_clip_id",
    )


@pytest.mark.parametrize("end", [5.0, 4.0])
async def test_sample_window_must_end_after_it_starts(end: float) -> None:
    await assert_refused(
        lambda c: c.sonic.sample(
            url=SOURCE_MP3, chop_sample_start_s=5.0, chop_sample_end_s=end, mv="v"
        ),
        ValueError,
        "chop_sample_end_s",
    )


@pytest.mark.parametrize(
    "clip_ids", [pytest.param([CLIP], id="one"), pytest.param([CLIP, CLIP_B, "c3"], id="three")]
)
async def test_mashup_needs_exactly_two_clips(clip_ids: list[str]) -> None:
    await assert_refused(lambda c: c.sonic.mashup(clip_ids, mv="v"), ValueError, "clip_ids")


@pytest.mark.parametrize("end", [30.0, 29.5])
async def test_replace_section_end_must_follow_start(end: float) -> None:
    await assert_refused(
        lambda c: c.sonic.replace_section(CLIP, mv="v", infill_start_s=30.0, infill_end_s=end),
        ValueError,
        "infill_end_s",
    )


async def test_webhook_url_must_be_https() -> None:
    await assert_refused(
        lambda c: c.sonic.create(mv="v", gpt_description_prompt="d", webhook_url="http://x/y"),
        ValueError,
        "webhook_url",
    )


async def test_get_task_with_another_familys_ref_is_refused() -> None:
    await assert_refused(lambda c: c.sonic.get_task(PRODUCER_REF), ValueError, "producer")


@pytest.mark.parametrize(
    ("call", "body"),
    [
        pytest.param(
            lambda c: c.sonic.create(mv="sonic-v9-future", gpt_description_prompt="d"),
            {
                "task_type": "create_music",
                "custom_mode": False,
                "mv": "sonic-v9-future",
                "gpt_description_prompt": "d",
            },
            id="unknown mv",
        ),
        pytest.param(
            lambda c: c.sonic.create(task_type="some_new_type", continue_clip_id=CLIP, mv="v"),
            {"task_type": "some_new_type", "continue_clip_id": CLIP, "mv": "v"},
            id="unknown task_type",
        ),
        pytest.param(
            lambda c: c.sonic.create(mv="v", prompt="p", vocal_gender="x"),
            {
                "task_type": "create_music",
                "custom_mode": True,
                "mv": "v",
                "prompt": "p",
                "vocal_gender": "x",
            },
            id="unknown vocal_gender",
        ),
        pytest.param(
            lambda c: c.sonic.create(
                task_type="remaster", continue_clip_id=CLIP, mv="v", variation_category="wild"
            ),
            {
                "task_type": "remaster",
                "continue_clip_id": CLIP,
                "mv": "v",
                "variation_category": "wild",
            },
            id="unknown variation_category",
        ),
        pytest.param(
            lambda c: c.sonic.replace_section(
                CLIP, mv="chirp-v9", infill_start_s=0, infill_end_s=1
            ),
            {"clip_id": CLIP, "mv": "chirp-v9", "infill_start_s": 0, "infill_end_s": 1},
            id="unknown replace-section mv",
        ),
        pytest.param(
            lambda c: c.producer.create(task_type="future_music", clip_id="c", mv="Lyria 9"),
            {"task_type": "future_music", "clip_id": "c", "mv": "Lyria 9"},
            id="unknown producer task_type and mv",
        ),
        pytest.param(
            lambda c: c.producer.create(task_type="make_lyrics", lyrics="la la"),
            {"task_type": "make_lyrics", "lyrics": "la la"},
            id="unknown producer task_type without a clip",
        ),
        pytest.param(
            lambda c: c.nuro.create(type="vocal", lyrics="l", gender="Choir", genre="Sea Shanty"),
            {"type": "vocal", "lyrics": "l", "gender": "Choir", "genre": "Sea Shanty"},
            id="unknown nuro values",
        ),
    ],
)
async def test_unknown_future_values_pass_through_unchanged(
    call: Callable[[MusicAPI], Awaitable[object]], body: dict[str, Any]
) -> None:
    """Enums are open: the SDK refuses no new model id, task type or option value."""
    client, transport = make_client(Reply(SUBMITTED))
    await call(client)
    assert_json_exact(transport.last.json, body)


# --- 6. sync endpoints that answer 202 while they build ---------------------------------------

NOT_READY = Reply({"type": "not_ready"}, status=202)


@pytest.mark.parametrize(
    ("call", "path", "answer"),
    [
        pytest.param(
            lambda c: c.sonic.midi(CLIP),
            "/sonic/midi",
            {"data": {"midi_url": "https://cdn1.suno.ai/x.mid", "instruments": []}},
            id="midi",
        ),
        pytest.param(
            lambda c: c.sonic.download(CLIP, formats=["wav"]),
            "/sonic/download",
            {"data": {"wav_url": "https://cdn1.suno.ai/x.wav"}},
            id="download",
        ),
    ],
)
async def test_not_ready_202_is_repeated_until_ready(
    call: Callable[[MusicAPI], Awaitable[object]], path: str, answer: dict[str, Any]
) -> None:
    """Two 202 answers, then the result: three identical requests, NOT_READY_DELAY apart."""
    client, transport = make_client(NOT_READY, Reply(None, status=202), Reply(answer))
    start = anyio.current_time()
    result = await call(client)
    assert isinstance(result, (Midi, DownloadLinks))
    assert [sent.path for sent in transport.requests] == [path] * 3
    assert len({json.dumps(sent.json) for sent in transport.requests}) == 1
    assert [sent.at - start for sent in transport.requests] == pytest.approx(
        [0, NOT_READY_DELAY, 2 * NOT_READY_DELAY]
    )


async def test_a_202_with_a_text_body_is_repeated_until_ready_not_an_unreadable_answer() -> None:
    """A 202 "building" in plain text is not ready like any 202: repeated, free, and not
    the "may already have charged" error of an unreadable paid answer."""
    answer = {"data": {"midi_url": "https://cdn1.suno.ai/x.mid", "instruments": []}}
    client, transport = make_client(Reply(status=202, raw=b"building"), Reply(answer))
    result = await client.sonic.midi(CLIP)
    assert isinstance(result, Midi)
    assert [sent.path for sent in transport.requests] == ["/sonic/midi"] * 2


@pytest.mark.parametrize(
    ("call", "path", "answer"),
    [
        pytest.param(
            lambda c: c.sonic.midi(CLIP),
            "/sonic/midi",
            {"data": {"midi_url": "https://cdn1.suno.ai/x.mid", "instruments": []}},
            id="midi",
        ),
        pytest.param(
            lambda c: c.sonic.download(CLIP, formats=["wav"]),
            "/sonic/download",
            {"data": {"wav_url": "https://cdn1.suno.ai/x.wav"}},
            id="download",
        ),
    ],
)
async def test_not_ready_200_is_repeated_until_ready_like_a_202(
    call: Callable[[MusicAPI], Awaitable[object]], path: str, answer: dict[str, Any]
) -> None:
    """HTTP 200 ``{"type": "not_ready"}`` also means "still building" (CONTRACT §15 rule 1)."""
    client, transport = make_client(Reply({"type": "not_ready"}), Reply(answer))
    start = anyio.current_time()
    result = await call(client)
    assert isinstance(result, (Midi, DownloadLinks))
    assert [sent.path for sent in transport.requests] == [path] * 2
    assert [sent.at - start for sent in transport.requests] == pytest.approx([0, NOT_READY_DELAY])


async def test_endless_200_not_ready_raises_result_not_ready() -> None:
    client, transport = make_client(Reply({"type": "not_ready", "message": "building"}))
    with pytest.raises(ResultNotReadyError):
        await client.sonic.midi(CLIP, wait_timeout=10)
    assert len(transport.requests) == 3


@pytest.mark.parametrize("wait_timeout", [math.nan, math.inf, -1.0])
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c, w: c.sonic.midi(CLIP, wait_timeout=w), id="midi"),
        pytest.param(lambda c, w: c.sonic.download(CLIP, wait_timeout=w), id="download"),
    ],
)
async def test_a_wait_timeout_that_is_no_finite_number_of_seconds_is_refused_before_sending(
    call: Callable[[MusicAPI, float], Awaitable[object]], wait_timeout: float
) -> None:
    """NaN never expires: a paid request was repeated every 5 s for ever."""
    await assert_refused(lambda c: call(c, wait_timeout), ValueError, "wait_timeout")


@pytest.mark.parametrize(
    ("call", "path", "wait_timeout"),
    [
        pytest.param(
            lambda c: c.sonic.midi(CLIP, wait_timeout=30), "/sonic/midi", 30.0, id="midi 30s"
        ),
        pytest.param(
            lambda c: c.sonic.download(CLIP, wait_timeout=30),
            "/sonic/download",
            30.0,
            id="download 30s",
        ),
        pytest.param(
            lambda c: c.sonic.midi(CLIP), "/sonic/midi", NOT_READY_TIMEOUT, id="midi default"
        ),
        pytest.param(
            lambda c: c.sonic.download(CLIP),
            "/sonic/download",
            NOT_READY_TIMEOUT,
            id="download default",
        ),
    ],
)
async def test_endless_202_raises_result_not_ready_after_wait_timeout(
    call: Callable[[MusicAPI], Awaitable[object]], path: str, wait_timeout: float
) -> None:
    """A request every NOT_READY_DELAY s while the deadline allows, then ResultNotReadyError."""
    client, transport = make_client(NOT_READY)
    start = anyio.current_time()
    with pytest.raises(ResultNotReadyError) as info:
        await call(client)
    elapsed = anyio.current_time() - start
    expected_requests = math.floor(wait_timeout / NOT_READY_DELAY) + 1
    assert len(transport.requests) == expected_requests
    assert elapsed == pytest.approx((expected_requests - 1) * NOT_READY_DELAY)
    assert elapsed <= wait_timeout
    assert info.value.path == path
    assert all(sent.path == path for sent in transport.requests)
