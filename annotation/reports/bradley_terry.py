"""Bradley-Terry strengths from pairwise verdicts, with bootstrap intervals, fitted all at once.

The verdicts are first aggregated to counts per (pair of models, outcome): a few hundred cells
however many verdicts there are. A bootstrap resample of the verdicts is then a multinomial
draw over those cells, and every resample is fitted together by Newton's method on arrays of
shape (resamples, models, models). A tie is half a win for each side.
"""

from dataclasses import dataclass

import numpy as np

from annotation.reports.stats import DEFAULT_RESAMPLES, DEFAULT_SEED

# Outcomes of a battle between `first` and `second`.
FIRST_WINS, TIE, SECOND_WINS = range(3)
# Elo-like display scale: 400 points for a factor of 10 in the odds, centred on 1000.
RATING_SCALE = 400 / np.log(10)
RATING_CENTRE = 1000.0
# A weak Gaussian prior on the log-strengths keeps them finite for a model that never wins
# and for comparisons that do not connect every model; against hundreds of verdicts per pair
# it moves ratings by well under a point.
PRIOR = 0.01


@dataclass(frozen=True)
class BattleCounts:
    """counts[k] verdicts with `outcome[k]` between models first[k] < second[k]."""

    first: np.ndarray
    second: np.ndarray
    outcome: np.ndarray
    counts: np.ndarray
    n_models: int


def battle_counts(
    first: np.ndarray, second: np.ndarray, outcome: np.ndarray, n_models: int
) -> BattleCounts:
    """Aggregate verdicts (model indices and FIRST_WINS / TIE / SECOND_WINS) to cell counts."""
    first, second, outcome = (np.asarray(x, dtype=np.int64) for x in (first, second, outcome))
    swap = first > second
    low, high = np.where(swap, second, first), np.where(swap, first, second)
    outcome = np.where(swap, 2 - outcome, outcome)
    codes = (low * n_models + high) * 3 + outcome
    counts = np.bincount(codes, minlength=n_models * n_models * 3)
    cells = np.flatnonzero(counts)
    counts = counts[cells]
    return BattleCounts(
        first=cells // 3 // n_models,
        second=cells // 3 % n_models,
        outcome=cells % 3,
        counts=counts,
        n_models=n_models,
    )


def win_matrices(battles: BattleCounts, counts: np.ndarray) -> np.ndarray:
    """wins[r, i, j]: wins of i over j (ties as halves) for each row r of cell counts."""
    m = battles.n_models
    wins = np.zeros((counts.shape[0], m * m))
    i_over_j = battles.first * m + battles.second
    j_over_i = battles.second * m + battles.first
    for outcome, share in ((FIRST_WINS, 1.0), (TIE, 0.5), (SECOND_WINS, 0.0)):
        # Within one outcome every (i, j) position occurs once, so += does not lose updates.
        cells = battles.outcome == outcome
        if share:
            wins[:, i_over_j[cells]] += share * counts[:, cells]
        if share != 1.0:
            wins[:, j_over_i[cells]] += (1 - share) * counts[:, cells]
    return wins.reshape(-1, m, m)


def fit(wins: np.ndarray, *, prior: float = PRIOR, tolerance: float = 1e-8) -> np.ndarray:
    """Maximum a posteriori log-strengths (mean zero) for each (models, models) win matrix."""
    rounds, m, _ = wins.shape
    games = wins + wins.transpose(0, 2, 1)
    total_wins = wins.sum(axis=2)
    theta = np.zeros((rounds, m))
    ridge = prior * np.eye(m)
    diagonal = np.arange(m)
    for _ in range(100):
        p = 1 / (1 + np.exp(theta[:, None, :] - theta[:, :, None]))  # P(i beats j)
        gradient = total_wins - (games * p).sum(axis=2) - prior * theta
        # Newton step: (L + prior I) step = gradient, where the Laplacian L of the weights
        # games * p * (1 - p) is minus the log-likelihood's Hessian.
        laplacian = -games * p * (1 - p)
        laplacian[:, diagonal, diagonal] -= laplacian.sum(axis=2)
        step = np.linalg.solve(laplacian + ridge, gradient[..., None])[..., 0]
        theta += np.clip(step, -4, 4)
        # Only differences matter: the mean of a step is rounding noise amplified by the
        # weak prior, the one thing that pins the mean down.
        if np.abs(step - step.mean(axis=1, keepdims=True)).max() < tolerance:
            break
    return theta - theta.mean(axis=1, keepdims=True)


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float
    ci95: tuple[float, float]
    games: int
    win_rate: float  # ties as half wins, percent, against every opponent pooled

    def as_json(self) -> dict:
        return {
            "model": self.model,
            "rating": self.rating,
            "ci95": list(self.ci95),
            "games": self.games,
            "win_rate": self.win_rate,
        }


def ratings(
    battles: BattleCounts,
    names: list[str],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[Rating]:
    """Elo-scaled Bradley-Terry ratings, best first, with 95 % bootstrap intervals."""
    observed = battles.counts[None, :]
    total = int(battles.counts.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, battles.counts / total, size=resamples)
    theta = fit(win_matrices(battles, np.concatenate([observed, draws])))
    rating = RATING_CENTRE + RATING_SCALE * theta
    low, high = np.percentile(rating[1:], [2.5, 97.5], axis=0)
    wins = win_matrices(battles, observed)[0]
    games = wins + wins.T
    result = [
        Rating(
            model=name,
            rating=float(rating[0, i]),
            ci95=(float(low[i]), float(high[i])),
            games=round(float(games[i].sum())),
            win_rate=100 * float(wins[i].sum() / games[i].sum()),
        )
        for i, name in enumerate(names)
        if games[i].sum() > 0
    ]
    return sorted(result, key=lambda r: -r.rating)


@dataclass(frozen=True)
class BoardRow:
    """A leaderboard line: its rating, and its rank (None, with the reason, when unranked).

    Ranks follow Chatbot Arena: a model's rank is 1 + the number of ranked models whose whole
    interval lies above its own, so models whose intervals overlap share a rank.
    """

    rating: Rating
    rank: int | None
    unranked: str = ""


def ranked(board: list[Rating], *, min_verdicts: int = 0) -> list[BoardRow]:
    enough = [r for r in board if r.games >= min_verdicts]
    rows = []
    for rating in board:
        if rating.games < min_verdicts:
            reason = f"{rating.games} verdicts, fewer than the {min_verdicts} needed to rank"
            rows.append(BoardRow(rating, None, reason))
            continue
        above = sum(1 for other in enough if other.ci95[0] > rating.ci95[1])
        rows.append(BoardRow(rating, 1 + above))
    return rows
