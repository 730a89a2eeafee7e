"""MusicAPI.download: streamed to a temporary file, renamed only when complete and checked.

Against the public FakeMusicAPI, whose CDN serves real WAV files; misbehaving CDNs (broken,
stalled or mislabelled bodies, redirects) are a small transport wrapped around the fake's.
File I/O runs in anyio's worker threads. The conftest's virtual clocks wait for a thread
like for any other event, but jump to the next deadline meanwhile: so these tests keep the
virtual-time backends and set no deadlines; cancellations are driven by events instead.
"""

from __future__ import annotations

import os
import pickle
import unicodedata
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from musicapi_async import (
    Clip,
    ClipState,
    DownloadError,
    MusicAPI,
    MusicAPIError,
    Task,
    TaskFamily,
    TaskRef,
    TokenBucket,
    safe_filename,
)
from musicapi_async.testing import FakeMusicAPI

pytestmark = pytest.mark.anyio

AUDIO_SECONDS = 1.0
WAV_SIZE = 44 + 2 * 22050  # header + 1 s of 16-bit mono
RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{port}{n}" for port in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")
}


def new_fake(**kwargs: Any) -> FakeMusicAPI:
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("sonic_duration", 10.0)
    return FakeMusicAPI(audio_seconds=AUDIO_SECONDS, **kwargs)


def known_clip(fake: FakeMusicAPI, clip_id: str = "c-1", title: str | None = "Song") -> Clip:
    """A finished clip the fake CDN serves, built by hand (any title, no length limit)."""
    fake.add_clip(clip_id, title=title)
    return Clip(
        clip_id=clip_id,
        state=ClipState.SUCCEEDED,
        title=title,
        audio_url=f"https://cdn1.suno.ai/{clip_id}.mp3",
    )


async def generate(client: MusicAPI, **kwargs: Any) -> Task:
    ref = await client.sonic.create(
        mv="sonic-v5", gpt_description_prompt="lofi hip hop for studying", **kwargs
    )
    task = await client.await_task(ref)
    return task.raise_for_status()


def files(directory: Path) -> list[str]:
    """Every name in the directory, hidden temporary files included."""
    return sorted(os.listdir(directory))


def assert_wav(path: Path) -> None:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        assert w.getnframes() / w.getframerate() == pytest.approx(AUDIO_SECONDS)


class Body(httpx.AsyncByteStream):
    """A response body in chunks that can break (ReadError) or stall after some bytes.

    ``stalled`` is set when the stall begins.
    """

    def __init__(
        self,
        data: bytes,
        *,
        fail_after: int | None = None,
        stall_after: int | None = None,
        stalled: anyio.Event | None = None,
    ) -> None:
        self._data = data
        self._fail_after = fail_after
        self._stall_after = stall_after
        self._stalled = stalled

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), 4096):
            if self._fail_after is not None and start >= self._fail_after:
                raise httpx.ReadError("connection reset by peer")
            if self._stall_after is not None and start >= self._stall_after:
                if self._stalled is not None:
                    self._stalled.set()
                await anyio.sleep_forever()
            yield self._data[start : start + 4096]


class CDN(httpx.AsyncBaseTransport):
    """The fake's transport, plus a CDN that misbehaves on request and records what it got.

    ``redirects`` maps a URL to the Location its 302 points at.
    """

    def __init__(
        self,
        fake: FakeMusicAPI,
        *,
        fail_after: int | None = None,
        stall_after: int | None = None,
        content_length: Callable[[int], int] | None = None,
        content_type: str | None = None,
        redirects: dict[str, str] | None = None,
    ) -> None:
        self._inner = fake.transport()
        self._api_host = httpx.URL(fake.base_url).host
        self._fail_after = fail_after
        self._stall_after = stall_after
        self._content_length = content_length
        self._content_type = content_type
        self._redirects = redirects or {}
        self.seen: list[httpx.Request] = []
        #: Set when a body stalls (``stall_after``).
        self.stalled = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if str(request.url) in self._redirects:
            location = self._redirects[str(request.url)]
            return httpx.Response(302, headers={"location": location}, request=request)
        response = await self._inner.handle_async_request(request)
        if request.url.host == self._api_host or response.status_code != 200:
            return response
        data = await response.aread()
        headers = dict(response.headers)
        if self._content_length is not None:
            headers["content-length"] = str(self._content_length(len(data)))
        if self._content_type is not None:
            headers["content-type"] = self._content_type
        body = Body(
            data, fail_after=self._fail_after, stall_after=self._stall_after, stalled=self.stalled
        )
        return httpx.Response(200, headers=headers, stream=body, request=request)


