"""Reads for pages and the API."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.db.models import CharField, Count, F, IntegerField, Model, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, Least, Length, NullIf
from django.utils import timezone

from annotation.models import (
    Annotation,
    Annotator,
    Assignment,
    Item,
    LanguageModel,
    Project,
    Prompt,
    Rating,
    Round,
    WorkerSession,
)
from annotation.reports.competence import dawid_skene
from annotation.scales import CROWD_SCALES

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


# What an item's progress is counted under: its baseline, or a rated answer's model.
_PROGRESS_GROUP = Coalesce(F("baseline__name"), F("response__model__name"))


def round_progress(round_: Round) -> list[BaselineProgress]:
    """Crowd annotations collected / needed per baseline (each item needs K crowd workers);
    in an absolute round, per rated model."""
    k = round_.annotators_per_item
    rows = (
        Item.objects.filter(round=round_, check_kind="")
        .values(group=_PROGRESS_GROUP)
        .annotate(
            items=Count("id"),
            collected=Sum(Least("completed", Value(k), output_field=IntegerField())),
        )
        .order_by("group")
    )
    return [
        BaselineProgress(row["group"], row["items"], row["collected"] or 0, row["items"] * k)
        for row in rows
    ]


def rounds_progress(rounds: Sequence[Round]) -> dict[int, list[BaselineProgress]]:
    """round_progress for many rounds in one query."""
    k_by_round = {r.pk: r.annotators_per_item for r in rounds}
    result: dict[int, list[BaselineProgress]] = {r.pk: [] for r in rounds}
    rows = (
        Item.objects.filter(round__in=rounds, check_kind="")
        .values("round_id", "round__annotators_per_item", group=_PROGRESS_GROUP)
        .annotate(
            items=Count("id"),
            collected=Sum(Least("completed", "round__annotators_per_item")),
        )
        .order_by("round_id", "group")
    )
    for row in rows:
        k = k_by_round[row["round_id"]]
        result[row["round_id"]].append(
            BaselineProgress(row["group"], row["items"], row["collected"] or 0, row["items"] * k)
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
    """The round's annotations (an absolute round's ratings) per kind of annotator."""
    answers: QuerySet[Rating] | QuerySet[Annotation]
    if round_.is_absolute:
        # People's ratings given here, and judges' or imported ratings of the answers shown.
        shown = Item.objects.filter(round=round_).shown_responses()
        answers = Rating.objects.filter(response__in=shown).filter(
            Q(item__isnull=True) | Q(item__round=round_)
        )
    else:
        answers = Annotation.objects.filter(item__round=round_)
    rows = answers.values("annotator__kind").annotate(n=Count("id"))
    counts = {kind: 0 for kind in Annotator.Kind.values}
    counts.update({row["annotator__kind"]: row["n"] for row in rows})
    return counts


def round_worker_count(round_: Round) -> int:
    return WorkerSession.objects.filter(round=round_).count()


# An item's words are estimated from its characters (about six per English word, space
# included), so that the check reads lengths in the database instead of every text.
CHARS_PER_WORD = 6
MIN_SECONDS_PER_ITEM = 2.0


@dataclass(frozen=True)
class WorkerChecks:
    answered: int = 0
    gold_seen: int = 0
    gold_correct: int = 0
    attention_seen: int = 0
    attention_failed: int = 0
    too_fast: int = 0

    @property
    def gold_accuracy(self) -> float:
        return self.gold_correct / self.gold_seen if self.gold_seen else 1.0

    @property
    def too_fast_share(self) -> float:
        return self.too_fast / self.answered if self.answered else 0.0


def seconds_to_read(characters: int, words_per_second: float) -> float:
    """The shortest plausible time on an item: its words at the round's reading speed."""
    return max(MIN_SECONDS_PER_ITEM, characters / CHARS_PER_WORD / words_per_second)


def round_worker_checks(round_: Round, *, session_pk: int | None = None) -> dict[int, WorkerChecks]:
    """Per worker session (or only the one given): answers, gold and attention results,
    answers too fast to have read the item; one query."""
    tallies: dict[int, Counter[str]] = {}
    answers = (Rating if round_.is_absolute else Annotation).objects.filter(
        item__round=round_, assignment__isnull=False
    )
    if session_pk is not None:
        answers = answers.filter(assignment__session_id=session_pk)
    texts = (
        [Length("item__response__text")]
        if round_.is_absolute
        else [Length("item__candidate_response__text"), Length("item__baseline_response__text")]
    )
    rows = answers.values_list(
        "assignment__session_id",
        "item__check_kind",
        "item__check_answer",
        # What was answered as a check's answer is written: a choice, a label or a score.
        Coalesce(NullIf("label", Value("")), Cast(Cast("score", IntegerField()), CharField()))
        if round_.is_absolute
        else F("choice"),
        "seconds_spent",
        Length("item__prompt__text"),
        *texts,
    )
    for session_id, check, expected, choice, seconds, *lengths in rows:
        tally = tallies.setdefault(session_id, Counter())
        tally["answered"] += 1
        if check == Item.Check.GOLD:
            tally["gold_seen"] += 1
            tally["gold_correct"] += choice == expected
        elif check == Item.Check.ATTENTION:
            tally["attention_seen"] += 1
            tally["attention_failed"] += choice != expected
        if seconds is not None and seconds < seconds_to_read(sum(lengths), round_.words_per_second):
            tally["too_fast"] += 1
    return {session_id: WorkerChecks(**tally) for session_id, tally in tallies.items()}


