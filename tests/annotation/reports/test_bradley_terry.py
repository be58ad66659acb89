"""Bradley-Terry ratings from aggregated verdicts, all bootstrap rounds fitted at once."""

import numpy as np
import pytest

from annotation.reports.bradley_terry import (
    FIRST_WINS,
    RATING_SCALE,
    SECOND_WINS,
    TIE,
    battle_counts,
    fit,
    ratings,
    win_matrices,
)


def simulate(strengths: np.ndarray, battles: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    m = len(strengths)
    first = rng.integers(0, m, battles)
    second = (first + rng.integers(1, m, battles)) % m
    p_first = 1 / (1 + np.exp(strengths[second] - strengths[first]))
    outcome = np.where(rng.random(battles) < p_first, FIRST_WINS, SECOND_WINS)
    return first, second, outcome


def test_it_aggregates_verdicts_to_counts_per_pair_and_outcome_whatever_the_order():
    battles = battle_counts([0, 1, 1, 0, 2], [1, 0, 0, 1, 0], [0, 0, 1, 2, 2], n_models=3)

    cells = list(zip(battles.first, battles.second, battles.outcome, battles.counts, strict=True))
    # 1 beating 0 is 0 losing to 1; 2 losing to 0 is 0 beating 2.
    assert cells == [(0, 1, FIRST_WINS, 1), (0, 1, TIE, 1), (0, 1, SECOND_WINS, 2), (0, 2, 0, 1)]
    wins = win_matrices(battles, battles.counts[None, :])[0]
    assert wins.tolist() == [[0, 1.5, 1], [2.5, 0, 0], [0, 0, 0]]


def test_it_matches_the_closed_form_for_two_models_with_ties_as_half_wins():
    # 30 wins, 10 ties, 60 losses: strengths in the ratio 35 : 65.
    first = np.zeros(100, int)
    second = np.ones(100, int)
    outcome = np.array([FIRST_WINS] * 30 + [TIE] * 10 + [SECOND_WINS] * 60)

    result = {r.model: r for r in ratings(battle_counts(first, second, outcome, 2), ["a", "b"])}

    gap = result["b"].rating - result["a"].rating
    assert gap == pytest.approx(RATING_SCALE * np.log(65 / 35), abs=0.5)
    assert result["a"].win_rate == 35
    assert result["a"].games == 100


def test_it_recovers_the_strengths_that_generated_the_verdicts():
    strengths = np.linspace(-1.5, 1.5, 8)
    first, second, outcome = simulate(strengths, 200_000)

    theta = fit(
        win_matrices(battles := battle_counts(first, second, outcome, 8), battles.counts[None])
    )

    assert theta[0] == pytest.approx(strengths - strengths.mean(), abs=0.03)


def test_it_keeps_a_model_that_never_wins_finite_and_last():
    first = np.array([0] * 50 + [1] * 50)
    second = np.array([1] * 50 + [2] * 50)
    outcome = np.array([FIRST_WINS] * 25 + [SECOND_WINS] * 25 + [FIRST_WINS] * 50)

    result = ratings(battle_counts(first, second, outcome, 3), ["a", "b", "never"], resamples=50)

    assert [r.model for r in result][-1] == "never"
    assert all(np.isfinite(r.rating) and np.isfinite(r.ci95).all() for r in result)


def test_it_gives_seeded_intervals_around_the_estimate():
    first, second, outcome = simulate(np.array([0.0, 0.5, 1.0]), 3000)
    battles = battle_counts(first, second, outcome, 3)

    once = ratings(battles, ["a", "b", "c"], resamples=300, seed=1)
    again = ratings(battles, ["a", "b", "c"], resamples=300, seed=1)

    assert once == again
    assert [r.model for r in once] == ["c", "b", "a"]
    for rating in once:
        assert rating.ci95[0] < rating.rating < rating.ci95[1]


def test_models_whose_intervals_overlap_share_a_rank_and_few_verdicts_leave_one_unranked():
    from annotation.reports.bradley_terry import Rating, ranked

    def rating(model, low, high, games=100):
        return Rating(model, (low + high) / 2, (low, high), games, 50.0)

    board = [
        rating("a", 1100, 1200),
        rating("b", 1080, 1150),  # overlaps a: shares rank 1
        rating("c", 1000, 1070),  # below a's and b's intervals: 1 + 2
        rating("d", 990, 1090),  # overlaps b and c, below a: 1 + 1
        rating("e", 1300, 1500, games=4),  # too few verdicts to rank, and not counted above others
    ]
    rows = {row.rating.model: row for row in ranked(board, min_verdicts=30)}
    assert {m: rows[m].rank for m in "abcd"} == {"a": 1, "b": 1, "c": 3, "d": 2}
    assert rows["e"].rank is None
    assert rows["e"].unranked == "4 verdicts, fewer than the 30 needed to rank"
    assert ranked(board)[4].rank == 1  # Without the minimum, e ranks first.