def client_through(fake: FakeMusicAPI, cdn: httpx.AsyncBaseTransport, **kwargs: Any) -> MusicAPI:
    return fake.client(http_client=httpx.AsyncClient(transport=cdn), **kwargs)


# --- end to end ---------------------------------------------------------------------------------


async def test_generate_wait_and_download_every_clip_as_a_playable_wav(tmp_path: Path) -> None:
    fake = new_fake()
    async with fake.client() as client:
        task = await generate(client, custom_mode=False)
        paths = [await client.download(clip, tmp_path) for clip in task.clips]
    assert len(paths) == 2
    for clip, path in zip(task.clips, paths, strict=True):
        assert path.parent == tmp_path
        # The fake's audio is WAV (Content-Type: audio/wav) behind an .mp3 URL: the answer's
        # type names the file.
        assert path.name == f"{clip.title} - {clip.clip_id}.wav"
        assert_wav(path)
    assert files(tmp_path) == sorted(p.name for p in paths), "no temporary file is left"
    assert paths[0].read_bytes() != paths[1].read_bytes()
    assert [d.url for d in fake.downloads] == [clip.audio_url for clip in task.clips]


async def test_downloads_spend_none_of_the_request_budget(tmp_path: Path) -> None:
    """CDN fetches are not API calls: the limiter grants them nothing and nobody waits."""
    fake = new_fake(rate_limit=(1, 3.0))
    async with fake.client() as client:
        task = await generate(client, custom_mode=False)
        assert isinstance(client.limiter, TokenBucket)  # the client's own, by default
        granted = client.limiter.statistics().granted
        for n in range(3):
            for clip in task.clips:
                await client.download(clip, tmp_path / str(n))
        assert client.limiter.statistics().granted == granted
    assert fake.rate_limited() == 0
    assert len(fake.downloads) == 6


async def test_cdn_requests_carry_no_key_nor_the_clients_headers_auth_or_cookies(
    tmp_path: Path,
) -> None:
    fake = new_fake()
    async with fake.client(default_headers={"X-Team": "s3cret-team"}) as client:
        task = await generate(client, custom_mode=False)
        assert all(r.authorization for r in fake.requests), "API calls do carry the key"
        leaky = httpx.AsyncClient(
            transport=fake.transport(),
            headers={"Authorization": "Bearer sk-leaked", "X-Proxy-Key": "s3cret-proxy"},
            auth=httpx.BasicAuth("user", "s3cret-password"),
            cookies={"session": "s3cret-cookie"},
        )
        async with leaky, fake.client(http_client=leaky) as other:
            path = await other.download(task.clips[0], tmp_path)
        await client.download(task.clips[1], tmp_path)
    assert_wav(path)
    assert len(fake.downloads) == 2
    for record in fake.downloads:
        assert "authorization" not in record.headers
        assert "cookie" not in record.headers
        assert not any("s3cret" in value for value in record.headers.values())
        assert FakeMusicAPI.DEFAULT_KEY not in str(record.headers)
        assert record.headers["user-agent"].startswith("musicapi-async/")


