"""Absolute judgments per model: MT-Bench's single-answer table (mean score per turn and over
both, as FastChat's show_result prints it), the mean helpfulness, the Fail / Pass / Excellent
and the safe / partly / unsafe shares, each with a bootstrap interval over the questions."""

import warnings
from dataclasses import dataclass, field
from typing import Literal

import krippendorff
import numpy as np
import pandas as pd
from django.db.models import Q, QuerySet

from annotation.models import Item, Rating, Response
from annotation.reports.frames import annotator_groups
from annotation.reports.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ratio, rng_for

Scale = Rating.Scale


@dataclass(frozen=True)
class Labelled:
    """A labelled scale: its labels from worst to best, and those its headline share counts."""

    labels: tuple[str, ...]
    headline: frozenset[str]
    headline_title: str


LABELLED: dict[str, Labelled] = {
    # The paper's §4.3: "pass or excellent" is the share that meets the prompt's requirements.
    Scale.FAIL_PASS_EXCELLENT: Labelled(
        ("fail", "pass", "excellent"), frozenset({"pass", "excellent"}), "pass or excellent"
    ),
    # The paper's safety study reports the share answered safely.
    Scale.SAFETY: Labelled(("unsafe", "partly", "safe"), frozenset({"safe"}), "safe"),
}
COLUMNS = ["annotator", "kind", "model", "response", "question", "turn", "scale", "label", "score"]


def rating_rows(
    project_id: int,
    *,
    round_id: int | None = None,
    scale: str | None = None,
    responses: "QuerySet[Response] | None" = None,
) -> pd.DataFrame:
    """One row per rating of the project (of the round's responses only, or of the
    `responses` only, when given)."""
    # Check items test the people who answer them, and an excluded worker's ratings are left
    # out, as from every result; ratings made outside a round (judges, imports) have no item.
    ratings = (
        Rating.objects.filter(annotator__project_id=project_id)
        .filter(Q(item__isnull=True) | Q(item__check_kind=""))
        .exclude(assignment__session__excluded_at__isnull=False)
    )
    if responses is not None:
        ratings = ratings.filter(response__in=responses)
    if round_id is not None:
        shown = Item.objects.filter(round_id=round_id).shown_responses()
        # Judges' ratings of the answers shown, and people's given in this round (not in
        # another round of the same answers).
        ratings = ratings.filter(response__in=shown).filter(
            Q(item__isnull=True) | Q(item__round_id=round_id)
        )
    if scale is not None:
        ratings = ratings.filter(scale=scale)
    # A fixed order: the interval's resampling numbers the questions in the order read.
    ordered = ratings.order_by("annotator__name", "model__name", "question", "turn", "pk")
    rows = ordered.values_list(
        "annotator__name",
        "annotator__kind",
        "model__name",
        "response_id",
        "question",
        "turn",
        "scale",
        "label",
        "score",
    )
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    frame["group"] = annotator_groups(frame["kind"], frame["annotator"])
    return frame


@dataclass(frozen=True)
class ModelRatings:
    model: str
    n: int
    # Numeric scales: the mean over every rating, and per turn (MT-Bench); labelled: the
    # share of each label in percent.
    mean: float | None = None
    turn_means: dict[int, float] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)
    ci95: tuple[float, float] | None = None

    def as_json(self) -> dict:
        return {
            "model": self.model,
            "n": self.n,
            "mean": self.mean,
            "turn_means": {str(turn): mean for turn, mean in self.turn_means.items()},
            "shares": self.shares,
            "ci95": list(self.ci95) if self.ci95 else None,
        }


@dataclass(frozen=True)
class RatingTable:
    """One annotator group's ratings on one scale, a row per model, best first."""

    group: str
    scale: str
    rows: list[ModelRatings]

    @property
    def title(self) -> str:
        return f"{self.group}: {Scale(self.scale).label}"

    def as_json(self) -> dict:
        return {
            "group": self.group,
            "scale": self.scale,
            "models": [row.as_json() for row in self.rows],
        }


