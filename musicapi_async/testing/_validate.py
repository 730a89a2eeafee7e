"""Request validation of the fake server: the 400s, with the documented messages."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, final

from ._defaults import (
    LIMITS_NAMED_BY_FIRST_REFUSED,
    MSG_PERSONA_ID,
    SONIC_REQUIRED,
    SONIC_TASK_TYPES,
)

#: Fields whose length message the docs write without quotes ("The prompt character length...").
_UNQUOTED = frozenset({"prompt", "tags", "title", "name", "description"})
#: Optional fields of the Sonic generation bodies (CONTRACT §3.1, "G" of §4).
_STRING_FIELDS = (
    "task_type",
    "mv",
    "prompt",
    "lyrics",
    "gpt_description_prompt",
    "title",
    "tags",
    "negative_tags",
    "continue_clip_id",
    "persona_id",
    "webhook_url",
    "webhook_secret",
)
_BOOL_FIELDS = ("custom_mode", "make_instrumental", "auto_lyrics", "auto_concat", "use_suno_cdn")
_UNIT_FIELDS = ("style_weight", "weirdness_constraint", "audio_weight")


class Reject(Exception):
    """Control flow inside the fake: answer ``status`` with ``message`` (in the envelope)."""

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _missing(value: Any) -> bool:
    return value is None or value == ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@final
class Checker:
    """Checks one JSON object sent to one route; every failure raises :class:`Reject` 400."""

    def __init__(
        self,
        route: str,
        body: Mapping[str, Any],
        *,
        length_limits: Mapping[str, int],
        refused_models: Collection[str],
    ) -> None:
        self.route = route
        self.body = body
        self._limits = length_limits
        self._refused = refused_models

    def get(self, name: str) -> Any:
        return self.body.get(name)

    def has(self, name: str) -> bool:
        return not _missing(self.body.get(name))

    def fail(self, message: str) -> Reject:
        return Reject(400, message)

    def required(self, name: str, *, suffix: str = "") -> None:
        if not self.has(name):
            raise self.fail(f"The '{name}' field is required{suffix}.")

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self.body.get(name)
        if value is None:
            if required:
                raise self.fail(f"The '{name}' field is required.")
            return None
        if not isinstance(value, str):
            raise self.fail(f"The '{name}' field should be a string.")
        if required and not value:
            raise self.fail(f"The '{name}' field is required.")
        self.length(name)
        return value

    def length(self, name: str) -> None:
        value = self.body.get(name)
        if not isinstance(value, str):
            return
        key = f"{self.route}:{name}"
        limit = self._limits.get(key, self._limits.get(name))
        if limit is not None and len(value) > limit:
            label = name if name in _UNQUOTED else f"'{name}'"
            named = (
                limit + 1 if key in self._limits and key in LIMITS_NAMED_BY_FIRST_REFUSED else limit
            )
            raise self.fail(f"The {label} character length should be less than {named}.")

    def boolean(self, name: str, *, required: bool = False) -> bool | None:
        value = self.body.get(name)
        if value is None:
            if required:
                raise self.fail(f"The '{name}' field is required.")
            return None
        if not isinstance(value, bool):
            raise self.fail(f"The '{name}' field should be boolean.")
        return value

    def number(
        self,
        name: str,
        *,
        required: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
    ) -> float | None:
        value = self.body.get(name)
        if value is None:
            if required:
                raise self.fail(f"The '{name}' field is required.")
            return None
        kind = "an integer" if integer else "a number"
        if not _is_number(value) or (integer and not float(value).is_integer()):
            raise self.fail(f"The '{name}' field should be {kind}.")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"between {minimum:g} and {maximum:g}" if maximum is not None else ""
            if not bounds:
                bounds = f"at least {minimum:g}"
            raise self.fail(f"The '{name}' field should be {kind} {bounds}.")
        return float(value)

    def model(self, *, required: bool) -> None:
        mv = self.string("mv", required=required)
        if mv is not None and mv in self._refused:
            raise self.fail(f"The 'mv' field is invalid. The model '{mv}' is not supported.")

    def generation_fields(self) -> None:
        """The optional fields shared by Sonic's generation bodies."""
        for name in _STRING_FIELDS:
            self.string(name)
        for name in _BOOL_FIELDS:
            self.boolean(name)
        for name in _UNIT_FIELDS:
            self.number(name, minimum=0.0, maximum=1.0)
        gender = self.get("vocal_gender")
        if gender is not None and gender not in ("f", "m"):
            raise self.fail("The 'vocal_gender' field should be 'f' or 'm'.")
        variation = self.get("variation_category")
        if variation is not None and variation not in ("subtle", "normal", "high"):
            raise self.fail("The 'variation_category' field should be subtle, normal or high.")

    def prompt(self) -> str | None:
        """``prompt``, or its [spec] alias ``lyrics`` when ``prompt`` is absent."""
        value = self.get("prompt")
        if _missing(value):
            value = self.get("lyrics")
        return value if isinstance(value, str) and value else None


def check_sonic_create(check: Checker) -> str:
    """Validate a /sonic/create body (or a batch item); return its task_type."""
    check.generation_fields()
    task_type = check.get("task_type") or "create_music"
    if task_type not in SONIC_TASK_TYPES:
        raise check.fail(f"The 'task_type' field is invalid: '{task_type}'.")
    suffix = "" if task_type == "create_music" else f" when task_type = {task_type}"
    for name in SONIC_REQUIRED[task_type]:
        if name == "prompt":
            if check.prompt() is None:
                raise check.fail(f"The 'prompt' field is required{suffix}.")
        elif name == "persona_id" and not check.has(name):
            raise check.fail(MSG_PERSONA_ID)
        elif name in ("custom_mode",):
            if check.get(name) is None:
                raise check.fail(f"The '{name}' field is required{suffix}.")
        else:
            check.required(name, suffix=suffix)
    check.model(required=task_type != "concat_music")
    check.number("continue_at", minimum=0.0)
    check.number("overpainting_start_s", minimum=0.0)
    check.number("overpainting_end_s", minimum=0.0)
    if task_type == "create_music":
        if check.get("custom_mode"):
            # make_instrumental does not waive it: custom mode needs prompt (CONTRACT §3.1).
            if check.prompt() is None:
                raise check.fail("The 'prompt' field is required when custom_mode is true.")
        elif not check.has("gpt_description_prompt"):
            raise check.fail(
                "The 'gpt_description_prompt' field is required when custom_mode is false."
            )
    return str(task_type)
