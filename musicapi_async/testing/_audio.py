"""Real, playable audio for the fake's clips, and the fake CDN that serves it.

:func:`synth_wav` writes a short WAV with the standard library alone: a melody over a bass
line and a kick drum, whose key, scale, tempo, chords and notes all follow from a seed
string, so two prompts sound different and one seed always gives the same bytes.

The rest of the module is the fake CDN: which URLs of the fake's clips are audio
(:func:`audio_clip_id`), how a fetch is answered, and the :class:`DownloadRecord` log.
"""

from __future__ import annotations

import array
import functools
import hashlib
import io
import math
import re
import sys
import wave
from collections.abc import Iterator, Mapping
from typing import Final, Literal, final

import httpx
from attrs import field, frozen

from ._types import FakeResponse, _redact_headers, _redact_url

__all__ = [
    "AUDIO_CONTENT_TYPE",
    "CDN_HOSTS",
    "DEFAULT_AUDIO_SECONDS",
    "DEFAULT_SAMPLE_RATE",
    "AudioURLKind",
    "DownloadRecord",
    "audio_clip_id",
    "synth_wav",
]

#: Sample rate of :func:`synth_wav`, Hz (16-bit mono).
DEFAULT_SAMPLE_RATE: Final = 22050
#: Length of the audio the fake serves for every clip, seconds (whatever ``duration`` says:
#: synthesising 100 s of audio in pure Python takes a while).
DEFAULT_AUDIO_SECONDS: Final = 4.0
#: Longest audio :func:`synth_wav` makes, seconds.
MAX_AUDIO_SECONDS: Final = 600.0
#: The fake's audio is WAV whatever extension its URL has (``.mp3``, ``.m4a``...).
AUDIO_CONTENT_TYPE: Final = "audio/wav"

#: Hosts of the audio URLs the fake hands out; a fetch there reaches the fake CDN.
CDN_HOSTS: Final = frozenset(
    {"cdn1.suno.ai", "audiopipe.suno.ai", "musicapi-cdn.b-cdn.net", "cdn.musicapi.ai"}
)
#: ``"final"``: the URL of a finished clip; ``"stream"``: the live URL of a streaming clip.
AudioURLKind = Literal["final", "stream"]

_AUDIO_PATHS: Final[Mapping[str, re.Pattern[str]]] = {
    "cdn1.suno.ai": re.compile(r"/(?P<id>[^/]+)\.(?:mp3|m4a|wav)"),
    "musicapi-cdn.b-cdn.net": re.compile(
        r"/producer/(?P<id>[^/]+?)(?:-wav|-download)?\.(?:m4a|mp3|wav)"
    ),
    "cdn.musicapi.ai": re.compile(r"/storage/v1/object/public/songs/song-(?P<id>[^/]+)\.wav"),
}

# Scales as semitones above the root, and chord progressions as scale degrees (0-based).
_SCALES: Final = (
    (0, 2, 4, 5, 7, 9, 11),  # major
    (0, 2, 3, 5, 7, 8, 10),  # natural minor
    (0, 2, 3, 5, 7, 9, 10),  # dorian
    (0, 2, 4, 5, 7, 9, 10),  # mixolydian
    (0, 2, 4, 7, 9),  # major pentatonic
    (0, 3, 5, 7, 10),  # minor pentatonic
)
_PROGRESSIONS: Final = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 0), (0, 3, 0, 4))


