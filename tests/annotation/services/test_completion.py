"""Completion codes: one per worker, checkable, only for work done."""

import pytest

from annotation.models import Annotator, WorkerSession
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from annotation.services.completion import (
    completion_code_for,
    completion_code_valid,
    completion_redirect,
    session_complete,
)
from tests.factories import make_project, make_round

pytestmark = pytest.mark.django_db


def work_through(round_, name: str, items: int) -> WorkerSession:
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name=name)
    for _ in range(items):
        assignment = assignment_current(session=session)
        assert assignment is not None
        annotation_submit(session=session, assignment_token=assignment.token, shown_choice="A")
    return session


def test_each_worker_gets_their_own_code_and_only_theirs_checks_out():
    round_ = make_round(prompts=4, annotators_per_item=2, items_per_worker=2)
    first, second = work_through(round_, "w1", 2), work_through(round_, "w2", 2)
    codes = session_complete(session=first), session_complete(session=second)
    assert codes[0] and codes[1] and codes[0] != codes[1]
    assert completion_code_valid(round_, "w1", codes[0])
    assert completion_code_valid(round_, "w1", codes[0].lower() + " ")
    assert not completion_code_valid(round_, "w2", codes[0])
    other_round = make_round(prompts=4, project=make_project("other lab"))
    assert completion_code_for(other_round, "w1") != codes[0]


def test_the_code_is_stored_once_with_the_finish_time():
    round_ = make_round(prompts=2, items_per_worker=2)
    session = work_through(round_, "w1", 2)
    code = session_complete(session=session)
    stored = WorkerSession.objects.get(pk=session.pk)
    assert stored.completion_code == code and stored.finished_at is not None
    assert session_complete(session=stored) == code


def test_no_code_for_a_worker_who_answered_nothing_or_for_an_author():
    round_ = make_round(prompts=1, items_per_worker=1)
    work_through(round_, "early", 1)
    late = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="late")
    assert assignment_current(session=late) is None
    assert session_complete(session=late) is None
    author = session_start(round_=round_, kind=Annotator.Kind.AUTHOR, name="ada")
    annotation_submit(
        session=author,
        assignment_token=assignment_current(session=author).token,  # type: ignore[union-attr]
        shown_choice="B",
    )
    assert session_complete(session=author) is None


def test_the_completion_url_carries_the_code():
    round_ = make_round(prompts=1)
    round_.completion_url = "https://app.prolific.com/submissions/complete?cc={code}"
    assert completion_redirect(round_, "AB CD") == (
        "https://app.prolific.com/submissions/complete?cc=AB%20CD"
    )
    round_.completion_url = ""
    assert completion_redirect(round_, "ABCD") == ""
