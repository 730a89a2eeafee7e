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
* ``whittle``: the Whittle index, the classic near-optimal rule for sharing one server among
  many such tasks: the price per poll (in seconds of lag) at which polling this task now is
  exactly as good as waiting, from each task's own optimal polling plan;
* ``clairvoyant``: the bound, which knows every duration and polls each task once, done.

With ``--stages`` the pollers also read what a vain poll shows in the fake's "200" style
(clips pending, running or streaming, each from a fixed fraction of its own time; the first
clip ends ``clip_spread`` seconds before the last), **knowing exactly** how those stages
follow from the duration: each vain poll narrows the interval the duration can lie in, and
the chance and lag come from that interval (the Whittle index, planned for the bare
distribution, is left out there). It bounds what reading stages could bring any SDK.

Below the table, a *fluid bound* on the lag of any polling policy that does not know the
durations: every task polled on its own optimal plan, the budget spent only on average, and
no two tasks ever wanting the same slot. The distance from it to the indexes is the price of
sharing one request at a time.

    python benchmarks/ideal_polling.py                  # stream 5/min, seeds 7-10
    python benchmarks/ideal_polling.py --rate 3 --seeds 10
    python benchmarks/ideal_polling.py --batch 50       # 50 tasks at once: the makespan
    python benchmarks/ideal_polling.py --batch 50 --seeds 100   # ...and how often within 5 %
    python benchmarks/ideal_polling.py --stages         # reading the "200" style's stages
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from musicapi_async.testing import _defaults as fake_defaults

LOW, HIGH = 60.0, 180.0
HOURS = 3.0
#: The issue's batch target: a makespan at most this times the clairvoyant bound's.
BATCH_TARGET = 1.05
#: Seconds the simulation looks again when no task is worth a poll.
STEP = 0.25

#: index(chance it finished since its last poll, lag it would have accrued by now if it
#: did, age now, age at last poll) -> priority
Index = Callable[[float, float, float, float], float]


def stage_bounds(age: float, duration: float) -> tuple[float, float]:
    """The durations consistent with what a "200"-style poll at ``age`` shows of a task still
    running that lasts ``duration``: each clip's state (pending before PHASE_RUNNING of its
    own time, running before PHASE_STREAMING, then streaming, then done) says on which side
    of a threshold the duration lies. Nothing is shown during the first not-ready seconds."""
    low, high = LOW, HIGH
    if age < fake_defaults.DEFAULT_INITIAL_NOT_READY:
        return low, high
    for early in (fake_defaults.DEFAULT_CLIP_SPREAD, 0.0):  # the first clip, then the last
        for fraction in (fake_defaults.PHASE_RUNNING, fake_defaults.PHASE_STREAMING, 1.0):
            # This clip has passed ``fraction`` of its time iff age >= fraction * (d - early).
            threshold = age / fraction + early
            if duration > threshold:
                low = max(low, threshold)
            else:
                high = min(high, threshold)
    return low, high


def cdf(age: float) -> float:
    return min(1.0, max(0.0, (age - LOW) / (HIGH - LOW)))


def accrued_lag(age: float, last: float, low: float = LOW, high: float = HIGH) -> float:
    """Expected lag by now of a task that finished between ``last`` and ``age`` (its
    duration uniform on ``low``-``high``)."""
    start, end = max(last, low), min(age, high)
    return age - (start + end) / 2 if end > start else 0.0


def chance_since(age: float, last: float, low: float = LOW, high: float = HIGH) -> float:
    """P(finished by ``age`` | running at ``last``), the duration uniform on ``low``-``high``."""
    start = max(last, low)
    if age <= start:
        return 0.0
    return 1.0 if age >= high or high <= start else (age - start) / (high - start)


def cdf_integral(age: float) -> float:
    """The integral of ``cdf`` from 0 to ``age``."""
    if age <= LOW:
        return 0.0
    if age >= HIGH:
        return (HIGH - LOW) / 2 + (age - HIGH)
    return (age - LOW) ** 2 / (2 * (HIGH - LOW))


