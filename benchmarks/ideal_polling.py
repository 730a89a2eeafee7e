"""How low can polling go on the benchmark's model? An idealised simulation, without the SDK.

``benchmarks/scheduler.py`` measures the SDK against the fake. This script asks what the
best-informed *polling* policies could reach on the same model, to put those figures in
context: Poisson arrivals, durations uniform on 60-180 s **known exactly** (no learning), one
request per ``interval`` seconds with nothing lost to networks or event loops, creates served
before polls, and a token left unused when no task is worth a poll. Each token polls the task
with the highest index:

* ``greedy``: the chance the task finished since its last poll (the reference heuristic);
* ``chance x lag``: that chance times the lag it would have accrued (the SDK's ranking);
* ``chance x lag / (1.1 - chance)``: a variant that favours near-certain polls;
* ``clairvoyant``: the bound, which knows every duration and polls each task once, done.

    python benchmarks/ideal_polling.py                  # stream 5/min, seeds 7-10
    python benchmarks/ideal_polling.py --rate 3 --seeds 10
    python benchmarks/ideal_polling.py --batch 50       # 50 tasks at once: the makespan
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass

LOW, HIGH = 60.0, 180.0
HOURS = 3.0
#: Seconds the simulation looks again when no task is worth a poll.
STEP = 0.25

#: index(chance since last poll, age now, age at last poll) -> priority
Index = Callable[[float, float, float], float]


def cdf(age: float) -> float:
    return min(1.0, max(0.0, (age - LOW) / (HIGH - LOW)))


def accrued_lag(age: float, last: float) -> float:
    """Expected lag by now of a task that finished between ``last`` and ``age``."""
    start, end = max(last, LOW), min(age, HIGH)
    return age - (start + end) / 2 if end > start else 0.0


INDEXES: dict[str, Index] = {
    "greedy": lambda chance, age, last: chance,
    "chance x lag": lambda chance, age, last: chance * accrued_lag(age, last),
    "chance x lag / (1.1 - chance)": (
        lambda chance, age, last: chance * accrued_lag(age, last) / (1.1 - chance)
    ),
}


@dataclass
class Figures:
    lag: float
    create_wait: float
    requests_per_task: float
    #: Last result seen minus first arrival.
    makespan: float

    @property
    def overhead(self) -> float:
        return self.lag + self.create_wait


def stream(seed: int, per_minute: float) -> tuple[list[float], list[float]]:
    """Poisson arrivals for HOURS, and each task's duration."""
    rng = random.Random(seed)
    arrivals: list[float] = []
    t = 0.0
    while (t := t + rng.expovariate(per_minute / 60.0)) <= HOURS * 3600:
        arrivals.append(t)
    return arrivals, [rng.uniform(LOW, HIGH) for _ in arrivals]


def batch(seed: int, size: int) -> tuple[list[float], list[float]]:
    """``size`` tasks wanted at once, and each task's duration."""
    rng = random.Random(seed)
    return [0.0] * size, [rng.uniform(LOW, HIGH) for _ in range(size)]


def simulate(
    index: Index | None, *, arrivals: list[float], durations: list[float], interval: float
) -> Figures:
    """One workload; ``index=None`` is the clairvoyant bound (polls a task only once done,
    the earliest finished first)."""
    queued: list[int] = []
    running: dict[int, tuple[float, float]] = {}  # job -> (created, age at last poll)
    lags: list[float] = []
    waits: list[float] = []
    last_seen = 0.0
    requests, next_arrival, now, token_at = 0, 0, 0.0, 0.0
    while next_arrival < len(arrivals) or queued or running:
        now = max(now, token_at)
        while next_arrival < len(arrivals) and arrivals[next_arrival] <= now:
            queued.append(next_arrival)
            next_arrival += 1
        if queued:  # a create goes first
            job = queued.pop(0)
            waits.append(now - arrivals[job])
            running[job] = (now, 0.0)
            requests += 1
            token_at = now + interval
            continue
        best, best_priority = None, 0.0
        for job, (created, last) in running.items():
            age = now - created
            if index is None:  # it knows: only a finished task, the longest finished first
                chance = 1.0 if age >= durations[job] else 0.0
                priority = age - durations[job]
            else:
                chance = 1.0 if cdf(last) >= 1 else (cdf(age) - cdf(last)) / (1 - cdf(last))
                priority = index(chance, age, last) if chance > 0 else 0.0
            if chance > 0 and (best is None or priority > best_priority):
                best, best_priority = job, priority
        if best is None:  # nothing worth a poll: the token waits for a create or a candidate
            coming = arrivals[next_arrival] if next_arrival < len(arrivals) else float("inf")
            now = min(coming, now + STEP)
            continue
        created, _ = running[best]
        requests += 1
        token_at = now + interval
        if now - created >= durations[best]:
            lags.append(now - created - durations[best])
            last_seen = now
            del running[best]
        else:
            running[best] = (created, now - created)
    return Figures(
        statistics.fmean(lags),
        statistics.fmean(waits),
        requests / len(arrivals),
        last_seen - arrivals[0],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5.0, help="stream: arrivals per minute")
    parser.add_argument("--batch", type=int, help="a batch of this many tasks instead")
    parser.add_argument("--seed", type=int, default=7, help="first seed")
    parser.add_argument("--seeds", type=int, default=4, help="average over this many seeds")
    args = parser.parse_args(argv)
    seeds = range(args.seed, args.seed + args.seeds)
    if args.batch is not None:
        workloads = [batch(seed, args.batch) for seed in seeds]
        scenario = f"batch {args.batch}"
    else:
        workloads = [stream(seed, args.rate) for seed in seeds]
        scenario = f"stream {args.rate:g}/min"
    print("| index | interval | req/task | lag mean | create wait | overhead | makespan |")
    print("|---|---|---|---|---|---|---|")
    # 3.0 s: the plan's limit; 3.1 s: with the SDK's default safety margin of 0.1 s.
    for interval in (3.0, 3.1):
        for name, index in [*INDEXES.items(), ("clairvoyant", None)]:
            runs = [
                simulate(index, arrivals=arrivals, durations=durations, interval=interval)
                for arrivals, durations in workloads
            ]
            row = [
                statistics.fmean(r.requests_per_task for r in runs),
                statistics.fmean(r.lag for r in runs),
                statistics.fmean(r.create_wait for r in runs),
                statistics.fmean(r.overhead for r in runs),
                statistics.fmean(r.makespan for r in runs),
            ]
            print(f"| {name} | {interval:g} s | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    print(f"\n({scenario}, mean over seeds {seeds[0]}-{seeds[-1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
