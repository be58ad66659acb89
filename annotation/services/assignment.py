"""The crowd path: sessions, leased assignments, submissions."""

import hashlib
import logging
import random
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from annotation.models import (
    Annotation,
    Annotator,
    Assignment,
    Item,
    Rating,
    Round,
    WorkerSession,
)
from annotation.rendering import RENDERER_VERSION
from annotation.scales import CROWD_SCALES
from annotation.selectors import item_for_display, round_item_count_recent
from annotation.services.display import item_texts_shown
from annotation.services.screening import FAILED

logger = logging.getLogger(__name__)


class SubmissionRefused(Exception):
    """A crowd submission that must not be recorded; the message is shown to the worker."""


@transaction.atomic
def session_start(
    *, round_: Round, kind: str, name: str, user: User | None = None
) -> WorkerSession:
    """An author's session (bound to their login), or any session without a browser check."""
    return _session_get_or_create(round_=round_, kind=kind, name=name, user=user)[0]


@dataclass(frozen=True)
class CrowdStart:
    session: WorkerSession
    # Set when this browser was just bound to the session: the page stores it in a cookie.
    new_browser_key: str | None


class RoundFull(SubmissionRefused):
    """The round has as many active crowd workers as its researcher allows; a new one waits."""

    retry_after = 120


@transaction.atomic
def crowd_session_start(*, round_: Round, name: str, browser_keys: Mapping[int, str]) -> CrowdStart:
    """A crowd worker's session, bound to the browser that started it.

    `browser_keys` are the keys the browser holds, by session id (a key of unknown session:
    any negative id): one per session it started,
    so that several worker ids can take turns at one computer. The same worker id from that
    browser resumes the session; from any other browser it is refused, so knowing someone's
    worker id is not enough to answer as them.
    A round with `max_active_workers` refuses a new worker while that many are active; a
    worker resuming their own session is always let in.
    """
    if round_.max_active_workers is not None:
        _capacity_check(round_=round_, name=name)
    session, _ = _session_get_or_create(round_=round_, kind=Annotator.Kind.CROWD, name=name)
    session = WorkerSession.objects.select_for_update().get(pk=session.pk)
    if session.browser_key_hash:
        # By session id, or any key this browser holds: a cookie of the version that kept one
        # bare key per round is read without its session id.
        candidates = [browser_keys[session.pk]] if session.pk in browser_keys else []
        candidates += [key for key in browser_keys.values() if key not in candidates]
        if not any(
            secrets.compare_digest(_key_hash(key), session.browser_key_hash) for key in candidates
        ):
            raise SubmissionRefused(
                "This worker id has already started this study in another browser. Please "
                "continue there; if you cannot, contact the researcher."
            )
        return CrowdStart(session, None)
    key = secrets.token_urlsafe(32)
    session.browser_key_hash = _key_hash(key)
    session.save(update_fields=["browser_key_hash"])
    return CrowdStart(session, key)


def _capacity_check(*, round_: Round, name: str) -> None:
    # The round's row is the lock that makes concurrent starts take turns, so that they cannot
    # together pass the cap. NO KEY: inserts that only reference the round are not held up.
    cap = (
        Round.objects.select_for_update(no_key=True)
        .values_list("max_active_workers", flat=True)
        .get(pk=round_.pk)
    )
    if cap is None:
        return
    sessions = WorkerSession.objects.filter(round=round_, annotator__kind=Annotator.Kind.CROWD)
    if sessions.filter(annotator__name=name.strip()).exists():
        return
    since = timezone.now() - timedelta(seconds=round_.lease_seconds)
    active = (
        sessions.filter(finished_at=None, blocked_at=None, excluded_at=None)
        .exclude(screening_status=FAILED)
        .annotate(last_seen=Coalesce("last_answer_at", "started_at"))
        .filter(last_seen__gte=since)
        .count()
    )
    if active >= cap:
        raise RoundFull(
            "This study has as many workers as it can take right now; please try again in a "
            "few minutes."
        )


def _key_hash(browser_key: str) -> str:
    return hashlib.sha256(browser_key.encode()).hexdigest()


