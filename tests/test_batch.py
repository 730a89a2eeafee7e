"""Resumable batches (``run_batch``): journal states, resuming, uncertain creates, inputs.

Every test runs on asyncio and trio in virtual time against the in-process fake. A crash is
simulated by a ``Crash`` (a ``BaseException``, like the death of the process: nothing in the
SDK catches it) raised from a progress callback or from a transport wrapped around the
fake's, which leaves the journal exactly as a ``kill -9`` at that point would; a new client
(a new process) then runs the same batch again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import wave
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from musicapi_async import MusicAPI, Priority, SonicCreate, TokenBucket
from musicapi_async._batch import (
    BATCH_JOURNAL,
    BATCH_RESULTS,
    BatchConflictError,
    BatchEvent,
    BatchInputError,
    BatchJob,
    BatchJobState,
    BatchJournalError,
    BatchReport,
    read_batch_jobs,
    run_batch,
    sent_job_ids,
)
from musicapi_async.testing import FakeMusicAPI
from tests._full_disk import full_disk, no_room_for_a_journal

pytestmark = pytest.mark.anyio

S = BatchJobState
DURATION = 30.0


class Crash(BaseException):
    """The process dies here (nothing catches a BaseException that is not a cancellation)."""


def make_fake(**kwargs: Any) -> FakeMusicAPI:
    kwargs.setdefault("sonic_duration", DURATION)
    kwargs.setdefault("audio_seconds", 0.5)  # short audio: synthesising it is quick
    return FakeMusicAPI(**kwargs)


def client_of(fake: FakeMusicAPI, transport: httpx.AsyncBaseTransport | None = None) -> MusicAPI:
    """A new client (a new process, as far as the batch can tell)."""
    http = httpx.AsyncClient(transport=transport or fake.transport())
    return fake.client(http_client=http, expected_durations={"sonic": DURATION})


def jobs_of(*prompts: str) -> list[SonicCreate]:
    return [SonicCreate(mv="sonic-v5", gpt_description_prompt=p) for p in prompts]


async def run(
    fake: FakeMusicAPI,
    jobs: list[Any],
    out: Path,
    transport: httpx.AsyncBaseTransport | None = None,
    **kwargs: Any,
) -> BatchReport:
    async with client_of(fake, transport) as client:
        return await run_batch(client, jobs, out, **kwargs)


async def crash_run(
    fake: FakeMusicAPI,
    jobs: list[Any],
    out: Path,
    transport: httpx.AsyncBaseTransport | None = None,
    **kwargs: Any,
) -> None:
    """Run until something raises Crash; check that it did."""
    with pytest.RaisesGroup(Crash, allow_unwrapped=True, flatten_subgroups=True):
        await run(fake, jobs, out, transport, **kwargs)


def crash_at(job_index: int, state: str, jobs: list[SonicCreate]) -> Callable[[BatchEvent], None]:
    """An on_progress callback that dies when the job reaches ``state``."""
    wanted = derived_id(jobs, job_index)

    def callback(event: BatchEvent) -> None:
        if event.job_id == wanted and event.state == state:
            raise Crash

    return callback


def derived_id(jobs: list[SonicCreate], index: int) -> str:
    return ids_of(jobs)[index]


def ids_of(jobs: list[SonicCreate]) -> list[str]:
    """The ids run_batch gives bare SonicCreate jobs (derived from their content)."""
    from musicapi_async._batch import _as_jobs

    return [job.job_id for job in _as_jobs(jobs)]


def creates_by_prompt(fake: FakeMusicAPI) -> Counter[str]:
    """How many tasks the server created, per prompt (a 429 created none)."""
    return Counter(
        r.json["gpt_description_prompt"]
        for r in fake.requests_to("/sonic/create", method="POST")
        if r.task_ids
    )


def journal_states(out: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(out / BATCH_JOURNAL)) as db, db:
        return dict(db.execute("SELECT id, state FROM jobs").fetchall())


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / BATCH_RESULTS).read_text().splitlines()]


def listing(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def contents(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in listing(directory)}


def assert_wav(path: Path) -> None:
    with wave.open(str(path), "rb") as audio:
        assert audio.getnframes() > 0


def assert_complete(report: BatchReport, fake: FakeMusicAPI) -> None:
    assert report.complete, [(j.job_id, j.state, j.error) for j in report.jobs]
    for job in report.jobs:
        assert job.state is S.DOWNLOADED
        assert job.task_id in fake.tasks
        assert len(job.files) == 2
        for path in job.files:
            assert_wav(path)


class CrashingTransport(httpx.AsyncBaseTransport):
    """The fake's transport, with the process dying around the n-th matching request."""

    def __init__(
        self,
        fake: FakeMusicAPI,
        *,
        method: str,
        path_part: str,
        nth: int,
        after_server: bool,
    ) -> None:
        self._inner = fake.transport()
        self._method, self._part, self._nth = method, path_part, nth
        self._after = after_server
        self._seen = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == self._method and self._part in str(request.url):
            self._seen += 1
            if self._seen == self._nth:
                if self._after:
                    await self._inner.handle_async_request(request)  # the server acts
                raise Crash
        return await self._inner.handle_async_request(request)


# --- the happy path ---------------------------------------------------------------------------


async def test_a_batch_creates_each_job_once_waits_downloads_and_writes_results(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("lofi", "surf rock", "sea shanty")
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"lofi": 1, "surf rock": 1, "sea shanty": 1}
    assert fake.rate_limited() == 0
    rows = results(tmp_path)
    assert [r["id"] for r in rows] == [j.job_id for j in report.jobs]
    for row, job in zip(rows, report.jobs, strict=True):
        assert row["state"] == "downloaded"
        assert row["complete"] is True
        assert row["task_id"] == job.task_id
        assert row["status"] == "succeeded"
        assert sorted(row["files"]) == sorted(p.name for p in job.files)
        assert {c["file"] for c in row["clips"]} == set(row["files"])
        assert row["error"] is None
    # Only the audio, the results and the (hidden) journal and lock: no temporary files.
    visible = {p.name for p in listing(tmp_path) if not p.name.startswith(".")}
    assert visible == {BATCH_RESULTS} | {p.name for j in report.jobs for p in j.files}


async def test_creates_go_first_in_input_order_and_the_key_draws_no_429(tmp_path: Path) -> None:
    fake = make_fake(rate_limit_rule="strict")
    jobs = jobs_of(*(f"song {i}" for i in range(6)))
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    created = [r.json["gpt_description_prompt"] for r in fake.requests_to("/sonic/create")]
    assert created == [f"song {i}" for i in range(6)]
    assert fake.rate_limited() == 0


async def test_rerunning_a_finished_batch_sends_and_downloads_nothing(tmp_path: Path) -> None:
    fake = make_fake()
    jobs = jobs_of("lofi", "surf rock")
    first = await run(fake, jobs, tmp_path)
    requests, downloads = len(fake.requests), len(fake.downloads)
    again = await run(fake, jobs, tmp_path)
    assert again.complete
    assert len(fake.requests) == requests
    assert len(fake.downloads) == downloads
    assert [j.files for j in again.jobs] == [j.files for j in first.jobs]


async def test_progress_events_follow_a_job_through_its_states(tmp_path: Path) -> None:
    fake = make_fake(not_ready_style="200", initial_not_ready=0.0)
    seen: list[BatchEvent] = []

    async def on_progress(event: BatchEvent) -> None:  # a coroutine function is awaited
        seen.append(event)

    report = await run(fake, jobs_of("lofi"), tmp_path, on_progress=on_progress)
    states = [e.state for e in seen]
    assert states[:3] == ["planned", "submitting", "created"]
    assert states[-3:] == ["done", "downloading", "downloaded"]
    assert {e.task_id for e in seen[2:]} == {report.jobs[0].task_id}
    running = [e for e in seen if e.state in ("pending", "running", "streaming")]
    assert running, states  # the 200 style shows the task on its way
    assert running[0].elapsed is not None
    assert 0 < running[0].elapsed < DURATION


async def test_without_download_a_done_job_is_complete_and_a_later_run_downloads(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("lofi")
    report = await run(fake, jobs, tmp_path, download=False)
    assert report.complete
    assert report.jobs[0].state is S.DONE
    assert not report.jobs[0].files
    assert not fake.downloads
    polls = len(fake.requests_to("/sonic/task/*"))
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert len(fake.requests_to("/sonic/task/*")) == polls  # the result came from the journal


# --- resuming after a crash at each journal state -------------------------------------------


async def test_a_crash_before_the_create_left_resumes_by_creating_it(tmp_path: Path) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b", "c")
    await crash_run(fake, jobs, tmp_path, on_progress=crash_at(1, "submitting", jobs))
    assert journal_states(tmp_path)[derived_id(jobs, 1)] == "submitting"
    assert creates_by_prompt(fake) == {"a": 1}
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1, "c": 1}


