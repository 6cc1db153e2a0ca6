"""Retry, backoff, AIMD concurrency and rate budgets, on a fake clock."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from evalkit.backends.resilience import (
    AdaptiveLimiter,
    RateBudget,
    Resilience,
    RetriesExhausted,
    RetryableError,
    RetryPolicy,
    parse_duration,
    rate_limit_pause,
    retry_after_seconds,
)


class FakeClock:
    """Time moves only when someone sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


def make(clock: FakeClock, **policy: Any) -> Resilience:
    return Resilience(policy=RetryPolicy(timeout=None, **policy),
                      limiter=AdaptiveLimiter(initial=4, maximum=16, clock=clock), clock=clock,
                      rng=random.Random(1))


def failing(failures: list[Exception], result: str = "ok") -> Any:
    calls = {"n": 0}

    async def send() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return result

    send.calls = calls  # type: ignore[attr-defined]
    return send


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # the jitter spans the whole range


def test_retry_after_is_a_floor_with_a_little_jitter() -> None:
    policy = RetryPolicy(base_delay=0.5)
    rng = random.Random(3)
    delays = [policy.delay(1, rng, retry_after=2.0) for _ in range(100)]
    assert all(2.0 <= d <= 2.2 for d in delays)
    assert len(set(delays)) > 50


def test_retries_then_succeeds_and_reports_every_attempt() -> None:
    clock = FakeClock()
    res = make(clock)
    send = failing([RetryableError("HTTP 429", "rate_limit", retry_after=2.0, status=429),
                    RetryableError("HTTP 500", "server", status=500)])
    result, history = asyncio.run(res.call(send))
    assert result == "ok" and send.calls["n"] == 3
    assert [h["kind"] for h in history] == ["rate_limit", "server"]
    assert history[0]["status"] == 429 and history[0]["retry_after_s"] == 2.0
    assert history[0]["wait_s"] >= 2.0
    assert clock.t >= 2.0 and res.retries == 2


def test_gives_up_after_max_attempts_with_the_full_history() -> None:
    clock = FakeClock()
    res = make(clock, max_attempts=3)
    send = failing([RetryableError(f"boom {i}", "server", status=503) for i in range(10)])
    with pytest.raises(RetriesExhausted) as info:
        asyncio.run(res.call(send))
    assert send.calls["n"] == 3
    assert [h["attempt"] for h in info.value.history] == [1, 2, 3]
    assert "gave up after 3 attempts" in str(info.value)
    assert res.limiter.in_flight == 0


def test_permanent_errors_are_not_retried() -> None:
    res = make(FakeClock())
    send = failing([RuntimeError("HTTP 401: bad key")])
    with pytest.raises(RuntimeError, match="401"):
        asyncio.run(res.call(send))
    assert send.calls["n"] == 1 and res.limiter.in_flight == 0


def test_timeout_becomes_a_retryable_timeout() -> None:
    res = Resilience(policy=RetryPolicy(timeout=0.05, max_attempts=2, base_delay=0.0))
    attempts = {"n": 0}

    async def send() -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            await asyncio.sleep(5)
        return "late but fine"

    result, history = asyncio.run(res.call(send))
    assert result == "late but fine"
    assert history[0]["kind"] == "timeout"


def test_aimd_adds_about_one_per_window_and_halves_once_per_congestion_event() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(initial=4, minimum=1, maximum=100, clock=clock)

    async def scenario() -> None:
        for _ in range(4):  # one window of successes at limit 4
            started = await limiter.acquire()
            limiter.release(started, "success")
        assert 4.9 < limiter.limit < 5.1
        before = limiter.limit
        # three calls in flight; all fail with overload: one decrease, not three
        starts = [await limiter.acquire() for _ in range(3)]
        clock.t += 1.0
        for started in starts:
            limiter.release(started, "overload")
        assert limiter.decreases == 1
        assert limiter.limit == pytest.approx(before / 2)
        # a call that started after the decrease brings news: a second decrease
        started = await limiter.acquire()
        limiter.release(started, "overload")
        assert limiter.decreases == 2

    asyncio.run(scenario())


def test_limits_stay_within_bounds() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(initial=2, minimum=2, maximum=3, clock=clock)

    async def scenario() -> None:
        for _ in range(50):
            started = await limiter.acquire()
            limiter.release(started, "success")
        assert limiter.limit == 3
        for _ in range(10):
            started = await limiter.acquire()
            clock.t += 1
            limiter.release(started, "overload")
        assert limiter.limit == 2

    asyncio.run(scenario())


def test_concurrency_never_exceeds_the_limit() -> None:
    limiter = AdaptiveLimiter(initial=3, minimum=1, maximum=3)
    active = {"now": 0, "peak": 0}

    async def job() -> None:
        started = await limiter.acquire()
        active["now"] += 1
        active["peak"] = max(active["peak"], active["now"])
        await asyncio.sleep(0.001)
        active["now"] -= 1
        limiter.release(started, "success")

    async def scenario() -> None:
        await asyncio.gather(*(job() for _ in range(30)))

    asyncio.run(scenario())
    assert active["peak"] == 3 and limiter.in_flight == 0


def test_pause_holds_every_new_call_until_the_server_said() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(initial=4, clock=clock)

    async def scenario() -> float:
        limiter.pause(7.5)
        return await limiter.acquire()

    assert asyncio.run(scenario()) >= 7.5


def test_rate_budget_paces_calls() -> None:
    clock = FakeClock()
    budget = RateBudget(per_minute=120, clock=clock)  # 2 per second, bucket of 2

    async def scenario() -> None:
        for _ in range(10):
            await budget.take(1)

    asyncio.run(scenario())
    # 2 from the full bucket, then 8 more at 2/s
    assert clock.t == pytest.approx(4.0, abs=0.01)


def test_token_budget_lets_a_big_call_through_then_pays_the_debt() -> None:
    clock = FakeClock()
    budget = RateBudget(per_minute=600, clock=clock)  # 10 tokens/s, bucket of 10

    async def scenario() -> None:
        await budget.take(50)  # bigger than the bucket: goes through, 40 in debt
        await budget.take(10)

    asyncio.run(scenario())
    assert clock.t == pytest.approx(5.0, abs=0.01)


def test_header_parsing() -> None:
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("2.5") == 2.5
    assert parse_duration("soon") is None
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "Retry-After": "1"}) == 0.25
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert retry_after_seconds({}) is None
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s",
               "x-ratelimit-remaining-tokens": "900", "x-ratelimit-reset-tokens": "20s"}
    assert rate_limit_pause(headers) == 1.5
    assert rate_limit_pause({**headers, "x-ratelimit-remaining-requests": "3"}) is None


def test_no_growth_while_the_server_is_queueing() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(initial=4, maximum=64, clock=clock, queueing_factor=5.0)

    async def call(seconds: float) -> None:
        started = await limiter.acquire()
        clock.t += seconds
        limiter.release(started, "success")

    async def scenario() -> None:
        await call(1.0)  # the fastest answer: 1 s
        grown = limiter.limit
        for _ in range(20):
            await call(8.0)  # 8x slower: our calls wait in the server's queue
        assert limiter.limit == grown
        await call(2.0)
        assert limiter.limit > grown

    asyncio.run(scenario())
