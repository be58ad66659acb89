"""Request and token budgets: the bucket arithmetic, one budget shared through Redis, and the
worker's own budgets while that Redis is away."""

import logging
import threading
import time

import pytest
import redis

from inference.clients import ratelimit
from inference.clients.openai_compat import OpenAICompatClient
from inference.clients.ratelimit import (
    LocalRateLimiter,
    RedisRateLimiter,
    TokenBuckets,
    budget_name,
)
from tests.support.openai_server import ScriptedOpenAI, verdict
from tests.support.redis_server import RedisServer


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


@pytest.fixture
def own_redis():
    with RedisServer() as server:
        yield server


@pytest.fixture
def quick_redis_retry(monkeypatch):
    monkeypatch.setattr(ratelimit, "REDIS_RETRY_SECONDS", 0.2)


def fallback_warnings(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == ratelimit.__name__ and record.levelno == logging.WARNING
    ]


def test_it_falls_back_to_local_budgets_while_redis_is_away_and_shares_again_after(
    own_redis, quick_redis_retry, caplog
):
    caplog.set_level(logging.INFO, logger=ratelimit.__name__)
    limiter = RedisRateLimiter(url=own_redis.url(), name="outage", rpm=600, tpm=60_000)
    key = "evalplatform:ratelimit:outage"
    limiter.acquire(100)
    limiter.settle(100, 40)
    assert redis.Redis.from_url(own_redis.url()).exists(key)

    own_redis.stop()
    started = time.monotonic()
    for _ in range(20):
        limiter.acquire(100)
        limiter.settle(100, 40)
    assert time.monotonic() - started < 2
    assert len(fallback_warnings(caplog)) == 1
    assert "ConnectionError" in fallback_warnings(caplog)[0]

    own_redis.start()  # empty: the key is gone with the old server
    time.sleep(0.3)
    limiter.acquire(100)
    assert redis.Redis.from_url(own_redis.url()).exists(key)
    assert any("shared through Redis again" in record.getMessage() for record in caplog.records)

    own_redis.stop()
    limiter.acquire(100)
    assert len(fallback_warnings(caplog)) == 2  # once per outage


def test_the_local_budget_still_paces_calls_while_redis_is_away(own_redis):
    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds

    fallback = LocalRateLimiter(rpm=60, tpm=0, clock=lambda: clock[0], sleep=sleep)
    limiter = RedisRateLimiter(
        url=own_redis.url(), name="paced", rpm=60, tpm=0, fallback=fallback, sleep=sleep
    )
    own_redis.stop()
    for _ in range(62):
        limiter.acquire(1)
    # 60 from the full bucket, then one a second.
    assert clock[0] == pytest.approx(2.0)


def test_a_reply_paid_for_while_redis_goes_away_is_returned(own_redis):
    limiter = RedisRateLimiter(url=own_redis.url(), name="paid", rpm=600, tpm=60_000)

    def answer_after_redis_stopped(request):
        own_redis.stop()  # between the budget's acquire and its settle
        return verdict("A")

    with ScriptedOpenAI(responder=answer_after_redis_stopped) as server:
        client = OpenAICompatClient(
            base_url=server.base_url, api_key="test", timeout=5, limiter=limiter
        )
        body = {"model": "gpt-4", "messages": [{"role": "user", "content": "Which?"}]}
        reply = client.complete(body, estimated_tokens=100)
        client.close()
    assert reply.text.endswith("Verdict: A")
    assert server.statuses == [200]