def synth_wav(seed: str, seconds: float = DEFAULT_AUDIO_SECONDS) -> bytes:
    """A playable WAV file (16-bit mono, 22050 Hz) of ``seconds`` of music made from ``seed``.

    Key, scale, tempo, chords and melody are drawn from a SHA-256 of the seed (not from
    :mod:`random`), so the bytes are the same on every platform and Python version, and
    different seeds (prompts, titles, clip ids) sound different.

    >>> import io, wave
    >>> data = synth_wav("lofi hip hop for studying", seconds=2.0)
    >>> with wave.open(io.BytesIO(data)) as w:
    ...     (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes())
    (1, 2, 22050, 44100)
    >>> data == synth_wav("lofi hip hop for studying", seconds=2.0)
    True

    Raises:
        ValueError: ``seconds`` is not a number in (0, 600].
    """
    if not isinstance(seed, str):
        raise TypeError(f"seed must be a str, got {type(seed).__name__}")
    return _synth_wav(seed, check_seconds(seconds))


def check_seconds(seconds: float) -> float:
    """``seconds`` as a float if :func:`synth_wav` accepts it; else TypeError / ValueError."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"seconds must be a number, got {type(seconds).__name__}")
    if not (0 < seconds <= MAX_AUDIO_SECONDS):
        raise ValueError(f"seconds must be in (0, {MAX_AUDIO_SECONDS:g}], got {seconds!r}")
    return float(seconds)


@functools.lru_cache(maxsize=32)
def _synth_wav(seed: str, seconds: float) -> bytes:
    rate = DEFAULT_SAMPLE_RATE
    frames = max(1, round(seconds * rate))
    mix = _render(_Draws(seed), frames, rate)
    peak = max(1e-9, max(abs(v) for v in mix))
    gain = 0.8 * 32767 / peak
    samples = array.array("h", (int(v * gain) for v in mix))
    if sys.byteorder == "big":  # WAV is little-endian
        samples.byteswap()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()


class _Draws:
    """Deterministic numbers from a seed: SHA-256 in counter mode."""

    def __init__(self, seed: str) -> None:
        self._key = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()
        self._stream = self._blocks()

    def _blocks(self) -> Iterator[int]:
        counter = 0
        while True:
            yield from hashlib.sha256(self._key + counter.to_bytes(8, "big")).digest()
            counter += 1

    def below(self, n: int) -> int:
        """A number in ``range(n)`` (n <= 256; the bias is inaudible)."""
        return next(self._stream) % n

    def chance(self, percent: int) -> bool:
        return self.below(100) < percent


def _hz(midi: int) -> float:
    return 440.0 * math.pow(2.0, (midi - 69) / 12)


def _render(draws: _Draws, frames: int, rate: int) -> list[float]:
    mix = [0.0] * frames
    bpm = 76 + draws.below(65)
    beat = 60.0 / bpm
    root = 45 + draws.below(12)  # A2..G#3
    scale = _SCALES[draws.below(len(_SCALES))]
    chords = _PROGRESSIONS[draws.below(len(_PROGRESSIONS))]
    bright = 0.15 + draws.below(40) / 100  # share of the second harmonic in the lead

    def pitch(degree: int, octave: int) -> int:
        octave += degree // len(scale)
        return root + 12 * octave + scale[degree % len(scale)]

    def note(start: float, length: float, hz: float, level: float, overtone: float) -> None:
        first = round(start * rate)
        count = min(round(length * rate), frames - first)
        step = 2 * math.pi * hz / rate
        attack = max(1, round(0.01 * rate))
        release = max(1, round(0.03 * rate))
        decay = 3.0 / max(count, 1)
        for i in range(max(count, 0)):
            env = min(1.0, i / attack, (count - i) / release) * math.exp(-decay * i)
            phase = step * i
            mix[first + i] += level * env * (math.sin(phase) + overtone * math.sin(2 * phase))

    def kick(start: float) -> None:
        first = round(start * rate)
        count = min(round(0.18 * rate), frames - first)
        phase = 0.0
        for i in range(max(count, 0)):
            t = i / rate
            phase += 2 * math.pi * (50 + 90 * math.exp(-t * 30)) / rate
            mix[first + i] += 0.9 * math.exp(-t * 18) * math.sin(phase)

    total = frames / rate
    t, bar, degree = 0.0, 0, 0
    while t < total:
        chord = chords[bar % len(chords)]
        note(t, 4 * beat, _hz(pitch(chord, 0)), 0.5, 0.1)  # bass: the chord's root, a bar long
        for b in range(4):
            if b in (0, 2):
                kick(t + b * beat)
            if t + b * beat >= total:
                break
        step = 0.0
        while step < 4 * beat - 1e-9:  # lead: eighths and quarters walking the scale
            length = beat if draws.chance(25) else beat / 2
            if not draws.chance(15):
                degree = max(-3, min(9, degree + draws.below(5) - 2))
                if step == 0.0:  # land on a chord tone at the bar line
                    degree = chord + 2 * draws.below(3)
                note(t + step, length * 0.95, _hz(pitch(degree, 2)), 0.35, bright)
            step += length
        t += 4 * beat
        bar += 1
    fade = min(frames // 2, round(0.05 * rate))
    for i in range(fade):
        mix[i] *= i / fade
        mix[frames - 1 - i] *= i / fade
    return mix


# --- the fake CDN ---------------------------------------------------------------------------


def audio_clip_id(url: httpx.URL | str) -> tuple[str, AudioURLKind] | None:
    """The clip id an audio URL of the fake names, and whether it is the live stream.

    >>> audio_clip_id("https://cdn1.suno.ai/0f3c.mp3")
    ('0f3c', 'final')
    >>> audio_clip_id("https://audiopipe.suno.ai/?item_id=0f3c")
    ('0f3c', 'stream')
    >>> audio_clip_id("https://cdn2.suno.ai/image_0f3c.jpeg") is None
    True
    """
    url = httpx.URL(url)
    host = url.host.lower()
    if host == "audiopipe.suno.ai":
        item = url.params.get("item_id")
        return (item, "stream") if url.path == "/" and item else None
    pattern = _AUDIO_PATHS.get(host)
    match = pattern.fullmatch(url.path) if pattern is not None else None
    return (match["id"], "final") if match else None


@final
@frozen
class DownloadRecord:
    """One request the fake CDN answered (``FakeMusicAPI.downloads``), in arrival order.

    API calls are in ``FakeMusicAPI.requests``; audio fetches only here.
    """

    #: The fake's clock when the request arrived (see :class:`FakeTask`).
    time: float
    method: str
    #: The full URL requested (without its credentials or query in ``repr``).
    url: str = field(repr=_redact_url)
    #: Request headers, names in lower case (a CDN fetch should carry no ``authorization``).
    headers: Mapping[str, str] = field(repr=_redact_headers)
    #: HTTP status answered (200; 404 for an unknown or unfinished clip; 405 if not GET/HEAD).
    status: int
    #: The clip the URL names, when it names one.
    clip_id: str | None = None
    #: Bytes of audio sent (0 for HEAD and errors).
    size: int = 0


def audio_response(method: str, body: bytes | None) -> tuple[int, FakeResponse]:
    """The fake CDN's answer: the audio (``body``), 404 when ``None``, 405 if not GET/HEAD."""
    if method not in ("GET", "HEAD"):
        headers = {"allow": "GET, HEAD", "content-type": "text/plain"}
        return 0, FakeResponse(405, headers, b"Method Not Allowed")
    if body is None:
        return 0, FakeResponse(404, {"content-type": "text/plain"}, b"Not Found")
    headers = {
        "content-type": AUDIO_CONTENT_TYPE,
        "content-length": str(len(body)),
        "etag": f'"{hashlib.sha256(body).hexdigest()[:32]}"',
        "cache-control": "public, max-age=31536000, immutable",
    }
    sent = body if method == "GET" else b""
    return len(sent), FakeResponse(200, headers, sent)


def audio_seed(clip_id: str, *texts: object) -> str:
    """The seed of a clip's audio: what it was generated from (prompt, tags...) and its id."""
    return "\n".join([*(t.strip() for t in texts if isinstance(t, str) and t.strip()), clip_id])
