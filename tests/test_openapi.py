"""Every request the SDK can send matches the vendor's OpenAPI spec.

The spec is ``tests/data/openapi/openapi.yaml``, an unchanged copy of the one shipped in
``musicapi-sdk`` 0.1.0 (MIT; see ``LICENSE-openapi.md`` beside it). Each entry of the call
tables below drives the real client through an ``httpx.MockTransport`` that records the
request and answers a plausible success body; the recorded JSON body is then validated
against the ``requestBody`` schema of the spec operation with the same method and path.

The spec's schemas never set ``additionalProperties: false``, so schema validation alone
would accept any field the SDK invents: every top-level key sent must also be a declared
property, unless :data:`ALLOWED_EXTRAS` names it with the CONTRACT.md section that
documents it.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator, validate

from musicapi_async import (
    SONIC_MODELS,
    SONIC_TASK_TYPES,
    GenerationOptions,
    MusicAPI,
    SonicCreate,
    TaskFamily,
    TaskRef,
)
from musicapi_async._constants import PRODUCER_TASK_TYPES
from musicapi_async._credits import CreditsResource
from musicapi_async._nuro import Nuro
from musicapi_async._producer import Producer
from musicapi_async._sonic import Sonic

SPEC_DIR = Path(__file__).parent / "data" / "openapi"
SPEC: dict[str, Any] = yaml.safe_load((SPEC_DIR / "openapi.yaml").read_text(encoding="utf-8"))
#: The spec's paths are relative to its server URL, which ends in /api/v1.
API_PREFIX = "/api/v1"
BASE_URL = f"http://localhost{API_PREFIX}"

# Without optional packages the validator has no "uri" format checker: `format: uri` fields
# (url, audio_url, webhook_url) pass unchecked here. The SDK refuses non-http(s) URLs itself.
FORMAT_CHECKER = OAS31Validator.FORMAT_CHECKER


# --- the spec ---------------------------------------------------------------------------------


def resolve(node: Any, seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` inlined (siblings of a ``$ref`` kept via allOf)."""
    if isinstance(node, list):
        return [resolve(item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return {key: resolve(value, seen) for key, value in node.items()}
    assert ref.startswith("#/"), f"only local $refs are expected in the spec, got {ref!r}"
    assert ref not in seen, f"recursive $ref {ref!r} cannot be inlined"
    target: Any = SPEC
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    resolved = resolve(target, (*seen, ref))
    siblings = {key: resolve(value, seen) for key, value in node.items() if key != "$ref"}
    return {"allOf": [resolved], **siblings} if siblings else resolved


def spec_path(path: str) -> str | None:
    """The spec path template (``/sonic/task/{id}``) that a concrete path matches."""
    segments = path.strip("/").split("/")
    for template in SPEC["paths"]:
        parts = template.strip("/").split("/")
        if len(parts) == len(segments) and all(
            (part.startswith("{") and part.endswith("}") and segment) or part == segment
            for part, segment in zip(parts, segments, strict=True)
        ):
            return str(template)
    return None


def spec_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    template = spec_path(path)
    assert template is not None, f"{method} {path}: the vendor spec has no such path"
    item = SPEC["paths"][template]
    assert method.lower() in item, (
        f"{method} {path}: the spec has {template} only for "
        f"{', '.join(sorted(m.upper() for m in item))}"
    )
    return template, item[method.lower()]


def request_schema(operation: Mapping[str, Any]) -> dict[str, Any]:
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    resolved: dict[str, Any] = resolve(schema)
    return resolved


#: Top-level keys the SDK sends that the spec's schema does not declare, each documented in
#: CONTRACT.md (the reason says where). Keyed by spec path template.
ALLOWED_EXTRAS: Mapping[str, Mapping[str, str]] = {
    "/sonic/create": {
        "use_suno_cdn": "CONTRACT §3.1/§15: docs CONFLICT, absent from the spec; "
        "sent only when set",
        "duration": "CONTRACT §3.1/§15: secondary sources (2026-09), absent from the spec; "
        "sent only when set",
    },
    "/producer/create": {
        "strength": "CONTRACT §5: cover strength, re-enabled 2026-05-20 [docs], not in the spec",
    },
    "/sonic/stems/basic": {
        "webhook_url": "CONTRACT §12: webhook fields are accepted by every Sonic async endpoint",
        "webhook_secret": "CONTRACT §12: webhook fields are accepted by every Sonic async endpoint",
    },
    "/sonic/stems/full": {
        "webhook_url": "CONTRACT §12: webhook fields are accepted by every Sonic async endpoint",
        "webhook_secret": "CONTRACT §12: webhook fields are accepted by every Sonic async endpoint",
    },
}


# --- driving the real client ------------------------------------------------------------------

TASK_ID = "5d1c0b1e-6f0a-4f8e-9a39-2f0f0b7c1a11"
SUBMITTED = {"message": "success", "task_id": TASK_ID}
CLIP = {
    "clip_id": "clip-1",
    "state": "succeeded",
    "title": "Rate Limit Shanty",
    "tags": "sea shanty",
    "lyrics": "[Verse]\nHeave",
    "image_url": "https://cdn2.suno.ai/image_clip-1.jpeg",
    "audio_url": "https://cdn1.suno.ai/clip-1.mp3",
    "video_url": None,
    "created_at": "2025-10-12T13:13:02.488Z",
    "gpt_description_prompt": None,
    "duration": 104.88,
    "negative_tags": None,
    "style_weight": 0.5,
    "weirdness_constraint": 0.5,
    "mv": "chirp-v5",
}
#: A plausible success answer per spec path template (anything else: the submit answer).
ANSWERS: Mapping[str, Any] = {
    "/get-credits": {"credits": 50, "extra_credits": 0},
    "/sonic/task/{id}": {"code": 200, "data": [CLIP], "message": "success"},
    "/producer/task/{id}": {
        "code": 200,
        "data": [{"clip_id": "clip-2", "audio_url": "https://musicapi-cdn.b-cdn.net/a.m4a"}],
        "message": "success",
    },
    "/sonic/upload": {"code": 200, "clip_id": "clip-up", "message": "success"},
    "/sonic/persona": {"code": 200, "persona_id": "persona-1", "message": "success"},
    "/sonic/wav": {"message": "ok", "data": {"wav_url": "https://x.example/a.wav"}},
    "/sonic/midi": {
        "code": 200,
        "message": "success",
        "data": {"midi_url": "https://x.example/a.mid", "instruments": []},
    },
    "/sonic/aligned-lyrics": {
        "code": 200,
        "message": "success",
        "data": {
            "alignment": [
                {"word": "Heave", "start_s": 1.0, "end_s": 1.5, "p_align": 0.9, "success": True}
            ]
        },
    },
    "/sonic/bpm": {
        "code": 200,
        "message": "success",
        "data": {"avg_bpm": 120.0, "max_bpm": 122.0, "min_bpm": 118.0},
    },
    "/sonic/vox": {
        "code": 200,
        "message": "success",
        "data": {
            "vox_audio_id": "vox-1",
            "status": "complete",
            "source_clip_id": "clip-1",
            "vocal_start_s": 10.0,
            "vocal_end_s": 30.0,
            "wave_response": None,
        },
    },
    "/sonic/upsample-tags": {
        "code": 200,
        "message": "success",
        "data": {"upsampled_tags": "rollicking sea shanty, male choir, accordion"},
    },
    "/sonic/lyrics": {
        "code": 200,
        "results": [
            {"title": "One", "lyrics": "[Verse]\nla"},
            {"title": "Two", "lyrics": "[Verse]\nli"},
        ],
        "message": "success",
    },
}
#: Answers of the endpoints the spec lacks, keyed by path.
UNDOCUMENTED_ANSWERS: Mapping[tuple[str, str], Any] = {
    ("POST", "/sonic/batch"): {
        "message": "success",
        "batch_id": "batch-1",
        "submitted": 1,
        "tasks": [{"task_id": TASK_ID}],
    },
    ("GET", "/sonic/batch"): {"batch_id": "batch-1", "tasks": [{"task_id": TASK_ID}]},
    ("POST", "/sonic/download"): {"data": {"mp3_url": "https://cdn1.suno.ai/clip-1.mp3"}},
    ("GET", f"/nuro/task/{TASK_ID}"): {
        "task_id": TASK_ID,
        "status": "succeeded",
        "progress": 100,
        "audio_url": "https://cdn.musicapi.ai/a.wav",
        "duration": 180,
    },
}


@dataclass(frozen=True)
class Sent:
    """One recorded request: path relative to the API root, decoded JSON body."""

    method: str
    path: str
    body: Any
    content_type: str | None
    params: dict[str, str]


@dataclass
class Recorder:
    """The MockTransport handler: records each request, answers a plausible success."""

    sent: list[Sent] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.startswith(API_PREFIX), request.url
        path = request.url.path[len(API_PREFIX) :]
        body = json.loads(request.content) if request.content else None
        self.sent.append(
            Sent(
                request.method,
                path,
                body,
                request.headers.get("content-type"),
                dict(request.url.params),
            )
        )
        undocumented = UNDOCUMENTED_ANSWERS.get((request.method, path))
        if undocumented is not None:
            return httpx.Response(200, json=undocumented)
        template = spec_path(path)
        return httpx.Response(200, json=ANSWERS.get(template or "", SUBMITTED))


@dataclass(frozen=True)
class Call:
    """One SDK call; its id starts with the public method it exercises (``sonic.create``)."""

    id: str
    method: str
    path: str
    run: Callable[[MusicAPI], Awaitable[object]]

    @property
    def sdk(self) -> str:
        return re.split(r"[-\[]", self.id, maxsplit=1)[0]


async def send(call: Call) -> Sent:
    """Run ``call`` against the recorder; it must send exactly one request, where expected."""
    recorder = Recorder()
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http,
        MusicAPI("test-key", base_url=BASE_URL, http_client=http) as client,
    ):
        await call.run(client)
    assert len(recorder.sent) == 1, f"{call.id} sent {len(recorder.sent)} requests"
    sent = recorder.sent[0]
    assert (sent.method, sent.path) == (call.method, call.path)
    return sent


# --- the call tables --------------------------------------------------------------------------

CLIP_ID = "clip-1"
MV = "sonic-v5"
LYRICS = "[Verse]\nHeave away the queue\n[Chorus]\nOne request per three seconds"
DESCRIPTION = "a sea shanty about rate limits"
WEBHOOK_URL = "https://example.com/hooks/musicapi"
WEBHOOK_SECRET = "whsec-test"
AUDIO_URL = "https://example.com/audio/sample.mp3"

#: Every GenerationOptions field, each with a documented value (CONTRACT §3.1).
FULL_OPTIONS: GenerationOptions = {
    "title": "Rate Limit Shanty",
    "tags": "sea shanty, male choir, accordion",
    "negative_tags": "autotune",
    "make_instrumental": False,
    "style_weight": 0.65,
    "weirdness_constraint": 0.35,
    "audio_weight": 0.7,
    "vocal_gender": "m",
    "webhook_url": WEBHOOK_URL,
    "webhook_secret": WEBHOOK_SECRET,
}

#: Every /sonic/create field the SDK can send, each with a documented value.
FULL_CREATE: dict[str, Any] = {
    **FULL_OPTIONS,
    "custom_mode": True,
    "mv": MV,
    "prompt": LYRICS,
    "gpt_description_prompt": DESCRIPTION,
    "auto_lyrics": False,
    "continue_clip_id": CLIP_ID,
    "continue_at": 30.5,
    "persona_id": "persona-1",
    "variation_category": "subtle",
    "overpainting_start_s": 10.0,
    "overpainting_end_s": 20.0,
    "use_suno_cdn": True,
    "duration": 120,
}

#: The fields CONTRACT §3.2 requires per task_type, with values.
MINIMAL_CREATE: Mapping[str, dict[str, Any]] = {
    "create_music": {"custom_mode": False, "mv": MV, "gpt_description_prompt": DESCRIPTION},
    "extend_music": {
        "continue_clip_id": CLIP_ID,
        "continue_at": 30.5,
        "custom_mode": False,
        "mv": MV,
    },
    "concat_music": {"continue_clip_id": CLIP_ID},
    "cover_music": {"continue_clip_id": CLIP_ID, "custom_mode": False, "mv": MV},
    "extend_upload_music": {
        "continue_clip_id": CLIP_ID,
        "continue_at": 0.1,
        "custom_mode": False,
        "mv": MV,
    },
    "cover_upload_music": {"continue_clip_id": CLIP_ID, "custom_mode": False, "mv": MV},
    "persona_music": {"persona_id": "persona-1", "custom_mode": False, "mv": MV},
    "remaster": {"continue_clip_id": CLIP_ID, "mv": MV},
    "add_instrumental": {"continue_clip_id": CLIP_ID, "mv": MV},
    "add_vocals": {"continue_clip_id": CLIP_ID, "mv": MV, "prompt": LYRICS},
}


def _create(**kwargs: Any) -> Callable[[MusicAPI], Awaitable[object]]:
    return lambda client: client.sonic.create(**kwargs)


def _sonic_create_calls() -> list[Call]:
    calls = []
    for task_type, minimal in MINIMAL_CREATE.items():
        calls.append(
            _post(
                f"sonic.create[{task_type}]-minimal",
                "/sonic/create",
                _create(task_type=task_type, **minimal),
            )
        )
        calls.append(
            _post(
                f"sonic.create[{task_type}]-maximal",
                "/sonic/create",
                _create(task_type=task_type, **FULL_CREATE),
            )
        )
    return calls


def _post(id: str, path: str, run: Callable[[MusicAPI], Awaitable[object]]) -> Call:
    return Call(id, "POST", path, run)


SONIC_HELPER_CALLS = [
    _post(
        "sonic.create-custom-inferred",
        "/sonic/create",
        lambda c: c.sonic.create(mv=MV, prompt=LYRICS, title="T", tags="pop"),
    ),
    _post(
        "sonic.create-description-inferred",
        "/sonic/create",
        lambda c: c.sonic.create(mv=MV, gpt_description_prompt=DESCRIPTION),
    ),
    _post(
        "sonic.create-auto-lyrics",
        "/sonic/create",
        lambda c: c.sonic.create(mv=MV, custom_mode=True, auto_lyrics=True, prompt="a brief"),
    ),
    _post(
        "sonic.extend-minimal",
        "/sonic/create",
        lambda c: c.sonic.extend(CLIP_ID, continue_at=30.5, mv=MV),
    ),
    _post(
        "sonic.extend-maximal",
        "/sonic/create",
        lambda c: c.sonic.extend(
            CLIP_ID,
            continue_at=30.5,
            mv=MV,
            prompt=LYRICS,
            gpt_description_prompt=DESCRIPTION,
            custom_mode=True,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.extend_upload-minimal",
        "/sonic/create",
        lambda c: c.sonic.extend_upload(CLIP_ID, mv=MV),
    ),
    _post(
        "sonic.extend_upload-maximal",
        "/sonic/create",
        lambda c: c.sonic.extend_upload(
            CLIP_ID,
            mv=MV,
            continue_at=0.1,
            prompt=LYRICS,
            gpt_description_prompt=DESCRIPTION,
            custom_mode=True,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.cover-minimal",
        "/sonic/create",
        lambda c: c.sonic.cover(CLIP_ID, mv=MV),
    ),
    _post(
        "sonic.cover-maximal",
        "/sonic/create",
        lambda c: c.sonic.cover(
            CLIP_ID,
            mv=MV,
            prompt=LYRICS,
            gpt_description_prompt=DESCRIPTION,
            custom_mode=True,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.cover_upload-minimal",
        "/sonic/create",
        lambda c: c.sonic.cover_upload(CLIP_ID, mv=MV),
    ),
    _post(
        "sonic.cover_upload-maximal",
        "/sonic/create",
        lambda c: c.sonic.cover_upload(
            CLIP_ID,
            mv=MV,
            prompt=LYRICS,
            gpt_description_prompt=DESCRIPTION,
            custom_mode=True,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.concat-minimal",
        "/sonic/create",
        lambda c: c.sonic.concat(CLIP_ID),
    ),
    _post(
        "sonic.concat-maximal",
        "/sonic/create",
        lambda c: c.sonic.concat(CLIP_ID, webhook_url=WEBHOOK_URL, webhook_secret=WEBHOOK_SECRET),
    ),
    _post(
        "sonic.persona_music-minimal",
        "/sonic/create",
        lambda c: c.sonic.persona_music("persona-1", mv=MV),
    ),
    _post(
        "sonic.persona_music-maximal",
        "/sonic/create",
        lambda c: c.sonic.persona_music(
            "persona-1",
            mv=MV,
            prompt=LYRICS,
            gpt_description_prompt=DESCRIPTION,
            custom_mode=True,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.remaster-minimal",
        "/sonic/create",
        lambda c: c.sonic.remaster(CLIP_ID, mv=MV),
    ),
    _post(
        "sonic.remaster-maximal",
        "/sonic/create",
        lambda c: c.sonic.remaster(
            CLIP_ID,
            mv=MV,
            variation_category="high",
            webhook_url=WEBHOOK_URL,
            webhook_secret=WEBHOOK_SECRET,
        ),
    ),
    _post(
        "sonic.add_instrumental-minimal",
        "/sonic/create",
        lambda c: c.sonic.add_instrumental(CLIP_ID, mv="sonic-v4-5"),
    ),
    _post(
        "sonic.add_instrumental-maximal",
        "/sonic/create",
        lambda c: c.sonic.add_instrumental(
            CLIP_ID,
            mv="sonic-v4-5",
            overpainting_start_s=5.0,
            overpainting_end_s=25.0,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.add_vocals-minimal",
        "/sonic/create",
        lambda c: c.sonic.add_vocals(CLIP_ID, prompt=LYRICS, mv="sonic-v4-5"),
    ),
    _post(
        "sonic.add_vocals-maximal",
        "/sonic/create",
        lambda c: c.sonic.add_vocals(
            CLIP_ID,
            prompt=LYRICS,
            mv="sonic-v4-5",
            overpainting_start_s=5.0,
            overpainting_end_s=25.0,
            **FULL_OPTIONS,
        ),
    ),
]

SONIC_TOOL_CALLS = [
    _post("sonic.upload", "/sonic/upload", lambda c: c.sonic.upload(AUDIO_URL)),
    _post(
        "sonic.upload_extend-minimal",
        "/sonic/upload-extend",
        lambda c: c.sonic.upload_extend(AUDIO_URL, mv=MV),
    ),
    _post(
        "sonic.upload_extend-maximal",
        "/sonic/upload-extend",
        lambda c: c.sonic.upload_extend(
            AUDIO_URL,
            mv=MV,
            custom_mode=True,
            continue_at=0.1,
            auto_concat=True,
            prompt=LYRICS,
            gpt_description_prompt=DESCRIPTION,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.upload_cover-minimal",
        "/sonic/upload-cover",
        lambda c: c.sonic.upload_cover(AUDIO_URL, mv=MV),
    ),
    _post(
        "sonic.upload_cover-maximal",
        "/sonic/upload-cover",
        lambda c: c.sonic.upload_cover(
            AUDIO_URL,
            mv=MV,
            custom_mode=True,
            auto_concat=True,
            prompt=LYRICS,
            gpt_description_prompt=DESCRIPTION,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.create_persona-minimal",
        "/sonic/persona",
        lambda c: c.sonic.create_persona(CLIP_ID, name="Captain"),
    ),
    _post(
        "sonic.create_persona-maximal",
        "/sonic/persona",
        lambda c: c.sonic.create_persona(
            CLIP_ID,
            name="Captain",
            describe="a gravelly baritone",
            styles="sea shanty, folk",
            vox_audio_id="vox-1",
            vocal_start_s=10.0,
            vocal_end_s=30.0,
        ),
    ),
    _post(
        "sonic.create_voice-minimal",
        "/sonic/create-voice",
        lambda c: c.sonic.create_voice(AUDIO_URL),
    ),
    _post(
        "sonic.create_voice-maximal",
        "/sonic/create-voice",
        lambda c: c.sonic.create_voice(
            AUDIO_URL, webhook_url=WEBHOOK_URL, webhook_secret=WEBHOOK_SECRET
        ),
    ),
    _post(
        "sonic.sample-url-minimal",
        "/sonic/sample",
        lambda c: c.sonic.sample(
            url=AUDIO_URL, chop_sample_start_s=0.0, chop_sample_end_s=8.0, mv=MV
        ),
    ),
    _post(
        "sonic.sample-url-maximal",
        "/sonic/sample",
        lambda c: c.sonic.sample(
            url=AUDIO_URL,
            chop_sample_start_s=2.0,
            chop_sample_end_s=10.0,
            mv=MV,
            custom_mode=True,
            auto_lyrics=True,
            prompt="a brief",
            gpt_description_prompt=DESCRIPTION,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.sample-clip-minimal",
        "/sonic/sample",
        lambda c: c.sonic.sample(
            sample_clip_id=CLIP_ID, chop_sample_start_s=0.0, chop_sample_end_s=8.0, mv=MV
        ),
    ),
    _post(
        "sonic.sample-clip-maximal",
        "/sonic/sample",
        lambda c: c.sonic.sample(
            sample_clip_id=CLIP_ID,
            chop_sample_start_s=2.0,
            chop_sample_end_s=10.0,
            mv=MV,
            custom_mode=False,
            auto_lyrics=False,
            prompt=LYRICS,
            gpt_description_prompt=DESCRIPTION,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.mashup-minimal",
        "/sonic/mashup",
        lambda c: c.sonic.mashup(["clip-a", "clip-b"], mv=MV),
    ),
    _post(
        "sonic.mashup-maximal",
        "/sonic/mashup",
        lambda c: c.sonic.mashup(
            ("clip-a", "clip-b"),
            mv=MV,
            custom_mode=True,
            auto_lyrics=True,
            prompt="a brief",
            gpt_description_prompt=DESCRIPTION,
            **FULL_OPTIONS,
        ),
    ),
    _post(
        "sonic.replace_section-minimal",
        "/sonic/replace-section",
        lambda c: c.sonic.replace_section(CLIP_ID, mv=MV, infill_start_s=10.0, infill_end_s=20.0),
    ),
    _post(
        "sonic.replace_section-maximal",
        "/sonic/replace-section",
        lambda c: c.sonic.replace_section(
            CLIP_ID,
            mv="sonic-v4-5-plus",
            infill_start_s=10.0,
            infill_end_s=20.5,
            prompt=LYRICS,
            infill_lyrics="[Bridge]\nnew words here",
            title="Rate Limit Shanty",
            tags="sea shanty",
            negative_tags="autotune",
            style_weight=0.5,
            weirdness_constraint=0.5,
            vocal_gender="f",
            auto_concat=True,
            webhook_url=WEBHOOK_URL,
            webhook_secret=WEBHOOK_SECRET,
        ),
    ),
    _post(
        "sonic.stems_basic-minimal",
        "/sonic/stems/basic",
        lambda c: c.sonic.stems_basic(CLIP_ID),
    ),
    _post(
        "sonic.stems_basic-maximal",
        "/sonic/stems/basic",
        lambda c: c.sonic.stems_basic(
            CLIP_ID, webhook_url=WEBHOOK_URL, webhook_secret=WEBHOOK_SECRET
        ),
    ),
    _post(
        "sonic.stems_full-minimal",
        "/sonic/stems/full",
        lambda c: c.sonic.stems_full(CLIP_ID),
    ),
    _post(
        "sonic.stems_full-maximal",
        "/sonic/stems/full",
        lambda c: c.sonic.stems_full(
            CLIP_ID, webhook_url=WEBHOOK_URL, webhook_secret=WEBHOOK_SECRET
        ),
    ),
    _post("sonic.wav", "/sonic/wav", lambda c: c.sonic.wav(CLIP_ID)),
    _post("sonic.midi", "/sonic/midi", lambda c: c.sonic.midi(CLIP_ID)),
    _post(
        "sonic.aligned_lyrics",
        "/sonic/aligned-lyrics",
        lambda c: c.sonic.aligned_lyrics(CLIP_ID),
    ),
    _post("sonic.bpm", "/sonic/bpm", lambda c: c.sonic.bpm(CLIP_ID)),
    _post("sonic.vox-minimal", "/sonic/vox", lambda c: c.sonic.vox(CLIP_ID)),
    _post(
        "sonic.vox-maximal",
        "/sonic/vox",
        lambda c: c.sonic.vox(CLIP_ID, vocal_start_s=10.0, vocal_end_s=30.0),
    ),
    _post(
        "sonic.upsample_tags",
        "/sonic/upsample-tags",
        lambda c: c.sonic.upsample_tags("shanty, choir"),
    ),
    _post(
        "sonic.lyrics",
        "/sonic/lyrics",
        lambda c: c.sonic.lyrics("a sea shanty about rate limits"),
    ),
]

#: Every field of /producer/create the SDK can send, each with a documented value.
FULL_PRODUCER: dict[str, Any] = {
    "sound": "warm analog synthwave, 90 bpm",
    "lyrics": LYRICS,
    "mv": "FUZZ-2.0",
    "title": "Night Drive",
    "seed": "42",
    "clip_id": CLIP_ID,
    "starts_at": 10.0,
    "ends_at": 20.0,
    "instruction": "a brass break",
    "length": 60.0,
    "bpm": 90,
    "extend_s": 30.0,
    "strength": 0.5,
    "webhook_url": WEBHOOK_URL,
    "webhook_secret": WEBHOOK_SECRET,
}
MINIMAL_PRODUCER: Mapping[str, dict[str, Any]] = {
    "create_music": {"sound": "warm analog synthwave"},
    "extend_music": {"clip_id": CLIP_ID, "starts_at": 10.0},
    "extend_upload_music": {"clip_id": CLIP_ID, "starts_at": 10.0},
    "replace_music": {"clip_id": CLIP_ID, "starts_at": 10.0, "ends_at": 20.0},
    "replace_upload_music": {"clip_id": CLIP_ID, "starts_at": 10.0, "ends_at": 20.0},
}


def _producer_create(**kwargs: Any) -> Callable[[MusicAPI], Awaitable[object]]:
    return lambda client: client.producer.create(**kwargs)


PRODUCER_CALLS = [
    *(
        _post(
            f"producer.create[{task_type}]-{size}",
            "/producer/create",
            _producer_create(task_type=task_type, **fields),
        )
        for task_type, minimal in MINIMAL_PRODUCER.items()
        for size, fields in (("minimal", minimal), ("maximal", FULL_PRODUCER))
    ),
    _post(
        "producer.create-lyrics-only",
        "/producer/create",
        lambda c: c.producer.create(lyrics=LYRICS),
    ),
    _post(
        "producer.create-numeric-seed-string-bpm",
        "/producer/create",
        lambda c: c.producer.create(sound="lofi", seed=42, bpm="90"),
    ),
    _post(
        "producer.extend-minimal",
        "/producer/create",
        lambda c: c.producer.extend(CLIP_ID, starts_at=10.0),
    ),
    _post(
        "producer.extend-maximal",
        "/producer/create",
        lambda c: c.producer.extend(
            CLIP_ID,
            starts_at=10.0,
            instruction="keep the groove",
            length=30.0,
            lyrics=LYRICS,
            webhook_url=WEBHOOK_URL,
            webhook_secret=WEBHOOK_SECRET,
        ),
    ),
    _post(
        "producer.replace-minimal",
        "/producer/create",
        lambda c: c.producer.replace(CLIP_ID, starts_at=10.0, ends_at=20.0),
    ),
    _post(
        "producer.replace-maximal",
        "/producer/create",
        lambda c: c.producer.replace(
            CLIP_ID,
            starts_at=10.0,
            ends_at=20.0,
            instruction="a brass break",
            lyrics=LYRICS,
            webhook_url=WEBHOOK_URL,
            webhook_secret=WEBHOOK_SECRET,
        ),
    ),
    _post(
        "producer.upload-minimal",
        "/producer/upload",
        lambda c: c.producer.upload(AUDIO_URL),
    ),
    _post(
        "producer.upload-maximal",
        "/producer/upload",
        lambda c: c.producer.upload(
            AUDIO_URL, webhook_url=WEBHOOK_URL, webhook_secret=WEBHOOK_SECRET
        ),
    ),
    _post(
        "producer.download-minimal",
        "/producer/download",
        lambda c: c.producer.download(CLIP_ID),
    ),
    _post(
        "producer.download-maximal",
        "/producer/download",
        lambda c: c.producer.download(
            CLIP_ID, format="wav", webhook_url=WEBHOOK_URL, webhook_secret=WEBHOOK_SECRET
        ),
    ),
]

POST_CALLS = [*_sonic_create_calls(), *SONIC_HELPER_CALLS, *SONIC_TOOL_CALLS, *PRODUCER_CALLS]

GET_CALLS = [
    Call(
        "sonic.get_task-id",
        "GET",
        f"/sonic/task/{TASK_ID}",
        lambda c: c.sonic.get_task(TASK_ID),
    ),
    Call(
        "sonic.get_task-ref",
        "GET",
        f"/sonic/task/{TASK_ID}",
        lambda c: c.sonic.get_task(TaskRef(TASK_ID, TaskFamily.SONIC)),
    ),
    Call(
        "producer.get_task",
        "GET",
        f"/producer/task/{TASK_ID}",
        lambda c: c.producer.get_task(TASK_ID),
    ),
    Call(
        "client.get_task-sonic",
        "GET",
        f"/sonic/task/{TASK_ID}",
        lambda c: c.get_task(TaskRef(TASK_ID, TaskFamily.SONIC)),
    ),
    Call(
        "client.get_task-producer",
        "GET",
        f"/producer/task/{TASK_ID}",
        lambda c: c.get_task(TaskRef(TASK_ID, TaskFamily.PRODUCER)),
    ),
    Call("credits.get", "GET", "/get-credits", lambda c: c.credits.get()),
]

#: Calls whose endpoint the vendor spec does not describe, and where CONTRACT.md has them.
NOT_IN_SPEC: list[tuple[Call, str]] = [
    (
        _post(
            "sonic.batch",
            "/sonic/batch",
            lambda c: c.sonic.batch(
                [SonicCreate(custom_mode=False, mv=MV, gpt_description_prompt=DESCRIPTION)],
                webhook_url=WEBHOOK_URL,
            ),
        ),
        "POST /sonic/batch is documented by a guide only (CONTRACT §4)",
    ),
    (
        Call(
            "sonic.get_batch",
            "GET",
            "/sonic/batch",
            lambda c: c.sonic.get_batch("batch-1"),
        ),
        "GET /sonic/batch?batch_id= is documented by a guide only (CONTRACT §4)",
    ),
    (
        _post(
            "sonic.download",
            "/sonic/download",
            lambda c: c.sonic.download(CLIP_ID, formats=("mp3", "wav")),
        ),
        "POST /sonic/download is known from observed clients only (CONTRACT §4)",
    ),
    (
        _post(
            "nuro.create-vocal",
            "/nuro/create",
            lambda c: c.nuro.create(type="vocal", lyrics=LYRICS, gender="Male", duration=120),
        ),
        "Nuro is retired (410) and absent from the spec (CONTRACT §6)",
    ),
    (
        _post(
            "nuro.create-bgm",
            "/nuro/create",
            lambda c: c.nuro.create(type="bgm", description="calm piano", genre=["ambient"]),
        ),
        "Nuro is retired (410) and absent from the spec (CONTRACT §6)",
    ),
    (
        Call(
            "nuro.get_task",
            "GET",
            f"/nuro/task/{TASK_ID}",
            lambda c: c.nuro.get_task(TASK_ID),
        ),
        "Nuro is retired (410) and absent from the spec (CONTRACT §6)",
    ),
    (
        Call(
            "client.get_task-nuro",
            "GET",
            f"/nuro/task/{TASK_ID}",
            lambda c: c.get_task(TaskRef(TASK_ID, TaskFamily.NURO)),
        ),
        "Nuro is retired (410) and absent from the spec (CONTRACT §6)",
    ),
]


def _ids(call: Call) -> str:
    return call.id


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("call", POST_CALLS, ids=_ids)
async def test_request_body_validates_against_the_vendor_spec(call: Call) -> None:
    """The JSON body of every POST the SDK sends is valid for its spec operation."""
    sent = await send(call)
    _, operation = spec_operation(sent.method, sent.path)
    assert sent.content_type == "application/json"
    assert isinstance(sent.body, dict)
    validate(
        sent.body, request_schema(operation), cls=OAS31Validator, format_checker=FORMAT_CHECKER
    )


@pytest.mark.anyio
@pytest.mark.parametrize("call", POST_CALLS, ids=_ids)
async def test_request_sends_no_field_the_spec_does_not_declare(call: Call) -> None:
    """Every top-level key sent is a declared property, or a documented extra with a reason."""
    sent = await send(call)
    template, operation = spec_operation(sent.method, sent.path)
    declared = set(request_schema(operation).get("properties", {}))
    allowed = set(ALLOWED_EXTRAS.get(template, {}))
    unknown = sorted(set(sent.body) - declared - allowed)
    assert not unknown, (
        f"{call.id} sends {unknown}, which the spec's {template} schema does not declare; "
        "fix the SDK, or add them to ALLOWED_EXTRAS with the CONTRACT.md section that "
        "documents them"
    )


@pytest.mark.anyio
@pytest.mark.parametrize("call", GET_CALLS, ids=_ids)
async def test_get_request_matches_a_spec_get_operation(call: Call) -> None:
    """Every GET goes to a path the spec documents for GET, without a body."""
    sent = await send(call)
    _, operation = spec_operation(sent.method, sent.path)
    assert "requestBody" not in operation
    assert sent.body is None
    assert sent.params == {}


@pytest.mark.anyio
@pytest.mark.parametrize(("call", "reason"), NOT_IN_SPEC, ids=[c.id for c, _ in NOT_IN_SPEC])
async def test_endpoint_not_in_the_vendor_spec_is_skipped(call: Call, reason: str) -> None:
    """Endpoints the spec lacks are listed here; the test fails once the spec gains them."""
    sent = await send(call)
    assert spec_path(sent.path) is None, (
        f"the vendor spec now documents {sent.method} {sent.path}: move {call.id} into "
        "POST_CALLS or GET_CALLS so that its request is validated"
    )
    pytest.skip(f"not in the vendor spec: {reason}")


@dataclass(frozen=True)
class Passthrough:
    """A value the spec refuses that the SDK still sends, and why it must."""

    call: Call
    field: str
    value: Any
    why: str


PASSTHROUGHS = [
    Passthrough(
        _post(
            "sonic.create-future-mv",
            "/sonic/create",
            lambda c: c.sonic.create(mv="sonic-v9-future", gpt_description_prompt=DESCRIPTION),
        ),
        "mv",
        "sonic-v9-future",
        "mv is an open string (CONTRACT §15): new model ids must work before the SDK knows them",
    ),
    Passthrough(
        _post(
            "sonic.create-sonic-v6",
            "/sonic/create",
            lambda c: c.sonic.create(mv="sonic-v6", gpt_description_prompt=DESCRIPTION),
        ),
        "mv",
        "sonic-v6",
        "sonic-v6 was accepted live in 2026-10 but is absent from the spec (CONTRACT §8)",
    ),
    Passthrough(
        _post(
            "sonic.sample-v4-5-all",
            "/sonic/sample",
            lambda c: c.sonic.sample(
                url=AUDIO_URL, chop_sample_start_s=0, chop_sample_end_s=8, mv="sonic-v4-5-all"
            ),
        ),
        "mv",
        "sonic-v4-5-all",
        "sample accepted only sonic-v4-5-all live; the spec lacks it (CONTRACT §4, §8)",
    ),
    Passthrough(
        _post(
            "sonic.replace_section-v3-5",
            "/sonic/replace-section",
            lambda c: c.sonic.replace_section(
                CLIP_ID, mv="sonic-v3-5", infill_start_s=1, infill_end_s=2
            ),
        ),
        "mv",
        "sonic-v3-5",
        "the server, not the SDK, judges which models replace-section takes (CONTRACT §15)",
    ),
    Passthrough(
        _post(
            "sonic.create-future-task-type",
            "/sonic/create",
            lambda c: c.sonic.create(task_type="stretch_music", continue_clip_id=CLIP_ID),
        ),
        "task_type",
        "stretch_music",
        "task_type is an open string (CONTRACT §15)",
    ),
    Passthrough(
        _post(
            "producer.create-cover",
            "/producer/create",
            lambda c: c.producer.create(task_type="cover_music", clip_id=CLIP_ID, sound="jazz"),
        ),
        "task_type",
        "cover_music",
        "the docs list cover_music for Producer, the spec does not (CONTRACT §5 CONFLICT)",
    ),
    Passthrough(
        _post(
            "sonic.create-long-description",
            "/sonic/create",
            lambda c: c.sonic.create(mv=MV, gpt_description_prompt="d" * 401),
        ),
        "gpt_description_prompt",
        "d" * 401,
        "length limits conflict between sources; the SDK enforces none of them (CONTRACT §15)",
    ),
    Passthrough(
        _post(
            "sonic.lyrics-long-description",
            "/sonic/lyrics",
            lambda c: c.sonic.lyrics("w" * 120),
        ),
        "description",
        "w" * 120,
        "the spec's 119-character limit is not enforced by the SDK (CONTRACT §4, §15)",
    ),
    Passthrough(
        _post(
            "sonic.mashup-long-tags",
            "/sonic/mashup",
            lambda c: c.sonic.mashup(["a", "b"], mv=MV, tags="t" * 201),
        ),
        "tags",
        "t" * 201,
        "tag limits differ by model and source; the server judges (CONTRACT §3.1, §15)",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize("case", PASSTHROUGHS, ids=lambda p: p.call.id)
async def test_value_outside_the_spec_is_still_sent(case: Passthrough) -> None:
    """Open enums and unenforced limits: the spec refuses the value, the SDK sends it as is."""
    sent = await send(case.call)
    assert sent.body[case.field] == case.value, case.why
    _, operation = spec_operation(sent.method, sent.path)
    with pytest.raises(ValidationError) as refused:
        validate(
            sent.body,
            request_schema(operation),
            cls=OAS31Validator,
            format_checker=FORMAT_CHECKER,
        )
    assert list(refused.value.absolute_path)[:1] == [case.field], refused.value.message


def _public_coroutines(cls: type, prefix: str) -> set[str]:
    return {
        f"{prefix}.{name}"
        for name, _ in inspect.getmembers(cls, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


def test_every_public_endpoint_method_is_in_a_call_table() -> None:
    """A new SDK method cannot slip past this file: each one is validated or listed as absent."""
    public = (
        _public_coroutines(Sonic, "sonic")
        | _public_coroutines(Producer, "producer")
        | _public_coroutines(Nuro, "nuro")
        | _public_coroutines(CreditsResource, "credits")
        # await_task only polls the task endpoints already covered here; download fetches
        # CDN URLs, not the API.
        | (
            _public_coroutines(MusicAPI, "client")
            - {"client.aclose", "client.await_task", "client.download"}
        )
    )
    covered = {call.sdk for call in (*POST_CALLS, *GET_CALLS)} | {c.sdk for c, _ in NOT_IN_SPEC}
    assert public - covered == set()
    assert covered - public == set()


def test_every_sonic_task_type_is_sent_minimal_and_maximal() -> None:
    """create(task_type=...) is exercised for every documented task type, both ways."""
    ids = {call.id for call in POST_CALLS}
    for task_type in SONIC_TASK_TYPES:
        assert f"sonic.create[{task_type}]-minimal" in ids
        assert f"sonic.create[{task_type}]-maximal" in ids


def test_sdk_enums_cover_the_spec_enums() -> None:
    """The SDK's task types and model ids include every value the spec documents."""
    create = resolve(SPEC["components"]["schemas"]["SonicCreateParams"])
    assert set(create["properties"]["task_type"]["enum"]) == set(SONIC_TASK_TYPES)
    assert set(SPEC["components"]["schemas"]["SonicModel"]["enum"]) <= set(SONIC_MODELS)
    producer = request_schema(SPEC["paths"]["/producer/create"]["post"])
    assert set(producer["properties"]["task_type"]["enum"]) <= set(PRODUCER_TASK_TYPES)


@pytest.mark.parametrize(
    ("template", "key"),
    [(template, key) for template, keys in ALLOWED_EXTRAS.items() for key in keys],
)
def test_allowed_extra_is_really_absent_from_the_spec(template: str, key: str) -> None:
    """An ALLOWED_EXTRAS entry goes stale when the spec declares the field: remove it then."""
    operation = SPEC["paths"][template]["post"]
    assert key not in request_schema(operation).get("properties", {})


@pytest.mark.anyio
async def test_every_allowed_extra_is_really_sent() -> None:
    """Each ALLOWED_EXTRAS entry is sent by some call of the table; unused entries go."""
    sent_pairs = set()
    for call in POST_CALLS:
        sent = await send(call)
        template, _ = spec_operation(sent.method, sent.path)
        sent_pairs |= {(template, key) for key in sent.body}
    allowed = {(template, key) for template, keys in ALLOWED_EXTRAS.items() for key in keys}
    assert allowed - sent_pairs == set()


@pytest.mark.parametrize("template", sorted(ANSWERS))
def test_canned_answer_matches_the_spec_response(template: str) -> None:
    """The recorder's success answers are what the spec says a 200 looks like."""
    (operation,) = SPEC["paths"][template].values()  # one method per path in this spec
    response = operation["responses"]["200"]
    schema = resolve(response)["content"]["application/json"]["schema"]
    validate(ANSWERS[template], schema, cls=OAS31Validator, format_checker=FORMAT_CHECKER)


def test_submit_answer_matches_the_spec_response() -> None:
    """The recorder's default answer is a valid TaskSubmitResponse."""
    schema = resolve(SPEC["components"]["schemas"]["TaskSubmitResponse"])
    validate(SUBMITTED, schema, cls=OAS31Validator, format_checker=FORMAT_CHECKER)


def test_vendor_spec_copy_keeps_its_licence_note() -> None:
    """The spec copy is the vendor's MIT-licensed file; its licence note travels with it."""
    assert SPEC["info"]["license"]["name"] == "MIT"
    note = (SPEC_DIR / "LICENSE-openapi.md").read_text(encoding="utf-8")
    assert "MIT" in note
    assert "musicapi-sdk" in note
