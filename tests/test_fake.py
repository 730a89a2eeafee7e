"""FakeMusicAPI behaves like the contract says, driven through a plain httpx client."""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import trio
import trio.testing

import musicapi_async.testing as testing_module
from musicapi_async import APITimeoutError
from musicapi_async.testing import FakeMusicAPI, FakeTask, RequestRecord

pytestmark = pytest.mark.anyio

KEY = FakeMusicAPI.DEFAULT_KEY
NO_CREDITS = (
    "The remaining credits are not enough. You can buy more one-time credit packs or subscribe."
)
CUSTOM: dict[str, Any] = {
    "custom_mode": True,
    "mv": "sonic-v5",
    "prompt": "[Verse]\nStars above\n[Chorus]\nShine on",
    "title": "Stars",
    "tags": "pop, dreamy",
}
DESCRIPTION: dict[str, Any] = {
    "custom_mode": False,
    "mv": "sonic-v4-5",
    "gpt_description_prompt": "an upbeat summer song",
}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def fake_without_limit(**kwargs: Any) -> FakeMusicAPI:
    return FakeMusicAPI(rate_limit=None, **kwargs)


@asynccontextmanager
async def connect(fake: FakeMusicAPI, key: str | None = KEY) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    # Longer than any latency or delay these tests give the fake (httpx's default is 5 s).
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.base_url, headers=headers, timeout=60.0
    ) as client:
        yield client


async def create(http: httpx.AsyncClient, body: dict[str, Any] | None = None) -> str:
    answer = await http.post("/sonic/create", json=CUSTOM if body is None else body)
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["task_id"]
    assert isinstance(task_id, str)
    return task_id


async def sleep_until(moment: float) -> None:
    await anyio.sleep(moment - anyio.current_time())


# ---------------------------------------------------------------------------- auth


async def test_missing_authorization_header_is_401() -> None:
    fake = fake_without_limit()
    async with connect(fake, key=None) as http:
        answer = await http.get("/get-credits")
    assert answer.status_code == 401
    assert answer.json() == {"message": "Authorization header is missing."}


@pytest.mark.parametrize("value", ["Token test-key", "Bearer", "test-key", "Bearer a b"])
async def test_authorization_not_bearer_is_401_invalid_format(value: str) -> None:
    fake = fake_without_limit()
    async with connect(fake, key=None) as http:
        answer = await http.get("/get-credits", headers={"Authorization": value})
    assert answer.status_code == 401
    assert answer.json() == {"message": "Invalid authorization format."}


async def test_unknown_and_removed_keys_are_401_and_added_keys_work() -> None:
    fake = fake_without_limit()
    fake.add_key("other", credits=7, extra_credits=3)
    async with connect(fake, key="nope") as http:
        answer = await http.get("/get-credits")
    assert answer.status_code == 401
    assert answer.json() == {"message": "Invalid API key."}
    assert fake.requests[-1].api_key == "nope"
    async with connect(fake, key="other") as http:
        assert (await http.get("/get-credits")).json() == {"credits": 7, "extra_credits": 3}
        fake.remove_key("other")
        assert (await http.get("/get-credits")).status_code == 401


# ---------------------------------------------------------------------------- task lifecycle


async def test_202_style_answers_not_ready_until_done_then_final_clips() -> None:
    fake = fake_without_limit()
    async with connect(fake) as http:
        start = anyio.current_time()
        task_id = await create(http)
        first = await http.get(f"/sonic/task/{task_id}")
        assert (first.status_code, first.json()) == (202, {"type": "not_ready"})
        await sleep_until(start + 119.9)
        assert (await http.get(f"/sonic/task/{task_id}")).status_code == 202
        await sleep_until(start + 120)
        done = await http.get(f"/sonic/task/{task_id}")
    assert done.status_code == 200
    body = done.json()
    assert body["code"] == 200
    assert body["message"] == "success"
    clips = body["data"]
    assert [c["state"] for c in clips] == ["succeeded", "succeeded"]
    task = fake.tasks[task_id]
    assert [c["clip_id"] for c in clips] == list(task.clip_ids)
    for clip in clips:
        cid = clip["clip_id"]
        assert clip["title"] == "Stars"
        assert clip["tags"] == "pop, dreamy"
        assert clip["lyrics"] == CUSTOM["prompt"]
        assert clip["audio_url"] == f"https://cdn1.suno.ai/{cid}.mp3"
        assert clip["image_url"] == f"https://cdn2.suno.ai/image_{cid}.jpeg"
        assert clip["video_url"].startswith("https://cdn1.suno.ai/")
        assert ISO_MS.match(clip["created_at"])
        assert clip["mv"] == "chirp-v5"
        assert re.fullmatch(r"\d+\.\d\d", clip["duration"])
        for name in ("gpt_description_prompt", "negative_tags", "style_weight"):
            assert name in clip
        assert "weirdness_constraint" in clip


async def test_200_style_moves_clips_through_states_at_exact_times() -> None:
    fake = fake_without_limit(not_ready_style="200", initial_not_ready=10.0, clip_spread=5.0)
    async with connect(fake) as http:
        start = anyio.current_time()
        task_id = await create(http)

        async def states_at(moment: float) -> Any:
            await sleep_until(start + moment)
            answer = await http.get(f"/sonic/task/{task_id}")
            assert answer.status_code == 200
            body = answer.json()
            return body if "type" in body else [c["state"] for c in body["data"]]

        assert await states_at(0) == {"type": "not_ready"}
        assert await states_at(9.9) == {"type": "not_ready"}
        assert await states_at(10) == ["pending", "pending"]
        # clip 0 ends at 115 s, clip 1 at 120 s; running from a quarter, streaming from half
        assert await states_at(29) == ["running", "pending"]
        assert await states_at(30) == ["running", "running"]
        assert await states_at(60) == ["streaming", "streaming"]
        snapshot = (await http.get(f"/sonic/task/{task_id}")).json()["data"]
        assert all(c["audio_url"].startswith("https://audiopipe.suno.ai/") for c in snapshot)
        assert all(c["duration"] is None for c in snapshot)
        assert await states_at(115) == ["succeeded", "streaming"]
        assert await states_at(120) == ["succeeded", "succeeded"]


async def test_durations_can_be_sent_as_numbers() -> None:
    fake = fake_without_limit(duration_as_string=False, sonic_duration=1.0)
    async with connect(fake) as http:
        task_id = await create(http)
        await anyio.sleep(1)
        clips = (await http.get(f"/sonic/task/{task_id}")).json()["data"]
    assert all(isinstance(c["duration"], float) for c in clips)


async def test_description_mode_clips_echo_the_request() -> None:
    fake = fake_without_limit(sonic_duration=0.0)
    async with connect(fake) as http:
        task_id = await create(http, {**DESCRIPTION, "style_weight": 0.5, "negative_tags": "rock"})
        clips = (await http.get(f"/sonic/task/{task_id}")).json()["data"]
    assert clips[0]["gpt_description_prompt"] == "an upbeat summer song"
    assert clips[0]["style_weight"] == 0.5
    assert clips[0]["negative_tags"] == "rock"
    assert clips[0]["mv"] == "chirp-v4-5"
    assert clips[0]["lyrics"]


