"""The comprehension check a round may ask before its first item."""

from django.db import transaction

from annotation.models import WorkerSession
from annotation.screening import ATTEMPTS, Question, wrong_answers

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
    if session.screening_status in (PASSED, FAILED):
        return [] if session.screening_status == PASSED else wrong_answers(answers)
    wrong = wrong_answers(answers)
    session.screening_attempts += 1
    if not wrong:
        session.screening_status = PASSED
    elif session.screening_attempts >= ATTEMPTS:
        session.screening_status = FAILED
    session.save(update_fields=["screening_attempts", "screening_status"])
    return wrong
