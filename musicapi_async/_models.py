"""Typed results of MusicAPI calls: attrs frozen classes, no serialisation code.

Reading JSON into these classes is the job of ``_serde``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, final

from attrs import field, frozen

from ._exceptions import TaskFailedError
from ._redact import url_repr

__all__ = [
    "AlignedLyrics",
    "AlignedWord",
    "Batch",
    "BatchSubmission",
    "Bpm",
    "Clip",
    "ClipState",
    "Credits",
    "DownloadLinks",
    "GeneratedLyrics",
    "Midi",
    "Persona",
    "Task",
    "TaskFamily",
    "TaskRef",
    "TaskStatus",
    "UploadedClip",
    "UpsampledTags",
    "Vox",
    "WavFile",
]

_NO_RAW: Mapping[str, Any] = {}


class StrEnum(str, enum.Enum):
    """A string enum that reads as its value everywhere, like 3.11's ``enum.StrEnum``.

    ``str(TaskFamily.PRODUCER)`` and ``f"{TaskFamily.PRODUCER}"`` are ``"producer"`` on
    every supported Python: Python 3.11 changed how a plain ``(str, Enum)`` member formats
    (``"TaskFamily.PRODUCER"``), so a value written with an f-string could not be read back.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


class TaskFamily(StrEnum):
    """Which platform a task belongs to; it decides the endpoint that polls it."""

    SONIC = "sonic"
    PRODUCER = "producer"
    NURO = "nuro"


class TaskStatus(StrEnum):
    """A task's normalised status."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: The server sent something the SDK does not know; treated as not finished.
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True for ``SUCCEEDED`` and ``FAILED``: the task will not change any more."""
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)


