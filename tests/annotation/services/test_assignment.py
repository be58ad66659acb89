from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Annotation, Annotator, Assignment, Item, Response
from annotation.services.assignment import (
    SubmissionRefused,
    annotation_submit,
    assignment_current,
    session_start,
)
from annotation.services.rounds import RoundInvalid, round_add_missing_items, round_create
from tests.factories import make_model_with_responses, make_project, make_prompt_set, make_round

pytestmark = pytest.mark.django_db


def crowd(round_, name):
    return session_start(round_=round_, kind=Annotator.Kind.CROWD, name=name)


def answer_all(session, choice="A"):
    answered = []
    while (assignment := assignment_current(session=session)) is not None:
        annotation_submit(session=session, assignment_token=assignment.token, shown_choice=choice)
        answered.append(assignment.item_id)
    return answered


def test_it_creates_one_item_per_prompt_and_baseline_with_both_responses():
    round_ = make_round(prompts=6, baselines=("alpaca", "davinci"))
    assert round_.items.count() == 12
    assert set(round_.items.values_list("baseline__name", flat=True)) == {"alpaca", "davinci"}


def test_it_skips_prompts_missing_a_response():
    project = make_project()
    prompt_set = make_prompt_set(project, 5)
    candidate = make_model_with_responses(project, prompt_set, "candidate")
    baseline = make_model_with_responses(project, prompt_set, "baseline")
    baseline.responses.filter(prompt__external_id__in=["0", "1"]).delete()
    round_ = round_create(
        project=project, prompt_set=prompt_set, candidate=candidate, baselines=[baseline],
        shared_items=0,
    )  # fmt: skip
    assert round_.items.count() == 3


def test_it_compares_only_the_responses_made_with_the_rounds_settings():
    project = make_project()
    prompt_set = make_prompt_set(project, 4)
    candidate = make_model_with_responses(project, prompt_set, "candidate")
    baseline = make_model_with_responses(project, prompt_set, "baseline")
    Response.objects.bulk_create(
        Response(prompt=prompt, model=candidate, text="Greedy answer", settings_key="greedy")
        for prompt in prompt_set.prompts.filter(position__lt=3)
    )
    round_ = round_create(
        project=project, prompt_set=prompt_set, candidate=candidate, baselines=[baseline],
        shared_items=0,
    )  # fmt: skip
    imported = set(round_.items.values_list("candidate_response__settings_key", flat=True))
    assert round_.items.count() == 4 and imported == {""}

    round_.items.all().delete()
    round_.response_keys = {str(candidate.pk): "greedy"}
    round_.save()

    assert round_add_missing_items(round_=round_) == 3
    keys = round_.items.values_list(
        "candidate_response__settings_key", "baseline_response__settings_key"
    )
    assert set(keys) == {("greedy", "")}


def test_it_shows_the_candidate_first_on_half_the_items():
    round_ = make_round(prompts=50, baselines=("a", "b"))
    assert Counter(round_.items.values_list("candidate_first", flat=True)) == {True: 50, False: 50}


def test_it_draws_the_same_orders_from_the_same_seed():
    first = make_round(prompts=20, seed=7, project=make_project("one"))
    second = make_round(prompts=20, seed=7, project=make_project("two"))
    orders = [
        list(r.items.order_by("position").values_list("candidate_first", flat=True))
        for r in (first, second)
    ]
    assert orders[0] == orders[1]


def test_it_refuses_a_round_whose_candidate_is_also_a_baseline():
    project = make_project()
    prompt_set = make_prompt_set(project, 2)
    model = make_model_with_responses(project, prompt_set, "m")
    with pytest.raises(RoundInvalid, match="both the candidate and a baseline"):
        round_create(project=project, prompt_set=prompt_set, candidate=model, baselines=[model])


def test_it_refuses_a_quota_smaller_than_the_shared_set():
    with pytest.raises(RoundInvalid, match="shared set"):
        make_round(prompts=10, shared_items=5, items_per_worker=3)


def test_it_gives_every_worker_the_whole_shared_set_first():
    round_ = make_round(prompts=10, shared_items=4, items_per_worker=6)
    shared = set(round_.items.filter(is_shared=True).values_list("id", flat=True))
    for name in ("w1", "w2", "w3"):
        answered = answer_all(crowd(round_, name))
        assert set(answered[:4]) == shared
        assert len(answered) == 6


