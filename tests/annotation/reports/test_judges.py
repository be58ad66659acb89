"""Judge diagnostics: position bias, win rate against length difference, agreement with humans."""

import numpy as np
import pandas as pd
import pytest

from annotation.reports.counts import BASELINE, CANDIDATE, TIE, annotation_frame, label_counts
from annotation.reports.judges import (
    ORDER_VOTE_COLUMNS,
    judge_diagnostics,
    length_bins,
    position_bias,
)

C, T, B = CANDIDATE, TIE, BASELINE


def test_it_counts_verdicts_for_the_answer_shown_first_in_model_terms():
    # The candidate shown first and chosen, or the baseline shown first and chosen: Answer A.
    label = [C, C, B, B, T, C]
    candidate_first = [True, False, False, True, True, True]

    bias = position_bias(np.array(label), np.array(candidate_first))

    assert (bias.first, bias.second, bias.ties) == (3, 2, 1)
    assert bias.prefers_first == 60
    assert bias.p_value == 1  # 3 of 5 is no evidence of bias


def test_it_finds_no_bias_when_a_and_b_win_equally_often():
    bias = position_bias(np.array([C, C]), np.array([True, False]))

    assert bias.prefers_first == 50
    assert bias.p_value == 1


def test_it_bins_verdicts_by_length_difference():
    difference = np.arange(-500, 500, 10)
    # The judge prefers whichever answer is longer.
    label = np.where(difference > 0, C, np.where(difference < 0, B, T))

    bins = length_bins(label, difference, bins=4)

    assert [b.low for b in bins] == [-500, -250, 0, 250]
    assert [b.high for b in bins] == [-260, -10, 240, 490]
    assert [b.outcome.win_rate for b in bins] == [0, 0, pytest.approx(100 * 24.5 / 25), 100]


def test_it_measures_the_judge_against_the_human_majority():
    rows = [
        # item 1: humans say candidate (2 of 3), judge candidate -> 1
        (1, 1, "crowd", C), (1, 2, "crowd", C), (1, 3, "author", B), (1, 9, "gpt-4", C),
        # item 2: humans split candidate/baseline -> tie; judge baseline -> 0.5
        (2, 1, "crowd", C), (2, 2, "crowd", B), (2, 9, "gpt-4", B),
        # item 3: no human; not counted
        (3, 9, "gpt-4", T),
    ]  # fmt: skip
    item, annotator, group, label = (list(c) for c in zip(*rows, strict=True))
    n = len(rows)
    frame = annotation_frame(
        annotation=range(n),
        item=item,
        prompt=[str(i) for i in item],
        baseline="base",
        annotator=annotator,
        group=group,
        label=label,
        candidate_first=True,
        seconds=None,
        created_at=pd.Timestamp("2024-01-01", tz="UTC"),
        candidate_chars=[100, 100, 100, 100, 300, 300, 300, 50],
        baseline_chars=200,
    )

    (judge,) = judge_diagnostics(frame, label_counts(frame))

    assert judge.judge == "gpt-4"
    assert (judge.human_agreement, judge.human_items) == (75, 2)
    assert (judge.position.first, judge.position.second, judge.position.ties) == (1, 1, 1)


def test_position_bias_counts_each_order_of_a_combined_verdict():
    frame = annotation_frame(
        annotation=[1, 2],
        item=[1, 2],
        prompt=["p1", "p2"],
        baseline="b",
        annotator=9,
        group="gpt-4",
        label=[TIE, CANDIDATE],
        candidate_first=True,
        seconds=None,
        created_at=pd.Timestamp("2024-01-01", tz="UTC"),
        candidate_chars=100,
        baseline_chars=100,
    )
    # Item 1: the judge chose Answer A in both orders (inconsistent, so a tie overall).
    votes = pd.DataFrame.from_records(
        [(1, "gpt-4", True, CANDIDATE), (1, "gpt-4", False, BASELINE)],
        columns=ORDER_VOTE_COLUMNS,
    )
    (judge,) = judge_diagnostics(frame, label_counts(frame), votes)
    # Two first-position votes from item 1, one from item 2's single verdict.
    assert (judge.position.first, judge.position.second, judge.position.ties) == (3, 0, 0)
