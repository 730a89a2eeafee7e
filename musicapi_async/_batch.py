"""Resumable batches: create many songs, wait for them, download them, survive a crash.

:func:`run_batch` submits every job (one ``/sonic/create`` each, one after the other, under
the client's shared rate limiter), awaits them all with the client's scheduler, downloads
the finished clips and writes ``results.jsonl``, all in one output directory. A journal in
that directory (``.musicapi-batch.sqlite3``, the standard library's SQLite, WAL, each
change committed and synced before the next network step) records where every job stands,
so that running the same batch again after a crash, a ``kill -9`` or Ctrl-C resumes it:

* a job whose task was created is awaited, never created again;
* a finished task's result is read from the journal, not polled again;
* a file already downloaded (and still there) is not fetched again.

A job moves through these states (:class:`BatchJobState`)::

    planned -> submitting -> sending -> created -> done -> downloaded
                   |            |           \\-> failed
                   |            \\-> uncertain
                   \\-> planned (certainly not sent), failed (refused: 400, a 403...)

``submitting`` is written before the create call, ``sending`` when the client hands the
request to httpx (it tells the create's SendWatch: after the rate limiter granted it,
before any connection is made),
and ``created``, with the task reference, as soon as the answer arrives. When the client
retries the create (after a 429, or a connection that failed before sending: the server
certainly did not act on it), the job goes back to ``submitting`` for the backoff. MusicAPI
has no way to list tasks, so an interrupted create is reconciled from those marks alone:

* ``submitting`` (the request never left): safe, created on the next run;
* ``sending`` (it may have reached the server), and every create error that says the task
  may exist (``task_may_exist``: a read timeout, a dropped connection, a 5xx): the job is
  **uncertain** and is *not* created again, since that could pay twice; it is reported,
  and ``resubmit_uncertain=True`` (``musicapi batch --resubmit-uncertain``) creates it again
  after you checked (the dashboard's history, a webhook, the credits), while
  ``adopt={job_id: task_id}`` (``--adopt JOB=TASK_ID``) records the task you found there as
  the job's, to be awaited and saved like any created one;
* errors that prove nothing was created and would stop every next create too (a
  connection refused, 429 after the retries, a redirect but a 303 (which says the call was
  carried out: uncertain), 401, a 403 about the account:
  credits, subscription, usage or QPS limit, a full queue, any 403 that does not refuse the
  job's content, and any other 4xx but 400, 413 and 422: a 404 or 405 from a wrong base
  URL, a 410 of a retired endpoint) put the job back to ``planned``
  and stop the submissions (the jobs already created are still awaited); a refusal of the
  job itself (400, 413, 422, a 403 about its content: lyrics, moderation, a 404 about the
  clip it names) marks it ``failed``. Failed
  tasks are recorded and not retried (MusicAPI refunds them).

On Ctrl-C (cancellation) a create request already on the wire is let finish (its answer
is the only record of the task id) while one still waiting for the rate limiter, or for a
retry after a 429, is dropped, so an interrupted run leaves no uncertain job behind.

Job ids come from the input (``"id"``) or from the job's content: the first 12 hex digits
of the SHA-256 of the line as written (its JSON object, canonical: key order, spacing and
nulls do not count, and no default such as ``default_mv`` is in it), or of the request body
of a bare :class:`SonicCreate`, with ``-2``, ``-3``... for repeats, so the same file (even
reordered, or with lines added) maps to the same jobs whatever the options. The journal
(version 2; a version-1 journal, whose ids were derived after the defaults, is refused)
refuses a batch that reuses an id with different content once that job may have reached
the server, that shares no job with the batch already in the directory, that fills in
another ``default_mv`` than the batch began with, or that would create the request of a
job of the journal not in this input (``sending``, ``uncertain``, ``created``, ``done``,
``downloaded``: the same line under a new id would pay twice; a ``failed`` one may be tried
again under a new id, as nothing of it was kept or charged). The journal keeps requests
without the webhook secret and without credentials or query in the webhook URL.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import inspect
import json
import logging
import math
import os
import re
import sys
import types
import typing
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, final

import anyio
import anyio.lowlevel
import attrs
from anyio.abc import TaskGroup
from attrs import frozen

from ._constants import DEFAULT_WAIT_TIMEOUT
from ._download import DownloadError, clip_extensions, safe_filename, saved_clips
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    InsufficientCreditsError,
    LimiterError,
    MusicAPIError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ._http import PaidCall
from ._models import Clip, ClipState, StrEnum, Task, TaskRef
from ._poller import ProgressState, TaskProgress
from ._ratelimit import limiter_interval
from ._serde import parse_task
from ._sonic import SonicCreate

if TYPE_CHECKING:
    import sqlite3  # imported where used: a Python built without SQLite can use the rest

    from ._client import MusicAPI

logger = logging.getLogger("musicapi_async")

__all__ = [
    "BATCH_JOURNAL",
    "BATCH_RESULTS",
    "BatchConflictError",
    "BatchEvent",
    "BatchInputError",
    "BatchJournalError",
    "BatchJob",
    "BatchJobResult",
    "BatchJobState",
    "BatchReport",
    "read_batch_jobs",
    "run_batch",
]

#: The journal's file name, in the output directory.
BATCH_JOURNAL: Final = ".musicapi-batch.sqlite3"
#: The lock that keeps two runs off one output directory (an advisory lock on POSIX).
BATCH_LOCK: Final = ".musicapi-batch.lock"
#: The results file's name, in the output directory (one JSON object per job).
BATCH_RESULTS: Final = "results.jsonl"
#: The model of input lines that name none.
DEFAULT_BATCH_MODEL: Final = "sonic-v5"
#: Downloads running at once (they do not use the API's request budget).
BATCH_DOWNLOADS: Final = 4
#: Hex digits of a content-derived job id.
DERIVED_ID_DIGITS: Final = 12
#: Version of the journal (2: ids derived from the line as written, defaults recorded).
JOURNAL_SCHEMA: Final = 2

_TIMEOUT_UNSET: Any = object()


class BatchJobState(StrEnum):
    """Where a job of a batch stands, as the journal records it."""

    #: Not submitted yet.
    PLANNED = "planned"
    #: About to be created; the request has not left (safe to create after a crash).
    SUBMITTING = "submitting"
    #: The create request was handed to the network; it may have reached the server.
    SENDING = "sending"
    #: A create may have started a task whose id never arrived: not created again unless
    #: asked (``resubmit_uncertain``).
    UNCERTAIN = "uncertain"
    #: The task exists; its reference is recorded.
    CREATED = "created"
    #: The task succeeded; its final snapshot is recorded.
    DONE = "done"
    #: The task failed, or MusicAPI refused to create it; not retried.
    FAILED = "failed"
    #: The finished clips' audio is saved; the files are recorded.
    DOWNLOADED = "downloaded"


# --- jobs and their input ---------------------------------------------------------------------


@final
@frozen
class BatchJob:
    """One job of a batch: an id and the ``/sonic/create`` call it makes."""

    #: Stable across runs: the input's ``"id"``, or derived from the content.
    job_id: str
    create: SonicCreate
    #: The input line it came from (1-based), when read from a file.
    line: int | None = None
    #: The model filled in from ``read_batch_jobs(default_mv=)`` (``musicapi batch --mv``)
    #: because the line named none; the journal refuses a rerun that fills in another.
    default_mv: str | None = None


class BatchInputError(ValueError):
    """The batch's input is unusable; nothing was sent. ``problems`` lists (line, message)."""

    problems: tuple[tuple[int | None, str], ...]

    def __init__(self, message: str, problems: Sequence[tuple[int | None, str]]) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class BatchConflictError(ValueError):
    """The output directory's journal belongs to another batch (or another run holds it)."""


class BatchJournalError(OSError):
    """The batch journal could not be written (a full disk, an I/O error): the run stops.

    Every change the journal did record stands, so the same run resumes once the cause is
    fixed. ``task`` is set when what could not be recorded was a task a create had just
    made (and paid for): the journal cannot know it, so a rerun reports that job as
    uncertain and does not create it again; wait for ``task`` yourself
    (``client.await_task(error.task)``, ``musicapi wait ID -o DIR``).
    """

    def __init__(self, message: str, *, job_id: str | None = None, task: TaskRef | None = None):
        super().__init__(message)
        #: The job whose create made ``task``.
        self.job_id = job_id
        #: The task created but not recorded, or None.
        self.task = task


