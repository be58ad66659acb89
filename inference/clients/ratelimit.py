"""Requests-per-minute and tokens-per-minute budgets shared by every worker calling one API.

Two token buckets per budget name (an endpoint, a key variable and a model), refilled
continuously: `rpm` requests and `tpm` tokens per minute, bursts up to one minute's worth.
A call takes one request and its estimated tokens before it is sent and settles the
difference with the tokens the API reports afterwards.

With a Redis broker (CELERY_BROKER_URL=redis://...) the buckets live in Redis and one Lua
script updates them atomically, so all workers on all machines share them. Otherwise (the
embedded quickstart's filesystem broker) they live in the worker process: one worker, one
budget, which is what the quickstart runs.

While Redis is unreachable the shared buckets give way to the worker process's own (each
process then has the whole budget to itself; an API that objects answers 429, which the
client's retry loop honours), and Redis is tried again every REDIS_RETRY_SECONDS. A limiter
never fails a call: a reply that was paid for is never thrown away over its budget.
"""

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

# Sleep in short steps so that a freed budget is noticed quickly.
MAX_SLEEP_SECONDS = 1.0
# After Redis failed, calls use the local buckets for this long before Redis is tried again.
REDIS_RETRY_SECONDS = 2.0
# A Redis that does not answer must cost a call about a second, not redis-py's default retries.
REDIS_CONNECT_TIMEOUT_SECONDS = 0.5
REDIS_TIMEOUT_SECONDS = 1.0


class RateLimiter(Protocol):
    def acquire(self, tokens: int) -> None: ...

    def settle(self, reserved: int, used: int) -> None: ...


class NoLimit:
    def acquire(self, tokens: int) -> None:
        return None

    def settle(self, reserved: int, used: int) -> None:
        return None


class TokenBuckets:
    """The arithmetic of the two buckets, on a clock given by the caller."""

    def __init__(self, *, rpm: int, tpm: int, now: float) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.requests, self.tokens, self.updated = float(rpm), float(tpm), now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.requests = min(self.rpm, self.requests + elapsed * self.rpm / 60)
        self.tokens = min(self.tpm, self.tokens + elapsed * self.tpm / 60)
        self.updated = now

    def take(self, tokens: int, now: float) -> float:
        """Take one request and `tokens`; returns 0, or the seconds to wait before trying again."""
        self._refill(now)
        tokens = min(tokens, self.tpm)  # a request bigger than a minute waits for a full bucket
        wait = 0.0
        if self.rpm and self.requests < 1:
            wait = (1 - self.requests) * 60 / self.rpm
        if self.tpm and self.tokens < tokens:
            wait = max(wait, (tokens - self.tokens) * 60 / self.tpm)
        if wait == 0:
            self.requests -= 1 if self.rpm else 0
            self.tokens -= tokens
        return wait

    def adjust(self, tokens: int, now: float) -> None:
        """Charge `tokens` more (or give back, if negative) after the call."""
        self._refill(now)
        self.tokens = min(self.tpm, self.tokens - tokens)


def _wait_loop(take: Callable[[], float], sleep: Callable[[float], None]) -> None:
    while (wait := take()) > 0:
        sleep(min(wait, MAX_SLEEP_SECONDS))


class LocalRateLimiter:
    def __init__(self, *, rpm: int, tpm: int, clock=time.monotonic, sleep=time.sleep) -> None:
        self._buckets = TokenBuckets(rpm=rpm, tpm=tpm, now=clock())
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def take(self, tokens: int) -> float:
        """One attempt: 0 when taken, or the seconds to wait before trying again."""
        with self._lock:
            return self._buckets.take(tokens, self._clock())

    def acquire(self, tokens: int) -> None:
        _wait_loop(lambda: self.take(tokens), self._sleep)

    def settle(self, reserved: int, used: int) -> None:
        with self._lock:
            self._buckets.adjust(used - reserved, self._clock())


# KEYS[1]: the hash holding both buckets. ARGV: rpm, tpm, tokens, 1 to take a request or 0
# to adjust tokens only. Returns the seconds to wait as a string (a Lua number would be
# truncated to an integer reply). Redis's own clock is used so that workers' clocks may differ.
_BUCKETS_SCRIPT = """
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens, take = tonumber(ARGV[3]), tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local r = tonumber(state[1]) or rpm
local t = tonumber(state[2]) or tpm
local elapsed = math.max(0, now - (tonumber(state[3]) or now))
r = math.min(rpm, r + elapsed * rpm / 60)
t = math.min(tpm, t + elapsed * tpm / 60)
local wait = 0
if take == 1 then
  tokens = math.min(tokens, tpm)
  if rpm > 0 and r < 1 then wait = (1 - r) * 60 / rpm end
  if tpm > 0 and t < tokens then wait = math.max(wait, (tokens - t) * 60 / tpm) end
  if wait == 0 then
    if rpm > 0 then r = r - 1 end
    t = t - tokens
  end
else
  t = math.min(tpm, t - tokens)
end
redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(t), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return tostring(wait)
"""