def _session_get_or_create(
    *, round_: Round, kind: str, name: str, user: User | None = None
) -> tuple[WorkerSession, bool]:
    name = name.strip()
    if not name:
        raise SubmissionRefused("Enter your worker id to start.")
    if len(name) > 200:
        raise SubmissionRefused("That worker id is too long (200 characters at most).")
    annotator, _ = Annotator.objects.get_or_create(
        project_id=round_.project_id,
        kind=kind,
        name=name,
        defaults={"user": user if user and user.is_authenticated else None},
    )
    return WorkerSession.objects.get_or_create(round=round_, annotator=annotator)


def _counts_toward_capacity(session: WorkerSession) -> bool:
    # K annotators per item means K crowd workers; authors annotate beside them.
    return session.annotator.kind == Annotator.Kind.CROWD


def assignment_current(*, session: WorkerSession) -> Assignment | None:
    """The item the worker is looking at, or the next one they get; None when they are done.

    The session's row is locked for the call, so that the same worker loading the page many
    times at once (several tabs, a reload storm) gets one lease, not one per request.
    """
    with transaction.atomic():
        WorkerSession.objects.select_for_update().filter(pk=session.pk).values_list(
            "pk", flat=True
        ).first()
        return _assignment_current(session=session)


def _assignment_current(*, session: WorkerSession) -> Assignment | None:
    now = timezone.now()
    lease = timedelta(seconds=session.round.lease_seconds)
    current = (
        Assignment.objects.filter(session=session, status=Assignment.Status.LEASED)
        .order_by("leased_at")
        .first()
    )
    if current is not None:
        if current.expires_at > now:
            return current
        renewed = Assignment.objects.filter(pk=current.pk, status=Assignment.Status.LEASED).update(
            expires_at=now + lease
        )
        if renewed:
            current.expires_at = now + lease
            return current
    if session.completed_items >= session.round.items_per_worker or session.blocked_at:
        return None
    return _assignment_next(session=session, now=now, lease=lease)


def _assignment_next(*, session: WorkerSession, now, lease: timedelta) -> Assignment | None:
    not_seen = ~Exists(Assignment.objects.filter(session=session, item=OuterRef("pk")))
    check = _check_due(session=session, not_seen=not_seen)
    if check is not None:
        return _assignment_create(session=session, item_pk=check, now=now, lease=lease)
    shared = (
        Item.objects.filter(round_id=session.round_id, is_shared=True, check_kind="")
        .filter(not_seen)
        .order_by("position")
        .values_list("id", flat=True)
        .first()
    )
    if shared is not None:
        return _assignment_create(session=session, item_pk=shared, now=now, lease=lease)

    if not _counts_toward_capacity(session):
        item_pk = (
            Item.objects.filter(round_id=session.round_id, is_shared=False, check_kind="")
            .filter(not_seen)
            .order_by("completed", "position")
            .values_list("id", flat=True)
            .first()
        )
        if item_pk is None:
            return None
        return _assignment_create(session=session, item_pk=item_pk, now=now, lease=lease)

    for attempt in range(2):
        assignment = _assignment_claim_open_item(session=session, now=now, lease=lease)
        if assignment is not None or attempt == 1:
            return assignment
        if not assignments_release_expired(round_id=session.round_id, now=now):
            return None
    return None


def _check_due(*, session: WorkerSession, not_seen) -> int | None:
    """A gold or attention item when the worker's share of checks is below the round's rate.

    Checks have no cap (every worker may get each one) and come in an order of their own per
    worker, so that workers cannot tell one another which items test them.
    """
    rate = session.round.check_rate
    if rate <= 0 or not _counts_toward_capacity(session):
        return None
    seen = Assignment.objects.filter(session=session).exclude(item__check_kind="").count()
    if seen >= int(rate * (session.completed_items + 1) + 0.5):
        return None
    unseen = list(
        Item.objects.filter(round_id=session.round_id)
        .exclude(check_kind="")
        .filter(not_seen)
        .values_list("id", flat=True)
    )
    return random.Random(session.token).choice(unseen) if unseen else None


