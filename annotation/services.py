"""Actions that change the state of rounds, assignments and annotations."""

import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from annotation.models import (
    Annotation,
    Annotator,
    Assignment,
    ImportJob,
    Item,
    LanguageModel,
    Project,
    PromptSet,
    Response,
    Round,
    WorkerSession,
)

logger = logging.getLogger(__name__)


class RoundInvalid(ValueError):
    """The round cannot be created as asked; the message says what to change."""


class SubmissionRefused(Exception):
    """A crowd submission that must not be recorded; the message is shown to the worker."""


# ---------------------------------------------------------------- rounds


@transaction.atomic
def round_create(
    *,
    project: Project,
    prompt_set: PromptSet,
    candidate: LanguageModel,
    baselines: Sequence[LanguageModel],
    name: str = "",
    annotators_per_item: int = 1,
    shared_items: int = 50,
    items_per_worker: int = 100,
    lease_seconds: int = 30 * 60,
    seed: int | None = None,
) -> Round:
    if not baselines:
        raise RoundInvalid("Give at least one baseline.")
    if candidate in baselines:
        raise RoundInvalid(f"{candidate.name!r} cannot be both the candidate and a baseline.")
    for model in (candidate, *baselines):
        if model.project_id != project.pk:
            raise RoundInvalid(f"Model {model.name!r} belongs to another project.")
    if prompt_set.project_id != project.pk:
        raise RoundInvalid(f"Prompt set {prompt_set.name!r} belongs to another project.")
    if annotators_per_item < 1:
        raise RoundInvalid("Annotators per item must be at least 1.")
    if items_per_worker < 1:
        raise RoundInvalid("Items per worker must be at least 1.")
    if lease_seconds < 10:
        raise RoundInvalid("The lease must be at least 10 seconds.")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    round_ = Round.objects.create(
        project=project,
        name=name or f"{candidate.name} vs {', '.join(b.name for b in baselines)}",
        prompt_set=prompt_set,
        candidate=candidate,
        annotators_per_item=annotators_per_item,
        shared_items=shared_items,
        items_per_worker=items_per_worker,
        lease_seconds=lease_seconds,
        seed=seed,
    )
    round_.baselines.set(baselines)
    created = round_add_missing_items(round_=round_)
    # A model with a generation backend gets its responses when the round is launched.
    generated = any(m.backend != LanguageModel.Backend.IMPORTED for m in (candidate, *baselines))
    if created == 0 and not generated:
        raise RoundInvalid(
            f"No prompt in {prompt_set.name!r} has responses from both {candidate.name!r} and "
            f"any of {', '.join(repr(b.name) for b in baselines)}: import responses first."
        )
    shared_count = round_.items.filter(is_shared=True).count()
    if generated:
        possible = prompt_set.prompts.count() * len(baselines)
        shared_count = max(shared_count, min(shared_items, possible))
    if items_per_worker < shared_count:
        raise RoundInvalid(
            f"Items per worker ({items_per_worker}) must be at least the shared set "
            f"({shared_count} items), since every worker annotates the whole shared set."
        )
    return round_


