"""The ``musicapi`` command: generate, wait for and download songs from a shell.

It needs the optional ``cli`` extra (click and rich), imported only when the command runs,
so the SDK itself never depends on them. Results go to stdout (``--json`` for machines);
progress goes to stderr: a live line per task on a terminal, plain lines otherwise (and
under ``NO_COLOR``).

``--sandbox`` (or ``MUSICAPI_SANDBOX=1``) runs every command against an in-process
:class:`~musicapi_async.testing.FakeMusicAPI` with time running 20 times faster: no key, no
network, no credits, and its clips are real WAV files synthesised by the fake. Two hidden
environment variables help test scripts against it: ``MUSICAPI_SANDBOX_OUTCOME`` (``failed``,
``partial``...: how the sandbox's tasks end) and ``MUSICAPI_SANDBOX_DURATION`` (seconds a
sandbox generation takes). Against a real or served API, ``--rate R/P`` (``MUSICAPI_RATE``)
sets the key's request budget, and two hidden variables tune the scheduler for a fast fake:
``MUSICAPI_EXPECTED_DURATION`` (seconds a Sonic task is first expected to take) and
``MUSICAPI_MIN_POLL_GAP`` (fewest seconds between two polls of one task).

Exit codes: 0 success; 1 an API error or a failed task; 2 a usage error; 130 interrupted
(Ctrl-C), after printing the ids of the tasks still running.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar, get_args

import anyio
import attrs
import httpx

from ._constants import API_KEY_ENV, DEFAULT_MIN_POLL_GAP
from ._download import saved_clip_file
from ._exceptions import MusicAPIError, NotFoundError
from ._http import PaidCall
from ._models import Clip, ClipState, Task, TaskRef
from ._poller import ProgressState, TaskProgress, WaitTimeoutError
from ._ratelimit import TokenBucket

if TYPE_CHECKING:
    import click
    from rich.console import Console, RenderableType

    from ._batch import BatchEvent, BatchJobResult, BatchReport
    from ._client import MusicAPI

__all__ = ["INSTALL_HINT", "build_cli", "main"]

T = TypeVar("T")

#: Printed (exit 2) when the ``cli`` extra is not installed.
INSTALL_HINT: Final = (
    "the musicapi command needs the optional 'cli' extra (click and rich): from a checkout "
    "of the repository,\n    pip install -e '.[cli]'\n(the package is not on PyPI yet: "
    "a package of that name there is not this one)"
)
#: Said of tasks still pending at a `--timeout` deadline: seen running, or never looked up.
_UNFINISHED: Final = "still unfinished at the deadline (--timeout)"
_UNPOLLED: Final = "not looked up before the deadline (--timeout), so not known to exist"
#: Said (followed by their ids) of sandbox tasks left when the command ends early.
SANDBOX_GONE: Final = "musicapi: the sandbox's tasks lived in this process and are gone"
#: What writing the output may fail with (a full disk or file-size limit behind a
#: redirection, an I/O error): reported in a line (see main).
_OUTPUT_ERRORS: Final = frozenset({errno.ENOSPC, errno.EFBIG, errno.EIO})
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
#: 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
EXIT_INTERRUPTED: Final = 130

SANDBOX_ENV: Final = "MUSICAPI_SANDBOX"
SANDBOX_OUTCOME_ENV: Final = "MUSICAPI_SANDBOX_OUTCOME"
SANDBOX_DURATION_ENV: Final = "MUSICAPI_SANDBOX_DURATION"
RATE_ENV: Final = "MUSICAPI_RATE"
EXPECTED_DURATION_ENV: Final = "MUSICAPI_EXPECTED_DURATION"
MIN_POLL_GAP_ENV: Final = "MUSICAPI_MIN_POLL_GAP"
#: How much faster than the real service the sandbox runs: its rate limit (1 request / 3 s)
#: and the client's TokenBucket are both scaled by it, so they stay consistent.
SANDBOX_SPEEDUP: Final = 20.0
#: Seconds a sandbox Sonic generation takes (about two minutes, compressed).
SANDBOX_SONIC_DURATION: Final = 5.0
SANDBOX_BANNER: Final = (
    "musicapi: SANDBOX: an in-process fake MusicAPI (no key, no network, no credits spent); "
    "time runs {speedup:g}x faster and the songs are synthesised test audio"
)
DEFAULT_MODEL: Final = "sonic-v5"


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``musicapi`` script; exits with the command's status."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        print(f"musicapi: {INSTALL_HINT}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    try:
        build_cli().main(args=list(argv) if argv is not None else None, prog_name="musicapi")
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRORS:
            raise
        # Standard output could not take the results (a full disk behind `> file`, say):
        # the work itself is done (the files are saved); say so in a line, not a traceback,
        # and let nothing try to flush the stuck output again at exit.
        print(f"musicapi: error: could not write the output: {exc.strerror}", file=sys.stderr)
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILURE)
    sys.exit(EXIT_OK)  # click's standalone mode exits itself; this is never reached


# --- settings and the client ------------------------------------------------------------------


@attrs.frozen
class Settings:
    """The global options, shared by every command."""

    sandbox: bool
    api_key: str | None = attrs.field(repr=False)  # never in a repr (frame locals, logs)
    json: bool
    #: How sandbox tasks end (``MUSICAPI_SANDBOX_OUTCOME``), and how long they take.
    outcome: str = "success"
    duration: float = SANDBOX_SONIC_DURATION
    #: ``--rate``: the key's budget, requests per seconds (``None``: the client's default).
    rate: tuple[float, float] | None = None
    #: Scheduler tuning from the hidden variables (``None``: the client's defaults).
    expected_duration: float | None = None
    min_poll_gap: float | None = None


def parse_rate(text: str, source: str = "--rate") -> tuple[float, float]:
    """``"R/P"`` (R requests per P seconds, e.g. ``1/3``); ``ValueError`` if malformed, naming
    ``source`` (the option, or the environment variable the value came from)."""
    rate, slash, per = text.partition("/")
    try:
        value = (float(rate), float(per))
    except ValueError:
        value = (math.nan, math.nan)
    if not slash or not all(v > 0 and math.isfinite(v) for v in value):
        if source.startswith("-"):
            raise ValueError(f"{source} expects REQUESTS/SECONDS such as 1/3 or 2/3, got {text!r}")
        raise ValueError(f"{source}={text!r} is not REQUESTS/SECONDS such as 1/3 or 2/3")
    return value


def seconds_setting(name: str, text: str | None) -> float | None:
    """A positive number of seconds from an environment variable, or ``None`` when unset."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name}={text!r} is not a number of seconds > 0")
    return value


@attrs.frozen
class Session:
    """The open client of one command, and whether it talks to the sandbox."""

    client: MusicAPI
    sandbox: bool


def sandbox_settings(outcome: str | None, duration: str | None) -> tuple[str, float]:
    """Check the sandbox's testing aids; ``ValueError`` names the bad one."""
    from .testing import Outcome

    chosen = outcome or "success"
    if chosen not in get_args(Outcome):
        raise ValueError(
            f"{SANDBOX_OUTCOME_ENV}={chosen!r} is not one of {', '.join(get_args(Outcome))}"
        )
    seconds = SANDBOX_SONIC_DURATION
    if duration:
        try:
            seconds = float(duration)
        except ValueError:
            seconds = -1.0
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"{SANDBOX_DURATION_ENV}={duration!r} is not a number of seconds")
    return chosen, seconds


def check_key(settings: Settings) -> None:
    """A key for the real service (the sandbox needs none); UsageProblem says how to give one.

    Checked when a command runs, not when options are parsed, so ``musicapi cover --help``
    needs no key.
    """
    if not settings.sandbox and not (settings.api_key and settings.api_key.strip()):
        raise UsageProblem(
            f"no MusicAPI key: set {API_KEY_ENV} or pass --api-key "
            "(or try it offline with --sandbox)"
        )


