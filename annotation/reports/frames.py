"""A round's (or a project's) annotations as a data frame, read in one query.

These are the only functions of the reports package that read the database; everything else
works on the frames they return, so that the page, the API, the CLI and the benchmark share
one code path.
"""

import numpy as np
import pandas as pd
from django.db.models import Q
from django.db.models.functions import Length

from annotation.models import Annotation, Annotator, Battle
from annotation.reports.counts import LABELS, annotation_frame
from annotation.reports.judges import ORDER_VOTE_COLUMNS

BATTLE_LABELS = {
    Battle.Winner.MODEL_A: LABELS.index("candidate"),
    Battle.Winner.MODEL_B: LABELS.index("baseline"),
    Battle.Winner.TIE: LABELS.index("tie"),
    Battle.Winner.TIE_BOTHBAD: LABELS.index("tie"),
}


def counted(*, include_excluded: bool = False) -> Q:
    """The annotations results count: never those on check items (gold, attention), and not
    those of excluded workers unless asked, for the figures with them."""
    rule = Q(item__check_kind="")
    if not include_excluded:
        rule &= ~Q(assignment__session__excluded_at__isnull=False)
    return rule


def annotator_groups(kinds: pd.Series, names: pd.Series) -> np.ndarray:
    """Crowd workers and authors are pooled by kind; each model judge is a group of its own,
    told apart from the people's groups when it is named like one ("author (judge)")."""
    kinds, names = kinds.to_numpy(dtype=object), names.to_numpy(dtype=object)
    judge = kinds == Annotator.Kind.JUDGE
    clash = judge & np.isin(names, Annotator.Kind.values)
    named = np.where(clash, names + " (judge)", names) if len(names) else names
    return np.where(judge, named, kinds)


def _groups(raw: pd.DataFrame) -> np.ndarray:
    return annotator_groups(raw["kind"], raw["name"])


def round_frame(round_id: int, *, include_excluded: bool = False) -> pd.DataFrame:
    """Every counted annotation of the round, one row each, read in a single query."""
    rows = (
        Annotation.objects.filter(
            counted(include_excluded=include_excluded), item__round_id=round_id
        )
        .order_by("id")
        .values_list(
            "id",
            "item_id",
            "item__prompt__external_id",
            "item__baseline__name",
            "annotator_id",
            "annotator__kind",
            "annotator__name",
            "choice",
            "candidate_first",
            "seconds_spent",
            "created_at",
            Length("item__candidate_response__text"),
            Length("item__baseline_response__text"),
            "order_known",
            "preference",
        )
    )
    raw = pd.DataFrame.from_records(
        list(rows),
        columns=[
            "annotation",
            "item",
            "prompt",
            "baseline",
            "annotator",
            "kind",
            "name",
            "choice",
            "candidate_first",
            "seconds",
            "created_at",
            "candidate_chars",
            "baseline_chars",
            "order_known",
            "preference",
        ],
    )
    return annotation_frame(
        annotation=raw["annotation"],
        item=raw["item"],
        prompt=raw["prompt"],
        baseline=raw["baseline"],
        annotator=raw["annotator"],
        group=_groups(raw),
        label=raw["choice"].map({label: code for code, label in enumerate(LABELS)}),
        candidate_first=raw["candidate_first"],
        seconds=raw["seconds"],
        created_at=raw["created_at"],
        candidate_chars=raw["candidate_chars"],
        baseline_chars=raw["baseline_chars"],
        order_known=raw["order_known"],
        preference=raw["preference"],
    )


def round_order_votes(round_id: int) -> pd.DataFrame:
    """The separate per-order votes behind judge verdicts combined from both orders."""
    rows = (
        Annotation.objects.filter(
            counted(), item__round_id=round_id, annotator__kind=Annotator.Kind.JUDGE
        )
        .exclude(order_votes=[])
        .values_list("id", "annotator__name", "order_votes")
    )
    codes = {label: code for code, label in enumerate(LABELS)}
    records = [
        (annotation, judge, bool(candidate_first), codes[choice])
        for annotation, judge, votes in rows
        for candidate_first, choice in votes
    ]
    return pd.DataFrame.from_records(records, columns=ORDER_VOTE_COLUMNS)


def project_battles(project_id: int) -> pd.DataFrame:
    """Every annotation in the project's rounds as a battle between two models, in one query.

    Columns: candidate, baseline (model names), group, label (a code into LABELS).
    """
    rows = Annotation.objects.filter(counted(), item__round__project_id=project_id).values_list(
        "item__round__candidate__name",
        "item__baseline__name",
        "annotator__kind",
        "annotator__name",
        "choice",
    )
    raw = pd.DataFrame.from_records(
        list(rows), columns=["candidate", "baseline", "kind", "name", "choice"]
    )
    verdicts = pd.DataFrame(
        {
            "candidate": raw["candidate"],
            "baseline": raw["baseline"],
            "group": _groups(raw),
            "label": raw["choice"].map({label: code for code, label in enumerate(LABELS)}),
        }
    )
    # Imported battle logs: model_a in the candidate's place.
    imported = pd.DataFrame.from_records(
        list(
            Battle.objects.filter(project_id=project_id).values_list(
                "model_a__name", "model_b__name", "group", "winner"
            )
        ),
        columns=["candidate", "baseline", "group", "winner"],
    )
    imported["label"] = imported["winner"].map(BATTLE_LABELS)
    battles = pd.concat([verdicts, imported.drop(columns="winner")], ignore_index=True)
    battles["label"] = battles["label"].astype(np.int8)
    return battles


def round_verdict_rows(round_id: int, *, include_excluded: bool = False) -> pd.DataFrame:
    """Every counted verdict of the round with the texts compared, for the exports.

    Columns: item, prompt_id, instruction, candidate, baseline (model names), candidate_output,
    baseline_output, group, label (a code into LABELS), preference (NaN unless given),
    candidate_first, order_known, order_votes ([[candidate_first, choice], ...] or []).
    """
    return _verdict_rows(Q(item__round_id=round_id), include_excluded=include_excluded)


def project_verdict_rows(project_id: int, *, include_excluded: bool = False) -> pd.DataFrame:
    """round_verdict_rows for every round of the project, round after round."""
    return _verdict_rows(Q(item__round__project_id=project_id), include_excluded=include_excluded)


def _verdict_rows(where: Q, *, include_excluded: bool) -> pd.DataFrame:
    rows = (
        Annotation.objects.filter(counted(include_excluded=include_excluded), where)
        .order_by("item__round_id", "item__position", "id")
        .values_list(
            "item_id",
            "item__prompt__external_id",
            "item__prompt__text",
            "item__round__candidate__name",
            "item__baseline__name",
            "item__candidate_response__text",
            "item__baseline_response__text",
            "annotator__kind",
            "annotator__name",
            "choice",
            "preference",
            "candidate_first",
            "order_known",
            "order_votes",
        )
    )
    raw = pd.DataFrame.from_records(
        list(rows),
        columns=[
            "item",
            "prompt_id",
            "instruction",
            "candidate",
            "baseline",
            "candidate_output",
            "baseline_output",
            "kind",
            "name",
            "choice",
            "preference",
            "candidate_first",
            "order_known",
            "order_votes",
        ],
    )
    raw["group"] = _groups(raw) if len(raw) else pd.Series(dtype=str)
    raw["label"] = raw["choice"].map({label: code for code, label in enumerate(LABELS)})
    raw["preference"] = raw["preference"].astype(float)
    return raw.drop(columns=["kind", "name", "choice"])