def round_add_missing_items(*, round_: Round) -> int:
    """Create an item for every (prompt, baseline) that has both responses and no item yet.

    Each model's responses are those made with the settings the round compares
    (`Round.response_keys`). Orders are drawn from the round's seed so that, over the round,
    half the items show the candidate as Answer A; the shared set is topped up to its size the
    same way.
    """
    existing = set(round_.items.values_list("prompt_id", "baseline_id"))
    baseline_ids = list(round_.baselines.values_list("id", flat=True))
    compared = Q()
    for model_pk in (round_.candidate_id, *baseline_ids):
        compared |= Q(model_id=model_pk, settings_key=round_.response_key(model_pk))
    responses = (
        Response.objects.filter(prompt__prompt_set=round_.prompt_set_id)
        .filter(compared)
        .values_list("id", "prompt_id", "model_id", "prompt__position")
    )
    by_prompt: dict[int, dict[int, int]] = {}
    positions: dict[int, int] = {}
    for response_pk, prompt_pk, model_pk, position in responses:
        by_prompt.setdefault(prompt_pk, {})[model_pk] = response_pk
        positions[prompt_pk] = position

    pairs = []
    for prompt_pk in sorted(by_prompt, key=positions.__getitem__):
        answers = by_prompt[prompt_pk]
        if round_.candidate_id not in answers:
            continue
        for baseline_pk in baseline_ids:
            if baseline_pk in answers and (prompt_pk, baseline_pk) not in existing:
                pairs.append(
                    (prompt_pk, baseline_pk, answers[round_.candidate_id], answers[baseline_pk])
                )
    if not pairs:
        return 0

    rng = random.Random(f"{round_.seed}:{len(existing)}")
    orders = Counter(round_.items.values_list("candidate_first", flat=True))
    total = len(existing) + len(pairs)
    candidate_first_needed = max(0, total // 2 + rng.randrange(total % 2 + 1) - orders[True])
    flags = [True] * min(candidate_first_needed, len(pairs))
    flags += [False] * (len(pairs) - len(flags))
    rng.shuffle(flags)

    shared_missing = max(0, round_.shared_items - round_.items.filter(is_shared=True).count())
    shared_indices = set(rng.sample(range(len(pairs)), min(shared_missing, len(pairs))))
    start = len(existing)
    Item.objects.bulk_create(
        [
            Item(
                round=round_,
                prompt_id=prompt_pk,
                baseline_id=baseline_pk,
                candidate_response_id=candidate_response,
                baseline_response_id=baseline_response,
                position=start + index,
                candidate_first=flags[index],
                is_shared=index in shared_indices,
            )
            for index, (prompt_pk, baseline_pk, candidate_response, baseline_response) in enumerate(
                pairs
            )
        ],
        batch_size=2000,
    )
    return len(pairs)


# ---------------------------------------------------------------- crowd sessions


@transaction.atomic
def session_start(
    *, round_: Round, kind: str, name: str, user: AbstractBaseUser | None = None
) -> WorkerSession:
    name = name.strip()
    if not name:
        raise SubmissionRefused("Enter your worker id to start.")
    if len(name) > 200:
        raise SubmissionRefused("That worker id is too long (200 characters at most).")
    annotator, _ = Annotator.objects.get_or_create(
        kind=kind, name=name, defaults={"user": user if user and user.is_authenticated else None}
    )
    session, _ = WorkerSession.objects.get_or_create(round=round_, annotator=annotator)
    return session


def _counts_toward_capacity(session: WorkerSession) -> bool:
    # K annotators per item means K crowd workers; authors annotate beside them.
    return session.annotator.kind == Annotator.Kind.CROWD


def assignment_current(*, session: WorkerSession) -> Assignment | None:
    """The item the worker is looking at, or the next one they get; None when they are done."""
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
    if session.completed_items >= session.round.items_per_worker:
        return None
    return _assignment_next(session=session, now=now, lease=lease)


def _assignment_next(*, session: WorkerSession, now, lease: timedelta) -> Assignment | None:
    not_seen = ~Exists(Assignment.objects.filter(session=session, item=OuterRef("pk")))
    shared = (
        Item.objects.filter(round_id=session.round_id, is_shared=True)
        .filter(not_seen)
        .order_by("position")
        .values_list("id", flat=True)
        .first()
    )
    if shared is not None:
        return _assignment_create(session=session, item_pk=shared, now=now, lease=lease)

    if not _counts_toward_capacity(session):
        item_pk = (
            Item.objects.filter(round_id=session.round_id, is_shared=False)
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


def _assignment_create(
    *, session: WorkerSession, item_pk: int, now, lease: timedelta
) -> Assignment | None:
    try:
        with transaction.atomic():
            return Assignment.objects.create(
                item_id=item_pk, session=session, leased_at=now, expires_at=now + lease
            )
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
                .filter(round_id=session.round_id, is_shared=False, taken__lt=k)
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
        assignment = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("item")
            .filter(token=assignment_token)
            .first()
        )
        if assignment is None or assignment.session_id != session.pk:
            raise SubmissionRefused(
                "This item is not assigned to you, so the answer was not recorded."
            )
        if assignment.status == Assignment.Status.COMPLETED:
            return Annotation.objects.get(assignment=assignment)
        if assignment.status == Assignment.Status.EXPIRED:
            raise SubmissionRefused(
                "Your time on that item ran out and it went to someone else; "
                "the answer was not recorded. Here is your next item."
            )
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
        Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.COMPLETED)
        if _counts_toward_capacity(session):
            Item.objects.filter(pk=item.pk).update(completed=F("completed") + 1)
        WorkerSession.objects.filter(pk=session.pk).update(completed_items=F("completed_items") + 1)
        session.completed_items += 1
        if session.completed_items >= session.round.items_per_worker:
            WorkerSession.objects.filter(pk=session.pk).update(finished_at=now)
    return annotation


