"""Every default of the SDK, in one place."""

from __future__ import annotations

from typing import Final

__version__: Final = "0.1.0.dev0"

DEFAULT_BASE_URL: Final = "https://api.musicapi.ai/api/v1"
API_KEY_ENV: Final = "MUSICAPI_KEY"
BASE_URL_ENV: Final = "MUSICAPI_BASE_URL"

#: Seconds httpx allows each step of one HTTP attempt (connect, each write, each read, pool).
#: /sonic/upload answers after about 20 s, so the read budget is generous.
DEFAULT_TIMEOUT: Final = 60.0
#: Seconds to open a connection.
DEFAULT_CONNECT_TIMEOUT: Final = 10.0

#: Retries after the first attempt (so at most 1 + 3 requests for one call).
DEFAULT_MAX_RETRIES: Final = 3
#: Backoff before retry n (0-based) is min(INITIAL * 2**n, MAX), jittered down by up to JITTER.
DEFAULT_INITIAL_BACKOFF: Final = 1.0
DEFAULT_MAX_BACKOFF: Final = 8.0
DEFAULT_JITTER: Final = 0.25
#: A Retry-After longer than this many seconds is not waited for; the 429 is raised instead
#: (with its retry_after) so the caller decides. Long enough for a 1-request-per-3-s plan.
DEFAULT_MAX_RETRY_AFTER: Final = 120.0

#: /sonic/midi and /sonic/download may answer 202 "not ready": wait this long between
#: repeats, and give up after NOT_READY_TIMEOUT seconds.
NOT_READY_DELAY: Final = 5.0
NOT_READY_TIMEOUT: Final = 120.0

#: Response headers that may carry a request id, in order of preference.
REQUEST_ID_HEADERS: Final = ("x-request-id", "x-vercel-id", "cf-ray")

#: Hosts for which plain http:// is allowed (fakes and local proxies).
LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

#: Documented model ids, for convenience and docs; any other string is passed through.
SONIC_MODELS: Final = (
    "sonic-v3-5",
    "sonic-v4",
    "sonic-v4-5",
    "sonic-v4-5-plus",
    "sonic-v5",
    "sonic-v5-5",
    "sonic-v4-5-all",
    "sonic-v6",
    "sonic-v6-wild",
    "sonic-v6-mini",
)
SONIC_TASK_TYPES: Final = (
    "create_music",
    "extend_music",
    "concat_music",
    "cover_music",
    "persona_music",
    "extend_upload_music",
    "cover_upload_music",
    "remaster",
    "add_instrumental",
    "add_vocals",
)
PRODUCER_TASK_TYPES: Final = (
    "create_music",
    "extend_music",
    "extend_upload_music",
    "replace_music",
    "replace_upload_music",
    "cover_music",
    "cover_upload_music",
)

#: Hard limits the server certainly enforces (the contract agrees across sources).
TITLE_MAX: Final = 80
BATCH_MAX_ITEMS: Final = 10

#: The standard plan's budget: DEFAULT_RATE requests per DEFAULT_RATE_PER seconds per key.
DEFAULT_RATE: Final = 1
DEFAULT_RATE_PER: Final = 3.0
#: Seconds added to every token interval, so that network jitter does not draw 429s.
DEFAULT_RATE_MARGIN: Final = 0.1
#: Each 429 widens the margin by this many seconds, up to DEFAULT_MAX_MARGIN; one step is
#: given back after DEFAULT_MARGIN_RECOVERY grants without a 429.
DEFAULT_MARGIN_STEP: Final = 0.1
DEFAULT_MAX_MARGIN: Final = 1.0
DEFAULT_MARGIN_RECOVERY: Final = 20

