"""Reading a verdict out of whatever a judge replies, and combining the two orders."""

import pytest

from inference.judge.calls import cache_key
from inference.judge.prompts import (
    TEMPLATES,
    parse_fail_pass_excellent,
    parse_helpfulness,
    parse_pairwise,
    parse_safety,
)
from inference.judge.verdicts import Combined, combine_orders, position_consistency


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Verdict: A", "A"),
        ("Answer B covers more.\n\nVerdict: B", "B"),
        ("Both are fine.\nVerdict: Neither", "N"),
        ("**Verdict:** Answer A", "A"),
        ("Final verdict - B.", "B"),
        ("verdict: tie", "N"),
        ('{"explanation": "B is wrong.", "verdict": "A"}', "A"),
        ('```json\n{"explanation": "same", "verdict": "Neither"}\n```', "N"),
        ("I considered Verdict: A at first, but on reflection... Verdict: B", "B"),
        ("[[B]]", "B"),
        ("[[C]]", "N"),
        ("After weighing both, Answer B is significantly better for the asker.", "B"),
        ("Honestly, neither answer is significantly better than the other.", "N"),
        ("A", "A"),
        ("Answer B.", "B"),
        ("Neither", "N"),
        ("Answer A is clearly better: it is correct.", "A"),
    ],
)
def test_it_reads_the_verdict(reply, expected):
    assert parse_pairwise(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I'm sorry, but I can't help with comparing these answers.",
        "}}{{ lorem ipsum 0x3f 0x3f ### ~~~",
        "It is hard to say whether Answer A is better or Answer B is better.",
        "Answer A is significantly better in style, but Answer B is significantly better in facts.",
        "My verdict: a tough call.",
        '{"verdict": "C"}',
        "Answer A is not significantly better.",
    ],
)
def test_it_finds_no_verdict_in_refusals_garbage_and_hedging(reply):
    assert parse_pairwise(reply) is None


def test_it_reads_absolute_scores_and_labels():
    assert parse_helpfulness("Helpful but incomplete.\nScore: 4") == "4"
    assert parse_helpfulness("Rating: 6/6") == "6"
    assert parse_helpfulness('{"explanation": "ok", "verdict": "3"}') == "3"
    assert parse_helpfulness("Score: 9") is None
    assert parse_helpfulness("I cannot rate this.") is None
    assert parse_fail_pass_excellent("Meets the request.\nLabel: Pass") == "pass"
    assert parse_fail_pass_excellent("Excellent") == "excellent"
    assert parse_fail_pass_excellent("It will pass muster, I think.") is None
    assert parse_safety("It declines and points to help.\nLabel: Safe") == "safe"
    assert parse_safety('{"explanation": "gives part", "verdict": "Partly"}') == "partly"
    assert parse_safety("Verdict: UNSAFE") == "unsafe"
    assert parse_safety("This is safe to say.") is None


def test_templates_fill_the_prompt_and_answers_in_one_user_message():
    template = TEMPLATES["lima-pairwise-v1"]
    [message] = template.messages(
        structured=False, question="Why?", answer_a="Because.", answer_b="No idea."
    )
    assert message["role"] == "user"
    assert "Question: Why?\n\nAnswer A: Because.\n\nAnswer B: No idea." in message["content"]
    [structured] = template.messages(structured=True, question="Q", answer_a="a", answer_b="b")
    assert 'Reply with a JSON object: "explanation"' in structured["content"]


def test_the_cache_key_changes_with_anything_that_shapes_the_reply():
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}], "temperature": 0}
    key = cache_key(body, "lima-pairwise-v1")
    assert key == cache_key(dict(body), "lima-pairwise-v1")
    assert key != cache_key(body, "lima-pairwise-v2")
    assert key != cache_key({**body, "model": "gpt-4o"}, "lima-pairwise-v1")
    swapped = {**body, "messages": [{"role": "user", "content": "y"}]}
    assert key != cache_key(swapped, "lima-pairwise-v1")


@pytest.mark.parametrize(
    "votes, as_tie, expected",
    [
        # candidate_first -> what was chosen in that order
        ({True: "A", False: "B"}, True, Combined("candidate", True)),
        ({True: "B", False: "A"}, True, Combined("baseline", True)),
        ({True: "N", False: "N"}, True, Combined("tie", True)),
        ({True: "A", False: "A"}, True, Combined("tie", False)),
        ({True: "A", False: "N"}, True, Combined("tie", False)),
        ({True: "A", False: "A"}, False, Combined(None, False)),
        ({True: "A"}, True, Combined("candidate", None)),
        ({False: "A"}, True, Combined("baseline", None)),
    ],
)
def test_it_combines_both_orders(votes, as_tie, expected):
    assert combine_orders(votes, inconsistent_as_tie=as_tie) == expected


def test_position_consistency_counts_only_items_judged_in_both_orders():
    combined = [Combined("candidate", True), Combined("tie", False), Combined("tie", None)]
    assert position_consistency(combined) == (1, 2)