def annotations_record_judgments(
    *,
    annotator: Annotator,
    judgments: Sequence[tuple[Item, str, Mapping[bool, str]]],
) -> None:
    """Record a model judge's verdicts in a few queries: (item, choice, votes) each, where
    votes maps each order shown (candidate_first) to the choice, in model terms, given then.

    A single vote is stored in the order the judge saw; a verdict combined from both orders
    is stored in the crowd's order, with every vote kept in `order_votes` for position-bias
    diagnostics. Idempotent: an item the judge already has a verdict on keeps it. Judges take
    no crowd slots: Item.taken and completed count human work only.
    """
    if annotator.kind != Annotator.Kind.JUDGE:
        raise ValueError(f"{annotator} is not a model judge.")
    rows = []
    for item, choice, votes in judgments:
        for given in (choice, *votes.values()):
            if given not in Annotation.Choice.values:
                raise ValueError(f"Unknown choice {given!r}.")
        if len(votes) == 1:
            (candidate_first,) = votes
            order_votes = []
        else:
            candidate_first = item.candidate_first
            order_votes = [[order, vote] for order, vote in sorted(votes.items())]
        rows.append(
            Annotation(
                item=item,
                annotator=annotator,
                choice=choice,
                shown_choice=Annotation.shown_for(choice, candidate_first),
                candidate_first=candidate_first,
                order_votes=order_votes,
            )
        )
    Annotation.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


# ---------------------------------------------------------------- background imports


def import_job_create(*, project: Project, kind: str, upload, set_name: str, model_name: str, user):
    """Store an uploaded file and queue its import once the transaction commits."""
    from annotation.tasks import run_import_job

    with transaction.atomic():
        job = ImportJob.objects.create(
            project=project,
            kind=kind,
            file=upload,
            original_name=upload.name[:255],
            prompt_set_name=set_name,
            model_name=model_name,
            created_by=user,
        )
        transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


def import_job_run(*, job_id: int) -> str:
    """Run one queued import; safe to run twice (a finished job is left as it is)."""
    from annotation.imports import prompts_import, responses_import
    from annotation.records import ImportFailed

    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING]
    ).update(status=ImportJob.Status.RUNNING)
    if not claimed:
        return "already finished"
    job = ImportJob.objects.select_related("project").get(pk=job_id)

    def progress(done: int, total: int) -> None:
        ImportJob.objects.filter(pk=job_id).update(processed=done, total=total)

    try:
        with job.file.open("rb") as handle:
            raw = handle.read()
        if job.kind == ImportJob.Kind.PROMPTS:
            summary = prompts_import(
                project=job.project, set_name=job.prompt_set_name, raw=raw,
                file=job.original_name, progress=progress,
            )  # fmt: skip
        else:
            summary = responses_import(
                project=job.project, set_name=job.prompt_set_name, raw=raw,
                file=job.original_name, model_name=job.model_name or None, progress=progress,
            )  # fmt: skip
    except ImportFailed as failure:
        message, status = str(failure), ImportJob.Status.FAILED
    except Exception as error:
        logger.exception("import job %s failed", job_id)
        message, status = (
            f"The import stopped on an unexpected error: {error}",
            ImportJob.Status.FAILED,
        )
    else:
        message = f"{summary.created} imported, {summary.skipped} already present"
        if summary.models_created:
            message += f"; new models: {', '.join(summary.models_created)}"
        status = ImportJob.Status.DONE
    ImportJob.objects.filter(pk=job_id).update(
        status=status, message=message, finished_at=timezone.now()
    )
    return message