@asynccontextmanager
async def open_session(settings: Settings) -> AsyncIterator[Session]:
    """Open the clients a command needs: the real service, or the embedded sandbox."""
    from ._client import MusicAPI

    async with AsyncExitStack() as stack:
        if not settings.sandbox:
            check_key(settings)
            tuning: dict[str, Any] = {}
            if settings.rate is not None:
                tuning["limiter"] = TokenBucket(rate=settings.rate[0], per=settings.rate[1])
            if settings.expected_duration is not None:
                tuning["expected_durations"] = {"sonic": settings.expected_duration}
            if settings.min_poll_gap is not None:
                tuning["min_poll_gap"] = settings.min_poll_gap
            client = await stack.enter_async_context(MusicAPI(settings.api_key, **tuning))
            yield Session(client, sandbox=False)
            return
        from .testing import FakeMusicAPI

        per = 3.0 / SANDBOX_SPEEDUP
        fake = FakeMusicAPI(
            rate_limit=(1, per),
            not_ready_style="200",  # snapshots show pending, running, streaming
            initial_not_ready=0.0,
            sonic_duration=settings.duration,
            clip_spread=settings.duration / 10,
            outcome=settings.outcome,  # type: ignore[arg-type]  # checked by sandbox_settings
        )
        bucket = TokenBucket(rate=1, per=per, margin=0.1 / SANDBOX_SPEEDUP)
        http = await stack.enter_async_context(httpx.AsyncClient(transport=fake.transport()))
        # The scheduler's first guess of a Sonic task's length is a real one (two minutes):
        # tell it the sandbox's, so it polls a time-compressed task in time.
        client = await stack.enter_async_context(
            fake.client(
                http_client=http,
                limiter=bucket,
                # The default gap between two polls of one task, compressed like the rest.
                min_poll_gap=DEFAULT_MIN_POLL_GAP / SANDBOX_SPEEDUP,
                expected_durations={"sonic": max(settings.duration, 0.5)},
            )
        )
        yield Session(client, sandbox=True)


# --- progress on stderr -----------------------------------------------------------------------


_STATE_STYLES: Final = {
    "submitted": "cyan",
    ProgressState.PENDING.value: "cyan",
    ProgressState.RUNNING.value: "yellow",
    ProgressState.STREAMING.value: "magenta",
    ProgressState.SUCCEEDED.value: "green",
    ProgressState.FAILED.value: "red",
    "downloading": "blue",
    "saved": "green",
}


@attrs.define
class _Row:
    task_id: str
    state: str
    #: ``anyio.current_time()`` when this process started following the task.
    started: float
    #: Seconds since submission, as last reported (frozen once the task is terminal).
    elapsed: float | None = None
    detail: str = ""


class Progress:
    """Progress on stderr: a live line per task on a colour terminal, plain lines otherwise.

    Also remembers which tasks are still running, for the Ctrl-C message.
    """

    def __init__(self, console: Console, *, live: bool) -> None:
        self.console = console
        self.live = live
        #: What a row is, in plain lines ("task"; "job" for a batch).
        self.noun = "task"
        self._rows: dict[str, _Row] = {}
        #: A paid create was sent and its answer has not come: after a second Ctrl-C, the
        #: interrupt message must say that a task may exist without its id.
        self.create_on_the_wire = False
        #: The command was stopped by a second Ctrl-C, not cleanly by the first.
        self.forced = False
        self._live: Any = None
        #: anyio's clock at the last update: the live display is redrawn from the event loop
        #: (see animate), so elapsed times come from anyio's clock like everything else.
        self._now = 0.0

    @classmethod
    def for_stderr(cls) -> Progress:
        """Plain lines unless stderr is a terminal and ``NO_COLOR`` is unset."""
        from rich.console import Console

        no_color = bool(os.environ.get("NO_COLOR"))
        console = Console(
            stderr=True,
            highlight=False,
            color_system=None if no_color else "auto",
            no_color=no_color or None,
        )
        live = console.is_terminal and not console.is_dumb_terminal and not no_color
        return cls(console, live=live)

    def note(self, message: str, style: str = "") -> None:
        """One line of information on stderr."""
        self.console.print(
            message, style=style or None, markup=False, highlight=False, soft_wrap=True
        )

    def __enter__(self) -> Progress:
        if self.live:
            from rich.live import Live

            self._live = Live(self, console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    async def animate(self) -> None:
        """Redraw the live display 8 times a second, from the event loop, until cancelled."""
        while True:
            self._now = anyio.current_time()
            if self._live is not None:
                self._live.refresh()
            await anyio.sleep(1 / 8)

    def _clock(self) -> float:
        self._now = anyio.current_time()
        return self._now

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.__exit__(None, None, None)

    @property
    def running(self) -> list[str]:
        """Ids of the tasks followed and not finished, in the order they were seen."""
        return [
            r.task_id
            for r in self._rows.values()
            if r.state not in (ProgressState.SUCCEEDED.value, ProgressState.FAILED.value)
            and r.state not in ("downloading", "saved")
        ]

    @property
    def undelivered(self) -> list[str]:
        """Ids of the tasks that succeeded but whose results were not saved (or printed) yet:
        results reach stdout at the end, so Ctrl-C before then must name them too."""
        return [
            r.task_id
            for r in self._rows.values()
            if r.state in (ProgressState.SUCCEEDED.value, "downloading")
        ]

    def follow(self, task_id: str, state: str = "submitted") -> None:
        """Start showing a task (just submitted, or awaited)."""
        if task_id not in self._rows:
            self._rows[task_id] = _Row(task_id, state, self._clock())
            self._show(self._rows[task_id])

    def update(self, event: TaskProgress) -> None:
        """``on_progress`` callback of ``await_task``: a task changed state."""
        known = event.ref.task_id in self._rows
        row = self._rows.setdefault(
            event.ref.task_id, _Row(event.ref.task_id, "pending", self._clock())
        )
        shown = (row.state, row.detail)
        row.state = event.state.value
        row.elapsed = event.elapsed
        row.started = self._clock() - event.elapsed
        row.detail = ""
        if event.state is ProgressState.FAILED:
            row.detail = event.task.error or ""
        if not known or (row.state, row.detail) != shown:
            self._show(row)  # a line per change: "pending" once, not again 0.1 s later

    def finish(self, task: Task) -> None:
        """A task's final state (from a result, not an event)."""
        row = self._rows.setdefault(task.task_id, _Row(task.task_id, "", self._clock()))
        row.state = ProgressState.SUCCEEDED.value if task.succeeded else "failed"
        if row.elapsed is None:
            row.elapsed = self._clock() - row.started
        row.detail = "" if task.succeeded else (task.error or "")

    def step(self, task_id: str, state: str, detail: str = "") -> None:
        """A later step of a finished task (downloading, saved)."""
        row = self._rows.setdefault(task_id, _Row(task_id, state, self._clock()))
        row.state, row.detail = state, detail
        self._show(row)

    def track(
        self, label: str, state: str, *, elapsed: float | None = None, detail: str = ""
    ) -> None:
        """Show any row (a batch's job) in ``state``; ``elapsed`` seconds since it started."""
        now = self._clock()
        row = self._rows.setdefault(label, _Row(label, state, now))
        row.state, row.detail = state, detail
        if elapsed is not None:
            row.elapsed, row.started = elapsed, now - elapsed
        self._show(row)

    def _show(self, row: _Row) -> None:
        if self.live:
            return  # the live display redraws itself
        self.note(_row_text(row, self._clock(), self.noun))

    def __rich__(self) -> RenderableType:
        from rich.table import Table
        from rich.text import Text

        now = self._now
        grid = Table.grid(padding=(0, 2))
        for row in tuple(self._rows.values()):
            style = _STATE_STYLES.get(row.state, "")
            grid.add_row(
                Text(row.task_id, style="bold"),
                Text(row.state, style=style),
                Text(_elapsed(row, now), style="dim"),
                Text(row.detail),
            )
        return grid


def _elapsed(row: _Row, now: float) -> str:
    if row.state in ("submitted", "pending", "running", "streaming", "unknown"):
        return f"{now - row.started:.1f} s"
    return "" if row.elapsed is None else f"{row.elapsed:.1f} s"


def _row_text(row: _Row, now: float, noun: str = "task") -> str:
    parts = [f"musicapi: {noun} {row.task_id}", row.state]
    elapsed = _elapsed(row, now)
    if elapsed:
        parts.append(f"({elapsed})")
    if row.detail:
        parts.append(row.detail)
    return " ".join(parts)


# --- results on stdout ------------------------------------------------------------------------


def clip_json(clip: Clip, path: Path | None = None) -> dict[str, Any]:
    """The fields of a clip a script needs, plus where it was saved."""
    return {
        "clip_id": clip.clip_id,
        "state": clip.state.value,
        "title": clip.title,
        "tags": clip.tags,
        "duration": clip.duration,
        "audio_url": clip.audio_url,
        "path": None if path is None else str(path),
    }


def task_json(task: Task, paths: dict[str, Path] | None = None) -> dict[str, Any]:
    """A task as printed by ``--json``: id, status, error and clips (with saved paths)."""
    saved = paths or {}
    return {
        "task_id": task.task_id,
        "family": task.ref.family.value,
        "status": task.status.value,
        "error": task.error,
        "error_type": task.error_type,
        "clips": [clip_json(c, saved.get(c.clip_id or "")) for c in task.clips],
    }


def finite_seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Callback of the options of seconds (``--timeout``, ``--at``): ``FloatRange(min=0)``
    lets ``nan`` through (``nan < 0`` is false), which failed only after a create was paid
    for; ``inf`` is refused too."""
    import click

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds", ctx, param)
    return value


class CommandFailed(Exception):
    """A command ran but something it did failed (exit status 1); the message says what."""


class UsageProblem(Exception):
    """A bad value the options parser could not catch (exit status 2)."""


class Reported(Exception):
    """The errors were printed already; exit with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


#: The library's advice in error texts, and the command line's way to say it.
_CLI_WORDING: Final = (
    ("MusicAPI(api_key=...)", "--api-key"),
    ("a drop in client.credits.get()", "a drop in `musicapi credits`"),
)


def cli_text(message: str) -> str:
    """An SDK error text in the command line's words (options, not Python calls)."""
    for python, command in _CLI_WORDING:
        message = message.replace(python, command)
    return message


def describe_error(exc: Exception, *, sandbox: bool) -> tuple[str, int] | None:
    """The CLI's wording of an error and the exit status, or ``None`` if it is unexpected.

    A WaitTimeoutError is ``report_errors``'s: its text gives Python advice
    (``pending_json()``), the CLI prints the command that resumes instead.
    """
    if isinstance(exc, UsageProblem):
        return str(exc), EXIT_USAGE
    if isinstance(exc, NotFoundError):
        hint = ""
        if sandbox:
            hint = " (sandbox tasks live only as long as the command that created them)"
        return f"{cli_text(str(exc))}{hint}", EXIT_FAILURE
    if isinstance(exc, (MusicAPIError, CommandFailed)):
        return cli_text(str(exc)), EXIT_FAILURE
    if isinstance(exc, ValueError):
        # The SDK refuses what the server certainly would (a missing key, a long title).
        return str(exc), EXIT_USAGE
    return None


def writable_dir(text: str) -> Path:
    """Create the output directory ``text`` and check a file can be written there, so that
    a bad ``-o`` is refused before anything is paid for; UsageProblem says why."""
    if not text.strip():
        # Path("") is the current directory: an empty -o (an unset shell variable, say) must
        # not scatter files there.
        raise UsageProblem("-o is empty: give a directory (-o . for the current one)")
    path = Path(text)
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory")
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".musicapi-probe-", dir=path)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename is not None and os.fspath(exc.filename) != text:
            reason = f"{reason}: {os.fspath(exc.filename)}"
        raise UsageProblem(f"cannot save files in {text} (-o): {reason}") from exc
    return path


