"""MT-Bench single-answer grades (FastChat llm_judge `model_judgment/*_single.jsonl`): one
record per model, question and turn, with the judge's score from 1 to 10. They become the
project's ratings on the MT-Bench scale, one judge annotator per judge; the answers' texts are
not in the file, so a grade names only the model, the question and the turn."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db import transaction

from annotation.imports.arena import judge_name
from annotation.imports.ratings import RatingsSummary
from annotation.imports.records import (
    ImportFailed,
    Record,
    checked_name,
    checked_turn,
    optional_id,
    read_records,
    required_name,
    shown,
)
from annotation.imports.responses import models_by_name
from annotation.models import Annotator, Project, Rating
from annotation.services.ratings import (
    RatingGiven,
    RatingInvalid,
    rating_value,
    ratings_record_per_annotator,
)

SCALE = Rating.Scale.MT_BENCH_1_10
# FastChat's gen_judgment.py writes -1 when it cannot read "[[rating]]" in the judgment, and
# its show_result.py leaves those out of every mean.
UNREAD_SCORE = -1
DROPPED_UNREAD = (
    "a judgment whose reply gave no rating (score -1), which FastChat's results leave out"
)


@dataclass
class SingleSummary(RatingsSummary):
    dropped: Counter[str] = field(default_factory=Counter)


def is_single_answer(record: Record) -> bool:
    """A single-answer record (a score), not a pairwise one (g1_winner, g2_winner)."""
    return "score" in record.data and "g1_winner" not in record.data


def mt_bench_single_import(
    *, project: Project, raw: bytes, file: str, judge: str | None = None
) -> SingleSummary:
    """Import every grade of the file, all or nothing; a grade the judge already gave is
    skipped, and counted as a conflict if its score differs. The judge is the record's own
    (`judge: [model, prompt]`) unless `judge` names one for the whole file."""
    if judge is not None:
        judge = checked_name(judge, file, "the judge's name").strip()
    summary = SingleSummary()
    seen: dict[tuple[str, str, int, str], int] = {}
    parsed: list[tuple[str, str, str, int, float]] = []
    for record in read_records(raw, file):
        if "g1_winner" in record.data:
            raise ImportFailed(
                file,
                "a pairwise judgment in a file of single-answer grades; import the *_pair.jsonl "
                "file on its own",
                line=record.line,
                field="g1_winner",
            )
        model = required_name(record, "model", file)
        question = optional_id(record, "question_id", file)
        if question is None:
            raise ImportFailed(
                file,
                "expected the question's id, found none",
                line=record.line,
                field="question_id",
            )
        turn = checked_turn(record, file)
        score = record.data.get("score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise ImportFailed(
                file,
                f"expected a score from 1 to 10 (or -1 for no rating), found {shown(score)}",
                line=record.line,
                field="score",
            )
        if score == UNREAD_SCORE:
            summary.dropped[DROPPED_UNREAD] += 1
            continue
        try:
            _, value = rating_value(SCALE, score)
        except RatingInvalid as problem:
            raise ImportFailed(
                file, f"{problem} (or -1 for no rating)", line=record.line, field="score"
            ) from None
        assert value is not None  # A numeric scale always gives its number.
        by = judge or judge_name(record, file)
        key = (by, model, turn, question)
        if key in seen:
            raise ImportFailed(
                file,
                f"the same judge, model, question and turn as line {seen[key]}",
                line=record.line,
                field="question_id",
            )
        seen[key] = record.line
        parsed.append((by, model, question, turn, value))
    with transaction.atomic():
        models = models_by_name(project, {p[1] for p in parsed}, summary)
        given: dict[str, list[RatingGiven]] = defaultdict(list)
        for by, model, question, turn, value in parsed:
            given[by].append(RatingGiven(models[model].pk, question, SCALE, score=value, turn=turn))
        recorded = ratings_record_per_annotator(
            project_id=project.pk, kind=Annotator.Kind.JUDGE, ratings=given, source=file
        )
    summary.add(recorded, given)
    return summary
