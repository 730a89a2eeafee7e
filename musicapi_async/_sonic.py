"""``client.sonic``: every Sonic endpoint (Suno-backed generation and its tools)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypedDict, TypeVar, cast, final

import attrs
from attrs import asdict, field, frozen

from ._constants import BATCH_MAX_ITEMS, NOT_READY_TIMEOUT
from ._models import (
    AlignedLyrics,
    Batch,
    BatchSubmission,
    Bpm,
    DownloadLinks,
    GeneratedLyrics,
    Midi,
    Persona,
    TaskFamily,
    TaskRef,
    UploadedClip,
    UpsampledTags,
    Vox,
    WavFile,
)
from ._redact import url_repr
from ._resource import (
    TaskResource,
    check_bool,
    check_number,
    check_span,
    check_str,
    check_title,
    check_url,
    check_webhook,
    compact,
    require,
    require_text,
)
from ._serde import (
    parse_aligned_lyrics,
    parse_batch,
    parse_batch_submission,
    parse_bpm,
    parse_download_links,
    parse_lyrics,
    parse_midi,
    parse_persona,
    parse_uploaded_clip,
    parse_upsampled_tags,
    parse_vox,
    parse_wav,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["CreateOptions", "GenerationOptions", "Sonic", "SonicCreate"]

#: Known values of ``vocal_gender`` (female, male); the API may add others, sent as given.
VOCAL_GENDERS: Final = ("f", "m")
#: Known ``variation_category`` values of :meth:`Sonic.remaster` (documented for sonic-v5).
VARIATION_CATEGORIES: Final = ("subtle", "normal", "high")
#: Known ``formats`` of :meth:`Sonic.download`.
DOWNLOAD_FORMATS: Final = ("mp3", "m4a", "wav")
T = TypeVar("T")


class GenerationOptions(TypedDict, total=False):
    """Optional fields shared by the Sonic generation endpoints (all keyword arguments)."""

    #: At most 80 characters.
    title: str
    #: Comma-separated styles, e.g. ``"lofi, chill, piano"``.
    tags: str
    #: Styles to avoid.
    negative_tags: str
    make_instrumental: bool
    #: 0-1: how closely to follow ``tags``.
    style_weight: float
    #: 0-1: how adventurous to be.
    weirdness_constraint: float
    #: 0-1: weight of the source audio (covers, uploads).
    audio_weight: float
    #: ``"f"`` or ``"m"`` (sonic-v4-5 and newer); a new value is sent as given.
    vocal_gender: str
    #: HTTPS URL that MusicAPI calls when the task finishes.
    webhook_url: str
    #: Secret MusicAPI signs its webhook calls with.
    webhook_secret: str


class CreateOptions(GenerationOptions, total=False):
    """Optional fields of the shortcuts that post to ``/sonic/create`` (:meth:`Sonic.extend`,
    :meth:`Sonic.cover`...): the shared ones plus those of ``create`` itself."""

    #: Let MusicAPI write the lyrics (custom mode without ``prompt``).
    auto_lyrics: bool
    #: Whether to answer with Suno's CDN links; sent only when given.
    use_suno_cdn: bool
    #: Seconds, 10-360: a wish, not a precise length (Sonic has no exact length control).
    duration: int


@final
@frozen(kw_only=True)
class SonicCreate:
    """The body of one ``/sonic/create`` call; ``client.sonic.create`` builds one for you.

    Build these yourself for :meth:`Sonic.batch`. As with ``create``, ``custom_mode`` may
    be left out of a ``create_music`` item that has only one of ``prompt`` (lyrics: custom
    mode) or ``gpt_description_prompt`` (description mode)::

        >>> item = SonicCreate(mv="sonic-v5", gpt_description_prompt="a sea shanty")
        >>> item.task_type, item.custom_mode
        ('create_music', False)
    """

    task_type: str = "create_music"
    custom_mode: bool | None = None
    mv: str | None = None
    prompt: str | None = None
    gpt_description_prompt: str | None = None
    title: str | None = None
    tags: str | None = None
    negative_tags: str | None = None
    make_instrumental: bool | None = None
    auto_lyrics: bool | None = None
    vocal_gender: str | None = None
    style_weight: float | None = None
    weirdness_constraint: float | None = None
    audio_weight: float | None = None
    continue_clip_id: str | None = None
    #: Seconds into the source clip where the continuation starts.
    continue_at: float | None = None
    persona_id: str | None = None
    variation_category: str | None = None
    overpainting_start_s: float | None = None
    overpainting_end_s: float | None = None
    use_suno_cdn: bool | None = None
    #: Seconds; documented only in secondary sources, sent only when set.
    duration: int | None = None
    #: Shown in ``repr`` without credentials or query (tokens hide there).
    webhook_url: str | None = field(default=None, repr=url_repr)
    #: Kept out of ``repr`` (and so out of logs and tracebacks).
    webhook_secret: str | None = field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.task_type == "create_music" and self.custom_mode is None:
            derived = _mode(None, self.prompt, self.gpt_description_prompt)
            object.__setattr__(self, "custom_mode", derived)  # frozen: set once, at creation

    def to_body(self) -> dict[str, Any]:
        """Check the fields (``ValueError`` names the bad one) and return the JSON body."""
        check_sonic_create(self)
        body = compact(**asdict(self))
        if "continue_at" in body:
            body["continue_at"] = float(body["continue_at"])  # the API documents a number
        return body


#: A persona's longest name: [spec] "max 79", the older docs "under 80" (CONTRACT §4). Limits
#: from one source only are left to the server: a free 400 if it holds, and no block if not.
PERSONA_NAME_MAX: Final = 79

#: Fields each task_type requires (CONTRACT §3.2); the SDK requires and sends them.
_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "create_music": ("custom_mode", "mv"),
    "extend_music": ("continue_clip_id", "continue_at", "custom_mode", "mv"),
    "extend_upload_music": ("continue_clip_id", "continue_at", "custom_mode", "mv"),
    "concat_music": ("continue_clip_id",),
    "cover_music": ("continue_clip_id", "custom_mode", "mv"),
    "cover_upload_music": ("continue_clip_id", "custom_mode", "mv"),
    "persona_music": ("persona_id", "custom_mode", "mv"),
    "remaster": ("continue_clip_id", "mv"),
    "add_instrumental": ("continue_clip_id", "mv"),
    "add_vocals": ("continue_clip_id", "mv", "prompt"),
}


#: SonicCreate's text fields, refused locally when not strings (the server's 400 names none).
_TEXT_FIELDS = tuple(
    f.name for f in attrs.fields(SonicCreate) if str(f.type) in ("str", "str | None")
)

#: Task types whose custom_mode the shortcuts derive from prompt / gpt_description_prompt.
_MODE_TASK_TYPES = frozenset(
    task_type for task_type, required in _REQUIRED.items() if "custom_mode" in required
)


def check_sonic_create(params: SonicCreate) -> None:
    """Reject what the server certainly rejects; pass every unknown value through."""
    for text in _TEXT_FIELDS:
        check_str(getattr(params, text), text)
    context = f"for task_type={params.task_type!r}"
    # Before the mode branch below reads its truthiness: "false" must not mean custom mode.
    check_bool(params.custom_mode, "custom_mode")
    _check_auto_lyrics(params.custom_mode, params.auto_lyrics)
    for name in _REQUIRED.get(params.task_type, ()):
        if name == "custom_mode" and params.custom_mode is None:
            _missing_mode(params)
        require(getattr(params, name), name, context)
    if params.task_type == "create_music":
        if params.custom_mode:
            require(
                params.prompt,
                "prompt (the lyrics, or a brief with auto_lyrics=True)",
                "in custom mode (custom_mode=True)",
            )
        else:
            require(
                params.gpt_description_prompt,
                "gpt_description_prompt",
                "in description mode (custom_mode=False)",
            )
    _check_generation(
        custom_mode=params.custom_mode,
        make_instrumental=params.make_instrumental,
        auto_lyrics=params.auto_lyrics,
        title=params.title,
        style_weight=params.style_weight,
        weirdness_constraint=params.weirdness_constraint,
        audio_weight=params.audio_weight,
        webhook_url=params.webhook_url,
    )
    check_bool(params.use_suno_cdn, "use_suno_cdn")
    check_number(params.continue_at, "continue_at", low=0)
    check_number(params.overpainting_start_s, "overpainting_start_s", low=0)
    check_number(params.overpainting_end_s, "overpainting_end_s", low=0)
    check_span(
        params.overpainting_start_s,
        params.overpainting_end_s,
        "overpainting_start_s",
        "overpainting_end_s",
    )
    check_number(params.duration, "duration")


def _missing_mode(params: SonicCreate) -> None:
    """custom_mode left out where it cannot be derived: say what to give instead."""
    lyrics, description = params.prompt is not None, params.gpt_description_prompt is not None
    if lyrics and description:
        raise _both_texts()
    if not lyrics and not description and params.task_type == "create_music":
        raise ValueError(
            f"give the song's words for task_type={params.task_type!r}: gpt_description_prompt "
            "(a description; custom_mode=False), or prompt (the lyrics; custom_mode=True)"
        )
    raise ValueError(
        f"custom_mode is required for task_type={params.task_type!r}: True with prompt "
        "(the lyrics), False with gpt_description_prompt"
    )


def _check_generation(
    *,
    custom_mode: object = None,
    make_instrumental: object = None,
    auto_lyrics: object = None,
    title: str | None = None,
    style_weight: object = None,
    weirdness_constraint: object = None,
    audio_weight: object = None,
    webhook_url: str | None = None,
    **texts: object,
) -> None:
    """The fields the generation endpoints share; ``texts``: text fields, by name."""
    for name, text in texts.items():
        check_str(text, name)
    check_bool(custom_mode, "custom_mode")
    check_bool(make_instrumental, "make_instrumental")
    check_bool(auto_lyrics, "auto_lyrics")
    check_title(title)
    check_number(style_weight, "style_weight", low=0, high=1)
    check_number(weirdness_constraint, "weirdness_constraint", low=0, high=1)
    check_number(audio_weight, "audio_weight", low=0, high=1)
    check_webhook(webhook_url)


def _both_texts() -> ValueError:
    return ValueError(
        "both prompt and gpt_description_prompt are given: set custom_mode=True to sing "
        "the lyrics in prompt, or custom_mode=False to generate from the description"
    )


def _check_auto_lyrics(custom_mode: object, auto_lyrics: object) -> None:
    """``auto_lyrics`` works in custom mode only (CONTRACT §3.1): ``prompt`` is its brief."""
    if auto_lyrics is True and custom_mode is False:
        raise ValueError(
            "auto_lyrics=True needs custom_mode=True: the AI then writes the lyrics from the "
            "brief in prompt (in description mode, gpt_description_prompt already does that)"
        )


def _mode(custom_mode: bool | None, prompt: str | None, description: str | None) -> bool | None:
    """custom_mode when not given: True with lyrics (``prompt``), False with a description."""
    check_bool(custom_mode, "custom_mode")  # 0 or "" must not pass for False
    if custom_mode is not None:
        return custom_mode
    if prompt is not None and description is None:
        return True
    if description is not None and prompt is None:
        return False
    return None


def _shortcut_mode(
    custom_mode: bool | None,
    prompt: str | None,
    description: str | None,
    auto_lyrics: bool | None = None,
) -> bool:
    """The custom_mode a shortcut sends: as given, else derived from the texts (True with
    lyrics or ``auto_lyrics``, False with a description or neither); both texts without it
    are refused, as :meth:`Sonic.create` refuses them, rather than one silently dropped."""
    check_bool(auto_lyrics, "auto_lyrics")
    check_str(prompt, "prompt")
    check_str(description, "gpt_description_prompt")
    derived = _mode(custom_mode, prompt, description)
    if derived is None:
        if prompt is not None and description is not None:
            raise _both_texts()
        derived = auto_lyrics is True
    _check_auto_lyrics(derived, auto_lyrics)
    return derived


@final
class Sonic(TaskResource):
    """Sonic endpoints: ``client.sonic.create(...)``, ``client.sonic.get_task(...)``..."""

    _family = TaskFamily.SONIC

    # --- /sonic/create and its task types ---------------------------------------------------

    async def create(
        self,
        *,
        task_type: str = "create_music",
        custom_mode: bool | None = None,
        mv: str | None = None,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        title: str | None = None,
        tags: str | None = None,
        negative_tags: str | None = None,
        make_instrumental: bool | None = None,
        auto_lyrics: bool | None = None,
        vocal_gender: str | None = None,
        style_weight: float | None = None,
        weirdness_constraint: float | None = None,
        audio_weight: float | None = None,
        continue_clip_id: str | None = None,
        continue_at: float | None = None,
        persona_id: str | None = None,
        variation_category: str | None = None,
        overpainting_start_s: float | None = None,
        overpainting_end_s: float | None = None,
        use_suno_cdn: bool | None = None,
        duration: int | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> TaskRef:
        """Start a Sonic generation task (spends credits); returns its :class:`TaskRef`.

        Description mode: MusicAPI writes the song from ``gpt_description_prompt``.
        Custom mode: you give the lyrics in ``prompt`` (with ``[Verse]``/``[Chorus]`` tags)
        plus ``title`` and ``tags``. ``custom_mode`` may be left out when only one of the
        two is given. Every ``task_type`` is accepted; :meth:`extend`, :meth:`cover`,
        :meth:`concat`... are shortcuts for the documented ones. ``mv`` is any model id
        (``"sonic-v5"``; unknown new ids pass through).

        >>> ref = await client.sonic.create(mv="sonic-v5",
        ...                                 gpt_description_prompt="lofi hip hop for studying")
        """
        params = SonicCreate(
            task_type=task_type,
            custom_mode=custom_mode,
            mv=mv,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            title=title,
            tags=tags,
            negative_tags=negative_tags,
            make_instrumental=make_instrumental,
            auto_lyrics=auto_lyrics,
            vocal_gender=vocal_gender,
            style_weight=style_weight,
            weirdness_constraint=weirdness_constraint,
            audio_weight=audio_weight,
            continue_clip_id=continue_clip_id,
            continue_at=continue_at,
            persona_id=persona_id,
            variation_category=variation_category,
            overpainting_start_s=overpainting_start_s,
            overpainting_end_s=overpainting_end_s,
            use_suno_cdn=use_suno_cdn,
            duration=duration,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
        return await self._submit("/sonic/create", params.to_body())

    async def extend(
        self,
        clip_id: str,
        *,
        continue_at: float,
        mv: str,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        custom_mode: bool | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskRef:
        """Continue a generated clip from ``continue_at`` seconds (``extend_music``).

        The result holds only the continuation; join the chain with :meth:`concat`.
        ``custom_mode`` defaults to True when ``prompt`` (lyrics) is given, else False; with
        both ``prompt`` and ``gpt_description_prompt``, say which with ``custom_mode``.
        """
        return await self._create_from(
            "extend_music",
            "clip_id",
            clip_id,
            continue_at=continue_at,
            mv=mv,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            custom_mode=custom_mode,
            **options,
        )

    async def extend_upload(
        self,
        clip_id: str,
        *,
        mv: str,
        continue_at: float = 0.1,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        custom_mode: bool | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskRef:
        """Extend a clip from :meth:`upload` (``extend_upload_music``; the docs advise 0.1 s)."""
        return await self._create_from(
            "extend_upload_music",
            "clip_id",
            clip_id,
            continue_at=continue_at,
            mv=mv,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            custom_mode=custom_mode,
            **options,
        )

    async def cover(
        self,
        clip_id: str,
        *,
        mv: str,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        custom_mode: bool | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskRef:
        """A new style or arrangement of a generated clip (``cover_music``)."""
        return await self._create_from(
            "cover_music",
            "clip_id",
            clip_id,
            mv=mv,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            custom_mode=custom_mode,
            **options,
        )

    async def cover_upload(
        self,
        clip_id: str,
        *,
        mv: str,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        custom_mode: bool | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskRef:
        """Cover a clip from :meth:`upload` (``cover_upload_music``); see ``audio_weight``."""
        return await self._create_from(
            "cover_upload_music",
            "clip_id",
            clip_id,
            mv=mv,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            custom_mode=custom_mode,
            **options,
        )

    async def concat(
        self, clip_id: str, *, webhook_url: str | None = None, webhook_secret: str | None = None
    ) -> TaskRef:
        """Join an extension chain, ending at ``clip_id``, into one song (``concat_music``)."""
        return await self._create_from(
            "concat_music",
            "clip_id",
            clip_id,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )

    async def persona_music(
        self,
        persona_id: str,
        *,
        mv: str,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        custom_mode: bool | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskRef:
        """Generate with a persona's voice and style (``persona_music``)."""
        return await self._create_from(
            "persona_music",
            "persona_id",
            persona_id,
            mv=mv,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            custom_mode=custom_mode,
            **options,
        )

    async def remaster(
        self,
        clip_id: str,
        *,
        mv: str,
        variation_category: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> TaskRef:
        """Remaster a clip (``remaster``).

        ``variation_category``: ``"subtle"``, ``"normal"`` or ``"high"`` (documented for
        sonic-v5, see ``VARIATION_CATEGORIES``); a new value is sent as given.
        """
        return await self._create_from(
            "remaster",
            "clip_id",
            clip_id,
            mv=mv,
            variation_category=variation_category,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )

    async def add_instrumental(
        self,
        clip_id: str,
        *,
        mv: str,
        overpainting_start_s: float | None = None,
        overpainting_end_s: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskRef:
        """Add an instrumental to an uploaded vocal clip (``add_instrumental``)."""
        return await self._create_from(
            "add_instrumental",
            "clip_id",
            clip_id,
            mv=mv,
            overpainting_start_s=overpainting_start_s,
            overpainting_end_s=overpainting_end_s,
            **options,
        )

    async def add_vocals(
        self,
        clip_id: str,
        *,
        prompt: str,
        mv: str,
        overpainting_start_s: float | None = None,
        overpainting_end_s: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskRef:
        """Sing ``prompt`` (the words) over an uploaded instrumental clip (``add_vocals``)."""
        return await self._create_from(
            "add_vocals",
            "clip_id",
            clip_id,
            prompt=prompt,
            mv=mv,
            overpainting_start_s=overpainting_start_s,
            overpainting_end_s=overpainting_end_s,
            **options,
        )

    async def _create_from(
        self,
        task_type: str,
        argument: str,
        source: str,
        *,
        custom_mode: bool | None = None,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        **fields: Any,
    ) -> TaskRef:
        """A named shortcut of :meth:`create`, checked under the caller's argument names."""
        require_text(source, argument, f"for {task_type}")
        require(fields.get("mv", "-"), "mv", f"for {task_type}")
        if task_type in _MODE_TASK_TYPES:
            auto_lyrics = fields.get("auto_lyrics")
            custom_mode = _shortcut_mode(custom_mode, prompt, gpt_description_prompt, auto_lyrics)
        fields["persona_id" if argument == "persona_id" else "continue_clip_id"] = source
        return await self.create(
            task_type=task_type,
            custom_mode=custom_mode,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            **fields,
        )

    async def batch(
        self,
        items: Sequence[SonicCreate],
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> BatchSubmission:
        """Submit up to 10 ``/sonic/create`` bodies in one call (``POST /sonic/batch``).

        Each item is checked like :meth:`create`; refused items come back in ``errors``.
        """
        if isinstance(cast(object, items), SonicCreate) or not items:
            raise ValueError("items must be a non-empty sequence of SonicCreate")
        if len(items) > BATCH_MAX_ITEMS:
            raise ValueError(
                f"items has {len(items)} entries; /sonic/batch takes at most {BATCH_MAX_ITEMS}"
            )
        bodies = []
        for index, item in enumerate(items):
            if not isinstance(item, SonicCreate):
                raise TypeError(f"items[{index}] must be a SonicCreate, got {type(item).__name__}")
            try:
                bodies.append(item.to_body())
            except ValueError as exc:
                raise ValueError(f"items[{index}]: {exc}") from exc
        check_webhook(webhook_url)
        # One URL for every task of the batch: a tag could not tell them apart.
        body, webhook, _ = self._client._with_webhook(
            compact(items=bodies, webhook_url=webhook_url, webhook_secret=webhook_secret),
            tag=False,
        )
        submission = await self._call("POST", "/sonic/batch", parse_batch_submission, body=body)
        # Refused items leave no task, so tasks and items need not line up: a model, or a
        # delivery to this client (an item's own webhook_url wins over the batch's), is known
        # only when every item agrees; otherwise the tasks are polled as usual.
        models = {str(item.get("mv")) for item in bodies}
        model = models.pop() if len(models) == 1 else None
        delivered = {
            self._client._delivers_here(item) if item.get("webhook_url") else webhook
            for item in bodies
        }
        for ref in submission.tasks:
            self._client._scheduler.note_submitted(ref, model, webhook=delivered == {True})
        return submission

    async def get_batch(self, batch_id: str) -> Batch:
        """The state of a batch (``GET /sonic/batch?batch_id=...``)."""
        require(batch_id, "batch_id", "to look up a batch")
        return await self._call("GET", "/sonic/batch", parse_batch, params={"batch_id": batch_id})

    # --- other generation endpoints ---------------------------------------------------------

    async def upload(self, url: str) -> UploadedClip:
        """Import a public MP3/WAV URL as a clip (sync, about 20 s; 2 credits)."""
        check_url(url, "url")
        return await self._call("POST", "/sonic/upload", parse_uploaded_clip, body={"url": url})

    async def upload_extend(
        self,
        url: str,
        *,
        mv: str,
        custom_mode: bool | None = None,
        continue_at: float | None = None,
        auto_concat: bool | None = None,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        **options: Unpack[GenerationOptions],
    ) -> TaskRef:
        """Upload and extend in one call (``/sonic/upload-extend``).

        The returned reference's ``raw["steps"]`` reports each stage.
        """
        return await self._upload_and(
            "/sonic/upload-extend",
            url,
            mv,
            custom_mode,
            prompt,
            gpt_description_prompt,
            options,
            continue_at=continue_at,
            auto_concat=auto_concat,
        )

    async def upload_cover(
        self,
        url: str,
        *,
        mv: str,
        custom_mode: bool | None = None,
        auto_concat: bool | None = None,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        **options: Unpack[GenerationOptions],
    ) -> TaskRef:
        """Upload and cover in one call (``/sonic/upload-cover``)."""
        return await self._upload_and(
            "/sonic/upload-cover",
            url,
            mv,
            custom_mode,
            prompt,
            gpt_description_prompt,
            options,
            auto_concat=auto_concat,
        )

    async def _upload_and(
        self,
        path: str,
        url: str,
        mv: str,
        custom_mode: bool | None,
        prompt: str | None,
        gpt_description_prompt: str | None,
        options: GenerationOptions,
        **extra: Any,
    ) -> TaskRef:
        check_url(url, "url")
        require(mv, "mv", f"for {path}")
        custom_mode = _shortcut_mode(custom_mode, prompt, gpt_description_prompt)
        _check_generation(custom_mode=custom_mode, **_checked(options))
        check_number(extra.get("continue_at"), "continue_at", low=0)
        if extra.get("continue_at") is not None:
            extra["continue_at"] = float(extra["continue_at"])  # as to_body: send a float
        check_bool(extra.get("auto_concat"), "auto_concat")
        body = compact(
            url=url,
            custom_mode=custom_mode,
            mv=mv,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            **extra,
            **options,
        )
        return await self._submit(path, body)

    async def sample(
        self,
        *,
        chop_sample_start_s: float,
        chop_sample_end_s: float,
        mv: str,
        url: str | None = None,
        sample_clip_id: str | None = None,
        custom_mode: bool | None = None,
        auto_lyrics: bool | None = None,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        **options: Unpack[GenerationOptions],
    ) -> TaskRef:
        """Generate from a window of a sample: a public ``url`` or a ``sample_clip_id``.

        ``make_instrumental`` is required by the endpoint and defaults to False.
        """
        require(mv, "mv", "for sample")
        if (url is None) == (sample_clip_id is None):
            raise ValueError("give exactly one of url= or sample_clip_id= as the sample source")
        if url is not None:
            check_url(url, "url")
        check_str(sample_clip_id, "sample_clip_id")
        check_number(chop_sample_start_s, "chop_sample_start_s", low=0)
        check_number(chop_sample_end_s, "chop_sample_end_s", low=0)
        check_span(
            chop_sample_start_s, chop_sample_end_s, "chop_sample_start_s", "chop_sample_end_s"
        )
        custom_mode = _shortcut_mode(custom_mode, prompt, gpt_description_prompt, auto_lyrics)
        _check_generation(custom_mode=custom_mode, auto_lyrics=auto_lyrics, **_checked(options))
        body = compact(
            url=url,
            sample_clip_id=sample_clip_id,
            chop_sample_start_s=chop_sample_start_s,
            chop_sample_end_s=chop_sample_end_s,
            custom_mode=custom_mode,
            mv=mv,
            # Required by /sonic/sample: None (not given) is False, never left out.
            make_instrumental=options.pop("make_instrumental", None) or False,
            auto_lyrics=auto_lyrics,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            **options,
        )
        return await self._submit("/sonic/sample", body)

    async def mashup(
        self,
        clip_ids: Sequence[str],
        *,
        mv: str,
        custom_mode: bool | None = None,
        auto_lyrics: bool | None = None,
        prompt: str | None = None,
        gpt_description_prompt: str | None = None,
        **options: Unpack[GenerationOptions],
    ) -> TaskRef:
        """Blend exactly two clips into one song (``/sonic/mashup``)."""
        require(mv, "mv", "for mashup")
        if isinstance(clip_ids, str) or len(clip_ids) != 2:
            raise ValueError("clip_ids must hold exactly 2 clip ids")
        for clip_id in clip_ids:
            require_text(clip_id, "each of clip_ids", "for a mashup")
        custom_mode = _shortcut_mode(custom_mode, prompt, gpt_description_prompt, auto_lyrics)
        _check_generation(custom_mode=custom_mode, auto_lyrics=auto_lyrics, **_checked(options))
        body = compact(
            mashup_clip_ids=list(clip_ids),
            custom_mode=custom_mode,
            mv=mv,
            auto_lyrics=auto_lyrics,
            prompt=prompt,
            gpt_description_prompt=gpt_description_prompt,
            **options,
        )
        return await self._submit("/sonic/mashup", body)

    async def replace_section(
        self,
        clip_id: str,
        *,
        mv: str,
        infill_start_s: float,
        infill_end_s: float,
        prompt: str | None = None,
        infill_lyrics: str | None = None,
        title: str | None = None,
        tags: str | None = None,
        negative_tags: str | None = None,
        style_weight: float | None = None,
        weirdness_constraint: float | None = None,
        vocal_gender: str | None = None,
        auto_concat: bool | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> TaskRef:
        """Regenerate the section ``[infill_start_s, infill_end_s)`` of a clip (seconds)."""
        require(clip_id, "clip_id", "for replace_section")
        require(mv, "mv", "for replace_section")
        check_number(infill_start_s, "infill_start_s", low=0)
        check_number(infill_end_s, "infill_end_s", low=0)
        check_span(infill_start_s, infill_end_s, "infill_start_s", "infill_end_s")
        check_str(infill_lyrics, "infill_lyrics")
        _check_generation(
            title=title,
            style_weight=style_weight,
            weirdness_constraint=weirdness_constraint,
            webhook_url=webhook_url,
            clip_id=clip_id,
            mv=mv,
            prompt=prompt,
            tags=tags,
            negative_tags=negative_tags,
            vocal_gender=vocal_gender,
            webhook_secret=webhook_secret,
        )
        check_bool(auto_concat, "auto_concat")
        body = compact(
            clip_id=clip_id,
            mv=mv,
            infill_start_s=infill_start_s,
            infill_end_s=infill_end_s,
            prompt=prompt,
            infill_lyrics=infill_lyrics,
            title=title,
            tags=tags,
            negative_tags=negative_tags,
            style_weight=style_weight,
            weirdness_constraint=weirdness_constraint,
            vocal_gender=vocal_gender,
            auto_concat=auto_concat,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
        return await self._submit("/sonic/replace-section", body)

    async def create_voice(
        self, audio_url: str, *, webhook_url: str | None = None, webhook_secret: str | None = None
    ) -> TaskRef:
        """Train a voice persona from a public recording (async; the task yields ``persona_id``)."""
        check_url(audio_url, "audio_url")
        check_webhook(webhook_url)
        body = compact(audio_url=audio_url, webhook_url=webhook_url, webhook_secret=webhook_secret)
        return await self._submit("/sonic/create-voice", body)

    async def stems_basic(
        self, clip_id: str, *, webhook_url: str | None = None, webhook_secret: str | None = None
    ) -> TaskRef:
        """Split a clip into vocals and instrumental (async)."""
        return await self._clip_task("/sonic/stems/basic", clip_id, webhook_url, webhook_secret)

    async def stems_full(
        self, clip_id: str, *, webhook_url: str | None = None, webhook_secret: str | None = None
    ) -> TaskRef:
        """Split a clip into every instrument's stem (async)."""
        return await self._clip_task("/sonic/stems/full", clip_id, webhook_url, webhook_secret)

    async def _clip_task(
        self, path: str, clip_id: str, webhook_url: str | None, webhook_secret: str | None
    ) -> TaskRef:
        require_text(clip_id, "clip_id", f"for {path}")
        check_webhook(webhook_url)
        body = compact(clip_id=clip_id, webhook_url=webhook_url, webhook_secret=webhook_secret)
        return await self._submit(path, body)

    # --- synchronous tools ------------------------------------------------------------------

    async def create_persona(
        self,
        clip_id: str,
        *,
        name: str,
        describe: str | None = None,
        styles: str | None = None,
        vox_audio_id: str | None = None,
        vocal_start_s: float | None = None,
        vocal_end_s: float | None = None,
    ) -> Persona:
        """Make a reusable persona from a clip's voice (optionally a :meth:`vox` segment)."""
        for text_field, text in (
            ("describe", describe),
            ("styles", styles),
            ("vox_audio_id", vox_audio_id),
        ):
            check_str(text, text_field)
        require_text(clip_id, "clip_id", "for create_persona")
        require_text(name, "name", "for create_persona", most=PERSONA_NAME_MAX)
        check_number(vocal_start_s, "vocal_start_s", low=0)
        check_number(vocal_end_s, "vocal_end_s", low=0)
        check_span(vocal_start_s, vocal_end_s, "vocal_start_s", "vocal_end_s")
        body = compact(
            clip_id=clip_id,
            name=name,
            describe=describe,
            styles=styles,
            vox_audio_id=vox_audio_id,
            vocal_start_s=vocal_start_s,
            vocal_end_s=vocal_end_s,
        )
        return await self._call("POST", "/sonic/persona", parse_persona, body=body)

    async def wav(self, clip_id: str) -> WavFile:
        """A WAV download URL for a clip."""
        return await self._clip_call("/sonic/wav", clip_id, parse_wav)

    async def midi(self, clip_id: str, *, wait_timeout: float = NOT_READY_TIMEOUT) -> Midi:
        """A MIDI transcription; repeats while not ready, up to ``wait_timeout`` seconds."""
        require_text(clip_id, "clip_id", "for midi")
        return await self._call_until_ready(
            "/sonic/midi", {"clip_id": clip_id}, parse_midi, wait_timeout
        )

    async def aligned_lyrics(self, clip_id: str) -> AlignedLyrics:
        """Word timings of a clip's lyrics (charged once, then cached by the server)."""
        return await self._clip_call("/sonic/aligned-lyrics", clip_id, parse_aligned_lyrics)

    async def bpm(self, clip_id: str) -> Bpm:
        """Tempo of a clip."""
        return await self._clip_call("/sonic/bpm", clip_id, parse_bpm)

    async def vox(
        self, clip_id: str, *, vocal_start_s: float | None = None, vocal_end_s: float | None = None
    ) -> Vox:
        """Isolate a vocal segment (for :meth:`create_persona`)."""
        require_text(clip_id, "clip_id", "for vox")
        check_number(vocal_start_s, "vocal_start_s", low=0)
        check_number(vocal_end_s, "vocal_end_s", low=0)
        check_span(vocal_start_s, vocal_end_s, "vocal_start_s", "vocal_end_s")
        body = compact(clip_id=clip_id, vocal_start_s=vocal_start_s, vocal_end_s=vocal_end_s)
        return await self._call("POST", "/sonic/vox", parse_vox, body=body)

    async def upsample_tags(self, tags: str) -> UpsampledTags:
        """Expand short style tags into a richer description."""
        require_text(tags, "tags", "for upsample_tags")
        return await self._call(
            "POST", "/sonic/upsample-tags", parse_upsampled_tags, body={"tags": tags}
        )

    async def lyrics(self, description: str) -> tuple[GeneratedLyrics, ...]:
        """Two candidate songs (title and lyrics) written from ``description``."""
        require_text(description, "description", "for lyrics")
        return await self._call(
            "POST", "/sonic/lyrics", parse_lyrics, body={"description": description}
        )

    async def download(
        self,
        clip_id: str,
        *,
        formats: Sequence[str] = ("mp3",),
        wait_timeout: float = NOT_READY_TIMEOUT,
    ) -> DownloadLinks:
        """Download links of a clip in the given formats (repeats while not ready).

        ``formats``: any of ``"mp3"``, ``"m4a"``, ``"wav"`` (``DOWNLOAD_FORMATS``); a new
        format is sent as given.
        """
        require_text(clip_id, "clip_id", "for download")
        if isinstance(formats, str) or not formats:
            raise ValueError("formats must be a non-empty sequence such as ('mp3', 'wav')")
        body = {"clip_id": clip_id, "formats": list(formats)}
        return await self._call_until_ready(
            "/sonic/download", body, parse_download_links, wait_timeout
        )

    async def _clip_call(self, path: str, clip_id: str, parse: Callable[[Any], T]) -> T:
        require_text(clip_id, "clip_id", f"for {path}")
        return await self._call("POST", path, parse, body={"clip_id": clip_id})


def _checked(options: GenerationOptions) -> dict[str, Any]:
    keys = (
        "make_instrumental",
        "title",
        "style_weight",
        "weirdness_constraint",
        "audio_weight",
        "webhook_url",
        # Text fields, checked by type:
        "tags",
        "negative_tags",
        "vocal_gender",
        "webhook_secret",
    )
    return {key: options[key] for key in keys if key in options}  # type: ignore[literal-required]