@dataclass(frozen=True)
class WorkerRow:
    """One annotator's pass through a round, for the workers page and its export."""

    worker_id: str
    kind: str
    # complete, working (holds an item now), left (stopped before the end), excluded, or
    # screened_out (failed the comprehension check twice)
    status: str
    items_done: int
    quota: int
    started_at: datetime
    last_answer_at: datetime | None
    finished_at: datetime | None
    completion_code: str
    excluded_reason: str
    median_seconds: float | None
    answered_a: int
    answered_b: int
    answered_neither: int
    gold_seen: int
    gold_correct: int
    attention_seen: int
    attention_failed: int
    too_fast: int
    # Share of agreeing pairs with the other crowd workers on the items both answered, and
    # share of the items an author also answered where the worker gave the author's label.
    agreement_with_crowd: float | None
    agreement_with_authors: float | None
    # Dawid-Skene's estimate of how often this worker's label is the true one; None, with
    # the reason in competence_note, for a worker it has nobody to compare with.
    competence: float | None
    competence_note: str

    @property
    def first_position_share(self) -> float | None:
        """Share of A among the A/B answers: near 1 or 0 is a worker who always picks a side."""
        sided = self.answered_a + self.answered_b
        return self.answered_a / sided if sided else None

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_seen if self.gold_seen else None


WORKER_COLUMNS = [
    "worker_id",
    "kind",
    "status",
    "excluded_reason",
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
    "first_position_share",
    "gold_seen",
    "gold_correct",
    "attention_seen",
    "attention_failed",
    "too_fast",
    "agreement_with_crowd",
    "agreement_with_authors",
    "competence",
    "competence_note",
]

NO_SHARED_ITEM = "no item shared with another crowd worker"


def _agreement(
    labels: dict[int, dict[int, str]], kinds: dict[int, str]
) -> tuple[dict[int, float], dict[int, float]]:
    """Per crowd session: pairwise agreement with other crowd workers, and with authors."""
    crowd_pairs: Counter[int] = Counter()
    crowd_agree: Counter[int] = Counter()
    author_seen: Counter[int] = Counter()
    author_agree: Counter[int] = Counter()
    for by_session in labels.values():
        crowd = [(s, label) for s, label in by_session.items() if kinds[s] == Annotator.Kind.CROWD]
        authors = Counter(
            label for s, label in by_session.items() if kinds[s] == Annotator.Kind.AUTHOR
        )
        author_label = authors.most_common(1)[0][0] if authors else None
        for session_id, label in crowd:
            others = [other for s, other in crowd if s != session_id]
            crowd_pairs[session_id] += len(others)
            crowd_agree[session_id] += sum(other == label for other in others)
            if author_label is not None:
                author_seen[session_id] += 1
                author_agree[session_id] += label == author_label
    return (
        {s: crowd_agree[s] / n for s, n in crowd_pairs.items() if n},
        {s: author_agree[s] / n for s, n in author_seen.items() if n},
    )