async def test_redirects_are_followed_without_a_key(tmp_path: Path) -> None:
    fake = new_fake()
    clip = known_clip(fake)
    assert clip.audio_url is not None
    start = "https://files.example.com/share/abc"
    cdn = CDN(fake, redirects={start: clip.audio_url})
    async with client_through(fake, cdn) as client:
        path = await client.download(start, tmp_path)
    assert_wav(path)
    assert [str(r.url) for r in cdn.seen] == [start, clip.audio_url]
    assert all("authorization" not in r.headers for r in cdn.seen)


# --- names --------------------------------------------------------------------------------------

HOSTILE_TITLES = [
    "../../etc/passwd",
    "..",
    ".",
    "...",
    ".hidden",
    "con",
    "CON",
    "nul.txt",
    "Com1",
    "LPT9",
    "a/b\\c",
    "C:\\Windows\\System32",
    'a<b>c:d"e|f?g*h',
    "line\nbreak\ttab\rreturn\x00nul\x1bescape",
    "evil\u202etxt.exe",  # a right-to-left override hides the real extension
    "zero\u200bwidth",
    "🎵 Lofi Beats 🎧 (night mix) 👩‍🎤",
    "x" * 300,
    "é" * 300,
    "🎵" * 300,
    "",
    "   ",
    "trailing dots...",
    "trailing spaces   ",
]


def assert_safe(name: str) -> None:
    assert name
    assert name not in (".", "..")
    assert not name.startswith((".", " "))
    assert not name.endswith((".", " "))
    assert not set(name) & set('/\\<>:"|?*\0')
    assert all(unicodedata.category(c) not in ("Cc", "Cf", "Cs") for c in name)
    assert len(name.encode()) <= 200
    assert name.split(".")[0].rstrip(" ").upper() not in RESERVED
    assert (Path("/dest") / name).parent == Path("/dest")


@pytest.mark.parametrize("title", HOSTILE_TITLES)
@pytest.mark.parametrize("clip_id", [None, "0f3c-9a2e"])
def test_safe_filename_makes_a_plain_portable_name(title: str, clip_id: str | None) -> None:
    name = safe_filename(title, clip_id, ".wav")
    assert_safe(name)
    assert name.endswith(".wav")
    if clip_id is not None:
        assert name.endswith(f"{clip_id}.wav"), "the clip id survives any title"


@given(
    title=st.none() | st.text(),
    clip_id=st.none() | st.text(max_size=60),
    extension=st.sampled_from(["", ".wav", ".mp3", ".m4a", "wav", ".tar.gz", "./x", ".€"]),
)
def test_safe_filename_is_safe_for_any_input(
    title: str | None, clip_id: str | None, extension: str
) -> None:
    assert_safe(safe_filename(title, clip_id, extension))


def test_safe_filename_examples() -> None:
    assert safe_filename("Three Seconds", "0f3c", ".mp3") == "Three Seconds - 0f3c.mp3"
    assert safe_filename("../../etc/passwd", None, ".wav") == "_.._etc_passwd.wav"
    assert safe_filename("a/b\\c", "id", ".wav") == "a_b_c - id.wav"
    assert safe_filename("con", None, ".wav") == "_con.wav"
    assert safe_filename("con", "id", ".wav") == "con - id.wav"  # not a device name
    assert safe_filename(None, None, ".wav") == "download.wav"
    assert safe_filename("  Lo\tfi  \n beats ", None) == "Lo fi beats"
    assert safe_filename("🎵 Lofi 🎧", "x", ".mp3") == "🎵 Lofi 🎧 - x.mp3"
    assert safe_filename("evil\u202etxt.exe", None, ".wav") == "eviltxt.exe.wav"
    assert safe_filename("bad\ud800surrogate", None, ".wav") == "badsurrogate.wav"
    long = safe_filename("é" * 300, "0f3c", ".wav")
    assert long.endswith(" - 0f3c.wav")
    assert len(long.encode()) <= 200


