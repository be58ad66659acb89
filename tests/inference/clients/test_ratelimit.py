"""Request and token budgets: the bucket arithmetic, and one budget shared through Redis."""

import threading
import time

import pytest

from inference.clients.ratelimit import (
    LocalRateLimiter,
    RedisRateLimiter,
    TokenBuckets,
    budget_name,
)


def test_a_full_minute_of_requests_goes_at_once_then_they_are_paced():
    buckets = TokenBuckets(rpm=60, tpm=0, now=0.0)
    assert all(buckets.take(100, now=0.0) == 0 for _ in range(60))
    assert buckets.take(100, now=0.0) == pytest.approx(1.0)
    assert buckets.take(100, now=0.5) == pytest.approx(0.5)
    assert buckets.take(100, now=1.0) == 0


def test_tokens_are_budgeted_and_what_was_not_used_is_given_back():
    buckets = TokenBuckets(rpm=0, tpm=6000, now=0.0)
    assert buckets.take(5000, now=0.0) == 0
    # 2,000 tokens needed, 1,000 left, 100 tokens a second refill.
    assert buckets.take(2000, now=0.0) == pytest.approx(10.0)
    buckets.adjust(1200 - 5000, now=0.0)  # the call used 1,200 of the 5,000 reserved
    assert buckets.take(2000, now=0.0) == 0


def test_a_request_bigger_than_the_minute_waits_for_a_full_bucket():
    buckets = TokenBuckets(rpm=0, tpm=1000, now=0.0)
    assert buckets.take(5000, now=0.0) == 0
    assert buckets.take(5000, now=0.0) == pytest.approx(60.0)


def test_the_local_limiter_sleeps_until_the_budget_allows():
    clock = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    limiter = LocalRateLimiter(rpm=120, tpm=0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(121):
        limiter.acquire(10)
    assert sum(slept) == pytest.approx(0.5)


def test_the_budget_name_holds_no_secret():
    name = budget_name(
        base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY", model="m"
    )
    assert "OPENAI" not in name and len(name) == 24


REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_budget():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    name = f"test-{time.time_ns()}"
    yield name
    client.delete(f"evalplatform:ratelimit:{name}")


def test_workers_share_one_request_budget_through_redis(redis_budget):
    # Two limiters stand for two worker processes: together they get 120 requests a minute.
    limiters = [RedisRateLimiter(url=REDIS_URL, name=redis_budget, rpm=120, tpm=0) for _ in "ab"]
    started = time.monotonic()

    def burst(limiter):
        for _ in range(61):
            limiter.acquire(1)

    threads = [threading.Thread(target=burst, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 122 requests: 120 from the full bucket, two more at 2 a second.
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3


def test_redis_tokens_are_settled_after_the_call(redis_budget):
    limiter = RedisRateLimiter(url=REDIS_URL, name=redis_budget, rpm=0, tpm=6000)
    limiter.acquire(6000)
    limiter.settle(6000, 100)
    started = time.monotonic()
    limiter.acquire(5000)
    assert time.monotonic() - started < 0.5
