"""AlpacaEval's head-to-head figures from a judge's preferences, by AlpacaEval's own rules
(alpaca_eval/metrics/helpers.py): the win rate is the mean preference, its standard error the
standard error of that mean, and the discrete win rate rounds each preference (an exact 0.5
being a draw, counted as half a win)."""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AlpacaEvalFigures:
    win_rate: float
    standard_error: float
    n_wins: int
    n_wins_base: int
    n_draws: int
    n_total: int
    discrete_win_rate: float


def alpaca_eval_figures(preferences: Iterable[float | None]) -> AlpacaEvalFigures | None:
    """Figures over the candidate's preferences (the judge's probability that it is better)."""
    values = np.asarray([p for p in preferences if p is not None and not math.isnan(p)], float)
    if not len(values):
        return None
    draws = values == 0.5
    wins = values > 0.5
    # AlpacaEval's ZeroOneScoringRule rounds 1 + p; numpy's rounding is half to even, as
    # pandas' is, and exact halves are the draws counted apart.
    discrete = np.where(draws, 0.5, np.round(values + 1) - 1)
    return AlpacaEvalFigures(
        win_rate=float(values.mean() * 100),
        standard_error=float(values.std(ddof=1) / math.sqrt(len(values)) * 100)
        if len(values) > 1
        else math.nan,
        n_wins=int(wins.sum()),
        n_wins_base=int((values < 0.5).sum()),
        n_draws=int(draws.sum()),
        n_total=len(values),
        discrete_win_rate=float(discrete.mean() * 100),
    )