#: Ages on which polling plans are computed, and the prices per poll tried (seconds of lag).
PLAN_STEP = 0.5
PRICES = tuple(0.25 * i for i in range(1, 161))


def polling_plan(price: float) -> list[float]:
    """One task's optimal plan when each poll costs ``price`` seconds of lag: for a task last
    seen running at age ``PLAN_STEP * i``, the age at which to poll it next.

    Dynamic programming over the ages, from the end: with ``S = 1 - F`` and ``G`` the integral
    of ``F``, the expected cost still to come of a task last seen running at ``s``, times
    ``S(s)``, is ``U(s) = min over t > s of price * S(s) + G(t) - G(s) - F(s) (t - s) + U(t)``.
    """
    ages = [i * PLAN_STEP for i in range(int(HIGH / PLAN_STEP) + 1)]
    cost = [0.0] * len(ages)
    plan = list(ages)
    for i in range(len(ages) - 2, -1, -1):
        s = ages[i]
        alive, g_s, f_s = 1.0 - cdf(s), cdf_integral(s), cdf(s)
        if alive <= 0.0:
            continue
        best, best_at = math.inf, HIGH
        for j in range(i + 1, len(ages)):
            t = ages[j]
            c = price * alive + cdf_integral(t) - g_s - f_s * (t - s) + cost[j]
            if c < best:
                best, best_at = c, t
        cost[i], plan[i] = best, best_at
    return plan


@functools.cache
def polling_plans() -> tuple[list[float], ...]:
    return tuple(polling_plan(price) for price in PRICES)


def whittle(chance: float, age: float, last: float) -> float:
    """The highest price per poll at which the task's own plan polls it by ``age``."""
    plans = polling_plans()
    i = min(len(plans[0]) - 1, round(last / PLAN_STEP))
    if plans[0][i] > age:
        return -(plans[0][i] - age)  # not due even at the lowest price: the nearest first
    lo, hi = 0, len(PRICES) - 1  # plans[p][i] grows with the price p
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if plans[mid][i] <= age else (lo, mid - 1)
    return PRICES[lo]


def fluid_bound(polls_per_task: float) -> float:
    """The mean lag of one task polled on its optimal plan, at the price that spends
    ``polls_per_task`` polls on average (durations spread evenly over LOW-HIGH)."""

    def follow(price: float) -> tuple[float, float]:
        plan = polling_plan(price)
        polls = lag = 0.0
        samples = 400
        for k in range(samples):
            duration, last = LOW + (HIGH - LOW) * (k + 0.5) / samples, 0.0
            while True:
                at = plan[min(len(plan) - 1, round(last / PLAN_STEP))]
                polls += 1
                if at >= duration or at <= last:
                    lag += max(0.0, at - duration)
                    break
                last = at
        return polls / samples, lag / samples

    cheap, dear = 0.05, 1e4  # spends more polls than allowed / fewer
    for _ in range(30):
        price = (cheap + dear) / 2
        cheap, dear = (cheap, price) if follow(price)[0] <= polls_per_task else (price, dear)
    return follow(dear)[1]


INDEXES: dict[str, Index] = {
    "greedy": lambda chance, lag, age, last: chance,
    "chance x lag": lambda chance, lag, age, last: chance * lag,
    "chance x lag / (1.1 - chance)": lambda chance, lag, age, last: chance * lag / (1.1 - chance),
    "whittle": lambda chance, lag, age, last: whittle(chance, age, last),
}
#: Indexes that can use a narrower interval than LOW-HIGH (``--stages``).
STAGE_INDEXES: tuple[str, ...] = ("greedy", "chance x lag", "chance x lag / (1.1 - chance)")


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
    """Poisson arrivals for HOURS, and each task's duration: the workload of
    ``benchmarks/scheduler.py`` (arrivals and durations from two generators; from one, each
    duration was a function of the gap before its task)."""
    arrivals_rng, durations_rng = random.Random(f"arrivals-{seed}"), random.Random(seed)
    arrivals: list[float] = []
    t = 0.0
    while (t := t + arrivals_rng.expovariate(per_minute / 60.0)) <= HOURS * 3600:
        arrivals.append(t)
    return arrivals, [durations_rng.uniform(LOW, HIGH) for _ in arrivals]


