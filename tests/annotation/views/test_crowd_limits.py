"""Rate limits on the crowd pages: session starts per address and per round, answers per address."""

import re
import socket

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from annotation import ratelimits
from annotation.models import Annotation, WorkerSession
from tests.factories import make_project, make_round

pytestmark = pytest.mark.django_db

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


@pytest.fixture
def round_():
    return make_round(prompts=6, items_per_worker=6)


def landing(round_) -> str:
    return reverse("crowd-landing", args=[round_.crowd_token])


def start(client, round_, worker: str, **extra):
    return client.post(landing(round_), {"worker_id": worker}, **extra)


def assignment_token(html: str) -> str:
    return re.search(r'name="assignment" value="([^"]+)"', html).group(1)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@override_settings(CROWD_STARTS_PER_IP_PER_HOUR=3)
def test_it_refuses_the_fourth_start_from_one_address_with_429_and_retry_after(client, round_):
    for number in range(3):
        assert start(client, round_, f"w{number}").status_code == 302
    refused = start(client, round_, "w3")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    html = refused.content.decode()
    assert "Too many workers started from your network" in html
    assert "try again in" in html
    assert WorkerSession.objects.count() == 3


@override_settings(CROWD_STARTS_PER_IP_PER_HOUR=1)
def test_it_counts_each_address_on_its_own(round_):
    first, second = Client(REMOTE_ADDR="10.0.0.1"), Client(REMOTE_ADDR="10.0.0.2")
    assert start(first, round_, "a").status_code == 302
    assert start(second, round_, "b").status_code == 302
    assert start(first, round_, "c").status_code == 429


@override_settings(CROWD_STARTS_PER_IP_PER_HOUR=1)
def test_it_counts_one_ipv6_host_by_its_64_network(round_):
    assert start(Client(REMOTE_ADDR="2001:db8::1"), round_, "a").status_code == 302
    assert start(Client(REMOTE_ADDR="2001:db8::2"), round_, "b").status_code == 429


@override_settings(CROWD_STARTS_PER_IP_PER_HOUR=1, CLIENT_IP_HEADER="X-Forwarded-For")
def test_it_takes_the_address_the_proxy_appended_not_what_the_client_wrote(round_):
    proxy = Client(REMOTE_ADDR="10.9.9.9")
    forged = {"headers": {"X-Forwarded-For": "1.1.1.1, 203.0.113.7"}}
    assert start(proxy, round_, "a", **forged).status_code == 302
    # The client changes its own part of the header; the proxy's part is the same address.
    again = {"headers": {"X-Forwarded-For": "8.8.8.8, 203.0.113.7"}}
    assert start(proxy, round_, "b", **again).status_code == 429
    other = {"headers": {"X-Forwarded-For": "203.0.113.8"}}
    assert start(proxy, round_, "c", **other).status_code == 302


@override_settings(CROWD_STARTS_PER_ROUND_PER_MINUTE=2)
def test_it_refuses_starts_beyond_the_rounds_limit_from_any_address(round_):
    assert start(Client(REMOTE_ADDR="10.0.0.1"), round_, "a").status_code == 302
    assert start(Client(REMOTE_ADDR="10.0.0.2"), round_, "b").status_code == 302
    refused = start(Client(REMOTE_ADDR="10.0.0.3"), round_, "c")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "starting this study at the same moment" in refused.content.decode()
    other_round = make_round(prompts=2, items_per_worker=2, project=make_project("other lab"))
    assert start(Client(REMOTE_ADDR="10.0.0.3"), other_round, "c").status_code == 302


@override_settings(CROWD_STARTS_PER_IP_PER_HOUR=1)
def test_it_never_limits_the_landing_page_itself(client, round_):
    assert start(client, round_, "a").status_code == 302
    for _ in range(3):
        assert client.get(landing(round_)).status_code == 200


@override_settings(CROWD_ANSWERS_PER_IP_PER_MINUTE=2)
def test_it_refuses_answers_beyond_the_limit_and_keeps_the_item(client, round_):
    work_url = start(client, round_, "w")["Location"]
    htmx = {"HX-Request": "true"}
    html = client.get(work_url).content.decode()
    for _ in range(2):
        answer = {"assignment": assignment_token(html), "choice": "A"}
        html = client.post(work_url + "answer/", answer, headers=htmx).content.decode()
    token = assignment_token(html)
    refused = client.post(work_url + "answer/", {"assignment": token, "choice": "B"}, headers=htmx)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "Too many answers were sent from your network" in refused.content.decode()
    assert Annotation.objects.count() == 2
    # The item the worker was on is still theirs, to answer once the minute is over.
    assert assignment_token(client.get(work_url).content.decode()) == token


@override_settings(CROWD_ANSWERS_PER_IP_PER_MINUTE=1)
def test_it_answers_a_plain_form_post_over_the_limit_with_a_page_back_to_the_item(client, round_):
    work_url = start(client, round_, "w")["Location"]
    html = client.get(work_url).content.decode()
    client.post(work_url + "answer/", {"assignment": assignment_token(html), "choice": "A"})
    html = client.get(work_url).content.decode()
    refused = client.post(
        work_url + "answer/", {"assignment": assignment_token(html), "choice": "A"}
    )
    assert refused.status_code == 429
    assert f'href="{work_url}"' in refused.content.decode()
    assert Annotation.objects.count() == 1


@override_settings(
    CROWD_RATE_LIMITS=False, CROWD_STARTS_PER_IP_PER_HOUR=1, CROWD_ANSWERS_PER_IP_PER_MINUTE=1
)
def test_it_limits_nothing_when_rate_limits_are_off(client, round_):
    for number in range(4):
        assert start(client, round_, f"w{number}").status_code == 302
    work_url = start(client, round_, "w4")["Location"]
    for _ in range(3):
        html = client.get(work_url).content.decode()
        answer = {"assignment": assignment_token(html), "choice": "A"}
        assert client.post(work_url + "answer/", answer).status_code == 302
    assert Annotation.objects.count() == 3


@override_settings(CROWD_STARTS_PER_IP_PER_HOUR=0)
def test_it_takes_a_limit_of_zero_as_no_limit(client, round_):
    for number in range(5):
        assert start(client, round_, f"w{number}").status_code == 302


def test_it_lets_requests_through_when_the_cache_is_away(client, round_, monkeypatch, caplog):
    monkeypatch.setattr(ratelimits, "_cache_away_until", 0.0)
    away = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    }
    with override_settings(
        CACHES={"default": LOCMEM, "shared": away},
        CROWD_STARTS_PER_IP_PER_HOUR=1,
        CROWD_ANSWERS_PER_IP_PER_MINUTE=1,
    ):
        assert start(client, round_, "a").status_code == 302
        work_url = start(client, round_, "b")["Location"]
        for _ in range(2):
            html = client.get(work_url).content.decode()
            answer = {"assignment": assignment_token(html), "choice": "A"}
            assert client.post(work_url + "answer/", answer).status_code == 302
        # Past the pause after a failure the limiter asks the cache again, and lets it in again.
        monkeypatch.setattr(ratelimits, "_cache_away_until", 0.0)
        assert start(client, round_, "c").status_code == 302
    assert WorkerSession.objects.count() == 3
    assert Annotation.objects.count() == 2
    assert "Crowd rate limits are off" in caplog.text