# ---------------------------------------------------------------------------- outcomes, credits


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ("failed", "Generation failed. Credits have been refunded."),
        ("timeout", "Task failed due to timeout. Credits were previously refunded."),
        ("api_error", "API system error, please contact administrator"),
    ],
)
async def test_failed_task_answers_type_and_is_refunded_at_done_time(
    outcome: Any, message: str
) -> None:
    fake = fake_without_limit(sonic_duration=60.0)
    fake.plan(outcome=outcome)
    async with connect(fake) as http:
        start = anyio.current_time()
        task_id = await create(http)
        await sleep_until(start + 59)
        assert (await http.get(f"/sonic/task/{task_id}")).status_code == 202
        assert fake.credits().credits == 1000 - 15
        await sleep_until(start + 60)
        answer = await http.get(f"/sonic/task/{task_id}")
    assert answer.status_code == 200
    assert answer.json() == {"type": outcome, "message": message}
    assert fake.credits() == testing_module.Balance(1000, 0)
    assert fake.tasks[task_id].refund == 15


async def test_failure_alias_and_error_key_in_error_envelopes() -> None:
    fake = fake_without_limit(sonic_duration=0.0, error_envelope="type_error")
    fake.plan(outcome="failure", failure_message="boom")
    async with connect(fake) as http:
        task_id = await create(http)
        answer = await http.get(f"/sonic/task/{task_id}")
    assert answer.json() == {"type": "failed", "error": "boom"}
    assert fake.tasks[task_id].outcome == "failed"


async def test_partial_outcome_fails_last_clip_and_refunds_its_share() -> None:
    fake = fake_without_limit(sonic_duration=30.0)
    fake.plan(outcome="partial")
    async with connect(fake) as http:
        task_id = await create(http)
        await anyio.sleep(30)
        clips = (await http.get(f"/sonic/task/{task_id}")).json()["data"]
    assert [c["state"] for c in clips] == ["succeeded", "failed"]
    assert clips[1]["audio_url"] is None
    assert fake.credits().credits == 1000 - 15 + 7


async def test_a_task_failing_as_a_whole_shows_no_finished_clip_before_it_fails() -> None:
    """200 style, clips 5 s apart: a clip "succeeded" 5 s before the task failed and was
    refunded would have an app save a dead link."""
    fake = fake_without_limit(not_ready_style="200", sonic_duration=100.0, clip_spread=5.0)
    fake.plan(outcome="failed")
    async with connect(fake) as http:
        task_id = await create(http)
        await anyio.sleep(97)
        clips = (await http.get(f"/sonic/task/{task_id}")).json()["data"]
        assert [c["state"] for c in clips] == ["streaming", "streaming"]
        await anyio.sleep(3)
        body = (await http.get(f"/sonic/task/{task_id}")).json()
    assert body["type"] == "failed"
    assert fake.credits().total == 1000


def test_an_unknown_outcome_is_refused_where_it_is_given() -> None:
    """Not at the next create, after its credits were taken."""
    with pytest.raises(ValueError, match=r"plan\(outcome=...\): unknown task outcome 'fail'"):
        FakeMusicAPI().plan(outcome="fail")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown task outcome 'nope'.*'failed'"):
        FakeMusicAPI(outcome="nope")  # type: ignore[arg-type]


@pytest.mark.parametrize("nonsense", ["nope", None, len], ids=["string", "none", "function"])
async def test_an_outcome_function_returning_nonsense_charges_nothing(nonsense: object) -> None:
    fake = fake_without_limit(outcome=lambda task: nonsense)
    async with connect(fake) as http:
        with pytest.raises(ValueError, match="outcome function's result"):
            await create(http)
    assert fake.credits().total == 1000
    assert fake.tasks == {}


def test_one_fake_keeps_its_time_across_event_loops() -> None:
    """A fake serving several ``anyio.run`` calls (the tests of a Celery worker): each loop's
    clock starts elsewhere (here at 0 again), and the fake's tasks, rate limit and refunds
    go on from where the last loop left off, by the real time between the loops."""
    fake = FakeMusicAPI(sonic_duration=0.1, rate_limit=(1, 0.2))
    fake.plan(outcome="failed")

    async def create_late() -> str:
        await anyio.sleep(0.3)  # the task is created at 0.3 s on this loop's clock
        async with connect(fake) as http:
            return await create(http)

    async def poll(task_id: str) -> tuple[int, Any, str]:
        await anyio.sleep(0.25)  # 0.25 s on a clock that starts at 0 again
        async with connect(fake) as http:
            answer = await http.get(f"/sonic/task/{task_id}")
        return answer.status_code, answer.json(), fake.tasks[task_id].status

    def clock() -> trio.testing.MockClock:
        # Real time, from 0 in each run. (A virtual clock's time that the fake never read
        # is not seen by the next loop: only the real time between two readings is.)
        return trio.testing.MockClock(rate=1.0)

    task_id = trio.run(create_late, clock=clock())
    status, body, status_now = trio.run(poll, task_id, clock=clock())
    assert status == 200  # not a 429 for a request "before" the last one
    assert body["type"] == "failed"  # not pending: 0.25 s is not before its creation
    assert status_now == "failed"
    assert fake.credits().total == 1000  # refunded, read outside any loop


async def test_plans_queue_in_order_and_accept_callables() -> None:
    fake = fake_without_limit()
    fake.plan(duration=5.0, outcome="failed")
    fake.plan(duration=lambda task: 42.0 if task.task_type == "create_music" else 1.0, times=2)
    async with connect(fake) as http:
        first, second, third = [await create(http) for _ in range(3)]
        fourth = await create(http)
    tasks = fake.tasks
    assert (tasks[first].duration, tasks[first].outcome) == (5.0, "failed")
    assert (tasks[second].duration, tasks[second].outcome) == (42.0, "success")
    assert tasks[third].duration == 42.0
    assert tasks[fourth].duration == 120.0


async def test_default_outcome_may_be_a_function_of_the_task() -> None:
    fake = fake_without_limit(
        sonic_duration=0.0,
        outcome=lambda task: "timeout" if task.request.get("title") == "bad" else "success",
    )
    async with connect(fake) as http:
        good = await create(http)
        bad = await create(http, {**CUSTOM, "title": "bad"})
    assert fake.tasks[good].outcome == "success"
    assert fake.tasks[bad].outcome == "timeout"


async def test_extra_credits_are_spent_first_and_refunds_go_back_where_they_came_from() -> None:
    fake = fake_without_limit(credits=100, extra_credits=10, sonic_duration=10.0)
    fake.plan(outcome="failed")
    async with connect(fake) as http:
        await create(http)
        assert (await http.get("/get-credits")).json() == {"credits": 95, "extra_credits": 0}
        await anyio.sleep(10)
        assert (await http.get("/get-credits")).json() == {"credits": 100, "extra_credits": 10}


async def test_not_enough_credits_is_403_with_catalog_message_and_charges_nothing() -> None:
    fake = fake_without_limit(credits=14)
    async with connect(fake) as http:
        answer = await http.post("/sonic/create", json=CUSTOM)
        assert answer.status_code == 403
        assert answer.json() == {"message": NO_CREDITS}
        assert fake.tasks == {}
        assert fake.credits().total == 14
        concat = {"task_type": "concat_music", "continue_clip_id": "c-1"}
        assert (await http.post("/sonic/create", json=concat)).status_code == 200
    assert fake.credits().total == 12


async def test_create_voice_refuses_missing_credits_with_402_like_the_spec() -> None:
    fake = fake_without_limit(credits=3)
    async with connect(fake) as http:
        voice = await http.post("/sonic/create-voice", json={"audio_url": "https://x/v.wav"})
        fake.no_credits_status["/sonic/create-voice"] = 403
        again = await http.post("/sonic/create-voice", json={"audio_url": "https://x/v.wav"})
    assert (voice.status_code, voice.json()) == (402, {"message": NO_CREDITS})
    assert again.status_code == 403


async def test_prices_are_configurable_per_route_and_task_type() -> None:
    fake = fake_without_limit(prices={"/sonic/create:create_music": 20, "/sonic/wav": 2})
    async with connect(fake) as http:
        await create(http)
        await http.post("/sonic/wav", json={"clip_id": "c-1"})
    assert fake.credits().total == 1000 - 22
    assert fake.last_task.price == 20


