"""How well does waiting on many tasks spend a 1-request-per-3-s budget?

Runs in seconds: virtual time (trio's MockClock) against the in-process FakeMusicAPI, whose
key allows 1 request / 3 s, with task durations uniform on 60-180 s. Three strategies wait
for the same workloads through the same kind of TokenBucket:

* ``scheduler``: this SDK's ``client.await_task`` (one shared scheduler);
* ``greedy``: the same scheduler ranking tasks only by their chance of having finished
  since their last poll (the reference heuristic the issue cites), to show what the
  shipped ranking (that chance times the expected lag accrued) adds;
* ``guides``: the integration guides' loop: each task its own loop, a poll every 5 s;
* ``clairvoyant``: a lower bound that knows every duration: creates go first, and each task
  is polled once, at the instant it finishes;
* ``webhook``: ``await_task`` on a client configured with a webhook: the fake signs and
  delivers each result to ``client.webhooks`` when the task finishes, polling is the
  safety net only;
* ``webhook-lossy``: the same with 20 % of the deliveries lost (the fallback polls find
  those results).

Scenarios: *batch* (N tasks created at once) and *stream* (Poisson arrivals for 3 simulated
hours). Figures per run: requests per task, mean and p95 detection lag (result seen minus
task finished), mean wait of a create (sent minus asked), mean end-to-end overhead (result
seen minus arrival minus generation time), makespan, and 429s seen.

The fake answers at once unless ``--latency`` says otherwise; an answer quicker than the
bucket's 0.1 s safety margin gives the margin back (the server saw the request by then), so
requests go 3.0 s apart here, and 3.1 s apart with ``--latency 0.2``.

    python benchmarks/scheduler.py                  # the README table (both not-ready styles)
    python benchmarks/scheduler.py --style 202 --scenario stream --rate 5 --seeds 5
    python benchmarks/scheduler.py --scenario stream --rate 5 --latency 0.2   # a slow network
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio
import trio
import trio.testing

# Measure this checkout, whatever is installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from musicapi_async import MusicAPI, Priority, Task, TaskRef, TokenBucket
from musicapi_async._ratelimit import acquire_slot
from musicapi_async.testing import FakeMusicAPI, FakeTask, NotReadyStyle

MIN_DURATION, MAX_DURATION = 60.0, 180.0
GUIDE_POLL_EVERY = 5.0
STREAM_HOURS = 3.0
BATCH_SIZES = (10, 50, 100)
STREAM_RATES = (1.0, 3.0, 5.0, 6.0)
STRATEGIES = ("scheduler", "greedy", "guides", "clairvoyant", "webhook", "webhook-lossy")
#: Where the webhook strategies' client asks MusicAPI to deliver, and the secret it signs with.
WEBHOOK_URL = "https://app.example/musicapi-webhook"
WEBHOOK_SECRET = "benchmark-webhook-secret"
#: Share of deliveries lost in the ``webhook-lossy`` strategy.
LOST_DELIVERIES = 0.2


@dataclass
class Job:
    arrival: float
    ref: TaskRef | None = None
    seen: float | None = None


@dataclass
class Run:
    """What one strategy did on one workload."""

    jobs: list[Job] = field(default_factory=list)
    requests: int = 0
    rate_limited: int = 0
    tasks: dict[str, FakeTask] = field(default_factory=dict)

    def figures(self) -> dict[str, float]:
        # (arrival, result seen, the fake's record) of every task that was seen finished.
        done = [
            (job.arrival, job.seen, self.tasks[job.ref.task_id])
            for job in self.jobs
            if job.ref is not None and job.seen is not None
        ]
        lags = sorted(seen - task.done_at for _, seen, task in done)
        waits = [task.created_at - arrival for arrival, _, task in done]
        overheads = [
            seen - task.done_at + task.created_at - arrival for arrival, seen, task in done
        ]
        return {
            "tasks": len(done),
            "req/task": self.requests / max(1, len(self.jobs)),
            "lag mean": statistics.fmean(lags),
            "lag p95": lags[min(len(lags) - 1, math.ceil(0.95 * len(lags)) - 1)],
            "create wait": statistics.fmean(waits),
            "overhead": statistics.fmean(overheads),
            "makespan": max(seen for _, seen, _ in done) - min(job.arrival for job in self.jobs),
            "429s": self.rate_limited,
        }


def make_fake(style: NotReadyStyle, seed: int, latency: float = 0.0) -> FakeMusicAPI:
    rng = random.Random(seed)
    return FakeMusicAPI(
        # Each answer this long after the request was processed (a network's round trip).
        latency={"*": latency},
        # Strict: any two requests of the key less than 3 s apart draw a 429.
        rate_limit_rule="strict",
        not_ready_style=style,
        sonic_duration=lambda task: rng.uniform(MIN_DURATION, MAX_DURATION),
        credits=10**9,
        initial_not_ready=10.0,
    )


async def create(client: MusicAPI, job: Job, index: int) -> TaskRef:
    ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt=f"song {index}")
    job.ref = ref
    return ref


async def scheduler_strategy(client: MusicAPI, fake: FakeMusicAPI, job: Job, index: int) -> None:
    ref = await create(client, job, index)
    await client.await_task(ref, timeout=None)
    job.seen = anyio.current_time()


async def greedy_strategy(client: MusicAPI, fake: FakeMusicAPI, job: Job, index: int) -> None:
    # The reference heuristic: rank by the chance of having finished alone. A private hook
    # of the SDK, patched on this client's scheduler only.
    scheduler = client._scheduler
    if not getattr(scheduler, "_greedy", False):
        ranked = scheduler._score

        def by_chance(tracked: Any, now: float) -> tuple[float, float]:
            chance, _ = ranked(tracked, now)
            return chance, chance

        scheduler._score = by_chance  # type: ignore[method-assign]
        scheduler._greedy = True  # type: ignore[attr-defined]
    await scheduler_strategy(client, fake, job, index)


async def guides_strategy(client: MusicAPI, fake: FakeMusicAPI, job: Job, index: int) -> None:
    ref = await create(client, job, index)
    while True:
        task: Task = await client.sonic.get_task(ref)
        if task.is_terminal:
            job.seen = anyio.current_time()
            return
        await anyio.sleep(GUIDE_POLL_EVERY)


async def clairvoyant_strategy(client: MusicAPI, fake: FakeMusicAPI, job: Job, index: int) -> None:
    ref = await create(client, job, index)
    # It knows when the task will finish: sleep until then, then poll once, behind creates.
    await anyio.sleep(max(0.0, fake.tasks[ref.task_id].done_at - anyio.current_time()))
    while True:
        assert client.limiter is not None
        # Private hooks of the SDK: a poll that already holds its background slot.
        slot = await acquire_slot(client.limiter, Priority.BACKGROUND)
        task = await client.sonic._poll(ref, held=slot)
        if task.is_terminal:
            job.seen = anyio.current_time()
            return


Strategy = Callable[[MusicAPI, FakeMusicAPI, Job, int], Coroutine[Any, Any, None]]
STRATEGY: dict[str, Strategy] = {
    "scheduler": scheduler_strategy,
    "greedy": greedy_strategy,
    "guides": guides_strategy,
    "clairvoyant": clairvoyant_strategy,
    # The waiting is the same as the scheduler's; run_workload wires the webhook.
    "webhook": scheduler_strategy,
    "webhook-lossy": scheduler_strategy,
}


async def run_workload(
    strategy: str,
    arrivals: list[float],
    style: NotReadyStyle,
    seed: int,
    margin: float | None = None,
    latency: float = 0.0,
) -> Run:
    fake = make_fake(style, seed, latency)
    run = Run(jobs=[Job(arrival) for arrival in arrivals])
    start = anyio.current_time()
    bucket = TokenBucket() if margin is None else TokenBucket(margin=margin)
    webhook = strategy.startswith("webhook")
    hook: dict[str, Any] = (
        {"webhook_url": WEBHOOK_URL, "webhook_secret": WEBHOOK_SECRET} if webhook else {}
    )
    client = fake.client(limiter=bucket, max_retries=10, **hook)
    if strategy == "webhook-lossy":
        fake.webhooks.drop(rate=LOST_DELIVERIES, seed=seed)
    async with client, anyio.create_task_group() as deliveries:
        if webhook:
            # The fake posts each result to the client's receiver when the task finishes.
            await deliveries.start(fake.webhooks.run, client.webhooks)
        async with anyio.create_task_group() as tg:
            for index, job in enumerate(run.jobs):
                delay = start + job.arrival - anyio.current_time()
                if delay > 0:
                    await anyio.sleep(delay)
                job.arrival = anyio.current_time()
                tg.start_soon(STRATEGY[strategy], client, fake, job, index)
        deliveries.cancel_scope.cancel()  # every job is done; the driver runs until cancelled
    run.requests = len(fake.requests)
    run.rate_limited = fake.rate_limited()
    run.tasks = dict(fake.tasks)
    return run


def batch_arrivals(n: int) -> list[float]:
    return [0.0] * n


def _batch(n: int, seed: int) -> list[float]:
    return batch_arrivals(n)


def stream_arrivals(per_minute: float, seed: int) -> list[float]:
    # A stream of its own: drawn from the durations' generator (make_fake), each task's
    # duration was a function of the gap before its arrival (short tasks came in bursts).
    rng = random.Random(f"arrivals-{seed}")
    arrivals: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(per_minute / 60.0)
        if t > STREAM_HOURS * 3600:
            return arrivals
        arrivals.append(t)


def simulate(
    strategy: str,
    arrivals: list[float],
    style: NotReadyStyle,
    seed: int,
    margin: float | None = None,
    latency: float = 0.0,
) -> Run:
    async def main() -> Run:
        return await run_workload(strategy, arrivals, style, seed, margin, latency)

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


COLUMNS = ("req/task", "lag mean", "lag p95", "create wait", "overhead", "makespan", "429s")


def figures_of(
    strategy: str,
    workload: Callable[[int], list[float]],
    style: NotReadyStyle,
    seed: int,
    margin: float | None,
    latency: float,
) -> dict[str, float]:
    return simulate(strategy, workload(seed), style, seed, margin, latency).figures()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--style", choices=["202", "200", "both"], default="both")
    parser.add_argument("--scenario", choices=["batch", "stream", "both"], default="both")
    parser.add_argument("--strategy", choices=[*STRATEGIES, "all"], default="all")
    parser.add_argument("--rate", type=float, action="append", help="stream rate(s) per minute")
    parser.add_argument("--size", type=int, action="append", help="batch size(s)")
    parser.add_argument("--seed", type=int, default=7, help="first seed")
    parser.add_argument("--seeds", type=int, default=1, help="average over this many seeds")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument(
        "--margin",
        type=float,
        help="the bucket's safety margin, seconds (given back after each answer quicker than "
        "it: with --latency 0 it changes nothing)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds each answer takes (a round trip; the bucket gives its margin back only "
        "for answers quicker than it)",
    )
    args = parser.parse_args(argv)
    styles: list[NotReadyStyle] = ["202", "200"] if args.style == "both" else [args.style]
    strategies = STRATEGIES if args.strategy == "all" else (args.strategy,)
    seeds = list(range(args.seed, args.seed + args.seeds))
    workloads: list[tuple[str, Callable[[int], list[float]]]] = []
    if args.scenario in ("batch", "both"):
        for n in args.size or BATCH_SIZES:
            workloads.append((f"batch {n}", functools.partial(_batch, n)))
    if args.scenario in ("stream", "both"):
        for rate in args.rate or STREAM_RATES:
            workloads.append((f"stream {rate:g}/min", functools.partial(stream_arrivals, rate)))
    print("| style | scenario | strategy | " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * (3 + len(COLUMNS)))
    started = time.perf_counter()
    cases = [
        (style, name, workload, strategy)
        for style in styles
        for name, workload in workloads
        for strategy in strategies
    ]
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = {
            (style, name, strategy, seed): pool.submit(
                figures_of, strategy, workload, style, seed, args.margin, args.latency
            )
            for style, name, workload, strategy in cases
            for seed in seeds
        }
        for style, name, _, strategy in cases:
            each = [runs[style, name, strategy, seed].result() for seed in seeds]
            figures = {c: statistics.fmean(run[c] for run in each) for c in COLUMNS}
            cells = [f"{figures[c]:.0f}" if c == "429s" else f"{figures[c]:.1f}" for c in COLUMNS]
            print(f"| {style} | {name} | {strategy} | " + " | ".join(cells) + " |", flush=True)
    note = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {seeds[0]}-{seeds[-1]}"
    print(f"\n({note}; {time.perf_counter() - started:.0f} s of real time)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
