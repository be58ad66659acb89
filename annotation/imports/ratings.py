"""Absolute labels given outside the platform (authors labelling a spreadsheet, another tool's
crowd): one record per answer of a round, `{"prompt_id", "model", "label" or "score",
"annotator", "turn"}`, stored as ratings of the round's responses beside the judge's."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction

from annotation.imports.records import (
    ImportFailed,
    ImportSummary,
    Record,
    checked_name,
    checked_turn,
    optional_id,
    read_records,
    required_name,
    shown,
)
from annotation.models import Annotator, Item, Rating, Round
from annotation.services.ratings import (
    RatingGiven,
    RatingInvalid,
    RatingsRecorded,
    rating_value,
    ratings_record_per_annotator,
)


@dataclass
class RatingsSummary(ImportSummary):
    # Ratings already stored with another value, which is kept.
    conflicts: int = 0
    annotators: list[str] = field(default_factory=list)

    def add(self, recorded: RatingsRecorded, annotators: Iterable[str]) -> None:
        self.created += recorded.created
        self.skipped += recorded.unchanged + recorded.conflicts
        self.conflicts += recorded.conflicts
        self.annotators = sorted({*self.annotators, *annotators})


def _answers(round_: Round) -> dict[tuple[str, str], tuple[int, int]]:
    """(prompt id, model name) -> (response pk, model pk) of every answer the round shows."""
    answers: dict[tuple[str, str], tuple[int, int]] = {}
    items = Item.objects.filter(round=round_, check_kind="")
    for side in ("candidate_response", "baseline_response", "response"):
        for prompt_id, model, response_pk, model_pk in items.values_list(
            "prompt__external_id", f"{side}__model__name", side, f"{side}__model_id"
        ):
            if response_pk is not None:
                answers[(prompt_id, model)] = (response_pk, model_pk)
    return answers


def _value(record: Record, scale: str, file: str) -> tuple[str, float | None]:
    # A spreadsheet's export gives both columns, one of them empty.
    given = [name for name in ("label", "score") if record.data.get(name) not in (None, "")]
    name = given[0] if given else "label" if "label" in record.data else "score"
    value = record.data.get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ImportFailed(
            file,
            f"expected the rating as a label or a number, found {shown(value)}",
            line=record.line,
            field=name,
        )
    try:
        return rating_value(scale, value)
    except RatingInvalid as problem:
        raise ImportFailed(file, str(problem), line=record.line, field=name) from None


def ratings_import(
    *,
    round_: Round,
    raw: bytes,
    file: str,
    scale: str,
    kind: str = Annotator.Kind.AUTHOR,
    annotator: str | None = None,
) -> RatingsSummary:
    """Import every rating of the file, all or nothing. Each names an answer of the round by
    its prompt id and model; the annotator is the record's unless `annotator` names one for
    the whole file. A rating the annotator already gave is skipped (a conflict if it differs)."""
    for what, value, known in (
        ("scale", scale, Rating.Scale.values),
        ("kind", kind, Annotator.Kind.values),
    ):
        if value not in known:
            raise ImportFailed(file, f"unknown {what} {value!r}; known: {', '.join(known)}")
    if annotator is not None:
        annotator = checked_name(annotator, file, "the annotator's name").strip()
    answers = _answers(round_)
    seen: dict[tuple[str, str, str, int], int] = {}
    given: dict[str, list[RatingGiven]] = defaultdict(list)
    for record in read_records(raw, file):
        prompt_id = optional_id(record, "prompt_id", file) or optional_id(record, "id", file)
        if prompt_id is None:
            raise ImportFailed(
                file, "the prompt's id is missing", line=record.line, field="prompt_id"
            )
        model = required_name(record, "model", file)
        answer = answers.get((prompt_id, model))
        if answer is None:
            raise ImportFailed(
                file,
                f"round {round_.pk} shows no answer of {model!r} to prompt {prompt_id!r}",
                line=record.line,
                field="model" if any(p == prompt_id for p, _ in answers) else "prompt_id",
            )
        label, score = _value(record, scale, file)
        by = annotator or required_name(record, "annotator", file)
        turn = checked_turn(record, file)
        key = (by, prompt_id, model, turn)
        if key in seen:
            raise ImportFailed(
                file,
                f"the same annotator, prompt, model and turn as line {seen[key]}",
                line=record.line,
                field="prompt_id",
            )
        seen[key] = record.line
        response_pk, model_pk = answer
        given[by].append(
            RatingGiven(
                model_id=model_pk,
                question=prompt_id,
                scale=scale,
                label=label,
                score=score,
                turn=turn,
                response_id=response_pk,
            )
        )
    with transaction.atomic():
        recorded = ratings_record_per_annotator(
            project_id=round_.project_id, kind=kind, ratings=given, source=file
        )
    summary = RatingsSummary()
    summary.add(recorded, given)
    return summary
