"""``client.nuro``: the retired Nuro platform (every route now answers 410 Gone).

Kept so that old task ids can still be polled and so that the 410 becomes a clear
:class:`GoneError`; use ``client.sonic`` for songs and ``client.producer`` for BGM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, final

from ._models import TaskFamily, TaskRef
from ._resource import TaskResource, check_number, check_webhook, compact, require

__all__ = ["Nuro"]

_BGM_LIST_MAX = 5


@final
class Nuro(TaskResource):
    """Nuro endpoints: ``create`` and ``get_task`` (retired upstream: expect GoneError)."""

    _family = TaskFamily.NURO

    async def create(
        self,
        *,
        type: Literal["vocal", "bgm"],
        lyrics: str | None = None,
        description: str | None = None,
        gender: str | None = None,
        duration: int | None = None,
        genre: str | Sequence[str] | None = None,
        mood: str | Sequence[str] | None = None,
        timbre: str | None = None,
        instrument: Sequence[str] | None = None,
        theme: Sequence[str] | None = None,
        version: str | None = None,
        segments: Sequence[Mapping[str, object]] | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> TaskRef:
        """Start a Nuro song (``type="vocal"``, needs ``lyrics``) or BGM (``"bgm"``, needs
        ``description``). BGM takes lists of at most 5 genres, moods, instruments, themes."""
        if type == "vocal":
            require(lyrics, "lyrics", "for a Nuro vocal song")
            check_number(duration, "duration", low=30, high=240)
            if genre is not None and not isinstance(genre, str):
                raise TypeError("genre must be one string for a vocal song")
            if mood is not None and not isinstance(mood, str):
                raise TypeError("mood must be one string for a vocal song")
        elif type == "bgm":
            require(description, "description", "for Nuro BGM")
            for field, values in (
                ("genre", genre),
                ("mood", mood),
                ("instrument", instrument),
                ("theme", theme),
            ):
                if isinstance(values, str):
                    raise TypeError(f"{field} must be a list of strings for BGM")
                if values is not None and len(values) > _BGM_LIST_MAX:
                    raise ValueError(f"{field} has {len(values)} values; BGM takes at most 5")
        check_webhook(webhook_url)
        listed = {
            k: (v if v is None or isinstance(v, str) else list(v))
            for k, v in (
                ("genre", genre),
                ("mood", mood),
                ("instrument", instrument),
                ("theme", theme),
            )
        }
        body = compact(
            type=type,
            lyrics=lyrics,
            description=description,
            gender=gender,
            duration=duration,
            timbre=timbre,
            version=version,
            segments=None if segments is None else [dict(s) for s in segments],
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            **listed,
        )
        return await self._submit("/nuro/create", body)
