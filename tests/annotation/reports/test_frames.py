"""The report frames: one group per model judge, people pooled by kind."""

import pytest

from annotation.models import Annotator
from annotation.reports.frames import round_frame
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from annotation.services.judgments import annotations_record_judgments
from tests.factories import make_round

pytestmark = pytest.mark.django_db


def test_a_judge_named_like_a_kind_of_people_is_not_pooled_with_them():
    round_ = make_round(prompts=2)
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w1")
    token = assignment_current(session=session).token
    annotation_submit(session=session, assignment_token=token, shown_choice="A")
    judge = Annotator.objects.create(project=round_.project, kind="judge", name="crowd")
    annotations_record_judgments(
        annotator=judge,
        judgments=[(item, "tie", {True: "tie"}) for item in round_.items.all()],
    )
    groups = round_frame(round_.pk)["group"].astype(str).value_counts().to_dict()
    assert groups == {"crowd": 1, "crowd (judge)": 2}