# ---------------------------------------------------------------------------- rate limit


async def test_rate_limit_refuses_early_requests_with_exact_retry_after() -> None:
    fake = FakeMusicAPI()  # one request per 3 s per key, polls included
    async with connect(fake) as http:
        start = anyio.current_time()
        assert (await http.get("/get-credits")).status_code == 200
        await sleep_until(start + 1)
        early = await http.get("/get-credits")
        assert early.status_code == 429
        assert early.headers["retry-after"] == "2"
        assert early.json() == {"message": "Too many requests. Please retry after 2 seconds."}
        await sleep_until(start + 2.5)
        assert (await http.get("/get-credits")).headers["retry-after"] == "1"
        # the two refused requests spent nothing: the budget is back at exactly 3 s
        await sleep_until(start + 3)
        assert (await http.get("/get-credits")).status_code == 200
        await sleep_until(start + 3.2)
        assert (await http.get("/get-credits")).headers["retry-after"] == "3"
    assert fake.rate_limited(KEY) == 3
    assert fake.rate_limited() == 3
    assert [r.status for r in fake.requests] == [200, 429, 429, 200, 429]


async def test_rate_limit_is_per_key_and_covers_polls_and_errors() -> None:
    fake = FakeMusicAPI()
    fake.add_key("second")
    async with connect(fake) as http, connect(fake, key="second") as other:
        task_id = await create(http)
        assert (await http.get(f"/sonic/task/{task_id}")).status_code == 429
        assert (await other.get(f"/sonic/task/{task_id}")).status_code == 404
        await anyio.sleep(3)
        assert (await http.post("/sonic/create", json={})).status_code == 400
        assert (await http.get(f"/sonic/task/{task_id}")).status_code == 429
    assert fake.rate_limited("second") == 0


async def test_rate_limit_burst_configuration_and_switching_off() -> None:
    fake = FakeMusicAPI(rate_limit=(2, 6.0))
    async with connect(fake) as http:
        assert (await http.get("/get-credits")).status_code == 200
        assert (await http.get("/get-credits")).status_code == 200
        refused = await http.get("/get-credits")
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "3")
        fake.rate_limit = None
        for _ in range(5):
            assert (await http.get("/get-credits")).status_code == 200
        fake.rate_limit = (1, 3.0)
        assert (await http.get("/get-credits")).status_code == 200
        assert (await http.get("/get-credits")).status_code == 429


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**CUSTOM, "custom_mode": "yes"}, "The 'custom_mode' field should be boolean."),
        ({**CUSTOM, "make_instrumental": 1}, "The 'make_instrumental' field should be boolean."),
        (
            {**CUSTOM, "task_type": "persona_music"},
            "The 'persona_id' field is required when task_type = persona_music.",
        ),
        ({**CUSTOM, "title": "x" * 81}, "The title character length should be less than 80."),
        ({**CUSTOM, "tags": "x" * 1001}, "The tags character length should be less than 1000."),
        ({**CUSTOM, "prompt": "x" * 5001}, "The prompt character length should be less than 5000."),
        (
            {**DESCRIPTION, "gpt_description_prompt": "x" * 401},
            "The 'gpt_description_prompt' character length should be less than 400.",
        ),
        ({"custom_mode": True, "prompt": "la"}, "The 'mv' field is required."),
        ({"mv": "sonic-v5", "prompt": "la"}, "The 'custom_mode' field is required."),
        (
            {"custom_mode": True, "mv": "sonic-v5"},
            "The 'prompt' field is required when custom_mode is true.",
        ),
        (
            {"custom_mode": True, "mv": "sonic-v5", "make_instrumental": True, "tags": "ambient"},
            "The 'prompt' field is required when custom_mode is true.",
        ),
        (
            {"custom_mode": False, "mv": "sonic-v5"},
            "The 'gpt_description_prompt' field is required when custom_mode is false.",
        ),
        (
            {**CUSTOM, "task_type": "extend_music", "continue_clip_id": "c-1"},
            "The 'continue_at' field is required when task_type = extend_music.",
        ),
        (
            {"task_type": "cover_music", "custom_mode": True, "mv": "sonic-v5"},
            "The 'continue_clip_id' field is required when task_type = cover_music.",
        ),
        (
            {"task_type": "add_vocals", "continue_clip_id": "c-1", "mv": "sonic-v5"},
            "The 'prompt' field is required when task_type = add_vocals.",
        ),
        ({**CUSTOM, "task_type": "dance"}, "The 'task_type' field is invalid: 'dance'."),
        (
            {**CUSTOM, "style_weight": 1.01},
            "The 'style_weight' field should be a number between 0 and 1.",
        ),
        ({**CUSTOM, "vocal_gender": "x"}, "The 'vocal_gender' field should be 'f' or 'm'."),
    ],
)
async def test_sonic_create_validation_is_400_with_documented_messages(
    body: dict[str, Any], message: str
) -> None:
    fake = fake_without_limit()
    async with connect(fake) as http:
        answer = await http.post("/sonic/create", json=body)
    assert answer.status_code == 400
    assert answer.json() == {"message": message}
    assert fake.credits().total == 1000
    assert fake.tasks == {}


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[1, 2]",
        b"",
        b"[" * 100_000 + b"]" * 100_000,  # nested too deep for Python's parser
        json.dumps({**CUSTOM, "style_weight": math.nan}).encode(),  # NaN: not JSON
        json.dumps({**CUSTOM, "style_weight": math.inf}).encode(),
    ],
    ids=["text", "array", "empty", "deep", "nan", "infinity"],
)
async def test_post_body_must_be_a_json_object(content: bytes) -> None:
    fake = fake_without_limit()
    async with connect(fake) as http:
        answer = await http.post("/sonic/create", content=content)
    assert answer.status_code == 400
    assert answer.json() == {"message": "The request body should be a JSON object."}
    assert fake.credits().total == 1000


async def test_every_documented_task_type_is_accepted_with_its_required_fields() -> None:
    fake = fake_without_limit()
    source = {"continue_clip_id": "c-1"}
    bodies = [
        {**CUSTOM, "task_type": "extend_music", **source, "continue_at": 30.5},
        {"task_type": "concat_music", **source},
        {**CUSTOM, "task_type": "cover_music", **source},
        {**CUSTOM, "task_type": "persona_music", "persona_id": "p-1"},
        {**CUSTOM, "task_type": "extend_upload_music", **source, "continue_at": 0.1},
        {**CUSTOM, "task_type": "cover_upload_music", **source, "audio_weight": 0.6},
        {"task_type": "remaster", **source, "mv": "sonic-v5", "variation_category": "high"},
        {"task_type": "add_instrumental", **source, "mv": "sonic-v5"},
        {"task_type": "add_vocals", **source, "mv": "sonic-v5", "prompt": "la la"},
        {**CUSTOM, "make_instrumental": True},
    ]
    async with connect(fake) as http:
        for body in bodies:
            await create(http, body)
    types = [t.task_type for t in fake.tasks.values()]
    assert types[:3] == ["extend_music", "concat_music", "cover_music"]
    assert [len(t.clip_ids) for t in fake.tasks.values()][:2] == [2, 1]
    assert fake.credits().total == 1000 - 9 * 15 - 2


