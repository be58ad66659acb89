"""Absolute rounds (LIMA §4.3): each answer of each model rated alone, through the crowd path."""

from collections import Counter

import pytest
from django.db import IntegrityError, connection, transaction

from annotation.models import Annotation, Annotator, Assignment, Item, Rating, Round, WorkerSession
from annotation.reports.ratings import rating_rows
from annotation.selectors import round_worker_checks
from annotation.services.assignment import (
    SubmissionRefused,
    annotation_submit,
    answer_and_next,
    assignment_current,
    rating_submit,
    session_start,
)
from annotation.services.quality import (
    GoldAnswer,
    QualityInvalid,
    items_mark_gold,
    round_add_attention_checks,
    round_set_quality,
    worker_block_if_due,
    worker_exclude,
)
from annotation.services.rounds import RoundInvalid, round_create
from tests.factories import make_model_with_responses, make_project, make_prompt_set, make_round

pytestmark = pytest.mark.django_db

FPE = Rating.Scale.FAIL_PASS_EXCELLENT


def absolute_round(**settings) -> Round:
    settings.setdefault("baselines", ("alpaca", "davinci"))
    settings.setdefault("scale", FPE)
    return make_round(kind=Round.Kind.ABSOLUTE, prompts=4, **settings)


def worker(round_: Round, name: str) -> WorkerSession:
    return session_start(round_=round_, kind=Annotator.Kind.CROWD, name=name)


def rate_everything(session: WorkerSession, value: str) -> int:
    rated = 0
    while (assignment := assignment_current(session=session)) is not None:
        rating_submit(session=session, assignment_token=assignment.token, value=value)
        session.refresh_from_db()
        rated += 1
    return rated


def test_it_makes_one_item_for_each_answer_of_every_model_of_the_round():
    round_ = absolute_round()
    items = list(round_.items.select_related("response__model"))
    assert len(items) == 4 * 3
    assert Counter(item.response.model.name for item in items) == {
        "candidate": 4,
        "alpaca": 4,
        "davinci": 4,
    }
    assert len({item.response_id for item in items}) == 12
    assert all(
        item.baseline_id is None
        and item.candidate_response_id is None
        and item.baseline_response_id is None
        for item in items
    )
    # Drawn from the seed: not every model's answers to one prompt in a row.
    by_position = [item.prompt_id for item in sorted(items, key=lambda item: item.position)]
    assert by_position != sorted(by_position)


def test_it_rates_a_single_model_without_baselines():
    project = make_project()
    prompt_set = make_prompt_set(project, 3)
    lima = make_model_with_responses(project, prompt_set, "lima")
    round_ = round_create(
        project=project, prompt_set=prompt_set, candidate=lima, kind="absolute", scale=FPE
    )
    assert round_.items.count() == 3
    assert round_.name == "lima: Fail / Pass / Excellent"


def test_it_refuses_a_round_whose_kind_and_scale_do_not_go_together():
    project = make_project()
    prompt_set = make_prompt_set(project, 2)
    lima = make_model_with_responses(project, prompt_set, "lima")
    alpaca = make_model_with_responses(project, prompt_set, "alpaca")
    common = {"project": project, "prompt_set": prompt_set, "candidate": lima}
    with pytest.raises(RoundInvalid, match="needs a scale"):
        round_create(**common, kind="absolute")
    with pytest.raises(RoundInvalid, match="pairwise round has no scale"):
        round_create(**common, baselines=[alpaca], scale=FPE)
    with pytest.raises(RoundInvalid, match="not marked sensitive"):
        round_create(**common, kind="absolute", scale=Rating.Scale.SAFETY)
    with pytest.raises(RoundInvalid, match="Unknown round kind"):
        round_create(**common, baselines=[alpaca], kind="ranking")
    assert not Round.objects.exists()
    prompt_set.sensitive = True
    prompt_set.save()
    assert round_create(**common, kind="absolute", scale=Rating.Scale.SAFETY).items.count() == 2


