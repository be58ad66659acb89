"""Quality control: gold items and attention checks mixed in, workers excluded with reasons."""

import pytest

from annotation.models import Annotation, Annotator, Item, WorkerSession
from annotation.reports.selectors import round_report
from annotation.selectors import round_progress, round_worker_checks, round_workers
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from annotation.services.completion import session_complete
from annotation.services.quality import (
    ATTENTION_TEXT,
    GoldAnswer,
    QualityInvalid,
    items_mark_gold,
    round_add_attention_checks,
    round_apply_quality_rules,
    round_set_quality,
    worker_exclude,
    worker_reinstate,
)
from tests.factories import make_round

pytestmark = pytest.mark.django_db


def answer_all(session, choose=lambda item, assignment: "A", limit=100) -> list[Item]:
    seen = []
    for _ in range(limit):
        assignment = assignment_current(session=session)
        if assignment is None:
            break
        item = Item.objects.get(pk=assignment.item_id)
        seen.append(item)
        annotation_submit(
            session=session,
            assignment_token=assignment.token,
            shown_choice=choose(item, assignment),
        )
    return seen


def shown_for(item: Item, model_choice: str) -> str:
    """The letter a worker clicks to give `model_choice` on this item."""
    if model_choice == "tie":
        return "N"
    candidate_letter = "A" if item.candidate_first else "B"
    return candidate_letter if model_choice == "candidate" else "AB".replace(candidate_letter, "")


def test_gold_answers_mark_the_named_items_and_a_bad_file_changes_nothing():
    round_ = make_round(prompts=6, shared_items=1, seed=3)
    shared = round_.items.get(is_shared=True).prompt.external_id
    ordinary = [i.prompt.external_id for i in round_.items.filter(is_shared=False)]
    with pytest.raises(QualityInvalid) as refused:
        items_mark_gold(
            round_=round_,
            answers=[
                GoldAnswer(1, ordinary[0], "candidate"),
                GoldAnswer(2, "no-such-prompt", "tie"),
                GoldAnswer(3, shared, "baseline"),
                GoldAnswer(4, ordinary[1], "maybe"),
            ],
            source="gold.jsonl",
        )
    message = str(refused.value)
    assert "gold.jsonl, line 2: no comparison of prompt 'no-such-prompt'" in message
    assert "line 3" in message and "shared set" in message
    assert "line 4: 'answer' must be candidate, baseline or tie" in message
    assert not round_.items.exclude(check_kind="").exists()

    marked = items_mark_gold(
        round_=round_,
        answers=[GoldAnswer(1, ordinary[0], "candidate"), GoldAnswer(2, ordinary[1], "tie")],
    )
    assert marked == 2
    assert sorted(
        round_.items.filter(check_kind="gold").values_list("check_answer", flat=True)
    ) == [
        "candidate",
        "tie",
    ]


def test_attention_checks_ask_to_be_chosen_and_stay_out_of_progress_and_results():
    round_ = make_round(prompts=6, annotators_per_item=1, items_per_worker=20)
    before = round_progress(round_)
    assert round_add_attention_checks(round_=round_, count=3) == 3
    checks = round_.items.filter(check_kind="attention").select_related("baseline_response")
    assert checks.count() == 3
    assert all(c.baseline_response.text == ATTENTION_TEXT for c in checks)
    assert all(c.check_answer == "baseline" for c in checks)
    assert round_progress(round_) == before
    with pytest.raises(QualityInvalid, match="only 3 prompts of the round have none yet"):
        round_add_attention_checks(round_=round_, count=4)

    round_set_quality(round_=round_, check_rate=0.5)
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w1")
    answer_all(session)  # Every item, checks included: nothing is capped for them.
    assert session.completed_items == 9
    report = round_report(round_, resamples=10)
    assert len(report.frame) == 6  # The three checks are left out.


def test_checks_are_mixed_into_each_workers_items_at_the_rate():
    round_ = make_round(prompts=20, annotators_per_item=3, items_per_worker=10, seed=5)
    ids = [i.prompt.external_id for i in round_.items.order_by("position")[:4]]
    items_mark_gold(
        round_=round_, answers=[GoldAnswer(n, p, "candidate") for n, p in enumerate(ids)]
    )
    round_set_quality(round_=round_, check_rate=0.2)
    orders = []
    for name in ("w1", "w2"):
        session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name=name)
        seen = answer_all(session)
        assert len(seen) == 10
        assert sum(1 for item in seen if item.check_kind == "gold") == 2
        orders.append([item.pk for item in seen if item.check_kind])
    assert all(len(set(order)) == len(order) for order in orders)


