"""Downloading clip audio to disk (``MusicAPI.download``).

The body is streamed into a temporary file next to the destination, synced, and renamed
to its final name only once complete and checked, so a file under the final name is never
partial: after an error, a ``Content-Length`` mismatch, an answer that is not audio or a
cancellation the temporary file is removed, as are the directories the call created (when
empty), and nothing else is left behind.

Audio URLs point at public CDNs, not at the API: a download sends no API key (nor the
client's default headers, auth or cookies, on any redirect hop), is not counted by the
client's rate limiter, and costs nothing. Downloads share the API client's connection pool,
so at most :data:`MAX_CONCURRENT_DOWNLOADS` of them run at once per pool and event loop: the
others wait their turn, and API calls always find a free connection.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import AsyncGenerator, Callable
from functools import partial
from pathlib import Path, PureWindowsPath
from typing import BinaryIO, Final, Literal, TypeVar, cast, final
from urllib.parse import unquote

import anyio
import anyio.to_thread
import httpx
from attrs import frozen

from ._exceptions import MusicAPIError
from ._loops import LoopLocal
from ._models import Clip, ClipState
from ._redact import redact_url, scrub_urls

__all__ = [
    "DEFAULT_DOWNLOAD_CHUNK_SIZE",
    "MAX_CONCURRENT_DOWNLOADS",
    "MAX_REDIRECTS",
    "DownloadError",
    "DownloadFormat",
    "ProgressCallback",
    "download_file",
    "safe_filename",
]

logger = logging.getLogger("musicapi_async")

#: Bytes read from the network (and written to disk) at a time.
DEFAULT_DOWNLOAD_CHUNK_SIZE: Final = 64 * 1024
#: Longest file name :func:`safe_filename` makes, in UTF-8 bytes: file systems allow 255,
#: and the temporary name adds a dot and ``.part-`` plus 8 characters.
MAX_FILENAME_BYTES: Final = 200
#: Downloads in flight at once through one httpx client in one event loop; the others wait
#: for a turn (without a time limit: the timeout counts from their own request). A download
#: holds a connection of the pool it shares with the API calls for as long as its body
#: takes: the client's own pool has 20 connections, so 8 downloads always leave API calls
#: (polls, creates) free ones. An injected ``http_client`` should allow more than 8.
MAX_CONCURRENT_DOWNLOADS: Final = 8
#: Redirects followed before a download fails.
MAX_REDIRECTS: Final = 10

#: Which URL of a :class:`Clip` to download: ``"audio"`` its ``audio_url`` (MP3 for Sonic,
#: M4A for Producer, WAV for Nuro), ``"wav"`` its ``wav_url``.
DownloadFormat = Literal["audio", "wav"]
#: ``on_progress(received, total)``: bytes written so far, and the announced size (``None``
#: when the server did not say). May be a coroutine function.
ProgressCallback = Callable[[int, int | None], object]

# Content types that name their file type better than a URL's suffix does; anything else
# falls back to the suffix of the URL's path.
_EXTENSIONS: Final = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/wav": ".wav",
    "audio/wave": ".wav",
    "audio/x-wav": ".wav",
    "audio/vnd.wave": ".wav",
    "audio/mp4": ".m4a",
    "audio/m4a": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".aac",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/webm": ".webm",
    "audio/midi": ".mid",
    "audio/x-midi": ".mid",
    "video/mp4": ".mp4",
    "application/zip": ".zip",
}
#: What a clip's audio may be saved as (not MIDI, video or archives).
_AUDIO_EXTENSIONS: Final = frozenset(
    extension
    for content_type, extension in _EXTENSIONS.items()
    if content_type.startswith("audio/") and "midi" not in content_type
)
#: Content types that are not audio whatever the URL says: an error or login page, an API's
#: JSON ("processing"), a text message.
_NOT_AUDIO_TYPES: Final = frozenset(
    {"application/json", "application/xml", "application/xhtml+xml", "application/javascript"}
)
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_SUFFIX: Final = re.compile(r"\.[A-Za-z0-9]{1,8}")
_CONTENT_LENGTH: Final = re.compile(r"[0-9]+")
# Characters Windows refuses in names; "/" and "\\" are also path separators everywhere.
_FORBIDDEN: Final = frozenset('<>:"/\\|?*')
_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)


class DownloadError(MusicAPIError):
    """A download failed: an error status, a broken connection, a refused redirect, an
    answer that is not audio (an HTML or JSON page, an empty body), or a body of the wrong
    size.

    Nothing was left under the destination name. Downloading is free and changes nothing on
    the server, so trying again is safe.
    """

    #: The URL, without its query string or credentials (signed URLs carry secrets there).
    url: str
    #: The HTTP status answered, when there was an answer.
    status_code: int | None
    #: Bytes of the body received before the failure (as sent, before any decoding).
    received: int

    def __init__(
        self, message: str, *, url: str, status_code: int | None = None, received: int = 0
    ) -> None:
        super().__init__(message, method="GET")
        self.url = url
        self.status_code = status_code
        self.received = received


@final
@frozen
class _Target:
    directory: Path
    #: The file name, or ``None`` to derive it from the clip and the answer.
    name: str | None
    #: The directories this call created, outermost first: removed (when empty) if the
    #: download fails.
    created: tuple[Path, ...] = ()


#: Each httpx client's download slots, per event loop (gone with either).
_SLOTS: LoopLocal[httpx.AsyncClient, anyio.CapacityLimiter] = LoopLocal(
    "musicapi_async download slots"
)


def _slots(http_client: httpx.AsyncClient) -> anyio.CapacityLimiter:
    return _SLOTS.setdefault(http_client, lambda: anyio.CapacityLimiter(MAX_CONCURRENT_DOWNLOADS))


def safe_filename(title: str | None, clip_id: str | None = None, extension: str = "") -> str:
    """A file name from a clip's title and id that is safe on every common file system.

    Path separators and characters Windows refuses become ``_``; control and invisible
    formatting characters go; leading dots and trailing dots and spaces are stripped;
    reserved device names (``CON``, ``NUL``, ``COM1``...) get a ``_`` prefix; the title is
    shortened so the name stays within 200 UTF-8 bytes. The result is never empty, never
    ``.`` or ``..``, and never contains a separator.

    >>> safe_filename("Three Seconds", "0f3c", ".mp3")
    'Three Seconds - 0f3c.mp3'
    >>> safe_filename("../../etc/passwd", None, ".wav")
    '_.._etc_passwd.wav'
    >>> safe_filename("con", None, ".wav")
    '_con.wav'
    """
    extension = extension if _SUFFIX.fullmatch(extension or "") else ""
    stem = _clean(title or "")
    ident = _clean(clip_id or "")
    tail = f" - {ident}" if stem and ident else ident
    room = MAX_FILENAME_BYTES - len(f"{tail}{extension}".encode())
    stem = _clean(stem.encode()[: max(room, 0)].decode("utf-8", "ignore"))
    name = f"{stem}{tail}" or "download"
    if len(f"{name}{extension}".encode()) > MAX_FILENAME_BYTES:  # an absurdly long id
        name = _clean(
            name.encode()[: MAX_FILENAME_BYTES - len(extension)].decode("utf-8", "ignore")
        )
    name = f"{name}{extension}"
    if _is_reserved(name):
        name = f"_{name}"
    return name


def _is_reserved(name: str) -> bool:
    """A Windows device name (``NUL``, ``con.mp3``, ``COM1 .wav``...), which opens the device."""
    return name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED


def _clean(text: str) -> str:
    out = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if char in _FORBIDDEN:
            out.append("_")
        elif category == "Cc" or category in ("Zl", "Zp") or char.isspace():
            out.append(" ")
        elif category not in ("Cf", "Cs"):  # invisible formatting (bidi overrides), surrogates
            out.append(char)
    return " ".join("".join(out).split()).lstrip(".").strip(" .")


def _pick_url(
    source: Clip | str, format: DownloadFormat
) -> tuple[httpx.URL, str | None, str | None]:
    """The URL to fetch and the title and id to name the file after."""
    if isinstance(source, Clip):
        if format not in ("audio", "wav"):
            raise ValueError(f"format must be 'audio' or 'wav', got {format!r}")
        label = f"clip {source.clip_id}" if source.clip_id else "this clip"
        if source.state is ClipState.STREAMING:
            raise ValueError(
                f"{label} is still streaming: its audio_url is a live stream, not the finished "
                "file. Wait for the task first (client.await_task), or pass the URL string "
                "to download the stream as it is, naming the file with filename= (a stream's "
                "URL has no file name)."
            )
        if source.state in (ClipState.PENDING, ClipState.RUNNING) and source.audio_url:
            raise ValueError(
                f"{label} is still {source.state.value}: its audio may be partial. Wait for "
                "the task first (client.await_task), or pass the URL string to download it "
                "as it is."
            )
        text = source.audio_url
        if format == "wav":
            text = source.wav_url
            audio = source.audio_url
            if not text and audio and httpx.URL(audio).path.lower().endswith(".wav"):
                text = audio  # Nuro's audio_url is already a WAV
            if not text:
                raise ValueError(
                    f"{label} has no wav_url: ask for one with client.sonic.wav(clip_id) "
                    "(a paid call) and download the wav_url it returns"
                )
        if not text:
            raise ValueError(
                f"{label} has no audio_url (state {source.state.value}): only finished clips "
                "have one; wait for the task with client.await_task(...)"
            )
        title, clip_id = source.title, source.clip_id
    elif isinstance(source, str):
        if format != "audio":
            raise ValueError("format= chooses between the URLs of a Clip; pass the URL you want")
        text, title, clip_id = source, None, None
    else:
        raise TypeError(f"download needs a Clip or a URL string, got {type(source).__name__}")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(
            f"cannot download {scrub_urls(repr(text))}: not a valid URL ({scrub_urls(str(exc))})"
        ) from exc
    if url.scheme not in ("http", "https"):
        scheme = f"{url.scheme}://" if url.scheme else "no scheme"
        raise ValueError(
            f"cannot download a URL with {scheme}: only http:// and https:// URLs are fetched"
        )
    try:
        host = url.host
    except ValueError as exc:  # idna.IDNAError: an international name that is not valid
        raise ValueError(
            f"cannot download this URL: its host is not a valid domain name ({exc}); check the URL"
        ) from exc
    if not host:
        raise ValueError(f"cannot download {redact_url(url)}: the URL has no host")
    if title is None and clip_id is None:
        last = _last_segment(url)
        suffix = _url_suffix(url)
        title = last[: -len(suffix)] if suffix else last
        if not title:
            # A stream's URL (https://audiopipe.suno.ai/?item_id=<id>) names its clip in
            # the query only.
            title = url.params.get("item_id") or url.params.get("id")
    return url, title, clip_id


def saved_clips(
    directory: Path, extensions: frozenset[str] | set[str] = _AUDIO_EXTENSIONS
) -> dict[str, Path]:
    """The clip files earlier downloads left in ``directory``, by clip id.

    A clip's file is named ``<title> - <id><extension>`` (or ``<id><extension>``) by
    :func:`safe_filename`, and appears under that name only once complete, so each file
    found is whole. Hidden files (a download under way) and other extensions than
    ``extensions`` (audio by default) do not count.
    """
    found: dict[str, Path] = {}
    for path in directory.iterdir():
        if path.name.startswith(".") or path.suffix.lower() not in extensions:
            continue
        if path.is_file():
            found[path.stem.rpartition(" - ")[2]] = path
    return found


def saved_clip_file(directory: Path, clip: Clip, format: DownloadFormat = "audio") -> Path | None:
    """The file an earlier download of ``clip`` into ``directory`` left, if there is one
    (:func:`saved_clips`; only a ``.wav`` for ``format="wav"``). ``None`` for a clip without
    an id: its name says nothing of which clip it is."""
    if not clip.clip_id or not directory.is_dir():
        return None
    _, _, clip_id = _pick_url(clip, format)
    return saved_clips(directory, clip_extensions(clip, format)).get(safe_filename(None, clip_id))


def clip_extensions(clip: Clip, format: DownloadFormat = "audio") -> frozenset[str]:
    """What a saved file of ``clip`` may end with: audio, the URL's suffix, or ".bin" (what
    download() names a file of no known type); not a video, since the clip's own video
    (video_url) may be saved beside its audio. Only ``.wav`` for ``format="wav"``."""
    if format == "wav":
        return frozenset({".wav"})
    url, _, _ = _pick_url(clip, format)
    return frozenset({*_AUDIO_EXTENSIONS, ".bin", _url_suffix(url)} - {""})


def _last_segment(url: httpx.URL) -> str:
    # From the raw path: a decoded path would split an encoded "%2F" as a separator.
    raw = url.raw_path.decode("ascii").partition("?")[0]
    return unquote(raw.rsplit("/", 1)[-1])


def _url_suffix(url: httpx.URL) -> str:
    last = _last_segment(url)
    dot = last.rfind(".")
    suffix = last[dot:].lower() if dot > 0 else ""
    return suffix if _SUFFIX.fullmatch(suffix) else ""


def _extension(url: httpx.URL, response: httpx.Response) -> str:
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return _EXTENSIONS.get(content_type) or _url_suffix(url) or ".bin"


def _check_filename(filename: str) -> str:
    if not isinstance(filename, str):
        raise TypeError(f"filename must be a str, got {type(filename).__name__}")
    if (
        filename in ("", ".", "..")
        or "/" in filename
        or "\\" in filename
        or "\0" in filename
        or (os.altsep and os.altsep in filename)
    ):
        raise ValueError(
            f"filename must be a plain file name, without a directory part, got {filename!r}; "
            "put the directory in dest"
        )
    # On Windows "C:x.mp3" is relative to another drive and "x.mp3:s" a hidden stream of
    # x.mp3: both would be written outside dest, or not as a file.
    if ":" in filename or PureWindowsPath(filename).anchor:
        raise ValueError(
            f"filename must be a plain file name, got {filename!r}: a ':' names a drive or a "
            "stream on Windows; pass a plain file name (and the directory in dest)"
        )
    if _is_reserved(filename):
        raise ValueError(
            f"filename {filename!r} is a device name on Windows (CON, NUL, COM1...), not a "
            "file; pass a plain file name, e.g. with a prefix (see safe_filename)"
        )
    return filename


def _resolve(dest: str | os.PathLike[str], filename: str | None) -> _Target:
    """Decide the directory and (maybe) the name; create missing directories (and say which).

    ``dest`` is a directory when it is one, ends with a separator, comes with a
    ``filename``, or does not exist and has no extension (``songs``); otherwise it is the
    file to write (``song.mp3``, or an existing file).
    """
    raw = os.fspath(dest)
    if not isinstance(raw, str):
        raise TypeError("dest must be a str or os.PathLike[str] path")
    if not raw:
        raise ValueError("dest is empty: give a directory or a file path")
    path = Path(raw)
    separators = tuple(sep for sep in ("/", os.sep, os.altsep) if sep)
    is_dir = (
        filename is not None
        or raw.endswith(separators)
        or path.is_dir()
        or (not os.path.lexists(path) and not path.suffix)
    )
    if is_dir:
        if os.path.lexists(path) and not path.is_dir():
            raise NotADirectoryError(f"dest {raw!r} exists and is not a directory")
        return _Target(path, filename, _make_dirs(path))
    return _Target(path.parent, path.name, _make_dirs(path.parent))


def _make_dirs(directory: Path) -> tuple[Path, ...]:
    """Create ``directory`` and its missing parents; return those created, outermost first."""
    missing: list[Path] = []
    for parent in (directory, *directory.parents):
        if os.path.isdir(parent):
            break
        missing.append(parent)
    created: list[Path] = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise
        else:
            created.append(path)
    return tuple(created)


def _remove_dirs(created: tuple[Path, ...]) -> None:
    """Remove the directories a failed download created, innermost first, while empty."""
    for path in reversed(created):
        try:
            path.rmdir()
        except OSError:  # not empty (another download's file), or gone
            return


def _exists_error(path: Path) -> FileExistsError:
    return FileExistsError(
        f"{str(path)!r} already exists; pass overwrite=True to replace it, or choose "
        "another dest or filename"
    )


def _check_free(path: Path) -> None:
    if os.path.lexists(path):
        raise _exists_error(path)


def _open_part(directory: Path, name: str) -> tuple[BinaryIO, Path, tuple[Path, ...]]:
    """Open a new temporary file for ``name``; also return the directories created for it
    (a concurrent download that failed may have removed the directory, empty then)."""
    # A name of the caller's may use all 255 bytes a file system allows: shorten it here.
    short = name.encode()[:MAX_FILENAME_BYTES].decode("utf-8", "ignore")
    part = directory / f".{short}.part-{secrets.token_hex(4)}"
    created: tuple[Path, ...] = ()
    for attempt in range(3):
        created += _make_dirs(directory)
        try:
            return open(part, "xb"), part, created
        except FileNotFoundError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _finish_part(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _publish(part: Path, final_path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(part, final_path)
    else:
        # A hard link never replaces an existing file, unlike a rename: no race with
        # another writer between the check and the move.
        try:
            os.link(part, final_path)
        except FileExistsError:
            raise _exists_error(final_path) from None
        except OSError:  # no hard links on this file system (FAT, some network shares)
            _check_free(final_path)
            os.replace(part, final_path)
        else:
            try:
                os.unlink(part)
            except OSError:
                logger.warning("could not remove the temporary file %s", part)
    _sync_directory(final_path.parent)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); Windows cannot open a directory, and needs not."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _discard(handle: BinaryIO, part: Path) -> None:
    """Close and remove the temporary file (it is gone already once published)."""
    with contextlib.suppress(OSError):
        handle.close()
    try:
        os.unlink(part)
    except FileNotFoundError:
        pass
    except OSError:
        logger.warning("could not remove the temporary file %s", part)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "").strip()
    return int(value) if _CONTENT_LENGTH.fullmatch(value) else None


def _is_encoded(response: httpx.Response) -> bool:
    encoding: str = response.headers.get("content-encoding", "identity")
    return encoding.strip().lower() != "identity"


async def _report(on_progress: ProgressCallback | None, received: int, total: int | None) -> None:
    if on_progress is not None:
        result = on_progress(received, total)
        if inspect.isawaitable(result):
            await result


async def download_file(
    http_client: httpx.AsyncClient,
    source: Clip | str,
    dest: str | os.PathLike[str],
    *,
    format: DownloadFormat = "audio",
    filename: str | None = None,
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
    chunk_size: int = DEFAULT_DOWNLOAD_CHUNK_SIZE,
    timeout: httpx.Timeout,
    user_agent: str,
) -> Path:
    """Fetch ``source`` with ``http_client`` into ``dest``; see ``MusicAPI.download``.

    At most :data:`MAX_CONCURRENT_DOWNLOADS` run at once per ``http_client`` and event loop;
    the others wait for a turn, without a time limit.

    Raises:
        DownloadError: an error status, a failed connection or timeout, a refused redirect
            (another scheme than http(s), https to http, more than :data:`MAX_REDIRECTS`),
            an answer that is not audio (not a 200, an HTML, JSON, XML or text body, an empty
            body), or a body whose size does not match ``Content-Length``.
        FileExistsError: the file exists and ``overwrite`` is false.
        OSError: the file could not be written or moved into place (a full disk, no
            permission): the same kind of error, its message naming the destination.
        ValueError: not an http(s) URL, a clip without that URL, or a ``filename`` that is
            not a plain file name.

    Whatever the error, nothing is left under the destination name, an existing file is
    kept, and the temporary file and the directories this call created (if empty) are gone.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of bytes, got {chunk_size!r}")
    url, title, clip_id = _pick_url(source, format)
    if filename is not None:
        filename = _check_filename(filename)
    target = await anyio.to_thread.run_sync(_resolve, dest, filename)
    created = list(target.created)
    shown = redact_url(url)
    try:
        if target.name is not None and not overwrite:
            await anyio.to_thread.run_sync(_check_free, target.directory / target.name)
        # A download holds a connection of the API's pool for as long as its body takes.
        async with _slots(http_client):
            logger.debug("downloading %s", shown)
            response, where = await _fetch(http_client, url, shown, timeout, user_agent)
            try:
                _check_answer(response, shown, where)
                name = target.name or safe_filename(title, clip_id, _extension(url, response))
                path = target.directory / name
                if not overwrite:
                    await anyio.to_thread.run_sync(_check_free, path)
                received = await _save(
                    response,
                    path,
                    shown,
                    where,
                    overwrite,
                    on_progress,
                    chunk_size,
                    timeout,
                    created,
                )
            finally:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
    except BaseException:
        if created:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_remove_dirs, tuple(created))
        raise
    logger.debug("downloaded %s to %s (%d bytes)", shown, path, received)
    return path