async def test_a_crash_after_the_server_created_the_task_leaves_the_job_uncertain(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b", "c")
    dying = CrashingTransport(
        fake, method="POST", path_part="/sonic/create", nth=2, after_server=True
    )
    await crash_run(fake, jobs, tmp_path, dying)
    assert journal_states(tmp_path)[derived_id(jobs, 1)] == "sending"
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}  # the server did create "b"

    report = await run(fake, jobs, tmp_path)
    assert not report.complete
    [uncertain] = report.by_state(S.UNCERTAIN)
    assert uncertain.job_id == derived_id(jobs, 1)
    assert uncertain.task_id is None
    assert "may have created the task" in (uncertain.error or "")
    assert creates_by_prompt(fake) == {"a": 1, "b": 1, "c": 1}  # "b" not created twice
    assert [j.state for j in report.jobs] == [S.DOWNLOADED, S.UNCERTAIN, S.DOWNLOADED]
    assert results(tmp_path)[1]["state"] == "uncertain"

    again = await run(fake, jobs, tmp_path)  # still not created without being asked
    assert again.by_state(S.UNCERTAIN)
    assert creates_by_prompt(fake)["b"] == 1

    report = await run(fake, jobs, tmp_path, resubmit_uncertain=True)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 2, "c": 1}  # as documented: maybe twice
    assert report.jobs[1].attempts == 2


async def test_a_crash_while_the_request_was_leaving_is_uncertain_too(tmp_path: Path) -> None:
    """The hook fired but the server never saw it: the SDK cannot tell, so it does not guess."""
    fake = make_fake()
    jobs = jobs_of("a", "b")
    dying = CrashingTransport(
        fake, method="POST", path_part="/sonic/create", nth=1, after_server=False
    )
    await crash_run(fake, jobs, tmp_path, dying)
    assert not fake.requests
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.UNCERTAIN, S.DOWNLOADED]
    report = await run(fake, jobs, tmp_path, resubmit_uncertain=True)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}


async def test_a_crash_after_created_awaits_the_task_without_creating_it_again(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b", "c")
    await crash_run(fake, jobs, tmp_path, on_progress=crash_at(1, "created", jobs))
    states = journal_states(tmp_path)
    assert states[derived_id(jobs, 1)] == "created"
    assert states[derived_id(jobs, 2)] == "planned"
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1, "c": 1}


async def test_a_crash_after_the_result_does_not_poll_the_finished_task_again(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b")
    await crash_run(fake, jobs, tmp_path, on_progress=crash_at(0, "downloading", jobs))
    assert journal_states(tmp_path)[derived_id(jobs, 0)] == "done"
    task_id = fake.requests_to("/sonic/create")[0].response["task_id"]
    polls = len(fake.requests_to(f"/sonic/task/{task_id}"))
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert len(fake.requests_to(f"/sonic/task/{task_id}")) == polls
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}


async def crash_after_the_first_clip(tmp_path: Path) -> tuple[FakeMusicAPI, list[SonicCreate]]:
    """A one-job batch that dies fetching its second clip, the first one saved."""
    fake = make_fake()
    jobs = jobs_of("a")
    dying = CrashingTransport(
        fake, method="GET", path_part="cdn1.suno.ai", nth=2, after_server=False
    )
    await crash_run(fake, jobs, tmp_path, dying)
    return fake, jobs


async def test_a_crash_mid_download_keeps_the_saved_file_and_fetches_only_the_rest(
    tmp_path: Path,
) -> None:
    fake, jobs = await crash_after_the_first_clip(tmp_path)
    assert journal_states(tmp_path)[derived_id(jobs, 0)] == "done"
    saved = [p for p in listing(tmp_path) if p.suffix == ".wav"]
    assert len(saved) == 1  # the first clip was saved (atomically) before the crash
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    fetched = Counter(d.clip_id for d in fake.downloads)
    assert sorted(fetched.values()) == [1, 1]  # each clip fetched once over both runs
    assert saved[0] in report.jobs[0].files
    assert not [p for p in listing(tmp_path) if ".part-" in p.name]


async def test_only_an_audio_file_named_after_a_clip_counts_as_its_saved_audio(
    tmp_path: Path,
) -> None:
    fake, jobs = await crash_after_the_first_clip(tmp_path)
    (task,) = fake.tasks.values()
    saved = [p for p in listing(tmp_path) if p.suffix == ".wav"]
    unsaved = next(c for c in task.clip_ids if not any(c in p.name for p in saved))
    note = tmp_path / f"notes - {unsaved}.txt"  # a file of the user's, named after the clip
    note.write_text("my notes", encoding="utf-8")
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert sorted(Counter(d.clip_id for d in fake.downloads).values()) == [1, 1]
    assert note not in report.jobs[0].files
    assert note.read_text(encoding="utf-8") == "my notes"


async def test_a_deleted_file_is_downloaded_again(tmp_path: Path) -> None:
    fake = make_fake()
    jobs = jobs_of("a")
    report = await run(fake, jobs, tmp_path)
    gone = report.jobs[0].files[0]
    gone.unlink()
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert gone.exists()
    assert len(fake.downloads) == 3


# --- create errors: uncertain, certainly not created, refused ----------------------------------


async def test_a_read_timeout_on_create_is_uncertain_and_the_others_go_on(tmp_path: Path) -> None:
    fake = make_fake()
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)
    jobs = jobs_of("a", "b")
    seen: list[BatchEvent] = []
    report = await run(fake, jobs, tmp_path, on_progress=seen.append)
    assert [j.state for j in report.jobs] == [S.UNCERTAIN, S.DOWNLOADED]
    assert "task_may_exist" not in (report.jobs[0].error or "")
    assert "may already have started the task" in (report.jobs[0].error or "")
    assert any(e.state == "uncertain" for e in seen)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}
    assert report.stopped is None
    report = await run(fake, jobs, tmp_path, resubmit_uncertain=True)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 2, "b": 1}


async def test_errors_that_prove_nothing_was_created_stop_submitting_and_resume_later(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b", "c")
    fake.set_credits(credits=20)  # one create (15 credits), then "not enough"
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.DOWNLOADED, S.PLANNED, S.PLANNED]
    assert report.stopped is not None
    assert "not enough" in report.stopped
    assert len(fake.requests_to("/sonic/create")) == 2  # "c" was not even tried
    fake.set_credits(credits=1000)
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1, "c": 1}


async def test_a_credits_error_sent_with_200_stops_submitting_rather_than_call_it_uncertain(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b")
    message = "The remaining credits are not enough."
    fake.inject("/sonic/create", status=200, body={"code": 403, "message": message})
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.PLANNED, S.PLANNED]
    assert message in (report.stopped or "")


class FailsOnSecondCreate:
    """A limiter backend that is down from the second user request on (a store outage)."""

    def __init__(self) -> None:
        self.inner = TokenBucket()
        self.user_calls = 0

    async def acquire(self, priority: Priority = Priority.USER) -> None:
        if priority is Priority.USER:
            self.user_calls += 1
            if self.user_calls >= 2:
                raise ConnectionError("limiter store down")
        await self.inner.acquire(priority)

    def on_rate_limited(self, retry_after: float | None) -> None:
        self.inner.on_rate_limited(retry_after)


async def test_a_limiter_down_stops_submitting_and_the_created_jobs_are_still_awaited(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b", "c")
    client = fake.client(limiter=FailsOnSecondCreate(), expected_durations={"sonic": DURATION})
    async with client:
        report = await run_batch(client, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.DOWNLOADED, S.PLANNED, S.PLANNED]
    assert "limiter store down" in (report.stopped or "")
    assert creates_by_prompt(fake) == {"a": 1}
    report = await run(fake, jobs, tmp_path)  # the store is back: the rest goes
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1, "c": 1}


async def test_a_403_about_the_account_stops_submitting_and_the_jobs_resume_later(
    tmp_path: Path,
) -> None:
    """No subscription, a full queue: every next create would get it too, and nothing was
    made, so the jobs stay planned for the run after the account is fixed."""
    fake = make_fake()
    jobs = jobs_of("a", "b", "c")
    message = "You do not have an active subscription."
    fake.inject("/sonic/create", status=403, body={"message": message}, times=None)
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.PLANNED] * 3
    assert message in (report.stopped or "")
    assert len(fake.requests_to("/sonic/create")) == 1  # "b" and "c" were not tried
    fake.clear_injections()
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert [j.attempts for j in report.jobs] == [1, 1, 1]


async def test_a_create_that_never_arrived_is_not_counted_as_an_attempt(tmp_path: Path) -> None:
    """attempts == 2 means "may have paid twice": a 429 on every retry is no such attempt."""
    fake = make_fake()
    jobs = jobs_of("a")
    fake.inject("/sonic/create", status=429, headers={"Retry-After": "1"}, times=None)
    report = await run(fake, jobs, tmp_path)
    assert report.jobs[0].state is S.PLANNED
    assert report.jobs[0].attempts == 0
    fake.clear_injections()
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert report.jobs[0].attempts == 1


async def test_a_task_not_found_with_this_key_stays_created_for_the_right_key(
    tmp_path: Path,
) -> None:
    """Resumed with another account's key, a paid task is "not found": not a failure."""
    fake = make_fake()
    jobs = jobs_of("a")
    await crash_run(fake, jobs, tmp_path, on_progress=crash_at(0, "created", jobs))
    fake.add_key("sk-another-account")
    async with fake.client(api_key="sk-another-account") as other:
        report = await run_batch(other, jobs, tmp_path)
    assert report.jobs[0].state is S.CREATED
    assert "another API key" in (report.jobs[0].error or "")
    report = await run(fake, jobs, tmp_path)  # the key that made it
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1}


