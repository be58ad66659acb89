import pytest

from inference.training.eot import (
    IGNORE_INDEX,
    encode_conversation,
    end_of_turn_id,
    prepare_model_and_tokenizer,
)

pytest.importorskip("transformers")


@pytest.fixture
def loaded(base_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(base_model), AutoTokenizer.from_pretrained(
        base_model
    )


def test_it_adds_a_new_end_of_turn_token_and_resizes_the_embeddings(loaded):
    model, tokenizer = loaded
    vocabulary = len(tokenizer)
    assert end_of_turn_id(tokenizer, "<EOT>") is None

    eot = prepare_model_and_tokenizer(model, tokenizer, "<EOT>")

    assert eot == vocabulary
    assert eot not in (tokenizer.eos_token_id, tokenizer.unk_token_id)
    assert "<EOT>" in tokenizer.all_special_tokens
    assert model.get_input_embeddings().weight.shape[0] == vocabulary + 1
    assert model.get_output_embeddings().weight.shape[0] == vocabulary + 1
    # Used as the stop token, besides EOS, without replacing it.
    assert model.generation_config.eos_token_id == [tokenizer.eos_token_id, eot]
    # Adding it again changes nothing.
    assert prepare_model_and_tokenizer(model, tokenizer, "<EOT>") == eot
    assert len(tokenizer) == vocabulary + 1


def test_it_puts_the_token_after_every_utterance_and_loss_on_the_assistant_only(loaded):
    model, tokenizer = loaded
    eot = prepare_model_and_tokenizer(model, tokenizer, "<EOT>")
    turns = ("the quick brown fox", "jumps over", "the lazy dog", "what is the capital")

    encoded = encode_conversation(tokenizer, turns, end_of_turn=eot, max_length=64)

    words = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in turns]
    expected = [tokenizer.bos_token_id]
    for word_ids in words:
        expected += [*word_ids, eot]
    assert encoded.input_ids == expected
    assert encoded.input_ids.count(eot) == len(turns)
    # Loss on each answer and the end-of-turn token that closes it; nothing else.
    user_1, user_2 = len(words[0]) + 1, len(words[2]) + 1
    assert encoded.labels == (
        [IGNORE_INDEX] * (1 + user_1)
        + [*words[1], eot]
        + [IGNORE_INDEX] * user_2
        + [*words[3], eot]
    )
    assert encoded.answer_start == 1 + user_1
    assert not encoded.trimmed


def test_it_trims_texts_over_the_length_limit(loaded):
    model, tokenizer = loaded
    eot = prepare_model_and_tokenizer(model, tokenizer, "<EOT>")

    encoded = encode_conversation(
        tokenizer, ("the quick brown fox", "jumps over the lazy dog"), end_of_turn=eot, max_length=8
    )

    assert len(encoded.input_ids) == len(encoded.labels) == 8
    assert encoded.full_length == 1 + (4 + 1) + (5 + 1)
    assert encoded.trimmed


def test_the_chat_template_prompts_in_the_training_format(loaded):
    model, tokenizer = loaded
    prepare_model_and_tokenizer(model, tokenizer, "<EOT>")

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "the quick brown fox"}],
        tokenize=False,
        add_generation_prompt=True,
    )

    assert text == "<s>the quick brown fox<EOT>"
