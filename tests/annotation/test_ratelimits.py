"""The crowd rate limiter's counters in a real Redis, as gunicorn's processes share them."""

import os
import uuid

import pytest
import redis
from django.core.cache import caches
from django.test import RequestFactory, override_settings

from annotation import ratelimits

BROKER = os.environ.get("CELERY_BROKER_URL", "")

pytestmark = pytest.mark.skipif(
    not BROKER.startswith("redis://"), reason="needs the Redis of CELERY_BROKER_URL"
)


@pytest.fixture
def redis_cache():
    """The shared cache in the test Redis, under a prefix of its own that is removed after."""
    prefix = f"ratelimit-test-{uuid.uuid4().hex}"
    shared = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": BROKER,
        "KEY_PREFIX": prefix,
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    }
    default = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    with override_settings(CACHES={"default": default, "shared": shared}):
        yield caches["shared"]
    client = redis.Redis.from_url(BROKER)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def request_from(address: str):
    return RequestFactory().post("/c/w/x/answer/", REMOTE_ADDR=address)


@override_settings(CROWD_ANSWERS_PER_IP_PER_MINUTE=3)
def test_it_trips_at_the_limit_with_counters_in_redis(redis_cache):
    request = request_from("192.0.2.10")
    assert [ratelimits.crowd_answer_limited(request) for _ in range(3)] == [None] * 3
    limited = ratelimits.crowd_answer_limited(request)
    assert limited is not None
    assert limited.reason == "answers"
    assert 1 <= limited.retry_after <= 60
    assert ratelimits.crowd_answer_limited(request_from("192.0.2.11")) is None


@override_settings(CROWD_ANSWERS_PER_IP_PER_MINUTE=100)
def test_it_counts_in_one_window_key_that_expires_with_its_window(redis_cache):
    ratelimits.crowd_answer_limited(request_from("192.0.2.20"))
    ratelimits.crowd_answer_limited(request_from("192.0.2.20"))
    client = redis.Redis.from_url(BROKER)
    keys = list(client.scan_iter(f"{redis_cache.key_prefix}:*answer-ip:192.0.2.20:*"))
    assert len(keys) == 1
    assert int(client.get(keys[0])) == 2
    assert 0 < client.ttl(keys[0]) <= 61
    # Django's own reads see the same counter.
    window_key = keys[0].decode().split(":", 2)[2]
    assert redis_cache.get(window_key) == 2


@override_settings(CROWD_STARTS_PER_IP_PER_HOUR=2, CROWD_STARTS_PER_ROUND_PER_MINUTE=1000)
def test_a_second_process_sees_the_first_ones_count(redis_cache):
    request = request_from("192.0.2.30")
    assert ratelimits.crowd_start_limited(request, round_id=1) is None
    # A new connection pool, as another gunicorn process would have.
    del caches["shared"]
    assert ratelimits.crowd_start_limited(request, round_id=1) is None
    del caches["shared"]
    limited = ratelimits.crowd_start_limited(request, round_id=2)
    assert limited is not None and limited.reason == "network"