class ClipState(StrEnum):
    """A clip's state; ``Clip.raw_state`` keeps the server's exact string."""

    PENDING = "pending"
    RUNNING = "running"
    #: Playable while still generating: ``audio_url`` may already be set.
    STREAMING = "streaming"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True for ``SUCCEEDED`` and ``FAILED``: the clip will not change any more."""
        return self in (ClipState.SUCCEEDED, ClipState.FAILED)


def _family(value: TaskFamily | str) -> TaskFamily:
    """``value`` as a :class:`TaskFamily`; ``ValueError`` naming the known ones if unknown."""
    try:
        return TaskFamily(value)
    except ValueError:
        known = ", ".join(f.value for f in TaskFamily)
        raise ValueError(f"unknown task family {value!r}; expected one of {known}") from None


@final
@frozen
class TaskRef:
    """A submitted task: its id and the platform that polls it.

    Serialise it with ``to_json()`` to resume waiting in another process::

        >>> ref = TaskRef("3f1c...", TaskFamily.SONIC)
        >>> TaskRef.from_json(ref.to_json()) == ref
        True
    """

    task_id: str
    #: A :class:`TaskFamily`, or its value (``"producer"``): a reference rebuilt from a
    #: database row compares, serialises and polls like the one the create call returned.
    family: TaskFamily = field(default=TaskFamily.SONIC, converter=_family)
    #: The submit answer as received (``steps``, ``warning``...); not serialised.
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict: ``{"task_id": ..., "family": ...}``."""
        return {"task_id": self.task_id, "family": self.family.value}

    def to_json(self) -> str:
        """``to_dict()`` as a JSON string, for a file, a queue or a database column."""
        from ._serde import dumps

        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRef:
        """Read what ``to_dict`` wrote (unknown keys are ignored); ``ValueError`` if invalid."""
        from ._serde import task_ref_from_dict

        return task_ref_from_dict(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> TaskRef:
        """Read what ``to_json`` wrote; ``ValueError`` if it is not a valid reference."""
        from ._serde import task_ref_from_json

        return task_ref_from_json(text)

    @classmethod
    def list_from_json(cls, text: str | bytes) -> list[TaskRef]:
        """Read a JSON list of references, such as ``WaitTimeoutError.pending_json()``::

            >>> refs = TaskRef.list_from_json(error.pending_json())
            >>> tasks = await client.await_task(refs)

        Raises ``ValueError`` naming the first entry that is not a valid reference.
        """
        from ._serde import task_refs_from_json

        return task_refs_from_json(text)


@final
@frozen
class Clip:
    """One generated piece of audio (a song, an extension, a stem...)."""

    #: Id for follow-up calls (extend, cover, wav, stems...). ``None`` only on items that
    #: are not clips (a Producer download result).
    clip_id: str | None = None
    state: ClipState = ClipState.UNKNOWN
    #: The server's state string exactly as sent (``None`` when absent).
    raw_state: str | None = None
    title: str | None = None
    tags: str | None = None
    lyrics: str | None = None
    #: MP3 (Sonic), M4A (Producer) or WAV (Nuro); may be set while still ``STREAMING``.
    audio_url: str | None = field(default=None, repr=url_repr)
    wav_url: str | None = field(default=None, repr=url_repr)
    image_url: str | None = field(default=None, repr=url_repr)
    video_url: str | None = field(default=None, repr=url_repr)
    #: Length of the audio, seconds.
    duration: float | None = None
    #: When the clip was made, in UTC; ``None`` when absent or not an ISO-8601 timestamp
    #: (the value as sent stays in ``raw``).
    created_at: datetime | None = None
    #: The upstream model id the server reports (``chirp-v5``), not the one requested.
    mv: str | None = None
    gpt_description_prompt: str | None = None
    negative_tags: str | None = None
    style_weight: float | None = None
    weirdness_constraint: float | None = None
    #: Producer's style description.
    sound: str | None = None
    #: Sent as a string or a number, kept as text; ``None`` when absent, null or blank.
    seed: str | None = None
    #: Set on the results of /sonic/create-voice.
    persona_id: str | None = None
    #: The clip's JSON object as received, unknown keys included.
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class Task:
    """A snapshot of a task, as one poll (or one webhook delivery) saw it.

    Attributes:
        ref: The :class:`TaskRef` (id and family) it belongs to.
        status: :class:`TaskStatus`: ``PENDING``, ``RUNNING``, ``SUCCEEDED`` or ``FAILED``
            (terminal only when every clip is), ``UNKNOWN`` for a state the SDK does not
            know (kept in ``raw``).
        clips: The :class:`Clip` results (two per Sonic generation); ``audio_url`` may be
            set while a clip is still streaming.
        error: Why it failed, when the server said; ``error_type`` its kind.
        progress: 0-100, when the server reports it (Nuro).
        http_status: The poll answer's HTTP status (200, or 202 while not ready).
        raw: The decoded body as received.

    Also: ``task_id``, ``is_terminal``, ``succeeded``, ``audio_urls`` (the clips' audio,
    in order) and ``raise_for_status()`` (raises :class:`TaskFailedError` for a failed
    task, returns the task otherwise)::

        >>> task = await client.await_task(ref)
        >>> task.raise_for_status().audio_urls
        ('https://cdn1.suno.ai/....mp3', 'https://cdn1.suno.ai/....mp3')
    """

    ref: TaskRef
    status: TaskStatus
    clips: tuple[Clip, ...] = ()
    #: Why the task failed, when the server said.
    error: str | None = None
    #: The failure's ``type`` (``failed``, ``timeout``, ``forbidden``, ``api_error``...).
    error_type: str | None = None
    #: 0-100 when the server reports it (Nuro).
    progress: int | None = None
    #: HTTP status of the poll answer (200, or 202 while not ready).
    http_status: int = 200
    #: The decoded body as received.
    raw: Any = field(default=None, eq=False, repr=False)

    @property
    def task_id(self) -> str:
        """The task's id (``task.ref.task_id``)."""
        return self.ref.task_id

    @property
    def is_terminal(self) -> bool:
        """True once the task has succeeded or failed; polling it again changes nothing."""
        return self.status.is_terminal

    @property
    def succeeded(self) -> bool:
        """True once the task has finished well (``status`` is ``SUCCEEDED``)."""
        return self.status is TaskStatus.SUCCEEDED

    @property
    def audio_urls(self) -> tuple[str, ...]:
        """The audio URLs of the clips that have one (final or streaming)."""
        return tuple(c.audio_url for c in self.clips if c.audio_url)

    def raise_for_status(self) -> Task:
        """Return the task unless it failed; raise :class:`TaskFailedError` if it did.

        A task whose clips partly failed is ``FAILED`` only when none succeeded: with one
        good clip of two it is ``SUCCEEDED`` and the failed clip shows in ``clips``.
        """
        if self.status is TaskStatus.FAILED:
            detail = self.error or "no reason given"
            kind = f" ({self.error_type})" if self.error_type else ""
            raise TaskFailedError(
                f"{self.ref.family.value} task {self.ref.task_id} failed{kind}: {detail}. "
                "MusicAPI refunds the credits of failed tasks.",
                task=self,
            )
        return self


@final
@frozen
class Credits:
    """The account balance."""

    #: Monthly subscription credits (reset each billing cycle).
    credits: float
    #: Bought packs; spent first, never expire.
    extra_credits: float
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)

    @property
    def total(self) -> float:
        """Every credit the account can spend: ``credits + extra_credits``."""
        return self.credits + self.extra_credits


