"""Two candidates judged on the same prompts against the same baseline: a paired test.

Each prompt gets a score per candidate: the share of the group's verdicts on it that go the
candidate's way (a tie half). The sign test asks whether one candidate scores higher on more
prompts than chance would give; the paired bootstrap resamples prompts to put an interval on
the difference of the win rates. A difference is reported as supported only when both agree.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from annotation.reports.exchange import CANDIDATE_SHARE
from annotation.reports.stats import DEFAULT_RESAMPLES, DEFAULT_SEED

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class PairedComparison:
    baseline: str
    prompts: int
    first_better: int
    second_better: int
    same: int
    sign_test_p: float | None
    difference: float  # first's win rate minus second's, percentage points
    ci95: tuple[float, float]

    @property
    def supported(self) -> bool:
        """Whether the data support a difference: the sign test and the interval agree."""
        low, high = self.ci95
        return (
            self.sign_test_p is not None
            and self.sign_test_p < SIGNIFICANCE
            and (low > 0 or high < 0)
        )

    def sentence(self, first: str, second: str) -> str:
        if not self.supported:
            return (
                f"Against {self.baseline}, the data do not show a difference between {first} "
                f"and {second} ({self.difference:+.1f} points, 95 % interval "
                f"{self.ci95[0]:+.1f} to {self.ci95[1]:+.1f})."
            )
        better, worse = (first, second) if self.difference > 0 else (second, first)
        return (
            f"Against {self.baseline}, {better} beats {worse} by {abs(self.difference):.1f} "
            f"points of win rate (95 % interval {self.ci95[0]:+.1f} to {self.ci95[1]:+.1f})."
        )


def prompt_scores(rows: pd.DataFrame, group: str) -> dict[str, dict[str, float]]:
    """{baseline: {prompt id: the candidate's share of the group's verdicts}} from the frame
    of frames.round_verdict_rows."""
    chosen = rows[rows["group"] == group]
    share = chosen["label"].map(CANDIDATE_SHARE).astype(float)
    means = share.groupby([chosen["baseline"], chosen["prompt_id"]]).mean()
    scores: dict[str, dict[str, float]] = {}
    for (baseline, prompt), value in means.items():
        scores.setdefault(str(baseline), {})[str(prompt)] = float(value)
    return scores


def paired_comparison(
    first: Mapping[str, float],
    second: Mapping[str, float],
    *,
    baseline: str,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> PairedComparison | None:
    """The paired test over the prompts both candidates were judged on (None: no prompt)."""
    prompts = sorted(set(first) & set(second))
    if not prompts:
        return None
    a = np.array([first[p] for p in prompts])
    b = np.array([second[p] for p in prompts])
    better, worse = int((a > b).sum()), int((a < b).sum())
    p_value = float(binomtest(better, better + worse).pvalue) if better + worse else None
    differences = a - b
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(prompts), size=(resamples, len(prompts)))
    boot = differences[picks].mean(axis=1) * 100
    low, high = np.percentile(boot, [2.5, 97.5])
    return PairedComparison(
        baseline=baseline,
        prompts=len(prompts),
        first_better=better,
        second_better=worse,
        same=len(prompts) - better - worse,
        sign_test_p=p_value,
        difference=float(differences.mean() * 100),
        ci95=(float(low), float(high)),
    )