@pytest.mark.parametrize("status", [301, 307])
async def test_a_redirected_create_stops_submitting_and_the_jobs_resume_later(
    tmp_path: Path, status: int
) -> None:
    """A base URL that redirects (http to https, say): nothing was made, and every next
    create would be redirected too."""
    fake = make_fake()
    jobs = jobs_of("a", "b")
    fake.inject("/sonic/create", status=status, headers={"location": "https://elsewhere/"})
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.PLANNED, S.PLANNED]
    assert report.stopped is not None
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)


@pytest.mark.parametrize("body", [{"message": "Your account has been suspended."}, "Forbidden"])
async def test_a_403_the_sdk_does_not_know_stops_submitting_rather_than_fail_every_job(
    tmp_path: Path, body: Any
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b")
    fake.inject("/sonic/create", status=403, body=body)
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.PLANNED, S.PLANNED]
    assert report.stopped is not None
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)


async def test_a_403_about_a_jobs_content_fails_that_job_only(tmp_path: Path) -> None:
    """Lyrics refused, a description held for moderation: the job, not the account."""
    fake = make_fake()
    jobs = jobs_of("a", "b")
    refusal = "The song description needs moderation review."
    fake.inject("/sonic/create", status=403, body={"message": refusal})
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.FAILED, S.DOWNLOADED]
    assert report.stopped is None
    assert refusal in (report.jobs[0].error or "")


async def test_connect_errors_leave_the_job_planned(tmp_path: Path) -> None:
    fake = make_fake()
    fake.inject("/sonic/create", fault="connect_error", times=None)
    jobs = jobs_of("a", "b")
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.PLANNED, S.PLANNED]
    assert report.stopped is not None
    fake.clear_injections()
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}


@pytest.mark.parametrize("status", [404, 405, 410])
async def test_an_error_status_that_is_no_verdict_on_the_job_stops_and_leaves_it_planned(
    tmp_path: Path, status: int
) -> None:
    """A 404 or 405 to every create (a wrong base URL's path), or a 410: a setup error, not
    a refusal of the job. Marked failed, the jobs could only be sent again under new ids;
    left planned, the next run, set up right, sends them."""
    fake = make_fake()
    fake.inject("/sonic/create", status=status, body={"error": "no such route"}, times=None)
    jobs = jobs_of("a", "b")
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.PLANNED, S.PLANNED]
    assert report.stopped is not None
    assert len(fake.requests_to("/sonic/create")) == 1  # stopped after the first
    fake.clear_injections()
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}


async def test_a_job_naming_an_unknown_clip_fails_alone(tmp_path: Path) -> None:
    """A 404 "clip not found." refuses the job (an extend of a clip purged or mistyped),
    not every create of the run: it fails, and the others go on."""
    fake = make_fake(strict_clips=True)
    extend = SonicCreate(
        task_type="extend_music",
        mv="sonic-v5",
        custom_mode=False,
        continue_clip_id="no-such-clip",
        continue_at=10.0,
        gpt_description_prompt="more",
    )
    report = await run(fake, [extend, *jobs_of("b")], tmp_path)
    assert [j.state for j in report.jobs] == [S.FAILED, S.DOWNLOADED]
    assert "clip not found" in (report.jobs[0].error or "")
    assert report.stopped is None


async def test_a_refused_job_fails_without_stopping_the_others_and_is_not_retried(
    tmp_path: Path,
) -> None:
    fake = make_fake(refused_models={"sonic-old"})
    jobs = [SonicCreate(mv="sonic-old", gpt_description_prompt="a"), *jobs_of("b")]
    report = await run(fake, jobs, tmp_path)
    assert [j.state for j in report.jobs] == [S.FAILED, S.DOWNLOADED]
    assert (report.jobs[0].error or "").startswith("refused: ")
    assert report.stopped is None
    requests = len(fake.requests)
    report = await run(fake, jobs, tmp_path)
    assert report.jobs[0].state is S.FAILED
    assert len(fake.requests) == requests


async def test_failed_and_partly_failed_tasks(tmp_path: Path) -> None:
    fake = make_fake()
    fake.plan(outcome="failed", failure_message="the model had a bad day")
    fake.plan(outcome="partial")
    jobs = jobs_of("a", "b", "c")
    report = await run(fake, jobs, tmp_path)
    failed, partial, good = report.jobs
    assert failed.state is S.FAILED
    assert not failed.complete
    assert "bad day" in (failed.error or "")
    assert failed.task is not None
    assert not failed.task.succeeded
    assert partial.state is S.DOWNLOADED
    assert len(partial.files) == 1
    assert good.state is S.DOWNLOADED
    assert len(good.files) == 2
    assert results(tmp_path)[0]["status"] == "failed"
    requests = len(fake.requests)
    await run(fake, jobs, tmp_path)  # a failed task is neither polled nor created again
    assert len(fake.requests) == requests


async def test_a_task_still_running_at_the_wait_timeout_is_left_for_the_next_run(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a")
    report = await run(fake, jobs, tmp_path, wait_timeout=5.0)
    assert report.jobs[0].state is S.CREATED
    assert not report.complete
    assert report.jobs[0].task_id is not None
    # The way on, for the library and the command alike; not Python's pending_json advice.
    assert report.jobs[0].error == "still unfinished at the wait's deadline; run the batch again"
    report = await run(fake, jobs, tmp_path, wait_timeout=None)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1}


async def test_a_batch_longer_than_its_wait_counts_each_wait_from_the_last_create(
    tmp_path: Path,
) -> None:
    """30 creates take 90 s at 1 request / 3 s, ahead of any poll: a 60-s wait counted
    from each task's own create would time out the first ones before anyone could look."""
    fake = make_fake()
    jobs = jobs_of(*(f"song {k}" for k in range(30)))
    report = await run(fake, jobs, tmp_path, wait_timeout=60.0)
    assert_complete(report, fake)


# --- cancellation -----------------------------------------------------------------------------


async def test_cancelling_leaves_a_consistent_journal_and_results_then_resumes(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of(*(f"song {i}" for i in range(5)))
    with anyio.move_on_after(8.0):  # two or three creates in
        await run(fake, jobs, tmp_path)
    states = journal_states(tmp_path)
    assert set(states.values()) <= {"planned", "created"}, states
    assert 1 <= list(states.values()).count("created") < 5
    assert [r["state"] for r in results(tmp_path)] == [states[j] for j in ids_of(jobs)]
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert set(creates_by_prompt(fake).values()) == {1}


async def test_a_create_on_the_wire_when_cancelled_is_awaited_and_recorded(
    tmp_path: Path,
) -> None:
    fake = make_fake(latency={"/sonic/create": 4.0})
    jobs = jobs_of("a", "b")
    with anyio.move_on_after(2.0):  # "a" has been sent; its answer comes at 4 s
        await run(fake, jobs, tmp_path)
    assert journal_states(tmp_path) == {
        derived_id(jobs, 0): "created",
        derived_id(jobs, 1): "planned",
    }
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}


async def test_a_create_waiting_for_the_rate_limiter_when_cancelled_is_dropped(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b")
    with anyio.move_on_after(1.0):  # "a" went at 0 s; "b" waits for the token at 3 s
        await run(fake, jobs, tmp_path)
    assert journal_states(tmp_path)[derived_id(jobs, 1)] == "planned"
    assert creates_by_prompt(fake) == {"a": 1}


async def test_the_batch_leaves_the_users_http_client_and_options_alone(tmp_path: Path) -> None:
    """What a create's request did is told through the SDK itself, not by hooking the
    user's httpx client or wrapping its on_retry: both are as given, during the run too."""
    fake = make_fake()
    fake.inject("/sonic/create", status=429, headers={"Retry-After": "1"})
    retries: list[str] = []
    http = httpx.AsyncClient(transport=fake.transport())
    seen: list[tuple[list[Any], Any]] = []

    async def on_progress(event: Any) -> None:
        seen.append((list(http.event_hooks["request"]), client._options.on_retry))

    async with http, fake.client(http_client=http, on_retry=retries.append) as client:
        await run_batch(client, jobs_of("a"), tmp_path, on_progress=on_progress)
    assert seen
    assert all(hooks == [] and on_retry == retries.append for hooks, on_retry in seen)
    assert len(retries) == 1  # the user's own on_retry saw the 429's retry


# --- the journal refuses what it cannot reconcile -----------------------------------------------


async def test_another_batch_in_the_same_directory_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    await run(fake, jobs_of("a"), tmp_path)
    requests = len(fake.requests)
    with pytest.raises(BatchConflictError, match="another batch"):
        await run(fake, jobs_of("x", "y"), tmp_path)
    assert len(fake.requests) == requests
    assert results(tmp_path)[0]["state"] == "downloaded"  # the other batch's results kept


@pytest.mark.parametrize("damage", ["deleted", "emptied", "rows deleted"])
async def test_results_of_created_tasks_without_their_journal_are_refused_before_sending(
    tmp_path: Path, damage: str
) -> None:
    """The journal is a dotfile: a copy of the directory, a sync tool or a tidy-up drops
    it. Next to the results.jsonl of tasks it created, running again would create and pay
    for every job a second time: refused, saying what to do."""
    fake = make_fake()
    jobs = jobs_of("a", "b")
    await run(fake, jobs, tmp_path)
    journal = tmp_path / BATCH_JOURNAL
    if damage == "deleted":
        journal.unlink()
    elif damage == "emptied":
        journal.write_bytes(b"")
    else:
        with contextlib.closing(sqlite3.connect(journal)) as db, db:
            db.execute("DELETE FROM jobs")
    requests = len(fake.requests)
    with pytest.raises(BatchConflictError, match=f"Restore {BATCH_JOURNAL}"):
        await run(fake, jobs, tmp_path)
    assert len(fake.requests) == requests
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}


