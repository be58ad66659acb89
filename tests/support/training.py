"""Small training sets and fast recipe settings for the training worker's tests."""

import json

from inference.training.data import Example
from tests.support.tiny_model import SENTENCES

# A few steps on CPU: small batches, short texts, no dropout noise unless a test asks for it.
FAST = {
    "batch_size": 2,
    "max_length": 64,
    "gradient_checkpointing": False,
    "residual_dropout": 0.0,
    "epochs": 2,
    "select_from_epoch": 1,
    "select_to_epoch": 2,
    "selection_sampling": {"max_tokens": 4},
    "selection_backend": "transformers",
}


def conversations(count: int = 4) -> list[tuple[str, ...]]:
    """Prompt/answer pairs in the tiny tokenizer's words; the last one has two exchanges."""
    pairs: list[tuple[str, ...]] = [
        (SENTENCES[(2 * i) % len(SENTENCES)], SENTENCES[(2 * i + 1) % len(SENTENCES)])
        for i in range(count)
    ]
    pairs[-1] = (*pairs[-1], SENTENCES[2], SENTENCES[0])
    return pairs


def examples(count: int = 4) -> list[Example]:
    return [Example(line, turns) for line, turns in enumerate(conversations(count), start=1)]


def jsonl(count: int = 4) -> bytes:
    """The LIMA release format, one line per conversation."""
    lines = [json.dumps({"conversations": list(c), "source": "test"}) for c in conversations(count)]
    return ("\n".join(lines) + "\n").encode()
