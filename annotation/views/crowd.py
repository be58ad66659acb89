"""The crowd worker's pages: instructions, one item at a time, completion code.

Nothing rendered here may reveal which model wrote a response: the page knows responses
only as Answer A and Answer B, and items only through the assignment's random token.
"""

import math
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from annotation import ratelimits, selectors
from annotation.http import HtmxRequest
from annotation.models import Assignment, Item, Round, WorkerSession
from annotation.scales import CROWD_SCALES
from annotation.screening import ATTEMPTS, QUESTIONS
from annotation.screening import PRACTICE as PRACTICE_ITEMS
from annotation.services import assignment as crowd
from annotation.services.completion import completion_redirect, session_complete
from annotation.services.display import item_texts_shown
from annotation.services.quality import worker_block_if_due
from annotation.services.screening import (
    FAILED,
    PRACTICE,
    practice_finish,
    screening_required,
    screening_submit,
)

WORKER_ID_PARAMETERS = ("PROLIFIC_PID", "worker_id", "workerId")
BROWSER_COOKIE_SALT = "evalplatform.crowd-browser"
BROWSER_COOKIE_DAYS = 60
# Worker sessions of one round whose keys a browser keeps (a lab computer, a researcher trying
# several ids); the least recently started beyond that can no longer be resumed there.
BROWSER_KEYS_KEPT = 20
LEGACY_SESSION_ID = -1


def _browser_cookie(round_: Round) -> str:
    return f"crowd_browser_{round_.pk}"


def _browser_keys(request: HtmxRequest, round_: Round) -> dict[int, str]:
    """The keys of the round's sessions this browser started, by session id, oldest first."""
    value = request.COOKIES.get(_browser_cookie(round_), "")
    try:
        keys = signing.loads(
            value, salt=BROWSER_COOKIE_SALT, max_age=timedelta(days=BROWSER_COOKIE_DAYS)
        )
    except signing.BadSignature:
        # None yet, expired, tampered with, or the one bare key of the version before: that
        # one still opens its session (its id unknown, so under -1), and is then stored by it.
        legacy = request.get_signed_cookie(
            _browser_cookie(round_), None, salt=BROWSER_COOKIE_SALT,
            max_age=timedelta(days=BROWSER_COOKIE_DAYS),
        )  # fmt: skip
        return {LEGACY_SESSION_ID: legacy} if legacy else {}
    return {int(session_id): key for session_id, key in keys.items()}