async def test_an_id_reused_for_other_content_is_refused_once_it_was_sent(tmp_path: Path) -> None:
    fake = make_fake()
    first = [BatchJob("song", SonicCreate(mv="sonic-v5", gpt_description_prompt="lofi"))]
    await run(fake, first, tmp_path)
    changed = [BatchJob("song", SonicCreate(mv="sonic-v5", gpt_description_prompt="jazz"))]
    with pytest.raises(BatchConflictError, match="'song'"):
        await run(fake, changed, tmp_path)


async def test_a_refused_job_may_be_fixed_under_the_same_id(tmp_path: Path) -> None:
    fake = make_fake(refused_models={"sonic-old"})
    bad = [BatchJob("song", SonicCreate(mv="sonic-old", gpt_description_prompt="lofi"))]
    assert (await run(fake, bad, tmp_path)).jobs[0].state is S.FAILED
    fixed = [BatchJob("song", SonicCreate(mv="sonic-v5", gpt_description_prompt="lofi"))]
    report = await run(fake, fixed, tmp_path)
    assert_complete(report, fake)


async def test_added_jobs_join_and_dropped_ones_are_reported(tmp_path: Path) -> None:
    fake = make_fake()
    await run(fake, jobs_of("a", "b"), tmp_path)
    report = await run(fake, jobs_of("b", "c"), tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1, "c": 1}
    assert report.other_jobs == (ids_of(jobs_of("a"))[0],)


async def test_a_journal_of_another_api_is_refused(tmp_path: Path) -> None:
    await run(make_fake(), jobs_of("a"), tmp_path)
    elsewhere = make_fake(base_url="http://127.0.0.1:9/api/v1")
    with pytest.raises(BatchConflictError, match="created on"):
        await run(elsewhere, jobs_of("a"), tmp_path)


async def test_two_runs_cannot_share_a_directory(tmp_path: Path) -> None:
    fake = make_fake()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run, fake, jobs_of("a"), tmp_path)
        await anyio.sleep(1.0)
        with pytest.raises(BatchConflictError, match="another batch is running"):
            await run(fake, jobs_of("a"), tmp_path)
        tg.cancel_scope.cancel()


async def test_secrets_stay_out_of_the_journal_and_the_results(tmp_path: Path) -> None:
    fake = make_fake()
    job = SonicCreate(
        mv="sonic-v5",
        gpt_description_prompt="lofi",
        webhook_url="https://example.com/hook",
        webhook_secret="s3cret-webhook-value",
    )
    await run(fake, [job], tmp_path)
    assert fake.requests_to("/sonic/create")[0].json["webhook_secret"] == "s3cret-webhook-value"
    for path, data in contents(tmp_path).items():
        assert b"s3cret-webhook-value" not in data, path
        assert FakeMusicAPI.DEFAULT_KEY.encode() not in data, path


# --- input --------------------------------------------------------------------------------------


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_input_lines_in_description_and_custom_mode() -> None:
    path_lines = [
        '{"prompt": "lofi hip hop"}',
        "",
        '{"id": "shanty", "lyrics": "[Verse] heave", "title": "Ho", "prompt": "sea shanty"}',
        '{"lyrics": "[Verse] la", "tags": "pop", "instrumental": true, "mv": "sonic-v4-5"}',
        '{"custom_mode": true, "prompt": "[Verse] raw api fields", "mv": "sonic-v5"}',
        '{"task_type": "extend_music", "continue_clip_id": "c1", "continue_at": 30, '
        '"custom_mode": false, "gpt_description_prompt": "more"}',
    ]
    from musicapi_async._batch import _parse_lines

    jobs = _parse_lines(path_lines, source="t", default_mv="sonic-v5")
    assert [j.line for j in jobs] == [1, 3, 4, 5, 6]
    one, shanty, custom, raw, extend = (j.create for j in jobs)
    assert (one.custom_mode, one.gpt_description_prompt, one.mv) == (
        False,
        "lofi hip hop",
        "sonic-v5",
    )
    assert jobs[1].job_id == "shanty"
    assert (shanty.custom_mode, shanty.prompt, shanty.tags) == (True, "[Verse] heave", "sea shanty")
    assert (custom.make_instrumental, custom.mv, custom.prompt) == (
        True,
        "sonic-v4-5",
        "[Verse] la",
    )
    assert (raw.custom_mode, raw.prompt) == (True, "[Verse] raw api fields")
    assert (extend.task_type, extend.continue_at) == ("extend_music", 30)


def test_derived_ids_follow_the_content_not_the_line(tmp_path: Path) -> None:
    a = read_batch_jobs(write(tmp_path, '{"prompt": "x"}', '{"prompt": "y"}', '{"prompt": "x"}'))
    b = read_batch_jobs(
        write(tmp_path, '{"prompt": "new"}', '{"prompt":"y"}', '{"prompt": "x"}', '{"prompt": "x"}')
    )
    ids_a = [j.job_id for j in a]
    ids_b = [j.job_id for j in b]
    assert ids_a[2] == f"{ids_a[0]}-2"  # a repeat of the same content is a second job
    assert set(ids_a) < set(ids_b)  # reordered, reformatted, one line added: same jobs
    assert len(set(ids_b)) == 4


def test_every_bad_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{"prompt": "fine"}',
        "{not json",
        '["a list"]',
        '{"prompt": "x", "titel": "typo"}',
        '{"prompt": "x", "make_instrumental": "yes"}',
        '{"title": "no prompt"}',
        '{"lyrics": "x", "title": "' + "t" * 81 + '"}',
        '{"id": "same", "prompt": "p"}',
        '{"id": "same", "prompt": "q"}',
        '{"lyrics": "l", "prompt": "style", "tags": "tags"}',
        '{"id": "", "prompt": "x"}',
        '{"prompt": "x", "style_weight": 1.5}',
    )
    with pytest.raises(BatchInputError) as caught:
        read_batch_jobs(path)
    problems = dict(caught.value.problems)
    assert set(problems) == {2, 3, 4, 5, 6, 7, 9, 10, 11, 12}
    assert "not valid JSON" in problems[2]
    assert "JSON object" in problems[3]
    assert "did you mean 'title'" in problems[4]
    assert "make_instrumental" in problems[5]
    assert "true or false" in problems[5]
    assert "prompt" in problems[6]
    assert "80" in problems[7]
    assert "duplicate id 'same' (also on line 8)" in problems[9]
    assert "not both" in problems[10]
    assert "'id'" in problems[11]
    assert "style_weight" in problems[12]
    assert "nothing was sent" in str(caught.value)
    assert "line 4:" in str(caught.value)


def test_a_prompt_beside_custom_mode_fields_is_refused_not_guessed(tmp_path: Path) -> None:
    """{"prompt", "title", "tags"} is the API's own custom-mode body, and also "prompt is a
    description" plus extras: either guess could pay for a song made the wrong way."""
    path = write(
        tmp_path,
        '{"prompt": "[Verse] we sail at dawn", "title": "Dawn", "tags": "sea shanty"}',
        '{"prompt": "a song about the sea", "auto_lyrics": true}',
        '{"lyrics": "[Verse] we sail at dawn", "title": "Dawn", "tags": "sea shanty"}',
        '{"prompt": "[Verse] la", "title": "Dawn", "custom_mode": true}',
        '{"prompt": "a song about the sea", "negative_tags": "metal"}',
    )
    with pytest.raises(BatchInputError) as caught:
        read_batch_jobs(path)
    problems = dict(caught.value.problems)
    assert set(problems) == {1, 2}
    assert "'lyrics'" in problems[1]
    assert "custom_mode" in problems[1]


def test_a_lone_surrogate_in_a_line_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{"prompt": "fine"}',
        '{"prompt": "sea shanty \\ud83c"}',
        '{"id": "x\\ud83c", "prompt": "ok"}',
    )
    with pytest.raises(BatchInputError) as caught:
        read_batch_jobs(path)
    problems = dict(caught.value.problems)
    assert set(problems) == {2, 3}
    assert "surrogate" in problems[2]
    assert str(caught.value).encode("utf-8")  # the message itself can be printed


async def test_a_library_job_with_a_lone_surrogate_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = [SonicCreate(mv="sonic-v5", gpt_description_prompt="sea \ud83c")]
    with pytest.raises(BatchInputError, match="surrogate"):
        await run(fake, jobs, tmp_path)
    assert not fake.requests


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BatchInputError, match="no jobs"):
        read_batch_jobs(write(tmp_path, "", "  "))