@final
@frozen
class UploadedClip:
    """Result of /sonic/upload: a clip id usable by the ``*_upload`` task types."""

    clip_id: str
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class Persona:
    """Result of /sonic/persona."""

    persona_id: str
    message: str | None = None
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class WavFile:
    """Result of /sonic/wav."""

    wav_url: str = field(repr=url_repr)
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class Midi:
    """Result of /sonic/midi."""

    #: ``None`` when the server sent none (absent or null).
    midi_url: str | None = field(default=None, repr=url_repr)
    #: The instruments as sent (``[{name, notes: [...]}, ...]``); the note shape is undocumented.
    #: Compared, but left out of the hash: they are JSON objects.
    instruments: tuple[Any, ...] = field(default=(), hash=False)
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class AlignedWord:
    """One word of :class:`AlignedLyrics` and when it is sung."""

    word: str
    #: Seconds from the start of the clip.
    start_s: float | None = None
    end_s: float | None = None
    #: Alignment confidence, 0-1.
    p_align: float | None = None
    success: bool | None = None


@final
@frozen
class AlignedLyrics:
    """Result of /sonic/aligned-lyrics."""

    words: tuple[AlignedWord, ...]
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class Bpm:
    """Result of /sonic/bpm (beats per minute)."""

    avg_bpm: float | None = None
    max_bpm: float | None = None
    min_bpm: float | None = None
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class Vox:
    """Result of /sonic/vox: an isolated vocal segment for /sonic/persona."""

    vox_audio_id: str | None = None
    status: str | None = None
    source_clip_id: str | None = None
    vocal_start_s: float | None = None
    vocal_end_s: float | None = None
    #: As sent; compared, but left out of the hash (it may be a JSON object).
    wave_response: Any = field(default=None, hash=False)
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class UpsampledTags:
    """Result of /sonic/upsample-tags."""

    upsampled_tags: str
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class GeneratedLyrics:
    """One candidate of /sonic/lyrics."""

    title: str | None = None
    lyrics: str | None = None


def _urls_repr(urls: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{name!r}: {url_repr(url)}" for name, url in urls.items()) + "}"


@final
@frozen
class DownloadLinks:
    """Result of /sonic/download: format name -> URL (``mp3``, ``m4a``, ``wav``)."""

    #: Compared, but left out of the hash: a mapping has none, and a frozen result must be
    #: usable in a set or as a key like the others.
    urls: Mapping[str, str] = field(hash=False, repr=_urls_repr)
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class BatchSubmission:
    """Result of /sonic/batch: the tasks it started and the items it refused."""

    batch_id: str | None
    submitted: int | None
    tasks: tuple[TaskRef, ...]
    #: Items the server refused, as sent back (the shape is undocumented). Compared, but
    #: left out of the hash: they are JSON objects.
    errors: tuple[Any, ...] = field(default=(), hash=False)
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)


@final
@frozen
class Batch:
    """Result of GET /sonic/batch: the batch as the server reports it."""

    batch_id: str | None
    tasks: tuple[TaskRef, ...]
    #: Items that started no task, as reported (the shape is undocumented): as in
    #: :attr:`BatchSubmission.errors`, so a batch read back later still says why it has
    #: fewer tasks than were submitted.
    errors: tuple[Any, ...] = field(default=(), hash=False)
    raw: Mapping[str, Any] = field(default=_NO_RAW, eq=False, repr=False)