async def test_models_are_open_but_refused_models_and_limits_are_configurable() -> None:
    fake = fake_without_limit(refused_models={"sonic-v4-5-all"}, length_limits={"title": 10})
    async with connect(fake) as http:
        await create(http, {**CUSTOM, "mv": "sonic-v9-future", "title": "short"})
        refused = await http.post("/sonic/create", json={**CUSTOM, "mv": "sonic-v4-5-all"})
        assert refused.status_code == 400
        assert refused.json()["message"].startswith("The 'mv' field is invalid.")
        fake.length_limits["title"] = 3
        too_long = await http.post("/sonic/create", json=CUSTOM)
        assert too_long.json() == {"message": "The title character length should be less than 3."}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/sonic/upload", {}, "The 'url' field is required."),
        ("/sonic/upload", {"url": "ftp://x/y.mp3"}, "The url should be a public http(s) URL."),
        (
            "/sonic/sample",
            {"url": "https://x/a.mp3", "sample_clip_id": "c-1"},
            "Exactly one of 'url' or 'sample_clip_id' is required.",
        ),
        (
            "/sonic/mashup",
            {"mashup_clip_ids": ["a"], "custom_mode": False, "mv": "sonic-v4-5-all"},
            "The 'mashup_clip_ids' field should hold exactly 2 clip ids.",
        ),
        (
            "/sonic/replace-section",
            {"clip_id": "c-1", "mv": "sonic-v5", "infill_start_s": 30, "infill_end_s": 30},
            "The 'infill_end_s' field should be greater than infill_start_s.",
        ),
        ("/sonic/stems/basic", {}, "The 'clip_id' field is required."),
        ("/sonic/lyrics", {}, "description is required."),
        (
            "/sonic/lyrics",
            {"description": "x" * 121},
            "The description character length should be less than 120.",
        ),
        ("/sonic/persona", {"name": "Me"}, "name and clip_id are required fields."),
        (
            "/sonic/persona",
            {"name": "Me", "description": "soft"},
            "name and clip_id are required fields.",
        ),
        (
            "/sonic/persona",
            {"description": "soft", "continue_clip_id": "c-1"},
            "name and continue_clip_id are required fields.",
        ),
        ("/sonic/batch", {"items": []}, "The 'items' field should be a non-empty list."),
        ("/sonic/batch", {"items": [DESCRIPTION] * 11}, "A batch holds at most 10 items."),
        (
            "/sonic/vox",
            {"clip_id": "c-1", "vocal_start_s": 0, "vocal_end_s": 31},
            "The vocal window should be at most 30 seconds.",
        ),
        ("/producer/create", {"title": "x"}, "The 'sound' or 'lyrics' field is required."),
        (
            "/producer/create",
            {"task_type": "extend_music", "starts_at": 4},
            "The 'clip_id' field is required when task_type = extend_music.",
        ),
        ("/producer/download", {"format": "wav"}, "The 'clip_id' field is required."),
        ("/producer/upload", {}, "The 'audio_url' field is required."),
        ("/sonic/create-voice", {}, "The 'audio_url' field is required."),
    ],
)
async def test_other_endpoints_validate_their_required_fields(
    path: str, body: dict[str, Any], message: str
) -> None:
    fake = fake_without_limit()
    async with connect(fake) as http:
        answer = await http.post(path, json=body)
    assert (answer.status_code, answer.json()) == (400, {"message": message})
    assert fake.credits().total == 1000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "vocal"}, "The 'lyrics' field is required."),
        ({"type": "bgm"}, "The 'description' field is required."),
        (
            {"type": "bgm", "description": "x", "duration": 61},
            "The 'duration' field should be an integer between 1 and 60.",
        ),
        ({"type": "song"}, "The 'type' field should be 'vocal' or 'bgm'."),
    ],
)
async def test_nuro_validation_when_enabled(body: dict[str, Any], message: str) -> None:
    fake = fake_without_limit(nuro_retired=False)
    async with connect(fake) as http:
        answer = await http.post("/nuro/create", json=body)
    assert (answer.status_code, answer.json()) == (400, {"message": message})


# ---------------------------------------------------------------------------- other sonic tasks


async def test_upload_extend_and_cover_answer_code_and_steps() -> None:
    fake = fake_without_limit(sonic_duration=0.0)
    body = {"url": "https://example.com/a.mp3", "custom_mode": False, "mv": "sonic-v5"}
    async with connect(fake) as http:
        extend = (await http.post("/sonic/upload-extend", json=body)).json()
        cover = (await http.post("/sonic/upload-cover", json=body)).json()
        clips = (await http.get(f"/sonic/task/{extend['task_id']}")).json()["data"]
    assert extend["code"] == 200
    assert extend["message"] == "success"
    assert extend["steps"]["upload"]["success"] is True
    assert extend["steps"]["extend"] == {"success": True, "task_id": extend["task_id"]}
    assert "cover" in cover["steps"]
    assert len(clips) == 2
    assert fake.tasks[extend["task_id"]].task_type == "upload_extend"
    assert fake.credits().total == 1000 - 30


async def test_upload_extend_with_auto_concat_pairs_each_extension_with_the_full_song() -> None:
    """CONTRACT §4, §9.2: ``auto_concat`` also returns the joined song, in pairs."""
    fake = fake_without_limit(sonic_duration=0.0)
    body = {"url": "https://example.com/a.mp3", "custom_mode": False, "mv": "sonic-v5"}

    async def sections(http: httpx.AsyncClient, path: str, **extra: Any) -> list[str | None]:
        task_id = (await http.post(path, json={**body, **extra})).json()["task_id"]
        clips = (await http.get(f"/sonic/task/{task_id}")).json()["data"]
        assert all(c["state"] == "succeeded" for c in clips)
        return [c.get("section") for c in clips]

    async with connect(fake) as http:
        joined = await sections(http, "/sonic/upload-extend", auto_concat=True)
        plain = await sections(http, "/sonic/upload-extend", auto_concat=False)
        # "upload + cover" has no concat step: nothing to join.
        cover = await sections(http, "/sonic/upload-cover", auto_concat=True)
    assert joined == ["extended", "full", "extended", "full"]
    assert plain == [None, None]
    assert cover == [None, None]
    assert fake.credits().total == 1000 - 3 * 15


async def test_sample_mashup_replace_section_and_create_voice_create_tasks() -> None:
    fake = fake_without_limit(sonic_duration=0.0)
    async with connect(fake) as http:
        sample = await http.post(
            "/sonic/sample",
            json={
                "sample_clip_id": "c-1",
                "chop_sample_start_s": 0,
                "chop_sample_end_s": 10.5,
                "custom_mode": False,
                "mv": "sonic-v4-5-all",
                "make_instrumental": False,
                "gpt_description_prompt": "remix",
            },
        )
        assert sample.json()["code"] == 200
        assert "steps" in sample.json()
        mashup = await http.post(
            "/sonic/mashup",
            json={"mashup_clip_ids": ["a", "b"], "custom_mode": False, "mv": "sonic-v4-5-all"},
        )
        replace = await http.post(
            "/sonic/replace-section",
            json={
                "clip_id": "c-1",
                "mv": "sonic-v5",
                "infill_start_s": 30,
                "infill_end_s": 45.5,
                "auto_concat": True,
            },
        )
        voice = await http.post("/sonic/create-voice", json={"audio_url": "https://x/v.wav"})
        assert "warning" in voice.json()
        voice_clips = (await http.get(f"/sonic/task/{voice.json()['task_id']}")).json()["data"]
        replaced = (await http.get(f"/sonic/task/{replace.json()['task_id']}")).json()["data"]
    assert mashup.status_code == 200
    assert len(voice_clips) == 1
    assert voice_clips[0]["persona_id"]
    assert [c["section"] for c in replaced] == ["replaced", "full"]
    assert [t.task_type for t in fake.tasks.values()] == [
        "sample",
        "mashup",
        "replace_section",
        "create_voice",
    ]
    assert fake.credits().total == 1000 - 14 - 10 - 10 - 4


