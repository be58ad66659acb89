"""Training sets: reading a JSON Lines file into conversations, and what its lengths look like.

Pure functions, no database. Two line formats are read: the LIMA release's
`{"conversations": [user, assistant, user, assistant, ...], "source": ...}` and
`{"prompt": ..., "response": ...}`. Every line is checked before anything is kept, and every
bad line is reported with its number, so that one upload shows all that needs fixing.
"""

import json
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from annotation.imports.records import ImportFailed, read_text

# Problems listed in one message; the count of the rest is given.
PROBLEMS_SHOWN = 50


@dataclass(frozen=True)
class Example:
    line: int
    # user, assistant, user, assistant, ...: always starts with the user, ends with an answer.
    conversations: tuple[str, ...]
    source: str = ""


class TrainingDataInvalid(ValueError):
    """The file cannot be used; `problems` holds (line, message) for every bad line."""

    def __init__(self, file: str, problems: Sequence[tuple[int | None, str]]):
        self.file = file
        self.problems = list(problems)
        shown = [
            f"line {line}: {message}" if line is not None else message
            for line, message in self.problems[:PROBLEMS_SHOWN]
        ]
        more = len(self.problems) - len(shown)
        if more > 0:
            shown.append(f"… and {more} more")
        count = len(self.problems)
        super().__init__(
            f"{file}: {count} bad line{'s' if count != 1 else ''}, nothing was imported. "
            + "; ".join(shown)
        )


def parse_training_file(raw: bytes, file: str = "the file") -> list[Example]:
    """Every example of a JSON Lines file, or TrainingDataInvalid naming every bad line."""
    try:
        text = read_text(raw, file)
    except ImportFailed as failed:
        raise TrainingDataInvalid(file, [(failed.line, failed.message)]) from None
    examples: list[Example] = []
    problems: list[tuple[int | None, str]] = []
    # "\n" only: str.splitlines() also splits on characters JSON allows inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            examples.append(parse_line(line, number))
        except ValueError as problem:
            problems.append((number, str(problem)))
    if not examples and not problems:
        problems.append((None, "the file holds no examples"))
    if problems:
        raise TrainingDataInvalid(file, problems)
    return examples


def parse_line(line: str, number: int) -> Example:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    source = data.get("source") or ""
    if not isinstance(source, str):
        raise ValueError("'source' must be text")
    if "conversations" in data:
        turns = data["conversations"]
        if not isinstance(turns, list) or not turns:
            raise ValueError("'conversations' must be a non-empty list of texts")
        for index, turn in enumerate(turns):
            if not isinstance(turn, str) or not turn.strip():
                raise ValueError(f"'conversations' turn {index + 1} is not a non-empty text")
        if len(turns) % 2:
            raise ValueError(
                f"'conversations' has {len(turns)} turns: it must alternate user, assistant, "
                "... and end with the assistant's answer"
            )
        return Example(number, tuple(turns), source)
    if "prompt" in data or "response" in data:
        for name in ("prompt", "response"):
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"'{name}' is missing or not a non-empty text")
        return Example(number, (data["prompt"], data["response"]), source)
    raise ValueError(
        "give 'conversations' (the LIMA release format) or 'prompt' and 'response'; "
        f"found keys {sorted(data)}"
    )


@dataclass(frozen=True)
class LengthStats:
    """Counts and token lengths of a training set under a length limit."""

    examples: int
    multi_turn: int
    turns: int
    sources: dict[str, int]
    tokenizer: str
    min_tokens: int
    median_tokens: float
    mean_tokens: float
    p95_tokens: int
    max_tokens: int
    total_tokens: int
    max_length: int
    # Examples longer than max_length, cut to it; and those left with no answer token at all.
    trimmed: int
    trimmed_to_nothing: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def length_stats(
    examples: Sequence[Example],
    lengths: Sequence[int],
    *,
    max_length: int,
    tokenizer: str,
    answer_starts: Sequence[int] | None = None,
) -> LengthStats:
    """Stats from each example's token count (and where its first answer token is, if known)."""
    if not lengths:
        raise ValueError("no examples")
    ordered = sorted(lengths)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    starts = answer_starts or [0] * len(lengths)
    return LengthStats(
        examples=len(examples),
        multi_turn=sum(1 for e in examples if len(e.conversations) > 2),
        turns=sum(len(e.conversations) for e in examples),
        sources=dict(Counter(e.source or "(none)" for e in examples).most_common()),
        tokenizer=tokenizer,
        min_tokens=ordered[0],
        median_tokens=float(statistics.median(ordered)),
        mean_tokens=round(statistics.fmean(ordered), 1),
        p95_tokens=p95,
        max_tokens=ordered[-1],
        total_tokens=sum(ordered),
        max_length=max_length,
        trimmed=sum(1 for n in lengths if n > max_length),
        trimmed_to_nothing=sum(1 for start in starts if start >= max_length),
    )


def estimated_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 4 characters a token, as for English with BPE)."""
    return max(1, round(len(text) / 4))
