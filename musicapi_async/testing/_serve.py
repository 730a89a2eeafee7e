"""Serve a :class:`FakeMusicAPI` over real HTTP/1.1 on loopback, with anyio only.

A small HTTP/1.1 server: request line and headers (bounded), a ``Content-Length`` or
chunked body (bounded), keep-alive with ``Connection: close`` honoured, ``Expect:
100-continue``, 400 on malformed input. Each request goes to :meth:`FakeMusicAPI.handle`;
its answer is written back with a reason phrase, ``Content-Length`` and ``Content-Type``.
A fault the fake was told to inject becomes what a real network would do:

* ``remote_protocol_error``: the connection is closed without an answer (the client sees
  "server disconnected without sending a response");
* ``connect_error``: the connection is reset (TCP RST; the client sees a read error: once
  a connection is accepted a real connect error is impossible);
* ``read_timeout``: no answer at all until the client gives up and closes the connection.

Clip audio is served too (when the fake's ``serve_audio`` is on): the CDN URLs in the
fake's answers (``https://cdn1.suno.ai/<clip>.mp3``...) are rewritten to the server itself,
``http://<host>:<port>/cdn/cdn1.suno.ai/<clip>.mp3``, and a GET there is answered by
:meth:`FakeMusicAPI.handle_cdn` (logged in ``fake.downloads``). A client of a served fake
thus downloads over loopback instead of asking the real CDNs for clips that do not exist.

Time in a served fake is the event loop's real clock. Only loopback hosts are served: the
fake checks keys but is a test double, not a server to expose.
"""

from __future__ import annotations

import functools
import http
import ipaddress
import json
import logging
import re
import socket
import struct
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from email.utils import formatdate
from typing import TYPE_CHECKING, Final, final
from urllib.parse import unquote, urlsplit

import anyio
import attrs
import httpx
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.stapled import MultiListener
from attrs import frozen

from ._audio import CDN_HOSTS
from ._types import FakeResponse

if TYPE_CHECKING:
    from ._server import FakeMusicAPI
    from ._types import Fault

__all__ = ["ServedFake", "serve", "serving"]

logger = logging.getLogger("musicapi_async")

#: Largest request line plus headers accepted, in bytes (431 beyond).
MAX_HEADER_BYTES: Final = 16 * 1024
#: Most header fields accepted in one request (431 beyond).
MAX_HEADERS: Final = 100
#: Largest request body accepted, in bytes (413 beyond).
MAX_BODY_BYTES: Final = 8 * 1024 * 1024
#: Seconds to keep reading (and dropping) a refused request's input before closing.
LINGER_SECONDS: Final = 1.0
#: The ``Server`` header of every answer.
SERVER_NAME: Final = "musicapi-async-fake"
#: Path prefix of the fake CDN on a served fake: ``/cdn/<cdn host>/<path>``.
CDN_PREFIX: Final = "/cdn/"

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION: Final = re.compile(r"HTTP/[0-9]\.[0-9]")
_DIGITS: Final = re.compile(r"[0-9]+")
_CHUNK_SIZE: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
_BAD_TARGET_CHARS: Final = re.compile(r"[\x00-\x20\x7f-\xff#]")
_BAD_VALUE_CHARS: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CLIENT_GONE: Final = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    anyio.IncompleteRead,
    OSError,
)
#: Headers the server writes itself; the fake's own values for them are dropped.
_HOP_HEADERS: Final = frozenset(
    {"connection", "content-length", "transfer-encoding", "date", "server", "keep-alive"}
)


@final
@frozen
class ServedFake:
    """Where a served :class:`FakeMusicAPI` listens, as :func:`serve` reports it."""

    #: The loopback host it is bound to (``127.0.0.1``, ``::1`` or ``localhost``).
    host: str
    #: The TCP port it is bound to (the one the system chose when ``port=0``).
    port: int
    #: The URL to give a client: ``http://<host>:<port>`` plus the fake's base path
    #: (``http://127.0.0.1:54321/api/v1``).
    base_url: str