async def test_bad_library_jobs_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    fake = make_fake()
    jobs = [
        SonicCreate(mv="sonic-v5", gpt_description_prompt="ok"),
        BatchJob("x", SonicCreate(mv="sonic-v5", gpt_description_prompt="a")),
        BatchJob("x", SonicCreate(mv="sonic-v5", gpt_description_prompt="b")),
        SonicCreate(mv="sonic-v5", custom_mode=True),  # custom mode without lyrics
    ]
    with pytest.raises(BatchInputError) as caught:
        await run(fake, jobs, tmp_path)
    assert len(caught.value.problems) == 2
    assert not fake.requests
    assert not (tmp_path / BATCH_JOURNAL).exists()


def test_every_create_field_is_accepted_in_the_input(tmp_path: Path) -> None:
    """A SonicCreate field added later is accepted in a batch line without more work."""
    import attrs

    from musicapi_async._batch import _KINDS

    assert set(_KINDS) == {f.name for f in attrs.fields(SonicCreate)}
    assert _KINDS["continue_at"] == "number"
    assert _KINDS["make_instrumental"] == "bool"
    assert _KINDS["duration"] == "int"
    assert _KINDS["title"] == "str"
    path = write(tmp_path, '{"prompt": "x", "negative_tags": "metal", "vocal_gender": "f"}')
    [job] = read_batch_jobs(path)
    assert (job.create.negative_tags, job.create.vocal_gender) == ("metal", "f")


def test_journal_state_names_are_stable() -> None:
    """They are written to disk: renaming one would strand journals."""
    assert [s.value for s in BatchJobState] == [
        "planned",
        "submitting",
        "sending",
        "uncertain",
        "created",
        "done",
        "failed",
        "downloaded",
    ]


async def test_temporary_files_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    fake = make_fake()
    jobs = jobs_of("a")
    await run(fake, jobs, tmp_path, download=False)
    stale = [tmp_path / ".Song - x.wav.part-0badc0de", tmp_path / f".{BATCH_RESULTS}.part-42"]
    keep = tmp_path / ".keep-me"
    for path in [*stale, keep]:
        path.write_bytes(b"half a file")
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    names = {p.name for p in listing(tmp_path)}
    assert not names & {p.name for p in stale}
    assert keep.name in names


async def test_a_failed_download_leaves_the_job_done_and_a_rerun_only_downloads(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    fake.serve_audio = False  # the CDN is unreachable
    jobs = jobs_of("a")
    report = await run(fake, jobs, tmp_path)
    assert report.jobs[0].state is S.DONE
    assert not report.complete
    assert (report.jobs[0].error or "").startswith("download failed: ")
    polls = len(fake.requests_to("/sonic/task/*"))
    fake.serve_audio = True
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert len(fake.requests_to("/sonic/task/*")) == polls


async def test_a_created_task_the_journal_cannot_record_is_named_and_not_created_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b")
    connect = sqlite3.connect
    full_disk(monkeypatch, lambda sql, parameters: "created" in parameters)
    with pytest.raises(BatchJournalError, match="disk is full") as caught:
        await run(fake, jobs, tmp_path)
    (task_id,) = fake.tasks  # the first job's task: made and paid for
    assert caught.value.task is not None
    assert caught.value.task.task_id == task_id
    assert caught.value.job_id == derived_id(jobs, 0)
    assert task_id in str(caught.value)
    assert creates_by_prompt(fake) == {"a": 1}  # the run stopped: "b" was not sent
    assert results(tmp_path)  # results.jsonl was still written (another disk, here)
    monkeypatch.setattr(sqlite3, "connect", connect)  # the disk has room again
    assert journal_states(tmp_path)[derived_id(jobs, 0)] == "sending"
    report = await run(fake, jobs, tmp_path)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}  # "a" was not created again
    assert [job.state for job in report.jobs] == [S.UNCERTAIN, S.DOWNLOADED]
    # The error names the way to have a rerun follow that task.
    assert f"adopt={{{caught.value.job_id!r}: {task_id!r}}}" in str(caught.value)
    report = await run(fake, jobs, tmp_path, adopt={derived_id(jobs, 0): task_id})
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}


async def test_a_journal_write_that_fails_stops_the_run_and_loses_nothing_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b")
    connect = sqlite3.connect
    # Full once the first job is done: its downloads cannot be recorded.
    full_disk(monkeypatch, lambda sql, parameters: "done" in parameters)
    with pytest.raises(BatchJournalError, match="disk is full") as caught:
        await run(fake, jobs, tmp_path)
    assert caught.value.task is None
    monkeypatch.setattr(sqlite3, "connect", connect)
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)  # every task created once, awaited and saved