#: Input keys that are not SonicCreate fields.
_ALIASES: Final = {
    "id": "the job's id",
    "lyrics": "custom mode: the lyrics (sent as prompt)",
    "instrumental": "make_instrumental",
}


def _field_kinds() -> dict[str, str]:
    """SonicCreate's fields and the JSON type each takes: str, bool, number or int."""
    hints = typing.get_type_hints(SonicCreate)
    kinds: dict[str, str] = {}
    for field in attrs.fields(SonicCreate):
        hint = hints[field.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            hint = args[0]
        kinds[field.name] = {bool: "bool", int: "int", float: "number"}.get(hint, "str")
    return kinds


_KINDS: Final = _field_kinds()
#: Fields whose values never appear in a message.
_SECRET_FIELDS: Final = frozenset({"webhook_secret"})
_KIND_CHECKS: Final[Mapping[str, tuple[str, Callable[[object], bool]]]] = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "int": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "number": (
        "a number",
        lambda v: (
            (isinstance(v, int) and not isinstance(v, bool))
            or (isinstance(v, float) and math.isfinite(v))
        ),
    ),
}


def read_batch_jobs(
    path: str | os.PathLike[str], *, default_mv: str = DEFAULT_BATCH_MODEL
) -> list[BatchJob]:
    """Read a JSONL file of jobs, one JSON object per line; check every line first.

    A line is a ``/sonic/create`` body (any field of :class:`SonicCreate`), with shortcuts:

    * ``{"prompt": "a sea shanty"}`` alone is description mode (MusicAPI writes the song);
    * ``{"lyrics": "[Verse] ...", "title": ..., "tags": ...}`` is custom mode (``prompt``
      next to ``lyrics`` is the style when ``tags`` is not given); a ``prompt`` beside
      ``title``, ``tags`` or ``auto_lyrics`` without ``custom_mode`` is refused as ambiguous;
    * ``"instrumental": true`` is ``make_instrumental``; ``"mv"`` defaults to ``default_mv``;
    * ``"id"`` names the job (unique); without it the id is derived from the line as
      written, before ``default_mv`` is filled in (so ``default_mv`` never changes an id).

    Only ``"\n"`` (or ``"\r\n"``) ends a line; blank lines are skipped. Every problem of
    every line is collected and raised together.

    Raises:
        BatchInputError: a line is not a JSON object, gives a key twice, has an unknown key
            or a value of the wrong type, lacks what its mode needs, or repeats an id; or
            the file is empty; or ``default_mv`` is blank.
        OSError: the file cannot be read.
    """
    source = os.fspath(path)
    if not isinstance(default_mv, str) or not default_mv.strip():
        # Not a problem of every line that names no model: one of the call (an unset
        # shell variable behind --mv, say).
        raise BatchInputError(
            f"default_mv is empty ({default_mv!r}): give a model id such as "
            f"{DEFAULT_BATCH_MODEL!r}; nothing was read or sent",
            [(None, "default_mv is empty")],
        )
    data = Path(source).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchInputError(
            f"{source}: not UTF-8 text (byte {exc.start}); a batch is a JSONL file",
            [(None, "not UTF-8 text")],
        ) from exc
    # Only "\n" ends a line: JSON strings may hold U+2028, U+0085... that splitlines() splits.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return _parse_lines(lines, source=source, default_mv=default_mv)


def _parse_lines(lines: Sequence[str], *, source: str, default_mv: str) -> list[BatchJob]:
    problems: list[tuple[int | None, str]] = []
    parsed: list[_Parsed] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            parsed.append(_parse_line(number, text, default_mv))
        except (ValueError, TypeError) as exc:
            problems.append((number, str(exc)))
    if not parsed and not problems:
        problems.append((None, "no jobs: the file has no JSON lines"))
    jobs = _assign_ids(parsed, problems)
    if problems:
        shown = [f"line {n}: {m}" if n is not None else m for n, m in problems[:20]]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise BatchInputError(
            f"{source}: {len(problems)} problem(s), nothing was sent:\n  "
            + "\n  ".join(shown)
            + more,
            problems,
        )
    return jobs


@frozen
class _Parsed:
    """A job before its id is settled."""

    line: int | None
    given_id: str | None
    create: SonicCreate
    #: What a derived id hashes: the line as written (before defaults), canonical.
    source: str
    default_mv: str | None = None


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(f"the key {key!r} is given twice")
        seen[key] = value
    return seen


def _parse_line(number: int, text: str, default_mv: str) -> _Parsed:
    try:
        item = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKeyError as exc:
        raise ValueError(str(exc)) from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError("not valid JSON (nested too deep)") from None
    if not isinstance(item, dict):
        shown = text.strip()[:60]
        raise ValueError(f"expected a JSON object, got {type(item).__name__}: {shown}")  # noqa: TRY004 - a problem of the input, reported per line
    job_id = _read_id(item.pop("id", None))
    for key, value in item.items():
        kind = _KINDS.get(key) or {"lyrics": "str", "instrumental": "bool"}.get(key)
        if kind is None:
            known = sorted({*_KINDS, *_ALIASES})
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown field {key!r}{hint}")
        wanted, check = _KIND_CHECKS[kind]
        if value is not None and not check(value):
            # A secret's value is not echoed, even a mistyped one.
            got = type(value).__name__ if key in _SECRET_FIELDS else json.dumps(value)[:60]
            raise ValueError(f"{key!r} must be {wanted}, got {got}")
        if isinstance(value, str) and not _encodable(value):
            raise ValueError(
                f"{key!r} holds a lone surrogate (half of an emoji, written as a \\ud8xx "
                "escape): fix that character"
            )
    fields = {k: v for k, v in item.items() if v is not None}
    # The id derives from the line as written, before any default: an option such as --mv
    # must never re-id (and so create again) a job already sent.
    source = _canonical_json(_scrubbed(fields))
    _apply_shortcuts(fields)
    defaulted = None
    if "mv" not in fields and fields.get("task_type") != "concat_music":  # no model there
        fields["mv"] = defaulted = default_mv
    create = SonicCreate(**fields)
    create.to_body()  # the SDK's own checks: required fields, title length, weights...
    return _Parsed(number, job_id, create, source, defaulted)


#: What a 403 says when it refuses the job's content (CONTRACT §10): lyrics, moderation,
#: artist names. Any other 403 is about the account (credits, subscription, a usage or QPS
#: limit, a full queue, a suspension, a proxy's "Forbidden"): every next create would get it
#: too.
_CONTENT_403: Final = re.compile(
    r"lyric|moderat|copyright|inappropriate|artist|producer tag", re.IGNORECASE
)


#: Statuses that refuse the job itself (its fields or content), besides a 403 about its
#: content and a 404 about what it names: 400 as MusicAPI sends, and 413 / 422 as a proxy
#: or a newer API may.
_JOB_REFUSALS: Final = frozenset({400, 413, 422})
#: What a 404 says when what the job names is unknown (CONTRACT §10: "clip not found." for
#: an extend or a cover of a clip purged or mistyped), not the route.
_MISSING_SOURCE: Final = re.compile(r"\b(?:clip|persona|voice|vox)", re.IGNORECASE)


def _refuses_the_job(exc: MusicAPIError) -> bool:
    """Whether an error status refuses this job itself (its fields, its content, the clip
    it names), rather than every create of the run."""
    status = exc.status_code if isinstance(exc, APIStatusError) else 0
    if status == 403:
        return True  # one about the account was caught before (_refuses_the_account)
    if status == 404:
        return bool(_MISSING_SOURCE.search(exc.message.split(": ", 1)[-1]))
    return status in _JOB_REFUSALS


def _refuses_the_account(exc: MusicAPIError) -> bool:
    if isinstance(exc, InsufficientCreditsError):
        return True
    return isinstance(exc, PermissionDeniedError) and not _CONTENT_403.search(exc.message)


