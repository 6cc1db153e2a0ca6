"""Retries, adaptive concurrency and rate budgets for remote calls, independent of any transport.

A transport classifies each failure: `RetryableError` (429, 5xx, timeouts, broken or malformed
bodies) is retried with exponential backoff and jitter, at least as long as the server's
Retry-After asks; anything else fails at once. `AdaptiveLimiter` governs how many calls are in
flight (AIMD: +1 per window of successes, halved on 429/5xx/timeouts, once per congestion
event, as TCP does; no growth while answers take far longer than the fastest one, i.e. the
server is queueing). `RateBudget` paces calls to optional requests- and tokens-per-minute
budgets. `Resilience.call` runs one call through all of them and returns the retry history so
the run log can keep every attempt.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: failure kinds that mean "the server is overloaded": the limiter backs off on them
OVERLOAD_KINDS = frozenset({"rate_limit", "server", "timeout"})


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class RetryableError(Exception):
    """A failure worth retrying. `kind`: rate_limit, server, timeout, connection, malformed."""

    def __init__(self, message: str, kind: str, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.status = status

    @property
    def overload(self) -> bool:
        return self.kind in OVERLOAD_KINDS


class RetriesExhausted(Exception):
    """The call still failed after its last attempt; `history` lists every attempt."""

    def __init__(self, message: str, history: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.history = history


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: per-attempt time limit in seconds (None: no limit)
    timeout: float | None = 120.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Full jitter (AWS's "exponential backoff and jitter"): uniform in [0, base * 2^(n-1)],
        capped; a server's Retry-After is a floor, plus up to 10% jitter so that the callers
        it stopped together do not all return in the same instant."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        backoff = rng.uniform(0.0, ceiling)
        if retry_after is None:
            return backoff
        return max(retry_after * (1.0 + rng.uniform(0.0, 0.1)), min(backoff, retry_after))


class AdaptiveLimiter:
    """AIMD concurrency limit with a shared cool-down (the server's Retry-After)."""

    def __init__(self, initial: int = 8, minimum: int = 1, maximum: int = 64,
                 clock: Clock | None = None, decrease_factor: float = 0.5,
                 queueing_factor: float | None = 5.0) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"concurrency bounds must satisfy 1 <= min <= max, got {minimum}, {maximum}")
        self.minimum, self.maximum = minimum, maximum
        self.limit = float(min(max(initial, minimum), maximum))
        self.decrease_factor = decrease_factor
        self.clock = clock or RealClock()
        self.in_flight = 0
        self.paused_until = 0.0
        self._last_decrease = float("-inf")
        self._changed = asyncio.Event()
        self.peak_in_flight = 0
        self.decreases = 0
        #: a success slower than this many times the fastest one seen means the server is
        #: queueing our calls (llama.cpp, vLLM at capacity): more concurrency would only add
        #: latency, up to timeouts, so the limit does not grow on it (None: always grow)
        self.queueing_factor = queueing_factor
        self.fastest = float("inf")

    async def acquire(self) -> float:
        """Wait for a free slot (and for any cool-down to end); returns the start time."""
        while True:
            wait = self.paused_until - self.clock.now()
            if wait > 0:
                await self.clock.sleep(wait)
                continue
            if self.in_flight < int(self.limit):
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                return self.clock.now()
            self._changed.clear()
            await self._changed.wait()

    def release(self, started: float, outcome: str) -> None:
        """outcome: "success", "overload" (429/5xx/timeout) or "other" (no signal)."""
        self.in_flight -= 1
        if outcome == "success":
            latency = self.clock.now() - started
            self.fastest = min(self.fastest, latency)
            queueing = self.queueing_factor is not None and latency > max(0.05, self.fastest * self.queueing_factor)
            if not queueing:
                self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
        elif outcome == "overload" and started >= self._last_decrease:
            # one decrease per congestion event: calls already in flight when we backed
            # off carry no news about the new limit
            self.limit = max(float(self.minimum), self.limit * self.decrease_factor)
            self._last_decrease = self.clock.now()
            self.decreases += 1
        self._changed.set()

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (the server said when to come back)."""
        self.paused_until = max(self.paused_until, self.clock.now() + seconds)


class RateBudget:
    """Token bucket refilled at `per_minute / 60` per second; holds at most one second's worth
    (a call bigger than that waits for a full bucket and goes into debt)."""

    def __init__(self, per_minute: float, clock: Clock | None = None) -> None:
        if per_minute <= 0:
            raise ValueError(f"a per-minute budget must be positive, got {per_minute}")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.clock = clock or RealClock()
        self.tokens = self.capacity
        self._stamp = self.clock.now()
        self._lock = asyncio.Lock()

    async def take(self, amount: float = 1.0) -> None:
        async with self._lock:  # first come, first served
            need = min(amount, self.capacity)
            while True:
                self._refill()
                if self.tokens >= need:
                    self.tokens -= amount
                    return
                await self.clock.sleep((need - self.tokens) / self.rate)

    def _refill(self) -> None:
        now = self.clock.now()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now


@dataclass
class Resilience:
    """One call at a time through the budgets, the limiter, the timeout and the retry loop."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: AdaptiveLimiter = field(default_factory=AdaptiveLimiter)
    requests_budget: RateBudget | None = None
    tokens_budget: RateBudget | None = None
    clock: Clock = field(default_factory=RealClock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    retries: int = 0

    async def call(self, send: Callable[[], Awaitable[T]], estimated_tokens: int = 0
                   ) -> tuple[T, list[dict[str, Any]]]:
        """The result of `send()` and the list of failed attempts before it.

        Raises RetriesExhausted after the last attempt, or whatever non-retryable
        exception `send` raised."""
        history: list[dict[str, Any]] = []
        for attempt in range(1, self.policy.max_attempts + 1):
            if self.requests_budget:
                await self.requests_budget.take(1)
            if self.tokens_budget and estimated_tokens:
                await self.tokens_budget.take(estimated_tokens)
            started = await self.limiter.acquire()
            try:
                result = await self._attempt(send)
            except RetryableError as exc:
                self.limiter.release(started, "overload" if exc.overload else "other")
                if exc.retry_after is not None:
                    self.limiter.pause(exc.retry_after)
                history.append(_attempt_record(attempt, exc, self.clock.now() - started))
                if attempt == self.policy.max_attempts:
                    raise RetriesExhausted(f"{exc} (gave up after {attempt} attempts)", history) from exc
                wait = self.policy.delay(attempt, self.rng, exc.retry_after)
                history[-1]["wait_s"] = round(wait, 3)
                self.retries += 1
                await self.clock.sleep(wait)
            except BaseException:
                self.limiter.release(started, "other")
                raise
            else:
                self.limiter.release(started, "success")
                return result, history
        raise AssertionError("unreachable: max_attempts must be >= 1")

    async def _attempt(self, send: Callable[[], Awaitable[T]]) -> T:
        if self.policy.timeout is None:
            return await send()
        try:
            return await asyncio.wait_for(send(), self.policy.timeout)
        except asyncio.TimeoutError:
            raise RetryableError(f"timed out after {self.policy.timeout:g}s", "timeout") from None


def _attempt_record(attempt: int, exc: RetryableError, seconds: float) -> dict[str, Any]:
    record: dict[str, Any] = {"attempt": attempt, "kind": exc.kind, "error": str(exc)[:300],
                              "seconds": round(seconds, 3)}
    if exc.status is not None:
        record["status"] = exc.status
    if exc.retry_after is not None:
        record["retry_after_s"] = exc.retry_after
    return record


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """OpenAI's reset headers: "1s", "6m0s", "20ms", "1h2m3.5s"; a bare number is seconds."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, `Retry-After` (seconds or an
    HTTP date), else None."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return max(0.0, float(lower["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def rate_limit_pause(headers: Mapping[str, str]) -> float | None:
    """Seconds until a budget the server reports as exhausted resets
    (`x-ratelimit-remaining-requests: 0` with `x-ratelimit-reset-requests: 1s`, same for tokens)."""
    lower = {k.lower(): v for k, v in headers.items()}
    waits = []
    for what in ("requests", "tokens"):
        remaining = lower.get(f"x-ratelimit-remaining-{what}")
        reset = lower.get(f"x-ratelimit-reset-{what}")
        if remaining is None or reset is None:
            continue
        try:
            exhausted = float(remaining) <= 0
        except ValueError:
            continue
        seconds = parse_duration(reset)
        if exhausted and seconds is not None:
            waits.append(seconds)
    return max(waits) if waits else None