async def test_a_paid_task_the_journal_could_not_record_wins_over_an_earlier_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while a create is on the wire: another job's write fails first and
    stops the run, then the create's answer cannot be recorded either. The run's error must
    name that paid task, not the first failure."""
    fake = FakeMusicAPI(
        sonic_duration=3.0, audio_seconds=0.5, rate_limit=None, latency={"/sonic/create": 10.0}
    )
    jobs = jobs_of("a", "b")
    full_disk(monkeypatch, lambda sql, parameters: "done" in parameters)
    with pytest.raises(BatchJournalError) as caught:
        async with fake.client() as client:
            await run_batch(client, jobs, tmp_path, download=False)
    assert len(fake.tasks) == 2
    second = list(fake.tasks)[-1]
    assert caught.value.task is not None
    assert caught.value.task.task_id == second


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    (tmp_path / BATCH_JOURNAL).write_bytes(b"this is not SQLite" * 100)

    async def main() -> None:
        await run(make_fake(), jobs_of("a"), tmp_path)

    with pytest.raises(BatchConflictError, match="cannot use"):
        anyio.run(main)


def test_a_journal_that_cannot_be_opened_is_refused_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / BATCH_JOURNAL).mkdir()  # a directory where the journal goes

    async def main() -> None:
        await run(make_fake(), jobs_of("a"), tmp_path)

    with pytest.raises(BatchConflictError, match=r"cannot use .* as a batch journal"):
        anyio.run(main)


def test_numbers_of_any_size_are_checked_not_crashed_on(tmp_path: Path) -> None:
    path = write(tmp_path, '{"prompt": "x", "style_weight": ' + "9" * 400 + "}")
    with pytest.raises(BatchInputError, match="style_weight"):
        read_batch_jobs(path)
    deep = write(tmp_path, '{"prompt": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(BatchInputError, match="line 1"):
        read_batch_jobs(deep)


def test_the_public_batch_names_are_exported_and_documented() -> None:
    import inspect

    import musicapi_async
    from musicapi_async import _batch

    for name in _batch.__all__:
        if name.isupper():
            continue
        value = getattr(musicapi_async, name)
        assert value is getattr(_batch, name)
        assert (value.__doc__ or "").strip(), name
        for attr, member in vars(value).items() if inspect.isclass(value) else ():
            if not attr.startswith("_") and (
                inspect.isfunction(member) or isinstance(member, property)
            ):
                assert (member.__doc__ or "").strip(), f"{name}.{attr}"


# --- job ids never follow options; a sent request is never made again under a new id ----------


def write_lines(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(text.encode())
    return path


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x1c", "\x0b"])
def test_only_a_newline_ends_a_line_whatever_a_string_holds(tmp_path: Path, separator: str) -> None:
    lyrics = f"[Verse]\nline one{separator}line two"
    line = json.dumps({"lyrics": lyrics, "title": "t", "tags": "pop"}, ensure_ascii=False)
    path = write_lines(tmp_path, "\ufeff" + line + "\r\n\r\n" + '{"prompt": "x", "titel": 1}\r\n')
    with pytest.raises(BatchInputError) as caught:
        read_batch_jobs(path)
    assert caught.value.problems == ((3, "unknown field 'titel' (did you mean 'title'?)"),)
    path = write_lines(tmp_path, "\ufeff" + line + "\r\n")
    [job] = read_batch_jobs(path)
    assert job.create.prompt == lyrics
    assert job.line == 1


def test_a_key_given_twice_in_a_line_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, '{"prompt": "a"}', '{"prompt": "b", "prompt": "c"}')
    with pytest.raises(BatchInputError) as caught:
        read_batch_jobs(path)
    assert caught.value.problems == ((2, "the key 'prompt' is given twice"),)


def test_derived_ids_are_those_of_the_line_as_written_whatever_the_default_model(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '{"prompt": "a"}', '{"prompt": "b", "mv": "sonic-v4-5"}')
    v5 = read_batch_jobs(path)
    v45 = read_batch_jobs(path, default_mv="sonic-v4-5")
    assert [j.job_id for j in v5] == [j.job_id for j in v45]
    assert [j.create.mv for j in v45] == ["sonic-v4-5", "sonic-v4-5"]
    assert [j.default_mv for j in v5] == ["sonic-v5", None]
    # A null is a field not given; the key order and spacing do not matter either.
    same = write(tmp_path, '{ "title": null,"prompt":"a" }', '{"mv": "sonic-v4-5", "prompt": "b"}')
    assert [j.job_id for j in read_batch_jobs(same)] == [j.job_id for j in v5]


async def test_a_rerun_with_another_default_model_is_refused_naming_the_option(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '{"prompt": "a", "mv": "sonic-v4-5"}', '{"prompt": "b"}')
    out = tmp_path / "out"
    fake = make_fake()
    created: list[str] = []

    def die_after_both_created(event: BatchEvent) -> None:
        if event.state == "created":
            created.append(event.job_id)
            if len(created) == 2:
                raise Crash

    jobs = read_batch_jobs(path, default_mv="sonic-v4-5")
    await crash_run(fake, jobs, out, on_progress=die_after_both_created)
    requests = len(fake.requests)
    with pytest.raises(BatchConflictError, match=r"--mv sonic-v4-5.*'sonic-v5'.*rerun with"):
        await run(fake, read_batch_jobs(path), out)  # the default --mv this time
    assert len(fake.requests) == requests
    report = await run(fake, read_batch_jobs(path, default_mv="sonic-v4-5"), out)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}


async def test_a_sent_request_under_a_new_id_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    out = tmp_path / "out"
    path = write(tmp_path, '{"prompt": "a"}', '{"prompt": "b"}')
    first = read_batch_jobs(path)
    await crash_run(fake, first, out, on_progress=crash_at_id(first[0].job_id, "created"))
    assert creates_by_prompt(fake) == {"a": 1}
    renamed = read_batch_jobs(write(tmp_path, '{"id": "first", "prompt": "a"}', '{"prompt": "b"}'))
    requests = len(fake.requests)
    with pytest.raises(BatchConflictError) as caught:
        await run(fake, renamed, out)
    message = str(caught.value)
    assert f"job 'first' (line 1) is the request of job {first[0].job_id!r}" in message
    assert "give it its journal id back" in message
    assert len(fake.requests) == requests
    report = await run(fake, first, out)  # the line as it was: the task is awaited
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}


async def test_two_jobs_of_one_input_may_share_a_request(tmp_path: Path) -> None:
    fake = make_fake()
    job = SonicCreate(mv="sonic-v5", gpt_description_prompt="a")
    jobs = [BatchJob("one", job), BatchJob("two", job)]
    await crash_run(fake, jobs, tmp_path, on_progress=crash_at_id("one", "created"))
    report = await run(fake, jobs, tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 2}


async def test_a_failed_job_may_be_tried_again_under_a_new_id(tmp_path: Path) -> None:
    fake = make_fake(refused_models={"sonic-old"})
    job = SonicCreate(mv="sonic-old", gpt_description_prompt="a")
    assert (await run(fake, [BatchJob("one", job)], tmp_path)).jobs[0].state is S.FAILED
    report = await run(fake, [BatchJob("one", job), BatchJob("again", job)], tmp_path)
    assert [j.state for j in report.jobs] == [S.FAILED, S.FAILED]
    refused = [r for r in fake.requests_to("/sonic/create") if r.status == 400]
    assert len(refused) == 2


def crash_at_id(job_id: str, state: str) -> Callable[[BatchEvent], None]:
    def callback(event: BatchEvent) -> None:
        if event.job_id == job_id and event.state == state:
            raise Crash

    return callback


async def test_the_webhook_urls_credentials_and_query_stay_out_of_the_journal(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    line = {"prompt": "a", "webhook_url": "https://user:pw@hooks.example.com/h?token=TOPSECRET"}
    path = write(tmp_path, json.dumps(line))
    out = tmp_path / "out"
    report = await run(fake, read_batch_jobs(path), out)
    assert_complete(report, fake)
    sent = fake.requests_to("/sonic/create")[0].json["webhook_url"]
    assert "TOPSECRET" in sent
    for file, data in contents(out).items():
        assert b"TOPSECRET" not in data, file
        assert b"pw@" not in data, file
    with contextlib.closing(sqlite3.connect(out / BATCH_JOURNAL)) as db, db:
        [(request,)] = db.execute("SELECT request FROM jobs").fetchall()
    assert json.loads(request)["webhook_url"] == "https://hooks.example.com/h"


# --- the journal's version -----------------------------------------------------------------------


def make_journal(out: Path, schema: str, *, tables: bool = True) -> None:
    out.mkdir()
    with contextlib.closing(sqlite3.connect(out / BATCH_JOURNAL)) as db, db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema', ?)", (schema,))
        if tables:
            db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, position INTEGER NOT NULL)")


def journal_tables(out: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(out / BATCH_JOURNAL)) as db, db:
        return sorted(n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"))


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("1", "older musicapi-async .journal version 1. that named jobs differently"),
        ("99", "newer version of musicapi-async"),
        ("two", "records a journal version of 'two'"),
    ],
)
async def test_a_journal_of_another_version_is_refused_and_left_as_it_is(
    tmp_path: Path, schema: str, message: str
) -> None:
    out = tmp_path / "out"
    make_journal(out, schema, tables=False)
    fake = make_fake()
    with pytest.raises(BatchConflictError, match=message):
        await run(fake, jobs_of("a"), out)
    assert not fake.requests
    assert journal_tables(out) == ["meta"]  # the schema script did not run


async def test_a_journal_of_another_api_is_refused_while_a_job_is_uncertain(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)
    report = await run(fake, jobs_of("a"), tmp_path)
    assert report.jobs[0].state is S.UNCERTAIN
    elsewhere = make_fake(base_url="http://127.0.0.1:9/api/v1")
    with pytest.raises(BatchConflictError, match="created on"):
        await run(elsewhere, jobs_of("a"), tmp_path)


# --- a create the server certainly did not act on is not "sending" -----------------------------


class FirstCreate429(httpx.AsyncBaseTransport):
    """The fake's transport, answering the first create 429 with a long Retry-After."""

    def __init__(self, fake: FakeMusicAPI, retry_after: float) -> None:
        self._inner = fake.transport()
        self._retry_after = retry_after
        self.creates = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/sonic/create" in str(request.url):
            self.creates += 1
            if self.creates == 1:
                headers = {"Retry-After": f"{self._retry_after:g}"}
                return httpx.Response(429, headers=headers, json={"message": "slow down"})
        return await self._inner.handle_async_request(request)


async def test_a_create_waiting_out_a_429_is_submitting_and_cancelling_drops_it(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    seen: dict[str, Any] = {}
    async with client_of(fake, FirstCreate429(fake, retry_after=100)) as client:
        with anyio.CancelScope() as scope:

            async def cancel_during_the_backoff() -> None:
                await anyio.sleep(1.0)
                seen["states"] = journal_states(tmp_path)
                seen["at"] = anyio.current_time()
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_during_the_backoff)
                await run_batch(client, jobs_of("a"), tmp_path)
        took = anyio.current_time() - seen["at"]
    assert list(seen["states"].values()) == ["submitting"]  # a kill -9 now is not uncertain
    assert took < 1.0  # the 100 s backoff was not waited out
    assert journal_states(tmp_path) == {derived_id(jobs_of("a"), 0): "planned"}
    assert creates_by_prompt(fake) == {}


async def test_a_crash_in_a_429_backoff_resumes_by_creating_the_job_once(tmp_path: Path) -> None:
    fake = make_fake()
    retries: list[str] = []

    def die(event: Any) -> None:  # the user's on_retry hook, called after the journal's
        retries.append(event.path)
        raise Crash

    http = httpx.AsyncClient(transport=FirstCreate429(fake, retry_after=5))
    client = fake.client(http_client=http, on_retry=die)
    with pytest.RaisesGroup(Crash, allow_unwrapped=True, flatten_subgroups=True):
        async with client:
            await run_batch(client, jobs_of("a"), tmp_path)
    assert retries == ["/sonic/create"]
    assert list(journal_states(tmp_path).values()) == ["submitting"]
    report = await run(fake, jobs_of("a"), tmp_path)
    assert_complete(report, fake)
    assert report.jobs[0].attempts == 1
    assert creates_by_prompt(fake) == {"a": 1}


async def test_a_create_retried_after_a_429_counts_one_attempt(tmp_path: Path) -> None:
    fake = make_fake()
    report = await run(fake, jobs_of("a"), tmp_path, FirstCreate429(fake, retry_after=5))
    assert_complete(report, fake)
    assert report.jobs[0].attempts == 1


async def test_sent_job_ids_lists_the_jobs_whose_task_may_still_run(tmp_path: Path) -> None:
    assert sent_job_ids(tmp_path) == []  # no journal (and none is created)
    assert not (tmp_path / BATCH_JOURNAL).exists()
    durations = iter([0.0, 600.0])  # the first job finishes at once, the second runs on
    fake = make_fake(sonic_duration=lambda task: next(durations))
    jobs = [
        SonicCreate(mv="sonic-v5", gpt_description_prompt="fast"),
        SonicCreate(mv="sonic-v5", gpt_description_prompt="slow"),
    ]
    report = await run(fake, jobs, tmp_path, wait_timeout=120.0, download=False)
    assert [job.state for job in report.jobs] == [S.DONE, S.CREATED]
    assert sent_job_ids(tmp_path) == [report.jobs[1].job_id]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / BATCH_JOURNAL).write_text("not a database", encoding="utf-8")
    assert sent_job_ids(tmp_path / "other") == []  # run_batch itself says what is wrong


