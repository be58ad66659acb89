"""Reads for the dialogue pages: the dialogues a researcher may see, each answer's label, and
the report over a project's labelled answers."""

from dataclasses import dataclass

import pandas as pd
from django.db.models import QuerySet

from annotation.models import Rating
from annotation.reports.ratings import RatingTable, rating_rows, rating_tables
from annotation.selectors import Viewer, visible_to
from inference.dialogue.models import Dialogue

SCALE = Rating.Scale.FAIL_PASS_EXCELLENT
QUESTION_PREFIX = "dialogue-"


def dialogues_for_user(user: Viewer) -> QuerySet[Dialogue]:
    return visible_to(user, Dialogue.objects.all()).select_related("project", "model", "annotator")


def dialogue_labels(dialogue: Dialogue) -> dict[int, str]:
    """The annotator's label of each answer, by its number."""
    return dict(
        Rating.objects.filter(
            annotator=dialogue.annotator,
            model=dialogue.model,
            question=dialogue.question,
            scale=SCALE,
        ).values_list("turn", "label")
    )


def dialogue_rows(project_id: int) -> pd.DataFrame:
    """Every labelled answer of the project's dialogues, one row each (rating_rows' columns)."""
    rows = rating_rows(project_id, scale=SCALE)
    return rows[rows["question"].str.startswith(QUESTION_PREFIX)].reset_index(drop=True)


@dataclass(frozen=True)
class DialogueModelRow:
    """A model's labelled answers in dialogues: the paper's Section 6 figures."""

    model: str
    dialogues: int
    answers: int
    fails: int
    shares: dict[str, float]
    # 95 % interval of the pass-or-excellent share, resampling dialogues.
    ci95: tuple[float, float] | None


def dialogue_report(project_id: int) -> tuple[list[DialogueModelRow], list[RatingTable]]:
    """Per model: dialogues, answers labelled, how many failed, the share of each label; and the
    tables the ratings figure draws (one per group of annotators)."""
    rows = dialogue_rows(project_id)
    tables = rating_tables(rows)
    per_model: dict[str, DialogueModelRow] = {}
    for table in tables:
        for row in table.rows:
            of_model = rows[(rows["model"] == row.model) & (rows["group"] == table.group)]
            per_model[f"{table.group}\0{row.model}"] = DialogueModelRow(
                model=row.model if table.group == "author" else f"{row.model} ({table.group})",
                dialogues=of_model["question"].nunique(),
                answers=row.n,
                fails=int((of_model["label"] == "fail").sum()),
                shares=row.shares,
                ci95=row.ci95,
            )
    return list(per_model.values()), tables