async def _fetch(
    http_client: httpx.AsyncClient,
    url: httpx.URL,
    shown: str,
    timeout: httpx.Timeout,
    user_agent: str,
) -> tuple[httpx.Response, str]:
    """Send the GET and follow its redirects; return the answer, and the start of an error
    message about it (``GET <url>``, and the URL that answered when redirected)."""
    # No pool timeout: a download waits for its turn (see MAX_CONCURRENT_DOWNLOADS), and
    # then for a connection, for as long as it takes; the timeout counts from there.
    timeouts = {**timeout.as_dict(), "pool": None}
    where = f"GET {shown}"
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        # Built by hand, not with build_request, at every hop (redirects are not left to
        # httpx, which builds its hops with the client's cookies): the client's default
        # headers, auth and cookies are meant for the API and must not reach a CDN.
        request = httpx.Request(
            "GET",
            current,
            headers={"User-Agent": user_agent, "Accept": "*/*", "Accept-Encoding": "identity"},
            extensions={"timeout": timeouts},
        )
        try:
            response = await http_client.send(
                request, stream=True, auth=None, follow_redirects=False
            )
        except httpx.RequestError as exc:
            raise DownloadError(
                f"{where}: the download failed: {_describe(exc, timeout)}; {_advice(exc)}",
                url=shown,
            ) from exc
        except httpx.InvalidURL as exc:  # httpx reads a redirect's Location even unfollowed
            raise DownloadError(
                f"{where}: the server redirected to a URL that is not valid "
                f"({scrub_urls(str(exc))}); the file is not there, check the URL",
                url=shown,
            ) from exc
        location = response.headers.get("location")
        if response.status_code not in _REDIRECT_STATUSES or not location:
            return response, where
        with anyio.CancelScope(shield=True):
            await response.aclose()
        current = _redirect_target(response, current, location, shown, where)
        where = f"GET {shown} (redirected to {_show(current)})"
        if hop == MAX_REDIRECTS:
            raise DownloadError(
                f"GET {shown}: more than {MAX_REDIRECTS} redirects (the last to "
                f"{_show(current)}): the URL leads to no file; check it, or pass the final "
                "URL",
                url=shown,
                status_code=response.status_code,
            )
    raise AssertionError("unreachable")