#: Default deadlines of await_task / as_completed, seconds, by task family (CONTRACT §14).
DEFAULT_WAIT_TIMEOUT: Final = {"sonic": 600.0, "producer": 300.0, "nuro": 300.0}
#: Prior guess of a task's duration, seconds, by family, until the client has seen some finish.
EXPECTED_DURATION: Final = {"sonic": 120.0, "producer": 30.0, "nuro": 30.0}
#: Minimum seconds between two polls of one task by the scheduler.
DEFAULT_MIN_POLL_GAP: Final = 6.0
#: The scheduler polls a task only once its chance of being finished since its last poll,
#: by the durations seen so far, reaches this (0-1); with nothing better to do it waits.
DEFAULT_POLL_THRESHOLD: Final = 0.05
#: Durations remembered per (family, model) to learn the distribution.
DURATION_MEMORY: Final = 200
#: Polls that may be in flight at once (a slow answer does not stall the others).
MAX_POLLS_IN_FLIGHT: Final = 4
#: Whatever the schedule (a duration model that says "not yet", a webhook not overdue), a
#: task is polled this many seconds before a waiter's deadline unless it was since: a wait
#: never ends in a timeout for a task nobody looked at.
DEADLINE_LEAD: Final = 10.0
#: Answers in a row the SDK cannot read before a poll's ResponseValidationError reaches the
#: waiters (fewer are taken for a glitch and polled again).
UNREADABLE_POLLS: Final = 3
#: Seconds a rate limiter may fail every background acquire (a shared backend down) before
#: its error reaches the waiters of the tasks it kept from being polled, not a silent hang.
LIMITER_OUTAGE: Final = 30.0
#: Seconds a limiter's on_rate_limited may take (a round trip to a shared store) before
#: the call that drew the 429 goes on without waiting for it.
RATE_LIMITED_REPORT_TIMEOUT: Final = 5.0

# --- webhooks -------------------------------------------------------------------------------
#: Seconds a signed webhook may be older (or newer) than this machine's clock.
DEFAULT_WEBHOOK_TOLERANCE: Final = 300.0
#: A task whose result is due by webhook is polled only as a safety net: first when it has run
#: longer than this share of the durations learned (from deliveries and polls)...
WEBHOOK_FALLBACK_QUANTILE: Final = 0.95
#: ...plus this many seconds for the delivery to arrive, once this many tasks finished...
WEBHOOK_FALLBACK_GRACE: Final = 10.0
WEBHOOK_FALLBACK_SAMPLES: Final = 10
#: ...and before that, when it has run this many times its family's expected duration...
WEBHOOK_FALLBACK_FACTOR: Final = 2.0
#: ...then again after this many seconds, doubling each time...
WEBHOOK_FALLBACK_EVERY: Final = 30.0
#: ...up to this many seconds between two fallback polls.
WEBHOOK_FALLBACK_MAX: Final = 300.0
#: A delivery for a task no one awaits yet (it may come before the create returns) is kept
#: this many seconds, at most WEBHOOK_EARLY_MAX of them.
WEBHOOK_EARLY_KEEP: Final = 600.0
WEBHOOK_EARLY_MAX: Final = 1024
#: A delivered result of a task this client created, nobody awaiting it yet (a batch awaited
#: once every create is out), is kept this many seconds for the waiter to come.
WEBHOOK_UNCLAIMED_KEEP: Final = 6 * 3600.0
#: The query parameter a client adds to its webhook URL on each create call: a random tag
#: that names the task when a delivery's body does not (MusicAPI's published Sonic example
#: has no task_id). Tags are remembered for this many tasks.
WEBHOOK_TAG_PARAM: Final = "musicapi_tag"
WEBHOOK_TAGS_MAX: Final = 10_000
#: Seconds a delivery naming no task waits for the answer of the create call its tag belongs
#: to (the task can end before that answer arrives).
WEBHOOK_TAG_WAIT: Final = 10.0
#: MusicAPI's limit on the length of a webhook_url; a URL the tag would push over it is
#: sent untagged.
WEBHOOK_URL_MAX: Final = 1024