@pytest.mark.parametrize("title", HOSTILE_TITLES)
async def test_hostile_titles_are_written_inside_dest_under_a_safe_name(
    tmp_path: Path, title: str
) -> None:
    fake = new_fake()
    dest = tmp_path / "songs"
    dest.mkdir()
    async with fake.client() as client:
        path = await client.download(known_clip(fake, "clip-1", title), dest)
    assert_safe(path.name)
    assert path.parent == dest
    assert path.resolve().parent == dest.resolve()
    assert files(dest) == [path.name]
    assert files(tmp_path) == ["songs"], "nothing was written outside dest"
    assert_wav(path)


async def test_a_url_string_is_named_after_its_last_path_segment(tmp_path: Path) -> None:
    fake = new_fake()
    clip = known_clip(fake, "abc-123")
    async with fake.client() as client:
        path = await client.download(f"https://cdn1.suno.ai/abc-123.mp3?sig={'s' * 10}", tmp_path)
    assert path.name == "abc-123.wav"  # the extension from Content-Type: audio/wav
    assert clip.clip_id is not None


async def test_without_a_known_content_type_the_urls_extension_names_the_file(
    tmp_path: Path,
) -> None:
    fake = new_fake()
    clip = known_clip(fake, "c-1", "Song")
    async with client_through(fake, CDN(fake, content_type="application/octet-stream")) as client:
        path = await client.download(clip, tmp_path)
    assert path.name == "Song - c-1.mp3"


async def test_an_encoded_slash_in_the_url_does_not_become_a_directory(tmp_path: Path) -> None:
    fake = new_fake()
    fake.add_clip("x")
    async with client_through(fake, CDN(fake, redirects={})) as client:
        with pytest.raises(DownloadError):  # the fake does not know this path: 404
            await client.download("https://cdn1.suno.ai/..%2F..%2Fescape.mp3", tmp_path)
    assert files(tmp_path) == []
    name = safe_filename("../../escape", None, ".mp3")
    assert_safe(name)


# --- destinations -------------------------------------------------------------------------------


async def test_dest_forms(tmp_path: Path) -> None:
    fake = new_fake()
    clip = known_clip(fake, "c-1", "Song")
    async with fake.client() as client:
        in_existing_dir = await client.download(clip, tmp_path)
        in_new_dir = await client.download(clip, f"{tmp_path}/new/sub/")
        as_file = await client.download(clip, tmp_path / "other" / "mine.wav")
        in_plain_new_dir = await client.download(clip, str(tmp_path / "plain"))
        as_file_without_extension = await client.download(clip, tmp_path / "plain" / "x.v1")
        named = await client.download(clip, tmp_path / "named", filename="My Song.wav")
    assert in_existing_dir == tmp_path / "Song - c-1.wav"
    assert in_new_dir == tmp_path / "new" / "sub" / "Song - c-1.wav"
    assert as_file == tmp_path / "other" / "mine.wav"
    # A new path without an extension is a directory; one with an extension, a file.
    assert in_plain_new_dir == tmp_path / "plain" / "Song - c-1.wav"
    assert as_file_without_extension == tmp_path / "plain" / "x.v1"
    assert named == tmp_path / "named" / "My Song.wav"
    for path in (in_existing_dir, in_new_dir, as_file, in_plain_new_dir, named):
        assert_wav(path)


async def test_a_given_name_of_255_bytes_fits_its_temporary_file_too(tmp_path: Path) -> None:
    fake = new_fake()
    name = "é" * 125 + ".wav"  # 254 bytes: the temporary name must not add to it
    async with fake.client() as client:
        path = await client.download(known_clip(fake), tmp_path, filename=name)
    assert path.name == name
    assert files(tmp_path) == [name]