def _encodable(text: str) -> bool:
    """Whether ``text`` can be sent (as UTF-8): no lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_id(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"'id' must be a string, got {json.dumps(value)[:60]}")  # noqa: TRY004 - as above
    text = str(value)
    if not text.strip() or not text.isprintable() or not _encodable(text):
        raise ValueError(f"'id' must be non-empty printable text, got {text!r}")
    return text


def _apply_shortcuts(fields: dict[str, Any]) -> None:
    """Turn the input's shortcuts into SonicCreate fields (see :func:`read_batch_jobs`)."""
    if "instrumental" in fields:
        value = fields.pop("instrumental")
        if fields.setdefault("make_instrumental", value) != value:
            raise ValueError("'instrumental' and 'make_instrumental' disagree")
    if "lyrics" in fields:
        lyrics = fields.pop("lyrics")
        if "prompt" in fields:
            if "tags" in fields:
                raise ValueError(
                    "with 'lyrics', 'prompt' is the style: give 'prompt' or 'tags', not both"
                )
            fields["tags"] = fields.pop("prompt")
        if fields.get("custom_mode") is False:
            raise ValueError("'lyrics' is custom mode: drop custom_mode=false")
        fields["prompt"] = lyrics
        fields.setdefault("custom_mode", True)
        return
    explicit = ("custom_mode", "gpt_description_prompt", "task_type")
    if "prompt" in fields and not any(key in fields for key in explicit):
        custom = [key for key in ("title", "tags", "auto_lyrics") if key in fields]
        if custom:
            # The API's own custom-mode body (prompt = lyrics), or the shortcut "prompt is
            # a description"? A guess would pay for a song made the wrong way: ask.
            raise ValueError(
                f"'prompt' with {', '.join(map(repr, custom))}: for custom mode give the "
                "lyrics as 'lyrics' (or add \"custom_mode\": true); for a song made from a "
                "description, give 'prompt' (or 'gpt_description_prompt') without them"
            )
        fields["gpt_description_prompt"] = fields.pop("prompt")
        fields["custom_mode"] = False
    if not any(k in fields for k in ("prompt", "gpt_description_prompt", "task_type")):
        raise ValueError(
            "give 'prompt' (a description of the song) or 'lyrics' (custom mode), "
            "or the API's own fields"
        )


def _scrubbed(body: Mapping[str, Any]) -> dict[str, Any]:
    """A body fit for a file: no webhook secret, no credentials or query in the webhook URL."""
    kept = {k: v for k, v in body.items() if k != "webhook_secret"}
    if isinstance(kept.get("webhook_url"), str):
        kept["webhook_url"] = _without_secrets(kept["webhook_url"])
    return kept


