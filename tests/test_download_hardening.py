"""MusicAPI.download against hostile or unlucky conditions: a crowd of downloads on the API's
connection pool, redirects, answers that are not audio, stream URLs, timeouts, a full disk,
Windows file names, directories a failed download created.

Like tests/test_download.py: the virtual-time backends, no deadlines (file I/O runs in
worker threads, while which the virtual clocks jump), cancellations driven by events.
"""

from __future__ import annotations

import errno
import gc
import gzip
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import httpx
import pytest

from musicapi_async import Clip, ClipState, DownloadError, MusicAPI, _download
from musicapi_async.testing import FakeMusicAPI
from tests.test_download import (
    CDN,
    assert_wav,
    client_through,
    files,
    known_clip,
    new_fake,
)

pytestmark = pytest.mark.anyio

LIMIT = 8  # MAX_CONCURRENT_DOWNLOADS
POOL_SIZE = 20  # the client's own pool (_http.new_connection_pool)
AUDIO = {"content-type": "audio/mpeg"}


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> tuple[httpx.AsyncClient, MusicAPI]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), **kwargs)
    return http, MusicAPI(api_key="sk-test", http_client=http)


# --- concurrency: downloads never take the API's connections -----------------------------------


class _Stream(httpx.AsyncByteStream):
    """A body that gives its connection back to the pool when closed, and may wait for
    ``release`` before its first byte."""

    def __init__(
        self, data: bytes, on_close: Callable[[], None], release: anyio.Event | None = None
    ) -> None:
        self._data = data
        self._on_close = on_close
        self._release = release
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._release is not None:
            await self._release.wait()
        for start in range(0, len(self._data), 4096):
            yield self._data[start : start + 4096]

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()


class PooledCDN(httpx.AsyncBaseTransport):
    """The fake behind a pool of ``size`` connections, as httpx's: a request holds one
    until its response is closed, and waits for one (up to its pool timeout, then
    PoolTimeout) when none is free. CDN bodies stall until ``release`` is set."""

    def __init__(self, fake: FakeMusicAPI, size: int = POOL_SIZE) -> None:
        self._inner = fake.transport()
        self._api_host = httpx.URL(fake.base_url).host
        self._connections = anyio.Semaphore(size)
        self.release = anyio.Event()
        #: Set when LIMIT downloads are in flight at once.
        self.limit_reached = anyio.Event()
        self.downloads_in_flight = 0
        self.most_downloads_in_flight = 0
        self.pool_timeouts: list[float | None] = []

    @property
    def free_connections(self) -> int:
        return self._connections.value

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool_timeout = request.extensions.get("timeout", {}).get("pool")
        download = request.url.host != self._api_host
        if download:
            self.pool_timeouts.append(pool_timeout)
        with anyio.move_on_after(pool_timeout) as waited:
            await self._connections.acquire()
        if waited.cancelled_caught:
            raise httpx.PoolTimeout("no free connection", request=request)
        response = await self._inner.handle_async_request(request)
        data = await response.aread()
        if download:
            self.downloads_in_flight += 1
            self.most_downloads_in_flight = max(
                self.most_downloads_in_flight, self.downloads_in_flight
            )
            if self.downloads_in_flight >= LIMIT:
                self.limit_reached.set()

        def close() -> None:
            self._connections.release()
            if download:
                self.downloads_in_flight -= 1

        stream = _Stream(data, close, self.release if download else None)
        return httpx.Response(
            response.status_code, headers=response.headers, stream=stream, request=request
        )


async def test_more_downloads_than_the_limit_all_succeed_and_api_calls_keep_connections(
    tmp_path: Path,
) -> None:
    fake = new_fake()
    cdn = PooledCDN(fake)
    clips = [known_clip(fake, f"c-{n}", "Song") for n in range(POOL_SIZE + 5)]
    paths: list[Path] = []
    async with client_through(fake, cdn) as client, anyio.create_task_group() as tg:

        async def fetch(clip: Clip) -> None:
            paths.append(await client.download(clip, tmp_path))

        for clip in clips:
            tg.start_soon(fetch, clip)
        await cdn.limit_reached.wait()
        # Every download that could start holds a connection and stalls: API calls still
        # find free ones, without waiting for a download to end.
        assert cdn.free_connections >= POOL_SIZE - LIMIT
        credits = await client.credits.get()
        assert credits.credits > 0
        assert cdn.downloads_in_flight <= LIMIT
        cdn.release.set()
    assert len(paths) == len(clips), "none failed (no PoolTimeout for those that waited)"
    assert cdn.most_downloads_in_flight == LIMIT
    assert cdn.free_connections == POOL_SIZE
    assert files(tmp_path) == sorted(f"Song - c-{n}.wav" for n in range(len(clips)))
    # A download waits for its turn, then for a connection, without a pool timeout.
    assert cdn.pool_timeouts == [None] * len(clips)
    assert _download.MAX_CONCURRENT_DOWNLOADS == LIMIT