async def test_stems_give_one_clip_per_stem() -> None:
    fake = fake_without_limit(sonic_duration=0.0)
    async with connect(fake) as http:
        basic = (await http.post("/sonic/stems/basic", json={"clip_id": "c-1"})).json()
        full = (await http.post("/sonic/stems/full", json={"clip_id": "c-1"})).json()
        basic_clips = (await http.get(f"/sonic/task/{basic['task_id']}")).json()["data"]
        full_clips = (await http.get(f"/sonic/task/{full['task_id']}")).json()["data"]
    assert [c["title"] for c in basic_clips] == ["Vocals", "Instrumental"]
    assert len(full_clips) == 12
    assert fake.credits().total == 1000 - 20 - 75


async def test_batch_creates_a_task_per_item_and_reports_refused_items_in_place() -> None:
    fake = fake_without_limit(sonic_duration=60.0)
    items = [DESCRIPTION, {"custom_mode": "no"}, CUSTOM]
    async with connect(fake) as http:
        start = anyio.current_time()
        answer = await http.post("/sonic/batch", json={"items": items})
        body = answer.json()
        assert answer.status_code == 200
        assert body["message"] == "success"
        assert body["submitted"] == 2
        tasks = body["tasks"]
        assert [t["index"] for t in tasks] == [0, 1, 2]
        assert tasks[1] == {
            "index": 1,
            "status": 400,
            "error": "The 'custom_mode' field should be boolean.",
        }
        ids = [tasks[0]["task_id"], tasks[2]["task_id"]]
        assert all(fake.tasks[i].batch_id == body["batch_id"] for i in ids)
        await sleep_until(start + 20)
        got = await http.get("/sonic/batch", params={"batch_id": body["batch_id"]})
        assert got.json() == {
            "batch_id": body["batch_id"],
            "submitted": 2,
            "tasks": [{"task_id": i, "status": "running"} for i in ids],
        }
        await sleep_until(start + 60)
        got = await http.get("/sonic/batch", params={"batch_id": body["batch_id"]})
        assert [t["status"] for t in got.json()["tasks"]] == ["succeeded", "succeeded"]
        assert (await http.get("/sonic/batch")).status_code == 400
        assert (await http.get("/sonic/batch", params={"batch_id": "x"})).status_code == 404
    assert fake.requests[0].task_ids == tuple(ids)
    assert fake.credits().total == 1000 - 30


async def test_batch_items_beyond_the_balance_are_refused_with_403() -> None:
    fake = fake_without_limit(credits=20)
    async with connect(fake) as http:
        body = (await http.post("/sonic/batch", json={"items": [DESCRIPTION] * 2})).json()
    assert body["submitted"] == 1
    assert body["tasks"][1] == {"index": 1, "status": 403, "error": NO_CREDITS}


# ---------------------------------------------------------------------------- sync endpoints


async def test_upload_persona_wav_lyrics_and_credits_answer_documented_shapes() -> None:
    fake = fake_without_limit()
    async with connect(fake) as http:
        upload = (await http.post("/sonic/upload", json={"url": "https://x/a.mp3"})).json()
        assert set(upload) == {"code", "message", "clip_id"}
        assert (upload["code"], upload["message"]) == (200, "success")
        assert upload["clip_id"] in fake.clip_ids
        persona = (
            await http.post("/sonic/persona", json={"name": "Me", "clip_id": upload["clip_id"]})
        ).json()
        assert persona["code"] == 200
        assert persona["persona_id"]
        legacy = await http.post(
            "/sonic/persona", json={"name": "Me", "description": "x", "continue_clip_id": "c-1"}
        )
        assert legacy.status_code == 200
        wav = (await http.post("/sonic/wav", json={"clip_id": "c-1"})).json()
        assert wav == {"message": "success", "data": {"wav_url": "https://cdn1.suno.ai/c-1.wav"}}
        lyrics = (await http.post("/sonic/lyrics", json={"description": "the sky"})).json()
        assert lyrics["code"] == 200
        assert [sorted(r) for r in lyrics["results"]] == [["lyrics", "title"]] * 2
        credits = (await http.get("/get-credits")).json()
    assert credits == {"credits": 1000 - 2 - 1 - 1 - 1, "extra_credits": 0}


@pytest.mark.parametrize(
    ("path", "body", "field", "longest", "message"),
    [
        (
            "/sonic/persona",
            {"clip_id": "c-1"},
            "name",
            79,
            "The name character length should be less than 80.",
        ),
        (
            "/sonic/lyrics",
            {},
            "description",
            119,
            "The description character length should be less than 120.",
        ),
    ],
    ids=["persona name", "lyrics description"],
)
async def test_under_n_limits_take_n_minus_1_characters_and_refuse_n(
    path: str, body: dict[str, Any], field: str, longest: int, message: str
) -> None:
    """Persona name "max 79", lyrics description "under 120" (CONTRACT §4), boundary included."""
    fake = fake_without_limit()
    async with connect(fake) as http:
        fits = await http.post(path, json={**body, field: "x" * longest})
        too_long = await http.post(path, json={**body, field: "x" * (longest + 1)})
    assert fits.status_code == 200, fits.text
    assert (too_long.status_code, too_long.json()) == (400, {"message": message})


async def test_midi_answers_202_for_the_first_calls_then_instruments() -> None:
    fake = fake_without_limit(midi_not_ready_calls=2)
    async with connect(fake) as http:
        first = await http.post("/sonic/midi", json={"clip_id": "c-1"})
        second = await http.post("/sonic/midi", json={"clip_id": "c-1"})
        third = await http.post("/sonic/midi", json={"clip_id": "c-1"})
    assert (first.status_code, first.json()) == (202, {"type": "not_ready"})
    assert second.status_code == 202
    body = third.json()
    assert (third.status_code, body["code"], body["message"]) == (200, 200, "success")
    assert body["data"]["midi_url"].endswith(".mid")
    assert {"name", "notes"} <= set(body["data"]["instruments"][0])
    assert fake.credits().total == 999


async def test_aligned_lyrics_are_charged_once_per_clip() -> None:
    fake = fake_without_limit(strict_clips=True)
    fake.add_clip("sung", lyrics="[Verse]\nhello world")
    fake.add_clip("instrumental", lyrics=None)
    async with connect(fake) as http:
        first = (await http.post("/sonic/aligned-lyrics", json={"clip_id": "sung"})).json()
        again = await http.post("/sonic/aligned-lyrics", json={"clip_id": "sung"})
        none = await http.post("/sonic/aligned-lyrics", json={"clip_id": "instrumental"})
    words = first["data"]["alignment"]
    assert [w["word"] for w in words] == ["hello", "world"]
    assert set(words[0]) == {"word", "start_s", "end_s", "p_align", "success"}
    assert again.status_code == 200
    assert none.status_code == 404
    assert fake.credits().total == 999


@pytest.mark.parametrize("flat", [False, True])
async def test_bpm_vox_and_upsample_tags_wrap_in_data_or_not(flat: bool) -> None:
    fake = fake_without_limit(flat_utilities=flat)
    async with connect(fake) as http:
        bpm = (await http.post("/sonic/bpm", json={"clip_id": "c-1"})).json()
        vox = (
            await http.post(
                "/sonic/vox", json={"clip_id": "c-1", "vocal_start_s": 5, "vocal_end_s": 20}
            )
        ).json()
        tags = (await http.post("/sonic/upsample-tags", json={"tags": "pop"})).json()
    fields = [b if flat else b["data"] for b in (bpm, vox, tags)]
    assert set(fields[0]) >= {"avg_bpm", "max_bpm", "min_bpm"}
    assert fields[1]["source_clip_id"] == "c-1"
    assert (fields[1]["vocal_start_s"], fields[1]["vocal_end_s"]) == (5, 20)
    assert fields[1]["vox_audio_id"]
    assert fields[2]["upsampled_tags"].startswith("pop")
    assert ("data" in bpm) is not flat
    assert fake.credits().total == 997


