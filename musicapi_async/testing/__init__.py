"""Test helpers: :class:`FakeMusicAPI`, an in-process fake of the MusicAPI server.

The fake implements every endpoint of the API from its documentation, keeps state (keys,
credits, tasks, clips) and answers through an ``httpx`` transport, so code under test runs
its real HTTP stack without a network. Tasks progress on ``anyio.current_time()`` (never
going back when one fake serves several ``anyio.run`` calls): under trio's
``MockClock(autojump_threshold=0)`` (or a virtual-time asyncio loop) a two-minute
generation takes no real time and timings are exact.

With the SDK::

    import anyio
    from musicapi_async.testing import FakeMusicAPI

    async def main() -> None:
        fake = FakeMusicAPI(rate_limit=None, sonic_duration=2.0)
        async with fake.client() as api:
            ...  # call api.sonic.create(...) etc.; the fake answers

    anyio.run(main)

With any httpx client (the fake does not need the SDK)::

    import anyio, httpx
    from musicapi_async.testing import FakeMusicAPI

    async def main() -> None:
        fake = FakeMusicAPI(rate_limit=None, sonic_duration=2.0)
        fake.plan(outcome="partial")  # the next task: one clip succeeds, one fails
        headers = {"Authorization": f"Bearer {FakeMusicAPI.DEFAULT_KEY}"}
        async with httpx.AsyncClient(
            transport=fake.transport(), base_url=fake.base_url, headers=headers
        ) as http:
            body = {"custom_mode": True, "mv": "sonic-v5", "prompt": "[Verse] la la"}
            created = await http.post("/sonic/create", json=body)
            task_id = created.json()["task_id"]
            assert (await http.get(f"/sonic/task/{task_id}")).status_code == 202
            await anyio.sleep(2.0)
            done = await http.get(f"/sonic/task/{task_id}")
            assert [c["state"] for c in done.json()["data"]] == ["succeeded", "failed"]
            assert fake.credits().total == 1000 - 15 + 7  # half of 15 refunded, rounded down
            assert [r.path for r in fake.requests] == [
                "/sonic/create", f"/sonic/task/{task_id}", f"/sonic/task/{task_id}"
            ]

    anyio.run(main)

For code that builds its own client (an app's startup, a script, a Celery task), where a
test cannot pass one in, :func:`use_fake` wires every ``MusicAPI(...)`` constructed inside
a ``with`` block to a fake::

    with use_fake(FakeMusicAPI(sonic_duration=5.0)) as fake:
        anyio.run(my_app.main)  # its MusicAPI() talks to fake, with the fake's key

Over real HTTP on loopback (real time, real sockets: for end-to-end tests, curl and clients
in other languages), with :func:`serving` (or ``await tg.start(serve, fake)``)::

    async with serving(FakeMusicAPI(sonic_duration=10.0)) as served:
        # served.base_url: http://127.0.0.1:<port>/api/v1 (http:// is fine on loopback)
        async with MusicAPI("test-key", base_url=served.base_url) as api:
            ...

or from a shell: ``python -m musicapi_async.testing serve --port 8787`` (``--help`` for the
options: ``--sonic-duration``, ``--rate-limit 1/3|none``, ``--strict-rate-limit``, ``--key``,
``--credits``, ``--not-ready-style``). Faults injected with :meth:`FakeMusicAPI.inject` become
a closed connection (``remote_protocol_error``), a reset (``connect_error``) or silence until
the client gives up (``read_timeout``).

**Webhooks.** A task created with a ``webhook_url`` (HTTPS, or HTTP on a loopback host;
others get 400) is delivered when it ends by ``fake.webhooks`` (:class:`FakeWebhooks`):
``POST`` of the poll answer at the done time plus ``task_id`` and ``platform``, signed
with the task's ``webhook_secret`` as MusicAPI does (``X-Webhook-Signature`` over
``"{timestamp}.{body}"``, ``X-Webhook-Id`` = ``Idempotency-Key``, ``X-Webhook-Event``
``song.completed`` / ``song.failed``; ``fake.webhooks.legacy = True`` for ``X-Signature``;
``fake.webhooks.streaming = True`` adds ``song.streaming``). Deliveries are made while a
driver runs, sleeping on anyio's clock::

    receiver = WebhookReceiver("s3cret", on_event=events.append)
    async with fake.webhooks.running(receiver):  # or httpx.ASGITransport(app=...), or a
        ...                                       # coroutine (url, body, headers) -> status
    # serving(fake) / serve(fake) also run it, posting over real HTTP to each webhook_url

A 408, 429, 5xx or connection failure is retried after 1, 4, 16 and 64 s (each attempt
signed afresh, same event id); other answers end the delivery. Faults, for the next
events: ``drop(n)`` or ``drop(rate=0.1, seed=1)``, ``duplicate(n)``, ``delay(seconds)``,
``reorder(n, seed=None)``. Every attempt is in ``fake.webhook_deliveries``
(:class:`WebhookDelivery`: time, url, event id, task id, kind, attempt, status, outcome);
the secret is in no record. :func:`sign_webhook` signs a body for your own tests.

What to expect on the wire (all routes relative to ``base_url``, default
``http://localhost/api/v1``):

* **Auth**: no ``Authorization`` → 401 "Authorization header is missing."; not
  ``Bearer <key>`` → 401 "Invalid authorization format."; unknown key → 401 "Invalid API key.".
* **Rate limit** (after auth, every route, polls included): by default one request per 3 s
  per key; a request too early gets 429, ``Retry-After`` (whole seconds, rounded up) and
  spends nothing. ``rate_limit_rule="strict"``: any two requests of one key less than 3 s
  apart on arrival get 429, refused ones counting too.
* **Validation**: 400 with the documented messages, nothing charged. **Credits**: 403 "The
  remaining credits are not enough. ..." when the balance (``extra_credits`` first) is short.
* **Submits** answer ``{"message": "success", "task_id": ...}`` (upload-extend,
  upload-cover and sample add ``code`` and ``steps``; create-voice a ``warning``).
* **Sonic polls**, ``not_ready_style="202"``: 202 ``{"type": "not_ready"}`` until done, then
  200 ``{"code": 200, "data": [clip, ...], "message": "success"}``. ``"200"``: 200
  ``{"type": "not_ready"}`` for ``initial_not_ready`` seconds, then 200 snapshots whose clips
  go ``pending`` (first quarter of the clip's time), ``running`` (to half), ``streaming``
  (``audio_url`` on ``audiopipe.suno.ai``), then ``succeeded`` (``audio_url`` on
  ``cdn1.suno.ai``, ``duration`` as ``"104.88"``) or ``failed``. Consecutive clips finish
  ``clip_spread`` seconds apart; the last one at the task's done time. A failed task answers
  200 ``{"type": "failed" | "timeout" | "api_error" | "forbidden", "message": ...}`` (key
  ``error`` with the ``"error"`` and ``"type_error"`` envelopes).
* **Producer polls**: ``{"code": 200, "status": "PENDING" | "RUNNING" | "SUCCESS" |
  "FAILED", "message": ..., "data": [...]}`` in the ``"200"`` style; 202 not_ready until
  done in the ``"202"`` style. Download results are ``[{"audio_url": ...}]`` only.
* **Nuro**: 410 Gone on every route unless ``nuro_retired=False``; then flat polls
  ``{task_id, status, progress, audio_url, lyrics, duration, genre, mood, gender, timbre}``.
* **Unknown task** (or another key's task): 404 "task not found." (``unknown_task_status=400``
  for the docs' 400). No id: 400 "missing task id.".
* **/sonic/download** (undocumented; the fake's choice): body ``{clip_id, formats?}`` with
  ``formats`` a list of ``mp3``/``m4a``/``wav`` (default ``["mp3"]``); 202 not_ready for the
  first ``download_not_ready_calls`` calls per clip, then ``{"code": 200, "message":
  "success", "data": {"mp3_url": ..., "wav_url": ...}}`` (one ``<format>_url`` per format).
* **/sonic/batch**: ``{"message": "success", "batch_id", "submitted", "tasks": [{"index",
  "task_id"} | {"index", "status", "error"}]}`` (refused items keep their place);
  ``GET /sonic/batch?batch_id=`` → ``{"batch_id", "submitted", "tasks": [{"task_id",
  "status"}]}`` with ``status`` in pending/running/succeeded/failed.
* **Audio** (the fake CDN, ``serve_audio=True`` by default; in process, through
  :meth:`FakeMusicAPI.transport`): a GET of a finished clip's ``audio_url`` / ``wav_url``
  (``cdn1.suno.ai``, ``musicapi-cdn.b-cdn.net``, ``cdn.musicapi.ai``; a streaming clip's
  ``audiopipe.suno.ai`` URL once it streams) answers 200 with a real WAV (16-bit mono
  22050 Hz, ``audio_seconds`` long, made by :func:`synth_wav` from the prompt and the clip
  id), ``Content-Type: audio/wav`` whatever the URL's extension, and ``Content-Length``.
  No key needed; 404 for unknown, unfinished or failed clips; logged in
  ``fake.downloads`` (:class:`DownloadRecord`), never in ``fake.requests``.
"""

