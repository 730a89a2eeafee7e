"""Every code block of README.md runs, against ``FakeMusicAPI``, in virtual time.

The rules (also stated in the README's Development section):

* A ```` ```python ```` block runs as a script (``__name__ == "__main__"``) in a fresh
  namespace and an empty working directory, with no key and no network: ``MUSICAPI_KEY``
  holds the fake's key and every ``MusicAPI`` it builds without an ``http_client`` talks
  to a ``FakeMusicAPI`` (``musicapi_async.testing.use_fake``). ``anyio.run`` runs on the
  test's backend, asyncio and trio, in virtual time (trio's ``MockClock``, the virtual
  asyncio loop of ``tests/_virtual_time.py``), time going on from one call to the next, so
  a two-minute generation takes no real time. Functions named ``test_*`` that the block
  defines are then run, as pytest would. The block must not raise.
* An HTML comment on the line right before the fence changes that:
  ``<!-- readme-test: check NAME -->`` (the block defines an app; ``CHECKS[NAME]`` in
  ``tests/test_recipes.py`` then drives it), ``<!-- readme-test: continues -->`` (runs
  after the previous python block, in its namespace) and ``<!-- readme-test: skip REASON -->``
  (not run; for what truly cannot run here).
* A ```` ```console ```` (or bash, sh, shell) block is a list of commands, one per line,
  ``#`` comments ignored, ``a && b`` run in turn. ``musicapi ...`` runs in process (click's
  test runner) with the same fake and virtual time and must exit 0, writing audio where its
  ``-o`` says; ``<task-id>``, ``<clip-id>`` and ``<audio-url-or-task-id>`` stand for the
  fake's latest task and its first clip, and its directory holds ``song.txt`` (lyrics) and
  ``prompts.jsonl`` (the README's example batch file, its text block of JSON lines).
  ``python -m musicapi_async.testing serve`` is started (on a free port instead of the one
  shown) and must answer. ``export NAME=VALUE`` sets a variable (``MUSICAPI_KEY`` keeps the
  fake's key). ``pip install ...`` is not run here: ``tests/test_setup_commands.py`` runs
  the README's first command in a clean clone, and CI runs the second. ``python -m pytest``,
  ``ruff ...`` and ``mypy`` must be commands that ``.ci/run`` runs. Any other command fails
  the test until the harness learns it.
* Other languages fail, except data (``json``, ``text``), which is not run; so does a fence
  without a language, and an unknown marker.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import subprocess
import sys
import threading
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner
from trio.testing import MockClock

from musicapi_async._cli import build_cli
from musicapi_async.testing import FakeMusicAPI, use_fake
from tests._virtual_time import VirtualTimeEventLoop
from tests.test_recipes import CHECKS, Check, Ran

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_SCRIPT = ROOT / ".ci" / "run"

PYTHON = "python"
SHELLS = frozenset({"console", "bash", "sh", "shell"})
INERT = frozenset({"json", "text"})
MARKERS = frozenset({"check", "continues", "skip"})
BACKENDS = ("asyncio", "trio")

FENCE = re.compile(r"^```(.*)$")
MARKER = re.compile(r"^<!--\s*readme-test:\s*(\S+)\s*(.*?)\s*-->\s*$")
HEADING = re.compile(r"^#{1,6}\s+(.*)$")
PLACEHOLDER = re.compile(r"^<([a-z-]+)>(\.\.\.)?$")

#: What a lyrics file named in a command holds (``--lyrics song.txt``).
LYRICS = "[Verse]\nRate limits in the morning light\n[Chorus]\nOne request every three\n"

REAL_ANYIO_RUN = anyio.run


def _example_jobs() -> str:
    """The README's example batch file: its ``text`` block of JSON lines (``prompts.jsonl``)."""
    text = README.read_text(encoding="utf-8")
    for match in re.finditer(r"^```text\n(.*?)^```", text, re.M | re.S):
        lines = match.group(1).splitlines()
        try:
            if lines and all(isinstance(json.loads(line), dict) for line in lines):
                return match.group(1)
        except ValueError:
            continue
    raise AssertionError("README.md has no example batch file (a text block of JSON lines)")


#: What a batch file named in a command holds (``musicapi batch prompts.jsonl``).
PROMPTS = _example_jobs()