@pytest.mark.parametrize(
    "filename",
    [
        *("../x.wav", "a/b.wav", "a\\b.wav", "..", ".", "", "a\0b"),  # a directory part
        # What Windows reads as a drive, a stream of another file, or a device.
        *("C:evil.mp3", "c:song.wav", "song.mp3:hidden", "NUL", "con.mp3", "COM1 .wav"),
        *("lpt²", "AUX"),
    ],
)
async def test_a_filename_that_is_not_a_plain_file_name_is_refused(
    tmp_path: Path, filename: str
) -> None:
    fake = new_fake()
    async with fake.client() as client:
        with pytest.raises(ValueError, match="plain file name"):
            await client.download(known_clip(fake), tmp_path / "songs", filename=filename)
    assert fake.downloads == ()
    assert files(tmp_path) == []  # not even the directory


async def test_filename_needs_dest_to_be_a_directory(tmp_path: Path) -> None:
    fake = new_fake()
    (tmp_path / "file").write_bytes(b"x")
    async with fake.client() as client:
        with pytest.raises(NotADirectoryError, match="not a directory"):
            await client.download(known_clip(fake), tmp_path / "file", filename="a.wav")


# --- overwriting --------------------------------------------------------------------------------


async def test_an_existing_file_is_not_overwritten_and_nothing_is_fetched(tmp_path: Path) -> None:
    fake = new_fake()
    target = tmp_path / "song.wav"
    target.write_bytes(b"mine")
    async with fake.client() as client:
        with pytest.raises(FileExistsError, match=r"already exists; pass overwrite=True"):
            await client.download(known_clip(fake), target)
    assert target.read_bytes() == b"mine"
    assert fake.downloads == (), "a fixed name is checked before any request"
    assert files(tmp_path) == ["song.wav"]


async def test_an_existing_derived_name_is_not_overwritten(tmp_path: Path) -> None:
    fake = new_fake()
    (tmp_path / "Song - c-1.wav").write_bytes(b"mine")
    async with fake.client() as client:
        with pytest.raises(FileExistsError, match=r"Song - c-1\.wav"):
            await client.download(known_clip(fake, "c-1", "Song"), tmp_path)
    assert (tmp_path / "Song - c-1.wav").read_bytes() == b"mine"
    assert files(tmp_path) == ["Song - c-1.wav"]


async def test_overwrite_true_replaces_the_file(tmp_path: Path) -> None:
    fake = new_fake()
    target = tmp_path / "song.wav"
    target.write_bytes(b"mine")
    async with fake.client() as client:
        path = await client.download(known_clip(fake), target, overwrite=True)
    assert path == target
    assert_wav(target)
    assert files(tmp_path) == ["song.wav"]


async def test_a_file_created_during_the_download_is_not_clobbered(tmp_path: Path) -> None:
    """The final move never replaces a file, even one that appeared after the first check."""
    fake = new_fake()
    target = tmp_path / "song.wav"

    def someone_else_writes(received: int, total: int | None) -> None:
        if received == 0:
            target.write_bytes(b"theirs")

    async with fake.client() as client:
        with pytest.raises(FileExistsError):
            await client.download(known_clip(fake), target, on_progress=someone_else_writes)
    assert target.read_bytes() == b"theirs"
    assert files(tmp_path) == ["song.wav"]


# --- failures leave nothing behind --------------------------------------------------------------


async def test_a_connection_broken_mid_body_leaves_no_file(tmp_path: Path) -> None:
    fake = new_fake()
    listings: list[list[str]] = []
    cdn = CDN(fake, fail_after=3 * 4096)
    async with client_through(fake, cdn) as client:
        with pytest.raises(DownloadError, match="connection failed after 12288 bytes") as caught:
            await client.download(
                known_clip(fake, "c-1", "Song"),
                tmp_path,
                chunk_size=4096,
                on_progress=lambda received, total: listings.append(files(tmp_path)),
            )
    assert isinstance(caught.value.__cause__, httpx.ReadError)
    assert caught.value.received == 12288
    assert caught.value.status_code == 200
    # While it ran, the bytes went to a hidden temporary file and never to the final name.
    assert len(listings) == 4
    for listing in listings:
        assert len(listing) == 1
        assert listing[0].startswith(".Song - c-1.wav.part-")
    assert files(tmp_path) == []