class _HTTPError(Exception):
    """A request the server refuses before the fake sees it; the connection is closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@frozen
class _Request:
    method: str
    #: Percent-decoded, like ``httpx.URL.path`` (what the in-process transport passes).
    path: str
    #: Raw query string, without ``?``.
    query: str
    #: Names in lower case; repeated fields joined with ``", "``.
    headers: Mapping[str, str]
    body: bytes
    keep_alive: bool


async def serve(
    fake: FakeMusicAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    webhooks: bool = True,
    task_status: TaskStatus[ServedFake] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``fake`` over HTTP on a loopback ``host`` until cancelled.

    With ``webhooks`` (the default) the fake also delivers the webhooks of the tasks
    created with a ``webhook_url``, by real HTTP POSTs (``fake.webhooks.run``); pass
    ``webhooks=False`` to drive ``fake.webhooks`` yourself.

    Start it in a task group with ``await tg.start(serve, fake)``: that returns a
    :class:`ServedFake` once the socket listens (``port=0``: any free port). Cancel the task
    group to stop it; open connections are closed. :func:`serving` wraps this in a context
    manager. Example::

        import anyio, httpx
        from musicapi_async.testing import FakeMusicAPI, serve

        async def main() -> None:
            fake = FakeMusicAPI(rate_limit=None)
            async with anyio.create_task_group() as tg:
                served = await tg.start(serve, fake)
                headers = {"Authorization": f"Bearer {fake.default_key}"}
                async with httpx.AsyncClient(base_url=served.base_url, headers=headers) as http:
                    answer = await http.get("/get-credits")
                assert answer.json()["credits"] == 1000
                tg.cancel_scope.cancel()

        anyio.run(main)

    Raises:
        ValueError: ``host`` is not a loopback host, or ``port`` is not in 0-65535.
        OSError: the port cannot be bound (already in use...).
    """
    listener, served = await _listen(fake, host, port)
    async with listener, _delivering(fake, served, webhooks):
        task_status.started(served)
        await listener.serve(functools.partial(_serve_connection, fake, served))


@asynccontextmanager
async def serving(
    fake: FakeMusicAPI, *, host: str = "127.0.0.1", port: int = 0, webhooks: bool = True
) -> AsyncIterator[ServedFake]:
    """Serve ``fake`` on loopback for the duration of an ``async with`` block.

    ``webhooks``: deliver webhooks over real HTTP meanwhile, as :func:`serve` does.

    Example, with the SDK over a real socket::

        import anyio
        from musicapi_async import MusicAPI
        from musicapi_async.testing import FakeMusicAPI, serving

        async def main() -> None:
            fake = FakeMusicAPI(rate_limit=None)
            async with serving(fake) as served:
                async with MusicAPI("test-key", base_url=served.base_url) as api:
                    balance = await api.credits.get()
            assert balance.credits == 1000

        anyio.run(main)

    Raises:
        ValueError: ``host`` is not a loopback host, or ``port`` is not in 0-65535.
        OSError: the port cannot be bound (already in use...).
    """
    # Bind before starting the task group, so a bind error is raised as itself.
    listener, served = await _listen(fake, host, port)
    async with listener, _delivering(fake, served, webhooks), anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, functools.partial(_serve_connection, fake, served))
        try:
            yield served
        finally:
            tg.cancel_scope.cancel()


async def _listen(
    fake: FakeMusicAPI, host: str, port: int
) -> tuple[MultiListener[SocketStream], ServedFake]:
    bind_host = _loopback_host(host)
    _check_port(port)
    listener = await anyio.create_tcp_listener(local_host=bind_host, local_port=port)
    bound_port = listener.extra(SocketAttribute.local_port)
    served = ServedFake(bind_host, bound_port, _base_url(fake, bind_host, bound_port))
    logger.info("FakeMusicAPI served at %s", served.base_url)
    return listener, served


# ---------------------------------------------------------------------------- set-up


def _loopback_address(host: str) -> str | None:
    """``host`` as a loopback address (``localhost`` as is), or None if it is not one."""
    if host == "localhost":
        return host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return str(address) if address.is_loopback else None


