"""Rate limits on the crowd pages: fixed-window counters in the "shared" cache.

A worker id is free text, so without limits one client could invent ids and lease a whole round
in seconds. Each limit counts hits per key (a client address, a round) in the current clock
window; a burst may reach twice a limit across a window's edge, which these limits can afford.
A limiter that cannot reach its cache lets the request through: it must never stop a study.
"""

import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest

logger = logging.getLogger(__name__)

CACHE_ALIAS = "shared"
# After a failure the cache is left alone for this long, so that a Redis that is away costs one
# request a timeout, not every request.
CACHE_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Limited:
    """A request over a limit: which one, and in how many seconds its window ends."""

    reason: str
    retry_after: int


def crowd_start_limited(
    request: HttpRequest, round_id: int, *, study: str = "round"
) -> Limited | None:
    """Count a crowd session start; None while under the per-address and per-round limits.
    `study` names what kind of study the id is of (a round; a dialogue study)."""
    if not settings.CROWD_RATE_LIMITS:
        return None
    return _hit(
        "network", f"start-ip:{client_ip(request)}", settings.CROWD_STARTS_PER_IP_PER_HOUR, 3600
    ) or _hit("study", f"start-{study}:{round_id}", settings.CROWD_STARTS_PER_ROUND_PER_MINUTE, 60)


def crowd_answer_limited(request: HttpRequest) -> Limited | None:
    """Count a crowd answer; None while under the per-address limit. One cache round trip."""
    if not settings.CROWD_RATE_LIMITS:
        return None
    return _hit(
        "answers", f"answer-ip:{client_ip(request)}", settings.CROWD_ANSWERS_PER_IP_PER_MINUTE, 60
    )


def client_ip(request: HttpRequest) -> str:
    """The client's address; an IPv6 client is its /64, which one host may fill on its own."""
    address = request.META.get("REMOTE_ADDR", "")
    if settings.CLIENT_IP_HEADER:
        header = "HTTP_" + settings.CLIENT_IP_HEADER.upper().replace("-", "_")
        # The trusted proxy appends the address it saw: what comes before it the client wrote.
        address = request.META.get(header, "").split(",")[-1].strip() or address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


_cache_away_until = 0.0


def _hit(reason: str, key: str, limit: int, window: int) -> Limited | None:
    global _cache_away_until
    if limit <= 0:
        return None
    now = time.time()
    if now < _cache_away_until:
        return None
    window_number = int(now // window)
    try:
        count = _count(caches[CACHE_ALIAS], f"crowd-limit:{key}:{window_number}", window)
    except Exception:
        # Whatever the backend raises (connection refused, a timeout, a full memory): let it in.
        _cache_away_until = now + CACHE_RETRY_SECONDS
        logger.warning(
            "Crowd rate limits are off for %.0f s: the %r cache failed.",
            CACHE_RETRY_SECONDS,
            CACHE_ALIAS,
            exc_info=True,
        )
        return None
    if count <= limit:
        return None
    return Limited(reason, max(1, math.ceil((window_number + 1) * window - now)))


def _count(cache: BaseCache, key: str, window: int) -> int:
    if isinstance(cache, RedisCache):
        # Django's incr asks EXISTS first: INCR and EXPIRE in one pipeline are one round trip.
        # The key is the window's own, so refreshing its expiry on each hit never outlives it
        # by more than a window.
        full_key = cache.make_and_validate_key(key)
        client: Any = cache._cache.get_client(full_key, write=True)
        pipeline = client.pipeline()
        pipeline.incr(full_key)
        pipeline.expire(full_key, window + 1)
        return int(pipeline.execute()[0])
    if cache.add(key, 1, window + 1):
        return 1
    try:
        return cache.incr(key)
    except ValueError:
        # Expired between the two calls: this hit opens the window again.
        cache.add(key, 1, window + 1)
        return 1
