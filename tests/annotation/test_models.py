"""Invariants the database itself holds, whatever code writes the rows."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.test import override_settings
from django.utils import timezone

from annotation.imports.alpaca_eval import alpaca_eval_import
from annotation.models import Annotation, Annotator, Assignment, Item, Round
from annotation.reports.frames import project_battles
from annotation.reports.selectors import round_report
from annotation.services.assignment import (
    annotation_submit,
    assignment_current,
    assignments_release_expired,
    session_start,
)
from annotation.services.rounds import RoundInvalid
from tests.factories import make_project, make_round
from tests.shared_data import ANNOTATIONS

pytestmark = pytest.mark.django_db


def refused(write) -> bool:
    try:
        with transaction.atomic():
            write()
    except IntegrityError:
        return True
    return False


def crowd_answer(round_: Round, name: str, shown_choice: str = "A") -> Annotation:
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name=name)
    token = assignment_current(session=session).token
    return annotation_submit(session=session, assignment_token=token, shown_choice=shown_choice)


@pytest.fixture
def annotation() -> Annotation:
    return crowd_answer(make_round(prompts=2), "w1")


# ---------------------------------------------------------------- annotations


@pytest.mark.parametrize(
    ("choice", "shown", "candidate_first"),
    [
        ("candidate", "A", True),
        ("candidate", "B", False),
        ("baseline", "B", True),
        ("baseline", "A", False),
        ("tie", "N", True),
        ("tie", "N", False),
    ],
)
def test_it_keeps_an_annotation_whose_choice_is_what_was_clicked_in_the_order_shown(
    annotation, choice, shown, candidate_first
):
    assert Annotation.model_choice(shown, candidate_first) == choice

    assert not refused(
        lambda: Annotation.objects.filter(pk=annotation.pk).update(
            choice=choice, shown_choice=shown, candidate_first=candidate_first
        )
    )


@pytest.mark.parametrize(
    ("choice", "shown", "candidate_first"),
    [
        ("baseline", "A", True),
        ("candidate", "A", False),
        ("candidate", "N", True),
        ("tie", "B", True),
        ("tie", "A", False),
    ],
)
def test_it_refuses_an_annotation_whose_choice_disagrees_with_what_was_clicked(
    annotation, choice, shown, candidate_first
):
    assert refused(
        lambda: Annotation.objects.filter(pk=annotation.pk).update(
            choice=choice, shown_choice=shown, candidate_first=candidate_first
        )
    )
    annotation.refresh_from_db()
    assert (annotation.choice, annotation.shown_choice) == ("candidate", "A")


# ---------------------------------------------------------------- items


def test_it_refuses_an_item_with_more_completed_than_taken(annotation):
    item = annotation.item

    assert refused(lambda: Item.objects.filter(pk=item.pk).update(completed=F("taken") + 1))
    assert not refused(lambda: Item.objects.filter(pk=item.pk).update(completed=F("taken")))


def test_it_counts_a_crowd_lease_on_a_shared_item_so_completed_stays_within_taken():
    round_ = make_round(prompts=3, shared_items=1, items_per_worker=3)
    shared = round_.items.get(is_shared=True)
    for worker in ("w1", "w2", "w3"):
        assert crowd_answer(round_, worker).item_id == shared.pk

    shared.refresh_from_db()
    assert (shared.taken, shared.completed) == (3, 3)


def test_it_gives_back_the_slot_of_an_expired_crowd_lease_on_a_shared_item():
    round_ = make_round(prompts=3, shared_items=1, items_per_worker=3)
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="quitter")
    lease = assignment_current(session=session)
    assert Item.objects.get(pk=lease.item_id).taken == 1
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert assignments_release_expired(round_id=round_.pk) == 1

    assert Item.objects.get(pk=lease.item_id).taken == 0


def test_it_takes_no_slot_for_an_authors_lease_on_a_shared_item():
    round_ = make_round(prompts=3, shared_items=1, items_per_worker=3)
    session = session_start(round_=round_, kind=Annotator.Kind.AUTHOR, name="alice")
    lease = assignment_current(session=session)

    assert Item.objects.get(pk=lease.item_id).taken == 0


# ---------------------------------------------------------------- rounds


@pytest.mark.parametrize(
    ("field", "value"),
    [("annotators_per_item", 0), ("items_per_worker", 0), ("lease_seconds", 9)],
)
def test_it_refuses_a_round_out_of_its_bounds(field, value):
    round_ = make_round(prompts=2)

    assert refused(lambda: Round.objects.filter(pk=round_.pk).update(**{field: value}))


@pytest.mark.parametrize(
    ("field", "value"),
    [("annotators_per_item", 1), ("items_per_worker", 1), ("lease_seconds", 10)],
)
def test_it_keeps_a_round_at_its_bounds(field, value):
    round_ = make_round(prompts=2)

    assert not refused(lambda: Round.objects.filter(pk=round_.pk).update(**{field: value}))


@pytest.mark.parametrize(
    ("round_settings", "message"),
    [
        ({"annotators_per_item": 0}, "Annotators per item"),
        ({"shared_items": -1}, "Shared items"),
        ({"items_per_worker": 0}, "Items per worker"),
        ({"lease_seconds": 9}, "lease"),
    ],
)
def test_it_explains_a_round_out_of_its_bounds_before_the_database_refuses_it(
    round_settings, message
):
    with pytest.raises(RoundInvalid, match=message):
        make_round(prompts=2, **round_settings)


@override_settings(CROWD_LEASE_SECONDS=95)
def test_a_round_created_without_a_lease_gets_the_crowd_lease_setting():
    assert make_round(prompts=2).lease_seconds == 95


@override_settings(CROWD_LEASE_SECONDS=95)
def test_a_lease_given_for_the_round_wins_over_the_setting():
    assert make_round(prompts=2, lease_seconds=40).lease_seconds == 40


# ---------------------------------------------------------------- annotators


def test_two_projects_crowd_workers_of_one_name_are_two_annotators():
    first = make_round(prompts=2, project=make_project("one"))
    second = make_round(prompts=2, project=make_project("two"))
    crowd_answer(first, "w1", "A")
    crowd_answer(second, "w1", "B")

    workers = Annotator.objects.filter(name="w1")

    assert sorted(w.project_id for w in workers) == [first.project_id, second.project_id]
    for round_ in (first, second):
        (annotation,) = Annotation.objects.filter(annotator__project=round_.project)
        assert annotation.item.round_id == round_.pk
        assert len(project_battles(round_.project_id)) == 1
        assert round_report(round_, resamples=10).summary()["groups"]["crowd"]["baseline"]["n"] == 1


def test_an_author_annotating_in_two_projects_is_one_annotator_in_each():
    first = make_round(prompts=2, project=make_project("one"))
    second = make_round(prompts=2, project=make_project("two"))

    sessions = [
        session_start(round_=round_, kind=Annotator.Kind.AUTHOR, name="alice")
        for round_ in (first, first, second)
    ]

    assert sessions[0].pk == sessions[1].pk
    assert sessions[0].annotator_id != sessions[2].annotator_id
    assert sessions[2].annotator.project_id == second.project_id


def test_two_projects_importing_one_alpaca_eval_judge_get_one_annotator_each():
    projects = [make_project("one"), make_project("two")]
    for project in projects:
        alpaca_eval_import(
            project=project,
            raw=ANNOTATIONS.read_bytes(),
            file=ANNOTATIONS.name,
            candidate_name="Mistral-7B-Instruct-v0.2",
        )

    judges = Annotator.objects.filter(kind=Annotator.Kind.JUDGE)

    assert sorted(judge.project_id for judge in judges) == [p.pk for p in projects]
    for judge in judges:
        assert judge.annotations.count() == 805
        assert not judge.annotations.exclude(item__round__project=judge.project_id).exists()