@dataclass(frozen=True)
class Block:
    """A fenced code block of the README."""

    lang: str
    #: 1-based line of the opening fence.
    line: int
    section: str
    code: str
    marker: str | None = None
    argument: str = ""

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")
        return f"L{self.line}-{slug}"


def parse_readme(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    section = "top"
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence is None:
            heading = HEADING.match(line)
            if heading:
                section = heading.group(1).strip("` ")
            index += 1
            continue
        start = index
        end = start + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"README.md:{start + 1}: the code fence is never closed")
        marker = MARKER.match(lines[start - 1]) if start else None
        blocks.append(
            Block(
                lang=fence.group(1).strip(),
                line=start + 1,
                section=section,
                code="\n".join(lines[start + 1 : end]) + "\n",
                marker=marker.group(1) if marker else None,
                argument=marker.group(2) if marker else "",
            )
        )
        index = end + 1
    return blocks


BLOCKS = parse_readme(README.read_text(encoding="utf-8"))


def cases() -> Iterator[Any]:
    for block in BLOCKS:
        if block.lang not in SHELLS and block.lang != PYTHON:
            continue
        check = CHECKS.get(block.argument) if block.marker == "check" else None
        for backend in check.backends if check else BACKENDS:
            yield pytest.param(block, backend, id=f"{block.id}-{backend}")


# --- the harness --------------------------------------------------------------------------------