def batch(seed: int, size: int) -> tuple[list[float], list[float]]:
    """``size`` tasks wanted at once, and each task's duration."""
    rng = random.Random(seed)
    return [0.0] * size, [rng.uniform(LOW, HIGH) for _ in range(size)]


def simulate(
    index: Index | None,
    *,
    arrivals: list[float],
    durations: list[float],
    interval: float,
    stages: bool = False,
) -> Figures:
    """One workload; ``index=None`` is the clairvoyant bound (polls a task only once done,
    the earliest finished first). ``stages``: a vain poll narrows the task's interval of
    durations by what its clips show (:func:`stage_bounds`)."""
    queued: list[int] = []
    # job -> (created, age at last poll, the interval its duration lies in)
    running: dict[int, tuple[float, float, float, float]] = {}
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
            running[job] = (now, 0.0, LOW, HIGH)
            requests += 1
            token_at = now + interval
            continue
        best, best_priority = None, 0.0
        for job, (created, last, low, high) in running.items():
            age = now - created
            if index is None:  # it knows: only a finished task, the longest finished first
                chance = 1.0 if age >= durations[job] else 0.0
                priority = age - durations[job]
            else:
                chance = chance_since(age, last, low, high)
                lag = accrued_lag(age, last, low, high)
                priority = index(chance, lag, age, last) if chance > 0 else 0.0
            if chance > 0 and (best is None or priority > best_priority):
                best, best_priority = job, priority
        if best is None:  # nothing worth a poll: the token waits for a create or a candidate
            coming = arrivals[next_arrival] if next_arrival < len(arrivals) else float("inf")
            now = min(coming, now + STEP)
            continue
        created, _, low, high = running[best]
        requests += 1
        token_at = now + interval
        age = now - created
        if age >= durations[best]:
            lags.append(age - durations[best])
            last_seen = now
            del running[best]
        else:
            if stages:
                shown_low, shown_high = stage_bounds(age, durations[best])
                low, high = max(low, shown_low), min(high, shown_high)
            running[best] = (created, age, low, high)
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
    parser.add_argument(
        "--stages",
        action="store_true",
        help='the pollers read the "200" style\'s stages, knowing how they follow from durations',
    )
    args = parser.parse_args(argv)
    seeds = range(args.seed, args.seed + args.seeds)
    indexes = {
        name: index for name, index in INDEXES.items() if not args.stages or name in STAGE_INDEXES
    }
    stages = args.stages
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
        for name, index in [*indexes.items(), ("clairvoyant", None)]:
            runs = [
                simulate(
                    index, arrivals=arrivals, durations=durations, interval=interval, stages=stages
                )
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
    read = ", stages read" if stages else ""
    print(f"\n({scenario}{read}, mean over seeds {seeds[0]}-{seeds[-1]})")
    if args.batch is not None:
        # The batch target, seed by seed: a makespan within 5 % of the bound's.
        for interval, (name, index) in itertools.product((3.0, 3.1), indexes.items()):
            within = sum(
                simulate(
                    index, arrivals=arrivals, durations=durations, interval=interval, stages=stages
                ).makespan
                <= BATCH_TARGET
                * simulate(None, arrivals=arrivals, durations=durations, interval=interval).makespan
                for arrivals, durations in workloads
            )
            print(
                f"{name} at {interval:g} s: makespan within {BATCH_TARGET - 1:.0%} of the "
                f"clairvoyant bound on {within} of {len(workloads)} seeds"
            )
    if args.batch is None:
        for interval in (3.0, 3.1):
            spare = (60.0 / interval - args.rate) / args.rate  # polls a task may have
            print(
                f"fluid bound at {interval:g} s: {spare:.2f} polls per task,"
                f" mean lag at least {fluid_bound(spare):.1f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