def test_the_database_holds_each_item_to_one_shape():
    pairwise = make_round(prompts=1)
    item = pairwise.items.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(response=item.candidate_response)
    rated = absolute_round(project=make_project("other")).items.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=rated.pk).update(candidate_first=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Round.objects.filter(pk=pairwise.pk).update(scale=FPE)


def test_a_worker_rates_their_item_once_and_a_replay_records_nothing_new():
    round_ = absolute_round()
    session = worker(round_, "w1")
    assignment = assignment_current(session=session)
    first = rating_submit(session=session, assignment_token=assignment.token, value="excellent")
    again = rating_submit(session=session, assignment_token=assignment.token, value="fail")
    assert again.pk == first.pk
    stored = Rating.objects.get()
    item = Item.objects.select_related("response", "prompt").get(pk=assignment.item_id)
    assert (stored.label, stored.score, stored.scale) == ("excellent", None, FPE)
    assert stored.response_id == item.response_id
    assert stored.model_id == item.response.model_id
    assert stored.question == item.prompt.external_id
    assert stored.item_id == item.pk and stored.assignment_id == assignment.pk
    assert stored.seconds_spent is not None and stored.seconds_spent >= 0
    item.refresh_from_db()
    assert (item.taken, item.completed) == (1, 1)
    session.refresh_from_db()
    assert session.completed_items == 1
    assert not Annotation.objects.exists()


def test_a_value_off_the_scale_or_a_choice_of_two_answers_is_refused_and_changes_nothing():
    round_ = absolute_round()
    session = worker(round_, "w1")
    assignment = assignment_current(session=session)
    with pytest.raises(SubmissionRefused, match="Fail, Pass, Excellent"):
        rating_submit(session=session, assignment_token=assignment.token, value="great")
    with pytest.raises(SubmissionRefused, match="choose a rating"):
        annotation_submit(session=session, assignment_token=assignment.token, shown_choice="A")
    assert not Rating.objects.exists() and not Annotation.objects.exists()
    assert Assignment.objects.get().status == Assignment.Status.LEASED
    pairwise = make_round(project=make_project("pairs"), prompts=1)
    other = worker(pairwise, "w1")
    leased = assignment_current(session=other)
    with pytest.raises(SubmissionRefused, match="compare two answers"):
        rating_submit(session=other, assignment_token=leased.token, value="pass")


def test_helpfulness_is_stored_as_a_score():
    round_ = absolute_round(scale=Rating.Scale.HELPFULNESS_1_6)
    session = worker(round_, "w1")
    assignment = assignment_current(session=session)
    with pytest.raises(SubmissionRefused, match="Not helpful at all"):
        rating_submit(session=session, assignment_token=assignment.token, value="7")
    rating_submit(session=session, assignment_token=assignment.token, value="5")
    assert Rating.objects.values_list("label", "score").get() == ("", 5.0)


def test_k_workers_rate_every_answer_and_no_item_gets_more_than_k():
    round_ = absolute_round(annotators_per_item=2, items_per_worker=100)
    rated = [rate_everything(worker(round_, f"w{i}"), "pass") for i in range(3)]
    # 12 items x 2 slots, first come first served: the third worker finds what is left.
    assert rated == [12, 12, 0]
    per_item = Counter(Rating.objects.values_list("item_id", flat=True))
    assert set(per_item.values()) == {2} and len(per_item) == 12
    by_worker = Counter(Rating.objects.values_list("item_id", "annotator_id"))
    assert set(by_worker.values()) == {1}


def test_every_worker_rates_the_shared_set():
    round_ = absolute_round(shared_items=3, items_per_worker=3, annotators_per_item=1)
    shared = set(round_.items.filter(is_shared=True).values_list("pk", flat=True))
    assert len(shared) == 3
    for name in ("w1", "w2"):
        rate_everything(worker(round_, name), "pass")
    for name in ("w1", "w2"):
        items = set(Rating.objects.filter(annotator__name=name).values_list("item_id", flat=True))
        assert items == shared


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL function")
def test_the_one_call_answer_leaves_an_absolute_round_to_the_general_path():
    round_ = absolute_round()
    session = worker(round_, "w1")
    assignment = assignment_current(session=session)
    assert (
        answer_and_next(
            session_token=session.token, assignment_token=assignment.token, shown_choice="A"
        )
        is None
    )
    assert not Annotation.objects.exists() and not Rating.objects.exists()
    assert Assignment.objects.get().status == Assignment.Status.LEASED


def test_an_excluded_worker_gives_their_items_back():
    round_ = absolute_round(annotators_per_item=1)
    session = worker(round_, "w1")
    assert rate_everything(session, "fail") == 12
    worker_exclude(session=session, reason="clicked without reading")
    assert set(round_.items.values_list("taken", "completed")) == {(0, 0)}
    assert rate_everything(worker(round_, "w2"), "pass") == 12


def test_the_comprehension_check_made_for_comparisons_is_refused():
    round_ = absolute_round()
    with pytest.raises(QualityInvalid, match="comprehension check"):
        round_set_quality(round_=round_, screening=True)
    round_.refresh_from_db()
    assert round_.screening is False


def test_attention_checks_ask_for_a_rating_and_a_worker_who_ignores_them_is_blocked():
    round_ = absolute_round(items_per_worker=100)
    assert round_add_attention_checks(round_=round_, count=2) == 2
    checks = list(round_.items.filter(check_kind="attention").select_related("response"))
    assert {item.check_answer for item in checks} == {"fail"}
    assert all("please rate this answer Fail" in item.response.text for item in checks)
    round_set_quality(round_=round_, check_rate=0.5, block_after_failed_checks=2)
    session = worker(round_, "w1")
    while (assignment := assignment_current(session=session)) is not None:
        rating_submit(session=session, assignment_token=assignment.token, value="pass")
        worker_block_if_due(session=session, answered=assignment.item)
        session.refresh_from_db()
    assert session.blocked_at is not None and session.excluded_at is not None
    tested = round_worker_checks(round_)[session.pk]
    assert (tested.attention_seen, tested.attention_failed) == (2, 2)
    # The blocked worker's ratings, and the check items', never reach the report.
    assert rating_rows(round_.project_id, round_id=round_.pk).empty
    assert rating_rows(round_.project_id).empty


def test_gold_ratings_mark_answers_and_give_each_worker_an_accuracy():
    round_ = absolute_round(items_per_worker=100)
    with pytest.raises(QualityInvalid, match="'answer' must be one of fail, pass, excellent"):
        items_mark_gold(round_=round_, answers=[GoldAnswer(1, "0", "great", "alpaca")])
    with pytest.raises(QualityInvalid, match="give 'model'"):
        items_mark_gold(round_=round_, answers=[GoldAnswer(1, "0", "fail")])
    marked = [GoldAnswer(1, "0", "excellent", "alpaca"), GoldAnswer(2, "1", "fail", "candidate")]
    assert items_mark_gold(round_=round_, answers=marked) == 2
    round_set_quality(round_=round_, check_rate=0.5)
    session = worker(round_, "w1")
    rate_everything(session, "excellent")
    tested = round_worker_checks(round_)[session.pk]
    assert (tested.gold_seen, tested.gold_correct) == (2, 1)
    report = rating_rows(round_.project_id, round_id=round_.pk)
    assert len(report) == 12 - 2


def test_the_rounds_ratings_leave_out_excluded_workers_and_other_rounds():
    round_ = absolute_round(annotators_per_item=2)
    kept, dropped = worker(round_, "kept"), worker(round_, "dropped")
    rate_everything(kept, "pass")
    rate_everything(dropped, "fail")
    worker_exclude(session=dropped, reason="too fast")
    # The same answers rated in another round of the project count there, not here.
    again = round_create(
        project=round_.project,
        prompt_set=round_.prompt_set,
        candidate=round_.candidate,
        baselines=list(round_.baselines.all()),
        kind=Round.Kind.ABSOLUTE,
        scale=FPE,
        shared_items=0,
    )
    rate_everything(worker(again, "kept"), "excellent")
    rows = rating_rows(round_.project_id, round_id=round_.pk)
    assert len(rows) == 12 and set(rows["label"]) == {"pass"}
    assert set(rating_rows(round_.project_id, round_id=again.pk)["label"]) == {"excellent"}
    # The project's ratings leave the excluded worker out too.
    assert set(rating_rows(round_.project_id)["label"]) == {"pass", "excellent"}
