"""Downloading clip audio to disk (``MusicAPI.download``).

The body is streamed into a temporary file next to the destination, synced, and renamed
to its final name only once complete and checked, so a file under the final name is never
partial: after an error, a ``Content-Length`` mismatch or a cancellation the temporary file
is removed and nothing else is left behind.

Audio URLs point at public CDNs, not at the API: a download sends no API key (nor the
client's default headers), is not counted by the client's rate limiter, and costs nothing.
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
from pathlib import Path
from typing import BinaryIO, Final, Literal, cast, final
from urllib.parse import unquote

import anyio
import anyio.to_thread
import httpx
from attrs import frozen

from ._exceptions import MusicAPIError
from ._models import Clip, ClipState
from ._redact import redact_url, scrub_urls

__all__ = [
    "DEFAULT_DOWNLOAD_CHUNK_SIZE",
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
_SUFFIX: Final = re.compile(r"\.[A-Za-z0-9]{1,8}")
_CONTENT_LENGTH: Final = re.compile(r"[0-9]+")
# Characters Windows refuses in names; "/" and "\\" are also path separators everywhere.
_FORBIDDEN: Final = frozenset('<>:"/\\|?*')
_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)


class DownloadError(MusicAPIError):
    """A download failed: an error status, a broken connection, or a body of the wrong size.

    Nothing was left under the destination name. Downloading is free and changes nothing on
    the server, so trying again is safe.
    """

    #: The URL, without its query string or credentials (signed URLs carry secrets there).
    url: str
    #: The HTTP status answered, when there was an answer.
    status_code: int | None
    #: Bytes received before the failure.
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
    if name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        name = f"_{name}"
    return name


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
                "to download the stream as it is."
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
            f"cannot download {scrub_urls(repr(text))}: not a valid URL ({exc})"
        ) from exc
    if url.scheme not in ("http", "https"):
        scheme = f"{url.scheme}://" if url.scheme else "no scheme"
        raise ValueError(
            f"cannot download a URL with {scheme}: only http:// and https:// URLs are fetched"
        )
    if not url.host:
        raise ValueError(f"cannot download {redact_url(url)}: the URL has no host")
    if title is None and clip_id is None:
        last = _last_segment(url)
        suffix = _url_suffix(url)
        title = last[: -len(suffix)] if suffix else last
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
    return filename


def _resolve(dest: str | os.PathLike[str], filename: str | None) -> _Target:
    """Decide the directory and (maybe) the name; create missing directories.

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
        path.mkdir(parents=True, exist_ok=True)
        return _Target(path, filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _Target(path.parent, path.name)


def _exists_error(path: Path) -> FileExistsError:
    return FileExistsError(
        f"{str(path)!r} already exists; pass overwrite=True to replace it, or choose "
        "another dest or filename"
    )


def _check_free(path: Path) -> None:
    if os.path.lexists(path):
        raise _exists_error(path)


def _open_part(directory: Path, name: str) -> tuple[BinaryIO, Path]:
    # A name of the caller's may use all 255 bytes a file system allows: shorten it here.
    short = name.encode()[:MAX_FILENAME_BYTES].decode("utf-8", "ignore")
    part = directory / f".{short}.part-{secrets.token_hex(4)}"
    return open(part, "xb"), part


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
    """Fetch ``source`` with ``http_client`` into ``dest``; see ``MusicAPI.download``."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of bytes, got {chunk_size!r}")
    url, title, clip_id = _pick_url(source, format)
    if filename is not None:
        filename = _check_filename(filename)
    target = await anyio.to_thread.run_sync(_resolve, dest, filename)
    if target.name is not None and not overwrite:
        await anyio.to_thread.run_sync(_check_free, target.directory / target.name)

    # Built by hand, not with build_request: the client's default headers, auth and cookies
    # are meant for the API and must not reach a CDN.
    request = httpx.Request(
        "GET",
        url,
        headers={"User-Agent": user_agent, "Accept": "*/*", "Accept-Encoding": "identity"},
        extensions={"timeout": timeout.as_dict()},
    )
    shown = redact_url(url)
    logger.debug("downloading %s", shown)
    try:
        response = await http_client.send(request, stream=True, auth=None, follow_redirects=True)
    except httpx.RequestError as exc:
        raise DownloadError(
            f"GET {shown}: the download failed ({type(exc).__name__}: {scrub_urls(str(exc))})",
            url=shown,
        ) from exc
    try:
        _check_status(response, shown)
        name = target.name or safe_filename(title, clip_id, _extension(url, response))
        path = target.directory / name
        if not overwrite:
            await anyio.to_thread.run_sync(_check_free, path)
        received = await _save(response, path, shown, overwrite, on_progress, chunk_size)
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()
    logger.debug("downloaded %s to %s (%d bytes)", shown, path, received)
    return path


def _check_status(response: httpx.Response, shown: str) -> None:
    if not response.is_success:
        raise DownloadError(
            f"GET {shown} -> {response.status_code} {response.reason_phrase}".rstrip(),
            url=shown,
            status_code=response.status_code,
        )


async def _save(
    response: httpx.Response,
    path: Path,
    shown: str,
    overwrite: bool,
    on_progress: ProgressCallback | None,
    chunk_size: int,
) -> int:
    """Stream the body into a temporary file, then move it to ``path``; return its size."""
    # Content-Length counts the bytes on the wire: with a compressed answer (sent despite
    # "Accept-Encoding: identity") it says nothing of the decoded size, and the HTTP layer
    # already checks the framing.
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    total = None if encoded else _content_length(response)
    handle, part = await anyio.to_thread.run_sync(_open_part, path.parent, path.name)
    received = 0
    try:
        await _report(on_progress, 0, total)
        # httpx's iterators are async generators: close them here, not in the garbage
        # collector, when the loop stops early.
        chunks = cast("AsyncGenerator[bytes, None]", response.aiter_bytes(chunk_size))
        try:
            async for chunk in chunks:
                await anyio.to_thread.run_sync(handle.write, chunk)
                received += len(chunk)
                await _report(on_progress, received, total)
        except httpx.RequestError as exc:
            raise DownloadError(
                f"GET {shown}: the connection failed after {received} bytes "
                f"({type(exc).__name__}: {exc})",
                url=shown,
                status_code=response.status_code,
                received=received,
            ) from exc
        finally:
            with anyio.CancelScope(shield=True):
                await chunks.aclose()
        _check_length(response, total, shown, received)
        await anyio.to_thread.run_sync(_finish_part, handle)
        await anyio.to_thread.run_sync(_publish, part, path, overwrite)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_discard, handle, part)
        raise
    return received


def _check_length(
    response: httpx.Response, announced: int | None, shown: str, received: int
) -> None:
    if announced is not None and received != announced:
        raise DownloadError(
            f"GET {shown}: received {received} bytes but the server announced {announced} "
            "(Content-Length); the file was not kept",
            url=shown,
            status_code=response.status_code,
            received=received,
        )
