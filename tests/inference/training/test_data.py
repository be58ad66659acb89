import json

import pytest

from inference.training.data import TrainingDataInvalid, length_stats, parse_training_file
from tests.support.training import examples, jsonl


def test_it_reads_the_lima_release_format_and_prompt_response_pairs():
    raw = (
        json.dumps({"conversations": ["hi", "hello", "more?", "yes"], "source": "stackexchange"})
        + "\n\n"
        + json.dumps({"prompt": "why?", "response": "because"})
        + "\n"
    ).encode()

    parsed = parse_training_file(raw, "lima.jsonl")

    assert [e.line for e in parsed] == [1, 3]
    assert parsed[0].conversations == ("hi", "hello", "more?", "yes")
    assert parsed[0].source == "stackexchange"
    assert parsed[1].conversations == ("why?", "because")


def test_it_reports_every_bad_line_by_number():
    lines = [
        json.dumps({"conversations": ["q", "a"]}),
        "{not json",
        json.dumps({"conversations": ["q", "a", "q again"]}),
        json.dumps({"prompt": "q"}),
        json.dumps(["a", "list"]),
        json.dumps({"conversations": ["q", ""]}),
        json.dumps({"text": "neither format"}),
    ]

    with pytest.raises(TrainingDataInvalid) as invalid:
        parse_training_file("\n".join(lines).encode(), "set.jsonl")

    assert [line for line, _ in invalid.value.problems] == [2, 3, 4, 5, 6, 7]
    message = str(invalid.value)
    assert message.startswith("set.jsonl: 6 bad lines, nothing was imported.")
    assert "line 2: not valid JSON" in message
    assert "line 3: 'conversations' has 3 turns" in message
    assert "line 4: 'response' is missing" in message
    assert "line 6: 'conversations' turn 2 is not a non-empty text" in message


def test_it_refuses_an_empty_file_and_bad_encoding():
    with pytest.raises(TrainingDataInvalid, match="holds no examples"):
        parse_training_file(b"\n\n", "empty.jsonl")
    with pytest.raises(TrainingDataInvalid, match="line 2: not valid UTF-8"):
        parse_training_file(b'{"prompt": "a", "response": "b"}\n\xff\n', "latin.jsonl")


def test_it_counts_lengths_and_what_the_limit_trims():
    stats = length_stats(
        examples(4),
        [10, 20, 3000, 5000],
        max_length=2048,
        tokenizer="t",
        answer_starts=[3, 4, 100, 4000],
    )

    assert (stats.examples, stats.multi_turn, stats.turns) == (4, 1, 10)
    assert (stats.min_tokens, stats.max_tokens, stats.median_tokens) == (10, 5000, 1510.0)
    assert stats.trimmed == 2
    assert stats.trimmed_to_nothing == 1
    assert stats.max_length == 2048


def test_the_fixture_file_is_the_lima_format():
    assert len(parse_training_file(jsonl(3))) == 3