def _browser_keys_set(
    response: HttpResponse, round_: Round, keys: dict[int, str], *, session_id: int, key: str
) -> None:
    """Store the keys with this session's as the most recent, keeping the newest ones only."""
    keys.pop(session_id, None)
    keys[session_id] = key
    kept = dict(list(keys.items())[-BROWSER_KEYS_KEPT:])
    response.set_cookie(
        _browser_cookie(round_),
        signing.dumps(kept, salt=BROWSER_COOKIE_SALT),
        max_age=timedelta(days=BROWSER_COOKIE_DAYS),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


@require_http_methods(["GET", "POST"])
def crowd_landing(request: HtmxRequest, crowd_token: str) -> HttpResponse:
    round_ = get_object_or_404(Round, crowd_token=crowd_token)
    error, status, retry_after = "", 200, 0
    if request.method == "POST":
        if limited := ratelimits.crowd_start_limited(request, round_.pk):
            return limited_page(request, limited, again_url=request.path)
        keys = _browser_keys(request, round_)
        try:
            start = crowd.crowd_session_start(
                round_=round_, name=request.POST.get("worker_id", ""), browser_keys=keys
            )
        except crowd.RoundFull as full:
            error, status, retry_after = str(full), 503, full.retry_after
        except crowd.SubmissionRefused as refusal:
            error, status = str(refusal), 400
        else:
            response = redirect("crowd-work", session_token=start.session.token)
            session_id = start.session.pk
            # A resumed session was let in with its key, so the browser holds it already.
            key = start.new_browser_key or keys.get(session_id) or keys.pop(LEGACY_SESSION_ID)
            _browser_keys_set(response, round_, keys, session_id=session_id, key=key)
            return response
    worker_id = next(
        (request.GET[p] for p in WORKER_ID_PARAMETERS if request.GET.get(p)),
        request.POST.get("worker_id", ""),
    )
    page = render(
        request,
        "crowd/landing.html",
        {
            "crowd_token": crowd_token,
            "worker_id": worker_id,
            "error": error,
            "scale": CROWD_SCALES.get(round_.scale),
        },
        status=status,
    )
    if retry_after:
        page["Retry-After"] = str(retry_after)
    return page


def limited_page(
    request: HttpRequest, limited: ratelimits.Limited, *, again_url: str
) -> HttpResponse:
    """429 with the limit's message; the htmx page shows it above the item it keeps."""
    context = {
        "reason": limited.reason,
        "seconds": limited.retry_after,
        "minutes": math.ceil(limited.retry_after / 60),
        "again_url": again_url,
    }
    response = render(request, "crowd/limited.html", context, status=429)
    response["Retry-After"] = str(limited.retry_after)
    response["Cache-Control"] = "no-store"
    return response


def _session_or_404(session_token: str) -> WorkerSession:
    session = selectors.session_by_token(session_token)
    if session is None:
        raise Http404("No such worker link.")
    return session


def _task_context(session: WorkerSession, assignment: Assignment | None, error: str = "") -> dict:
    item_count = selectors.round_item_count(session.round)
    total = min(session.round.items_per_worker, item_count)
    context = {
        "session": session,
        "session_token": session.token,
        "error": error,
        "done": session.completed_items,
        "total": max(total, session.completed_items),
        # An absolute round's scale: its items show one answer, rated on it.
        "scale": CROWD_SCALES.get(session.round.scale),
    }
    if session.blocked_at is not None:
        context["blocked"] = True
        context["return_url"] = session.round.return_url
        return context
    if assignment is None:
        quota_left = session.completed_items < session.round.items_per_worker
        if quota_left and selectors.round_awaits_items(session.round, item_count):
            context["waiting"] = True
        elif code := session_complete(session=session):
            context["completion_code"] = code
            context["completion_url"] = completion_redirect(session.round, code)
        return context
    item = selectors.item_for_display(assignment.item_id)
    prompt_html, answer_a_html, answer_b_html = item_texts_shown(item, session.round.text_format)
    context.update(
        {
            "assignment_token": assignment.token,
            "position": session.completed_items + 1,
            "prompt_html": prompt_html,
            "answer_a_html": answer_a_html,
            "answer_b_html": answer_b_html,
        }
    )
    return context


def _next_item_context(session_token: str, step: crowd.NextItem) -> dict:
    return {
        "session_token": session_token,
        "assignment_token": step.assignment_token,
        "done": step.completed_items,
        "total": step.total,
        "position": step.completed_items + 1,
        "prompt_html": step.prompt_html,
        "answer_a_html": step.answer_a_html,
        "answer_b_html": step.answer_b_html,
    }


def _render_task(request: HtmxRequest, context: dict, status: int = 200) -> HttpResponse:
    template = "crowd/_task.html" if request.htmx else "crowd/work.html"
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET"])
def crowd_work(request: HtmxRequest, session_token: str) -> HttpResponse:
    session = _session_or_404(session_token)
    if screening_required(session):
        return _screening_gate(request, session)
    assignment = crowd.assignment_current(session=session)
    return _render_task(request, _task_context(session, assignment))


def _screening_gate(request: HtmxRequest, session: WorkerSession) -> HttpResponse:
    step = "crowd-practice" if session.screening_status == PRACTICE else "crowd-screening"
    url = reverse(step, args=[session.token])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@require_http_methods(["GET", "POST"])
def crowd_screening(request: HtmxRequest, session_token: str) -> HttpResponse:
    """The comprehension check: the instructions' key points, with a second attempt."""
    session = _session_or_404(session_token)
    if not screening_required(session) or session.screening_status == PRACTICE:
        return redirect("crowd-work", session_token=session.token)
    wrong: list = []
    if request.method == "POST" and session.screening_status != FAILED:
        answers = {question.key: request.POST.get(question.key, "") for question in QUESTIONS}
        wrong = screening_submit(session=session, answers=answers)
        session.refresh_from_db()
        if not wrong:
            return redirect("crowd-practice", session_token=session.token)
    context = {
        "session": session,
        "questions": QUESTIONS,
        "wrong": {question.key for question in wrong},
        "feedback": wrong,
        "failed": session.screening_status == FAILED,
        "attempts_left": max(0, ATTEMPTS - session.screening_attempts),
        "return_url": session.round.return_url,
    }
    response = render(request, "crowd/screening.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def crowd_practice(request: HtmxRequest, session_token: str) -> HttpResponse:
    """Practice items after the questions: answered with feedback, never recorded."""
    session = _session_or_404(session_token)
    if session.screening_status != PRACTICE:
        return redirect("crowd-work", session_token=session.token)
    if request.POST.get("finish"):
        practice_finish(session=session)
        return redirect("crowd-work", session_token=session.token)
    try:
        number = int(request.POST.get("number") or request.GET.get("number") or 0)
        practice = PRACTICE_ITEMS[number]
    except (ValueError, IndexError):
        number, practice = 0, PRACTICE_ITEMS[0]
    chosen = request.POST.get("choice", "") if request.method == "POST" else ""
    context = {
        "session": session,
        "practice": practice,
        "number": number,
        "count": len(PRACTICE_ITEMS),
        "chosen": chosen,
        "right": chosen == practice.expected,
        "last": number == len(PRACTICE_ITEMS) - 1,
    }
    response = render(request, "crowd/practice.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def crowd_answer(request: HtmxRequest, session_token: str) -> HttpResponse:
    if limited := ratelimits.crowd_answer_limited(request):
        return limited_page(request, limited, again_url=reverse("crowd-work", args=[session_token]))
    if request.htmx and settings.CROWD_FAST_PATH:
        step = crowd.answer_and_next(
            session_token=session_token,
            assignment_token=request.POST.get("assignment", ""),
            shown_choice=request.POST.get("choice", ""),
        )
        if step is not None:
            return _render_task(request, _next_item_context(session_token, step))
    session = _session_or_404(session_token)
    if screening_required(session):
        return _screening_gate(request, session)
    try:
        answered = _answer_record(request, session)
    except crowd.SubmissionRefused as refusal:
        assignment = crowd.assignment_current(session=session)
        # htmx swaps only 2xx responses; a plain form post gets the honest status code.
        status = 200 if request.htmx else 409
        return _render_task(request, _task_context(session, assignment, str(refusal)), status)
    if worker_block_if_due(session=session, answered=answered):
        session.refresh_from_db()
    assignment = crowd.assignment_current(session=session)
    context = _task_context(session, assignment)
    if context.get("completion_url"):
        # Finished: straight on to the study's completion page, code included.
        if request.htmx:
            return HttpResponseClientRedirect(context["completion_url"])
        return redirect(context["completion_url"])
    if not request.htmx:
        return redirect("crowd-work", session_token=session.token)
    return _render_task(request, context)


def _answer_record(request: HtmxRequest, session: WorkerSession) -> Item:
    """Record the posted answer: a choice between two answers, or an absolute round's rating;
    returns the item answered."""
    assignment_token = request.POST.get("assignment", "")
    if session.round.is_absolute:
        rating = crowd.rating_submit(
            session=session, assignment_token=assignment_token, value=request.POST.get("rating", "")
        )
        assert rating.item is not None  # Given by rating_submit.
        return rating.item
    annotation = crowd.annotation_submit(
        session=session,
        assignment_token=assignment_token,
        shown_choice=request.POST.get("choice", ""),
    )
    return annotation.item