async def test_download_answers_202_then_one_url_per_format() -> None:
    fake = fake_without_limit(download_not_ready_calls=1)
    body = {"clip_id": "c-1", "formats": ["mp3", "wav"]}
    async with connect(fake) as http:
        first = await http.post("/sonic/download", json=body)
        second = await http.post("/sonic/download", json=body)
        bad = await http.post("/sonic/download", json={"clip_id": "c-1", "formats": ["ogg"]})
    assert first.status_code == 202
    assert second.json() == {
        "code": 200,
        "message": "success",
        "data": {
            "mp3_url": "https://cdn1.suno.ai/c-1.mp3",
            "wav_url": "https://cdn1.suno.ai/c-1.wav",
        },
    }
    assert bad.status_code == 400
    assert fake.credits().total == 998


async def test_strict_clips_refuse_unknown_clip_ids_with_404() -> None:
    fake = fake_without_limit(strict_clips=True, sonic_duration=0.0)
    async with connect(fake) as http:
        unknown = await http.post("/sonic/wav", json={"clip_id": "made-up"})
        assert (unknown.status_code, unknown.json()) == (404, {"message": "clip not found."})
        stems = await http.post("/sonic/stems/basic", json={"clip_id": "made-up"})
        assert stems.status_code == 404
        task_id = await create(http)
        produced = fake.tasks[task_id].clip_ids[0]
        assert (await http.post("/sonic/wav", json={"clip_id": produced})).status_code == 200
        extend = {**CUSTOM, "task_type": "extend_music", "continue_clip_id": produced}
        await create(http, {**extend, "continue_at": 10})
    assert fake.credits().total == 1000 - 15 - 1 - 15


# ---------------------------------------------------------------------------- unknown tasks


async def test_unknown_foreign_and_missing_task_ids() -> None:
    fake = fake_without_limit()
    fake.add_key("other")
    async with connect(fake) as http, connect(fake, key="other") as other:
        task_id = await create(http)
        unknown = await http.get("/sonic/task/nope")
        assert (unknown.status_code, unknown.json()) == (404, {"message": "task not found."})
        assert (await other.get(f"/sonic/task/{task_id}")).status_code == 404
        assert (await http.get(f"/producer/task/{task_id}")).status_code == 404
        missing = await http.get("/sonic/task/")
        assert (missing.status_code, missing.json()) == (400, {"message": "missing task id."})
        fake.unknown_task_status = 400
        docs_style = await http.get("/sonic/task/nope")
        assert (docs_style.status_code, docs_style.json()) == (400, {"message": "task not found."})


async def test_unknown_routes_and_methods() -> None:
    fake = fake_without_limit()
    async with connect(fake) as http:
        assert (await http.get("/sonic/nothing")).status_code == 404
        assert (await http.get("/sonic/create")).status_code == 405
        assert (await http.post("/sonic/task/abc", json={})).status_code == 405


# ---------------------------------------------------------------------------- producer, nuro


async def test_producer_200_style_reports_status_values() -> None:
    fake = fake_without_limit(not_ready_style="200", producer_duration=40.0)
    body = {"sound": "upbeat electronic", "lyrics": "[Verse] go", "title": "Go", "seed": 7}
    async with connect(fake) as http:
        start = anyio.current_time()
        task_id = (await http.post("/producer/create", json=body)).json()["task_id"]

        async def status_at(moment: float) -> Any:
            await sleep_until(start + moment)
            return (await http.get(f"/producer/task/{task_id}")).json()

        pending = await status_at(0)
        assert (pending["code"], pending["status"], pending["data"]) == (200, "PENDING", [])
        running = await status_at(10)
        assert running["status"] == "RUNNING"
        assert running["data"][0]["state"] == "running"
        done = await status_at(40)
    assert done["status"] == "SUCCESS"
    (clip,) = done["data"]
    cid = clip["clip_id"]
    assert clip["audio_url"] == f"https://musicapi-cdn.b-cdn.net/producer/{cid}.m4a"
    assert clip["wav_url"].startswith("https://musicapi-cdn.b-cdn.net/")
    assert (clip["title"], clip["sound"], clip["seed"], clip["state"]) == (
        "Go",
        body["sound"],
        "7",
        "succeeded",
    )
    assert ISO_MS.match(clip["created_at"])
    for name in ("lyrics", "image_url", "mv", "duration"):
        assert name in clip
    assert fake.credits().total == 1000 - 12


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"task_type": "extend_upload_music"},
            "The 'starts_at' field is required when task_type = extend_upload_music.",
        ),
        (
            {"task_type": "extend_music"},
            "The 'starts_at' field is required when task_type = extend_music.",
        ),
        (
            {"task_type": "replace_upload_music", "starts_at": 1},
            "The 'starts_at' and 'ends_at' fields are required.",
        ),
        (
            {"task_type": "replace_upload_music", "ends_at": 9},
            "The 'starts_at' and 'ends_at' fields are required.",
        ),
    ],
)
async def test_producer_extend_and_replace_types_need_their_range(
    body: dict[str, Any], message: str
) -> None:
    """The ``*_upload_music`` twins need ``starts_at`` (and ``ends_at``) like their models."""
    fake = fake_without_limit()
    async with connect(fake) as http:
        answer = await http.post("/producer/create", json={"clip_id": "c-1", **body})
    assert (answer.status_code, answer.json()) == (400, {"message": message})
    assert fake.credits().total == 1000


@pytest.mark.parametrize("start", [{"starts_at": 0}, {"starts": 12.5}], ids=["zero", "legacy"])
async def test_producer_extend_upload_music_takes_starts_at_or_its_legacy_name(
    start: dict[str, float],
) -> None:
    fake = fake_without_limit()
    body = {"task_type": "extend_upload_music", "clip_id": "c-1", **start}
    async with connect(fake) as http:
        answer = await http.post("/producer/create", json=body)
    assert answer.status_code == 200, answer.text
    assert fake.credits().total == 1000 - 12


async def test_producer_202_style_failure_refund_retired_types_and_download() -> None:
    fake = fake_without_limit(producer_duration=30.0)
    fake.plan(outcome="failed")
    async with connect(fake) as http:
        task_id = (await http.post("/producer/create", json={"sound": "pop"})).json()["task_id"]
        assert (await http.get(f"/producer/task/{task_id}")).status_code == 202
        await anyio.sleep(30)
        failed = (await http.get(f"/producer/task/{task_id}")).json()
        assert (failed["code"], failed["status"]) == (200, "FAILED")
        assert fake.credits().total == 1000
        retired = await http.post("/producer/create", json={"task_type": "swap_music_vocals"})
        assert retired.status_code == 410
        download = await http.post("/producer/download", json={"clip_id": "c-1", "format": "wav"})
        await anyio.sleep(30)
        result = (await http.get(f"/producer/task/{download.json()['task_id']}")).json()
    assert result["status"] == "SUCCESS"
    assert list(result["data"][0]) == ["audio_url"]
    assert result["data"][0]["audio_url"].endswith(".wav")
    assert fake.credits().total == 998


async def test_nuro_routes_answer_410_by_default() -> None:
    fake = fake_without_limit()
    async with connect(fake) as http:
        create_answer = await http.post("/nuro/create", json={"type": "bgm", "description": "x"})
        poll = await http.get("/nuro/task/abc")
    for answer in (create_answer, poll):
        assert answer.status_code == 410
        assert "sonic" in answer.json()["message"]
        assert "producer" in answer.json()["message"]
    assert fake.credits().total == 1000