@pytest.mark.parametrize("announced", [lambda n: n + 1, lambda n: n - 1, lambda n: 2 * n])
async def test_a_body_that_does_not_match_content_length_is_not_kept(
    tmp_path: Path, announced: Callable[[int], int]
) -> None:
    fake = new_fake()
    async with client_through(fake, CDN(fake, content_length=announced)) as client:
        with pytest.raises(DownloadError, match=r"received \d+ bytes but the server announced"):
            await client.download(known_clip(fake), tmp_path)
    assert files(tmp_path) == []


async def test_cancelled_mid_download_leaves_no_file(tmp_path: Path) -> None:
    fake = new_fake()
    seen: list[int] = []
    with anyio.CancelScope() as scope:

        def cancel_after_the_first_chunk(received: int, total: int | None) -> None:
            seen.append(received)
            if received > 0:
                scope.cancel()

        async with fake.client() as client:
            await client.download(
                known_clip(fake),
                tmp_path,
                chunk_size=4096,
                on_progress=cancel_after_the_first_chunk,
            )
    assert scope.cancelled_caught
    assert seen == [0, 4096]
    assert files(tmp_path) == []


async def test_a_download_cancelled_while_waiting_for_the_network_leaves_no_file(
    tmp_path: Path,
) -> None:
    fake = new_fake()
    cdn = CDN(fake, stall_after=8192)
    listings: list[list[str]] = []
    async with client_through(fake, cdn) as client, anyio.create_task_group() as tg:

        async def fetch() -> None:
            await client.download(
                known_clip(fake),
                tmp_path / "song.wav",
                chunk_size=4096,
                on_progress=lambda received, total: listings.append(files(tmp_path)),
            )

        tg.start_soon(fetch)
        await cdn.stalled.wait()
        assert len(listings) == 3  # 0, 4096, 8192 bytes
        assert listings[-1][0].startswith(".song.wav.part-")
        tg.cancel_scope.cancel()
    assert files(tmp_path) == []


async def test_a_progress_callback_that_raises_leaves_no_file(tmp_path: Path) -> None:
    fake = new_fake()

    def explode(received: int, total: int | None) -> None:
        if received:
            raise KeyError("from the callback")

    async with fake.client() as client:
        with pytest.raises(KeyError, match="from the callback"):
            await client.download(known_clip(fake), tmp_path, on_progress=explode)
    assert files(tmp_path) == []


# --- errors -------------------------------------------------------------------------------------


async def test_an_error_status_is_a_download_error_with_status_and_url(tmp_path: Path) -> None:
    fake = new_fake()
    url = "https://cdn1.suno.ai/unknown.mp3?token=s3cret-signature"
    async with fake.client() as client:
        with pytest.raises(DownloadError) as caught:
            await client.download(url, tmp_path)
    error = caught.value
    assert isinstance(error, MusicAPIError)
    assert error.status_code == 404
    assert error.url == "https://cdn1.suno.ai/unknown.mp3?…"
    assert str(error) == "GET https://cdn1.suno.ai/unknown.mp3?… -> 404 Not Found"
    assert "s3cret" not in repr(error) + str(error) + error.url
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.status_code, copy.url, str(copy)) == (
        DownloadError,
        404,
        error.url,
        str(error),
    )
    assert files(tmp_path) == []


async def test_a_failed_connection_is_a_download_error(tmp_path: Path) -> None:
    fake = new_fake(serve_audio=False)
    async with fake.client() as client:
        with pytest.raises(DownloadError, match="the download failed") as caught:
            await client.download(known_clip(fake), tmp_path)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.status_code is None
    assert files(tmp_path) == []


