"""Tie-discounted agreement from label counts, checked by hand and against enumerated pairs."""

import itertools

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa

from annotation.reports.agreement import (
    agreement_table,
    cohen_kappa,
    fleiss,
    krippendorff_alpha,
    pair_sums,
    tie_discounted,
)
from annotation.reports.counts import BASELINE, CANDIDATE, TIE, annotation_frame, label_counts

C, T, B = CANDIDATE, TIE, BASELINE


def counts_of(*items: list[int]) -> np.ndarray:
    return np.array([np.bincount(labels, minlength=3) for labels in items])


def score(x: int, y: int) -> float:
    if x == y:
        return 1.0
    return 0.5 if TIE in (x, y) else 0.0


def enumerated(items_a, items_b=None) -> float:
    """The definition, pair by pair: the mean over pairs of distinct annotators."""
    scores = []
    for index, labels in enumerate(items_a):
        if items_b is None:
            pairs = itertools.combinations(labels, 2)
        else:
            pairs = itertools.product(labels, items_b[index])
        scores.extend(score(x, y) for x, y in pairs)
    return 100 * sum(scores) / len(scores)


def frame_of(rows: list[tuple[int, int, str, int]]) -> pd.DataFrame:
    """(item, annotator, group, label) rows as a report frame."""
    item, annotator, group, label = (list(column) for column in zip(*rows, strict=True))
    n = len(rows)
    return annotation_frame(
        annotation=range(n),
        item=item,
        prompt=[str(i) for i in item],
        baseline=["base"] * n,
        annotator=annotator,
        group=group,
        label=label,
        candidate_first=[True] * n,
        seconds=[None] * n,
        created_at=[pd.Timestamp("2024-01-01", tz="UTC")] * n,
        candidate_chars=[100] * n,
        baseline_chars=[100] * n,
    )


def test_it_scores_one_for_equal_labels_half_for_one_tie_and_zero_for_opposites():
    assert tie_discounted(pair_sums(counts_of([C, C]))) == 100
    assert tie_discounted(pair_sums(counts_of([T, T]))) == 100
    assert tie_discounted(pair_sums(counts_of([C, T]))) == 50
    assert tie_discounted(pair_sums(counts_of([T, B]))) == 50
    assert tie_discounted(pair_sums(counts_of([C, B]))) == 0


def test_it_matches_hand_computed_values_with_ties_in_every_position():
    # [C, C, T]: (C,C)=1, (C,T)=.5, (C,T)=.5 -> 2 of 3 pairs.
    # [T, T, B]: (T,T)=1, (T,B)=.5, (T,B)=.5 -> 2 of 3.
    # [T, C, B]: (T,C)=.5, (T,B)=.5, (C,B)=0 -> 1 of 3.
    # [B, T]:    .5 of 1.
    items = [[C, C, T], [T, T, B], [T, C, B], [B, T]]
    sums = pair_sums(counts_of(*items))
    assert sums.pairs.tolist() == [3, 3, 3, 1]
    assert sums.equal.tolist() == [1, 1, 0, 0]
    assert sums.one_tie.tolist() == [2, 2, 2, 1]
    assert tie_discounted(sums) == pytest.approx(100 * (2 + 2 + 1 + 0.5) / 10)


def test_it_matches_hand_computed_values_across_two_groups():
    # Item 1: a=[T] b=[C, T, B] -> .5 + 1 + .5 = 2 of 3 pairs.
    # Item 2: a=[C, B] b=[T]    -> .5 + .5 = 1 of 2.
    # Item 3: a=[C, T] b=[C, C] -> 1 + 1 + .5 + .5 = 3 of 4.
    a, b = [[T], [C, B], [C, T]], [[C, T, B], [T], [C, C]]
    sums = pair_sums(counts_of(*a), counts_of(*b))
    assert sums.pairs.tolist() == [3, 2, 4]
    assert tie_discounted(sums) == pytest.approx(100 * 6 / 9)


def test_it_agrees_with_enumerating_every_pair_on_random_items():
    rng = np.random.default_rng(7)
    a = [list(rng.integers(0, 3, rng.integers(2, 7))) for _ in range(200)]
    b = [list(rng.integers(0, 3, rng.integers(1, 5))) for _ in range(200)]

    assert tie_discounted(pair_sums(counts_of(*a))) == pytest.approx(enumerated(a))
    assert tie_discounted(pair_sums(counts_of(*a), counts_of(*b))) == pytest.approx(
        enumerated(a, b)
    )


def test_it_gives_100_percent_for_identical_annotators():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 500)
    items = [[label] * 4 for label in labels]

    assert tie_discounted(pair_sums(counts_of(*items))) == 100
    assert tie_discounted(pair_sums(counts_of(*items), counts_of(*items))) == 100