def exists_message(where: str) -> str:
    """The CLI's wording of the library's FileExistsError."""
    return f"{where} already exists: pass --overwrite to replace it, or use another -o directory"


@attrs.define
class Results:
    """What a waiting command produced: terminal tasks and the files saved."""

    tasks: list[Task] = attrs.field(factory=list)
    paths: dict[str, Path] = attrs.field(factory=dict)
    refs: list[TaskRef] = attrs.field(factory=list)
    #: Tasks that could not be awaited (unknown, timed out...), by task id.
    errors: dict[str, Exception] = attrs.field(factory=dict)


# --- the work, shared by the commands ---------------------------------------------------------


async def wait_and_download(
    session: Session,
    refs: list[TaskRef],
    progress: Progress,
    *,
    out_dir: Path | None,
    timeout: float | None,
    overwrite: bool,
) -> Results:
    """Await tasks with live progress, then download their finished clips into ``out_dir``.

    Each task is awaited on its own, so one that cannot be (an unknown id) is recorded in
    ``errors`` and the others are still awaited and saved.
    """
    outcome = Results(refs=refs)
    for ref in refs:
        progress.follow(ref.task_id, "pending")
    with progress:
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        done: dict[str, Task] = {}

        async def one(ref: TaskRef) -> None:
            try:
                done[ref.task_id] = await session.client.await_task(
                    ref, on_progress=progress.update, **kwargs
                )
            except (MusicAPIError, ValueError) as exc:
                outcome.errors[ref.task_id] = exc  # not an exception group out of the wait
                if not isinstance(exc, WaitTimeoutError):  # that one is still running
                    # Not "still running" any more (Ctrl-C would list it to resume): why.
                    progress.step(ref.task_id, "failed", cli_text(str(exc)))

        async with anyio.create_task_group() as tg:
            for ref in refs:
                tg.start_soon(one, ref)
        tasks = [done[ref.task_id] for ref in refs if ref.task_id in done]
        outcome.tasks = tasks
        for task in tasks:
            progress.finish(task)
        if out_dir is not None:
            for task in tasks:
                try:
                    await _download_task(session, task, out_dir, progress, outcome, overwrite)
                except (MusicAPIError, CommandFailed) as exc:
                    # One task's files failing must not cost the others theirs.
                    outcome.errors[task.task_id] = exc
    return outcome