async def test_nuro_when_enabled_reports_flat_progress() -> None:
    fake = fake_without_limit(nuro_retired=False, nuro_duration=40.0)
    body = {
        "type": "vocal",
        "lyrics": "[verse] hi",
        "genre": "Pop",
        "mood": "Happy",
        "duration": 60,
    }
    async with connect(fake) as http:
        start = anyio.current_time()
        task_id = (await http.post("/nuro/create", json=body)).json()["task_id"]
        pending = (await http.get(f"/nuro/task/{task_id}")).json()
        await sleep_until(start + 20)
        running = (await http.get(f"/nuro/task/{task_id}")).json()
        await sleep_until(start + 40)
        done = (await http.get(f"/nuro/task/{task_id}")).json()
    assert (pending["status"], pending["progress"], pending["audio_url"]) == ("pending", 0, None)
    assert (running["status"], running["progress"]) == ("running", 50)
    assert done["task_id"] == task_id
    assert (done["status"], done["progress"]) == ("succeeded", 100)
    assert done["audio_url"].startswith("https://cdn.musicapi.ai/")
    assert done["audio_url"].endswith(".wav")
    assert done["duration"] == 60
    assert set(done) == {
        "task_id",
        "status",
        "progress",
        "audio_url",
        "lyrics",
        "duration",
        "genre",
        "mood",
        "gender",
        "timbre",
    }
    assert fake.credits().total == 990


# ---------------------------------------------------------------------------- fault injection


async def test_connect_error_is_raised_without_processing() -> None:
    fake = fake_without_limit()
    injection = fake.inject("/sonic/create", fault="connect_error")
    async with connect(fake) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post("/sonic/create", json=CUSTOM)
        await create(http)
    assert injection.hits == 1
    assert injection.exhausted
    assert len(fake.tasks) == 1
    assert fake.credits().total == 1000 - 15
    record = fake.requests[0]
    assert (record.fault, record.status, record.received, record.processed) == (
        "connect_error",
        None,
        False,
        False,
    )


async def test_read_timeout_after_processing_creates_and_charges_the_task() -> None:
    fake = fake_without_limit()
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)
    async with connect(fake) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/sonic/create", json=CUSTOM)
    (record,) = fake.requests_to("/sonic/create")
    assert (record.fault, record.status, record.processed, record.received) == (
        "read_timeout",
        None,
        True,
        True,
    )
    assert record.task_ids == (fake.last_task.task_id,)
    assert fake.credits().total == 1000 - 15


async def test_read_timeout_before_processing_creates_nothing() -> None:
    fake = fake_without_limit()
    fake.inject("/sonic/create", fault="read_timeout")
    async with connect(fake) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/sonic/create", json=CUSTOM)
    assert fake.tasks == {}


async def test_remote_protocol_error_and_delay_in_virtual_time() -> None:
    fake = fake_without_limit()
    fake.inject("/get-credits", fault="remote_protocol_error", delay=7.0)
    async with connect(fake) as http:
        start = anyio.current_time()
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/get-credits")
        assert anyio.current_time() - start == pytest.approx(7.0)


async def test_status_injection_before_processing_answers_in_the_envelope() -> None:
    fake = fake_without_limit(error_envelope="code_message")
    fake.inject("/sonic/task/*", status=503, times=2, method="GET")
    async with connect(fake) as http:
        task_id = await create(http)
        first = await http.get(f"/sonic/task/{task_id}")
        second = await http.get(f"/sonic/task/{task_id}")
        third = await http.get(f"/sonic/task/{task_id}")
    assert first.status_code == second.status_code == 503
    assert first.json() == {"code": 503, "message": "Service Unavailable."}
    assert third.status_code == 202
    assert [r.injected for r in fake.requests] == [False, True, True, False]
    assert [r.processed for r in fake.requests] == [True, False, False, True]


async def test_status_injection_after_processing_keeps_the_side_effects() -> None:
    fake = fake_without_limit()
    fake.inject(
        "/sonic/create",
        status=500,
        body={"error": "upstream exploded"},
        headers={"x-request-id": "req-1"},
        after_processing=True,
    )
    fake.inject("/get-credits", status=429, headers={"Retry-After": "17"})
    async with connect(fake) as http:
        answer = await http.post("/sonic/create", json=CUSTOM)
        limited = await http.get("/get-credits")
    assert (answer.status_code, answer.json()) == (500, {"error": "upstream exploded"})
    assert answer.headers["x-request-id"] == "req-1"
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "17")
    assert len(fake.tasks) == 1
    assert fake.requests[0].task_ids == (fake.last_task.task_id,)


def test_inject_refuses_contradictory_arguments() -> None:
    fake = FakeMusicAPI()
    with pytest.raises(ValueError, match="exactly one"):
        fake.inject(status=500, fault="read_timeout")
    with pytest.raises(ValueError, match="before"):
        fake.inject(fault="connect_error", after_processing=True)
    with pytest.raises(ValueError, match="times"):
        fake.inject(status=500, times=0)


# ---------------------------------------------------------------------------- envelopes, log


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        ("message", {"message": "Authorization header is missing."}),
        ("error", {"error": "Authorization header is missing."}),
        ("type_error", {"type": "unauthorized", "error": "Authorization header is missing."}),
        ("code_message", {"code": 401, "message": "Authorization header is missing."}),
    ],
)
async def test_error_envelope_is_switchable(envelope: Any, expected: dict[str, Any]) -> None:
    fake = fake_without_limit()
    fake.error_envelope = envelope
    async with connect(fake, key=None) as http:
        answer = await http.get("/get-credits")
    assert answer.json() == expected


def test_settings_refuse_unknown_values() -> None:
    fake = FakeMusicAPI()
    with pytest.raises(ValueError, match="error_envelope"):
        fake.error_envelope = "xml"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="not_ready_style"):
        fake.not_ready_style = "204"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="rate_limit"):
        fake.rate_limit = (0, 3.0)


async def test_request_log_records_everything_and_redacts_the_key_in_repr() -> None:
    fake = fake_without_limit()
    fake.add_key("sk-very-secret")
    async with connect(fake, key="sk-very-secret") as http:
        start = anyio.current_time()
        await anyio.sleep(4)
        task_id = await create(http)
        await http.get("/sonic/batch", params={"batch_id": "b-1"}, headers={"User-Agent": "ua/1"})
    create_record, batch_record = fake.requests
    assert create_record.time == pytest.approx(start + 4)
    assert (create_record.method, create_record.path, create_record.query) == (
        "POST",
        "/sonic/create",
        "",
    )
    assert create_record.json == CUSTOM
    assert create_record.status == 200
    assert create_record.response == {"message": "success", "task_id": task_id}
    assert create_record.api_key == "sk-very-secret"
    assert create_record.authorization == "Bearer sk-very-secret"
    assert create_record.headers["content-type"] == "application/json"
    assert batch_record.query_params == {"batch_id": "b-1"}
    assert batch_record.headers["user-agent"] == "ua/1"
    assert batch_record.json is None
    assert batch_record.status == 404
    for text in (repr(create_record), repr(fake.tasks[task_id]), repr(fake.requests)):
        assert "sk-very-secret" not in text
        assert "<redacted>" in text
    assert fake.requests_to("/sonic/*", method="GET") == [batch_record]
    assert fake.requests_to("/sonic/create") == [create_record]
    fake.clear_requests()
    assert fake.requests == ()


