"""The SDK end to end against the public FakeMusicAPI: the guarantees users rely on."""

from __future__ import annotations

import anyio
import pytest

from musicapi_async import (
    APIConnectionError,
    APITimeoutError,
    ClipState,
    GoneError,
    InsufficientCreditsError,
    MusicAPI,
    RateLimitError,
    ServerError,
    Task,
    TaskFailedError,
    TaskFamily,
    TaskRef,
    TaskStatus,
)
from musicapi_async.testing import FakeMusicAPI, NotReadyStyle

pytestmark = pytest.mark.anyio

STYLES: list[NotReadyStyle] = ["202", "200"]


async def wait(client: MusicAPI, ref: TaskRef, every: float = 5.0) -> list[Task]:
    """Poll until terminal; return every snapshot seen."""
    seen = []
    while True:
        task = await client.get_task(ref)
        seen.append(task)
        if task.is_terminal:
            return seen
        await anyio.sleep(every)


@pytest.mark.parametrize("style", STYLES)
async def test_the_readme_quickstart_runs_against_the_fake(style: NotReadyStyle) -> None:
    """create -> get_task -> credits, then a finished task with two documented clips."""
    fake = FakeMusicAPI(not_ready_style=style, sonic_duration=120.0)
    async with fake.client() as client:
        ref = await client.sonic.create(
            custom_mode=False, mv="sonic-v5", gpt_description_prompt="lofi hip hop for studying"
        )
        first = await client.sonic.get_task(ref)
        credits = await client.credits.get()
        snapshots = await wait(client, ref)
    assert ref.family is TaskFamily.SONIC
    assert first.status is TaskStatus.PENDING
    assert credits.total == 1000 - fake.tasks[ref.task_id].price
    final = snapshots[-1]
    assert final.status is TaskStatus.SUCCEEDED
    assert [clip.state for clip in final.clips] == [ClipState.SUCCEEDED] * 2
    for clip in final.clips:
        assert clip.audio_url
        assert clip.audio_url.endswith(".mp3")
        assert isinstance(clip.duration, float)
        assert clip.duration > 0
        assert clip.created_at is not None
        assert clip.created_at.tzinfo is not None
    # It became terminal no earlier than the fake finished it.
    assert anyio.current_time() >= fake.tasks[ref.task_id].done_at


async def test_the_200_style_shows_streaming_clips_with_an_early_audio_url() -> None:
    fake = FakeMusicAPI(not_ready_style="200", rate_limit=None, initial_not_ready=5.0)
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="surf rock")
        snapshots = await wait(client, ref, every=2.0)
    states = [{clip.state for clip in task.clips} for task in snapshots]
    assert {ClipState.PENDING} in states
    streaming = [t for t in snapshots if any(c.state is ClipState.STREAMING for c in t.clips)]
    assert streaming, "the 200 style passes through streaming"
    assert all(not task.is_terminal for task in streaming)
    assert any(c.audio_url for t in streaming for c in t.clips if c.state is ClipState.STREAMING)


async def test_a_create_is_not_resent_after_a_read_timeout_and_the_error_says_so() -> None:
    """The server created (and charged) the task, but the answer was lost: exactly one create."""
    fake = FakeMusicAPI(rate_limit=None)
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)
    async with fake.client() as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="jazz")
    assert caught.value.task_may_exist is True
    assert "may already have started the task" in str(caught.value)
    assert len(fake.requests_to("/sonic/create")) == 1
    assert len(fake.tasks) == 1


async def test_a_create_is_not_resent_after_a_5xx() -> None:
    fake = FakeMusicAPI(rate_limit=None)
    fake.inject("/sonic/create", status=500, after_processing=True)
    async with fake.client() as client:
        with pytest.raises(ServerError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="jazz")
    assert caught.value.task_may_exist is True
    assert len(fake.requests_to("/sonic/create")) == 1


async def test_a_create_whose_connection_failed_before_sending_is_retried_once_created() -> None:
    fake = FakeMusicAPI(rate_limit=None)
    fake.inject("/sonic/create", fault="connect_error", times=2)
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="jazz")
    assert list(fake.tasks) == [ref.task_id]
    processed = [r for r in fake.requests_to("/sonic/create") if r.processed]
    assert len(processed) == 1


async def test_the_client_bucket_spaces_creates_so_the_fake_never_answers_429() -> None:
    """Two creates back to back on a 1-per-3 s key: the default bucket holds the second."""
    fake = FakeMusicAPI()
    async with fake.client() as client:
        start = anyio.current_time()
        first = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="a")
        second = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="b")
        elapsed = anyio.current_time() - start
    assert first != second
    assert len(fake.tasks) == 2
    assert fake.rate_limited() == 0
    # 3 s: the first create's answer came at once, which proves the server saw it by then,
    # so the bucket's 0.1 s safety margin (for requests that arrive late) was given back.
    assert elapsed == pytest.approx(3.0)