def _assignment_create(
    *, session: WorkerSession, item_pk: int, now, lease: timedelta
) -> Assignment | None:
    try:
        with transaction.atomic():
            assignment = Assignment.objects.create(
                item_id=item_pk, session=session, leased_at=now, expires_at=now + lease
            )
            # A crowd lease on a shared item is a slot too, though shared items have no cap:
            # `completed` never exceeds `taken` and the release gives back what was taken.
            if _counts_toward_capacity(session):
                Item.objects.filter(pk=item_pk).update(taken=F("taken") + 1)
            return assignment
    except IntegrityError:
        # A second tab of the same worker took it a moment ago: that tab's lease is current.
        return Assignment.objects.filter(session=session, status=Assignment.Status.LEASED).first()


def _assignment_claim_open_item(
    *, session: WorkerSession, now, lease: timedelta
) -> Assignment | None:
    """Take a slot on the least-annotated open item that this worker has not seen.

    On PostgreSQL the candidate row is locked with SKIP LOCKED so that concurrent workers
    spread over different items instead of queueing on one; the conditional increment of
    `taken` is what guarantees, on every database, that a slot is never handed out twice.
    """
    k = session.round.annotators_per_item
    for _ in range(5):
        with transaction.atomic():
            item_pk = (
                Item.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(round_id=session.round_id, is_shared=False, check_kind="", taken__lt=k)
                .filter(~Exists(Assignment.objects.filter(session=session, item=OuterRef("pk"))))
                .order_by("taken", "position")
                .values_list("id", flat=True)
                .first()
            )
            if item_pk is None:
                return None
            won = Item.objects.filter(pk=item_pk, taken__lt=k).update(taken=F("taken") + 1)
            if not won:
                continue
            return Assignment.objects.create(
                item_id=item_pk, session=session, leased_at=now, expires_at=now + lease
            )
    return None


@transaction.atomic
def assignments_release_expired(*, round_id: int, now=None) -> int:
    """Give the slots of leases that ran out back to their items; returns how many."""
    now = now or timezone.now()
    expired = list(
        Assignment.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(item__round_id=round_id, status=Assignment.Status.LEASED, expires_at__lte=now)
        .values_list("id", "item_id", "session__annotator__kind")
    )
    if not expired:
        return 0
    Assignment.objects.filter(
        pk__in=[pk for pk, _, _ in expired], status=Assignment.Status.LEASED
    ).update(status=Assignment.Status.EXPIRED)
    released = Counter(item_pk for _, item_pk, kind in expired if kind == Annotator.Kind.CROWD)
    by_count: dict[int, list[int]] = {}
    for item_pk, count in released.items():
        by_count.setdefault(count, []).append(item_pk)
    for count, item_pks in by_count.items():
        Item.objects.filter(pk__in=item_pks).update(taken=F("taken") - count)
    return len(expired)


# ---------------------------------------------------------------- annotations


def annotation_submit(
    *, session: WorkerSession, assignment_token: str, shown_choice: str
) -> Annotation:
    """Record the worker's answer for their assigned item, once.

    A replay of the same submission returns the annotation already recorded.
    """
    if shown_choice not in Annotation.ShownChoice.values:
        raise SubmissionRefused("Choose one of the three answers.")
    with transaction.atomic():
        assignment = _assignment_answered(session=session, assignment_token=assignment_token)
        if assignment.item.response_id is not None:
            raise SubmissionRefused("This item asks for a rating of one answer: choose a rating.")
        if assignment.status == Assignment.Status.COMPLETED:
            return Annotation.objects.get(assignment=assignment)
        item = assignment.item
        now = timezone.now()
        annotation = Annotation.objects.create(
            item=item,
            annotator_id=session.annotator_id,
            assignment=assignment,
            choice=Annotation.model_choice(shown_choice, item.candidate_first),
            shown_choice=shown_choice,
            candidate_first=item.candidate_first,
            seconds_spent=max(0.0, (now - assignment.leased_at).total_seconds()),
        )
        _assignment_complete(session=session, assignment=assignment, now=now)
    return annotation