async def test_request_log_redacts_batch_items_webhook_secrets_in_repr_only() -> None:
    fake = fake_without_limit()
    items = [
        {**DESCRIPTION, "webhook_secret": "whsec-item-ONE"},
        {**CUSTOM, "webhook_secret": "whsec-item-TWO"},
    ]
    async with connect(fake) as http:
        assert (await http.post("/sonic/batch", json={"items": items})).status_code == 200
    (record,) = fake.requests
    for text in (repr(record), repr(fake.requests)):
        assert "whsec-item-ONE" not in text
        assert "whsec-item-TWO" not in text
        assert text.count("<redacted>") >= 2
    assert record.json == {"items": items}  # stored as sent


def test_request_record_repr_redacts_a_webhook_secret_at_any_depth() -> None:
    body: dict[str, Any] = {
        "webhook_secret": "s-top",
        "items": [{"webhook_secret": "s-item", "nested": ({"webhook_secret": "s-deep"},)}],
        "list": [[{"webhook_secret": "s-list"}]],
        "kept": "visible",
    }
    record = RequestRecord(
        time=0.0,
        method="POST",
        path="/sonic/batch",
        query="",
        json=body,
        headers={},
        api_key=None,
        status=200,
        response=None,
    )
    text = repr(record)
    for secret in ("s-top", "s-item", "s-deep", "s-list"):
        assert secret not in text
    assert text.count("<redacted>") == 4
    assert "visible" in text
    assert body["items"][0]["webhook_secret"] == "s-item"  # the body is not mutated
    assert record.json is body


async def test_task_view_exposes_its_lifecycle() -> None:
    fake = fake_without_limit(sonic_duration=100.0)
    async with connect(fake) as http:
        start = anyio.current_time()
        task_id = await create(http)
        task = fake.tasks[task_id]
        assert isinstance(task, FakeTask)
        assert (task.family, task.endpoint, task.task_type) == (
            "sonic",
            "/sonic/create",
            "create_music",
        )
        assert task.created_at == pytest.approx(start)
        assert task.done_at == pytest.approx(start + 100)
        assert task.request == CUSTOM
        assert task.api_key == KEY
        assert (task.price, task.refund, task.outcome) == (15, 0, "success")
        statuses = [task.status]
        await anyio.sleep(50)
        statuses.append(task.status)
        await anyio.sleep(50)
        statuses.append(task.status)
    assert statuses == ["pending", "running", "succeeded"]
    assert task.status_at(start + 24) == "pending"
    assert task.status_at(start + 25) == "running"
    assert fake.last_task is task


async def test_transport_refuses_other_origins() -> None:
    fake = fake_without_limit()
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        with pytest.raises(httpx.ConnectError, match="serves http://localhost/api/v1"):
            await http.get("https://api.musicapi.ai/api/v1/get-credits")
    assert fake.requests == ()


async def test_handle_is_transport_agnostic() -> None:
    fake = fake_without_limit()
    answer = await fake.handle(
        "GET", "/api/v1/get-credits", {"Authorization": f"Bearer {KEY}"}, b""
    )
    assert (answer.status, answer.json()) == (200, {"credits": 1000, "extra_credits": 0})
    assert answer.headers["content-type"] == "application/json"
    outside = await fake.handle("GET", "/get-credits", {"Authorization": f"Bearer {KEY}"}, b"")
    assert outside.status == 404


async def test_latency_delays_answers_after_processing() -> None:
    fake = fake_without_limit(latency={"/sonic/upload": 20.0})
    async with connect(fake) as http:
        start = anyio.current_time()
        answer = await http.post("/sonic/upload", json={"url": "https://x/a.mp3"})
    assert answer.status_code == 200
    assert anyio.current_time() - start == pytest.approx(20.0)
    assert fake.requests[0].time == pytest.approx(start)


async def test_an_answer_slower_than_the_read_timeout_is_a_read_timeout() -> None:
    """As over a network: the request was processed (a create exists, charged), but the
    client gave up at its read timeout, not at the fake's latency."""
    fake = FakeMusicAPI(latency={"/get-credits": 30.0, "/sonic/create": 30.0})
    async with fake.client() as api:
        start = anyio.current_time()
        with pytest.raises(APITimeoutError):
            await api.with_options(timeout=5.0, max_retries=0).credits.get()
        assert anyio.current_time() - start == pytest.approx(5.0)
        with pytest.raises(APITimeoutError) as caught:
            await api.with_options(timeout=5.0).sonic.create(
                mv="sonic-v5", gpt_description_prompt="x"
            )
        assert caught.value.task_may_exist
        assert len(fake.tasks) == 1
        assert len(fake.requests_to("/sonic/create")) == 1  # a paid POST is not sent again
        faster = await api.with_options(timeout=60.0).credits.get()
        assert faster.credits == fake.credits(KEY).credits
        # An injected connect error stays one however long it takes: never processed, so a
        # paid create is retried, and made once.
        del fake.latency["/sonic/create"]
        fake.inject("/sonic/create", fault="connect_error", delay=30.0)
        ref = await api.with_options(timeout=5.0).sonic.create(
            mv="sonic-v5", gpt_description_prompt="y"
        )
    assert ref.task_id in fake.tasks
    assert len(fake.tasks) == 2


async def test_sdk_client_is_wired_to_the_fake() -> None:
    fake = FakeMusicAPI(credits=42)
    async with fake.client() as api:
        balance = await api.credits.get()
    assert (balance.credits, balance.extra_credits) == (42, 0)
    (record,) = fake.requests
    assert record.authorization == f"Bearer {KEY}"
    assert record.path == "/get-credits"


def _examples(doc: str | None) -> list[str]:
    """The ``::`` code blocks of a docstring that define ``main``, without ``anyio.run``."""
    lines = textwrap.dedent(doc or "").splitlines()
    blocks: list[str] = []
    for i, line in enumerate(lines):
        if not line.endswith("::"):
            continue
        indent = len(line) - len(line.lstrip())
        body: list[str] = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        code = textwrap.dedent("\n".join(body)).strip()
        if "anyio.run(main)" in code:
            blocks.append(code.replace("anyio.run(main)", ""))
    return blocks


@pytest.mark.parametrize(
    "example",
    [*_examples(testing_module.__doc__), *_examples(FakeMusicAPI.__doc__)],
)
async def test_docstring_examples_run(example: str) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(example, "<docstring example>", "exec"), namespace)
    await namespace["main"]()


# --- fake.client() ------------------------------------------------------------------------


async def test_the_fakes_client_expects_the_fakes_durations_and_polls_when_they_end() -> None:
    """Not when a real Sonic task would end (about 70 s in): a 5-s fake task is seen at once."""
    fake = FakeMusicAPI(sonic_duration=5.0, producer_duration=8.0)
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        created = anyio.current_time()
        await client.await_task(ref)
        assert anyio.current_time() - created < 15.0
        ref = await client.producer.create(sound="lofi")
        created = anyio.current_time()
        await client.await_task(ref)
        assert anyio.current_time() - created < 20.0


@pytest.mark.parametrize(
    "options",
    [{"sonic_duration": lambda task: 5.0}, {"sonic_duration": 0.0}],
    ids=["drawn per task", "at once"],
)
async def test_the_fakes_client_keeps_the_default_prior_without_one_positive_duration(
    options: dict[str, Any],
) -> None:
    fake = FakeMusicAPI(**options)
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        await client.await_task(ref)
    created = fake.requests_to("/sonic/create")[0].time
    assert fake.requests_to(f"/sonic/task/{ref.task_id}")[0].time - created > 60.0


async def test_expected_durations_given_to_the_fakes_client_win() -> None:
    fake = FakeMusicAPI(sonic_duration=5.0)
    async with fake.client(expected_durations={}) as client:  # the default prior
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        await client.await_task(ref)
    created = fake.requests_to("/sonic/create")[0].time
    assert fake.requests_to(f"/sonic/task/{ref.task_id}")[0].time - created > 60.0