async def test_without_a_client_limiter_a_429_create_is_retried_after_retry_after() -> None:
    fake = FakeMusicAPI()
    async with fake.client(limiter=None) as client:
        start = anyio.current_time()
        await client.sonic.create(mv="sonic-v5", gpt_description_prompt="a")
        await client.sonic.create(mv="sonic-v5", gpt_description_prompt="b")
        elapsed = anyio.current_time() - start
    assert len(fake.tasks) == 2
    assert fake.rate_limited() == 1
    assert elapsed == pytest.approx(3.0)  # Retry-After: 3


async def test_a_poll_that_keeps_failing_to_connect_raises_after_the_retries() -> None:
    fake = FakeMusicAPI(rate_limit=None)
    fake.inject("/sonic/task/*", fault="connect_error", times=None)
    async with fake.client(max_retries=2) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.sonic.get_task("any")
    assert caught.value.task_may_exist is False
    assert len(fake.requests_to("/sonic/task/*")) == 3


async def test_a_rate_limit_longer_than_max_retry_after_is_raised_with_its_wait() -> None:
    fake = FakeMusicAPI(rate_limit=(1, 600.0))
    async with fake.client() as client:
        await client.credits.get()
        with pytest.raises(RateLimitError) as caught:
            await client.credits.get()
    # The client's bucket sent the second request 3 s after the first (answered at once).
    assert caught.value.retry_after == 597


async def test_insufficient_credits_is_its_own_error_and_charges_nothing() -> None:
    fake = FakeMusicAPI(rate_limit=None, credits=5)
    async with fake.client() as client:
        with pytest.raises(InsufficientCreditsError):
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="jazz")
    assert fake.credits().total == 5
    assert not fake.tasks


@pytest.mark.parametrize("outcome", ["failed", "timeout", "api_error"])
async def test_a_failed_task_is_terminal_and_raise_for_status_raises(outcome: str) -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=30.0)
    fake.plan(outcome=outcome)  # type: ignore[arg-type]
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="jazz")
        final = (await wait(client, ref))[-1]
    assert final.status is TaskStatus.FAILED
    assert final.error_type == outcome
    with pytest.raises(TaskFailedError) as caught:
        final.raise_for_status()
    assert caught.value.task is final


async def test_one_clip_failing_of_two_is_a_success_with_the_failure_visible() -> None:
    fake = FakeMusicAPI(rate_limit=None, not_ready_style="200", sonic_duration=30.0)
    fake.plan(outcome="partial")
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="jazz")
        final = (await wait(client, ref))[-1]
    assert final.status is TaskStatus.SUCCEEDED
    assert sorted(c.state.value for c in final.clips) == ["failed", "succeeded"]


@pytest.mark.parametrize("style", STYLES)
async def test_producer_create_and_download_complete(style: NotReadyStyle) -> None:
    fake = FakeMusicAPI(rate_limit=None, not_ready_style=style)
    async with fake.client() as client:
        ref = await client.producer.create(sound="warm synthwave")
        final = (await wait(client, ref))[-1]
        assert final.status is TaskStatus.SUCCEEDED
        clip_id = final.clips[0].clip_id
        assert clip_id
        download = await client.producer.download(clip_id, format="wav")
        done = (await wait(client, download))[-1]
    assert done.status is TaskStatus.SUCCEEDED
    assert done.clips[0].clip_id is None
    assert done.clips[0].audio_url


async def test_every_nuro_route_is_a_clear_gone_error() -> None:
    fake = FakeMusicAPI(rate_limit=None)
    async with fake.client() as client:
        with pytest.raises(GoneError, match=r"sonic or client\.producer"):
            await client.nuro.create(type="bgm", description="calm piano")
        with pytest.raises(GoneError):
            await client.nuro.get_task("old-task")


async def test_a_task_ref_saved_as_json_resumes_in_another_client() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=10.0)
    async with fake.client() as first:
        saved = (await first.sonic.create(mv="sonic-v5", gpt_description_prompt="x")).to_json()
    async with fake.client() as second:
        final = (await wait(second, TaskRef.from_json(saved)))[-1]
    assert final.succeeded
    assert final.task_id == TaskRef.from_json(saved).task_id


async def test_the_fake_never_shows_a_webhook_secret_or_the_key_in_its_records() -> None:
    fake = FakeMusicAPI(rate_limit=None)
    async with fake.client(api_key=FakeMusicAPI.DEFAULT_KEY) as client:
        await client.sonic.create(
            mv="sonic-v5",
            gpt_description_prompt="x",
            webhook_url="https://example.com/hook",
            webhook_secret="whsec-TOP-SECRET",
        )
    record = fake.requests_to("/sonic/create")[0]
    assert record.json["webhook_secret"] == "whsec-TOP-SECRET"  # kept for assertions
    assert "whsec-TOP-SECRET" not in repr(record)
    assert FakeMusicAPI.DEFAULT_KEY not in repr(record)
