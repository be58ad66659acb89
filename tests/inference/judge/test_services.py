"""Judges are created per project, each with its own annotator."""

import pytest

from annotation.models import Annotation, Annotator
from annotation.reports.frames import project_battles
from annotation.reports.selectors import round_report
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from annotation.services.judgments import annotations_record_judgments
from inference.judge.services import judge_create
from tests.factories import make_project, make_round

pytestmark = pytest.mark.django_db


def test_two_projects_judges_of_one_name_are_two_annotators():
    first = judge_create(project=make_project("one"), name="gpt-4")
    second = judge_create(project=make_project("two"), name="gpt-4")

    assert first.annotator_id != second.annotator_id
    assert first.annotator.project_id == first.project_id
    assert second.annotator.project_id == second.project_id


def test_a_projects_reports_never_count_another_projects_judge_or_worker_of_the_same_name():
    # Project one's judge and worker always prefer the candidate, project two's the baseline.
    rounds = {
        choice: make_round(prompts=3, project=make_project(name))
        for name, choice in (("one", "candidate"), ("two", "baseline"))
    }
    for choice, round_ in rounds.items():
        judge = judge_create(project=round_.project, name="gpt-4")
        items = list(round_.items.all())
        annotations_record_judgments(
            annotator=judge.annotator,
            judgments=[(item, choice, {item.candidate_first: choice}) for item in items],
        )
        session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w1")
        while (assignment := assignment_current(session=session)) is not None:
            shown = Annotation.shown_for(choice, assignment.item.candidate_first)
            annotation_submit(
                session=session, assignment_token=assignment.token, shown_choice=shown
            )

    assert Annotator.objects.filter(name="gpt-4").count() == 2
    assert Annotator.objects.filter(name="w1").count() == 2
    for choice, round_ in rounds.items():
        groups = round_report(round_, resamples=10).summary()["groups"]
        for group in ("gpt-4", "crowd"):
            outcome = groups[group]["baseline"]
            assert outcome["n"] == 3
            assert outcome["wins" if choice == "candidate" else "losses"] == 3
        battles = project_battles(round_.project_id)
        assert len(battles) == 6
        assert sorted(battles["group"].unique()) == ["crowd", "gpt-4"]


def test_a_judge_never_records_a_verdict_on_another_projects_item():
    judge = judge_create(project=make_project("one"), name="gpt-4")
    item = make_round(prompts=1, project=make_project("two")).items.get()

    with pytest.raises(ValueError, match="another project"):
        annotations_record_judgments(
            annotator=judge.annotator, judgments=[(item, "tie", {True: "tie"})]
        )

    assert not Annotation.objects.exists()