def test_it_gives_five_ninths_for_independent_uniform_annotators():
    # Equal with probability 1/3 (score 1); exactly one tie with probability
    # 2 * 1/3 * 2/3 = 4/9 (score 1/2); opposite with 2/9 (score 0): 1/3 + 2/9 = 5/9.
    rng = np.random.default_rng(2)
    items = rng.integers(0, 3, (100_000, 3))
    counts = np.stack([np.bincount(row, minlength=3) for row in items[:20_000]])
    within = tie_discounted(pair_sums(counts))
    across = tie_discounted(
        pair_sums(
            np.eye(3, dtype=int)[items[:, 0]],
            np.eye(3, dtype=int)[items[:, 1]],
        )
    )
    assert within == pytest.approx(100 * 5 / 9, abs=0.6)
    assert across == pytest.approx(100 * 5 / 9, abs=0.6)


def test_it_builds_the_table_within_and_across_groups_with_items_and_pairs():
    rows = [
        # item 1: three crowd workers, one author, a judge
        (1, 10, "crowd", C),
        (1, 11, "crowd", C),
        (1, 12, "crowd", T),
        (1, 20, "author", C),
        (1, 30, "gpt-4", B),
        # item 2: two crowd workers, the judge
        (2, 10, "crowd", T),
        (2, 11, "crowd", B),
        (2, 30, "gpt-4", T),
        # item 3: one crowd worker only
        (3, 12, "crowd", C),
    ]
    frame = frame_of(rows)

    cells = {(c.a, c.b): c for c in agreement_table(frame, label_counts(frame), resamples=50)}

    assert list(cells) == [
        ("crowd", "crowd"),
        ("crowd", "author"),
        ("crowd", "gpt-4"),
        ("author", "gpt-4"),
    ]
    crowd = cells["crowd", "crowd"]
    assert (crowd.items, crowd.pairs) == (2, 4)
    assert crowd.agreement == pytest.approx(100 * (2 + 0.5) / 4)
    assert crowd.raw == pytest.approx(100 * 1 / 4)
    crowd_judge = cells["crowd", "gpt-4"]
    assert (crowd_judge.items, crowd_judge.pairs) == (2, 5)
    assert crowd_judge.agreement == pytest.approx(100 * (0 + 0 + 0.5 + 1 + 0.5) / 5)
    author_judge = cells["author", "gpt-4"]
    assert (author_judge.items, author_judge.pairs, author_judge.agreement) == (1, 1, 0)
    # One author and one judge make a two-annotator cell: Cohen's kappa (here no agreement
    # and none expected by chance, so 0); the crowd has three workers, so it has none.
    assert author_judge.cohen_kappa == 0
    assert crowd.cohen_kappa is None and crowd_judge.cohen_kappa is None
    assert crowd.fleiss_kappa is not None and crowd.krippendorff_alpha is not None
    assert crowd_judge.fleiss_kappa is None and crowd_judge.krippendorff_alpha is None


def test_it_computes_the_coefficients_with_the_libraries_and_one_for_perfect_agreement():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 60)
    rows = [(i, a, "crowd", int(label)) for i, label in enumerate(truth) for a in (1, 2)]
    frame = frame_of(rows)
    counts = label_counts(frame).group("crowd")

    assert cohen_kappa(frame, 1, 2) == pytest.approx(1.0)
    assert fleiss(counts) == pytest.approx(1.0)
    assert krippendorff_alpha(counts) == pytest.approx(1.0)
    (cell,) = agreement_table(frame, label_counts(frame), resamples=20)
    assert cell.cohen_kappa == pytest.approx(1.0)
    assert (cell.agreement, cell.raw, cell.ci95) == (100, 100, (100, 100))


def test_it_matches_the_krippendorff_packages_published_example_from_value_counts():
    # The nominal example of Krippendorff (2011) in the package's documentation; units with
    # fewer than two values carry no pair and are left out before the call.
    value_counts = np.array(
        [
            [1, 0, 0, 0],
            [0, 0, 0, 0],
            [0, 2, 0, 0],
            [2, 0, 0, 0],
            [0, 0, 2, 0],
            [0, 0, 2, 1],
            [0, 0, 0, 3],
            [1, 0, 1, 0],
            [0, 2, 0, 0],
            [2, 0, 0, 0],
            [2, 0, 0, 0],
            [0, 0, 2, 0],
            [0, 0, 2, 0],
            [0, 0, 0, 0],
            [0, 0, 1, 1],
        ]
    )
    assert krippendorff_alpha(value_counts) == pytest.approx(0.691358, abs=1e-6)


def test_it_uses_the_items_with_the_usual_number_of_raters_for_fleiss_kappa():
    # Fleiss' classic table needs a constant number of raters: the item with 2 is left out.
    counts = np.array([[3, 0, 0], [0, 3, 0], [0, 0, 3], [1, 1, 1], [1, 1, 0]])

    assert fleiss(counts) == pytest.approx(fleiss_kappa(counts[:4]))