async def test_credentials_in_the_url_stay_out_of_the_error(tmp_path: Path) -> None:
    fake = new_fake()
    async with fake.client() as client:
        with pytest.raises(DownloadError) as caught:
            await client.download("https://user:pw-s3cret@cdn1.suno.ai/nope.mp3", tmp_path)
    assert "s3cret" not in str(caught.value)
    assert caught.value.url == "https://cdn1.suno.ai/nope.mp3"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("file:///etc/passwd", "file://"),
        ("FILE:///etc/passwd", "file://"),
        ("ftp://cdn1.suno.ai/x.mp3", "ftp://"),
        ("data:audio/wav;base64,UklGRg==", "data://"),
        ("javascript:alert(1)", "javascript://"),
        ("cdn1.suno.ai/x.mp3", "no scheme"),
        ("/etc/passwd", "no scheme"),
        ("", "no scheme"),
    ],
)
async def test_only_http_and_https_urls_are_fetched(tmp_path: Path, url: str, named: str) -> None:
    fake = new_fake()
    bad_clip = Clip(clip_id="c", state=ClipState.SUCCEEDED, audio_url=url or None)
    async with fake.client() as client:
        with pytest.raises(ValueError, match=named if url else "no audio_url"):
            await client.download(bad_clip, tmp_path)
        if url:
            with pytest.raises(ValueError, match=named):
                await client.download(url, tmp_path)
    assert fake.downloads == ()
    assert files(tmp_path) == []


async def test_what_is_not_a_clip_or_a_url_is_refused(tmp_path: Path) -> None:
    fake = new_fake()
    ref = TaskRef("t", TaskFamily.SONIC)
    async with fake.client() as client:
        with pytest.raises(TypeError, match="a Clip or a URL string"):
            await client.download(ref, tmp_path)  # type: ignore[arg-type]
        for size in (0, -1, True):
            with pytest.raises(ValueError, match="chunk_size"):
                await client.download(known_clip(fake), tmp_path, chunk_size=size)


# --- clips and formats --------------------------------------------------------------------------


async def test_unfinished_and_failed_clips_are_refused_with_advice(tmp_path: Path) -> None:
    fake = new_fake()
    streaming = Clip(
        clip_id="c", state=ClipState.STREAMING, audio_url="https://audiopipe.suno.ai/?item_id=c"
    )
    failed = Clip(clip_id="c", state=ClipState.FAILED)
    running = Clip(clip_id="c", state=ClipState.RUNNING, audio_url="https://cdn1.suno.ai/c.mp3")
    async with fake.client() as client:
        with pytest.raises(ValueError, match="still streaming"):
            await client.download(streaming, tmp_path)
        with pytest.raises(ValueError, match="still running: its audio may be partial"):
            await client.download(running, tmp_path)
        with pytest.raises(ValueError, match=r"no audio_url \(state failed\).*await_task"):
            await client.download(failed, tmp_path)
    assert files(tmp_path) == []


async def test_format_wav_downloads_the_wav_url(tmp_path: Path) -> None:
    fake = new_fake(producer_duration=10.0)
    async with fake.client() as client:
        ref = await client.producer.create(sound="piano ballad")
        task = (await client.await_task(ref)).raise_for_status()
        clip = task.clips[0]
        assert clip.wav_url
        assert clip.audio_url
        assert clip.audio_url.endswith(".m4a")
        path = await client.download(clip, tmp_path, format="wav")
    assert fake.downloads[-1].url == clip.wav_url
    assert path.suffix == ".wav"
    assert_wav(path)


async def test_format_wav_of_a_sonic_clip_says_how_to_get_a_wav(tmp_path: Path) -> None:
    fake = new_fake()
    async with fake.client() as client:
        with pytest.raises(ValueError, match=r"no wav_url.*client\.sonic\.wav"):
            await client.download(known_clip(fake), tmp_path, format="wav")
        with pytest.raises(ValueError, match="format= chooses"):
            await client.download("https://cdn1.suno.ai/c-1.mp3", tmp_path, format="wav")


