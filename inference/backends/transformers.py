"""Local generation with transformers: runs anywhere, CPU included (`pip install .[train]`).

Prompts are generated in batches (left-padded, sorted by length so that little is padding).
Within a batch one random generator is shared, so the seed recorded is the batch's.
"""

import gc
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from inference.backends.base import (
    LOCAL_MODEL_OPTIONS,
    BackendConfigError,
    GenerationRequest,
    GenerationResult,
    LocalModelBackend,
    Option,
    SamplingSettings,
    is_local_path,
    read_config,
    trim_at_stop,
)

OPTIONS = {
    **LOCAL_MODEL_OPTIONS,
    "batch_size": Option((int,), 8, lambda v: v >= 1, "an integer ≥ 1"),
    "device": Option((str,), "auto", hint="'auto', 'cpu', 'cuda' or 'cuda:N'"),
    "dtype": Option(
        (str,),
        "auto",
        lambda v: v in {"auto", "float32", "float16", "bfloat16"},
        "'auto', 'float32', 'float16' or 'bfloat16'",
    ),
    "trust_remote_code": Option((bool,), False, hint="true or false"),
}


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return read_config("transformers", config, OPTIONS)


# One model stays loaded per worker process, so consecutive tasks for it skip the load.
_loaded: dict[tuple, tuple[Any, Any]] = {}
_load_lock = threading.Lock()


def _load_weights(options: dict[str, Any]) -> tuple[Any, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise BackendConfigError(
            f"transformers is not installed on this worker ({error}): install the train extra, "
            "pip install '.[train]', or give the model another backend."
        ) from None
    model_id = options["model"]
    if is_local_path(model_id):
        model_id = os.path.expanduser(model_id)
        if not os.path.isdir(model_id):
            raise BackendConfigError(
                f"The model folder {model_id} does not exist on this worker: fix 'model' in the "
                "model's config (a checkpoint folder saved with save_pretrained, or a hub id)."
            )
    key = (model_id, options["device"], options["dtype"], options["trust_remote_code"])
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        _loaded.clear()
        device = options["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = options["dtype"] if options["dtype"] == "auto" else getattr(torch, options["dtype"])
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                model_id, trust_remote_code=options["trust_remote_code"]
            )
            model = AutoModelForCausalLM.from_pretrained(
                model_id, dtype=dtype, trust_remote_code=options["trust_remote_code"]
            )
        except (OSError, ValueError) as error:
            raise BackendConfigError(
                f"Could not load {model_id!r} with transformers: {error}. Give a checkpoint "
                "folder that exists on this worker or a hub id it can download (set HF_TOKEN "
                "for gated models)."
            ) from None
        model.to(device).eval()
        _loaded[key] = (model, tokenizer)
        return model, tokenizer


def release() -> None:
    """Let go of the model kept loaded (before other work needs the memory)."""
    with _load_lock:
        if not _loaded:
            return
        _loaded.clear()
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


def load(config: Mapping[str, Any]) -> "TransformersBackend":
    options = check_config(config)
    model, tokenizer = _load_weights(options)
    return TransformersBackend(options, model, tokenizer)


class TransformersBackend(LocalModelBackend):
    name = "transformers"

    def __init__(self, options: dict[str, Any], model: Any, tokenizer: Any):
        self.options = options
        self.model = model
        self.tokenizer = tokenizer
        if options["chat_template"]:
            tokenizer.chat_template = options["chat_template"]
        if options["prompt_format"] == "chat" and not tokenizer.chat_template:
            raise BackendConfigError(
                f"The tokenizer of {options['model']!r} has no chat template: set 'chat_template' "
                "in the model's config, or a plain 'prompt_format' such as \"{prompt}\\n\\n\"."
            )
        self.stop_ids = [tokenizer.eos_token_id]
        if options["end_of_turn"]:
            eot_id = tokenizer.convert_tokens_to_ids(options["end_of_turn"])
            if eot_id is None or eot_id == tokenizer.unk_token_id:
                raise BackendConfigError(
                    f"The end-of-turn token {options['end_of_turn']!r} is not in the tokenizer of "
                    f"{options['model']!r}: fix 'end_of_turn' or leave it empty."
                )
            self.stop_ids.append(eot_id)
        self.stop_ids = [i for i in self.stop_ids if i is not None]
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingSettings
    ) -> Iterator[GenerationResult]:
        rendered: list[tuple[GenerationRequest, str]] = []
        for request in requests:
            try:
                rendered.append((request, self._render(request)))
            except Exception as error:
                yield GenerationResult(request.key, error=f"Could not format the prompt: {error}")
        rendered.sort(key=lambda pair: len(pair[1]))
        size = self.options["batch_size"]
        for start in range(0, len(rendered), size):
            yield from self._generate_batch(rendered[start : start + size], sampling)

    def _generate_batch(
        self, batch: list[tuple[GenerationRequest, str]], sampling: SamplingSettings
    ) -> Iterator[GenerationResult]:
        import torch
        from transformers import set_seed

        seed = batch[0][0].seed if batch[0][0].seed is not None else sampling.seed
        details = {"seed": seed, "seed_scope": "batch", "batch_size": len(batch)}
        # A chat template writes its own special tokens; plain formats get the tokenizer's.
        add_special = self.options["prompt_format"] != "chat"
        started = time.perf_counter()
        try:
            if seed is not None:
                set_seed(seed)
            encoded = self.tokenizer(
                [text for _, text in batch],
                return_tensors="pt",
                padding=True,
                add_special_tokens=add_special,
            ).to(self.model.device)
            sample = sampling.temperature > 0
            with torch.inference_mode():
                output = self.model.generate(
                    **encoded,
                    do_sample=sample,
                    temperature=sampling.temperature if sample else None,
                    top_p=sampling.top_p if sample else None,
                    top_k=None,
                    repetition_penalty=sampling.repetition_penalty,
                    max_new_tokens=sampling.max_tokens,
                    eos_token_id=self.stop_ids,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
        except Exception as error:
            for request, _ in batch:
                yield GenerationResult(request.key, error=f"Generation failed: {error}")
            return
        seconds = time.perf_counter() - started
        new_tokens = output[:, encoded["input_ids"].shape[1] :].tolist()
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        for (request, _), tokens, prompt_length in zip(
            batch, new_tokens, prompt_lengths, strict=True
        ):
            finish_reason = "length"
            for index, token in enumerate(tokens):
                if token in self.stop_ids:
                    tokens, finish_reason = tokens[:index], "stop"
                    break
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            text, stopped = trim_at_stop(text, sampling.stop)
            yield GenerationResult(
                request.key,
                text=text.strip(),
                prompt_tokens=int(prompt_length),
                completion_tokens=len(tokens),
                finish_reason="stop" if stopped else finish_reason,
                details={**details, "batch_seconds": round(seconds, 3)},
            )
