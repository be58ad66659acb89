"""Reads for pages and the API."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import TypeVar

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, IntegerField, Model, Q, QuerySet, Sum, Value
from django.db.models.functions import Least
from django.utils import timezone

from annotation.models import (
    Annotation,
    Annotator,
    Assignment,
    Item,
    LanguageModel,
    Project,
    Prompt,
    Round,
    WorkerSession,
)

M = TypeVar("M", bound=Model)
# Who is asking: pages and the API pass request.user as it is.
Viewer = User | AnonymousUser


@dataclass(frozen=True)
class BaselineProgress:
    baseline: str
    items: int
    collected: int
    needed: int

    @property
    def percent(self) -> int:
        return round(100 * self.collected / self.needed) if self.needed else 100


def projects_for_user(user: Viewer) -> QuerySet[Project]:
    """Projects the user is a member of; superusers (the operators) see every project."""
    return visible_to(user, Project.objects.all(), "")


def visible_to(user: Viewer, queryset: QuerySet[M], via: str = "project") -> QuerySet[M]:
    """The queryset's objects in projects the user may see: the one scoping rule of every page,
    API view and input. `via` leads from an object to its project ("" for projects)."""
    if user.is_superuser:
        return queryset
    if not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{f"{via}__members" if via else "members": user})


def rounds_for_user(user: Viewer) -> QuerySet[Round]:
    return (
        visible_to(user, Round.objects.all())
        .select_related("project", "prompt_set", "candidate")
        .prefetch_related("baselines")
    )


def round_progress(round_: Round) -> list[BaselineProgress]:
    """Crowd annotations collected / needed per baseline (each item needs K crowd workers)."""
    k = round_.annotators_per_item
    rows = (
        Item.objects.filter(round=round_)
        .values("baseline__name")
        .annotate(
            items=Count("id"),
            collected=Sum(Least("completed", Value(k), output_field=IntegerField())),
        )
        .order_by("baseline__name")
    )
    return [
        BaselineProgress(
            row["baseline__name"], row["items"], row["collected"] or 0, row["items"] * k
        )
        for row in rows
    ]


def rounds_progress(rounds: Sequence[Round]) -> dict[int, list[BaselineProgress]]:
    """round_progress for many rounds in one query."""
    k_by_round = {r.pk: r.annotators_per_item for r in rounds}
    result: dict[int, list[BaselineProgress]] = {r.pk: [] for r in rounds}
    rows = (
        Item.objects.filter(round__in=rounds)
        .values("round_id", "round__annotators_per_item", "baseline__name")
        .annotate(
            items=Count("id"),
            collected=Sum(Least("completed", "round__annotators_per_item")),
        )
        .order_by("round_id", "baseline__name")
    )
    for row in rows:
        k = k_by_round[row["round_id"]]
        result[row["round_id"]].append(
            BaselineProgress(
                row["baseline__name"], row["items"], row["collected"] or 0, row["items"] * k
            )
        )
    return result


# Pages showing crowd progress refresh fast while a worker holds an item, slowly while the
# round still waits for annotations (so a study that starts shows up), and not at all after.
LIVE_REFRESH_SECONDS = 5
OPEN_REFRESH_SECONDS = 60


def rounds_refresh_seconds(
    rounds: Sequence[Round], progress: dict[int, list[BaselineProgress]]
) -> int | None:
    """How often a page showing these rounds' crowd progress should refresh; None: never."""
    open_rounds = [
        r
        for r in rounds
        if not progress[r.pk] or any(p.collected < p.needed for p in progress[r.pk])
    ]
    if not open_rounds:
        return None
    leased = Assignment.objects.filter(
        item__round__in=open_rounds,
        status=Assignment.Status.LEASED,
        expires_at__gt=timezone.now(),
    )
    return LIVE_REFRESH_SECONDS if leased.exists() else OPEN_REFRESH_SECONDS


def round_annotation_counts(round_: Round) -> dict[str, int]:
    rows = (
        Annotation.objects.filter(item__round=round_)
        .values("annotator__kind")
        .annotate(n=Count("id"))
    )
    counts = {kind: 0 for kind in Annotator.Kind.values}
    counts.update({row["annotator__kind"]: row["n"] for row in rows})
    return counts