# --- what the server sends back: odd titles, odd files ----------------------------------------


class CdnDownFor(httpx.AsyncBaseTransport):
    """The fake's transport, with the audio of the given clips answered 503."""

    def __init__(self, fake: FakeMusicAPI, clip_ids: list[str]) -> None:
        self._inner = fake.transport()
        self._clip_ids = clip_ids

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if "cdn1.suno.ai" in url and any(clip_id in url for clip_id in self._clip_ids):
            return httpx.Response(503)
        return await self._inner.handle_async_request(request)


class Rewriting(httpx.AsyncBaseTransport):
    """The fake's transport, with its task answers' clip titles replaced and the CDN's
    audio answered with another content type (and the n-th clip's audio down: 503)."""

    def __init__(
        self,
        fake: FakeMusicAPI,
        *,
        title: str | None = None,
        content_type: str | None = None,
        fail_nth_audio: int = 0,
    ) -> None:
        self._inner = fake.transport()
        self._title = title
        self._content_type = content_type
        self._fail_nth = fail_nth_audio
        self._audio = 0
        self._failing: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        url = str(request.url)
        if self._title is not None and "/sonic/task/" in url and response.status_code == 200:
            body = json.loads(await response.aread())
            for clip in body.get("data") or []:
                clip["title"] = self._title
            content = json.dumps(body).encode()  # ASCII: a lone surrogate stays an escape
            headers = {"content-type": "application/json"}
            return httpx.Response(200, content=content, headers=headers)
        if "cdn1.suno.ai" in url:
            self._audio += 1
            if self._audio == self._fail_nth:
                self._failing = url
            if url == self._failing:  # that clip's audio is down for this run
                return httpx.Response(503)
            if self._content_type is not None:
                headers = {"content-type": self._content_type}
                return httpx.Response(200, content=await response.aread(), headers=headers)
        return response


async def test_a_title_with_a_lone_surrogate_still_gets_its_results_written(
    tmp_path: Path,
) -> None:
    """Half an emoji (a title cut at 80 UTF-16 units upstream) must not stop results.jsonl."""
    fake = make_fake()
    report = await run(fake, jobs_of("a"), tmp_path, Rewriting(fake, title="Sunrise \ud83c"))
    assert_complete(report, fake)
    (line,) = results(tmp_path)
    assert line["clips"][0]["title"] == "Sunrise \ud83c"  # escaped in the file, read back
    assert not [p for p in listing(tmp_path) if ".part-" in p.name]


async def test_a_file_in_the_way_of_a_clip_fails_that_job_only(tmp_path: Path) -> None:
    """The CDN said video/mp4, so the clips were saved as .mp4, which is not taken for a
    clip's audio (its video may sit beside it). A run that died before recording one job's
    files leaves that job done: the rerun finds the names taken, and that job says so
    without stopping the others."""
    fake = make_fake()
    jobs = jobs_of("a", "b")
    mp4 = Rewriting(fake, content_type="video/mp4")
    report = await run(fake, jobs, tmp_path, mp4)
    assert [j.state for j in report.jobs] == [S.DOWNLOADED, S.DOWNLOADED]
    with (
        contextlib.closing(sqlite3.connect(tmp_path / BATCH_JOURNAL)) as db,
        db,
    ):  # as a kill -9 would have left it
        db.execute("UPDATE jobs SET state = 'done', files = NULL WHERE id = ?", (ids_of(jobs)[0],))
    report = await run(fake, jobs, tmp_path, Rewriting(fake, content_type="video/mp4"))
    assert [j.state for j in report.jobs] == [S.DONE, S.DOWNLOADED]
    assert "in the way" in (report.jobs[0].error or "")


async def test_the_same_server_with_a_trailing_slash_resumes(tmp_path: Path) -> None:
    fake = make_fake()
    jobs = jobs_of("a")
    await crash_run(fake, jobs, tmp_path, on_progress=crash_at(0, "created", jobs))
    http = httpx.AsyncClient(transport=fake.transport())
    async with fake.client(base_url=fake.base_url + "/", http_client=http) as client:
        report = await run_batch(client, jobs, tmp_path)
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1}


def test_a_python_without_sqlite_imports_the_sdk_and_hears_why_batches_need_it(
    tmp_path: Path,
) -> None:
    """Pythons built without SQLite (no _sqlite3) exist: the SDK imports and works there,
    and only the batch runner says what it needs."""
    script = """
import sys
sys.modules["_sqlite3"] = None  # as on a Python built without SQLite
sys.modules.pop("sqlite3", None)
import anyio
import musicapi_async
from musicapi_async import SonicCreate, run_batch
from musicapi_async.testing import FakeMusicAPI

async def main():
    fake = FakeMusicAPI(sonic_duration=1.0)
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        assert (await client.await_task(ref)).succeeded
        try:
            job = SonicCreate(mv="sonic-v5", gpt_description_prompt="y")
            await run_batch(client, [job], sys.argv[1])
        except RuntimeError as exc:
            print("refused:", exc)

anyio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "refused: the batch runner keeps its journal in SQLite" in done.stdout


# --- jobs of the journal left out of the input ------------------------------------------------


async def test_a_job_dropped_from_the_input_keeps_its_paid_task_followed_and_its_row(
    tmp_path: Path,
) -> None:
    """A paid task left running (created) is still followed and saved when its line leaves
    the file; a create that may have made one (uncertain) is reported, and its removal is
    the user's call, so it does not fail the run; both keep their rows in results.jsonl."""
    fake = make_fake()
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)  # "a"
    jobs = jobs_of("a", "b", "c")
    first = await run(fake, jobs, tmp_path, wait_timeout=1.0)
    assert [job.state for job in first.jobs] == [S.UNCERTAIN, S.CREATED, S.CREATED]
    report = await run(fake, jobs[1:2], tmp_path)  # "b" only: "a" and "c" left out
    assert report.jobs[0].state is S.DOWNLOADED
    assert report.complete
    assert report.other_jobs == tuple(sorted([derived_id(jobs, 0), derived_id(jobs, 2)]))
    others = {job.job_id: job for job in report.others}
    assert [job.job_id for job in report.others] == [derived_id(jobs, 0), derived_id(jobs, 2)]
    dropped = others[derived_id(jobs, 2)]
    assert (dropped.state, dropped.task_id, dropped.in_input) == (
        S.DOWNLOADED,  # paid for: followed and saved though its line is gone
        first.jobs[2].task_id,
        False,
    )
    assert len(dropped.files) == 2
    assert others[derived_id(jobs, 0)].state is S.UNCERTAIN
    assert report.unsettled_others == []
    assert [job.job_id for job in report.uncertain_others] == [derived_id(jobs, 0)]
    rows = {row["id"]: row for row in results(tmp_path)}
    assert list(rows) == [derived_id(jobs, 1), derived_id(jobs, 0), derived_id(jobs, 2)]
    assert rows[derived_id(jobs, 1)]["in_input"] is True
    assert rows[derived_id(jobs, 2)]["in_input"] is False
    assert rows[derived_id(jobs, 2)]["state"] == "downloaded"
    assert rows[derived_id(jobs, 2)]["task_id"] == first.jobs[2].task_id
    assert creates_by_prompt(fake) == {"a": 1, "b": 1, "c": 1}  # nothing made again

    # Its line back, it is already saved; a finished job left out does not count.
    report = await run(fake, jobs[2:], tmp_path)
    assert [job.state for job in report.jobs] == [S.DOWNLOADED]
    assert [job.job_id for job in report.uncertain_others] == [derived_id(jobs, 0)]
    assert creates_by_prompt(fake) == {"a": 1, "b": 1, "c": 1}


async def test_a_dropped_job_whose_download_fails_keeps_the_run_incomplete(
    tmp_path: Path,
) -> None:
    """A dropped job's finished task is saved by the run; while its audio is not (the CDN
    down), the run is not complete, and the next run fetches it."""
    fake = make_fake()
    jobs = jobs_of("a", "b")
    done = await run(fake, jobs, tmp_path, download=False)  # both done, audio not fetched
    assert done.jobs[1].task is not None
    dropped_clips = [clip.clip_id or "" for clip in done.jobs[1].task.clips]
    report = await run(fake, jobs[:1], tmp_path, CdnDownFor(fake, dropped_clips))
    assert report.jobs[0].state is S.DOWNLOADED
    [other] = report.others
    assert (other.state, other.complete) == (S.DONE, False)
    assert report.unsettled_others == [other]
    assert not report.complete
    report = await run(fake, jobs[:1], tmp_path)
    assert report.complete
    assert report.others[0].state is S.DOWNLOADED


async def test_a_dropped_job_is_reconciled_like_the_others(tmp_path: Path) -> None:
    """Out of the file, a job left sending by a crash becomes uncertain, and one whose saved
    file was deleted is fetched again (its task is paid for)."""
    fake = make_fake()
    a, _, c = jobs = jobs_of("a", "b", "c")
    first = await run(fake, [a, c], tmp_path)
    dying = CrashingTransport(
        fake, method="POST", path_part="/sonic/create", nth=1, after_server=True
    )
    await crash_run(fake, jobs, tmp_path, dying)  # "b"'s create crashes once sent
    assert journal_states(tmp_path)[derived_id(jobs, 1)] == "sending"
    first.jobs[0].files[0].unlink()
    report = await run(fake, [c], tmp_path)  # "a" and "b" out of the file
    others = {job.job_id: job for job in report.others}
    assert others[derived_id(jobs, 1)].state is S.UNCERTAIN
    assert others[derived_id(jobs, 0)].state is S.DOWNLOADED
    assert all(path.is_file() for path in others[derived_id(jobs, 0)].files)
    assert len(fake.requests_to("/sonic/create", method="POST")) == 3  # none sent again


