"""Win/tie/loss counts per baseline and group, tie-discounted win rates, bootstrap intervals."""

import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from annotation.reports.counts import CANDIDATE, TIE, LabelCounts

Mode = Literal["annotation", "item"]
MODE_TITLES = {
    "annotation": "per annotation",
    "item": "per item (majority vote, split votes count as ties)",
}
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Outcome:
    wins: int
    ties: int
    losses: int
    ci95: tuple[float, float] | None = None

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def win_rate(self) -> float:
        return win_rate(self.wins, self.ties, self.n)

    @property
    def win_or_tie(self) -> float:
        """The paper's headline: "equivalent or preferred", in percent."""
        return 100 * (self.wins + self.ties) / self.n

    def percents(self) -> tuple[float, float, float]:
        n = self.n
        return (100 * self.wins / n, 100 * self.ties / n, 100 * self.losses / n)

    def as_json(self) -> dict:
        return {
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "n": self.n,
            "win_or_tie": self.win_or_tie,
            "win_rate": self.win_rate,
            "ci95": list(self.ci95) if self.ci95 else None,
        }


def win_rate(wins: float, ties: float, n: float) -> float:
    """The tie-discounted win rate in percent: a tie counts as half a win."""
    return (wins + ties / 2) / n * 100


def rng_for(seed: int, *key: str) -> np.random.Generator:
    """A generator per (seed, cell): a cell's interval does not depend on which others exist."""
    return np.random.default_rng([seed, *(zlib.crc32(part.encode()) for part in key)])


def bootstrap_ratio(
    numerators: np.ndarray,
    denominators: np.ndarray,
    *,
    resamples: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """95 % percentile interval of sum(numerators) / sum(denominators) over resampled units.

    Units are drawn with replacement, as many as there are. Units with equal (numerator,
    denominator) are interchangeable, so the draw is a multinomial over the distinct pairs:
    the cost depends on how many distinct pairs there are, not on how many units.
    Both arrays hold non-negative integers and every denominator is positive.
    """
    numerators = np.asarray(numerators, dtype=np.int64)
    denominators = np.asarray(denominators, dtype=np.int64)
    # One integer per (numerator, denominator): a 1-D unique is several times faster.
    base = int(denominators.max()) + 1
    if int(numerators.max()) * base + base < np.iinfo(np.int64).max:
        keys, frequency = np.unique(numerators * base + denominators, return_counts=True)
        kinds = np.stack([keys // base, keys % base], axis=1)
    else:
        pairs = np.stack([numerators, denominators], axis=1)
        kinds, frequency = np.unique(pairs, axis=0, return_counts=True)
    units = len(numerators)
    draws = rng.multinomial(units, frequency / units, size=resamples).astype(float)
    ratios = (draws @ kinds[:, 0].astype(float)) / (draws @ kinds[:, 1].astype(float))
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def majority_counts(counts: np.ndarray) -> np.ndarray:
    """Each item's annotators replaced by one vote: the label most of them gave, a tie when
    the most-given label is shared. Items nobody labelled stay empty."""
    top = counts.max(axis=-1, keepdims=True)
    leaders = (counts == top) & (top > 0)
    label = np.where(leaders.sum(axis=-1) > 1, TIE, counts.argmax(axis=-1))
    votes = np.zeros_like(counts)
    np.put_along_axis(votes, label[..., None], 1, axis=-1)
    return votes * (top > 0)


def outcomes(
    label_counts: LabelCounts,
    *,
    mode: Mode = "annotation",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, dict[str, Outcome]]:
    """{group: {baseline: Outcome}} for the cells with at least one annotation.

    The interval resamples prompts (within a baseline an item is a prompt), keeping all of a
    prompt's annotations together.
    """
    counts = label_counts.counts if mode == "annotation" else majority_counts(label_counts.counts)
    result: dict[str, dict[str, Outcome]] = {}
    for g, group in enumerate(label_counts.groups):
        cells = {}
        for b, baseline in enumerate(label_counts.baselines):
            rows = counts[label_counts.item_baseline == b, g, :]
            rows = rows[rows.sum(axis=1) > 0]
            if not len(rows):
                continue
            wins, ties, losses = (int(x) for x in rows.sum(axis=0))
            low, high = bootstrap_ratio(
                2 * rows[:, CANDIDATE] + rows[:, TIE],
                2 * rows.sum(axis=1),
                resamples=resamples,
                rng=rng_for(seed, mode, group, baseline),
            )
            cells[baseline] = Outcome(wins, ties, losses, (100 * low, 100 * high))
        if cells:
            result[group] = cells
    return result
