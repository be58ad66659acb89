"""Counts, tie-discounted win rates, majority votes and seeded bootstrap intervals."""

import numpy as np
import pandas as pd
import pytest

from annotation.reports.counts import BASELINE, CANDIDATE, TIE, annotation_frame, label_counts
from annotation.reports.stats import Outcome, bootstrap_ratio, majority_counts, outcomes, win_rate

C, T, B = CANDIDATE, TIE, BASELINE


def random_frame(seed: int = 0, items: int = 400, per_item: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = items * per_item
    item = np.repeat(np.arange(items), per_item)
    return annotation_frame(
        annotation=np.arange(n),
        item=item,
        prompt=(item // 2).astype(str),
        baseline=np.where(item % 2, "davinci", "alpaca"),
        annotator=np.tile(np.arange(per_item), items),
        group="crowd",
        label=rng.choice(3, n, p=[0.5, 0.2, 0.3]),
        candidate_first=rng.random(n) < 0.5,
        seconds=rng.random(n),
        created_at=pd.Timestamp("2024-01-01", tz="UTC"),
        candidate_chars=100,
        baseline_chars=100,
    )


def test_it_counts_a_tie_as_half_a_win():
    assert win_rate(125, 0, 805) == pytest.approx(15.527950310559005, abs=1e-12)
    assert win_rate(53, 21, 100) == 63.5
    assert Outcome(53, 21, 26).win_or_tie == 74


def test_it_takes_the_majority_and_calls_a_split_a_tie():
    counts = np.array([[2, 1, 0], [1, 0, 1], [1, 1, 1], [0, 2, 1], [0, 0, 3], [0, 0, 0]])

    votes = majority_counts(counts)

    assert votes.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]


def test_it_counts_per_annotation_and_per_item():
    frame = random_frame()
    counts = label_counts(frame, ["alpaca", "davinci"])

    per_annotation = outcomes(counts, mode="annotation", resamples=100)
    per_item = outcomes(counts, mode="item", resamples=100)

    alpaca = frame[frame["baseline"] == "alpaca"]
    expected = np.bincount(alpaca["label"], minlength=3)
    got = per_annotation["crowd"]["alpaca"]
    assert (got.wins, got.ties, got.losses) == tuple(expected)
    assert per_item["crowd"]["alpaca"].n == 200
    assert list(per_annotation["crowd"]) == ["alpaca", "davinci"]


def test_it_gives_a_seeded_interval_that_contains_the_estimate():
    counts = label_counts(random_frame())

    first = outcomes(counts, resamples=1000, seed=5)["crowd"]["alpaca"]
    again = outcomes(counts, resamples=1000, seed=5)["crowd"]["alpaca"]
    other = outcomes(counts, resamples=1000, seed=6)["crowd"]["alpaca"]

    low, high = first.ci95
    assert low < first.win_rate < high
    assert first.ci95 == again.ci95
    assert first.ci95 != other.ci95
    assert 2 < high - low < 15


def test_it_resamples_like_drawing_units_one_by_one():
    rng = np.random.default_rng(0)
    numerators = rng.integers(0, 7, 300)
    denominators = np.full(300, 6)

    fast = bootstrap_ratio(numerators, denominators, resamples=4000, rng=rng)
    picks = rng.integers(0, 300, (4000, 300))
    ratios = numerators[picks].sum(1) / denominators[picks].sum(1)
    slow = np.percentile(ratios, [2.5, 97.5])

    assert fast == pytest.approx(tuple(slow), abs=0.01)


def test_it_resamples_numbers_too_large_to_combine_into_one_key():
    numerators = np.array([2**40, 2**41, 3 * 2**40])
    denominators = np.array([2**42, 2**42, 2**42])

    low, high = bootstrap_ratio(
        numerators, denominators, resamples=200, rng=np.random.default_rng(0)
    )

    assert 0.25 <= low <= high <= 0.75
