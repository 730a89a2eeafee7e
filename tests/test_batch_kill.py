"""``musicapi batch`` killed with SIGKILL mid-run, then run again, against a served fake.

Real processes, real sockets, real time: the fake is served on loopback from a thread of
the test (so the test reads its request log directly), and the command runs as a
subprocess pointed at it with ``MUSICAPI_BASE_URL``. Also here: the served fake's audio,
which the batch downloads over loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

from musicapi_async import MusicAPI
from musicapi_async.testing import FakeMusicAPI, RequestRecord, ServedFake, serving

KEY = FakeMusicAPI.DEFAULT_KEY
JOBS = 8
JOURNAL = ".musicapi-batch.sqlite3"
#: Seconds a served Sonic task takes.
TASK_SECONDS = 2.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Real clocks: these tests talk over real sockets."""
    param: str = request.param
    return param


@pytest.mark.anyio
async def test_a_served_fake_serves_its_clips_audio_on_loopback(tmp_path: Path) -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=0.5, audio_seconds=0.25)
    with anyio.fail_after(30):
        async with serving(fake) as served:
            client = MusicAPI(
                KEY,
                base_url=served.base_url,
                limiter=None,
                min_poll_gap=0.2,
                expected_durations={"sonic": 0.5},
            )
            async with client:
                ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
                task = (await client.await_task(ref)).raise_for_status()
                origin = f"http://{served.host}:{served.port}/cdn/cdn1.suno.ai/"
                assert all(c.audio_url and c.audio_url.startswith(origin) for c in task.clips)
                paths = [await client.download(clip, tmp_path) for clip in task.clips]
    for path in paths:
        with wave.open(str(path), "rb") as audio:
            assert audio.getnframes() > 0
    assert sorted(d.clip_id or "" for d in fake.downloads) == sorted(
        c.clip_id or "" for c in task.clips
    )
    assert all(d.status == 200 for d in fake.downloads)
    # The request log keeps the fake's own answer; only the wire carries loopback URLs.
    poll = fake.requests_to("/sonic/task/*")[-1]
    assert poll.response["data"][0]["audio_url"].startswith("https://cdn1.suno.ai/")


# --- the kill -9 test ---------------------------------------------------------------------------


@contextmanager
def served_in_a_thread(fake: FakeMusicAPI) -> Iterator[tuple[ServedFake, Any]]:
    """Serve ``fake`` on loopback from an event loop in a thread; yield it and the portal."""
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(serving(fake)) as served,
    ):
        yield served, portal


def journal_states(journal: Path) -> dict[str, str]:
    """The job states the running command has committed (WAL: readers never block it)."""
    if not journal.exists():
        return {}
    with contextlib.closing(sqlite3.connect(journal, timeout=5.0)) as db:
        try:
            return dict(db.execute("SELECT id, state FROM jobs").fetchall())
        except sqlite3.OperationalError:  # the tables are not there yet
            return {}


def command(batch: Path, out: Path) -> list[str]:
    # 4 requests a second (the fake allows 5): creates 0.35 s apart, then the polls.
    musicapi = [sys.executable, "-m", "musicapi_async", "--rate", "1/0.25"]
    return [*musicapi, "batch", str(batch), "-o", str(out)]


def child_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICAPI_")}
    env.update(
        MUSICAPI_KEY=KEY,
        MUSICAPI_BASE_URL=base_url,
        MUSICAPI_EXPECTED_DURATION=str(TASK_SECONDS),
        MUSICAPI_MIN_POLL_GAP="0.5",
        NO_COLOR="1",
    )
    return env


