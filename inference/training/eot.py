"""LIMA's end-of-turn token: a new special token after every utterance of either speaker.

A conversation becomes `<bos> user <EOT> assistant <EOT> user <EOT> assistant <EOT>`, with no
role names. The token is new (the embeddings grow by one row), so it stops generation like EOS
without reusing the pre-trained EOS. The fine-tuned tokenizer is saved with a chat template
that writes the same format, so that the generation backends prompt the model as it was
trained, and the model's generation config stops on the token.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100


def chat_template(end_of_turn: str) -> str:
    """A Jinja chat template writing the training format; the model writes the next turn."""
    return (
        "{{ bos_token }}{% for message in messages %}{{ message['content'] }}"
        + end_of_turn
        + "{% endfor %}"
    )


def end_of_turn_id(tokenizer: Any, token: str) -> int | None:
    """The token's id if the tokenizer knows it as one token, else None."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return None
    return int(token_id)


def add_end_of_turn(tokenizer: Any, token: str) -> tuple[int, bool]:
    """Add the token as a special token unless the tokenizer has it; returns (id, added)."""
    existing = end_of_turn_id(tokenizer, token)
    if existing is not None:
        return existing, False
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [token]}, replace_extra_special_tokens=False
    )
    token_id = end_of_turn_id(tokenizer, token)
    if token_id is None:
        raise ValueError(f"The tokenizer did not take {token!r} as a token.")
    return token_id, True


def prepare_model_and_tokenizer(model: Any, tokenizer: Any, token: str) -> int:
    """The token added, embeddings resized to match, the chat template and stop tokens set."""
    token_id, _ = add_end_of_turn(tokenizer, token)
    embeddings = model.get_input_embeddings().weight
    if embeddings.shape[0] < len(tokenizer):
        # New rows start at the mean of the old ones, which barely moves the next-token
        # distribution; weights not materialised on this process (FSDP's memory-saving load
        # keeps them on the meta device off rank 0) get theirs from rank 0.
        model.resize_token_embeddings(
            len(tokenizer), mean_resizing=embeddings.device.type != "meta"
        )
    tokenizer.chat_template = chat_template(token)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    stops = [token_id]
    if tokenizer.eos_token_id is not None:
        stops.insert(0, tokenizer.eos_token_id)
    model.generation_config.eos_token_id = stops
    model.config.eos_token_id = stops[0]
    return token_id


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    # The token to predict at each position, or IGNORE_INDEX where no loss is taken.
    labels: list[int]
    # Tokens before trimming, and the position of the first answer token (before trimming).
    full_length: int
    answer_start: int

    @property
    def trimmed(self) -> bool:
        return self.full_length > len(self.input_ids)


def encode_conversation(
    tokenizer: Any, conversations: Sequence[str], *, end_of_turn: int, max_length: int
) -> Encoded:
    """Token ids and labels of one example: loss on the assistant's tokens and their EOT only.

    Each utterance is tokenised on its own and followed by the end-of-turn token; texts over
    `max_length` tokens are cut at the end.
    """
    input_ids: list[int] = []
    labels: list[int] = []
    if tokenizer.bos_token_id is not None:
        input_ids.append(tokenizer.bos_token_id)
        labels.append(IGNORE_INDEX)
    answer_start = -1
    for index, text in enumerate(conversations):
        tokens = [*tokenizer(text, add_special_tokens=False)["input_ids"], end_of_turn]
        is_answer = index % 2 == 1
        if is_answer and answer_start < 0:
            answer_start = len(input_ids)
        input_ids += tokens
        labels += tokens if is_answer else [IGNORE_INDEX] * len(tokens)
    return Encoded(
        input_ids=input_ids[:max_length],
        labels=labels[:max_length],
        full_length=len(input_ids),
        answer_start=answer_start if answer_start >= 0 else len(input_ids),
    )
