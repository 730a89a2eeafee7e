"""The fake's audio: synth_wav makes real WAV files, and the fake CDN serves them per clip."""

from __future__ import annotations

import array
import io
import math
import sys
import wave
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musicapi_async.testing import FakeMusicAPI, NotReadyStyle, synth_wav

AUTH = {"Authorization": f"Bearer {FakeMusicAPI.DEFAULT_KEY}"}
DESCRIPTION: dict[str, Any] = {
    "custom_mode": False,
    "mv": "sonic-v5",
    "gpt_description_prompt": "lofi hip hop for studying",
}


def read_wav(data: bytes) -> tuple[wave._wave_params, array.array[int]]:
    """The WAV's parameters and its samples (parsing fails the test if it is not a WAV)."""
    with wave.open(io.BytesIO(data)) as w:
        params = w.getparams()
        samples = array.array("h", w.readframes(params.nframes))
    if sys.byteorder == "big":
        samples.byteswap()
    return params, samples


# --- synth_wav ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.5, 1.0, 2.5, 4.0, 7.3])
def test_synth_wav_is_a_16_bit_mono_22050_hz_wav_of_the_declared_duration(seconds: float) -> None:
    params, samples = read_wav(synth_wav("lofi hip hop for studying", seconds))
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 22050)
    assert params.nframes == round(seconds * 22050)
    assert params.nframes / params.framerate == pytest.approx(seconds, abs=1 / 22050)
    assert len(samples) == params.nframes


def test_synth_wav_is_music_not_silence_nor_clipping() -> None:
    _, samples = read_wav(synth_wav("surf rock", 4.0))
    peak = max(abs(s) for s in samples)
    assert 20000 < peak < 32767  # normalised with headroom
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    assert rms > 1000
    # It changes over time: no half-second window is silent.
    window = 22050 // 2
    for start in range(0, len(samples) - window, window):
        chunk = samples[start : start + window]
        assert max(abs(s) for s in chunk) > 500, f"silent at {start / 22050:.1f}s"
    # And it fades in and out instead of clicking.
    assert abs(samples[0]) < 50
    assert abs(samples[-1]) < 50


def test_synth_wav_is_deterministic() -> None:
    assert synth_wav("lofi hip hop", 2.0) == synth_wav("lofi hip hop", 2.0)
    assert synth_wav("lofi hip hop", 2.0) == synth_wav("lofi hip hop", 2.0)


def test_synth_wav_differs_per_seed() -> None:
    seeds = ["lofi hip hop", "lofi hip hop ", "surf rock", "a", "b", ""]
    waves = {synth_wav(seed, 2.0) for seed in seeds}
    assert len(waves) == len(seeds)


def test_different_seeds_differ_in_rhythm_not_only_in_samples() -> None:
    """Different seeds give different music, not the same tune with other noise."""

    def onsets(data: bytes) -> list[int]:
        _, samples = read_wav(data)
        window = 441  # 20 ms
        energy = [
            sum(abs(s) for s in samples[i : i + window]) for i in range(0, len(samples), window)
        ]
        return [i for i in range(1, len(energy)) if energy[i] > 1.5 * energy[i - 1] + 1000]

    patterns = {tuple(onsets(synth_wav(seed, 3.0))) for seed in ("one", "two", "three", "four")}
    assert len(patterns) > 1


@settings(max_examples=25, deadline=None)
@given(seed=st.text(max_size=50), seconds=st.floats(min_value=0.05, max_value=0.5))
def test_any_seed_gives_a_valid_wav(seed: str, seconds: float) -> None:
    params, _ = read_wav(synth_wav(seed, seconds))
    assert params.nframes == max(1, round(seconds * 22050))


@pytest.mark.parametrize("seconds", [0, -1.0, math.nan, math.inf, 601.0])
def test_synth_wav_refuses_a_bad_length(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        synth_wav("x", seconds)


def test_synth_wav_refuses_wrong_types() -> None:
    with pytest.raises(TypeError, match="seconds"):
        synth_wav("x", True)
    with pytest.raises(TypeError, match="seed"):
        synth_wav(b"x", 1.0)  # type: ignore[arg-type]


def test_a_fake_with_a_bad_audio_length_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="seconds"):
        FakeMusicAPI(audio_seconds=0)