def _without_secrets(url: str) -> str:
    """A URL without its userinfo, query and fragment (where tokens hide)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _canonical_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(create: SonicCreate) -> str:
    """The request body as canonical JSON, as the journal keeps it (see :func:`_scrubbed`)."""
    return _canonical_json(_scrubbed(create.to_body()))


def _digest(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


def _assign_ids(
    parsed: Sequence[_Parsed], problems: list[tuple[int | None, str]]
) -> list[BatchJob]:
    """Derive the missing ids (content, then occurrence) and refuse duplicates."""
    repeats: Counter[str] = Counter()
    seen: dict[str, int | None] = {}
    jobs: list[BatchJob] = []
    for item in parsed:
        line, job_id = item.line, item.given_id
        if job_id is None:
            digest = _digest(item.source)[:DERIVED_ID_DIGITS]
            repeats[digest] += 1
            job_id = digest if repeats[digest] == 1 else f"{digest}-{repeats[digest]}"
        if job_id in seen:
            where = f"line {seen[job_id]}" if seen[job_id] is not None else "another job"
            problems.append((line, f"duplicate id {job_id!r} (also on {where})"))
            continue
        seen[job_id] = line
        jobs.append(BatchJob(job_id, item.create, line, item.default_mv))
    return jobs


def _as_jobs(jobs: Iterable[BatchJob | SonicCreate]) -> list[BatchJob]:
    problems: list[tuple[int | None, str]] = []
    parsed: list[_Parsed] = []
    for number, job in enumerate(jobs, 1):
        if isinstance(job, SonicCreate):
            job = BatchJob("", job)
        if not isinstance(job, BatchJob):
            raise TypeError(
                f"jobs must be BatchJob or SonicCreate objects, got {type(job).__name__}"
            )
        label = job.line if job.line is not None else number
        try:
            body = job.create.to_body()
        except ValueError as exc:
            problems.append((label, f"job {job.job_id or number}: {exc}"))
            continue
        bad = [k for k, v in body.items() if isinstance(v, str) and not _encodable(v)]
        if bad or not _encodable(job.job_id):
            name = job.job_id if _encodable(job.job_id) else f"#{number}"
            where = repr(bad[0]) if bad else "its id"
            message = f"job {name or number}: {where} holds a lone surrogate (half of an emoji)"
            problems.append((label, f"{message}: fix that character"))
            continue
        source = _canonical(job.create)
        parsed.append(_Parsed(job.line, job.job_id or None, job.create, source, job.default_mv))
    result = _assign_ids(parsed, problems)
    if not result and not problems:
        problems.append((None, "no jobs"))
    if problems:
        lines = [f"line {n}: {m}" if n is not None else m for n, m in problems]
        raise BatchInputError(
            "bad batch jobs, nothing was sent:\n  " + "\n  ".join(lines), problems
        )
    return result


# --- results ----------------------------------------------------------------------------------


@final
@frozen
class BatchEvent:
    """A job changed state, for ``run_batch(on_progress=...)``.

    ``state`` is a :class:`BatchJobState` value (``planned``, ``submitting``, ``created``,
    ``done``, ``failed``, ``uncertain``, ``downloaded``...) or, while its task runs, the
    task's ``pending``, ``running`` or ``streaming``, and ``downloading`` while its audio
    is fetched.
    """

    job_id: str
    state: str
    task_id: str | None = None
    #: Seconds since the task was submitted (or since this run began waiting for it).
    elapsed: float | None = None
    #: A short explanation: an error, a file count.
    detail: str = ""


@final
@frozen
class BatchJobResult:
    """Where one job ended up after a run."""

    job_id: str
    state: BatchJobState
    #: True when the job has nothing left to do: downloaded (or done, without downloads).
    complete: bool
    line: int | None = None
    task_id: str | None = None
    #: The terminal snapshot, once the task finished.
    task: Task | None = None
    files: tuple[Path, ...] = ()
    error: str | None = None
    #: Create calls that may have made (and charged for) a task for this job: 1 normally,
    #: 2 after an uncertain job was created again.
    attempts: int = 0
    #: False for a job of the journal that this run's input does not have (not created, its
    #: task followed: :attr:`BatchReport.others`).
    in_input: bool = True


@final
@frozen
class BatchReport:
    """What :func:`run_batch` did, job by job, in input order."""

    jobs: tuple[BatchJobResult, ...]
    out_dir: Path
    #: ``results.jsonl``: one JSON object per job (written atomically at every run's end).
    results_path: Path
    journal_path: Path
    #: Why submitting stopped early (401, no credits, the network...), if it did.
    stopped: str | None = None
    #: Ids of jobs in the journal that this run's input does not have (see :attr:`others`).
    other_jobs: tuple[str, ...] = ()
    #: Those jobs as the journal records them (``in_input`` False), in the journal's order.
    others: tuple[BatchJobResult, ...] = ()

    @property
    def complete(self) -> bool:
        """True when every job is complete (rerunning would do nothing) and no job of the
        journal outside this input may have a task not yet finished (see
        :attr:`unsettled_others`)."""
        return all(job.complete for job in self.jobs) and not self.unsettled_others

    @property
    def unsettled_others(self) -> list[BatchJobResult]:
        """The jobs of :attr:`others` with a known task whose result is not saved yet: the
        run follows them though their lines are out of the input, so these are ``created``
        (still running at the wait's deadline) or ``done`` (the download failed): rerunning
        goes on with them."""
        unsettled = (BatchJobState.CREATED, BatchJobState.DONE)
        return [job for job in self.others if job.state in unsettled and not job.complete]

    @property
    def uncertain_others(self) -> list[BatchJobResult]:
        """The jobs of :attr:`others` whose create may have made a task of unknown id
        (``uncertain``): nothing can follow it, and their lines were removed, so they do
        not hold the run back; check the dashboard, and put a line back with ``adopt`` to
        get its task."""
        return [job for job in self.others if job.state is BatchJobState.UNCERTAIN]

    def by_state(self, *states: BatchJobState) -> list[BatchJobResult]:
        """The jobs in any of ``states``."""
        return [job for job in self.jobs if job.state in states]


# --- the journal ------------------------------------------------------------------------------

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    task TEXT,
    result TEXT,
    files TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
"""


@attrs.define
class _Row:
    id: str
    position: int
    fingerprint: str
    state: BatchJobState
    task: str | None = None
    result: str | None = None
    files: str | None = None
    error: str | None = None
    attempts: int = 0

    @property
    def ref(self) -> TaskRef | None:
        return None if self.task is None else TaskRef.from_json(self.task)

    @property
    def file_names(self) -> list[str]:
        return [] if self.files is None else [str(f) for f in json.loads(self.files)]

    def snapshot(self) -> Task | None:
        ref = self.ref
        if self.result is None or ref is None:
            return None
        stored = json.loads(self.result)
        return parse_task(ref, int(stored["http_status"]), stored["body"])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _sqlite3() -> types.ModuleType:
    """The standard library's sqlite3, imported on first use: a Python built without SQLite
    (no ``_sqlite3``) can still import and use the rest of the SDK."""
    try:
        import sqlite3
    except ImportError as exc:
        raise RuntimeError(
            "the batch runner keeps its journal in SQLite, and this Python was built without "
            f"it ({exc}): use a Python with the sqlite3 module (on Linux, install SQLite's "
            "development package before building Python)"
        ) from exc
    return sqlite3


class _Journal:
    """The SQLite journal of one output directory; every write is its own durable commit.

    Writes are synchronous on purpose: each is a few hundred bytes, and a write must be on
    disk before the network step it records (a thread would let the step overtake it).
    """

    def __init__(self, out_dir: Path, lock: Any) -> None:
        self.path = out_dir / BATCH_JOURNAL
        self._lock = lock
        # The module, kept: its Error is caught at every write.
        self._sqlite = sqlite = _sqlite3()
        try:
            self._db: sqlite3.Connection = sqlite.connect(self.path, isolation_level=None)
        except sqlite.Error as exc:  # a directory in its place, no permission...
            raise self._open_error(exc) from exc
        self.rows: dict[str, _Row] = {}
        try:
            self._load()
        except sqlite.DatabaseError as exc:
            self.close()
            raise self._open_error(exc) from exc
        except BaseException:
            self.close()
            raise

    def _open_error(self, exc: sqlite3.Error) -> Exception:
        """Why the journal could not be opened: the disk (full, failing, no room for the
        file) is a :class:`BatchJournalError`, to resume from once fixed; a file that is not
        a journal (damaged, foreign, a directory in its place) a :class:`BatchConflictError`."""
        not_a_file = self.path.exists() and not self.path.is_file()  # a directory there
        if not not_a_file and _disk_error(exc):
            return BatchJournalError(
                f"cannot create or open the batch journal {self.path}: {exc} (a full or "
                "failing disk?); this run sent nothing: make room and run the batch again"
            )
        return BatchConflictError(f"cannot use {self.path} as a batch journal: {exc}")

    def _load(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._check_version()  # before the script below changes anything
        self._db.executescript(_SCHEMA)
        columns = "id, position, fingerprint, state, task, result, files, error, attempts"
        for values in self._db.execute(f"SELECT {columns} FROM jobs"):
            row = _Row(*values)
            row.state = _state(values[3])
            self.rows[row.id] = row

    def _check_version(self) -> None:
        found = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        schema = None if found is None else self.meta("schema")
        if schema is None:
            return
        try:
            version = int(schema)
        except ValueError:
            raise BatchConflictError(
                f"{self.path} records a journal version of {schema!r}, which is not one: it "
                "is damaged or not a batch journal; use another output directory"
            ) from None
        if version > JOURNAL_SCHEMA:
            raise BatchConflictError(
                f"{self.path} was written by a newer version of musicapi-async; "
                "upgrade it to resume this batch"
            )
        if version < JOURNAL_SCHEMA:
            # Version 1 derived ids from the request after defaults (--mv): its ids would
            # not match this version's, and re-ided jobs would be created again.
            raise BatchConflictError(
                f"{self.path} was written by an older musicapi-async (journal version "
                f"{version}) that named jobs differently: finish that batch with the version "
                "that started it, or use another output directory"
            )

    @classmethod
    def open(cls, out_dir: Path) -> _Journal:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = _Lock(out_dir / BATCH_LOCK)
        try:
            return cls(out_dir, lock)
        except BaseException:
            lock.close()
            raise

    def meta(self, key: str) -> str | None:
        found = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if found is None else str(found[0])

    def _write(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        try:
            self._db.execute(sql, parameters)
        except self._sqlite.Error as exc:  # a full disk, an I/O error, a file gone read-only
            raise BatchJournalError(f"cannot write the batch journal {self.path}: {exc}") from exc

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def insert(self, job: BatchJob, position: int, canonical: str) -> None:
        row = _Row(job.job_id, position, _digest(canonical), BatchJobState.PLANNED)
        self._write(
            "INSERT OR REPLACE INTO jobs (id, position, fingerprint, request, state, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (row.id, position, row.fingerprint, canonical, row.state.value, _now()),
        )
        self.rows[row.id] = row

    def update(self, job_id: str, **changes: Any) -> _Row:
        """Change a job's columns in one committed, synced transaction (the row in memory
        changes only once it is on disk)."""
        row = self.rows[job_id]
        columns = [f"{name} = ?" for name in changes]
        values = [v.value if isinstance(v, BatchJobState) else v for v in changes.values()]
        self._write(
            f"UPDATE jobs SET {', '.join(columns)}, updated_at = ? WHERE id = ?",
            (*values, _now(), job_id),
        )
        for name, value in changes.items():
            setattr(row, name, value)
        return row

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self._write("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(self._sqlite.Error):  # the error under way says more
                self._db.execute("ROLLBACK")
            raise
        self._write("COMMIT")

    def close(self) -> None:
        self._db.close()
        self._lock.close()


#: States of a job whose create may have made a task (that a new create would pay again).
_MAY_EXIST: Final = frozenset(
    {
        BatchJobState.SENDING,
        BatchJobState.UNCERTAIN,
        BatchJobState.CREATED,
        BatchJobState.DONE,
        BatchJobState.DOWNLOADED,
    }
)


#: SQLite's primary result codes of a disk that fails the journal rather than a file that is
#: not one: SQLITE_IOERR (and its extended codes), SQLITE_FULL, SQLITE_CANTOPEN.
_DISK_ERRORS: Final = frozenset({10, 13, 14})
#: Their messages, where Python does not give the code (before 3.11).
_DISK_MESSAGES: Final = ("disk i/o error", "database or disk is full", "unable to open database")


def _disk_error(exc: BaseException) -> bool:
    """Whether a sqlite3 error is the disk's (full, failing), not the file's content."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _DISK_ERRORS
    text = str(exc).lower()
    return any(message in text for message in _DISK_MESSAGES)


def _state(value: str) -> BatchJobState:
    try:
        return BatchJobState(value)
    except ValueError:
        # A state written by a newer version: the careful reading is "may have been sent".
        return BatchJobState.UNCERTAIN


class _Lock:
    """An exclusive advisory lock on a file, released by the system if the process dies.

    POSIX only (``flock``); on Windows no lock is taken: do not start two runs on one
    directory there.
    """

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "a+b")  # noqa: SIM115 - held for the whole run
        if sys.platform != "win32":
            import fcntl

            try:
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                self._handle.close()
                raise BatchConflictError(
                    f"another batch is running in {path.parent} (it holds {path.name}); "
                    "wait for it to finish or stop it"
                ) from exc

    def close(self) -> None:
        self._handle.close()


# --- running a batch --------------------------------------------------------------------------


class _SendMark(PaidCall):
    """One job's create: the journal says ``sending`` once its request leaves,
    ``submitting`` again when a retry shows it did not arrive."""

    def __init__(self, journal: _Journal, job_id: str) -> None:
        super().__init__()
        self.journal = journal
        self.job_id = job_id

    def sending(self) -> None:
        if self.sent:
            return  # a retry of the same call (after a 429 or a connection refused)
        super().sending()
        row = self.journal.rows[self.job_id]
        self.journal.update(self.job_id, state=BatchJobState.SENDING, attempts=row.attempts + 1)

    def not_sent(self) -> None:
        # The client repeats a create only when the server certainly did not act on it (a
        # 429, a connection that failed before sending): back to submitting, and a
        # cancellation may drop it while it waits to be sent again.
        if self.sent:
            row = self.journal.rows[self.job_id]
            self.journal.update(
                self.job_id, state=BatchJobState.SUBMITTING, attempts=max(row.attempts - 1, 0)
            )
        super().not_sent()


async def _check_adopted_tasks_exist(client: MusicAPI, adopt: Mapping[str, str]) -> None:
    """Look each adopted task up once (a free poll) before the journal takes it: a mistyped
    id would leave its job waiting for a task that does not exist."""
    for job_id, task_id in adopt.items():
        if not isinstance(task_id, str) or not task_id:
            continue  # refused with the other problems, by the journal's checks
        try:
            await client.sonic.get_task(task_id)
        except NotFoundError as exc:
            raise BatchConflictError(
                f"cannot adopt task {task_id!r} for job {job_id!r}: MusicAPI does not know it "
                f"with this key ({exc.message}). Check the id on the dashboard; nothing was "
                "changed."
            ) from exc


async def run_batch(
    client: MusicAPI,
    jobs: Iterable[BatchJob | SonicCreate],
    out_dir: str | os.PathLike[str],
    *,
    download: bool = True,
    resubmit_uncertain: bool = False,
    adopt: Mapping[str, str] | None = None,
    wait_timeout: float | None = _TIMEOUT_UNSET,
    on_progress: Callable[[BatchEvent], object] | None = None,
) -> BatchReport:
    """Create every job, wait for all, download the audio: resumably, into ``out_dir``.

    Run it again with the same jobs and ``out_dir`` after a crash, a kill or Ctrl-C and it
    carries on: created tasks are awaited (never created twice), finished results are not
    polled again, saved files are not downloaded again. A create that may have reached
    MusicAPI without its answer arriving leaves the job *uncertain*: it is not created again
    unless ``resubmit_uncertain=True`` (check the dashboard first: that may pay twice). The
    module docstring of ``musicapi_async._batch`` details the journal.

    Creates are sent one after the other under the client's rate limiter, ahead of polls;
    the client's scheduler polls the created tasks with the budget they leave (mostly once
    every job is created, which gives the shortest batch). Failed tasks are
    recorded, never retried. ``results.jsonl`` in ``out_dir`` lists every job (id, state,
    task id, clips, files, error) and is rewritten atomically at the end of every run,
    including an interrupted one. Jobs of the journal that ``jobs`` no longer has are not
    created, but a task they made is still awaited and saved; they are kept there
    (``"in_input": false``) and in ``report.others``, and one whose task is not saved yet
    makes the report incomplete (an uncertain one is listed in
    ``report.uncertain_others``).

    Args:
        client: An open client (``async with MusicAPI() as client``).
        jobs: :class:`BatchJob` objects (e.g. from :func:`read_batch_jobs`) or bare
            :class:`SonicCreate` bodies (their ids are then derived from their content).
        out_dir: Where the journal, the audio files and ``results.jsonl`` go (created).
        download: Save each succeeded clip's audio (``<title> - <clip id>.<ext>``).
        resubmit_uncertain: Create the uncertain jobs again.
        adopt: ``{job_id: task_id}``: the task of an uncertain job (its create reached
            MusicAPI; you found the task in the dashboard's history, a webhook...), recorded
            as the job's so that the run awaits and saves it without creating it again.
            Only a job of ``jobs`` that is uncertain (or was left sending) can adopt a task,
            one task per job; each task is looked up once first (a poll), and one MusicAPI
            does not know is refused before anything changes.
        wait_timeout: Seconds to wait for each task, counted from when every create of the
            run has gone out, plus the time the key needs to poll each awaited task once
            (default 10 min; ``None``: no limit). A task still running then is left for
            the next run.
        on_progress: Called with a :class:`BatchEvent` at every change (a coroutine
            function is awaited).

    Raises:
        BatchInputError: a job is invalid or two share an id (nothing was sent).
        BatchConflictError: ``out_dir`` holds another batch's journal, gives one of these
            ids to other content, or another run is using it; or ``adopt`` names a job
            that is not in ``jobs``, is not uncertain, or a task another job has.
        BatchJournalError: the journal could not be written (a full disk...); what it
            recorded stands, so run it again once that is fixed. Its ``task`` names a
            task that was created but could not be recorded.

    >>> jobs = [SonicCreate(mv="sonic-v5", gpt_description_prompt=p) for p in prompts]
    >>> report = await run_batch(client, jobs, "songs/")
    >>> report.complete, [job.files for job in report.jobs]
    """
    checked = _as_jobs(jobs)
    out = Path(out_dir)
    adopted = {
        job_id: task_id.strip() if isinstance(task_id, str) else task_id
        for job_id, task_id in (adopt or {}).items()
    }
    journal = _Journal.open(out)
    try:
        run = _Run(client, journal, checked, out, download, resubmit_uncertain, on_progress)
        run.adopt = adopted
        run.prepare()
        await _check_adopted_tasks_exist(client, run.new_adoptions())
        run.record()
    except BaseException:
        journal.close()
        raise
    kwargs = {} if wait_timeout is _TIMEOUT_UNSET else {"timeout": wait_timeout}
    try:
        try:
            await run.go(kwargs)
        except BaseException:
            # The run's own error says more than a results file that cannot be written
            # (on the same full disk, say): it must not be lost behind that.
            with contextlib.suppress(Exception):
                run.write_results()
            raise
        run.write_results()
    finally:
        journal.close()
    return run.report()


class _Run:
    def __init__(
        self,
        client: MusicAPI,
        journal: _Journal,
        jobs: list[BatchJob],
        out: Path,
        download: bool,
        resubmit_uncertain: bool,
        on_progress: Callable[[BatchEvent], object] | None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.jobs = jobs
        self.by_id = {job.job_id: job for job in jobs}
        self.out = out
        self.download = download
        self.resubmit_uncertain = resubmit_uncertain
        #: Job id -> the task id to record for that uncertain job (``run_batch(adopt=)``).
        self.adopt: dict[str, str] = {}
        self.on_progress = on_progress
        self.stopped: str | None = None
        self.failure: BaseException | None = None
        self.other_jobs: tuple[str, ...] = ()
        self.slots = anyio.CapacityLimiter(BATCH_DOWNLOADS)
        # Per set of extensions (see clip_extensions), the clip files found in ``out``.
        self._scans: dict[frozenset[str], dict[str, Path]] = {}
        self._tg: TaskGroup | None = None
        self._wait_kwargs: dict[str, Any] = {}

    # --- before anything is sent ----------------------------------------------------------

    def _check_no_earlier_results(self) -> None:
        """An empty journal beside the ``results.jsonl`` of a batch that created tasks: the
        journal was deleted, emptied or left behind by a copy (it is a dotfile), and running
        would create (and pay for) every one of those jobs again."""
        path = self.out / BATCH_RESULTS
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BatchConflictError(f"cannot read {path}: {exc}") from exc
        created = 0
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            created += isinstance(entry, dict) and bool(entry.get("task_id"))
        if created:
            raise BatchConflictError(
                f"{self.out} holds the {BATCH_RESULTS} of a batch that created {created} "
                f"task(s), but no journal ({BATCH_JOURNAL} was deleted, emptied, or not "
                "copied with the rest): running would create and pay for those jobs again. "
                f"Restore {BATCH_JOURNAL} to resume that batch, or use another output "
                f"directory (or move {BATCH_RESULTS} away if you do mean to create them "
                "again)"
            )

    def prepare(self) -> None:
        """Check the journal against the jobs (nothing written yet: see :meth:`record`)."""
        journal = self.journal
        # As the journal records it; "/api/v1/" and "/api/v1" are one server.
        api = _without_secrets(self.client.base_url).rstrip("/")
        canonical = {job.job_id: _canonical(job.create) for job in self.jobs}
        rows = journal.rows
        ours = set(self.by_id)
        if not rows:
            self._check_no_earlier_results()
        if rows and not ours & set(rows):
            raise BatchConflictError(
                f"{self.out} holds another batch ({len(rows)} job(s), none of them in this "
                "input): use another output directory (deleting its "
                f"{BATCH_JOURNAL} would create its jobs again)"
            )
        recorded_api = journal.meta("api")
        if recorded_api is not None:
            recorded_api = recorded_api.rstrip("/")  # written so by older versions
        if recorded_api not in (None, api) and any(
            r.task is not None or r.state in _MAY_EXIST for r in rows.values()
        ):
            raise BatchConflictError(
                f"{self.out} holds a batch whose tasks were created on {recorded_api}, not on "
                f"{api}: use another output directory"
            )
        default_mv = self._check_defaults()
        conflicts = []
        for job in self.jobs:
            row = rows.get(job.job_id)
            if row is None or row.fingerprint == _digest(canonical[job.job_id]):
                continue
            # Content may change while nothing can exist on the server for the old one.
            unsent = (BatchJobState.PLANNED, BatchJobState.SUBMITTING, BatchJobState.FAILED)
            if row.task is not None or row.state not in unsent:
                where = f" (line {job.line})" if job.line is not None else ""
                conflicts.append(f"{job.job_id!r}{where}, {row.state.value} in the journal")
        if conflicts:
            raise BatchConflictError(
                f"{len(conflicts)} job id(s) have other content than the jobs of the same id "
                f"already sent from {self.out}: "
                + "; ".join(conflicts[:5])
                + (" ..." if len(conflicts) > 5 else "")
                + ". A different input file? Use another output directory, or give the "
                "changed jobs new ids."
            )
        self._check_renamed(canonical)
        self._check_adopt(canonical)
        self._checked = (api, default_mv, canonical)

    def record(self) -> None:
        """After :meth:`prepare` checked it: add the new jobs, reconcile interruptions."""
        journal, rows, ours = self.journal, self.journal.rows, set(self.by_id)
        api, default_mv, canonical = self._checked
        with journal.transaction():
            journal.set_meta("schema", str(JOURNAL_SCHEMA))
            journal.set_meta("api", api)
            if default_mv is not None:
                journal.set_meta("default_mv", default_mv)
            for position, job in enumerate(self.jobs):
                row = rows.get(job.job_id)
                if row is None or row.fingerprint != _digest(canonical[job.job_id]):
                    journal.insert(job, position, canonical[job.job_id])
                elif row.position != position:
                    journal.update(job.job_id, position=position)
                self._reconcile(job.job_id)
            self.other_jobs = tuple(sorted(set(rows) - ours))
            for job_id in self.other_jobs:
                self._reconcile(job_id, in_input=False)
        self._remove_partial_files()

    def _check_defaults(self) -> str | None:
        """Refuse a model default other than the one the batch began with; return ours."""
        recorded = self.journal.meta("default_mv")
        ours = None
        for job in self.jobs:
            if job.default_mv is None:
                continue
            ours = ours or job.default_mv
            if recorded is not None and job.default_mv != recorded:
                raise BatchConflictError(
                    f"{self.out} holds a batch begun with --mv {recorded} "
                    f"(read_batch_jobs(default_mv={recorded!r})), and this run gives the lines "
                    f"naming no model {job.default_mv!r}: rerun with --mv {recorded}, or use "
                    "another output directory"
                )
        return recorded or ours

    def _check_renamed(self, canonical: Mapping[str, str]) -> None:
        """Refuse to create a job whose request a job of the journal outside this input
        may already have made (the same line under a new id): that would pay twice.

        A ``failed`` job does not count: nothing it made is kept or charged (a failed task
        is refunded, a refused one never existed), so a new id is the way to try it again.
        """
        rows = self.journal.rows
        made: dict[str, _Row] = {}
        for row in rows.values():
            if row.id not in self.by_id and row.state in _MAY_EXIST:
                made.setdefault(row.fingerprint, row)
        clashes = []
        for job in self.jobs:
            fingerprint = _digest(canonical[job.job_id])
            own = rows.get(job.job_id)
            unsent = (BatchJobState.PLANNED, BatchJobState.SUBMITTING)
            if own is not None and own.fingerprint == fingerprint and own.state not in unsent:
                continue  # this very job, already under way
            other = made.get(fingerprint)
            if other is not None:
                where = f" (line {job.line})" if job.line is not None else ""
                clashes.append(
                    f"job {job.job_id!r}{where} is the request of job {other.id!r} "
                    f"({other.state.value} in the journal, not in this input)"
                )
        if clashes:
            raise BatchConflictError(
                f"{len(clashes)} job(s) would be created again under a new id: "
                + "; ".join(clashes[:5])
                + (" ..." if len(clashes) > 5 else "")
                + ". If it is the same job, give it its journal id back (or restore its line "
                "as it was); to make it once more on purpose (paying again), use another "
                "output directory."
            )

    def _check_adopt(self, canonical: Mapping[str, str]) -> None:
        """Refuse an ``adopt`` that could mislead the journal: a job not in this input, one
        never sent (no task can be its), one that has another task, a task another job has."""
        rows = self.journal.rows
        owners = {}
        for other in rows.values():
            ref = other.ref
            if ref is not None:
                owners[ref.task_id] = other.id
        problems = []
        claimed: dict[str, str] = {}
        for job_id, task_id in self.adopt.items():
            row = rows.get(job_id)
            twice = claimed.setdefault(task_id, job_id) if isinstance(task_id, str) else job_id
            if twice != job_id:
                problems.append(f"task {task_id} is given to both job {twice!r} and {job_id!r}")
            elif not isinstance(task_id, str) or not task_id.strip():
                problems.append(f"job {job_id!r}: the task id is empty")
            elif job_id not in self.by_id:
                problems.append(f"job {job_id!r} is not in this input (put its line back)")
            elif row is None or row.fingerprint != _digest(canonical[job_id]):
                problems.append(f"job {job_id!r} was never sent from {self.out}")
            elif owners.get(task_id, job_id) != job_id:
                problems.append(f"task {task_id} is already job {owners[task_id]!r}'s")
            elif row.state in (BatchJobState.SENDING, BatchJobState.UNCERTAIN):
                continue
            elif row.ref is not None and row.ref.task_id == task_id:
                continue  # adopted already (a rerun of the same command)
            elif row.ref is not None:
                problems.append(f"job {job_id!r} already has task {row.ref.task_id}")
            else:
                problems.append(
                    f"job {job_id!r} is {row.state.value}, not uncertain: no create of it "
                    "can have made a task that the journal does not know"
                )
        if problems:
            raise BatchConflictError(
                "cannot adopt: "
                + "; ".join(problems)
                + ". Only an uncertain job can adopt a task (the one its create made)."
            )

    def new_adoptions(self) -> dict[str, str]:
        """The ``adopt`` entries that give a job a task (not a rerun of the same adopt)."""
        rows = self.journal.rows
        return {
            job_id: task_id
            for job_id, task_id in self.adopt.items()
            if rows[job_id].state in (BatchJobState.SENDING, BatchJobState.UNCERTAIN)
        }

    def _remove_partial_files(self) -> None:
        """Delete the temporary files a killed run was writing (downloads, results).

        They are hidden (``.<name>.part-<suffix>``) and only a run holding the directory's
        lock writes them, so any found now is a dead run's.
        """
        for path in self.out.iterdir():
            if path.name.startswith(".") and ".part-" in path.name and path.is_file():
                with contextlib.suppress(OSError):
                    path.unlink()

    def _reconcile(self, job_id: str, *, in_input: bool = True) -> None:
        """Settle what an interrupted run left: see the module docstring. A job whose line
        left the input gets only what its state says (no adopt, no resubmit)."""
        journal = self.journal
        row = journal.rows[job_id]
        if row.state is BatchJobState.SUBMITTING:
            journal.update(job_id, state=BatchJobState.PLANNED)
        elif row.state is BatchJobState.SENDING:
            journal.update(
                job_id,
                state=BatchJobState.UNCERTAIN,
                error="the run stopped while the create request was on its way: MusicAPI may "
                "have created the task (and charged for it) without the answer arriving",
            )
        adopted = self.adopt.get(job_id) if in_input else None
        if row.state is BatchJobState.UNCERTAIN and adopted is not None:
            journal.update(
                job_id,
                state=BatchJobState.CREATED,
                task=TaskRef(adopted).to_json(),
                error=None,
                attempts=max(row.attempts, 1),
            )
        if row.state is BatchJobState.UNCERTAIN and self.resubmit_uncertain and in_input:
            journal.update(job_id, state=BatchJobState.PLANNED)
        if row.state is BatchJobState.DOWNLOADED and not all(
            (self.out / name).is_file() for name in row.file_names
        ):
            journal.update(job_id, state=BatchJobState.DONE, files=None)

    # --- the run ------------------------------------------------------------------------

    async def go(self, wait_kwargs: dict[str, Any]) -> None:
        self._wait_kwargs = wait_kwargs
        # Each wait is bounded from when the creates are all out, not from its own create:
        # creates go ahead of polls, and a batch longer than the wait would otherwise time
        # out its first tasks before anyone could poll them.
        self._wait_timeout: float | None = wait_kwargs.get("timeout", DEFAULT_WAIT_TIMEOUT["sonic"])
        self._follow_scopes: set[anyio.CancelScope] = set()
        self._submitted = False
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for job in self.jobs:
                row = self.journal.rows[job.job_id]
                await self._emit(job.job_id, row.state.value, detail=row.error or "")
                self._go_on(row)
            # Jobs whose lines left the file are not created, but a task they made was
            # paid for: it is followed and saved all the same (waiting is free).
            for job_id in self.other_jobs:
                self._go_on(self.journal.rows[job_id])
            self._start(self._submit_all)
        if self.failure is not None:
            raise self.failure

    def _go_on(self, row: _Row) -> None:
        """Take up where an earlier run left a job: follow its task, or save its result."""
        if row.state is BatchJobState.CREATED and row.ref is not None:
            self._start(self._follow, row.id, row.ref)
        elif row.state is BatchJobState.DONE and self.download:
            task = row.snapshot()
            if task is not None:
                self._start(self._download, row.id, task)

    def _start(self, function: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run a child; the first unexpected error stops the run and is raised by it."""
        tg = self._tg
        assert tg is not None  # go() set it

        async def guarded() -> None:
            try:
                await function(*args)
            except Exception as exc:
                self._failed(exc)
                tg.cancel_scope.cancel()

        tg.start_soon(guarded)

    def _failed(self, exc: Exception) -> None:
        """Keep the error the run ends with: the first, unless a later one names a paid task
        the journal could not record (only that error knows it; it must not be lost)."""
        names_a_task = isinstance(exc, BatchJournalError) and exc.task is not None
        kept = self.failure
        if kept is None or (
            names_a_task and not (isinstance(kept, BatchJournalError) and kept.task is not None)
        ):
            self.failure = exc
            if kept is not None:
                logger.error("the batch also failed with: %s", kept)
        else:
            logger.error("the batch also failed with: %s", exc)

    async def _emit(
        self,
        job_id: str,
        state: str,
        *,
        task_id: str | None = None,
        elapsed: float | None = None,
        detail: str = "",
    ) -> None:
        if self.on_progress is None:
            return
        if task_id is None:
            ref = self.journal.rows[job_id].ref
            task_id = None if ref is None else ref.task_id
        outcome = self.on_progress(BatchEvent(job_id, state, task_id, elapsed, detail))
        if inspect.isawaitable(outcome):
            await outcome

    # --- creating -----------------------------------------------------------------------

    async def _submit_all(self) -> None:
        try:
            for job in self.jobs:
                if self.stopped is not None:
                    return
                if self.journal.rows[job.job_id].state is BatchJobState.PLANNED:
                    await self._submit(job)
        finally:
            self._submitted = True
            for scope in self._follow_scopes:
                self._arm(scope)

    def _arm(self, scope: anyio.CancelScope) -> None:
        """Start a wait's deadline, once the creates are all out: the wait timeout, plus
        the time the key needs to poll every task still awaited once (one request each),
        so that no task runs out of time before its turn came."""
        if self._wait_timeout is None:
            return
        queue = len(self._follow_scopes) * limiter_interval(self.client._scheduler.limiter)
        scope.deadline = anyio.current_time() + self._wait_timeout + queue

    async def _submit(self, job: BatchJob) -> None:
        """Create one job's task and record the outcome (see the module docstring)."""
        # A cancellation that arrived while the previous create was shielded stops us here.
        await anyio.lowlevel.checkpoint()
        mark = _SendMark(self.journal, job.job_id)
        self.journal.update(job.job_id, state=BatchJobState.SUBMITTING, error=None)
        await self._emit(job.job_id, BatchJobState.SUBMITTING.value)
        # Cancelled before the request left, it raises that cancellation (the journal says
        # planned again).
        ref, error = await self._create(job, mark)
        if error is not None:
            await self._create_failed(job, error, mark)
        else:
            assert ref is not None  # no error: the create answered
            await self._emit(job.job_id, BatchJobState.CREATED.value, task_id=ref.task_id)
            self._start(self._follow, job.job_id, ref)

    async def _create(
        self, job: BatchJob, mark: _SendMark
    ) -> tuple[TaskRef | None, MusicAPIError | None]:
        """The create call; on cancellation it is dropped only if the request has not left
        (see PaidCall), and the cancellation raised. Returns the reference, or the error."""

        def record(ref: TaskRef | None) -> None:
            if ref is None:
                self.journal.update(job.job_id, state=BatchJobState.PLANNED)
                return
            try:
                self.journal.update(
                    job.job_id, state=BatchJobState.CREATED, task=ref.to_json(), error=None
                )
            except BatchJournalError as exc:
                # The task exists and is paid for, and only this error knows it: name it.
                raise BatchJournalError(
                    f"{exc}; job {job.job_id!r} created task {ref.task_id}, which the journal "
                    "could not record: a rerun reports that job as uncertain and does not "
                    "create it again, so wait for that task yourself, or have the rerun "
                    f"follow it (adopt={{{job.job_id!r}: {ref.task_id!r}}})",
                    job_id=job.job_id,
                    task=ref,
                ) from exc

        try:
            ref = await mark.run(
                lambda: self.client.sonic.create(**attrs.asdict(job.create)), record
            )
        except MusicAPIError as exc:
            return None, exc
        return ref, None

    async def _create_failed(self, job: BatchJob, exc: MusicAPIError, mark: _SendMark) -> None:
        journal = self.journal
        message = str(exc)
        if exc.task_may_exist:
            journal.update(job.job_id, state=BatchJobState.UNCERTAIN, error=message)
            await self._emit(job.job_id, BatchJobState.UNCERTAIN.value, detail=message)
            return
        if mark.sent:
            # It arrived, and its answer says nothing was made: not an attempt that may have
            # paid (a 429 or a refused connection said so through not_sent already).
            mark.not_sent()
        certainly_not_made = (
            AuthenticationError,
            RateLimitError,
            APIConnectionError,
            LimiterError,  # the limiter failed before the request left
        )
        status = exc.status_code if isinstance(exc, APIStatusError) else 0
        if (
            isinstance(exc, certainly_not_made)
            or _refuses_the_account(exc)
            # A redirect, not followed: nothing was done (a 303, carried out, was
            # uncertain above).
            or 300 <= status < 400
            or status >= 500
            # Any other error status but a refusal of this job (a 404 or 405 from a wrong
            # base URL, a 410 of a retired endpoint): every next create would get it too,
            # and failing the jobs for good would leave a new id as the only way out.
            or (400 <= status < 500 and not _refuses_the_job(exc))
        ):
            # Nothing was created, and the next jobs would fare no better: stop submitting.
            journal.update(job.job_id, state=BatchJobState.PLANNED, error=message)
            self.stopped = message
            await self._emit(job.job_id, BatchJobState.PLANNED.value, detail=message)
            return
        # MusicAPI refused this job (a 400, a 403 on its content): nothing was made.
        journal.update(job.job_id, state=BatchJobState.FAILED, error=f"refused: {message}")
        await self._emit(job.job_id, BatchJobState.FAILED.value, detail=message)

    # --- waiting and downloading ---------------------------------------------------------

    async def _follow(self, job_id: str, ref: TaskRef) -> None:
        async def progress(event: TaskProgress) -> None:
            if event.state not in (ProgressState.SUCCEEDED, ProgressState.FAILED):
                await self._emit(
                    job_id, event.state.value, task_id=ref.task_id, elapsed=event.elapsed
                )

        task: Task | None = None
        try:
            with anyio.CancelScope() as deadline:
                self._follow_scopes.add(deadline)
                if self._submitted:
                    self._arm(deadline)
                try:
                    task = await self.client.await_task(ref, on_progress=progress, timeout=None)
                finally:
                    self._follow_scopes.discard(deadline)
        except NotFoundError as exc:
            # Not proof that it failed: polled with another key (another account) or on
            # another server, a paid task is "not found". It stays created, for a run that
            # uses the key and server that made it.
            error = (
                f"task not found: {exc}; it was created with another API key or server? "
                "run the batch again with those"
            )
            self.journal.update(job_id, error=error)
            await self._emit(job_id, "created", detail=str(exc))
            return
        except MusicAPIError as exc:
            self.journal.update(job_id, error=str(exc))
            await self._emit(job_id, "created", detail=str(exc))
            return
        if task is None:  # the deadline passed
            # Not the error's own text: its advice is Python's (pending_json), and the way on
            # is the same for the library and the command: run the batch again.
            self.journal.update(
                job_id, error="still unfinished at the wait's deadline; run the batch again"
            )
            await self._emit(job_id, "created", detail="still running; rerun to keep waiting")
            return
        state = BatchJobState.DONE if task.succeeded else BatchJobState.FAILED
        result = json.dumps({"http_status": task.http_status, "body": task.raw})
        self.journal.update(job_id, state=state, result=result, error=task.error)
        await self._emit(job_id, state.value, task_id=ref.task_id, detail=task.error or "")
        if task.succeeded and self.download:
            self._start(self._download, job_id, task)

    async def _download(self, job_id: str, task: Task) -> None:
        clips = [c for c in task.clips if c.state is ClipState.SUCCEEDED and c.audio_url]
        names: list[str] = []
        async with self.slots:
            await self._emit(job_id, "downloading", detail=f"{len(clips)} clip(s)")
            for clip in clips:
                path = self._saved(clip)
                if path is None:
                    try:
                        path = await self.client.download(clip, self.out)
                    except DownloadError as exc:
                        self.journal.update(job_id, error=f"download failed: {exc}")
                        await self._emit(job_id, BatchJobState.DONE.value, detail=str(exc))
                        return
                    except FileExistsError as exc:
                        path = self._saved(clip, rescan=True)
                        if path is None:
                            # A file of that name that is not this clip's audio: this job's
                            # problem, not the others'.
                            error = f"{exc.filename or exc}: a file of that name is in the way"
                            self.journal.update(job_id, error=f"download failed: {error}")
                            await self._emit(job_id, BatchJobState.DONE.value, detail=error)
                            return
                names.append(path.name)
        self.journal.update(
            job_id, state=BatchJobState.DOWNLOADED, files=json.dumps(names), error=None
        )
        await self._emit(job_id, BatchJobState.DOWNLOADED.value, detail=f"{len(names)} file(s)")

    def _saved(self, clip: Clip, *, rescan: bool = False) -> Path | None:
        """A complete file of this clip already in the directory (a run that died after
        saving it and before recording it), found by the clip id in its name: an audio file,
        or one with its URL's suffix (what ``download`` names it when the CDN says nothing
        better). The directory is scanned once per run for each set of extensions (clips
        of one batch share one), not once per clip."""
        if not clip.clip_id:
            return None
        if rescan:
            self._scans.clear()
        extensions = clip_extensions(clip)
        found = self._scans.get(extensions)
        if found is None:
            found = self._scans[extensions] = saved_clips(self.out, extensions)
        return found.get(safe_filename(None, clip.clip_id))

    # --- the end --------------------------------------------------------------------------

    def report(self) -> BatchReport:
        rows = self.journal.rows
        results = [self._result(rows[job.job_id], job.line) for job in self.jobs]
        outside = sorted(
            (row for row in rows.values() if row.id not in self.by_id),
            key=lambda row: (row.position, row.id),
        )
        return BatchReport(
            jobs=tuple(results),
            out_dir=self.out,
            results_path=self.out / BATCH_RESULTS,
            journal_path=self.journal.path,
            stopped=self.stopped,
            other_jobs=self.other_jobs,
            others=tuple(self._result(row, None, in_input=False) for row in outside),
        )

    def _result(self, row: _Row, line: int | None, *, in_input: bool = True) -> BatchJobResult:
        ref = row.ref
        complete = row.state is BatchJobState.DOWNLOADED or (
            row.state is BatchJobState.DONE and not self.download
        )
        return BatchJobResult(
            job_id=row.id,
            state=row.state,
            complete=complete,
            line=line,
            task_id=None if ref is None else ref.task_id,
            task=row.snapshot(),
            files=tuple(self.out / name for name in row.file_names),
            error=row.error,
            attempts=row.attempts,
            in_input=in_input,
        )

    def write_results(self) -> None:
        """``results.jsonl``, written to a temporary file and renamed over the old one: the
        input's jobs, then the journal's other jobs (``"in_input": false``)."""
        report = self.report()
        lines = [_json_line(result_json(job)) for job in (*report.jobs, *report.others)]
        _write_atomically(self.out / BATCH_RESULTS, "".join(f"{line}\n" for line in lines))


def sent_job_ids(out_dir: str | os.PathLike[str]) -> list[str]:
    """Ids of the jobs of ``out_dir``'s journal whose create was sent and whose task was not
    finished (``sending``, ``uncertain``, ``created``); ``[]`` without a readable journal.

    Reads without creating or locking anything: the command checks it before a run that
    could not carry those jobs on (a sandbox's tasks die with the process that made them).
    """
    states = (BatchJobState.SENDING, BatchJobState.UNCERTAIN, BatchJobState.CREATED)
    return [job_id for job_id, state, _ in _read_rows(out_dir) if state in states]


def unsaved_job_ids(out_dir: str | os.PathLike[str]) -> list[str]:
    """Ids of the jobs of ``out_dir``'s journal whose task succeeded and whose audio is not
    all saved in ``out_dir`` (``done``; ``downloaded`` with a file gone), which a run with
    downloads fetches from the audio URLs the journal kept; ``[]`` without a readable journal.

    Read like :func:`sent_job_ids`: a sandbox's audio URLs die with the process that made
    them, so a sandbox run could never fetch these.
    """
    out = Path(out_dir)
    unsaved = []
    for job_id, state, files in _read_rows(out_dir):
        if state is BatchJobState.DONE:
            unsaved.append(job_id)
        elif state is BatchJobState.DOWNLOADED:
            try:
                names = [str(name) for name in json.loads(files or "[]")]
            except (ValueError, TypeError):
                names = []
            if not all((out / name).is_file() for name in names):
                unsaved.append(job_id)
    return unsaved


def _read_rows(out_dir: str | os.PathLike[str]) -> list[tuple[str, BatchJobState, str | None]]:
    """(id, state, files) of every job of ``out_dir``'s journal, read only; ``[]`` without
    a readable journal."""
    path = Path(out_dir) / BATCH_JOURNAL
    if not path.is_file():
        return []
    sqlite = _sqlite3()
    try:
        db: sqlite3.Connection = sqlite.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT id, state, files FROM jobs ORDER BY position").fetchall()
        finally:
            db.close()
    except sqlite.Error:
        return []  # not a journal run_batch can use either: it says why
    return [
        (str(job_id), _state(str(state)), None if files is None else str(files))
        for job_id, state, files in rows
    ]


def result_json(job: BatchJobResult) -> dict[str, Any]:
    """One line of ``results.jsonl``: the job, its task and clips, its files (by name)."""
    task = job.task
    files = {path.stem.rpartition(" - ")[2]: path.name for path in job.files}
    clips = []
    for clip in task.clips if task is not None else ():
        clips.append(
            {
                "clip_id": clip.clip_id,
                "state": clip.state.value,
                "title": clip.title,
                "duration": clip.duration,
                "audio_url": clip.audio_url,
                "file": files.get(safe_filename(None, clip.clip_id)) if clip.clip_id else None,
            }
        )
    return {
        "id": job.job_id,
        "line": job.line,
        "state": job.state.value,
        "complete": job.complete,
        "task_id": job.task_id,
        "status": None if task is None else task.status.value,
        "clips": clips,
        "files": [path.name for path in job.files],
        "error": job.error,
        "in_input": job.in_input,
    }


def _json_line(value: Any) -> str:
    """One JSON line, readable (non-ASCII kept) unless that cannot be UTF-8: a lone
    surrogate (half an emoji, from a title cut short upstream) is then escaped."""
    line = json.dumps(value, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return line


def _write_atomically(path: Path, text: str) -> None:
    part = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        with open(part, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, path)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise
    if os.name != "nt":
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