def rating_submit(*, session: WorkerSession, assignment_token: str, value: str) -> Rating:
    """Record the worker's rating of the answer of their assigned item, once, on the round's
    scale. A replay of the same submission returns the rating already recorded."""
    scale = CROWD_SCALES.get(session.round.scale)
    if scale is None:
        raise SubmissionRefused("This study asks to compare two answers: choose one of them.")
    chosen = scale.value_named(value)
    if chosen is None:
        raise SubmissionRefused(
            f"Choose one of the ratings: {', '.join(v.name for v in scale.values)}."
        )
    with transaction.atomic():
        assignment = _assignment_answered(session=session, assignment_token=assignment_token)
        if assignment.status == Assignment.Status.COMPLETED:
            return Rating.objects.get(assignment=assignment)
        item = Item.objects.select_related("prompt", "response").get(pk=assignment.item_id)
        if item.response is None:
            raise SubmissionRefused("This item compares two answers: choose one of them.")
        now = timezone.now()
        numeric = session.round.scale == Rating.Scale.HELPFULNESS_1_6
        rating = Rating.objects.create(
            annotator_id=session.annotator_id,
            model_id=item.response.model_id,
            response=item.response,
            question=item.prompt.external_id,
            scale=session.round.scale,
            label="" if numeric else chosen.value,
            score=float(chosen.value) if numeric else None,
            source=f"round {session.round_id}",
            item=item,
            assignment=assignment,
            seconds_spent=max(0.0, (now - assignment.leased_at).total_seconds()),
        )
        _assignment_complete(session=session, assignment=assignment, now=now)
    return rating


def _assignment_answered(*, session: WorkerSession, assignment_token: str) -> Assignment:
    """The worker's assignment being answered, locked; refused when it is not theirs or ran
    out."""
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("item")
        .filter(token=assignment_token)
        .first()
    )
    if assignment is None or assignment.session_id != session.pk:
        raise SubmissionRefused("This item is not assigned to you, so the answer was not recorded.")
    if assignment.status == Assignment.Status.EXPIRED:
        raise SubmissionRefused(
            "Your time on that item ran out and it went to someone else; "
            "the answer was not recorded. Here is your next item."
        )
    return assignment


def _assignment_complete(*, session: WorkerSession, assignment: Assignment, now) -> None:
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.COMPLETED)
    if _counts_toward_capacity(session):
        Item.objects.filter(pk=assignment.item_id).update(completed=F("completed") + 1)
    WorkerSession.objects.filter(pk=session.pk).update(
        completed_items=F("completed_items") + 1, last_answer_at=now
    )
    session.completed_items += 1
    if session.completed_items >= session.round.items_per_worker:
        WorkerSession.objects.filter(pk=session.pk).update(finished_at=now)


# ---------------------------------------------------------------- the fast path


@dataclass(frozen=True)
class NextItem:
    """What the crowd page shows after an answer: the next item, rendered."""

    assignment_token: str
    completed_items: int
    total: int
    prompt_html: SafeString
    answer_a_html: SafeString
    answer_b_html: SafeString


def answer_and_next(
    *, session_token: str, assignment_token: str, shown_choice: str
) -> NextItem | None:
    """Record an answer and lease the next item in one database call, on PostgreSQL.

    The database function (migration annotation 0013) takes the common case: a crowd worker
    answering their leased item and getting their current or a new comparison, with its
    stored HTML when that is current. Anything else answers None, having changed nothing or
    only recorded the answer, and the caller goes on with `annotation_submit` and
    `assignment_current`, for which a recorded answer is a replay.
    """
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT outcome, completed_items, items_per_worker, round_pk, text_format, "
            "next_token, next_item_id, prompt_html, first_html, second_html "
            "FROM evalplatform_crowd_answer(%s, %s, %s, %s, %s, %s)",
            [
                session_token,
                assignment_token,
                shown_choice,
                Assignment._meta.get_field("token").get_default(),
                timezone.now(),
                RENDERER_VERSION,
            ],
        )
        row = cursor.fetchone()
    outcome, completed, per_worker, round_pk, text_format, token, item_pk, *html = row
    if outcome == "fallback" or token is None:
        return None
    if html[0] is None:
        # Not rendered yet (or by an older renderer): rendered now and stored for next time.
        texts = item_texts_shown(item_for_display(item_pk), text_format)
    else:
        # Safe: stored by text_shown, from annotation.rendering's escaping renderer.
        texts = (mark_safe(html[0]), mark_safe(html[1]), mark_safe(html[2]))
    return NextItem(
        assignment_token=token,
        completed_items=completed,
        total=max(min(per_worker, round_item_count_recent(round_pk)), completed),
        prompt_html=texts[0],
        answer_a_html=texts[1],
        answer_b_html=texts[2],
    )