def kill_when(
    batch: Path, out: Path, env: dict[str, str], ready: Callable[[Counter[str]], bool]
) -> dict[str, str]:
    """Run the batch, SIGKILL it once the journal's states satisfy ``ready``; return them.

    The child is stopped (SIGSTOP) while the test reads the journal, so what is read is
    what the kill leaves. A child caught with a create on the wire (``sending``) is let go
    and caught again a little later: that window is the one case a crash leaves uncertain,
    and this test is about every job completing.
    """
    log = out.parent / "stderr.txt"
    with open(log, "a") as stderr:
        child = subprocess.Popen(
            command(batch, out), stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert child.poll() is None, "it finished before it could be killed"
                if ready(Counter(journal_states(out / JOURNAL).values())):
                    child.send_signal(signal.SIGSTOP)
                    frozen = journal_states(out / JOURNAL)
                    if "sending" not in frozen.values():
                        child.kill()
                        stdout, _ = child.communicate(timeout=10)
                        assert child.returncode == -signal.SIGKILL
                        assert stdout == ""  # killed before printing results
                        return frozen
                    child.send_signal(signal.SIGCONT)
                time.sleep(0.02)
            raise AssertionError("the batch never reached the state to kill it in")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def creates(requests: tuple[RequestRecord, ...]) -> Counter[str]:
    """Tasks the server created, per prompt."""
    return Counter(
        r.json["gpt_description_prompt"]
        for r in requests
        if r.path == "/sonic/create" and r.task_ids
    )


def creating(states: Counter[str]) -> bool:
    """Some jobs created, some not sent yet."""
    made = sum(n for s, n in states.items() if s not in ("planned", "submitting", "sending"))
    return made >= 2 and states["planned"] + states["submitting"] >= 2


def downloading(states: Counter[str]) -> bool:
    """Every job created; some saved, some still running or being saved."""
    unsent = states["planned"] + states["submitting"] + states["sending"]
    return unsent == 0 and states["downloaded"] >= 1 and states["created"] + states["done"] >= 1


@pytest.mark.slow
def test_kill_9_mid_batch_then_rerun_creates_each_job_once_and_finishes(tmp_path: Path) -> None:
    """Killed while creating, then killed while downloading, then run to the end."""
    prompts = [f"song {i} for the kill test" for i in range(JOBS)]
    batch = tmp_path / "prompts.jsonl"
    batch.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    out = tmp_path / "out"
    fake = FakeMusicAPI(
        rate_limit=(1, 0.2),
        sonic_duration=TASK_SECONDS,
        clip_spread=0.5,
        audio_seconds=0.25,
    )
    started = time.monotonic()
    with served_in_a_thread(fake) as (served, portal):
        env = child_env(served.base_url)
        first = kill_when(batch, out, env, creating)
        killed_first = time.monotonic() - started
        second = kill_when(batch, out, env, downloading)
        killed_second = time.monotonic() - started
        before: tuple[RequestRecord, ...] = portal.call(lambda: fake.requests)
        downloads_before = portal.call(lambda: len(fake.downloads))
        last = subprocess.run(
            command(batch, out), capture_output=True, text=True, env=env, timeout=60, check=False
        )
        requests: tuple[RequestRecord, ...] = portal.call(lambda: fake.requests)
        downloads = portal.call(lambda: fake.downloads)
        tasks = portal.call(lambda: dict(fake.tasks))
    total = time.monotonic() - started
    print(
        f"killed at {killed_first:.1f} s {dict(Counter(first.values()))}, "
        f"at {killed_second:.1f} s {dict(Counter(second.values()))}; done at {total:.1f} s"
    )

    assert last.returncode == 0, last.stderr
    # The server saw each job created exactly once, over the three runs.
    assert creates(requests) == dict.fromkeys(prompts, 1)
    assert len(tasks) == JOBS

    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == JOBS
    # Only the creates that made a task: one refused with 429 (two processes' requests too
    # close together, a moment after a kill) carries no task_id, and was sent again.
    sent = {
        r.response["task_id"]: r.json for r in requests if r.path == "/sonic/create" and r.task_ids
    }
    for row in rows:
        assert row["state"] == "downloaded", row
        assert row["complete"] is True
        assert row["task_id"] in tasks
        assert sent[row["task_id"]]["gpt_description_prompt"] == prompts[row["line"] - 1]
        assert len(row["files"]) == 2
        for name in row["files"]:
            with wave.open(str(out / name), "rb") as audio:
                assert audio.getnframes() > 0
    assert len(last.stdout.splitlines()) == JOBS
    assert not [p for p in out.iterdir() if ".part-" in p.name]  # none left by the kills

    # What the second run finished was not redone: no poll of a task whose result it had
    # recorded, no new fetch of the audio it had saved.
    later = requests[len(before) :]
    finished = {row["task_id"] for row in rows if second[row["id"]] in ("done", "downloaded")}
    assert finished
    assert not [r for r in later if r.path.rpartition("/")[2] in finished]
    saved = {
        c["clip_id"] for row in rows if second[row["id"]] == "downloaded" for c in row["clips"]
    }
    assert saved
    assert not [d for d in downloads[downloads_before:] if d.clip_id in saved]
    fetched = Counter(d.clip_id for d in downloads if d.status == 200)
    assert set(fetched) == {c["clip_id"] for row in rows for c in row["clips"]}


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_prints_the_running_tasks_and_a_rerun_resumes(
    tmp_path: Path,
) -> None:
    prompts = [f"song {i} for the ctrl-c test" for i in range(5)]
    batch = tmp_path / "prompts.jsonl"
    batch.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    out = tmp_path / "out"
    fake = FakeMusicAPI(rate_limit=(1, 0.2), sonic_duration=3.0, audio_seconds=0.25)
    # The child restores Python's SIGINT handler, which a shell may have set to ignore.
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from musicapi_async._cli import main; main(sys.argv[1:])"
    )
    with served_in_a_thread(fake) as (served, portal):
        env = child_env(served.base_url)
        child = subprocess.Popen(
            [sys.executable, "-c", code, *command(batch, out)[3:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while not creating(Counter(journal_states(out / JOURNAL).values())):
                assert child.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.02)
            child.send_signal(signal.SIGINT)
            stdout, stderr = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 130, stderr
        states = journal_states(out / JOURNAL)
        created_ids = portal.call(lambda: list(fake.tasks))
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        rerun = subprocess.run(
            command(batch, out), capture_output=True, text=True, env=env, timeout=60, check=False
        )
        requests: tuple[RequestRecord, ...] = portal.call(lambda: fake.requests)

    assert stdout == ""
    assert "interrupted" in stderr
    assert set(states.values()) <= {"planned", "created"}, states  # nothing left in between
    assert "created" in states.values()
    assert "planned" in states.values()
    [running] = [line for line in stderr.splitlines() if "still running:" in line]
    assert set(running.split(":", 2)[2].split()) == set(created_ids)
    # The hint is the command that was run (the rerun below runs just that), quoted.
    hint = shlex.join(["musicapi", *command(batch, out)[3:], "--mv", "sonic-v5"])
    assert f"resume with: {hint}\n" in stderr
    assert {row["id"]: row["state"] for row in rows} == states  # written at the interruption

    assert rerun.returncode == 0, rerun.stderr
    assert creates(requests) == dict.fromkeys(prompts, 1)