class VirtualTime:
    """``anyio.run`` for README blocks: the test's backend, in virtual time.

    The clock goes on from one call to the next (a script may call ``anyio.run`` several
    times, and the fake's tasks must not see time run backwards).
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._clock = MockClock(autojump_threshold=0)
        self._asyncio_now = 0.0

    def run(
        self,
        func: Callable[..., Any],
        *args: Any,
        backend: str | None = None,
        backend_options: dict[str, Any] | None = None,
    ) -> Any:
        if self.backend == "trio":
            return REAL_ANYIO_RUN(
                func, *args, backend="trio", backend_options={"clock": self._clock}
            )
        loops: list[VirtualTimeEventLoop] = []

        def new_loop() -> VirtualTimeEventLoop:
            loop = VirtualTimeEventLoop()
            loop._virtual_now = self._asyncio_now
            loops.append(loop)
            return loop

        try:
            return REAL_ANYIO_RUN(
                func, *args, backend="asyncio", backend_options={"loop_factory": new_loop}
            )
        finally:
            if loops:
                self._asyncio_now = loops[-1].time()


@dataclass
class Harness:
    fake: FakeMusicAPI
    time: VirtualTime
    workdir: Path
    monkeypatch: pytest.MonkeyPatch


@pytest.fixture
def harness_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, Check | None], Harness]:
    def make(backend: str, check: Check | None) -> Harness:
        fake = FakeMusicAPI(**(check.fake_options if check else {}))
        monkeypatch.setenv("MUSICAPI_KEY", FakeMusicAPI.DEFAULT_KEY)
        for name, value in (check.env if check else {}).items():
            monkeypatch.setenv(name, value)
        for name in (
            "MUSICAPI_BASE_URL",
            "MUSICAPI_SANDBOX",
            "MUSICAPI_SANDBOX_OUTCOME",
            "MUSICAPI_SANDBOX_DURATION",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(tmp_path)
        time = VirtualTime(backend)
        monkeypatch.setattr(anyio, "run", time.run)
        return Harness(fake, time, tmp_path, monkeypatch)

    return make


def run_python(block: Block, harness: Harness, namespace: dict[str, Any]) -> None:
    # Padded so that tracebacks point at README lines.
    source = "\n" * block.line + block.code
    exec(compile(source, str(README), "exec"), namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and inspect.isfunction(value):
            if inspect.iscoroutinefunction(value):
                harness.time.run(value)
            else:
                value()


def chain(block: Block) -> list[Block]:
    """The block, after the python blocks it continues."""
    python = [b for b in BLOCKS if b.lang == PYTHON]
    position = python.index(block)
    start = position
    while python[start].marker == "continues":
        assert start > 0, f"README.md:{block.line}: nothing to continue"
        start -= 1
    return python[start : position + 1]


# --- console commands ---------------------------------------------------------------------------


def commands(code: str) -> Iterator[list[str]]:
    """Each command of a console block as argv, ``a && b`` split, comments dropped."""
    for line in code.replace("\\\n", " ").splitlines():
        for segment in line.split(" && "):
            argv = shlex.split(segment, comments=True)
            if argv:
                yield argv


def fill_placeholders(argv: list[str], fake: FakeMusicAPI) -> list[str]:
    filled = []
    for arg in argv:
        placeholder = PLACEHOLDER.match(arg)
        if placeholder is None:
            filled.append(arg)
            continue
        name = placeholder.group(1)
        assert fake.tasks, f"{arg} in a command, but no task was created before it"
        task = fake.last_task
        values = {
            "task-id": task.task_id,
            "audio-url-or-task-id": task.task_id,
            "clip-id": task.clip_ids[0] if task.clip_ids else "",
        }
        assert values.get(name), f"the harness does not know what {arg} stands for"
        filled.append(values[name])
    return filled


def run_musicapi(argv: list[str], harness: Harness) -> None:
    args = fill_placeholders(argv[1:], harness.fake)
    # Each line of a list of commands is an example of its own, in a directory of its own
    # (`musicapi download` of a task a previous line saved refuses to overwrite its files).
    workdir = harness.workdir / f"command-{len(list(harness.workdir.iterdir()))}"
    workdir.mkdir()
    (workdir / "song.txt").write_text(LYRICS, encoding="utf-8")
    (workdir / "prompts.jsonl").write_text(PROMPTS, encoding="utf-8")
    harness.monkeypatch.chdir(workdir)
    result = CliRunner().invoke(build_cli(), args, catch_exceptions=False)
    shown = f"musicapi {shlex.join(args)}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.exit_code == 0, shown
    if "--sandbox" in args:
        assert "SANDBOX" in result.stderr, shown
    if "-o" in args and "--no-wait" not in args:
        out = workdir / args[args.index("-o") + 1]
        songs = sorted(out.glob("*.wav"))
        assert songs, shown
        for song in songs:
            with wave.open(str(song), "rb") as audio:
                assert audio.getnframes() > 0


def run_fake_server(argv: list[str]) -> None:
    """Start ``python -m musicapi_async.testing serve ...`` on a free port; it must answer."""
    args = list(argv[1:])
    if "--port" in args:
        args[args.index("--port") + 1] = "0"  # never collide with whatever uses the port shown
    with subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as server:
        watchdog = threading.Timer(30, server.kill)  # a server that never prints must not hang
        watchdog.start()
        try:
            assert server.stdout is not None
            first, second = server.stdout.readline(), server.stdout.readline()
            assert first.startswith("base_url: "), (first, server.stderr)
            base_url = first.removeprefix("base_url: ").strip()
            key = second.removeprefix("api_key: ").strip()
            answer = httpx.get(
                f"{base_url}/get-credits", headers={"Authorization": f"Bearer {key}"}, timeout=10
            )
            assert answer.status_code == 200, answer.text
        finally:
            server.terminate()
            watchdog.cancel()
        assert server.wait(timeout=10) == 0


def run_console(block: Block, harness: Harness) -> None:
    ci_script = CI_SCRIPT.read_text(encoding="utf-8")
    for argv in commands(block.code):
        command = shlex.join(argv)
        if argv[0] == "pip":
            continue  # tests/test_setup_commands.py and CI install from a clean checkout
        if argv[0] == "export":
            name, _, value = argv[1].partition("=")
            if name != "MUSICAPI_KEY":  # a placeholder in the README: keep the fake's key
                harness.monkeypatch.setenv(name, value)
        elif argv[0] == "musicapi":
            run_musicapi(argv, harness)
        elif argv[:4] == ["python", "-m", "musicapi_async.testing", "serve"]:
            run_fake_server(argv)
        elif argv[:3] == ["python", "-m", "pytest"] or argv[0] in ("ruff", "mypy"):
            assert re.search(rf"^\s*{re.escape(command)}\s*$", ci_script, re.M), (
                f"README.md:{block.line}: `{command}` is not a command .ci/run runs"
            )
        else:
            raise AssertionError(
                f"README.md:{block.line}: the harness does not know how to run `{command}`: "
                "teach tests/test_readme.py, or mark the block"
            )


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("block", "backend"), list(cases()))
def test_readme_block_runs(
    block: Block,
    backend: str,
    harness_factory: Callable[[str, Check | None], Harness],
    capsys: pytest.CaptureFixture[str],
) -> None:
    if block.marker == "skip":
        pytest.skip(f"README.md:{block.line}: {block.argument}")
    check = CHECKS[block.argument] if block.marker == "check" else None
    harness = harness_factory(backend, check)
    with use_fake(harness.fake):
        if block.lang in SHELLS:
            run_console(block, harness)
            return
        namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(README)}
        for part in chain(block):
            run_python(part, harness, namespace)
        if check is not None:
            output = capsys.readouterr().out
            check.drive(Ran(namespace, harness.fake, output, harness.time.run, backend))


def test_no_python_block_is_left_out() -> None:
    """Every fence opening python code in the README is one the harness runs."""
    text = README.read_text(encoding="utf-8")
    fences = re.findall(r"^```[ \t]*(?:py|python|python3|pycon|ipython)\b", text, re.M | re.I)
    python = [block for block in BLOCKS if block.lang == PYTHON]
    assert len(fences) == len(python) > 0
    run = [case for case in cases() if case.values[0].lang == PYTHON]
    assert {case.values[0] for case in run} == set(python)


def test_every_block_has_a_language_the_harness_knows() -> None:
    unknown = [
        f"README.md:{b.line}: ```{b.lang}"
        for b in BLOCKS
        if b.lang not in SHELLS | INERT | {PYTHON}
    ]
    assert not unknown, "name the language (python, console, json, text) of: " + str(unknown)


def test_markers_are_known_and_every_check_is_used() -> None:
    text = README.read_text(encoding="utf-8")
    markers = re.findall(r"^<!--[ \t]*readme-test:[ \t]*(\S+)[ \t]*(.*?)[ \t]*-->", text, re.M)
    attached = [(b.marker, b.argument) for b in BLOCKS if b.marker]
    assert sorted(markers) == sorted(attached), "a marker must be right before a fence"
    assert {marker for marker, _ in markers} <= MARKERS
    checks = [argument for marker, argument in markers if marker == "check"]
    assert sorted(checks) == sorted(CHECKS), "each check in tests/test_recipes.py drives a block"
    for block in BLOCKS:
        if block.marker == "skip":
            assert block.argument, f"README.md:{block.line}: say why the block is skipped"
        if block.marker is not None:
            assert block.lang == PYTHON or block.marker == "skip", block.id


def test_the_harness_reports_a_failing_block(
    harness_factory: Callable[[str, Check | None], Harness],
) -> None:
    """A block that raises fails its test (the harness cannot swallow an error)."""
    code = "import anyio\n\nasync def main() -> None:\n    raise LookupError('in the block')\n"
    block = Block(PYTHON, 1, "x", code + "\nanyio.run(main)\n")
    harness = harness_factory("trio", None)
    with pytest.raises(LookupError, match="in the block"):
        run_python(block, harness, {"__name__": "__main__"})


def test_test_functions_a_block_defines_are_run(
    harness_factory: Callable[[str, Check | None], Harness],
) -> None:
    code = "async def test_pipeline() -> None:\n    assert 1 + 1 == 3, 'a failing example'\n"
    harness = harness_factory("asyncio", None)
    with pytest.raises(AssertionError, match="a failing example"):
        run_python(Block(PYTHON, 1, "x", code), harness, {"__name__": "__main__"})


def test_a_command_the_harness_does_not_know_fails(
    harness_factory: Callable[[str, Check | None], Harness],
) -> None:
    harness = harness_factory("trio", None)
    with pytest.raises(AssertionError, match="does not know how to run `curl"):
        run_console(Block("console", 1, "x", "curl https://example.com\n"), harness)
    with pytest.raises(AssertionError, match=r"not a command \.ci/run runs"):
        run_console(Block("console", 1, "x", "python -m pytest -x\n"), harness)


def test_a_failing_command_fails(harness_factory: Callable[[str, Check | None], Harness]) -> None:
    harness = harness_factory("trio", None)
    with use_fake(harness.fake), pytest.raises(AssertionError, match="exit_code"):
        run_console(Block("console", 1, "x", "musicapi status no-such-task\n"), harness)