from __future__ import annotations

from .._webhooks import sign_webhook
from ._audio import DownloadRecord, synth_wav
from ._defaults import DEFAULT_LENGTH_LIMITS, DEFAULT_PRICES
from ._patch import use_fake
from ._serve import ServedFake, serve, serving
from ._server import DurationSpec, FakeMusicAPI, OutcomeSpec
from ._transport import FakeTransport
from ._types import (
    Balance,
    ErrorEnvelope,
    FakeResponse,
    FakeTask,
    Family,
    Fault,
    Injection,
    NotReadyStyle,
    Outcome,
    RateLimitRule,
    RequestRecord,
    TaskStatusName,
)
from ._webhooks import DeliveryOutcome, FakeWebhooks, WebhookDelivery, WebhookSender

__all__ = [
    "DEFAULT_LENGTH_LIMITS",
    "DEFAULT_PRICES",
    "Balance",
    "DeliveryOutcome",
    "DownloadRecord",
    "DurationSpec",
    "ErrorEnvelope",
    "Family",
    "FakeMusicAPI",
    "FakeResponse",
    "FakeTask",
    "FakeTransport",
    "FakeWebhooks",
    "Fault",
    "Injection",
    "NotReadyStyle",
    "Outcome",
    "OutcomeSpec",
    "RateLimitRule",
    "RequestRecord",
    "ServedFake",
    "TaskStatusName",
    "WebhookDelivery",
    "WebhookSender",
    "serve",
    "serving",
    "sign_webhook",
    "synth_wav",
    "use_fake",
]