def test_gold_and_attention_results_and_answers_too_fast_are_counted_per_worker():
    round_ = make_round(prompts=8, annotators_per_item=1, items_per_worker=20, seed=11)
    ids = [i.prompt.external_id for i in round_.items.order_by("position")[:2]]
    items_mark_gold(
        round_=round_,
        answers=[GoldAnswer(1, ids[0], "candidate"), GoldAnswer(2, ids[1], "baseline")],
    )
    round_add_attention_checks(round_=round_, count=2)
    round_set_quality(round_=round_, check_rate=0.5)

    def careless(item, assignment):
        return "A"  # Always the first answer: right on some checks by chance only.

    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w1")
    seen = answer_all(session, careless)
    checks = round_worker_checks(round_)[session.pk]
    expected_gold = sum(
        shown_for(item, item.check_answer) == "A" for item in seen if item.check_kind == "gold"
    )
    expected_failed = sum(
        shown_for(item, item.check_answer) != "A" for item in seen if item.check_kind == "attention"
    )
    assert (checks.gold_seen, checks.gold_correct) == (2, expected_gold)
    assert (checks.attention_seen, checks.attention_failed) == (2, expected_failed)
    assert checks.answered == 10 and checks.too_fast == 10  # Answered in milliseconds.
    Annotation.objects.update(seconds_spent=600)
    assert round_worker_checks(round_)[session.pk].too_fast == 0


def test_an_excluded_worker_is_left_out_of_results_and_their_items_open_again():
    round_ = make_round(prompts=3, annotators_per_item=1, items_per_worker=3)
    first = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="first")
    answer_all(first)
    late = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="late")
    assert assignment_current(session=late) is None  # Full.

    worker_exclude(session=first, reason="clicked A on everything")
    assert list(round_.items.values_list("completed", "taken")) == [(0, 0)] * 3
    assert round_report(round_, resamples=10).frame.empty
    assert len(round_report(round_, resamples=10, include_excluded=True).frame) == 3
    assert len(answer_all(late)) == 3  # The round reaches K again.

    worker_reinstate(session=first)
    assert list(round_.items.values_list("completed", flat=True)) == [2, 2, 2]
    assert len(round_report(round_, resamples=10).frame) == 6
    with pytest.raises(QualityInvalid, match="Say why"):
        worker_exclude(session=first, reason="  ")


def test_the_rules_exclude_a_worker_when_they_finish_and_they_keep_their_code():
    round_ = make_round(prompts=6, annotators_per_item=2, items_per_worker=8, seed=2)
    round_add_attention_checks(round_=round_, count=2)
    round_set_quality(round_=round_, check_rate=0.25, exclude_failed_checks_at_least=1)

    def fails_checks(item, assignment):
        wrong = "candidate" if item.check_kind == "attention" else "tie"
        return shown_for(item, wrong)

    def passes_checks(item, assignment):
        return shown_for(item, item.check_answer or "tie")

    careless = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="careless")
    answer_all(careless, fails_checks)
    careful = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="careful")
    answer_all(careful, passes_checks)
    assert session_complete(session=careless) and session_complete(session=careful)
    sessions = {s.annotator.name: s for s in WorkerSession.objects.select_related("annotator")}
    assert sessions["careless"].excluded_reason.startswith("rules: 2 failed attention checks")
    assert sessions["careful"].excluded_at is None
    assert round_apply_quality_rules(round_=round_) == []  # Already applied.


def test_quality_settings_are_checked():
    round_ = make_round(prompts=2)
    with pytest.raises(QualityInvalid, match=r"from 0 to 0\.5"):
        round_set_quality(round_=round_, check_rate=0.9)
    with pytest.raises(QualityInvalid, match="Unknown quality settings: speed"):
        round_set_quality(round_=round_, speed=3)
    with pytest.raises(QualityInvalid, match="share from 0 to 1"):
        round_set_quality(round_=round_, exclude_gold_accuracy_below=70)


def test_the_workers_list_ranks_a_contrary_worker_below_those_who_agree():
    round_ = make_round(prompts=12, annotators_per_item=5, items_per_worker=12, seed=9)

    def agrees(item, assignment):
        return shown_for(item, "candidate")

    def contrary(item, assignment):
        return shown_for(item, "baseline")

    for name in ("a", "b", "c", "d"):
        answer_all(session_start(round_=round_, kind=Annotator.Kind.CROWD, name=name), agrees)
    answer_all(session_start(round_=round_, kind=Annotator.Kind.CROWD, name="odd"), contrary)
    rows = {row.worker_id: row for row in round_workers(round_)}
    assert rows["odd"].agreement_with_crowd == 0.0 and rows["a"].agreement_with_crowd == 0.75
    assert rows["odd"].competence is not None and rows["a"].competence is not None
    assert rows["odd"].competence < 0.2 < 0.9 < rows["a"].competence