def _show(url: httpx.URL) -> str:
    try:
        return redact_url(url)
    except Exception:  # a URL httpx parsed but cannot rebuild
        return "<an unshowable URL>"


def _redirect_target(
    response: httpx.Response, current: httpx.URL, location: str, shown: str, where: str
) -> httpx.URL:
    """Where a redirect leads; a DownloadError for a target that must not be followed."""
    answer = f"{where} -> {response.status_code} {response.reason_phrase}".rstrip()
    try:
        target = current.join(location.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise DownloadError(
            f"{answer}: redirected to an invalid URL ({scrub_urls(str(exc))}); the server "
            "sent a broken Location, try again later",
            url=shown,
            status_code=response.status_code,
        ) from None
    if target.scheme not in ("http", "https") or not target.host:
        scheme = f"a URL with {target.scheme}://" if target.scheme else "a URL without a scheme"
        raise DownloadError(
            f"{answer}: redirected to {scheme}, which is not followed: only http:// and "
            "https:// are; fetch that URL yourself if you trust it",
            url=shown,
            status_code=response.status_code,
        )
    if current.scheme == "https" and target.scheme == "http":
        raise DownloadError(
            f"{answer}: redirected from https to plain http ({_show(target)}), which is not "
            "followed: the file would travel unencrypted and could be altered; pass that "
            "http:// URL yourself if you trust it",
            url=shown,
            status_code=response.status_code,
        )
    # The next hop carries no credentials of the redirect's (no auth at all) nor fragment.
    return target.copy_with(userinfo=b"", fragment=None)


def _check_answer(response: httpx.Response, shown: str, where: str) -> None:
    """Refuse an answer that is not the file: an error status, any other 2xx than 200 (a
    202 "processing", a 204), a page or message, an empty body."""
    status = response.status_code
    answer = f"{where} -> {status} {response.reason_phrase}".rstrip()
    if status != 200:
        advice = ""
        if 200 <= status < 300:
            advice = (
                ": the server did not send the file (only a 200 answer carries it); nothing "
                "was written, try again later"
            )
        raise DownloadError(f"{answer}{advice}", url=shown, status_code=status)
    content_type = response.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if (
        media.startswith("text/")
        or media in _NOT_AUDIO_TYPES
        or media.endswith(("+json", "+xml", "/json", "/xml"))
    ):
        raise DownloadError(
            f"{answer} with Content-Type {scrub_urls(media)[:80]}: the URL did not serve "
            "audio (an error or sign-in page, a message, or an expired link?); nothing was "
            "written. Check that the URL is the audio file's, or fetch the task again for a "
            "fresh one",
            url=shown,
            status_code=status,
        )
    if not _is_encoded(response) and _content_length(response) == 0:
        raise _empty(answer, shown, status)


def _empty(answer: str, shown: str, status: int) -> DownloadError:
    return DownloadError(
        f"{answer} with an empty body: the URL did not serve audio; nothing was written, "
        "try again later",
        url=shown,
        status_code=status,
    )


def _describe(exc: httpx.RequestError, timeout: httpx.Timeout, received: int | None = None) -> str:
    """What went wrong, in words (the timeout that ran out, and its limit), then the
    exception (its URLs scrubbed). ``received``: bytes of the body so far, ``None`` before
    the answer."""
    after = "" if received is None else f" after {received} bytes"
    detail = scrub_urls(str(exc))
    kind = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        phase, text = next(
            ((phase, text) for cls, phase, text in _TIMEOUTS if isinstance(exc, cls)),
            ("", "timed out"),
        )
        limit = timeout.as_dict().get(phase)
        what = text.format(f"{limit:g} s") if limit is not None else "timed out"
        which = f"{phase} timeout" if phase else type(exc).__name__
        # The exception's own text, when it has one, after the words that say which limit.
        tail = f"; {type(exc).__name__}: {detail}" if detail else ""
        return f"{what}{after} ({which}{tail})"
    if isinstance(exc, httpx.DecodingError):
        what = f"the body could not be decoded{after} (a broken Content-Encoding)"
    elif received is not None:
        what = f"the connection failed{after}"
    elif isinstance(exc, httpx.ConnectError):
        what = "could not connect"
    elif isinstance(exc, httpx.RemoteProtocolError):
        what = "the server closed the connection or broke the HTTP protocol"
    else:
        what = "the request failed"
    return f"{what} ({kind})"


def _advice(exc: httpx.RequestError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "try again, or pass a longer timeout="
    return "try again (downloading is free)"


#: Which limit a timeout exception means, and how to say it ("{}": the limit).
_TIMEOUTS: Final[tuple[tuple[type[httpx.TimeoutException], str, str], ...]] = (
    (httpx.ConnectTimeout, "connect", "could not connect within {}"),
    (httpx.ReadTimeout, "read", "no data for {}"),
    (httpx.WriteTimeout, "write", "could not send the request within {}"),
    (httpx.PoolTimeout, "pool", "no free connection within {}"),
)


_T = TypeVar("_T")


async def _on_disk(path: Path, func: Callable[[], _T]) -> _T:
    """``func()`` in a worker thread; an OSError (a full disk, no permission) says which file
    could not be saved, and keeps its type and errno."""
    try:
        return await anyio.to_thread.run_sync(func)
    except FileExistsError:  # _publish's own, which names the file already
        raise
    except OSError as exc:
        raise _disk_error(exc, path) from exc


def _disk_error(exc: OSError, path: Path) -> OSError:
    """``exc`` again (same type and errno), saying which file could not be saved."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    message = (
        f"{reason}; the download could not be saved and nothing was kept (check the free "
        "space and the permissions there, or choose another dest)"
    )
    try:
        if exc.errno is not None:
            return type(exc)(exc.errno, message, str(path))
        # Without an errno, str() would not show a filename attribute: name it in the text.
        return type(exc)(f"{message}: {str(path)!r}")
    except Exception:  # a subclass with another signature
        return OSError(exc.errno, message, str(path))


async def _save(
    response: httpx.Response,
    path: Path,
    shown: str,
    where: str,
    overwrite: bool,
    on_progress: ProgressCallback | None,
    chunk_size: int,
    timeout: httpx.Timeout,
    created: list[Path],
) -> int:
    """Stream the body into a temporary file, then move it to ``path``; return its size.

    The directories created for the temporary file are added to ``created``."""
    # Content-Length counts the bytes on the wire: with a compressed answer (sent despite
    # "Accept-Encoding: identity") it says nothing of the decoded size, and the HTTP layer
    # already checks the framing.
    encoded = _is_encoded(response)
    total = None if encoded else _content_length(response)
    handle, part, made = await _on_disk(path, partial(_open_part, path.parent, path.name))
    created.extend(made)
    written = 0
    try:
        await _report(on_progress, 0, total)
        # httpx's iterators are async generators: close them here, not in the garbage
        # collector, when the loop stops early.
        chunks = cast("AsyncGenerator[bytes, None]", response.aiter_bytes(chunk_size))
        try:
            async for chunk in chunks:
                await _on_disk(path, partial(handle.write, chunk))
                written += len(chunk)
                await _report(on_progress, written, total)
        except httpx.RequestError as exc:
            # What came off the wire (compressed or not), also the bytes still in httpx's
            # buffer: DownloadError.received counts the body as sent.
            received = response.num_bytes_downloaded
            raise DownloadError(
                f"{where}: {_describe(exc, timeout, received)}; nothing was kept, {_advice(exc)}",
                url=shown,
                status_code=response.status_code,
                received=received,
            ) from exc
        finally:
            with anyio.CancelScope(shield=True):
                await chunks.aclose()
        _check_length(response, total, shown, where, written)
        await _on_disk(path, partial(_finish_part, handle))
        await _on_disk(path, partial(_publish, part, path, overwrite))
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_discard, handle, part)
        raise
    return written


def _check_length(
    response: httpx.Response, announced: int | None, shown: str, where: str, received: int
) -> None:
    if not received:  # without a Content-Length (or a compressed one)
        raise _empty(f"{where} -> {response.status_code}", shown, response.status_code)
    if announced is not None and received != announced:
        raise DownloadError(
            f"{where}: received {received} bytes but the server announced {announced} "
            "(Content-Length); the file was not kept, try again",
            url=shown,
            status_code=response.status_code,
            received=received,
        )