async def test_the_download_request_waits_for_a_connection_without_a_pool_timeout(
    tmp_path: Path,
) -> None:
    fake = new_fake()
    cdn = CDN(fake)
    async with client_through(fake, cdn, timeout=42.0) as client:
        await client.download(known_clip(fake), tmp_path)
    timeout = cdn.seen[0].extensions["timeout"]
    assert timeout["pool"] is None
    assert timeout["read"] == 42.0
    assert timeout["write"] == 42.0


async def test_download_slots_go_with_their_http_client(tmp_path: Path) -> None:
    """Slots are kept per http_client (and per loop) weakly: a client made per request
    leaves nothing behind."""
    fake = new_fake()
    clip = known_clip(fake)
    http = httpx.AsyncClient(transport=fake.transport())
    async with http, fake.client(http_client=http) as client:
        await client.download(clip, tmp_path)
        assert _download._SLOTS.get(http) is not None
        other = httpx.AsyncClient(transport=fake.transport())
        async with other, fake.client(http_client=other) as second:
            await second.download(clip, tmp_path, overwrite=True)
        assert _download._SLOTS.get(other) is not _download._SLOTS.get(http)
        before = len(_download._SLOTS._values())
        del other, second
        gc.collect()
        assert len(_download._SLOTS._values()) == before - 1


# --- redirects ---------------------------------------------------------------------------------