def _loopback_host(host: str) -> str:
    address = _loopback_address(host)
    if address is None:
        raise ValueError(
            f"FakeMusicAPI is served on loopback hosts only (127.0.0.1, ::1 or localhost), "
            f"not {host!r}: it is a fake for tests, not a server to expose"
        )
    return address


def _check_port(port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be a whole number from 0 (any free port) to 65535: {port!r}")


def _base_url(fake: FakeMusicAPI, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{urlsplit(fake.base_url).path.rstrip('/')}"


# ---------------------------------------------------------------------------- connections


async def _serve_connection(fake: FakeMusicAPI, served: ServedFake, stream: SocketStream) -> None:
    """Answer the requests of one connection in order until either side closes it."""
    async with stream:
        reader = BufferedByteReceiveStream(stream)
        try:
            while await _serve_one(fake, served, stream, reader):
                pass
        except _CLIENT_GONE:
            pass  # the client hung up mid-request, mid-answer or while we kept silent
        except Exception:
            # One connection's failure must not stop the server (listener.serve would).
            logger.exception("FakeMusicAPI's loopback server failed on a connection")


async def _serve_one(
    fake: FakeMusicAPI, served: ServedFake, stream: SocketStream, reader: BufferedByteReceiveStream
) -> bool:
    """Serve one request; whether to keep the connection open for another."""
    try:
        request = await _read_request(stream, reader)
    except _HTTPError as error:
        body = json.dumps({"message": error.message}).encode()
        await stream.send(_render(error.status, {}, body, keep_alive=False))
        await _linger(stream)
        return False
    if request is None:
        return False
    try:
        if request.path.startswith(CDN_PREFIX):
            answer = await _cdn(fake, request)
        else:
            answer = await fake.handle(
                request.method, request.path, request.headers, request.body, request.query
            )
            answer = _local_audio_urls(fake, served, answer)
    except Exception:
        logger.exception("FakeMusicAPI.handle failed on %s %s", request.method, request.path)
        body = b'{"message": "FakeMusicAPI failed on this request; see its log."}'
        await stream.send(_render(500, {}, body, keep_alive=False))
        await _linger(stream)
        return False
    if answer.fault is not None:
        await _fail(stream, answer.fault)
        return False
    await stream.send(
        _render(
            answer.status,
            answer.headers,
            answer.body,
            keep_alive=request.keep_alive,
            head=request.method == "HEAD",
        )
    )
    return request.keep_alive


async def _cdn(fake: FakeMusicAPI, request: _Request) -> FakeResponse:
    """A fetch of ``/cdn/<host>/<path>``: the fake CDN's answer for ``https://<host>/<path>``."""
    host, _, rest = request.path[len(CDN_PREFIX) :].partition("/")
    url = f"https://{host}/{rest}" + (f"?{request.query}" if request.query else "")
    answer = await fake.handle_cdn(request.method, url, request.headers)
    if answer is None:
        return FakeResponse(404, {"content-type": "text/plain"}, b"Not Found")
    return answer


def _local_audio_urls(fake: FakeMusicAPI, served: ServedFake, answer: FakeResponse) -> FakeResponse:
    """Point the CDN URLs of a JSON answer at this server's ``/cdn/`` route."""
    if not fake.serve_audio or not answer.body:
        return answer
    content_type = next((v for k, v in answer.headers.items() if k.lower() == "content-type"), "")
    if "json" not in content_type.lower():
        return answer
    return attrs.evolve(answer, body=_local_cdn(served, answer.body))


def _local_cdn(served: ServedFake, body: bytes) -> bytes:
    """``body`` (JSON) with its CDN URLs pointing at this server's ``/cdn/`` route."""
    shown = f"[{served.host}]" if ":" in served.host else served.host
    for host in CDN_HOSTS:
        local = f'"http://{shown}:{served.port}{CDN_PREFIX}{host}/'.encode()
        body = body.replace(f'"https://{host}/'.encode(), local)
    return body


@asynccontextmanager
async def _delivering(
    fake: FakeMusicAPI, served: ServedFake, webhooks: bool
) -> AsyncIterator[None]:
    """Run the fake's webhook sender over real HTTP while serving (unless told not to)."""
    if not webhooks:
        yield
        return
    if fake.serve_audio:
        # Signed after this rewrite: the receiver sees the same URLs as the poll answers.
        fake.webhooks.rewrite_body = functools.partial(_local_cdn, served)
    async with anyio.create_task_group() as tg:
        await tg.start(fake.webhooks.run, _LoopbackOnly())  # real POSTs, to loopback only
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
            fake.webhooks.rewrite_body = None


class _LoopbackOnly(httpx.AsyncBaseTransport):
    """Sends the served fake's webhooks to loopback hosts only: an app configured with its
    production webhook URL must not get fake, signed deliveries there (each such attempt
    is recorded as an error in ``fake.webhooks.deliveries``)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if _loopback_address(request.url.host) is None:
            raise httpx.ConnectError(
                "the served FakeMusicAPI delivers webhooks to loopback hosts only, "
                f"not {request.url.host!r}",
                request=request,
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _linger(stream: SocketStream) -> None:
    """Half-close, then read and drop what the client still sends, for a little while.

    Closing a socket with unread input makes the system send a reset, which can destroy the
    error answer before the client reads it (RFC 9112 §9.6: "lingering close").
    """
    await stream.send_eof()
    with anyio.move_on_after(LINGER_SECONDS):
        drained = 0
        while drained < MAX_BODY_BYTES:
            drained += len(await stream.receive())


async def _fail(stream: SocketStream, fault: Fault) -> None:
    """Make the client see ``fault``; the caller then closes the connection."""
    if fault == "read_timeout":
        # Say nothing until the client gives up (its read timeout) and hangs up.
        while True:
            await stream.receive()
    elif fault == "connect_error":
        # A zero linger time turns the close into a reset (RST) instead of an orderly FIN.
        raw = stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # "remote_protocol_error": an orderly close with no answer.


# ---------------------------------------------------------------------------- parsing


async def _read_request(stream: SocketStream, reader: BufferedByteReceiveStream) -> _Request | None:
    """The next request, ``None`` when the client closed the connection between requests.

    Raises:
        _HTTPError: the request is malformed or too large.
    """
    head = await _read_head(reader)
    if head is None:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = _parse_request_line(lines[0])
    headers = _parse_headers(lines[1:])
    if version == "HTTP/1.1" and "host" not in headers:
        raise _HTTPError(400, "HTTP/1.1 requests must carry a Host header.")
    path, query = _split_target(target)
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
    body = await _read_body(stream, reader, headers, version)
    return _Request(method, path, query, headers, body, keep_alive)


async def _read_head(reader: BufferedByteReceiveStream) -> bytes | None:
    while True:
        try:
            head = await reader.receive_until(b"\r\n\r\n", MAX_HEADER_BYTES)
        except anyio.IncompleteRead:
            return None  # closed between requests, or mid-head: nobody to answer either way
        except anyio.DelimiterNotFound:
            raise _HTTPError(431, "Request header fields too large.") from None
        # receive_until only checks its bound before reading more; one read may bring more.
        if len(head) > MAX_HEADER_BYTES:
            raise _HTTPError(431, "Request header fields too large.")
        # A client may send stray empty lines between requests (RFC 9112 §2.2).
        head = head.lstrip(b"\r\n")
        if head:
            return head


def _parse_request_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise _HTTPError(400, "Malformed request line.")
    method, target, version = parts
    if not _VERSION.fullmatch(version):
        raise _HTTPError(400, "Malformed request line.")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _HTTPError(505, "Only HTTP/1.0 and HTTP/1.1 are supported.")
    if not target or _BAD_TARGET_CHARS.search(target):
        raise _HTTPError(400, "Malformed request target.")
    return method, target, version


def _parse_headers(lines: list[str]) -> dict[str, str]:
    if len(lines) > MAX_HEADERS:
        raise _HTTPError(431, "Too many request header fields.")
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        # A name followed by whitespace or a folded line (RFC 9112 §5.1, §5.2) is refused.
        if not colon or not _TOKEN.fullmatch(name):
            raise _HTTPError(400, "Malformed header field.")
        value = value.strip(" \t")
        if _BAD_VALUE_CHARS.search(value):
            raise _HTTPError(400, "Malformed header field value.")
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _split_target(target: str) -> tuple[str, str]:
    if target.startswith("/") or target == "*":
        path, _, query = target.partition("?")
    elif target.lower().startswith(("http://", "https://")):
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        raise _HTTPError(400, "Malformed request target.")
    return unquote(path), query


async def _read_body(
    stream: SocketStream,
    reader: BufferedByteReceiveStream,
    headers: Mapping[str, str],
    version: str,
) -> bytes:
    coding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if coding is not None and length is not None:
        # Both framings at once is how requests are smuggled; refuse rather than pick one.
        raise _HTTPError(400, "Both Transfer-Encoding and Content-Length were sent.")
    expect = headers.get("expect")
    if expect is not None and expect.lower() != "100-continue":
        raise _HTTPError(417, "Only 'Expect: 100-continue' is supported.")
    if coding is not None:
        if coding.lower() != "chunked":
            raise _HTTPError(501, "Only the chunked transfer coding is supported.")
        await _continue(stream, expect, version)
        return await _read_chunked(reader)
    if length is None:
        return b""
    values = {v.strip() for v in length.split(",")}
    if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values))):
        raise _HTTPError(400, "Malformed Content-Length.")
    size = int(values.pop())
    if size > MAX_BODY_BYTES:
        raise _HTTPError(413, f"Request body larger than {MAX_BODY_BYTES} bytes.")
    if size == 0:
        return b""
    await _continue(stream, expect, version)
    return await reader.receive_exactly(size)


async def _continue(stream: SocketStream, expect: str | None, version: str) -> None:
    if expect is not None and version == "HTTP/1.1":
        await stream.send(b"HTTP/1.1 100 Continue\r\n\r\n")


async def _read_chunked(reader: BufferedByteReceiveStream) -> bytes:
    body = bytearray()
    while True:
        try:
            line = await reader.receive_until(b"\r\n", 1024)
        except anyio.DelimiterNotFound:
            raise _HTTPError(400, "Malformed chunk size.") from None
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise _HTTPError(400, "Malformed chunk size.")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > MAX_BODY_BYTES:
            raise _HTTPError(413, f"Request body larger than {MAX_BODY_BYTES} bytes.")
        body += await reader.receive_exactly(size)
        if await reader.receive_exactly(2) != b"\r\n":
            raise _HTTPError(400, "Malformed chunk.")
    trailers = 0
    while True:  # trailer fields are read and ignored
        try:
            line = await reader.receive_until(b"\r\n", MAX_HEADER_BYTES)
        except anyio.DelimiterNotFound:
            raise _HTTPError(431, "Request header fields too large.") from None
        trailers += len(line) + 2
        if trailers > MAX_HEADER_BYTES:
            raise _HTTPError(431, "Request header fields too large.")
        if not line:
            return bytes(body)


# ---------------------------------------------------------------------------- answers


def _render(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    keep_alive: bool,
    head: bool = False,
) -> bytes:
    """The bytes of an answer: status line, headers, and the body unless ``head``."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    fields = {"content-type": "application/json"}
    for name, value in headers.items():
        if name.lower() in _HOP_HEADERS:
            continue
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            logger.warning("FakeMusicAPI's loopback server dropped a header with a line break")
            continue
        fields[name.lower()] = value
    bodiless = status < 200 or status in (204, 304)
    if bodiless:
        del fields["content-type"]
    else:
        # HEAD: the length of the body a GET would have had, as the fake said (not 0).
        given = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
        fields["content-length"] = given if head and given is not None else str(len(body))
    fields["date"] = formatdate(usegmt=True)
    fields["server"] = SERVER_NAME
    fields["connection"] = "keep-alive" if keep_alive else "close"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{_title(name)}: {value}" for name, value in fields.items()]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return data if head or bodiless else data + body


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))