def rating_tables(
    rows: pd.DataFrame, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> list[RatingTable]:
    """Per group and scale, per model: MT-Bench's mean per turn and over all its grades (the
    numbers FastChat's show_result.py prints), a numeric scale's mean, a labelled scale's
    shares; the interval resamples the questions (both turns of a question go together)."""
    if rows.empty:
        return []
    tables = []
    for (group, scale), of_scale in rows.groupby(["group", "scale"], sort=True):
        models = []
        for model, of_model in of_scale.groupby("model", sort=True):
            rng = rng_for(seed, "ratings", str(group), str(scale), str(model))
            models.append(_model_ratings(str(model), str(scale), of_model, resamples, rng))
        if scale in LABELLED:
            counted = LABELLED[scale].headline
            models.sort(key=lambda m: (-sum(m.shares[label] for label in counted), m.model))
        else:
            models.sort(key=lambda m: (-(m.mean or 0.0), m.model))
        tables.append(RatingTable(str(group), str(scale), models))
    return tables


def _model_ratings(
    model: str, scale: str, rows: pd.DataFrame, resamples: int, rng: np.random.Generator
) -> ModelRatings:
    questions = pd.factorize(rows["question"])[0]
    if scale in LABELLED:
        labelled = LABELLED[scale]
        shares = {label: float(100 * (rows["label"] == label).mean()) for label in labelled.labels}
        # The interval of the headline share (pass or excellent; safe).
        counted = rows["label"].isin(labelled.headline).to_numpy(dtype=float)
        interval = _interval(counted, questions, resamples, rng, percent=True)
        return ModelRatings(model, len(rows), shares=shares, ci95=interval)
    scores = rows["score"].to_numpy(dtype=float)
    turn_means = {
        int(turn): float(of_turn.mean())
        for turn, of_turn in rows.groupby("turn", sort=True)["score"]
    }
    return ModelRatings(
        model,
        len(rows),
        mean=float(scores.mean()),
        turn_means=turn_means,
        ci95=_interval(scores, questions, resamples, rng),
    )


def _interval(
    values: np.ndarray,
    clusters: np.ndarray,
    resamples: int,
    rng: np.random.Generator,
    *,
    percent: bool = False,
) -> tuple[float, float] | None:
    """95 % percentile interval of the mean, resampling whole questions with replacement;
    `percent`: the values are 0/1 and the interval is of their share in percent."""
    count = int(clusters.max()) + 1 if len(clusters) else 0
    if count < 2 or resamples <= 0:
        return None
    sums = np.bincount(clusters, weights=values, minlength=count)
    sizes = np.bincount(clusters, minlength=count).astype(float)
    draws = rng.multinomial(count, np.full(count, 1 / count), size=resamples).astype(float)
    means = (draws @ sums) / (draws @ sizes)
    low, high = np.percentile(means, [2.5, 97.5])
    scale = 100.0 if percent else 1.0
    return float(low * scale), float(high * scale)


@dataclass(frozen=True)
class RatingAgreement:
    """How often two ratings of the same answer on one scale are equal: within a group (pairs
    of its annotators) or across two (one annotator from each)."""

    a: str
    b: str
    scale: str
    answers: int
    pairs: int
    agreement: float
    ci95: tuple[float, float] | None
    # Numeric scales: the mean absolute difference of the two scores of a pair.
    mean_abs_difference: float | None = None
    # Within a group: Krippendorff's alpha, ordinal on a numeric scale, nominal otherwise.
    krippendorff_alpha: float | None = None

    def as_json(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "scale": self.scale,
            "answers": self.answers,
            "pairs": self.pairs,
            "agreement": self.agreement,
            "ci95": list(self.ci95) if self.ci95 else None,
            "mean_abs_difference": self.mean_abs_difference,
            "krippendorff_alpha": self.krippendorff_alpha,
        }


def rating_agreement(
    rows: pd.DataFrame, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> list[RatingAgreement]:
    """Per scale, every group with itself and each later group, where some answer has a pair
    of ratings: the share of pairs that agree exactly (with a 95 % interval resampling the
    answers), the mean absolute difference on a numeric scale, and Krippendorff's alpha
    within a group. An answer is its response, or its model, question and turn."""
    if rows.empty:
        return []
    rows = rows.assign(
        value=[
            label or f"{score:g}" for label, score in zip(rows["label"], rows["score"], strict=True)
        ],
        answer=[
            f"r{response:.0f}\0{turn}" if pd.notna(response) else f"{model}\0{question}\0{turn}"
            for response, model, question, turn in zip(
                rows["response"], rows["model"], rows["question"], rows["turn"], strict=True
            )
        ],
    )
    cells = []
    for scale, of_scale in rows.groupby("scale", sort=True):
        numeric = scale not in LABELLED
        values = sorted(set(of_scale["value"]), key=lambda v: float(v) if numeric else v)
        answers = pd.Index(sorted(set(of_scale["answer"])))
        groups = sorted(set(of_scale["group"]))
        counts = {
            group: of_scale[of_scale["group"] == group]
            .pivot_table(index="answer", columns="value", aggfunc="size", fill_value=0)
            .reindex(index=answers, columns=values, fill_value=0)
            .to_numpy(dtype=np.int64)
            for group in groups
        }
        scores = np.array([float(v) for v in values]) if numeric else None
        for i, a in enumerate(groups):
            for b in groups[i:]:
                cell = _agreement_cell(
                    str(scale), a, b, counts[a], counts[b], scores, resamples, seed
                )
                if cell is not None:
                    cells.append(cell)
    return cells


def _agreement_cell(
    scale: str,
    a: str,
    b: str,
    counts_a: np.ndarray,
    counts_b: np.ndarray,
    scores: np.ndarray | None,
    resamples: int,
    seed: int,
) -> RatingAgreement | None:
    within = a == b
    n, m = counts_a.sum(axis=1), counts_b.sum(axis=1)
    if within:
        equal = (counts_a * (counts_a - 1) // 2).sum(axis=1)
        pairs = n * (n - 1) // 2
    else:
        equal = (counts_a * counts_b).sum(axis=1)
        pairs = n * m
    has_pair = pairs > 0
    if not has_pair.any():
        return None
    interval = None
    if has_pair.sum() >= 2 and resamples > 0:
        low, high = bootstrap_ratio(
            equal[has_pair],
            pairs[has_pair],
            resamples=resamples,
            rng=rng_for(seed, "rating-agreement", scale, a, b),
        )
        interval = (100 * low, 100 * high)
    difference = None
    if scores is not None:
        # Sum over pairs of |x - y|: from the counts, label by label.
        gaps = np.abs(scores[:, None] - scores[None, :])
        if within:
            total = np.einsum("ik,kl,il->", counts_a, gaps, counts_a) / 2
        else:
            total = np.einsum("ik,kl,il->", counts_a, gaps, counts_b)
        difference = float(total / pairs.sum())
    alpha = None
    if within:
        alpha = _krippendorff(counts_a, "ordinal" if scores is not None else "nominal")
    return RatingAgreement(
        a=a,
        b=b,
        scale=scale,
        answers=int(has_pair.sum()),
        pairs=int(pairs.sum()),
        agreement=float(100 * equal.sum() / pairs.sum()),
        ci95=interval,
        mean_abs_difference=difference,
        krippendorff_alpha=alpha,
    )


def _krippendorff(counts: np.ndarray, level: Literal["nominal", "ordinal"]) -> float | None:
    table = counts[counts.sum(axis=1) >= 2]
    if not len(table) or (table.sum(axis=0) > 0).sum() < 2:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        alpha = krippendorff.alpha(value_counts=table, level_of_measurement=level, dtype=float)
    return float(alpha) if np.isfinite(alpha) else None
