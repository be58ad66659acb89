"""Judge diagnostics: position bias, win rate against length difference, agreement with humans."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from annotation.reports.agreement import pair_sums, tie_discounted
from annotation.reports.alpaca_eval import AlpacaEvalFigures, alpaca_eval_figures
from annotation.reports.counts import BASELINE, CANDIDATE, HUMAN_GROUPS, TIE, LabelCounts
from annotation.reports.stats import Outcome, majority_counts

LENGTH_BINS = 5


@dataclass(frozen=True)
class PositionBias:
    """Verdicts for the answer shown first (Answer A), for the second, and ties."""

    first: int
    second: int
    ties: int

    @property
    def prefers_first(self) -> float | None:
        """Percent of the decisive verdicts that went to Answer A; 50 is no bias."""
        decisive = self.first + self.second
        return 100 * self.first / decisive if decisive else None

    @property
    def p_value(self) -> float | None:
        """Two-sided binomial test of "A and B are preferred equally often"."""
        decisive = self.first + self.second
        return float(binomtest(self.first, decisive).pvalue) if decisive else None


def position_bias(label: np.ndarray, candidate_first: np.ndarray) -> PositionBias:
    label, candidate_first = np.asarray(label), np.asarray(candidate_first, dtype=bool)
    first = ((label == CANDIDATE) & candidate_first) | ((label == BASELINE) & ~candidate_first)
    ties = int((label == TIE).sum())
    return PositionBias(int(first.sum()), len(label) - ties - int(first.sum()), ties)


@dataclass(frozen=True)
class LengthBin:
    """Verdicts whose length difference (candidate minus baseline, characters) is in
    [low, high]."""

    low: int
    high: int
    outcome: Outcome


def length_bins(
    label: np.ndarray, length_difference: np.ndarray, *, bins: int = LENGTH_BINS
) -> list[LengthBin]:
    """Outcomes in bins of equal size by length difference (fewer when differences repeat)."""
    label, difference = np.asarray(label), np.asarray(length_difference)
    if not len(label):
        return []
    edges = np.unique(np.quantile(difference, np.linspace(0, 1, bins + 1)).round())
    which = np.searchsorted(edges[1:-1], difference, side="right")
    result = []
    for index in range(max(len(edges) - 1, 1)):
        chosen = which == index
        if not chosen.any():
            continue
        wins, ties, losses = np.bincount(label[chosen], minlength=3)
        low, high = difference[chosen].min(), difference[chosen].max()
        result.append(LengthBin(int(low), int(high), Outcome(int(wins), int(ties), int(losses))))
    return result


@dataclass(frozen=True)
class JudgeDiagnostics:
    judge: str
    position: PositionBias
    length_bins: list[LengthBin]
    human_agreement: float | None  # tie-discounted, percent, against the human majority
    human_items: int
    # AlpacaEval's figures, when every verdict of the judge carries its preference.
    alpaca_eval: AlpacaEvalFigures | None = None


ORDER_VOTE_COLUMNS = ["annotation", "group", "candidate_first", "label"]


def judge_diagnostics(
    frame: pd.DataFrame, label_counts: LabelCounts, order_votes: pd.DataFrame | None = None
) -> list[JudgeDiagnostics]:
    """For each group that is not human: its diagnostics over all its verdicts.

    `order_votes` (ORDER_VOTE_COLUMNS) holds the separate votes behind verdicts combined from
    both orders; position bias counts those votes in place of the combined verdict, whose
    order means nothing.
    """
    if order_votes is None:
        order_votes = pd.DataFrame(columns=ORDER_VOTE_COLUMNS)
    human = [g for g in label_counts.groups if g in HUMAN_GROUPS]
    human_counts = sum(
        (label_counts.group(g) for g in human),
        np.zeros((len(label_counts.items), 3), dtype=np.int64),
    )
    majority = majority_counts(human_counts)
    result = []
    for judge in label_counts.groups:
        if judge in HUMAN_GROUPS:
            continue
        rows = frame[frame["group"] == judge]
        sums = pair_sums(label_counts.group(judge), majority)
        items = int((sums.pairs > 0).sum())
        label = rows["label"].to_numpy()
        votes = order_votes[order_votes["group"] == judge]
        # Only verdicts whose order shown is known can tell a position bias.
        single = rows[~rows["annotation"].isin(votes["annotation"]) & rows["order_known"]]
        result.append(
            JudgeDiagnostics(
                judge=judge,
                position=position_bias(
                    np.concatenate([single["label"].to_numpy(), votes["label"].to_numpy()]),
                    np.concatenate(
                        [single["candidate_first"].to_numpy(), votes["candidate_first"].to_numpy()]
                    ),
                ),
                length_bins=length_bins(
                    label, (rows["candidate_chars"] - rows["baseline_chars"]).to_numpy()
                ),
                human_agreement=tie_discounted(sums) if items else None,
                human_items=items,
                alpaca_eval=alpaca_eval_figures(rows["preference"])
                if len(rows) and rows["preference"].notna().all()
                else None,
            )
        )
    return result