# --- the fake CDN ------------------------------------------------------------------------------


def http_client(fake: FakeMusicAPI, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.base_url, headers=AUTH, **kwargs
    )


async def finished_clips(
    http: httpx.AsyncClient, fake: FakeMusicAPI, body: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Create a Sonic task, wait until it is done, return its clips."""
    created = await http.post("/sonic/create", json=body or DESCRIPTION)
    task_id = created.json()["task_id"]
    await anyio.sleep(fake.tasks[task_id].duration)
    answer = await http.get(f"/sonic/task/{task_id}")
    assert answer.status_code == 200
    clips: list[dict[str, Any]] = answer.json()["data"]
    return clips


@pytest.mark.anyio
async def test_a_finished_clips_audio_url_serves_a_playable_wav() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=30.0)
    async with http_client(fake) as http:
        clips = await finished_clips(http, fake)
        answers = [await http.get(clip["audio_url"]) for clip in clips]
    for clip, answer in zip(clips, answers, strict=True):
        assert clip["audio_url"].startswith("https://cdn1.suno.ai/")
        assert clip["audio_url"].endswith(".mp3")  # the documented shape is kept...
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "audio/wav"  # ...but the audio is WAV
        assert int(answer.headers["content-length"]) == len(answer.content)
        params, _ = read_wav(answer.content)
        assert params.nframes / params.framerate == pytest.approx(fake.audio_seconds)
    assert answers[0].content != answers[1].content, "the two clips of a task differ"


@pytest.mark.anyio
async def test_audio_is_the_same_at_every_fetch_and_differs_per_prompt() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=10.0, audio_seconds=1.0)
    async with http_client(fake) as http:
        lofi = await finished_clips(http, fake)
        surf = await finished_clips(http, fake, {**DESCRIPTION, "gpt_description_prompt": "surf"})
        first = (await http.get(lofi[0]["audio_url"])).content
        again = (await http.get(lofi[0]["audio_url"])).content
        other = (await http.get(surf[0]["audio_url"])).content
    assert first == again
    assert first != other
    assert read_wav(first)[0].nframes == 22050


@pytest.mark.anyio
async def test_head_answers_the_headers_without_the_body() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=10.0, audio_seconds=1.0)
    async with http_client(fake) as http:
        clips = await finished_clips(http, fake)
        head = await http.head(clips[0]["audio_url"])
        get = await http.get(clips[0]["audio_url"])
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["content-type"] == "audio/wav"
    assert [d.method for d in fake.downloads] == ["HEAD", "GET"]
    assert [d.size for d in fake.downloads] == [0, len(get.content)]


@pytest.mark.anyio
async def test_other_methods_get_405() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=10.0, audio_seconds=1.0)
    async with http_client(fake) as http:
        clips = await finished_clips(http, fake)
        answer = await http.post(clips[0]["audio_url"], content=b"x")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "https://cdn1.suno.ai/00000000-0000-0000-0000-000000000000.mp3",
        "https://cdn1.suno.ai/nothing-here.wav",
        "https://cdn1.suno.ai/",
        "https://audiopipe.suno.ai/?item_id=unknown",
        "https://musicapi-cdn.b-cdn.net/producer/unknown.m4a",
        "https://cdn.musicapi.ai/storage/v1/object/public/songs/song-unknown.wav",
    ],
)
async def test_unknown_clips_on_the_cdn_hosts_get_404(url: str) -> None:
    fake = FakeMusicAPI(rate_limit=None)
    async with http_client(fake) as http:
        answer = await http.get(url)
    assert answer.status_code == 404
    assert fake.downloads[-1].status == 404


@pytest.mark.anyio
async def test_a_clips_image_and_video_urls_are_not_audio() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=10.0, audio_seconds=1.0)
    async with http_client(fake) as http:
        clips = await finished_clips(http, fake)
        video = await http.get(clips[0]["video_url"])  # cdn1.suno.ai/<id>.mp4
        with pytest.raises(httpx.ConnectError):
            await http.get(clips[0]["image_url"])  # cdn2.suno.ai: not a host the fake serves
    assert video.status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url", ["https://example.com/song.mp3", "https://cdn2.suno.ai/image_x.jpeg", "http://x/"]
)
async def test_other_hosts_still_raise_connect_error(url: str) -> None:
    fake = FakeMusicAPI(rate_limit=None)
    async with http_client(fake) as http:
        with pytest.raises(httpx.ConnectError, match="FakeMusicAPI serves"):
            await http.get(url)
    assert fake.downloads == ()


@pytest.mark.anyio
async def test_serve_audio_off_makes_the_cdn_hosts_unknown_hosts() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=10.0, serve_audio=False)
    async with http_client(fake) as http:
        clips = await finished_clips(http, fake)
        with pytest.raises(httpx.ConnectError):
            await http.get(clips[0]["audio_url"])
    assert fake.downloads == ()


@pytest.mark.anyio
async def test_audio_fetches_are_logged_in_downloads_not_in_requests() -> None:
    fake = FakeMusicAPI(rate_limit=(1, 3.0), sonic_duration=10.0, audio_seconds=1.0)
    async with http_client(fake) as http:
        clips = await finished_clips(http, fake)
        api_calls = len(fake.requests)
        # No key on these, and no wait: the CDN is not the API and has no rate limit.
        async with httpx.AsyncClient(transport=fake.transport()) as anonymous:
            answers = [await anonymous.get(clip["audio_url"]) for clip in clips * 3]
    assert [a.status_code for a in answers] == [200] * 6
    assert len(fake.requests) == api_calls
    assert fake.rate_limited() == 0
    assert [d.url for d in fake.downloads] == [clip["audio_url"] for clip in clips * 3]
    assert [d.clip_id for d in fake.downloads] == [clip["clip_id"] for clip in clips * 3]
    assert all("authorization" not in d.headers for d in fake.downloads)


def test_a_download_records_repr_hides_an_authorization_header() -> None:
    from musicapi_async.testing import DownloadRecord

    record = DownloadRecord(
        time=0.0,
        method="GET",
        url="https://cdn1.suno.ai/x.mp3",
        headers={"authorization": "Bearer sk-secret"},
        status=200,
    )
    assert "sk-secret" not in repr(record)


@pytest.mark.anyio
async def test_a_clip_has_no_audio_before_it_is_finished() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=60.0, clip_spread=0.0, audio_seconds=1.0)
    async with http_client(fake) as http:
        created = await http.post("/sonic/create", json=DESCRIPTION)
        task = fake.tasks[created.json()["task_id"]]
        final_url = f"https://cdn1.suno.ai/{task.clip_ids[0]}.mp3"
        early = await http.get(final_url)
        await anyio.sleep(60.0)
        done = await http.get(final_url)
    assert early.status_code == 404
    assert done.status_code == 200


@pytest.mark.anyio
async def test_a_streaming_clip_serves_its_live_url_but_not_yet_its_final_one() -> None:
    style: NotReadyStyle = "200"
    fake = FakeMusicAPI(
        rate_limit=None,
        not_ready_style=style,
        initial_not_ready=0.0,
        sonic_duration=100.0,
        clip_spread=0.0,
        audio_seconds=1.0,
    )
    async with http_client(fake) as http:
        created = await http.post("/sonic/create", json=DESCRIPTION)
        task_id = created.json()["task_id"]
        await anyio.sleep(10.0)  # pending
        pending = (await http.get(f"/sonic/task/{task_id}")).json()["data"][0]
        live_url = f"https://audiopipe.suno.ai/?item_id={pending['clip_id']}"
        too_early = await http.get(live_url)
        await anyio.sleep(60.0)  # streaming
        streaming = (await http.get(f"/sonic/task/{task_id}")).json()["data"][0]
        live = await http.get(streaming["audio_url"])
        final = await http.get(f"https://cdn1.suno.ai/{streaming['clip_id']}.mp3")
    assert pending["state"] == "pending"
    assert too_early.status_code == 404
    assert streaming["state"] == "streaming"
    assert streaming["audio_url"] == live_url
    assert live.status_code == 200
    read_wav(live.content)
    assert final.status_code == 404


@pytest.mark.anyio
async def test_failed_clips_and_failed_tasks_have_no_audio() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=10.0, audio_seconds=1.0)
    fake.plan(outcome="partial")
    fake.plan(outcome="failed")
    async with http_client(fake) as http:
        partial = (await http.post("/sonic/create", json=DESCRIPTION)).json()["task_id"]
        failed = (await http.post("/sonic/create", json=DESCRIPTION)).json()["task_id"]
        await anyio.sleep(10.0)
        good, bad = fake.tasks[partial].clip_ids
        statuses = [
            (await http.get(f"https://cdn1.suno.ai/{clip_id}.mp3")).status_code
            for clip_id in (good, bad, *fake.tasks[failed].clip_ids)
        ]
    assert statuses == [200, 404, 404, 404]


@pytest.mark.anyio
async def test_the_wav_and_download_links_serve_audio_too() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=10.0, audio_seconds=1.0)
    async with http_client(fake) as http:
        clips = await finished_clips(http, fake)
        clip_id = clips[0]["clip_id"]
        wav = (await http.post("/sonic/wav", json={"clip_id": clip_id})).json()["data"]
        links = (
            await http.post("/sonic/download", json={"clip_id": clip_id, "formats": ["mp3", "m4a"]})
        ).json()["data"]
        urls = [wav["wav_url"], links["mp3_url"], links["m4a_url"], clips[0]["audio_url"]]
        bodies = [(await http.get(url)).content for url in urls]
    assert len(set(bodies)) == 1, "every link of one clip serves that clip's audio"
    read_wav(bodies[0])


@pytest.mark.anyio
async def test_producer_clips_serve_audio_url_wav_url_and_download_links() -> None:
    fake = FakeMusicAPI(rate_limit=None, producer_duration=10.0, audio_seconds=1.0)
    async with http_client(fake) as http:
        created = await http.post("/producer/create", json={"sound": "piano ballad"})
        task_id = created.json()["task_id"]
        await anyio.sleep(10.0)
        clip = (await http.get(f"/producer/task/{task_id}")).json()["data"][0]
        download = await http.post("/producer/download", json={"clip_id": clip["clip_id"]})
        await anyio.sleep(10.0)
        link = (await http.get(f"/producer/task/{download.json()['task_id']}")).json()["data"][0]
        answers = [
            await http.get(u) for u in (clip["audio_url"], clip["wav_url"], link["audio_url"])
        ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    for answer in answers:
        read_wav(answer.content)


@pytest.mark.anyio
async def test_nuro_audio_is_served_when_nuro_is_not_retired() -> None:
    fake = FakeMusicAPI(rate_limit=None, nuro_retired=False, nuro_duration=10.0, audio_seconds=1.0)
    async with http_client(fake) as http:
        created = await http.post("/nuro/create", json={"type": "bgm", "description": "calm"})
        task_id = created.json()["task_id"]
        await anyio.sleep(10.0)
        result = (await http.get(f"/nuro/task/{task_id}")).json()
        answer = await http.get(result["audio_url"])
    assert answer.status_code == 200
    read_wav(answer.content)


@pytest.mark.anyio
async def test_clips_added_with_add_clip_are_served() -> None:
    fake = FakeMusicAPI(rate_limit=None, audio_seconds=1.0)
    fake.add_clip("my-clip", title="Known")
    async with http_client(fake) as http:
        answer = await http.get("https://cdn1.suno.ai/my-clip.mp3")
    assert answer.status_code == 200
    read_wav(answer.content)


@pytest.mark.anyio
async def test_the_fake_cdn_answers_in_virtual_time_without_waiting() -> None:
    fake = FakeMusicAPI(rate_limit=None, audio_seconds=1.0)
    fake.add_clip("c")
    async with http_client(fake) as http:
        before = anyio.current_time()
        await http.get("https://cdn1.suno.ai/c.mp3")
        assert anyio.current_time() == before