async def test_a_finished_job_dropped_from_the_input_does_not_hold_the_run_back(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b")
    await run(fake, jobs, tmp_path)
    report = await run(fake, jobs[:1], tmp_path)
    assert report.complete
    [other] = report.others
    assert (other.job_id, other.state, other.in_input) == (derived_id(jobs, 1), S.DOWNLOADED, False)
    assert len(results(tmp_path)) == 2


# --- the disk, when the journal is first made -------------------------------------------------


async def test_a_full_disk_when_the_journal_is_made_is_a_journal_error_not_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake()
    room_again = no_room_for_a_journal(monkeypatch)
    with pytest.raises(BatchJournalError, match="disk is full") as caught:
        await run(fake, jobs_of("a"), tmp_path)
    assert not isinstance(caught.value, BatchConflictError)
    assert "this run sent nothing" in str(caught.value)
    assert "run the batch again" in str(caught.value)
    assert caught.value.task is None
    assert fake.requests_to("/sonic/create") == []
    room_again()
    report = await run(fake, jobs_of("a"), tmp_path)  # the same call, once there is room
    assert_complete(report, fake)


def test_blank_default_models_are_refused_once_not_blamed_on_every_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{"prompt": "a"}', '{"prompt": "b"}')
    for blank in ("", "  "):
        with pytest.raises(BatchInputError, match="default_mv is empty") as caught:
            read_batch_jobs(path, default_mv=blank)
        assert caught.value.problems == ((None, "default_mv is empty"),)
        assert "line 1" not in str(caught.value)


async def test_unsaved_job_ids_lists_the_finished_jobs_whose_audio_is_not_saved(
    tmp_path: Path,
) -> None:
    from musicapi_async._batch import unsaved_job_ids

    assert unsaved_job_ids(tmp_path) == []
    fake = make_fake()
    jobs = jobs_of("a", "b", "c")
    await run(fake, jobs[:2], tmp_path, download=False)  # done: audio not fetched
    assert sorted(unsaved_job_ids(tmp_path)) == sorted([derived_id(jobs, 0), derived_id(jobs, 1)])
    # "b" and "c" downloaded, and "a" too: out of the file, but its task was paid for.
    report = await run(fake, jobs[1:], tmp_path)
    assert unsaved_job_ids(tmp_path) == []
    report.jobs[0].files[0].unlink()  # a saved file gone: "b" is unsaved again
    assert unsaved_job_ids(tmp_path) == [derived_id(jobs, 1)]


# --- adopting the task of an uncertain job ----------------------------------------------------


async def test_an_uncertain_job_adopts_the_task_found_on_the_dashboard(tmp_path: Path) -> None:
    fake = make_fake()
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)
    jobs = jobs_of("a", "b")
    report = await run(fake, jobs, tmp_path)
    assert [job.state for job in report.jobs] == [S.UNCERTAIN, S.DOWNLOADED]
    [found] = [t for t in fake.tasks if t != report.jobs[1].task_id]  # "a"'s, on the dashboard
    report = await run(fake, jobs, tmp_path, adopt={derived_id(jobs, 0): found})
    assert_complete(report, fake)
    assert report.jobs[0].task_id == found
    assert report.jobs[0].attempts == 1
    assert creates_by_prompt(fake) == {"a": 1, "b": 1}  # nothing paid twice
    again = await run(fake, jobs, tmp_path, adopt={derived_id(jobs, 0): found})
    assert again.complete  # the same command once more: nothing to do


async def test_a_job_left_sending_by_a_crash_adopts_its_task_too(tmp_path: Path) -> None:
    fake = make_fake()
    jobs = jobs_of("a")
    dying = CrashingTransport(
        fake, method="POST", path_part="/sonic/create", nth=1, after_server=True
    )
    await crash_run(fake, jobs, tmp_path, dying)
    assert journal_states(tmp_path) == {derived_id(jobs, 0): "sending"}
    (task_id,) = fake.tasks
    report = await run(fake, jobs, tmp_path, adopt={derived_id(jobs, 0): task_id})
    assert_complete(report, fake)
    assert creates_by_prompt(fake) == {"a": 1}


async def test_adopting_a_task_the_journal_cannot_take_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    fake = make_fake()
    jobs = jobs_of("a", "b", "c")
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)  # "a"
    report = await run(fake, jobs[:2], tmp_path)
    uncertain, done = derived_id(jobs, 0), derived_id(jobs, 1)
    done_task = report.jobs[1].task_id
    assert done_task is not None
    states = journal_states(tmp_path)
    requests = len(fake.requests)
    refused = {
        "not in this input": {derived_id(jobs, 2): "t-1"},
        "already has task": {done: "t-2"},
        f"task {done_task} is already job": {uncertain: done_task},
        "the task id is empty": {uncertain: " "},
    }
    for message, adopt in refused.items():
        with pytest.raises(BatchConflictError, match=message):
            await run(fake, jobs[:2], tmp_path, adopt=adopt)
    with pytest.raises(BatchConflictError, match="never sent"):
        await run(fake, jobs, tmp_path, adopt={derived_id(jobs, 2): "t-3"})
    assert journal_states(tmp_path) == states
    assert len(fake.requests) == requests


async def test_an_adopt_naming_one_task_twice_or_an_unknown_task_changes_nothing(
    tmp_path: Path,
) -> None:
    """One task cannot be two jobs' (the other's paid task would never be followed), and a
    mistyped id is looked up before the journal takes it: refused, the jobs stay uncertain
    and the right adopt still works."""
    fake = make_fake()
    jobs = jobs_of("a", "b")
    for _ in jobs:
        fake.inject("/sonic/create", fault="read_timeout", after_processing=True)
    await run(fake, jobs, tmp_path)
    a, b = derived_id(jobs, 0), derived_id(jobs, 1)
    task_a, task_b = (task.task_id for task in fake.tasks.values())
    states = journal_states(tmp_path)
    with pytest.raises(BatchConflictError, match=f"task {task_a} is given to both"):
        await run(fake, jobs, tmp_path, adopt={a: task_a, b: task_a})
    typo = task_b[:-1] + ("x" if task_b[-1] != "x" else "y")
    with pytest.raises(BatchConflictError, match="does not know it with this key") as refused:
        await run(fake, jobs, tmp_path, adopt={a: task_a, b: typo})
    assert "nothing was changed" in str(refused.value)
    assert journal_states(tmp_path) == states
    report = await run(fake, jobs, tmp_path, adopt={a: f" {task_a} ", b: task_b})
    assert [(job.state, job.task_id) for job in report.jobs] == [
        (S.DOWNLOADED, task_a),
        (S.DOWNLOADED, task_b),
    ]
    assert len(fake.requests_to("/sonic/create")) == 2


def two_jobs(b_prompt: str = "b", b_id: str = "b") -> list[BatchJob]:
    return [
        BatchJob("a", SonicCreate(mv="sonic-v5", gpt_description_prompt="a")),
        BatchJob(b_id, SonicCreate(mv="sonic-v5", gpt_description_prompt=b_prompt)),
    ]


async def leave_b_sending(fake: FakeMusicAPI, out: Path) -> None:
    dying = CrashingTransport(
        fake, method="POST", path_part="/sonic/create", nth=2, after_server=True
    )
    await crash_run(fake, two_jobs(), out, dying)
    assert journal_states(out)["b"] == "sending"


async def test_a_state_unknown_to_this_version_is_read_as_uncertain(tmp_path: Path) -> None:
    fake = make_fake()
    await leave_b_sending(fake, tmp_path)
    with contextlib.closing(sqlite3.connect(tmp_path / BATCH_JOURNAL)) as db, db:
        db.execute("UPDATE jobs SET state = 'handed-off' WHERE id = 'b'")
    report = await run(fake, two_jobs(), tmp_path)
    assert [j.state for j in report.by_state(BatchJobState.UNCERTAIN)] == [BatchJobState.UNCERTAIN]
    assert creates_by_prompt(fake)["b"] == 1


@pytest.mark.parametrize(
    ("jobs", "refusal"),
    [
        pytest.param(two_jobs(b_prompt="b, edited"), "other content", id="edited"),
        pytest.param(
            two_jobs(b_id="b-renamed"), "would be created again under a new id", id="renamed"
        ),
    ],
)
async def test_a_job_left_sending_may_be_neither_edited_nor_renamed(
    tmp_path: Path, jobs: list[BatchJob], refusal: str
) -> None:
    fake = make_fake()
    await leave_b_sending(fake, tmp_path)
    sent = len(fake.requests)
    with pytest.raises(BatchConflictError, match=refusal):
        await run(fake, jobs, tmp_path)
    assert len(fake.requests) == sent
