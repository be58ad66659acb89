"""A tiny random-initialised LLaMA-architecture model with a tokenizer built on the spot.

Nothing is downloaded: the tokenizer is a word-level one trained on a few sentences, the weights
are random (hidden size 32, 2 layers). Saved with save_pretrained, it loads through the same
`from_pretrained` calls as a real checkpoint.
"""

from pathlib import Path

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "write a short poem about the sea and the sky",
    "what is the capital of france and why",
    "explain how rain forms in clouds over the mountains",
    "give me three ideas for a birthday party",
    "how do i cook rice so that it is not sticky",
    "question number one two three four five six seven eight nine",
    "tell me a story about a cat a dog and a bird",
    "why is the ocean salty but rivers are not",
    "list some good books to read this summer",
]

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] }} : "
    "{{ message['content'] }} <EOT> {% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def build_tiny_model(
    folder: Path, *, seed: int = 0, layers: int = 2, end_of_turn: bool = True, add_bos: bool = False
) -> Path:
    """Without `end_of_turn`, the tokenizer lacks <EOT>, as a base model's does. With `add_bos`
    it puts <s> before every text it encodes with special tokens, as LLaMA's tokenizer does."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece()
    special = ["<unk>", "<pad>", "<s>", "</s>", *(["<EOT>"] if end_of_turn else [])]
    tokenizer.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=special))
    if add_bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<EOT>"] if end_of_turn else [],
    )
    fast.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
