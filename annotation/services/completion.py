"""Completion codes: one per worker, verifiable, issued only for work done."""

import base64
import hashlib
import hmac
from urllib.parse import quote

from django.db.models import Q
from django.utils import timezone

from annotation.models import Annotator, Round, WorkerSession
from annotation.selectors import WorkerChecks, round_worker_checks
from annotation.services.quality import rule_violations, worker_exclude

CODE_LENGTH = 10


def completion_code_for(round_: Round, worker_id: str) -> str:
    """The code a worker of this round gets: an HMAC of their id under the round's secret, so
    the researcher (or this function) can check any code a worker hands in."""
    return signed_code(round_.completion_secret, f"{round_.pk}:{worker_id}")


def signed_code(secret: str, message: str) -> str:
    """A short code only the holder of the secret can make for this message (HMAC-SHA256,
    base32): what a worker hands in and the study checks."""
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:CODE_LENGTH]


def completion_code_valid(round_: Round, worker_id: str, code: str) -> bool:
    expected = completion_code_for(round_, worker_id)
    return hmac.compare_digest(expected, code.strip().upper())


def session_complete(*, session: WorkerSession) -> str | None:
    """Issue the worker's code once they have answered their quota or every item open to them.

    The caller has found no next item for the session. A crowd worker who answered nothing
    gets no code, and neither does an author (they are not paid through the study).
    """
    if session.annotator.kind != Annotator.Kind.CROWD or session.completed_items == 0:
        return None
    if session.completion_code:
        return session.completion_code
    code = completion_code_for(session.round, session.annotator.name)
    WorkerSession.objects.filter(pk=session.pk).filter(
        Q(finished_at__isnull=True) | Q(completion_code="")
    ).update(completion_code=code, finished_at=session.finished_at or timezone.now())
    session.completion_code = code
    # The code is theirs either way (the study decides on payment from the export); the
    # round's rules decide whether their answers count.
    checks = round_worker_checks(session.round, session_pk=session.pk)
    reasons = rule_violations(session.round, checks.get(session.pk, WorkerChecks()))
    if reasons and session.excluded_at is None:
        worker_exclude(session=session, reason="rules: " + "; ".join(reasons))
    return code


def completion_redirect(round_: Round, code: str) -> str:
    """The study's completion URL for this worker, or "" when the round has none."""
    return completion_url_with_code(round_.completion_url, code)


def completion_url_with_code(url: str, code: str) -> str:
    """A completion URL with {code} in it replaced by the worker's code ("" stays "")."""
    return url.replace("{code}", quote(code, safe=""))
