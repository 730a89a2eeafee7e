"""URLs fit for messages and logs: without the credentials, query or fragment they may carry
(a webhook URL's ``user:password@``, a signed CDN link's token). Every message or log line
that shows a URL, or text that may hold one (a server's error text), goes through here."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

__all__ = ["redact_url", "scrub_urls", "shown_location", "shown_url", "url_repr"]

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


def scrub_urls(text: str) -> str:
    """``text`` with every URL in it stripped of its user, password, query and fragment
    (``***@`` and ``?...`` mark what was there): for a server's error text, a body snippet
    or an exception's message, whose URLs may carry tokens."""

    def scrub(match: re.Match[str]) -> str:
        return _QUERY.sub("?...", _USERINFO.sub("***@", match.group(0)))

    return _URL_IN_TEXT.sub(scrub, text)