class RedisOutage:
    """Whether one Redis is away, for every limiter of the process that uses it: one warning
    when it goes, one line when it is back."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._away_since: float | None = None
        self._retry_at = 0.0

    @property
    def away(self) -> bool:
        return self._away_since is not None

    def worth_trying(self) -> bool:
        return self._away_since is None or self._clock() >= self._retry_at

    def failed(self, error: redis.RedisError) -> None:
        with self._lock:
            now = self._clock()
            self._retry_at = now + REDIS_RETRY_SECONDS
            if self._away_since is not None:
                return
            self._away_since = now
        logger.warning(
            "Rate limits fall back to this worker's own budgets: Redis failed (%s: %s). "
            "Retrying it every %.0f s.",
            type(error).__name__,
            error,
            REDIS_RETRY_SECONDS,
        )

    def answered(self) -> None:
        if self._away_since is None:
            return
        with self._lock:
            if self._away_since is None:
                return
            away_for = self._clock() - self._away_since
            self._away_since = None
        logger.info("Rate limits are shared through Redis again, after %.1f s.", away_for)


class RedisRateLimiter:
    """The budget in Redis, shared by all workers; `fallback` (this process's own buckets)
    while Redis is away."""

    def __init__(
        self,
        *,
        url: str,
        name: str,
        rpm: int,
        tpm: int,
        fallback: LocalRateLimiter | None = None,
        outage: RedisOutage | None = None,
        sleep=time.sleep,
    ) -> None:
        self._redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            # Once, at once: the first command after a restart finds its pooled connection closed.
            retry=Retry(NoBackoff(), 1),
        )
        self._script = self._redis.register_script(_BUCKETS_SCRIPT)
        self._key = f"evalplatform:ratelimit:{name}"
        self.rpm, self.tpm = rpm, tpm
        self._fallback = fallback or LocalRateLimiter(rpm=rpm, tpm=tpm, sleep=sleep)
        self._outage = outage or RedisOutage()
        self._sleep = sleep

    def _run(self, tokens: int, take: int) -> float | None:
        """Seconds to wait, from Redis; None when Redis is away."""
        if not self._outage.worth_trying():
            return None
        try:
            wait = float(self._script(keys=[self._key], args=[self.rpm, self.tpm, tokens, take]))
        except redis.RedisError as error:
            self._outage.failed(error)
            return None
        self._outage.answered()
        return wait

    def acquire(self, tokens: int) -> None:
        def take() -> float:
            wait = self._run(tokens, 1)
            return self._fallback.take(tokens) if wait is None else wait

        _wait_loop(take, self._sleep)

    def settle(self, reserved: int, used: int) -> None:
        if self._run(used - reserved, 0) is None:
            self._fallback.settle(reserved, used)


_local_limiters: dict[tuple[str, int, int], LocalRateLimiter] = {}
_outages: dict[str, RedisOutage] = {}
_registry_lock = threading.Lock()


def budget_name(*, base_url: str, api_key_env: str, model: str) -> str:
    """Who shares a budget: the same endpoint, key variable and model. Holds no secret."""
    return hashlib.sha256(f"{base_url}|{api_key_env}|{model}".encode()).hexdigest()[:24]


def _local_limiter(name: str, rpm: int, tpm: int) -> LocalRateLimiter:
    with _registry_lock:
        key = (name, rpm, tpm)
        if key not in _local_limiters:
            _local_limiters[key] = LocalRateLimiter(rpm=rpm, tpm=tpm)
        return _local_limiters[key]


def _outage(url: str) -> RedisOutage:
    with _registry_lock:
        if url not in _outages:
            _outages[url] = RedisOutage()
        return _outages[url]


def rate_limiter(*, name: str, rpm: int, tpm: int) -> RateLimiter:
    if not rpm and not tpm:
        return NoLimit()
    broker = settings.CELERY_BROKER_URL
    local = _local_limiter(name, rpm, tpm)
    if broker.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(
            url=broker, name=name, rpm=rpm, tpm=tpm, fallback=local, outage=_outage(broker)
        )
    return local