def test_it_never_assigns_the_same_item_twice_to_one_worker():
    round_ = make_round(prompts=8, annotators_per_item=3, items_per_worker=100)
    answered = answer_all(crowd(round_, "w1"))
    assert len(answered) == len(set(answered)) == 8


def test_it_gives_each_item_exactly_k_crowd_annotators():
    round_ = make_round(prompts=6, annotators_per_item=2, items_per_worker=100)
    for name in ("w1", "w2", "w3", "w4"):
        answer_all(crowd(round_, name))
    per_item = Counter(Annotation.objects.values_list("item_id", flat=True))
    assert sorted(per_item.values()) == [2] * 6
    assert set(Item.objects.values_list("taken", "completed")) == {(2, 2)}


def test_it_stops_at_the_per_worker_quota():
    round_ = make_round(prompts=10, items_per_worker=4)
    session = crowd(round_, "w1")
    assert len(answer_all(session)) == 4
    assert assignment_current(session=session) is None


def test_it_keeps_showing_the_same_item_until_it_is_answered():
    round_ = make_round(prompts=5)
    session = crowd(round_, "w1")
    first = assignment_current(session=session)
    assert assignment_current(session=session).pk == first.pk


def test_it_releases_an_abandoned_item_after_the_lease():
    round_ = make_round(prompts=1, annotators_per_item=1, lease_seconds=60)
    quitter, patient = crowd(round_, "quitter"), crowd(round_, "patient")
    abandoned = assignment_current(session=quitter)
    assert assignment_current(session=patient) is None
    Assignment.objects.filter(pk=abandoned.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    taken_over = assignment_current(session=patient)
    assert taken_over is not None and taken_over.item_id == abandoned.item_id
    abandoned.refresh_from_db()
    assert abandoned.status == Assignment.Status.EXPIRED
    with pytest.raises(SubmissionRefused, match="ran out"):
        annotation_submit(session=quitter, assignment_token=abandoned.token, shown_choice="A")
    annotation_submit(session=patient, assignment_token=taken_over.token, shown_choice="B")
    assert Item.objects.get().completed == 1


def test_it_records_a_replayed_submission_once():
    round_ = make_round(prompts=3)
    session = crowd(round_, "w1")
    assignment = assignment_current(session=session)
    first = annotation_submit(session=session, assignment_token=assignment.token, shown_choice="A")
    again = annotation_submit(session=session, assignment_token=assignment.token, shown_choice="B")
    assert first.pk == again.pk
    assert Annotation.objects.count() == 1
    assert Annotation.objects.get().shown_choice == "A"
    session.refresh_from_db()
    assert session.completed_items == 1


def test_it_refuses_an_answer_for_an_item_assigned_to_someone_else():
    round_ = make_round(prompts=3)
    owner, intruder = crowd(round_, "owner"), crowd(round_, "intruder")
    assignment = assignment_current(session=owner)
    with pytest.raises(SubmissionRefused, match="not assigned to you"):
        annotation_submit(session=intruder, assignment_token=assignment.token, shown_choice="A")
    assert Annotation.objects.count() == 0


@pytest.mark.parametrize(
    ("shown", "candidate_first", "expected"),
    [
        ("A", True, "candidate"),
        ("B", True, "baseline"),
        ("A", False, "baseline"),
        ("B", False, "candidate"),
        ("N", True, "tie"),
        ("N", False, "tie"),
    ],
)
def test_it_records_the_choice_in_model_terms(shown, candidate_first, expected):
    round_ = make_round(prompts=4)
    Item.objects.update(candidate_first=candidate_first)
    session = crowd(round_, "w1")
    assignment = assignment_current(session=session)
    annotation = annotation_submit(
        session=session, assignment_token=assignment.token, shown_choice=shown
    )
    assert annotation.choice == expected
    assert annotation.candidate_first is candidate_first
    assert annotation.seconds_spent is not None and annotation.seconds_spent >= 0


def test_it_lets_authors_annotate_without_taking_crowd_slots():
    round_ = make_round(prompts=3, annotators_per_item=1)
    author = session_start(round_=round_, kind=Annotator.Kind.AUTHOR, name="alice")
    assert len(answer_all(author, "N")) == 3
    assert set(Item.objects.values_list("taken", "completed")) == {(0, 0)}
    assert len(answer_all(crowd(round_, "w1"))) == 3
