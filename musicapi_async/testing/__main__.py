"""``python -m musicapi_async.testing serve``: FakeMusicAPI over HTTP on 127.0.0.1.

For curl, clients in other languages and end-to-end tests::

    $ python -m musicapi_async.testing serve --port 8787 --sonic-duration 10
    base_url: http://127.0.0.1:8787/api/v1
    api_key: test-key
    $ curl -H 'Authorization: Bearer test-key' http://127.0.0.1:8787/api/v1/get-credits
    {"credits": 1000, "extra_credits": 0}

The first two lines on stdout are the base URL and the key (``--port 0``: any free port,
read it there); notes go to stderr. It runs until Ctrl-C or SIGTERM, then exits with 0.
The clips' audio URLs point at the server itself (``/cdn/...``), so downloads stay on
loopback too.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Sequence
from contextlib import ExitStack

import anyio

from . import _defaults as d
from ._serve import _check_port, _loopback_host, serving
from ._server import FakeMusicAPI

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _rate_limit(text: str) -> tuple[int, float] | None:
    if text.lower() in ("none", "off"):
        return None
    rate, slash, per = text.partition("/")
    try:
        value = (int(rate), float(per))
    except ValueError:
        value = None
    if not slash or value is None or value[0] < 1 or not (value[1] > 0 and math.isfinite(value[1])):
        raise argparse.ArgumentTypeError(
            f"expected REQUESTS/SECONDS such as 1/3 (one request per 3 s), or none: {text!r}"
        )
    return value


def _key(text: str) -> str:
    if not text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError("an API key must be non-empty, without spaces")
    return text


def _host(text: str) -> str:
    try:
        return _loopback_host(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        value = int(text)
        _check_port(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 0 to 65535: {text!r}") from None
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0: {text!r}")
    return value


def _credits(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of credits >= 0: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m musicapi_async.testing",
        description="Test helpers of musicapi-async.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve FakeMusicAPI over HTTP on loopback",
        description=(
            "Serve FakeMusicAPI, the stateful fake of the MusicAPI server, over HTTP/1.1 on a "
            "loopback address until Ctrl-C. Prints the base URL and the API key to use."
        ),
    )
    serve.add_argument(
        "--host",
        type=_host,
        default="127.0.0.1",
        help="loopback address to bind: 127.0.0.1 (default), ::1 or localhost",
    )
    serve.add_argument(
        "--port", type=_port, default=0, help="TCP port; 0 (default) picks a free one"
    )
    serve.add_argument(
        "--not-ready-style",
        choices=("202", "200"),
        default="202",
        help="how a Sonic poll says 'not done yet': 202 not_ready (default), or 200 snapshots",
    )
    serve.add_argument(
        "--sonic-duration",
        type=_seconds,
        default=d.DEFAULT_SONIC_DURATION,
        metavar="S",
        help="seconds a Sonic task takes (default %(default)g)",
    )
    serve.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=(1, 3.0),
        metavar="R/P",
        help="R requests per P seconds per key, e.g. 1/3 (default), or none",
    )
    serve.add_argument(
        "--strict-rate-limit",
        action="store_true",
        help="refuse any request less than P/R seconds after the previous one of its key, "
        "refused ones included (default: a token bucket that only accepted requests spend)",
    )
    serve.add_argument(
        "--key",
        type=_key,
        default=FakeMusicAPI.DEFAULT_KEY,
        help="the API key to accept (default %(default)s)",
    )
    serve.add_argument(
        "--credits",
        type=_credits,
        default=d.DEFAULT_CREDITS,
        metavar="N",
        help="the key's credits (default %(default)s)",
    )
    return parser


def _fake(args: argparse.Namespace) -> FakeMusicAPI:
    return FakeMusicAPI(
        default_key=args.key,
        credits=args.credits,
        rate_limit=args.rate_limit,
        rate_limit_rule="strict" if args.strict_rate_limit else "bucket",
        not_ready_style=args.not_ready_style,
        sonic_duration=args.sonic_duration,
    )


async def _serve_until_stopped(fake: FakeMusicAPI, host: str, port: int) -> None:
    with ExitStack() as stack:
        try:
            signals = stack.enter_context(anyio.open_signal_receiver(*_STOP_SIGNALS))
        except NotImplementedError:  # asyncio on Windows: Ctrl-C raises KeyboardInterrupt
            signals = None
        async with serving(fake, host=host, port=port) as served:
            print(f"base_url: {served.base_url}", flush=True)
            print(f"api_key: {fake.default_key}", flush=True)
            print(
                "FakeMusicAPI (a fake for tests, not the real service) is listening; "
                f"try: curl -H 'Authorization: Bearer {fake.default_key}' "
                f"{served.base_url}/get-credits\nPress Ctrl-C to stop.",
                file=sys.stderr,
                flush=True,
            )
            if signals is None:
                await anyio.sleep_forever()
                return
            async for signum in signals:
                print(f"Stopped ({signal.Signals(signum).name}).", file=sys.stderr, flush=True)
                return


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        fake = _fake(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        anyio.run(_serve_until_stopped, fake, args.host, args.port)
    except KeyboardInterrupt:  # before the signal handlers were in place
        print("Stopped.", file=sys.stderr)
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