class _CreateWatch(PaidCall):
    """A create run under Ctrl-C: what it did, for the progress and the interrupt message."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def sending(self) -> None:
        super().sending()
        self.progress.create_on_the_wire = True

    def not_sent(self) -> None:
        self.progress.create_on_the_wire = False
        super().not_sent()

    def interrupted(self) -> None:
        if self.sent:
            self.progress.note(
                "musicapi: waiting for the answer to the create request already sent, "
                "so its task id is not lost (Ctrl-C again to abandon it)",
                "yellow",
            )


async def create_keeping_its_id(
    create: Callable[[], Awaitable[TaskRef]], progress: Progress
) -> TaskRef:
    """Run a paid create so that Ctrl-C cannot lose its task (see PaidCall): the task is
    followed as soon as its id is known, so the interrupt message that follows names it."""

    def record(ref: TaskRef | None) -> None:
        # Answered. A second Ctrl-C (KeyboardInterrupt) skips this: the interrupt message
        # then warns that a task may exist.
        progress.create_on_the_wire = False
        if ref is not None:
            progress.follow(ref.task_id)

    try:
        return await _CreateWatch(progress).run(create, record)
    except Exception:
        progress.create_on_the_wire = False  # failed with an error that says what is known
        raise


async def _download_task(
    session: Session,
    task: Task,
    out_dir: Path,
    progress: Progress,
    outcome: Results,
    overwrite: bool,
) -> None:
    clips = [c for c in task.clips if c.state is ClipState.SUCCEEDED and c.audio_url]
    later = shlex.join(["musicapi", "download", task.task_id, "-o", str(out_dir)])
    if session.sandbox:
        later += " (not in the sandbox, whose tasks end with the command)"
    kept = 0
    # One clip that cannot be saved (a file in the way, the CDN failing on it) must not
    # cost the others: each is tried, and what failed is told together at the end.
    # (what failed, how to fetch it later or None, the error)
    failures: list[tuple[str, str | None, BaseException]] = []
    for number, clip in enumerate(clips, 1):
        saved = None if overwrite else saved_clip_file(out_dir, clip)
        if saved is not None:
            # Saved by an earlier run (a resumed `wait -o DIR`): whole, as files appear only
            # once complete; the missing clips are still fetched.
            outcome.paths[clip.clip_id or str(saved)] = saved
            kept += 1
            continue
        progress.step(task.task_id, "downloading", f"clip {number}/{len(clips)}")
        try:
            path = await session.client.download(clip, out_dir, overwrite=overwrite)
        except FileExistsError as exc:
            where = f"the file of clip {clip.clip_id} in {out_dir}"
            failures.append((exists_message(where), None, exc))
        except OSError as exc:
            # -o was checked before the create: this is a full disk or the like, and the
            # task is done and paid for; say how to fetch it, not a traceback.
            failures.append(
                (
                    f"could not save the audio of task {task.task_id} in {out_dir}: "
                    f"{exc.strerror or exc}",
                    f"the task is finished, fetch it later with: {later}",
                    exc,
                )
            )
        except MusicAPIError as exc:  # the CDN failed, or the connection to it
            failures.append(
                (str(exc), f"the task is finished, fetch its audio later with: {later}", exc)
            )
        else:
            outcome.paths[clip.clip_id or str(path)] = path
    if failures:
        told = [message for message, _, _ in failures]
        advice = next((how for _, how, _ in failures if how is not None), None)
        raise CommandFailed(
            "; ".join(dict.fromkeys([*told, *([advice] if advice else [])]))
        ) from failures[0][2]
    if clips:
        already = f" ({kept} already there)" if kept else ""
        progress.step(task.task_id, "saved", f"{len(clips)} file(s) in {out_dir}{already}")


def print_outcome(
    settings: Settings, outcome: Results, *, downloaded: bool, resume: str = ""
) -> None:
    """Results on stdout: saved paths (or audio URLs), or JSON."""
    if settings.json:
        payload: dict[str, Any] = {"tasks": [task_json(t, outcome.paths) for t in outcome.tasks]}
        # What could not be awaited or saved, by task: a script must see every paid id.
        payload["errors"] = [
            {"task_id": ref.task_id, "error": _error_text(exc, ref.task_id, resume)}
            for task_id, exc in outcome.errors.items()
            for ref in (exc.pending if isinstance(exc, WaitTimeoutError) else [TaskRef(task_id)])
        ]
        print(json.dumps(payload))
        return
    for task in outcome.tasks:
        for clip in task.clips:
            path = outcome.paths.get(clip.clip_id or "")
            if path is not None:
                print(path)
            elif not downloaded and clip.audio_url:
                print(f"{task.task_id}\t{clip.clip_id}\t{clip.audio_url}")


def _error_text(exc: Exception, task_id: str, resume: str) -> str:
    """One task's error as the JSON output gives it (the command line's wording); ``resume``
    ends the ``musicapi wait`` it suggests (`` -o DIR`` when the command was saving)."""
    if isinstance(exc, WaitTimeoutError):
        if any(ref.task_id == task_id for ref in exc.unpolled):
            return f"{_UNPOLLED}: musicapi wait {task_id}{resume}"
        return f"{_UNFINISHED}: musicapi wait {task_id}{resume}"
    described = describe_error(exc, sandbox=False)
    return str(exc) if described is None else described[0]


def report_errors(
    errors: dict[str, Exception], progress: Progress, *, sandbox: bool, resume: str = ""
) -> None:
    """Print each task's error on stderr (the resume command for those still running)."""
    pending: list[str] = []
    unpolled: list[str] = []
    for task_id, exc in errors.items():
        if isinstance(exc, WaitTimeoutError):
            pending += [ref.task_id for ref in exc.pending] or [task_id]
            unpolled += [ref.task_id for ref in exc.unpolled]
            continue
        described = describe_error(exc, sandbox=sandbox)
        message = str(exc) if described is None else described[0]
        progress.note(f"musicapi: error: {message}", "bold red")
    if pending:
        running = [task_id for task_id in pending if task_id not in unpolled]
        if running:
            progress.note(f"musicapi: error: {_UNFINISHED}: " + " ".join(running), "bold red")
        if unpolled:
            # Never looked up: a mistyped id is one, a deadline too short for the key's
            # budget another; "still running" would be a guess.
            progress.note(
                f"musicapi: error: {_UNPOLLED}: " + " ".join(dict.fromkeys(unpolled)), "bold red"
            )
        if sandbox:
            # A resume command would go to the real API: the sandbox's tasks lived here.
            progress.note(f"{SANDBOX_GONE}: " + " ".join(pending))
        else:
            progress.note(
                f"musicapi: resume with: {shlex.join(['musicapi', 'wait', *pending])}{resume}"
            )


def check_results(outcome: Results, progress: Progress, *, sandbox: bool, resume: str) -> None:
    """Report the tasks that could not be awaited and those that failed; exit 1 if any."""
    report_errors(outcome.errors, progress, sandbox=sandbox, resume=resume)
    check_tasks(outcome.tasks, progress)
    if outcome.errors:
        raise Reported(EXIT_FAILURE)


def check_tasks(tasks: Sequence[Task], progress: Progress) -> None:
    """Raise CommandFailed when a task failed; note clips that failed inside good tasks."""
    failed = [t for t in tasks if not t.succeeded]
    for task in tasks:
        bad = [c for c in task.clips if c.state is ClipState.FAILED]
        if task.succeeded and bad:
            progress.note(f"musicapi: task {task.task_id}: {len(bad)} clip(s) failed", "yellow")
    if failed:
        reasons = "; ".join(
            f"task {t.task_id} {t.status.value}: {t.error or 'no reason given'}" for t in failed
        )
        raise CommandFailed(f"{reasons} (MusicAPI refunds the credits of failed tasks)")


class BatchTracker:
    """Feeds a batch's events to the progress rows; remembers the tasks still running."""

    #: Row states of a job whose task exists and is not finished.
    RUNNING: Final = frozenset({"created", "pending", "running", "streaming", "unknown"})

    def __init__(self) -> None:
        self._jobs: dict[str, tuple[str, str | None]] = {}

    @property
    def submitting(self) -> bool:
        """A job's create is under way (waiting for its slot, or on the wire)."""
        return any(state == "submitting" for state, _ in self._jobs.values())

    @property
    def running(self) -> list[str]:
        """Task ids of the jobs created and not finished, for the Ctrl-C message."""
        return [
            task_id for state, task_id in self._jobs.values() if task_id and state in self.RUNNING
        ]

    def update(self, progress: Progress, event: BatchEvent) -> None:
        """``run_batch(on_progress=...)``: show the job's new state."""
        self._jobs[event.job_id] = (event.state, event.task_id)
        detail = event.detail
        if event.task_id and not detail:
            detail = f"task {event.task_id}"
        if len(detail) > 160:
            detail = detail[:157] + "..."
        progress.track(event.job_id, event.state, elapsed=event.elapsed, detail=detail)


def print_batch(report: BatchReport, *, as_json: bool) -> None:
    """A batch's results on stdout: a line per job (id, state, task, files), or JSON."""
    from ._batch import result_json

    if as_json:
        jobs = [
            {**result_json(job), "paths": [str(path) for path in job.files]} for job in report.jobs
        ]
        others = [
            {**result_json(job), "paths": [str(path) for path in job.files]}
            for job in report.others
        ]
        payload = {
            "results": str(report.results_path),
            "complete": report.complete,
            "stopped": report.stopped,
            "jobs": jobs,
            "other_jobs": others,
        }
        print(json.dumps(payload))
        return
    for job in report.jobs:
        fields = [job.job_id, job.state.value, job.task_id or "-"]
        fields += [str(path) for path in job.files]
        if not job.complete and job.error:
            fields.append(" ".join(cli_text(job.error).split()))  # one line per job, tab-separated
        print("\t".join(fields))


def batch_resume_command(ctx: click.Context, argv: Sequence[str]) -> str:
    """The command that resumes this batch: the global options given (never the key), then
    ``batch`` and ``argv``, quoted for a POSIX shell."""
    root = ctx.find_root().params
    words = ["musicapi"]
    if root.get("sandbox"):
        words.append("--sandbox")
    if root.get("rate"):
        words += ["--rate", str(root["rate"])]
    if root.get("as_json"):
        words.append("--json")
    return shlex.join([*words, "batch", *argv])


