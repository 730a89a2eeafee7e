"""URLs fit for messages and logs: without the credentials, query or fragment they may carry
(a webhook URL's ``user:password@``, a signed CDN link's token). Every message or log line
that shows a URL, or text that may hold one (a server's error text), goes through here, and
so does server text that may echo the client's own API key."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = [
    "hide_secrets",
    "redact_url",
    "scrub_urls",
    "shown_location",
    "shown_url",
    "url_repr",
]

#: Characters a secret needs to be hidden wherever it appears in free text. A shorter one of
#: at least ``_SHORTEST_WORD_SECRET`` is hidden where it stands alone (not inside a longer
#: word); a shorter one still (a test's key "k") would match ordinary words, and is hidden
#: only as ``Bearer <secret>``.
_SHORTEST_SECRET = 8
_SHORTEST_WORD_SECRET = 4
#: Levels of a decoded body :func:`hide_secrets` looks into.
_DEEPEST = 100

#: A URL inside free text: a scheme (bounded, and not the tail of a longer word, so a long
#: run of letters is scanned in linear time), "://", then up to a space, quote or angle
#: bracket, without the punctuation that ends a sentence or a parenthesis after it.
_URL_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s\"'<>]*[^\s\"'<>).,;:!]"
)
#: The user and password of a URL's authority (never past its first "/").
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")
#: A URL's query and fragment.
_QUERY = re.compile(r"[?#].*$")


def shown_url(url: object) -> str:
    """A URL fit for an error message, quoted: no user, password, query or fragment (they
    may hold credentials), and at most 80 characters."""
    if not isinstance(url, str):
        return repr(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<an unparseable URL>"
    if not parts.netloc:
        # No "//": not a URL to show as one. "user:password@host/..." reads as the scheme
        # "user" with the password in its path.
        shown = "<a URL without a scheme>" if "@" in url or "?" in url else url
    else:
        if parts.username or parts.password:
            host = f"***@{host}"
        hidden = "?..." if parts.query or parts.fragment else ""
        shown = f"{parts.scheme}://{host}{port}{parts.path}{hidden}"
    return repr(shown if len(shown) <= 80 else shown[:77] + "...")


def url_repr(url: str | None) -> str:
    """For ``field(repr=url_repr)``: a model's URL field in its ``repr`` without what may be
    a secret (a signed link's token, a webhook's password); the value itself is untouched."""
    return "None" if url is None else shown_url(url)


def redact_url(url: httpx.URL) -> str:
    """``url`` without its user, password or fragment, its query shown as ``?…``."""
    shown = str(url.copy_with(query=None, fragment=None, userinfo=b""))
    return f"{shown}?…" if url.query else shown


def shown_location(location: str | None) -> str | None:
    """A redirect's target without its credentials, query or fragment, or None."""
    if not location:
        return None
    try:
        url = httpx.URL(location)
    except (httpx.InvalidURL, ValueError):
        return None
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))


def scrub_urls(text: str, *, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL in it stripped of its user, password, query and fragment
    (``***@`` and ``?...`` mark what was there): for a server's error text, a body snippet
    or an exception's message, whose URLs may carry tokens. ``secrets`` (the client's API
    key) are hidden too, see :func:`hide_secrets`."""

    def scrub(match: re.Match[str]) -> str:
        return _QUERY.sub("?...", _USERINFO.sub("***@", match.group(0)))

    return _URL_IN_TEXT.sub(scrub, hide_secrets(text, secrets))


def hide_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with each of ``secrets`` replaced by ``***`` (``Bearer ***`` for an echoed
    Authorization header): in a string, or in every string of a decoded JSON body (keys and
    values; a new object, the given one is left as it is). A server that echoes the key
    ("Invalid API key: sk-...") must not put it in a message, a log line or an error's
    ``body``."""
    wanted = [secret for secret in secrets if secret]
    return _hide(value, wanted, 0) if wanted else value


def _hide(value: Any, secrets: list[str], depth: int) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            # Not inside a longer token ("Bearer abcdef" is not the key "abc" echoed).
            value = re.sub(rf"Bearer {re.escape(secret)}(?![\w-])", "Bearer ***", value)
            if len(secret) >= _SHORTEST_SECRET:
                value = value.replace(secret, "***")
            elif len(secret) >= _SHORTEST_WORD_SECRET:
                # Short: only where it stands alone, so that words containing it survive.
                value = re.sub(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", "***", value)
        return value
    if depth >= _DEEPEST:
        return value  # no error body nests this deep; a RecursionError would hide the error
    if isinstance(value, Mapping):
        return {
            _hide(key, secrets, depth + 1): _hide(item, secrets, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_hide(item, secrets, depth + 1) for item in value)
    return value
