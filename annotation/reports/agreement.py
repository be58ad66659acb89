"""Tie-discounted agreement within and across annotator groups, with the usual coefficients.

Two labels on one item score 1 when equal, 0.5 when exactly one is a tie and 0 otherwise
(LIMA, Section 4.1). A cell's agreement is the mean score over every pair of distinct
annotators that labelled the same item: within a group, pairs inside it; across two groups,
one annotator from each. The sums follow from each item's label counts, so no pair of
annotators is ever enumerated. With c_k labels k on an item (n in all) within a group:

  equal pairs = sum_k c_k (c_k - 1) / 2, one-tie pairs = c_tie (n - c_tie), pairs = n (n - 1) / 2

and across groups with a_k (n in all) and b_k (m in all):

  equal pairs = sum_k a_k b_k, one-tie pairs = a_tie (m - b_tie) + b_tie (n - a_tie), pairs = n m
"""

import warnings
from dataclasses import dataclass

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from annotation.reports.counts import LABELS, TIE, LabelCounts
from annotation.reports.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ratio, rng_for


@dataclass(frozen=True)
class PairSums:
    """Per item: pairs with equal labels, pairs where exactly one label is a tie, all pairs."""

    equal: np.ndarray
    one_tie: np.ndarray
    pairs: np.ndarray


def pair_sums(a: np.ndarray, b: np.ndarray | None = None) -> PairSums:
    """From (items, 3) label counts: pairs inside `a`, or pairs across `a` and `b`."""
    a = np.asarray(a, dtype=np.int64)
    n = a.sum(axis=1)
    if b is None:
        return PairSums(
            equal=(a * (a - 1) // 2).sum(axis=1),
            one_tie=a[:, TIE] * (n - a[:, TIE]),
            pairs=n * (n - 1) // 2,
        )
    b = np.asarray(b, dtype=np.int64)
    m = b.sum(axis=1)
    return PairSums(
        equal=(a * b).sum(axis=1),
        one_tie=a[:, TIE] * (m - b[:, TIE]) + b[:, TIE] * (n - a[:, TIE]),
        pairs=n * m,
    )


def tie_discounted(sums: PairSums) -> float:
    """Mean pair score in percent (nan when there is no pair)."""
    total = sums.pairs.sum()
    return (
        float(100 * (sums.equal.sum() + sums.one_tie.sum() / 2) / total) if total else float("nan")
    )


@dataclass(frozen=True)
class AgreementCell:
    a: str
    b: str
    items: int
    pairs: int
    agreement: float  # tie-discounted, percent
    ci95: tuple[float, float]
    raw: float  # equal labels only, no half credit for a tie; percent
    cohen_kappa: float | None  # when the cell is two annotators
    fleiss_kappa: float | None  # within a group
    krippendorff_alpha: float | None  # within a group

    def as_json(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "items": self.items,
            "pairs": self.pairs,
            "agreement": self.agreement,
            "ci95": list(self.ci95),
        }


def _defined(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def cohen_kappa(frame: pd.DataFrame, first: int, second: int) -> float | None:
    """Cohen's kappa of two annotators over the items both labelled."""
    labels = frame.loc[frame["annotator"].isin([first, second]), ["item", "annotator", "label"]]
    table = labels.pivot(index="item", columns="annotator", values="label").dropna()
    if table.empty:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        kappa = cohen_kappa_score(
            table[first].astype(int), table[second].astype(int), labels=range(len(LABELS))
        )
    return _defined(kappa)


def fleiss(counts: np.ndarray) -> float | None:
    """Fleiss' kappa over the items with the most common number of raters (it needs a
    constant number of raters per item; at least two)."""
    raters = counts.sum(axis=1)
    rated = raters[raters >= 2]
    if not len(rated):
        return None
    values, frequency = np.unique(rated, return_counts=True)
    table = counts[raters == values[frequency.argmax()]]
    with np.errstate(all="ignore"):
        return _defined(fleiss_kappa(table, method="fleiss"))


def krippendorff_alpha(counts: np.ndarray) -> float | None:
    """Krippendorff's alpha (nominal) from per-item label counts; missing labels allowed."""
    table = counts[counts.sum(axis=1) >= 2]
    if not len(table):
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _defined(
            krippendorff.alpha(value_counts=table, level_of_measurement="nominal", dtype=float)
        )


def agreement_table(
    frame: pd.DataFrame,
    label_counts: LabelCounts,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[AgreementCell]:
    """Every group with itself and with each later group, where some item has a pair.

    The interval resamples items, keeping all pairs on an item together.
    """
    annotators = frame.groupby("group", observed=True)["annotator"].unique()
    groups = label_counts.groups
    cells = []
    for i, a in enumerate(groups):
        for b in groups[i:]:
            within = a == b
            counts_a = label_counts.group(a)
            sums = pair_sums(counts_a, None if within else label_counts.group(b))
            has_pair = sums.pairs > 0
            if not has_pair.any():
                continue
            low, high = bootstrap_ratio(
                2 * sums.equal[has_pair] + sums.one_tie[has_pair],
                2 * sums.pairs[has_pair],
                resamples=resamples,
                rng=rng_for(seed, "agreement", a, b),
            )
            pairs = int(sums.pairs.sum())
            people = list(annotators[a]) if within else [*annotators[a], *annotators[b]]
            two_people = len(people) == 2 and (within or len(annotators[a]) == 1)
            cells.append(
                AgreementCell(
                    a=a,
                    b=b,
                    items=int(has_pair.sum()),
                    pairs=pairs,
                    agreement=tie_discounted(sums),
                    ci95=(100 * low, 100 * high),
                    raw=100 * int(sums.equal.sum()) / pairs,
                    cohen_kappa=cohen_kappa(frame, *people) if two_people else None,
                    fleiss_kappa=fleiss(counts_a) if within else None,
                    krippendorff_alpha=krippendorff_alpha(counts_a) if within else None,
                )
            )
    return cells