def check_batch(report: BatchReport, progress: Progress, *, resume: str, sandbox: bool) -> None:
    """Summarise a batch on stderr; raise CommandFailed unless every job is complete."""
    from ._batch import BatchJobState as S

    counts: dict[str, int] = {}
    for job in report.jobs:
        counts[job.state.value] = counts.get(job.state.value, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    progress.note(f"musicapi: {len(report.jobs)} job(s): {summary}; see {report.results_path}")
    if report.others:
        progress.note(
            f"musicapi: {len(report.others)} job(s) of the journal are not in this file: not "
            "created by this run, but a task one made is awaited and saved (in "
            f'{report.results_path.name} with "in_input": false):'
        )
        for job in report.others:
            progress.note(
                f"musicapi:   job {job.job_id} {job.state.value}, task {job.task_id or '-'}"
            )
    for job in report.jobs:
        bad = [c for c in job.task.clips if c.state is ClipState.FAILED] if job.task else []
        if job.task is not None and job.task.succeeded and bad:
            progress.note(f"musicapi: job {job.job_id}: {len(bad)} clip(s) failed", "yellow")
    note_uncertain_others(report.uncertain_others, progress)
    if report.complete:
        return
    unsettled = report.unsettled_others
    if unsettled:
        note_unsettled_others(unsettled, progress, resume=resume)
    failed = report.by_state(S.FAILED)
    for job in failed:
        reason = cli_text(job.error or "no reason given")
        progress.note(f"musicapi: job {job.job_id} failed: {reason}")
    if failed:
        # A failed job keeps its id's verdict; a new id is a new job. When every job failed,
        # nothing in the directory is worth keeping, and a directory whose jobs are all
        # renamed reads as another batch: then the way is another -o.
        again = (
            "run the same command with another -o directory"
            if len(failed) == len(report.jobs)
            else f'give its line a new "id" in the file and rerun: {resume}'
        )
        progress.note(
            f"musicapi: {len(failed)} job(s) failed and are not retried (MusicAPI refunds "
            f"failed tasks); to try one again, {again}"
        )
    uncertain = report.by_state(S.UNCERTAIN)
    if uncertain:
        progress.note(
            f"musicapi: {len(uncertain)} job(s) uncertain: their create may have reached "
            "MusicAPI without an answer, so they were not created again: "
            + " ".join(job.job_id for job in uncertain),
            "yellow",
        )
        progress.note(
            "musicapi: check the dashboard's task history (or your webhooks, or the credits): "
            f"to have the batch await and save a task you found there: {resume} --adopt "
            f"{shlex.quote(uncertain[0].job_id + '=')}TASK_ID (one --adopt per job); to create "
            f"them again instead (which may pay twice): {resume} --resubmit-uncertain"
        )
    if report.stopped:
        progress.note(f"musicapi: submitting stopped: {report.stopped}", "yellow")
    unfinished = [job for job in report.jobs if not job.complete]
    resumable = [j for j in unfinished if j.state not in (S.FAILED, S.UNCERTAIN)]
    if resumable:
        hint = "" if not sandbox else " (a sandbox task cannot outlive its command)"
        progress.note(f"musicapi: {len(resumable)} job(s) unfinished; resume with: {resume}{hint}")
    reasons = []
    if unfinished or not unsettled:
        reasons.append(f"{len(unfinished)} of {len(report.jobs)} job(s) did not complete")
    if unsettled:
        reasons.append(f"{len(unsettled)} job(s) not in this file have a paid task not yet saved")
    raise CommandFailed("; ".join(reasons))


def note_unsettled_others(
    jobs: Sequence[BatchJobResult], progress: Progress, *, resume: str
) -> None:
    """Say how to get the jobs of the journal outside the file whose known task is not
    saved: followed all the same, they are left only when still running at the wait's
    deadline (or not found), or when their download failed."""
    progress.note(
        f"musicapi: {len(jobs)} of them have a task (paid) not saved yet ("
        + " ".join(job.task_id or "" for job in jobs)
        + "): the batch follows them though their lines are out of the file; run it "
        f"again to go on ({resume})",
        "yellow",
    )


def note_uncertain_others(jobs: Sequence[BatchJobResult], progress: Progress) -> None:
    """Warn of the jobs outside the file whose create may have made a task of unknown id:
    their lines were removed, so they do not fail the run, but a task may be paid for."""
    if jobs:
        progress.note(
            f"musicapi: {len(jobs)} of them ("
            + " ".join(job.job_id for job in jobs)
            + ") sent a create that may have reached MusicAPI without an answer: check the "
            "dashboard's task history (or your webhooks, or the credits); to get a task "
            "found there, put the job's line back and add --adopt JOB=TASK_ID",
            "yellow",
        )


def run_command(
    settings: Settings,
    work: Callable[[Session, Progress], Awaitable[None]],
    *,
    on_interrupt: Callable[[Progress], None] | None = None,
    on_ctrl_c: Callable[[Progress], None] | None = None,
    resume: str = "",
) -> NoReturn:
    """Run one command's coroutine under ``anyio.run`` and exit with its status.

    ``on_interrupt`` replaces the Ctrl-C note about the tasks still running; ``on_ctrl_c``
    says at once what stopping waits for; ``resume`` ends the ``musicapi wait`` command it
    suggests (`` -o DIR`` when the command was saving).
    """
    import click

    progress = Progress.for_stderr()
    if settings.sandbox:
        progress.note(SANDBOX_BANNER.format(speedup=SANDBOX_SPEEDUP), "bold yellow")

    interrupted = False

    async def body() -> None:
        nonlocal interrupted
        async with anyio.create_task_group() as tg:

            async def stop_on_ctrl_c() -> None:
                # Ctrl-C as an event, on every backend and Python version: cancel the work
                # cleanly (the client closes, background polls stop) instead of a
                # KeyboardInterrupt tearing through the event loop.
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT) as signals:
                    async for _ in signals:
                        interrupted = True
                        if on_ctrl_c is not None:
                            on_ctrl_c(progress)
                        tg.cancel_scope.cancel()
                        return

            if hasattr(signal, "SIGINT") and threading.current_thread() is threading.main_thread():
                tg.start_soon(stop_on_ctrl_c)
            if progress.live:
                tg.start_soon(progress.animate)
            failure: Exception | None = None
            try:
                async with open_session(settings) as session:
                    await work(session, progress)
            except Exception as exc:
                failure = exc  # raised below, outside the task group's exception group
            finally:
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    code = EXIT_OK
    try:
        try:
            anyio.run(body)
        except KeyboardInterrupt:
            # Not the clean stop of the first Ctrl-C: a second one, through Python's own
            # handler, cut short whatever was under way (a shielded create, say).
            progress.forced = True
            raise
        if interrupted:
            raise KeyboardInterrupt  # noqa: TRY301 - one report path for both ways in
    except KeyboardInterrupt:
        progress.__exit__(None, None, None)
        running, undelivered = progress.running, progress.undelivered
        progress.note("musicapi: interrupted", "bold red")
        if on_interrupt is not None:
            on_interrupt(progress)
        elif (running or undelivered) and settings.sandbox:
            progress.note(f"{SANDBOX_GONE}: " + " ".join(running + undelivered))
        elif running or undelivered:
            if running:
                progress.note("musicapi: still running: " + " ".join(running))
            if undelivered:
                progress.note(
                    "musicapi: finished, results not saved or shown yet: " + " ".join(undelivered)
                )
            progress.note(
                "musicapi: resume with: musicapi wait " + " ".join(running + undelivered) + resume
            )
        if progress.create_on_the_wire and not settings.sandbox:
            progress.note(
                "musicapi: a create request was sent and its answer never came: MusicAPI may "
                "have started (and charged for) a task whose id this command never saw. Check "
                "the dashboard's task history (or `musicapi credits`) before running the "
                "command again, or you may pay twice.",
                "bold yellow",
            )
        code = EXIT_INTERRUPTED
    except Reported as exc:
        code = exc.code
    except WaitTimeoutError as exc:
        report_errors({"": exc}, progress, sandbox=settings.sandbox)
        code = EXIT_FAILURE
    except Exception as exc:
        described = describe_error(exc, sandbox=settings.sandbox)
        if described is None:
            raise
        message, code = described
        progress.note(f"musicapi: error: {message}", "bold red")
    click.get_current_context().exit(code)


# --- the commands -----------------------------------------------------------------------------


def task_ids_once(task_ids: Sequence[str]) -> list[str]:
    """The task ids given, each once (a poll spends the budget); an empty one refused."""
    if not all(task_id.strip() for task_id in task_ids):
        refuse("a task id is empty: give the ids a create printed")
    return list(dict.fromkeys(task_ids))


def refuse(message: object) -> NoReturn:
    """Print a usage error of the running command and exit 2 (before any request)."""
    import click

    Progress.for_stderr().note(f"musicapi: error: {message}", "bold red")
    click.get_current_context().exit(EXIT_USAGE)
    raise AssertionError  # exit() raises