def round_worker_count(round_: Round) -> int:
    return WorkerSession.objects.filter(round=round_).count()


@dataclass(frozen=True)
class WorkerRow:
    """One annotator's pass through a round, for the workers page and its export."""

    worker_id: str
    kind: str
    status: str  # complete, working (holds an item now), left (started, stopped before the end)
    items_done: int
    quota: int
    started_at: datetime
    last_answer_at: datetime | None
    finished_at: datetime | None
    completion_code: str
    median_seconds: float | None
    answered_a: int
    answered_b: int
    answered_neither: int

    @property
    def first_position_share(self) -> float | None:
        """Share of A among the A/B answers: near 1 or 0 is a worker who always picks a side."""
        sided = self.answered_a + self.answered_b
        return self.answered_a / sided if sided else None


WORKER_COLUMNS = [
    "worker_id",
    "kind",
    "status",
    "items_done",
    "quota",
    "started_at",
    "last_answer_at",
    "finished_at",
    "completion_code",
    "median_seconds",
    "answered_a",
    "answered_b",
    "answered_neither",
]


def round_workers(round_: Round) -> list[WorkerRow]:
    """Every crowd worker and author of the round, in the order they started (three queries)."""
    sessions = list(
        WorkerSession.objects.filter(round=round_)
        .select_related("annotator")
        .order_by("started_at", "pk")
    )
    working = set(
        Assignment.objects.filter(
            item__round=round_, status=Assignment.Status.LEASED, expires_at__gt=timezone.now()
        ).values_list("session_id", flat=True)
    )
    answers: dict[int, list[tuple[str, float | None]]] = {}
    for annotator_id, shown_choice, seconds in Annotation.objects.filter(
        item__round=round_, assignment__isnull=False
    ).values_list("annotator_id", "shown_choice", "seconds_spent"):
        answers.setdefault(annotator_id, []).append((shown_choice, seconds))
    rows = []
    for session in sessions:
        mine = answers.get(session.annotator_id, [])
        shown = Counter(choice for choice, _ in mine)
        timed = [seconds for _, seconds in mine if seconds is not None]
        if session.completion_code:
            status = "complete"
        elif session.pk in working:
            status = "working"
        else:
            status = "left"
        rows.append(
            WorkerRow(
                worker_id=session.annotator.name,
                kind=session.annotator.kind,
                status=status,
                items_done=session.completed_items,
                quota=round_.items_per_worker,
                started_at=session.started_at,
                last_answer_at=session.last_answer_at,
                finished_at=session.finished_at,
                completion_code=session.completion_code,
                median_seconds=median(timed) if timed else None,
                answered_a=shown[Annotation.ShownChoice.A],
                answered_b=shown[Annotation.ShownChoice.B],
                answered_neither=shown[Annotation.ShownChoice.NEITHER],
            )
        )
    return rows


def session_by_token(token: str) -> WorkerSession | None:
    return WorkerSession.objects.select_related("round", "annotator").filter(token=token).first()


def item_for_display(item_pk: int) -> Item:
    return Item.objects.select_related("prompt", "candidate_response", "baseline_response").get(
        pk=item_pk
    )


def round_item_count(round_: Round) -> int:
    return Item.objects.filter(round=round_).count()


def round_awaits_items(round_: Round, item_count: int) -> bool:
    """Whether items may still appear: some pairs lack responses that are being generated.

    A model is being generated for the round once a launch gave it a settings key; before
    any launch, a round without items waits if one of its models can generate at all.
    """
    baselines = round_.baselines.count()
    expected = Prompt.objects.filter(prompt_set_id=round_.prompt_set_id).count() * baselines
    if item_count >= expected:
        return False
    if any(round_.response_keys.values()):
        return True
    return item_count == 0 and (
        LanguageModel.objects.filter(Q(pk=round_.candidate_id) | Q(rounds_as_baseline=round_))
        .exclude(backend=LanguageModel.Backend.IMPORTED)
        .exists()
    )
