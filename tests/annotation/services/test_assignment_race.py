"""Workers racing for slots, on real concurrent database connections.

The PostgreSQL runs exercise SELECT ... FOR UPDATE SKIP LOCKED; SQLite serialises writers, and
the same tests check that the conditional slot update still never hands out a slot twice.
"""

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from annotation.models import Annotation, Annotator, Assignment, Item
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from tests.factories import make_round

pytestmark = pytest.mark.django_db(transaction=True)


def race(workers: int, work) -> list:
    barrier = threading.Barrier(workers)
    results: list = [None] * workers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:  # reported to the test below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.fixture
def sessions():
    def build(round_, count):
        return [
            session_start(round_=round_, kind=Annotator.Kind.CROWD, name=f"w{i}")
            for i in range(count)
        ]

    return build


def test_it_gives_the_last_item_to_exactly_one_of_many_racing_workers(sessions):
    round_ = make_round(prompts=1, annotators_per_item=1)
    racers = sessions(round_, 12)
    results = race(12, lambda i: assignment_current(session=racers[i]))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert Assignment.objects.count() == 1
    assert Item.objects.get().taken == 1


def test_it_never_exceeds_k_annotators_when_workers_race_through_a_round(sessions):
    round_ = make_round(prompts=15, annotators_per_item=2, items_per_worker=100)
    racers = sessions(round_, 8)

    def work_through(index: int) -> int:
        session = racers[index]
        done = 0
        while (assignment := assignment_current(session=session)) is not None:
            annotation_submit(session=session, assignment_token=assignment.token, shown_choice="N")
            done += 1
        return done

    done = race(8, work_through)
    assert sum(done) == 30
    per_item = Counter(Annotation.objects.values_list("item_id", flat=True))
    assert sorted(per_item.values()) == [2] * 15
    pairs = Annotation.objects.values_list("item_id", "annotator_id")
    assert len(set(pairs)) == len(pairs)


def test_it_records_one_annotation_when_the_same_answer_is_sent_many_times_at_once(sessions):
    round_ = make_round(prompts=2)
    (session,) = sessions(round_, 1)
    assignment = assignment_current(session=session)
    results = race(
        8,
        lambda i: (
            annotation_submit(
                session=session, assignment_token=assignment.token, shown_choice="A"
            ).pk
        ),
    )
    assert len(set(results)) == 1
    assert Annotation.objects.count() == 1
    session.refresh_from_db()
    assert session.completed_items == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED is PostgreSQL's")
def test_it_spreads_racing_workers_over_different_items_on_postgresql(sessions):
    round_ = make_round(prompts=10, annotators_per_item=1)
    racers = sessions(round_, 10)
    results = race(10, lambda i: assignment_current(session=racers[i]))
    assert all(r is not None for r in results)
    assert len({r.item_id for r in results}) == 10


def test_one_session_loading_its_page_many_times_at_once_holds_one_lease(sessions):
    round_ = make_round(prompts=20, annotators_per_item=1, items_per_worker=20)
    (session,) = sessions(round_, 1)
    results = race(12, lambda i: assignment_current(session=session))
    assert len({r.pk for r in results if r is not None}) == 1
    assert Assignment.objects.filter(session=session, status=Assignment.Status.LEASED).count() == 1
    assert sum(round_.items.values_list("taken", flat=True)) == 1