def round_workers(round_: Round) -> list[WorkerRow]:
    """Every crowd worker and author of the round, in the order they started (four queries)."""
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
    labels: dict[int, dict[int, str]] = {}
    for session_id, item_id, check, shown_choice, choice, seconds in _round_answers(round_):
        answers.setdefault(session_id, []).append((shown_choice, seconds))
        if not check:
            labels.setdefault(item_id, {})[session_id] = choice
    kinds = {session.pk: session.annotator.kind for session in sessions}
    with_crowd, with_authors = _agreement(labels, kinds)
    crowd_labels = [
        (item_id, str(session_id), label)
        for item_id, by_session in labels.items()
        for session_id, label in by_session.items()
        if kinds[session_id] == Annotator.Kind.CROWD
    ]
    classes = (
        [value.value for value in CROWD_SCALES[round_.scale].values]
        if round_.is_absolute
        else Annotation.Choice.values
    )
    competence = dawid_skene(crowd_labels, classes).accuracy
    checks = round_worker_checks(round_)
    rows = []
    for session in sessions:
        mine = answers.get(session.pk, [])
        shown = Counter(choice for choice, _ in mine)
        timed = [seconds for _, seconds in mine if seconds is not None]
        tested = checks.get(session.pk, WorkerChecks())
        estimate = competence.get(str(session.pk))
        # Dawid-Skene learns a worker's confusion only from items another crowd worker also
        # labelled (each gives `with_crowd` an entry); without one, its number says nothing.
        alone = estimate is not None and session.pk not in with_crowd
        if session.screening_status == "failed":
            status = "screened_out"
        elif session.excluded_at is not None:
            status = "excluded"
        elif session.completion_code:
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
                excluded_reason=session.excluded_reason,
                median_seconds=median(timed) if timed else None,
                answered_a=shown[Annotation.ShownChoice.A],
                answered_b=shown[Annotation.ShownChoice.B],
                answered_neither=shown[Annotation.ShownChoice.NEITHER],
                gold_seen=tested.gold_seen,
                gold_correct=tested.gold_correct,
                attention_seen=tested.attention_seen,
                attention_failed=tested.attention_failed,
                too_fast=tested.too_fast,
                agreement_with_crowd=with_crowd.get(session.pk),
                agreement_with_authors=with_authors.get(session.pk),
                competence=None if alone else estimate,
                competence_note=NO_SHARED_ITEM if alone else "",
            )
        )
    return rows


def _round_answers(round_: Round) -> list[tuple[int, int, str, str, str, float | None]]:
    """(session, item, check kind, what was clicked, its value, seconds) of each crowd or
    author answer of the round: a choice of A, B or neither, or an absolute round's rating,
    whose value is its label or score ("" clicked: there is no position to tell)."""
    if round_.is_absolute:
        return [
            (session_id, item_id, check, "", label or f"{score:g}", seconds)
            for session_id, item_id, check, label, score, seconds in Rating.objects.filter(
                item__round=round_, assignment__isnull=False
            ).values_list(
                "assignment__session_id",
                "item_id",
                "item__check_kind",
                "label",
                "score",
                "seconds_spent",
            )
        ]
    return list(
        Annotation.objects.filter(item__round=round_, assignment__isnull=False).values_list(
            "assignment__session_id",
            "item_id",
            "item__check_kind",
            "shown_choice",
            "choice",
            "seconds_spent",
        )
    )


def round_judge_preferences(round_: Round) -> dict[str, list[float | None]]:
    """Per model judge of the round: its preference for the candidate on each counted item."""
    by_judge: dict[str, list[float | None]] = {}
    for name, preference in Annotation.objects.filter(
        item__round=round_, item__check_kind="", annotator__kind=Annotator.Kind.JUDGE
    ).values_list("annotator__name", "preference"):
        by_judge.setdefault(name, []).append(preference)
    return by_judge


def session_by_token(token: str) -> WorkerSession | None:
    return WorkerSession.objects.select_related("round", "annotator").filter(token=token).first()


def item_for_display(item_pk: int) -> Item:
    return Item.objects.select_related(
        "prompt", "candidate_response", "baseline_response", "response"
    ).get(pk=item_pk)


def round_item_count(round_: Round) -> int:
    """Items a worker may be given: comparisons and checks."""
    return Item.objects.filter(round=round_).count()


def round_item_count_recent(round_pk: int) -> int:
    """The round's item count as of at most CROWD_PROGRESS_CACHE_SECONDS ago, for the crowd
    page's progress bar after each answer, where counting every time would cost more than
    the answer itself."""
    key = f"round-item-count:{round_pk}"
    count = cache.get(key)
    if count is None:
        count = Item.objects.filter(round_id=round_pk).count()
        cache.set(key, count, settings.CROWD_PROGRESS_CACHE_SECONDS)
    return int(count)


def round_awaits_items(round_: Round, item_count: int) -> bool:
    """Whether items may still appear: some pairs lack responses that are being generated.

    A model is being generated for the round once a launch gave it a settings key; before
    any launch, a round without items waits if one of its models can generate at all.
    """
    # A comparison per prompt and baseline; a rated answer per prompt and model.
    per_prompt = round_.baselines.count() + (1 if round_.is_absolute else 0)
    expected = Prompt.objects.filter(prompt_set_id=round_.prompt_set_id).count() * per_prompt
    item_count -= Item.objects.filter(round=round_, check_kind=Item.Check.ATTENTION).count()
    if item_count >= expected:
        return False
    if any(round_.response_keys.values()):
        return True
    return item_count == 0 and (
        LanguageModel.objects.filter(Q(pk=round_.candidate_id) | Q(rounds_as_baseline=round_))
        .exclude(backend=LanguageModel.Backend.IMPORTED)
        .exists()
    )
