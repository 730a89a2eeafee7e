"""Defaults of the fake server: prices, limits, durations, messages (CONTRACT §10, §13, §14)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Final

DEFAULT_KEY: Final = "test-key"
DEFAULT_BASE_URL: Final = "http://localhost/api/v1"
DEFAULT_CREDITS: Final = 1000

#: Credits per operation. Keys are routes relative to the base path; Sonic create is priced
#: per ``task_type`` as ``"/sonic/create:<task_type>"``, with ``"/sonic/create"`` for task
#: types not listed. Batch items are priced as Sonic creates. CONTRACT §13 gives several
#: values for most rows; these are the ones the SDK's documentation uses.
DEFAULT_PRICES: Final[Mapping[str, int]] = MappingProxyType(
    {
        "/sonic/create": 15,
        "/sonic/create:create_music": 15,
        "/sonic/create:extend_music": 15,
        "/sonic/create:cover_music": 15,
        "/sonic/create:persona_music": 15,
        "/sonic/create:extend_upload_music": 15,
        "/sonic/create:cover_upload_music": 15,
        "/sonic/create:remaster": 15,
        "/sonic/create:add_instrumental": 15,
        "/sonic/create:add_vocals": 15,
        "/sonic/create:concat_music": 2,
        "/sonic/upload": 2,
        "/sonic/upload-extend": 15,
        "/sonic/upload-cover": 15,
        "/sonic/persona": 1,
        "/sonic/create-voice": 4,
        "/sonic/sample": 14,
        "/sonic/mashup": 10,
        "/sonic/replace-section": 10,
        "/sonic/stems/basic": 20,
        "/sonic/stems/full": 75,
        "/sonic/wav": 1,
        "/sonic/midi": 1,
        "/sonic/aligned-lyrics": 1,
        "/sonic/bpm": 1,
        "/sonic/vox": 1,
        "/sonic/upsample-tags": 1,
        "/sonic/lyrics": 0,
        "/sonic/download": 2,
        "/producer/create": 12,
        "/producer/upload": 2,
        "/producer/download": 2,
        "/nuro/create": 10,
    }
)

#: Maximum string lengths (inclusive). A key is a field name (applies on every route) or
#: ``"<route>:<field>"`` (that route only; wins over the plain name).
DEFAULT_LENGTH_LIMITS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "prompt": 5000,
        "lyrics": 5000,
        "gpt_description_prompt": 400,
        "tags": 1000,
        "title": 80,
        "negative_tags": 200,
        "infill_lyrics": 3000,
        "webhook_url": 1024,
        "/sonic/sample:tags": 200,
        "/sonic/mashup:tags": 200,
        "/sonic/persona:name": 79,
        "/sonic/persona:description": 200,
        "/sonic/persona:styles": 2000,
        "/sonic/lyrics:description": 119,
        "/nuro/create:lyrics": 2000,
    }
)

#: Limits the vendor words as "under N" (CONTRACT §4: persona name, lyrics description): the
#: maximum is N - 1 and the refusal names N, the first length refused ("less than 80" for a
#: 79-character maximum), where the other messages name the maximum itself.
LIMITS_NAMED_BY_FIRST_REFUSED: Final = frozenset(
    {"/sonic/persona:name", "/sonic/lyrics:description"}
)

#: Status of the "not enough credits" refusal where it is not 403 ([spec]: create-voice 402).
DEFAULT_NO_CREDITS_STATUS: Final[Mapping[str, int]] = MappingProxyType({"/sonic/create-voice": 402})

#: Default seconds from creation to done, per family.
DEFAULT_SONIC_DURATION: Final = 120.0
DEFAULT_PRODUCER_DURATION: Final = 30.0
DEFAULT_NURO_DURATION: Final = 30.0
#: Seconds between the terminal times of consecutive clips of one task (the last clip ends
#: at the task's done time).
DEFAULT_CLIP_SPREAD: Final = 5.0
#: In the 200-with-states style, seconds after creation during which a poll answers plain
#: ``{"type": "not_ready"}``.
DEFAULT_INITIAL_NOT_READY: Final = 10.0
#: Fractions of a clip's duration at which it moves pending → running and running → streaming.
PHASE_RUNNING: Final = 0.25
PHASE_STREAMING: Final = 0.5
#: Wall-clock date of the first request, for ``created_at`` fields.
DEFAULT_EPOCH: Final = datetime(2026, 1, 1, tzinfo=timezone.utc)

SONIC_TASK_TYPES: Final = frozenset(
    {
        "create_music",
        "extend_music",
        "concat_music",
        "cover_music",
        "persona_music",
        "extend_upload_music",
        "cover_upload_music",
        "remaster",
        "add_instrumental",
        "add_vocals",
    }
)
#: Fields each Sonic task type needs (CONTRACT §3.2); create_music also needs ``prompt`` or
#: ``gpt_description_prompt`` depending on ``custom_mode``.
SONIC_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "create_music": ("custom_mode", "mv"),
        "extend_music": ("continue_clip_id", "continue_at", "custom_mode", "mv"),
        "concat_music": ("continue_clip_id",),
        "cover_music": ("continue_clip_id", "custom_mode", "mv"),
        "persona_music": ("persona_id", "custom_mode", "mv"),
        "extend_upload_music": ("continue_clip_id", "continue_at", "custom_mode", "mv"),
        "cover_upload_music": ("continue_clip_id", "custom_mode", "mv"),
        "remaster": ("continue_clip_id", "mv"),
        "add_instrumental": ("continue_clip_id", "mv"),
        "add_vocals": ("continue_clip_id", "mv", "prompt"),
    }
)
PRODUCER_TASK_TYPES: Final = frozenset(
    {
        "create_music",
        "extend_music",
        "extend_upload_music",
        "replace_music",
        "replace_upload_music",
        "cover_music",
        "cover_upload_music",
    }
)
PRODUCER_RETIRED_TASK_TYPES: Final = frozenset(
    {"music_variation", "swap_music_vocals", "swap_music_sound"}
)
STEMS_BASIC: Final = ("Vocals", "Instrumental")
STEMS_FULL: Final = (
    "Vocals",
    "Backing Vocals",
    "Drums",
    "Bass",
    "Guitar",
    "Keyboard",
    "Strings",
    "Brass",
    "Woodwinds",
    "Percussion",
    "Synth",
    "FX",
)
#: Clip lengths handed out in turn, seconds.
CLIP_DURATIONS: Final = (104.88, 98.36, 131.4, 87.12)

MSG_NO_AUTH: Final = "Authorization header is missing."
MSG_BAD_AUTH: Final = "Invalid authorization format."
MSG_UNKNOWN_KEY: Final = "Invalid API key."
MSG_NO_CREDITS: Final = (
    "The remaining credits are not enough. You can buy more one-time credit packs or subscribe."
)
MSG_PERSONA_ID: Final = "The 'persona_id' field is required when task_type = persona_music."
MSG_TASK_NOT_FOUND: Final = "task not found."
MSG_MISSING_TASK_ID: Final = "missing task id."
MSG_CLIP_NOT_FOUND: Final = "clip not found."
MSG_NOT_JSON: Final = "The request body should be a JSON object."
MSG_NURO_GONE: Final = (
    "Nuro has been retired. Use /sonic/create for songs with vocals and /producer/create "
    "for background music."
)
MSG_RATE_LIMITED: Final = "Too many requests. Please retry after {seconds} seconds."
MSG_TASK_FAILED: Final = "Generation failed. Credits have been refunded."
MSG_TASK_TIMEOUT: Final = "Task failed due to timeout. Credits were previously refunded."

#: Default message of a status when nothing more specific applies.
STATUS_MESSAGES: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "Bad Request.",
        401: MSG_NO_AUTH,
        402: MSG_NO_CREDITS,
        403: MSG_NO_CREDITS,
        404: "Not Found.",
        405: "Method Not Allowed.",
        408: "Request Timeout.",
        409: "Conflict.",
        410: "Gone.",
        429: "Too many requests.",
        500: "Internal Server Error.",
        502: "Bad Gateway.",
        503: "Service Unavailable.",
        504: MSG_TASK_TIMEOUT,
    }
)
#: ``type`` of the ``{"type": t, "error": m}`` envelope, by status (Nuro's names).
STATUS_TYPES: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "bad_request",
        401: "unauthorized",
        402: "forbidden",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        410: "gone",
        429: "rate_limited",
        500: "api_error",
        502: "api_error",
        503: "api_error",
        504: "timeout",
    }
)

DEFAULT_LYRICS: Final = (
    "[Verse]\nNeon rain on an empty street\nCounting echoes of my feet\n\n"
    "[Chorus]\nHold the night, hold the light\nWe are burning, burning bright"
)