def _read_text(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        refuse(f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        refuse(f"cannot read {path}: it is not UTF-8 text")


def build_cli() -> click.Group:
    """The ``musicapi`` click group (click and rich must be importable)."""
    import click

    F = TypeVar("F", bound=Callable[..., Any])

    def creation_options(function: F) -> F:
        options = [
            click.option("--mv", default=DEFAULT_MODEL, show_default=True, help="Model id."),
            click.option(
                "--lyrics",
                "lyrics_file",
                type=click.Path(exists=True, dir_okay=False),
                help="Custom mode: a file with the lyrics ([Verse], [Chorus] tags).",
            ),
            click.option("--title", help="Song title (custom mode; at most 80 characters)."),
            click.option("--tags", help='Styles, e.g. "lofi, chill, piano".'),
            click.option("--instrumental", is_flag=True, help="No vocals."),
        ]
        for option in reversed(options):
            function = option(function)
        return function

    def wait_options(function: F) -> F:
        options = [
            click.option(
                "-o",
                "--output",
                "out_dir",
                type=click.Path(file_okay=False),
                default=".",
                show_default=True,
                help="Directory to save the audio in.",
            ),
            click.option("--no-wait", is_flag=True, help="Print the task ids and exit."),
            click.option("--no-download", is_flag=True, help="Wait, print the audio URLs."),
            click.option("--overwrite", is_flag=True, help="Replace files that exist."),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0),
                callback=finite_seconds,
                help="Seconds to wait at most.",
            ),
            json_option,
        ]
        for option in reversed(options):
            function = option(function)
        return function

    #: ``--json`` is accepted after the command too (``musicapi generate x --json``).
    json_option = click.option(
        "--json", "as_json", is_flag=True, help="Machine-readable results on stdout."
    )

    def settings_of(ctx: click.Context, as_json: bool = False) -> Settings:
        settings = ctx.find_object(Settings)
        assert settings is not None  # the group made it
        return attrs.evolve(settings, json=True) if as_json else settings

    def output_dir(out_dir: str, settings: Settings) -> Path:
        """``-o``, created and writable, before any request (exit 2 otherwise); a run that
        would stop for want of a key stops first, leaving no directory behind."""
        try:
            check_key(settings)
            return writable_dir(out_dir)
        except UsageProblem as exc:
            refuse(exc)

    def submit_then_wait(
        ctx: click.Context,
        create: Callable[[MusicAPI], Awaitable[TaskRef]],
        *,
        out_dir: str,
        no_wait: bool,
        no_download: bool,
        overwrite: bool,
        timeout: float | None,
        as_json: bool,
    ) -> NoReturn:
        settings = settings_of(ctx, as_json)
        if not (no_wait or no_download):
            output_dir(out_dir, settings)
        # How ``musicapi wait`` picks up where this stopped (saving where this would have).
        resume = "" if no_download else f" -o {shlex.quote(out_dir)}"

        async def work(session: Session, progress: Progress) -> None:
            ref = await create_keeping_its_id(lambda: create(session.client), progress)
            if no_wait:
                if session.sandbox:
                    progress.note(
                        "musicapi: note: a sandbox task lives only as long as the command "
                        "that created it"
                    )
                if settings.json:  # the shape of every task list the commands print
                    pending: dict[str, Any] = {"task_id": ref.task_id, "family": ref.family.value}
                    pending |= {"status": "pending", "error": None, "error_type": None}
                    print(json.dumps({"tasks": [{**pending, "clips": []}], "errors": []}))
                else:
                    print(ref.task_id)
                return
            target = None if no_download else Path(out_dir)
            outcome = await wait_and_download(
                session, [ref], progress, out_dir=target, timeout=timeout, overwrite=overwrite
            )
            print_outcome(settings, outcome, downloaded=not no_download, resume=resume)
            check_results(outcome, progress, sandbox=session.sandbox, resume=resume)

        run_command(settings, work, resume=resume)

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option(
        "--sandbox",
        is_flag=True,
        envvar=SANDBOX_ENV,
        show_envvar=True,
        help="Run against an embedded fake MusicAPI: no key, no network, no credits.",
    )
    @click.option(
        "--api-key",
        envvar=API_KEY_ENV,
        show_envvar=True,
        help="Your MusicAPI key (never printed).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable results on stdout.")
    @click.option(
        "--rate",
        metavar="R/P",
        envvar=RATE_ENV,
        show_envvar=True,
        help="Your plan's request budget: R requests per P seconds (default 1/3).",
    )
    @click.version_option(package_name="musicapi-async", prog_name="musicapi")
    @click.pass_context
    def cli(
        ctx: click.Context, sandbox: bool, api_key: str | None, as_json: bool, rate: str | None
    ) -> None:
        """Generate music with MusicAPI (musicapi.ai) from the shell.

        Results go to stdout, progress to stderr. Try it with no key and no network:

            musicapi --sandbox generate "lofi hip hop for studying" -o songs/
        """
        outcome, duration = "success", SANDBOX_SONIC_DURATION
        if sandbox:
            try:
                outcome, duration = sandbox_settings(
                    os.environ.get(SANDBOX_OUTCOME_ENV), os.environ.get(SANDBOX_DURATION_ENV)
                )
            except ValueError as exc:
                raise click.UsageError(str(exc)) from exc
        budget = expected = gap = None
        # The real service's budget and timing do not apply to the sandbox (it has its own):
        # a bad value left in the environment for the real service must not stop it. A
        # --rate typed on this command line is still checked.
        from_env = ctx.get_parameter_source("rate") is click.core.ParameterSource.ENVIRONMENT
        try:
            if rate is not None and not (sandbox and from_env):
                budget = parse_rate(rate, RATE_ENV if from_env else "--rate")
            if not sandbox:
                expected = seconds_setting(
                    EXPECTED_DURATION_ENV, os.environ.get(EXPECTED_DURATION_ENV)
                )
                gap = seconds_setting(MIN_POLL_GAP_ENV, os.environ.get(MIN_POLL_GAP_ENV))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        ctx.obj = Settings(sandbox, api_key, as_json, outcome, duration, budget, expected, gap)

    @cli.command()
    @click.argument("prompt", required=False)
    @creation_options
    @wait_options
    @click.pass_context
    def generate(
        ctx: click.Context,
        prompt: str | None,
        mv: str,
        lyrics_file: str | None,
        title: str | None,
        tags: str | None,
        instrumental: bool,
        out_dir: str,
        no_wait: bool,
        no_download: bool,
        overwrite: bool,
        timeout: float | None,
        as_json: bool,
    ) -> None:
        """Generate a song from a description (PROMPT), or from lyrics with --lyrics.

        Description mode by default: MusicAPI writes the song from PROMPT. With --lyrics
        FILE (custom mode), PROMPT, when given, is the style unless --tags is.
        """
        lyrics = _read_text(lyrics_file)
        if lyrics is None and not prompt:
            raise click.UsageError("give a PROMPT (a description of the song) or --lyrics FILE")
        if lyrics is not None and not lyrics.strip():
            refuse(f"the lyrics file {lyrics_file} is empty")

        async def create(client: MusicAPI) -> TaskRef:
            if lyrics is not None:
                return await client.sonic.create(
                    custom_mode=True,
                    mv=mv,
                    prompt=lyrics,
                    title=title,
                    tags=tags or prompt,
                    make_instrumental=instrumental or None,
                )
            return await client.sonic.create(
                custom_mode=False,
                mv=mv,
                gpt_description_prompt=prompt,
                title=title,
                tags=tags,
                make_instrumental=instrumental or None,
            )

        submit_then_wait(
            ctx,
            create,
            out_dir=out_dir,
            no_wait=no_wait,
            no_download=no_download,
            overwrite=overwrite,
            timeout=timeout,
            as_json=as_json,
        )

    def derived_options(
        title: str | None,
        tags: str | None,
        instrumental: bool,
        lyrics_file: str | None,
        prompt: str | None,
    ) -> dict[str, Any]:
        """The create fields of ``extend`` and ``cover``. With --lyrics FILE, custom mode:
        the lyrics are sung, and --prompt is the style unless --tags is given (as for
        ``generate``: given both, the SDK would ask for a custom_mode the command has no
        option for). Else --prompt describes the new version."""
        options: dict[str, Any] = {}
        if title is not None:
            options["title"] = title
        if tags is not None:
            options["tags"] = tags
        if instrumental:
            options["make_instrumental"] = True
        lyrics = _read_text(lyrics_file)
        if lyrics is None:
            return {**options, "gpt_description_prompt": prompt}
        if not lyrics.strip():
            refuse(f"the lyrics file {lyrics_file} is empty")
        style = tags if tags is not None else prompt
        return {**options, "custom_mode": True, "prompt": lyrics, "tags": style}

    @cli.command()
    @click.argument("clip_id")
    @click.option(
        "--at",
        "continue_at",
        type=click.FloatRange(min=0),
        callback=finite_seconds,
        required=True,
        help="Second to continue from.",
    )
    @click.option("--prompt", help="A description of the continuation.")
    @creation_options
    @wait_options
    @click.pass_context
    def extend(
        ctx: click.Context,
        clip_id: str,
        continue_at: float,
        prompt: str | None,
        mv: str,
        lyrics_file: str | None,
        title: str | None,
        tags: str | None,
        instrumental: bool,
        out_dir: str,
        no_wait: bool,
        no_download: bool,
        overwrite: bool,
        timeout: float | None,
        as_json: bool,
    ) -> None:
        """Continue a generated clip from --at SECONDS (a new task)."""
        options = derived_options(title, tags, instrumental, lyrics_file, prompt)

        async def create(client: MusicAPI) -> TaskRef:
            return await client.sonic.extend(clip_id, continue_at=continue_at, mv=mv, **options)

        submit_then_wait(
            ctx,
            create,
            out_dir=out_dir,
            no_wait=no_wait,
            no_download=no_download,
            overwrite=overwrite,
            timeout=timeout,
            as_json=as_json,
        )

    @cli.command()
    @click.argument("clip_id")
    @click.option("--prompt", help="A description of the new version.")
    @creation_options
    @wait_options
    @click.pass_context
    def cover(
        ctx: click.Context,
        clip_id: str,
        prompt: str | None,
        mv: str,
        lyrics_file: str | None,
        title: str | None,
        tags: str | None,
        instrumental: bool,
        out_dir: str,
        no_wait: bool,
        no_download: bool,
        overwrite: bool,
        timeout: float | None,
        as_json: bool,
    ) -> None:
        """A new style or arrangement of a generated clip (a new task)."""
        options = derived_options(title, tags, instrumental, lyrics_file, prompt)

        async def create(client: MusicAPI) -> TaskRef:
            return await client.sonic.cover(clip_id, mv=mv, **options)

        submit_then_wait(
            ctx,
            create,
            out_dir=out_dir,
            no_wait=no_wait,
            no_download=no_download,
            overwrite=overwrite,
            timeout=timeout,
            as_json=as_json,
        )

    @cli.command()
    @click.argument("task_ids", nargs=-1, required=True)
    @json_option
    @click.pass_context
    def status(ctx: click.Context, task_ids: tuple[str, ...], as_json: bool) -> None:
        """Poll each TASK once and print its status (free).

        A task that cannot be polled (an unknown id) is reported on stderr, the others are
        still printed, and the exit status is 1.
        """
        settings = settings_of(ctx, as_json)
        ids = task_ids_once(task_ids)

        async def work(session: Session, progress: Progress) -> None:
            tasks: list[Task] = []
            errors: dict[str, Exception] = {}
            for task_id in ids:
                try:
                    tasks.append(await session.client.sonic.get_task(task_id))
                except MusicAPIError as exc:
                    errors[task_id] = exc
            if settings.json:
                failed = [{"task_id": t, "error": str(exc)} for t, exc in errors.items()]
                print(json.dumps({"tasks": [task_json(t) for t in tasks], "errors": failed}))
            else:
                for task in tasks:
                    states = ",".join(c.state.value for c in task.clips) or "-"
                    line = f"{task.task_id}\t{task.status.value}\tclips: {states}"
                    print(f"{line}\t{task.error}" if task.error else line)
            report_errors(errors, progress, sandbox=session.sandbox)
            if errors:
                raise Reported(EXIT_FAILURE)

        run_command(settings, work)

    @cli.command()
    @click.argument("task_ids", nargs=-1, required=True)
    @click.option(
        "-o",
        "--output",
        "out_dir",
        type=click.Path(file_okay=False),
        help="Save the audio in this directory (default: print the audio URLs).",
    )
    @click.option("--overwrite", is_flag=True, help="Replace files that exist.")
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        callback=finite_seconds,
        help="Seconds to wait at most.",
    )
    @json_option
    @click.pass_context
    def wait(
        ctx: click.Context,
        task_ids: tuple[str, ...],
        out_dir: str | None,
        overwrite: bool,
        timeout: float | None,
        as_json: bool,
    ) -> None:
        """Wait for tasks to finish (e.g. after --no-wait or Ctrl-C), optionally download."""
        settings = settings_of(ctx, as_json)
        refs = [TaskRef(task_id) for task_id in task_ids_once(task_ids)]
        target = None if out_dir is None else output_dir(out_dir, settings)
        resume = "" if out_dir is None else f" -o {shlex.quote(out_dir)}"

        async def work(session: Session, progress: Progress) -> None:
            outcome = await wait_and_download(
                session, refs, progress, out_dir=target, timeout=timeout, overwrite=overwrite
            )
            print_outcome(settings, outcome, downloaded=target is not None, resume=resume)
            check_results(outcome, progress, sandbox=session.sandbox, resume=resume)

        run_command(settings, work, resume=resume)

    @cli.command()
    @click.argument("sources", nargs=-1, required=True)
    @click.option(
        "-o",
        "--output",
        "out_dir",
        type=click.Path(file_okay=False),
        required=True,
        help="Directory to save the audio in.",
    )
    @click.option("--overwrite", is_flag=True, help="Replace files that exist.")
    @json_option
    @click.pass_context
    def download(
        ctx: click.Context, sources: tuple[str, ...], out_dir: str, overwrite: bool, as_json: bool
    ) -> None:
        """Download audio URLs, or the clips of finished tasks (by task id).

        A source that fails is reported on stderr, the others are still saved and printed,
        and the exit status is 1.
        """
        settings = settings_of(ctx, as_json)
        sources = tuple(dict.fromkeys(sources))  # a source given twice is fetched once
        for source in sources:
            scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", source)
            if scheme and scheme.group(1).lower() not in ("http", "https"):
                refuse(f"{source}: only http(s) URLs (or task ids) can be downloaded")
        target = output_dir(out_dir, settings)

        async def fetch(
            session: Session, progress: Progress, source: str, paths: list[Path]
        ) -> None:
            """Save ``source``, adding each file to ``paths`` as soon as it is saved (a task
            whose second clip fails still lists its first)."""
            if re.match(r"https?://", source, re.IGNORECASE):
                try:
                    path = await session.client.download(source, target, overwrite=overwrite)
                except FileExistsError as exc:
                    raise CommandFailed(exists_message(f"the file of {source}")) from exc
                except OSError as exc:
                    raise CommandFailed(
                        f"could not save {source} in {out_dir}: {exc.strerror or exc}"
                    ) from exc
                paths.append(path)
                return
            task = await session.client.sonic.get_task(source)
            if not task.is_terminal:
                raise CommandFailed(
                    f"task {source} is {task.status.value}, not finished: "
                    f"musicapi wait {source} -o {shlex.quote(out_dir)}"
                )
            check_tasks([task], progress)
            outcome = Results(tasks=[task])
            try:
                await _download_task(session, task, target, progress, outcome, overwrite)
            finally:
                paths.extend(outcome.paths.values())

        async def work(session: Session, progress: Progress) -> None:
            paths: list[Path] = []
            errors: dict[str, Exception] = {}
            for source in sources:
                try:
                    await fetch(session, progress, source, paths)
                except (MusicAPIError, CommandFailed, ValueError) as exc:
                    # ValueError: a source the SDK refuses (a malformed URL, a blank id).
                    errors[source] = exc
            if settings.json:
                failed = [{"source": s, "error": str(exc)} for s, exc in errors.items()]
                print(json.dumps({"paths": [str(p) for p in paths], "errors": failed}))
            else:
                for path in paths:
                    print(path)
            report_errors(errors, progress, sandbox=session.sandbox)
            if errors:
                raise Reported(EXIT_FAILURE)

        run_command(settings, work)

    @cli.command()
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option(
        "-o",
        "--output",
        "out_dir",
        type=click.Path(file_okay=False),
        required=True,
        help="Directory for the audio, results.jsonl and the batch's journal.",
    )
    @click.option(
        "--mv", default=DEFAULT_MODEL, show_default=True, help="Model id of lines naming none."
    )
    @click.option("--no-download", is_flag=True, help="Wait, but save no audio.")
    @click.option(
        "--resubmit-uncertain",
        is_flag=True,
        help="Create again the jobs whose create may have reached MusicAPI without an answer "
        "(check first: this may pay twice).",
    )
    @click.option(
        "--adopt",
        "adopt_pairs",
        multiple=True,
        metavar="JOB=TASK_ID",
        help="An uncertain job's task, found in the dashboard's history: recorded as that "
        "job's, then awaited and saved (nothing is created again). Repeatable.",
    )
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        callback=finite_seconds,
        help="Seconds to wait for each task once every create has gone out (plus the time to "
        "poll each task once); a task still running then is left for the next run.",
    )
    @json_option
    @click.pass_context
    def batch(
        ctx: click.Context,
        file: str,
        out_dir: str,
        mv: str,
        no_download: bool,
        resubmit_uncertain: bool,
        adopt_pairs: tuple[str, ...],
        timeout: float | None,
        as_json: bool,
    ) -> None:
        """Make one song per line of FILE (JSONL), wait for all, save them in -o DIR.

        Each line is a JSON object: {"prompt": "..."} (description mode) or
        {"lyrics": "...", "title": "...", "tags": "..."} (custom mode), plus any
        /sonic/create field and an optional "id". Every line is checked before anything
        is sent. DIR gets the audio, results.jsonl and a journal.

        Stopped by Ctrl-C, a crash or kill -9? Run the same command again: created tasks
        are awaited, never created twice, and saved files are kept. A create that may have
        reached MusicAPI without an answer is reported as uncertain and repeated only with
        --resubmit-uncertain.
        """
        from ._batch import (
            BatchConflictError,
            BatchInputError,
            BatchJournalError,
            read_batch_jobs,
            sent_job_ids,
            unsaved_job_ids,
        )

        settings = settings_of(ctx)
        # Every option that shapes the run, so that following the hint cannot change it.
        argv = [file, "-o", out_dir, "--mv", mv]
        argv += ["--no-download"] * no_download + ["--json"] * as_json
        argv += [] if timeout is None else ["--timeout", repr(timeout)]
        resume = batch_resume_command(ctx, argv)
        as_json = as_json or settings.json
        if not mv.strip():
            # Not every line's problem: the option's (an unset shell variable, say).
            refuse(
                f"--mv is empty ({mv!r}): give a model id (--mv {DEFAULT_MODEL}), or leave "
                f"--mv out for {DEFAULT_MODEL}; nothing was sent"
            )
        adopt: dict[str, str] = {}
        for pair in adopt_pairs:
            job_id, equals, task_id = pair.rpartition("=")
            if not equals or not job_id.strip() or not task_id.strip():
                refuse(f"--adopt {pair!r}: give JOB=TASK_ID (a job id of the file, a task id)")
            if adopt.setdefault(job_id, task_id.strip()) != task_id.strip():
                refuse(f"--adopt gives job {job_id!r} two tasks")
        try:
            jobs = read_batch_jobs(file, default_mv=mv)
        except (BatchInputError, OSError) as exc:
            refuse(exc if isinstance(exc, BatchInputError) else exc.strerror or exc)
        output_dir(out_dir, settings)
        if settings.sandbox:
            sent = sent_job_ids(out_dir)
            if sent:
                refuse(
                    f"{out_dir} holds {len(sent)} job(s) sent by an earlier run "
                    f"({' '.join(sent[:5])}{' ...' if len(sent) > 5 else ''}): a sandbox batch "
                    "cannot resume (the sandbox's tasks died with the previous run): use "
                    "another -o directory",
                )
            # Lines removed from the file too: the run would fetch their audio as well.
            unsaved = [] if no_download else unsaved_job_ids(out_dir)
            if unsaved:
                refuse(
                    f"{out_dir} holds {len(unsaved)} job(s) finished by an earlier run whose "
                    f"audio is not saved ({' '.join(unsaved[:5])}"
                    f"{' ...' if len(unsaved) > 5 else ''}): a sandbox batch cannot fetch it "
                    "(the sandbox's audio URLs died with the previous run): use another -o "
                    "directory"
                )
        tracker = BatchTracker()

        async def work(session: Session, progress: Progress) -> None:
            from ._batch import run_batch

            progress.noun = "job"
            options: dict[str, Any] = {} if timeout is None else {"wait_timeout": timeout}
            try:
                report = await run_batch(
                    session.client,
                    jobs,
                    Path(out_dir),
                    download=not no_download,
                    resubmit_uncertain=resubmit_uncertain,
                    adopt=adopt,
                    on_progress=lambda event: tracker.update(progress, event),
                    **options,
                )
            except BatchConflictError as exc:
                # Its text names the Python spelling of --mv too; the CLI needs only its own.
                text = re.sub(r" \(read_batch_jobs\([^()]*\)\)", "", str(exc))
                raise UsageProblem(text) from exc
            except OSError as exc:
                if isinstance(exc, BatchJournalError):
                    # It names the journal, and any task it could not keep (and the Python
                    # way to adopt it: the command's own is below).
                    text = re.sub(r",? or have the rerun follow it \(adopt=[^()]*\)", "", str(exc))
                    if exc.task is not None and not session.sandbox:
                        adopt_it = shlex.quote(f"{exc.job_id}={exc.task.task_id}")
                        text += (
                            f". Get that task's songs with: musicapi wait {exc.task.task_id} "
                            f"-o {shlex.quote(out_dir)}, or have the rerun await and save it: "
                            f"add --adopt {adopt_it} to the command below"
                        )
                else:
                    text = f"could not write in {out_dir}: {exc.strerror or exc}"
                raise CommandFailed(
                    f"{text}; the journal keeps every job it recorded: once that is fixed, "
                    f"resume with: {resume}"
                ) from exc
            print_batch(report, as_json=as_json)
            check_batch(report, progress, resume=resume, sandbox=session.sandbox)

        def interrupted(progress: Progress) -> None:
            running = tracker.running
            if running and settings.sandbox:
                progress.note(f"{SANDBOX_GONE}: " + " ".join(running))
                progress.note("musicapi: a sandbox batch cannot resume: use another -o directory")
                return
            if running:
                progress.note("musicapi: still running: " + " ".join(running))
            if progress.forced and tracker.submitting and not settings.sandbox:
                # A second Ctrl-C cut a create short: the journal marks its job uncertain.
                progress.note(
                    "musicapi: a job's create was cut short and may have reached MusicAPI: "
                    "the rerun reports it as uncertain and does not create it again",
                    "yellow",
                )
            progress.note(
                f"musicapi: the journal in {out_dir} keeps every job; resume with: {resume}"
            )

        def stopping(progress: Progress) -> None:
            if tracker.submitting and not settings.sandbox:
                progress.note(
                    "musicapi: stopping; a create request already on the wire is let finish, "
                    "so its task is not lost (Ctrl-C again to stop at once: that job is then "
                    "left uncertain)",
                    "yellow",
                )

        run_command(settings, work, on_interrupt=interrupted, on_ctrl_c=stopping)

    @cli.command()
    @json_option
    @click.pass_context
    def credits(ctx: click.Context, as_json: bool) -> None:
        """Print the account's credits (free)."""
        settings = settings_of(ctx, as_json)

        async def work(session: Session, progress: Progress) -> None:
            balance = await session.client.credits.get()
            if settings.json:
                fields = ("credits", "extra_credits", "total")
                print(json.dumps({name: getattr(balance, name) for name in fields}))
            else:
                print(f"credits\t{balance.credits:g}")
                print(f"extra_credits\t{balance.extra_credits:g}")
                print(f"total\t{balance.total:g}")

        run_command(settings, work)

    return cli


if __name__ == "__main__":
    main()