async def test_an_injected_clients_cookies_and_headers_never_reach_a_redirect_target(
    tmp_path: Path,
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/share":
            return httpx.Response(302, headers={"location": "https://cdn.example.net/a.mp3"})
        return httpx.Response(200, content=b"A" * 100, headers=AUDIO)

    http, client = mock_client(
        handler,
        cookies={"session": "s3cret-session"},
        headers={"X-Gateway-Key": "s3cret-header"},
        auth=httpx.BasicAuth("user", "s3cret-password"),
    )
    http.cookies.set("session", "s3cret-session", domain="cdn.example.net")
    async with http, client:
        path = await client.download("https://files.example.com/share", tmp_path)
    assert path.read_bytes() == b"A" * 100
    assert [str(r.url) for r in seen] == [
        "https://files.example.com/share",
        "https://cdn.example.net/a.mp3",
    ]
    for request in seen:
        assert "cookie" not in request.headers
        assert "authorization" not in request.headers
        assert not any("s3cret" in value for value in request.headers.values())


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_every_redirect_status_is_followed_with_a_relative_location(
    tmp_path: Path, status: int
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/start":
            # The credentials of a Location are not sent on: no auth on any hop.
            return httpx.Response(status, headers={"location": "//u:pw@cdn.example.com/b.mp3"})
        assert "authorization" not in request.headers
        return httpx.Response(200, content=b"B" * 10, headers=AUDIO)

    http, client = mock_client(handler)
    async with http, client:
        path = await client.download("https://cdn.example.com/start", tmp_path)
    assert path.read_bytes() == b"B" * 10
    assert seen == ["https://cdn.example.com/start", "https://cdn.example.com/b.mp3"]


async def test_a_redirect_from_https_to_http_is_refused(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.scheme == "https":
            location = "http://cdn.example.net/a.mp3?sig=s3cret"
            return httpx.Response(302, headers={"location": location})
        return httpx.Response(200, content=b"A" * 10, headers=AUDIO)

    http, client = mock_client(handler)
    async with http, client:
        with pytest.raises(DownloadError, match="from https to plain http") as caught:
            await client.download("https://cdn.example.com/a.mp3", tmp_path / "new")
    assert seen == ["https://cdn.example.com/a.mp3"], "the http:// hop is never requested"
    assert "http://cdn.example.net/a.mp3?…" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert caught.value.status_code == 302
    assert files(tmp_path) == []


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("ftp://user:s3cret@cdn.example.com/a.mp3", "a URL with ftp://, which is not followed"),
        ("file:///etc/passwd", "a URL with file://, which is not followed"),
        ("data:,x", "redirected to a URL that is not valid"),
    ],
)
async def test_a_redirect_to_another_scheme_is_refused(
    tmp_path: Path, location: str, message: str
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": location})

    http, client = mock_client(handler)
    async with http, client:
        with pytest.raises(DownloadError, match=message) as caught:
            await client.download("https://cdn.example.com/share", tmp_path)
    assert "s3cret" not in str(caught.value)
    assert len(seen) == 1
    assert files(tmp_path) == []


async def test_too_many_redirects_is_a_download_error(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        hop = len(seen)
        return httpx.Response(
            302, headers={"location": f"https://cdn.example.com/{hop}?token=s3cret"}
        )

    http, client = mock_client(handler)
    async with http, client:
        with pytest.raises(DownloadError, match="more than 10 redirects") as caught:
            await client.download("https://cdn.example.com/0", tmp_path)
    assert len(seen) == 11
    assert "https://cdn.example.com/11?…" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert files(tmp_path) == []


async def test_an_error_after_a_redirect_names_the_url_that_answered(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/share":
            location = "https://cdn.example.net/gone.mp3?sig=s3cret"
            return httpx.Response(302, headers={"location": location})
        return httpx.Response(404)

    http, client = mock_client(handler)
    async with http, client:
        with pytest.raises(DownloadError) as caught:
            await client.download("https://files.example.com/share?t=s3cret", tmp_path)
    assert str(caught.value) == (
        "GET https://files.example.com/share?… (redirected to "
        "https://cdn.example.net/gone.mp3?…) -> 404 Not Found"
    )
    assert caught.value.status_code == 404
    assert caught.value.url == "https://files.example.com/share?…"


# --- answers that are not audio ----------------------------------------------------------------

NOT_AUDIO = [
    (202, {"content-type": "application/json"}, b'{"status": "processing"}', "202 Accepted"),
    (200, {"content-type": "text/html; charset=utf-8"}, b"<html>Sign in</html>", "text/html"),
    (200, {"content-type": "application/json"}, b'{"error": "expired"}', "application/json"),
    (200, {"content-type": "application/problem+json"}, b"{}", "application/problem+json"),
    (200, {"content-type": "application/xml"}, b"<Error/>", "application/xml"),
    (200, {"content-type": "text/plain"}, b"AccessDenied", "text/plain"),
    (204, {}, b"", "204 No Content"),
    (200, AUDIO, b"", "empty body"),
    (206, AUDIO, b"AAAA", "206 Partial Content"),
]


@pytest.mark.parametrize(("status", "headers", "body", "named"), NOT_AUDIO)
async def test_an_answer_that_is_not_audio_is_refused_and_keeps_the_existing_file(
    tmp_path: Path, status: int, headers: dict[str, str], body: bytes, named: str
) -> None:
    target = tmp_path / "song.mp3"
    target.write_bytes(b"good audio")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, content=body)

    http, client = mock_client(handler)
    async with http, client:
        with pytest.raises(DownloadError, match=re.escape(named)) as caught:
            await client.download("https://cdn.example.com/song.mp3", target, overwrite=True)
    if status == 200:
        assert "did not serve audio" in str(caught.value)
    assert caught.value.status_code == status
    assert target.read_bytes() == b"good audio"
    assert files(tmp_path) == ["song.mp3"]


async def test_an_empty_body_without_content_length_is_refused(tmp_path: Path) -> None:
    class Empty(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            nothing: tuple[bytes, ...] = ()  # an async generator that ends at once
            for chunk in nothing:
                yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=AUDIO, stream=Empty())

    http, client = mock_client(handler)
    async with http, client:
        with pytest.raises(DownloadError, match="empty body: the URL did not serve audio"):
            await client.download("https://cdn.example.com/song.mp3", tmp_path)
    assert files(tmp_path) == []


# --- stream URLs -------------------------------------------------------------------------------


async def test_a_stream_url_is_named_after_its_item_id(tmp_path: Path) -> None:
    fake = new_fake()
    fake.add_clip("c-1")
    fake.add_clip("c-2")
    async with fake.client() as client:
        first = await client.download("https://audiopipe.suno.ai/?item_id=c-1", tmp_path)
        second = await client.download("https://audiopipe.suno.ai/?item_id=c-2", tmp_path)
    assert (first.name, second.name) == ("c-1.wav", "c-2.wav")
    assert_wav(first)
    assert_wav(second)


async def test_a_streaming_clip_is_refused_with_advice_naming_filename(tmp_path: Path) -> None:
    fake = new_fake()
    streaming = Clip(
        clip_id="c", state=ClipState.STREAMING, audio_url="https://audiopipe.suno.ai/?item_id=c"
    )
    async with fake.client() as client:
        with pytest.raises(ValueError, match=r"still streaming.*filename="):
            await client.download(streaming, tmp_path)


# --- error messages ----------------------------------------------------------------------------


class Failing(httpx.AsyncBaseTransport):
    """Raises ``error`` instead of answering, or (``body_error``) in the body after 8 KiB."""

    def __init__(self, error: Exception | None = None, body_error: Exception | None = None) -> None:
        self._error = error
        self._body_error = body_error

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._error is not None:
            raise self._error
        error = self._body_error

        class Broken(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                yield b"A" * 4096
                yield b"A" * 4096
                assert error is not None
                raise error

        return httpx.Response(200, headers=AUDIO, stream=Broken())


@pytest.mark.parametrize(
    ("error", "body_error", "message"),
    [
        (httpx.ConnectTimeout(""), None, r"could not connect within 3 s \(connect timeout\)"),
        (httpx.ReadTimeout(""), None, r"no data for 7 s \(read timeout\)"),
        (httpx.WriteTimeout(""), None, r"could not send the request within 7 s \(write"),
        (None, httpx.ReadTimeout(""), r"no data for 7 s after 8192 bytes \(read timeout\)"),
    ],
)
async def test_a_timeout_says_which_limit_ran_out(
    tmp_path: Path, error: Exception | None, body_error: Exception | None, message: str
) -> None:
    http = httpx.AsyncClient(transport=Failing(error, body_error))
    async with http, MusicAPI(api_key="sk-test", http_client=http) as client:
        with pytest.raises(DownloadError, match=message) as caught:
            await client.download(
                "https://cdn.example.com/a.mp3",
                tmp_path,
                timeout=httpx.Timeout(7.0, connect=3.0),
                chunk_size=4096,
            )
    assert "longer timeout=" in str(caught.value)
    assert files(tmp_path) == []


@pytest.mark.parametrize("before_the_answer", [True, False])
async def test_urls_in_an_exceptions_text_are_scrubbed(
    tmp_path: Path, before_the_answer: bool
) -> None:
    error = httpx.ReadError("reset by https://u:pw-s3cret@proxy.example.com/x?sig=s3cret")
    transport = Failing(error) if before_the_answer else Failing(body_error=error)
    http = httpx.AsyncClient(transport=transport)
    async with http, MusicAPI(api_key="sk-test", http_client=http) as client:
        with pytest.raises(DownloadError, match=r"proxy\.example\.com") as caught:
            await client.download("https://cdn.example.com/a.mp3", tmp_path)
    assert "s3cret" not in str(caught.value)


async def test_a_body_that_cannot_be_decoded_says_so(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {**AUDIO, "content-encoding": "gzip"}
        return httpx.Response(200, headers=headers, content=b"not gzip" * 100)

    http, client = mock_client(handler)
    async with http, client:
        with pytest.raises(DownloadError, match="body could not be decoded") as caught:
            await client.download("https://cdn.example.com/a.mp3", tmp_path)
    assert isinstance(caught.value.__cause__, httpx.DecodingError)
    assert files(tmp_path) == []


async def test_a_compressed_body_is_saved_decoded(tmp_path: Path) -> None:
    audio = b"ID3" + bytes(range(256)) * 40

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {**AUDIO, "content-encoding": "gzip"}
        return httpx.Response(200, headers=headers, content=gzip.compress(audio))

    http, client = mock_client(handler)
    async with http, client:
        path = await client.download("https://cdn.example.com/a.mp3", tmp_path)
    assert path.read_bytes() == audio


async def test_received_counts_every_byte_that_arrived(tmp_path: Path) -> None:
    """Bytes still in httpx's buffer (less than a chunk) count too."""
    fake = new_fake()
    cdn = CDN(fake, fail_after=3 * 4096)
    async with client_through(fake, cdn) as client:
        with pytest.raises(DownloadError, match="failed after 12288 bytes") as caught:
            await client.download(known_clip(fake), tmp_path, chunk_size=10_000)
    assert caught.value.received == 12288
    assert files(tmp_path) == []


async def test_received_counts_a_compressed_body_as_sent(tmp_path: Path) -> None:
    """A gzip answer cut mid-body: ``received`` is what came over the wire, not the decoded
    bytes (much more here), as DownloadError documents."""
    sent = gzip.compress(bytes(range(256)) * 800)[:700]

    class Cut(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield sent
            raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={**AUDIO, "content-encoding": "gzip"}, stream=Cut())

    http, client = mock_client(handler)
    async with http, client:
        with pytest.raises(DownloadError, match="failed after 700 bytes") as caught:
            await client.download("https://cdn.example.com/a.mp3", tmp_path)
    assert caught.value.received == len(sent) == 700
    assert files(tmp_path) == []


class _FullDisk:
    """A temporary file on a disk that fills up after ``room`` bytes."""

    def __init__(self, handle: BinaryIO, room: int) -> None:
        self._handle = handle
        self._room = room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


async def test_a_full_disk_keeps_its_error_type_names_the_file_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_part = _download._open_part

    def on_a_full_disk(*args: Any) -> Any:
        handle, *rest = open_part(*args)
        return (_FullDisk(handle, 8192), *rest)

    monkeypatch.setattr(_download, "_open_part", on_a_full_disk)
    fake = new_fake()
    target = tmp_path / "song.wav"
    target.write_bytes(b"good audio")
    async with fake.client() as client:
        with pytest.raises(OSError, match="No space left on device") as caught:
            await client.download(known_clip(fake), target, overwrite=True, chunk_size=4096)
    assert not isinstance(caught.value, DownloadError)
    assert caught.value.errno == errno.ENOSPC
    assert str(target) in str(caught.value)
    assert "nothing was kept" in str(caught.value)
    assert target.read_bytes() == b"good audio"
    assert files(tmp_path) == ["song.wav"]


# --- directories a failed download created ----------------------------------------------------


async def test_a_failed_download_removes_the_directories_it_created(tmp_path: Path) -> None:
    fake = new_fake()
    (tmp_path / "kept").mkdir()
    async with fake.client() as client:
        with pytest.raises(DownloadError, match="404"):
            await client.download("https://cdn1.suno.ai/missing.mp3", tmp_path / "kept/a/b/")
        with pytest.raises(DownloadError, match="404"):
            await client.download("https://cdn1.suno.ai/missing.mp3", tmp_path / "x/y/s.mp3")
    assert files(tmp_path) == ["kept"], "kept was there before"
    assert files(tmp_path / "kept") == []


async def test_a_download_broken_mid_body_removes_the_directories_it_created(
    tmp_path: Path,
) -> None:
    fake = new_fake()
    async with client_through(fake, CDN(fake, fail_after=4096)) as client:
        with pytest.raises(DownloadError, match="connection failed"):
            await client.download(known_clip(fake), tmp_path / "new" / "dir")
    assert files(tmp_path) == []


async def test_a_cancelled_download_removes_the_directories_it_created(tmp_path: Path) -> None:
    fake = new_fake()
    cdn = CDN(fake, stall_after=4096)
    async with client_through(fake, cdn) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.download, known_clip(fake), tmp_path / "new" / "dir")
        await cdn.stalled.wait()
        assert files(tmp_path) == ["new"]
        tg.cancel_scope.cancel()
    assert files(tmp_path) == []


async def test_a_directory_another_download_is_writing_to_is_not_removed(
    tmp_path: Path,
) -> None:
    """Two downloads into a new directory: when the one that created it fails, the other's
    temporary file keeps it (and the other goes on)."""
    fake = new_fake()
    cdn = CDN(fake, stall_after=4096)
    dest = tmp_path / "new"
    first_writing, second_writing, first_done = anyio.Event(), anyio.Event(), anyio.Event()
    first_scope = anyio.CancelScope()
    async with client_through(fake, cdn) as client, anyio.create_task_group() as tg:

        async def first() -> None:
            with first_scope:
                await client.download(
                    known_clip(fake, "a"), dest, on_progress=lambda *_: first_writing.set()
                )
            first_done.set()

        async def second() -> None:
            await client.download(
                known_clip(fake, "b"), dest, on_progress=lambda *_: second_writing.set()
            )

        tg.start_soon(first)
        await first_writing.wait()
        tg.start_soon(second)
        await second_writing.wait()
        first_scope.cancel()
        await first_done.wait()
        assert dest.is_dir()
        [part] = files(dest)
        assert part.startswith(".Song - b.wav.part-")
        tg.cancel_scope.cancel()
    assert files(dest) == []


# --- URLs --------------------------------------------------------------------------------------


async def test_a_host_that_is_not_a_valid_name_is_a_value_error(tmp_path: Path) -> None:
    fake = new_fake()
    async with fake.client() as client:
        with pytest.raises(ValueError, match="not a valid domain name") as caught:
            await client.download("https://bob:s3cret@xn--bad--.com/a.mp3", tmp_path)
    assert "s3cret" not in str(caught.value)
    assert files(tmp_path) == []
