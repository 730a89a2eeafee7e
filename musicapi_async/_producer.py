"""``client.producer``: Producer endpoints (Google Lyria 3 since 2026-04; FUZZ ids are aliases)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, final

from ._constants import PRODUCER_TASK_TYPES
from ._models import TaskFamily, TaskRef
from ._resource import (
    TaskResource,
    check_number,
    check_span,
    check_str,
    check_title,
    check_url,
    check_webhook,
    compact,
    require,
)

__all__ = ["Producer"]

#: Task types that work on a source clip (``clip_id``: CONTRACT §5): every documented one
#: but create; any other, new ones included, is sent as given.
_FROM_A_CLIP: Final = frozenset(PRODUCER_TASK_TYPES) - {"create_music"}

#: The section fields each task type needs (CONTRACT §5: extend from ``starts_at``, replace
#: ``starts_at`` to ``ends_at``); the upload variants need the same as their originals.
RANGE_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "extend_music": ("starts_at",),
    "extend_upload_music": ("starts_at",),
    "replace_music": ("starts_at", "ends_at"),
    "replace_upload_music": ("starts_at", "ends_at"),
}

#: Known ``format`` values of :meth:`Producer.download`.
PRODUCER_DOWNLOAD_FORMATS: Final = ("mp3", "wav")


@final
class Producer(TaskResource):
    """Producer endpoints: ``create``, ``get_task``, ``upload``, ``download``."""

    _family = TaskFamily.PRODUCER

    async def create(
        self,
        *,
        task_type: str = "create_music",
        sound: str | None = None,
        lyrics: str | None = None,
        mv: str | None = None,
        title: str | None = None,
        seed: str | int | None = None,
        clip_id: str | None = None,
        starts_at: float | None = None,
        ends_at: float | None = None,
        instruction: str | None = None,
        length: float | None = None,
        bpm: str | float | None = None,
        extend_s: float | None = None,
        strength: float | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> TaskRef:
        """Start a Producer task (spends credits): a song from ``sound`` and/or ``lyrics``.

        Other task types (``extend_music``, ``replace_music``...) take ``clip_id`` and the
        ``starts_at``/``ends_at`` seconds; retired ones answer 410 (:class:`GoneError`).

        >>> ref = await client.producer.create(sound="warm analog synthwave, 90 bpm")
        """
        texts = {"task_type": task_type, "sound": sound, "lyrics": lyrics, "mv": mv}
        texts |= {"title": title, "clip_id": clip_id, "instruction": instruction}
        for name, text in (*texts.items(), ("webhook_secret", webhook_secret)):
            check_str(text, name)
        if task_type == "create_music" and not (sound or lyrics):
            raise ValueError("sound or lyrics (or both) is required for task_type='create_music'")
        if task_type in _FROM_A_CLIP:
            require(clip_id, "clip_id", f"for task_type={task_type!r}")
        ends = {"starts_at": starts_at, "ends_at": ends_at}
        extending = task_type in ("extend_music", "extend_upload_music")
        for name in RANGE_FIELDS.get(task_type, ()):
            if extending and extend_s is not None:
                continue  # an extend in the vendor spec's words: from extend_s seconds
            hint = " (or extend_s)" if extending else ""
            require(ends[name], name, f"for task_type={task_type!r}{hint}")
        check_title(title)
        check_number(starts_at, "starts_at", low=0)
        check_number(ends_at, "ends_at", low=0)
        check_span(starts_at, ends_at, "starts_at", "ends_at")
        # Not negative; the 1-240 s range is one source's (the vendor spec): left to the
        # server.
        check_number(length, "length", low=0)
        check_number(strength, "strength", low=0, high=1)
        check_number(extend_s, "extend_s", low=0)
        if not isinstance(bpm, str):
            check_number(bpm, "bpm")
        check_webhook(webhook_url)
        body = compact(
            task_type=task_type,
            sound=sound,
            lyrics=lyrics,
            mv=mv,
            title=title,
            seed=seed,
            clip_id=clip_id,
            starts_at=starts_at,
            ends_at=ends_at,
            instruction=instruction,
            length=length,
            bpm=bpm,
            extend_s=extend_s,
            strength=strength,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
        return await self._submit("/producer/create", body)

    async def extend(
        self,
        clip_id: str,
        *,
        starts_at: float,
        instruction: str | None = None,
        length: float | None = None,
        lyrics: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> TaskRef:
        """Continue a Producer clip from ``starts_at`` seconds (``extend_music``)."""
        return await self.create(
            task_type="extend_music",
            clip_id=clip_id,
            starts_at=starts_at,
            instruction=instruction,
            length=length,
            lyrics=lyrics,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )

    async def replace(
        self,
        clip_id: str,
        *,
        starts_at: float,
        ends_at: float,
        instruction: str | None = None,
        lyrics: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> TaskRef:
        """Regenerate ``[starts_at, ends_at)`` seconds of a Producer clip (``replace_music``)."""
        return await self.create(
            task_type="replace_music",
            clip_id=clip_id,
            starts_at=starts_at,
            ends_at=ends_at,
            instruction=instruction,
            lyrics=lyrics,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )

    async def upload(
        self, audio_url: str, *, webhook_url: str | None = None, webhook_secret: str | None = None
    ) -> TaskRef:
        """Import a public audio URL as a Producer clip (async; poll the task)."""
        check_url(audio_url, "audio_url")
        check_webhook(webhook_url)
        body = compact(audio_url=audio_url, webhook_url=webhook_url, webhook_secret=webhook_secret)
        return await self._submit("/producer/upload", body)

    async def download(
        self,
        clip_id: str,
        *,
        format: str = "mp3",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> TaskRef:
        """Prepare an MP3 or WAV of a Producer clip (async; the task's clip has the URL).

        ``format``: ``"mp3"`` or ``"wav"`` (``PRODUCER_DOWNLOAD_FORMATS``); a new format is
        sent as given.
        """
        require(clip_id, "clip_id", "for producer.download")
        check_webhook(webhook_url)
        body = compact(
            clip_id=clip_id, format=format, webhook_url=webhook_url, webhook_secret=webhook_secret
        )
        return await self._submit("/producer/download", body)
