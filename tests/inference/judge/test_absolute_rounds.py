"""A judge on an absolute round: the same answers the crowd rates, one call each, its labels
reported beside the people's."""

import pytest

from annotation.models import Annotator, Rating, Round
from annotation.reports.ratings import rating_agreement, rating_rows, rating_tables
from annotation.services.assignment import assignment_current, rating_submit, session_start
from inference.judge.prompts import JudgeInvalid
from inference.models import JudgeCall
from tests.factories import make_round
from tests.support.judging import make_judge, question_number, run_judge
from tests.support.openai_server import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("judge_api_key")]


def absolute_round() -> Round:
    return make_round(prompts=3, kind=Round.Kind.ABSOLUTE, scale=Rating.Scale.FAIL_PASS_EXCELLENT)


def test_a_pairwise_judge_is_refused_on_an_absolute_round(server):
    round_ = absolute_round()
    judge = make_judge(round_, server)
    with pytest.raises(JudgeInvalid, match="rates answers alone"):
        run_judge(round_, judge)
    assert not server.requests


def test_an_absolute_judge_labels_each_rated_answer_once_beside_the_crowd(server):
    round_ = absolute_round()
    labels = {0: "Fail", 1: "Pass", 2: "Excellent"}
    server.responder = lambda request: Reply(f"Label: {labels[question_number(request)]}")
    judge = make_judge(round_, server, mode="fail_pass_excellent", name="gpt-4-labels")
    run = run_judge(round_, judge)
    shown = set(round_.items.values_list("response_id", flat=True))
    assert set(JudgeCall.objects.filter(run=run).values_list("response_id", flat=True)) == shown
    assert len(server.requests) == 6
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w1")
    while (assignment := assignment_current(session=session)) is not None:
        prompt = int(assignment.item.prompt.external_id)
        rating_submit(
            session=session, assignment_token=assignment.token, value=labels[prompt].lower()
        )
        session.refresh_from_db()
    rows = rating_rows(round_.project_id, round_id=round_.pk)
    assert sorted(set(rows["group"])) == ["crowd", "gpt-4-labels"]
    tables = {table.group: table for table in rating_tables(rows)}
    for table in tables.values():
        shares = {row.model: row.shares for row in table.rows}
        assert shares["candidate"] == pytest.approx(
            {"fail": 100 / 3, "pass": 100 / 3, "excellent": 100 / 3}
        )
    across = [cell for cell in rating_agreement(rows) if {cell.a, cell.b} == set(tables)]
    assert len(across) == 1 and across[0].pairs == 6 and across[0].agreement == 100.0
