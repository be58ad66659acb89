"""The comprehension check a round may ask before its first item."""

from django.db import transaction

from annotation.models import WorkerSession
from annotation.screening import ATTEMPTS, Question, wrong_answers

PRACTICE = "practice"  # The questions are passed; the practice items come next.
PASSED = "passed"
FAILED = "failed"


def screening_required(session: WorkerSession) -> bool:
    return session.round.screening and session.screening_status != PASSED


@transaction.atomic
def screening_submit(*, session: WorkerSession, answers: dict[str, str]) -> list[Question]:
    """Grade an attempt; returns the questions answered wrongly ([] when passed).

    A second wrong attempt fails the worker for good: they are counted as screened out.
    """
    session = WorkerSession.objects.select_for_update().get(pk=session.pk)
    if session.screening_status in (PRACTICE, PASSED, FAILED):
        return wrong_answers(answers) if session.screening_status == FAILED else []
    wrong = wrong_answers(answers)
    session.screening_attempts += 1
    if not wrong:
        session.screening_status = PRACTICE
    elif session.screening_attempts >= ATTEMPTS:
        session.screening_status = FAILED
    session.save(update_fields=["screening_attempts", "screening_status"])
    return wrong


def practice_finish(*, session: WorkerSession) -> None:
    """The worker has seen the practice items and their feedback: the study begins."""
    WorkerSession.objects.filter(pk=session.pk, screening_status=PRACTICE).update(
        screening_status=PASSED
    )
