"""The one way an absolute judgment is stored: a judge run's on a round's responses, or one
imported (MT-Bench single-answer grades)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from annotation.models import Annotator, LanguageModel, Rating

Scale = Rating.Scale
LABELS: dict[str, tuple[str, ...]] = {
    Scale.FAIL_PASS_EXCELLENT: ("fail", "pass", "excellent"),
    Scale.SAFETY: ("safe", "partly", "unsafe"),
}
SCORE_RANGES: dict[str, tuple[float, float]] = {
    Scale.HELPFULNESS_1_6: (1.0, 6.0),
    Scale.MT_BENCH_1_10: (1.0, 10.0),
}
WHOLE_SCORES: set[str] = {Scale.HELPFULNESS_1_6}
LOOKUP_CHUNK = 5000


class RatingInvalid(ValueError):
    """A value that is not on its scale; the message says what the scale takes."""


def rating_value(scale: str, value: object) -> tuple[str, float | None]:
    """(label, score) of a value given on the scale: a label of a labelled scale (any case), or
    a number (or its text) of a numeric one."""
    if scale in LABELS:
        label = value.strip().lower() if isinstance(value, str) else None
        if label not in LABELS[scale]:
            raise RatingInvalid(f"expected one of {', '.join(LABELS[scale])}, found {value!r}")
        return label, None
    if scale not in SCORE_RANGES:
        raise RatingInvalid(f"unknown scale {scale!r}; known: {', '.join(Scale.values)}")
    low, high = SCORE_RANGES[scale]
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        number = math.nan
    if isinstance(value, bool) or not (low <= number <= high):
        raise RatingInvalid(f"expected a score from {low:g} to {high:g}, found {value!r}")
    if scale in WHOLE_SCORES and not number.is_integer():
        raise RatingInvalid(f"expected a whole score from {low:g} to {high:g}, found {value!r}")
    return "", number


@dataclass(frozen=True)
class RatingGiven:
    """One judgment to store: of a response the platform holds (response_id), or of a model's
    answer known only by its question (an imported grade)."""

    model_id: int
    question: str
    scale: str
    label: str = ""
    score: float | None = None
    turn: int = 1
    response_id: int | None = None

    def key(self) -> tuple:
        if self.response_id is not None:
            return ("response", self.response_id, self.turn, self.scale)
        return ("question", self.model_id, self.question, self.turn, self.scale)


@dataclass
class RatingsRecorded:
    created: int = 0
    # Already stored with the same value.
    unchanged: int = 0
    # Already stored with another value, which is kept: a re-import that disagrees.
    conflicts: int = 0


def _stored_key(rating: Rating) -> tuple:
    if rating.response_id is not None:
        return ("response", rating.response_id, rating.turn, rating.scale)
    return ("question", rating.model_id, rating.question, rating.turn, rating.scale)


def ratings_record(
    *, annotator: Annotator, ratings: Sequence[RatingGiven], source: str = ""
) -> RatingsRecorded:
    """Store the ratings the annotator has not given yet, in a few queries. Idempotent: one
    already stored keeps its value, and is counted unchanged or as a conflict. The models must
    be of the annotator's project."""
    outcome = RatingsRecorded()
    if not ratings:
        return outcome
    model_ids = {rating.model_id for rating in ratings}
    foreign = LanguageModel.objects.filter(pk__in=model_ids).exclude(
        project_id=annotator.project_id
    )
    if foreign.exists():
        raise ValueError(f"{annotator} belongs to another project than these models.")
    # Only the rows these ratings could collide with (a judge run writes in batches), read in
    # chunks: PostgreSQL takes at most 65,535 parameters a statement.
    scales = {rating.scale for rating in ratings}
    of_responses = sorted({r.response_id for r in ratings if r.response_id is not None})
    of_questions = sorted({r.question for r in ratings if r.response_id is None})
    candidates = Rating.objects.filter(annotator=annotator, scale__in=scales).only(
        "response_id", "model_id", "question", "turn", "scale", "label", "score"
    )
    parts = [
        candidates.filter(response_id__in=of_responses[start : start + LOOKUP_CHUNK])
        for start in range(0, len(of_responses), LOOKUP_CHUNK)
    ] + [
        candidates.filter(
            response__isnull=True,
            model_id__in=model_ids,
            question__in=of_questions[start : start + LOOKUP_CHUNK],
        )
        for start in range(0, len(of_questions), LOOKUP_CHUNK)
    ]
    stored = {
        _stored_key(rating): (rating.label, rating.score) for part in parts for rating in part
    }
    new: dict[tuple, Rating] = {}
    for given in ratings:
        label, score = rating_value(given.scale, given.label or given.score)
        key = given.key()
        if key in stored:
            if stored[key] == (label, score):
                outcome.unchanged += 1
            else:
                outcome.conflicts += 1
            continue
        if key in new:
            raise ValueError(f"The same rating is given twice: {key}.")
        new[key] = Rating(
            annotator=annotator,
            model_id=given.model_id,
            response_id=given.response_id,
            question=given.question,
            turn=given.turn,
            scale=given.scale,
            label=label,
            score=score,
            source=source[:300],
        )
    # A worker writing the same ratings at the same moment: its rows stay, and `created` counts
    # them too (an upper bound, exact without such a race).
    Rating.objects.bulk_create(list(new.values()), batch_size=1000, ignore_conflicts=True)
    outcome.created = len(new)
    return outcome


def ratings_record_per_annotator(
    *, project_id: int, kind: str, ratings: dict[str, list[RatingGiven]], source: str = ""
) -> RatingsRecorded:
    """ratings_record for each named annotator of the kind (created if new), in name order;
    the outcome adds theirs up."""
    total = RatingsRecorded()
    for name, given in sorted(ratings.items()):
        annotator, _ = Annotator.objects.get_or_create(project_id=project_id, kind=kind, name=name)
        recorded = ratings_record(annotator=annotator, ratings=given, source=source)
        total.created += recorded.created
        total.unchanged += recorded.unchanged
        total.conflicts += recorded.conflicts
    return total
