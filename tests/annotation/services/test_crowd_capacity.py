"""A round's cap on crowd workers at work at once (`Round.max_active_workers`)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from annotation.models import WorkerSession
from annotation.services.assignment import RoundFull, SubmissionRefused, crowd_session_start
from tests.factories import make_round


def start(round_, name: str, browser_keys: dict[int, str] | None = None):
    return crowd_session_start(round_=round_, name=name, browser_keys=browser_keys or {})


@pytest.mark.django_db
def test_it_refuses_the_worker_beyond_the_cap_and_lets_an_existing_one_resume():
    round_ = make_round(prompts=4, max_active_workers=2)
    first = start(round_, "w1")
    start(round_, "w2")
    with pytest.raises(RoundFull, match="as many workers as it can take right now"):
        start(round_, "w3")
    resumed = start(round_, " w1 ", {first.session.pk: first.new_browser_key})
    assert resumed.session.pk == first.session.pk
    assert WorkerSession.objects.filter(round=round_).count() == 2


@pytest.mark.django_db
def test_a_resuming_worker_from_another_browser_is_still_refused_as_before():
    round_ = make_round(prompts=4, max_active_workers=1)
    first = start(round_, "w1")
    with pytest.raises(SubmissionRefused, match="another browser") as refusal:
        start(round_, "w1", {first.session.pk: "someone-elses"})
    assert not isinstance(refusal.value, RoundFull)


@pytest.mark.django_db
def test_workers_who_finished_left_or_were_stopped_free_their_place():
    round_ = make_round(prompts=4, max_active_workers=4)
    sessions = [start(round_, f"w{i}").session for i in range(4)]
    now = timezone.now()
    stale = now - timedelta(seconds=round_.lease_seconds + 1)
    WorkerSession.objects.filter(pk=sessions[0].pk).update(finished_at=now)
    WorkerSession.objects.filter(pk=sessions[1].pk).update(blocked_at=now)
    WorkerSession.objects.filter(pk=sessions[2].pk).update(excluded_at=now)
    # Started long ago and answered nothing within the lease: gone.
    WorkerSession.objects.filter(pk=sessions[3].pk).update(started_at=stale)
    for number in range(4, 8):
        start(round_, f"w{number}")
    with pytest.raises(RoundFull):
        start(round_, "w8")


@pytest.mark.django_db
def test_a_recent_answer_keeps_a_worker_who_started_long_ago_active():
    round_ = make_round(prompts=4, max_active_workers=1)
    session = start(round_, "w1").session
    long_ago = timezone.now() - timedelta(seconds=round_.lease_seconds * 3)
    WorkerSession.objects.filter(pk=session.pk).update(
        started_at=long_ago, last_answer_at=timezone.now()
    )
    with pytest.raises(RoundFull):
        start(round_, "w2")


@pytest.mark.django_db
def test_a_round_without_a_cap_takes_every_worker():
    round_ = make_round(prompts=2)
    for number in range(20):
        start(round_, f"w{number}")
    assert WorkerSession.objects.filter(round=round_).count() == 20


@pytest.mark.django_db(transaction=True)
def test_racing_starts_never_exceed_the_cap():
    if connection.vendor != "postgresql":
        pytest.skip("the race needs concurrent writers: PostgreSQL")
    round_ = make_round(prompts=4, max_active_workers=3)
    racers = 12
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            barrier.wait()
            start(round_, f"racer-{number}")
            outcomes.append("started")
        except RoundFull:
            outcomes.append("full")
        except BaseException as error:  # reported to the test below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(outcomes) == ["full"] * 9 + ["started"] * 3
    assert WorkerSession.objects.filter(round=round_).count() == 3