async def test_format_wav_takes_an_audio_url_that_already_is_a_wav(tmp_path: Path) -> None:
    """Nuro's audio_url is a WAV and it has no wav_url."""
    fake = new_fake()
    fake.add_clip("n-1")
    nuro_like = Clip(
        clip_id="n-1", state=ClipState.SUCCEEDED, audio_url="https://cdn1.suno.ai/n-1.wav"
    )
    async with fake.client() as client:
        path = await client.download(nuro_like, tmp_path, format="wav")
    assert_wav(path)


# --- progress and options -----------------------------------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_progress_is_monotone_and_ends_at_the_total(
    tmp_path: Path, asynchronous: bool
) -> None:
    fake = new_fake()
    calls: list[tuple[int, int | None]] = []

    def sync_progress(received: int, total: int | None) -> None:
        calls.append((received, total))

    async def async_progress(received: int, total: int | None) -> None:
        await anyio.lowlevel.checkpoint()
        calls.append((received, total))

    async with fake.client() as client:
        path = await client.download(
            known_clip(fake),
            tmp_path,
            chunk_size=10_000,
            on_progress=async_progress if asynchronous else sync_progress,
        )
    size = path.stat().st_size
    assert size == WAV_SIZE
    assert calls[0] == (0, size)
    assert calls[-1] == (size, size)
    received = [r for r, _ in calls]
    assert received == sorted(set(received)), "strictly increasing"
    assert {t for _, t in calls} == {size}
    assert len(calls) == 1 + -(-size // 10_000)


async def test_the_timeout_applies_to_the_request(tmp_path: Path) -> None:
    fake = new_fake()
    cdn = CDN(fake)
    async with client_through(fake, cdn, timeout=42.0) as client:
        await client.download(known_clip(fake, "a"), tmp_path)
        await client.download(known_clip(fake, "b"), tmp_path, timeout=5)
    assert cdn.seen[0].extensions["timeout"]["read"] == 42.0
    assert cdn.seen[1].extensions["timeout"]["read"] == 5


# --- a clip already saved (what a resumed `musicapi wait -o DIR` keeps) ----------------------


def test_a_clip_saved_earlier_is_found_by_its_name_and_only_as_audio(tmp_path: Path) -> None:
    from musicapi_async._download import saved_clip_file

    clip = Clip(
        clip_id="c-1",
        state=ClipState.SUCCEEDED,
        title="Song",
        audio_url="https://cdn1.suno.ai/c-1.mp3",
        wav_url="https://cdn1.suno.ai/c-1.wav",
    )
    assert saved_clip_file(tmp_path, clip) is None
    (tmp_path / safe_filename("Song", "c-1", ".mp4")).write_bytes(b"video")
    (tmp_path / safe_filename("Song", "c-10", ".mp3")).write_bytes(b"another clip")
    (tmp_path / f".{safe_filename('Song', 'c-1', '.mp3')}.part-abc").write_bytes(b"partial")
    assert saved_clip_file(tmp_path, clip) is None  # not audio, another clip, unfinished
    assert saved_clip_file(tmp_path, clip, "wav") is None
    mp3 = tmp_path / safe_filename("Song", "c-1", ".mp3")
    mp3.write_bytes(b"audio")
    assert saved_clip_file(tmp_path, clip) == mp3
    assert saved_clip_file(tmp_path, clip, "wav") is None  # an MP3 is not the WAV asked for
    wav = tmp_path / safe_filename("Song", "c-1", ".wav")
    wav.write_bytes(b"wav")
    assert saved_clip_file(tmp_path, clip, "wav") == wav
    assert saved_clip_file(tmp_path, Clip(clip_id=None, state=ClipState.SUCCEEDED)) is None
