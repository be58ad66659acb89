"""vLLM's offline engine on a GPU worker (`pip install .[gpu]`; the `gpu` queue, concurrency 1).

All of a model's prompts go to the engine in one `generate` call, so that its continuous
batching does the scheduling. The engine stays loaded in the worker process between tasks for
the same model; a task for another model replaces it. The mapping from a model's settings and
the round's sampling to vLLM's arguments is kept in plain functions, testable without vLLM.
"""

import gc
import json
import multiprocessing
import os
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
    plain_prompt,
    read_config,
)

OPTIONS = {
    "tokenizer": Option((str,), "", hint="a tokenizer folder or hub id, if not the model's"),
    "tensor_parallel_size": Option(
        (int,), 1, lambda v: v >= 1, "the number of GPUs, ≥ 1", affects_output=False
    ),
    "dtype": Option(
        (str,),
        "auto",
        lambda v: v in {"auto", "half", "float16", "bfloat16", "float", "float32"},
        "'auto', 'float16', 'bfloat16' or 'float32'",
    ),
    "max_model_len": Option((int,), None, lambda v: v >= 1, "the context length, ≥ 1"),
    "gpu_memory_utilization": Option(
        (int, float),
        0.9,
        lambda v: 0 < v <= 1,
        "the share of GPU memory, in (0, 1]",
        affects_output=False,
    ),
    "quantization": Option((str,), None, hint="a vLLM quantization method, e.g. awq"),
    "enforce_eager": Option((bool,), False, hint="true to skip CUDA graphs", affects_output=False),
    "trust_remote_code": Option((bool,), False, hint="true or false"),
    **LOCAL_MODEL_OPTIONS,
}


# vLLM 0.33's SamplingParams refuses a temperature above 2 (VLLMValidationError, raised
# outside the per-request handling) and raises one in (0, 0.01) to 0.01 without a word.
MAX_TEMPERATURE = 2.0
MIN_SAMPLED_TEMPERATURE = 0.01
# Finish reasons of an output that is not an answer (vLLM's abort, error and repetition).
FAILED_FINISH_REASONS = {"abort", "error", "repetition"}


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    options = read_config("vllm", config, OPTIONS)
    if config.get("sampling"):
        check_sampling(SamplingSettings.from_overrides(config["sampling"]), options)
    return options


def check_sampling(sampling: SamplingSettings, options: Mapping[str, Any] | None = None) -> None:
    """Refuse what vLLM would refuse at run time or change behind the stored settings."""
    if sampling.temperature > MAX_TEMPERATURE:
        raise BackendConfigError(
            f"vLLM refuses a temperature above {MAX_TEMPERATURE:g} (got {sampling.temperature})."
        )
    if 0 < sampling.temperature < MIN_SAMPLED_TEMPERATURE:
        raise BackendConfigError(
            f"vLLM raises a temperature below {MIN_SAMPLED_TEMPERATURE} to "
            f"{MIN_SAMPLED_TEMPERATURE} (got {sampling.temperature}): use 0 for greedy "
            f"decoding or at least {MIN_SAMPLED_TEMPERATURE}."
        )


def engine_args(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM(...)` from a model's settings."""
    options = check_config(config)
    model = options["model"]
    if is_local_path(model):
        model = os.path.expanduser(model)
    args: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": options["tensor_parallel_size"],
        "dtype": options["dtype"],
        "gpu_memory_utilization": float(options["gpu_memory_utilization"]),
        "trust_remote_code": options["trust_remote_code"],
        "enforce_eager": options["enforce_eager"],
        # Each request carries its own seed; this one only seeds the engine itself.
        "seed": 0,
    }
    for optional in ("tokenizer", "max_model_len", "quantization"):
        if options[optional]:
            args[optional] = options[optional]
    return args


def sampling_kwargs(
    sampling: SamplingSettings, *, seed: int | None, stop_token_ids: Sequence[int] = ()
) -> dict[str, Any]:
    """Keyword arguments for `vllm.SamplingParams(...)` for one request."""
    kwargs: dict[str, Any] = {
        "n": 1,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        # vLLM's repetition penalty is the paper's: on the prompt and the tokens so far.
        "repetition_penalty": sampling.repetition_penalty,
        "max_tokens": sampling.max_tokens,
        "skip_special_tokens": True,
    }
    if seed is not None:
        kwargs["seed"] = seed
    if sampling.stop:
        kwargs["stop"] = list(sampling.stop)
    if stop_token_ids:
        kwargs["stop_token_ids"] = list(stop_token_ids)
    return kwargs


def _import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise BackendConfigError(
            f"vLLM is not installed on this worker ({error}). Run vLLM models on a GPU worker "
            "built with the gpu extra (pip install '.[gpu]', the gpu-worker service, queue "
            "'gpu'), or give the model the transformers or openai backend."
        ) from None
    return vllm


# The loaded engine, kept across tasks: loading weights takes minutes, a task can take seconds.
_engine: dict[str, Any] = {}
_engine_lock = threading.Lock()


def engine_for(args: dict[str, Any]) -> Any:
    """The engine for these arguments: the one already loaded, or a new one in its place."""
    key = json.dumps(args, sort_keys=True)
    with _engine_lock:
        if key in _engine:
            return _engine[key]
        refuse_daemon_process()
        vllm = _import_vllm()
        if is_local_path(args["model"]) and not os.path.isdir(args["model"]):
            raise BackendConfigError(
                f"The model folder {args['model']} does not exist on this worker: fix 'model' "
                "in the model's config (a checkpoint folder or a hub id)."
            )
        _release_engine()
        try:
            engine = vllm.LLM(**args)
        # The EngineCore process reports what went wrong (e.g. a KV cache too small for
        # max_model_len) as RuntimeError("Engine core initialization failed...").
        except (OSError, ValueError, RuntimeError) as error:
            raise BackendConfigError(
                f"vLLM could not load {args['model']!r}: {error}. Check 'model' and the engine "
                "settings: lower max_model_len, raise gpu_memory_utilization, or set "
                "tensor_parallel_size to the GPUs the model needs."
            ) from None
        _engine[key] = engine
        return engine


def refuse_daemon_process() -> None:
    """vLLM starts an EngineCore process (and one per GPU with tensor parallelism), which a
    daemonic process may not do: a Celery prefork pool child is one."""
    if multiprocessing.current_process().daemon:
        raise BackendConfigError(
            "vLLM cannot start inside a Celery prefork pool child (daemonic processes are not "
            "allowed to have children). Start the GPU worker with --pool solo, as the "
            "gpu-worker service in docker-compose.yml does: celery -A evalplatform worker "
            "-Q gpu --pool solo."
        )


def release() -> None:
    """Let go of the engine kept loaded (before other work needs the GPUs)."""
    with _engine_lock:
        _release_engine()


def _release_engine() -> None:
    if not _engine:
        return
    _engine.clear()
    gc.collect()
    try:
        import torch

        torch.cuda.empty_cache()
    except ImportError:
        pass


def load(config: Mapping[str, Any]) -> "VLLMBackend":
    options = check_config(config)
    engine = engine_for(engine_args(config))  # First: says so when vLLM is not installed.
    return VLLMBackend(options, engine, load_tokenizer(options))


def load_tokenizer(options: Mapping[str, Any]) -> Any:
    """The model's own Hugging Face tokenizer, which renders and tokenizes every prompt here.

    vLLM's tokenizer wrapper is not used for that: in vLLM 0.33 its apply_chat_template runs
    on copies made earlier (so a chat_template set on it is ignored), and `LLM.generate` adds
    special tokens to plain text, a second BOS after the template's own.
    """
    from transformers import AutoTokenizer  # vLLM brings transformers; the core does not.

    source = options["tokenizer"] or options["model"]
    if is_local_path(source):
        source = os.path.expanduser(source)
    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=options["trust_remote_code"])
    except (OSError, ValueError) as error:
        raise BackendConfigError(f"Could not load the tokenizer {source!r}: {error}") from None


def prompt_token_ids(tokenizer: Any, options: Mapping[str, Any], messages: Sequence) -> list[int]:
    """The prompt as token ids, with exactly the special tokens the format gives it."""
    if options["prompt_format"] == "chat":
        ids = tokenizer.apply_chat_template(
            list(messages),
            chat_template=options["chat_template"] or None,
            tokenize=True,
            add_generation_prompt=True,
        )
        if isinstance(ids, Mapping):  # transformers 5 answers a BatchEncoding.
            ids = ids["input_ids"]
        return list(ids)
    text = plain_prompt(messages, options["prompt_format"])
    return list(tokenizer(text, add_special_tokens=True)["input_ids"])


def context_length(engine: Any, options: Mapping[str, Any]) -> int | None:
    """The engine's max_model_len: a prompt must be shorter to be generated at all."""
    try:
        return int(engine.llm_engine.model_config.max_model_len)
    except (AttributeError, TypeError, ValueError):
        return options["max_model_len"]


class VLLMBackend(LocalModelBackend):
    name = "vllm"

    def __init__(self, options: dict[str, Any], engine: Any, tokenizer: Any):
        self.options = options
        self.engine = engine
        self.tokenizer = tokenizer
        if options["prompt_format"] == "chat" and not (
            options["chat_template"] or getattr(tokenizer, "chat_template", None)
        ):
            raise BackendConfigError(
                f"The tokenizer of {options['model']!r} has no chat template: set 'chat_template' "
                "in the model's config, or a plain 'prompt_format' such as \"{prompt}\\n\\n\"."
            )
        self.max_model_len = context_length(engine, options)
        self.stop_token_ids: list[int] = []
        if options["end_of_turn"]:
            eot_id = tokenizer.convert_tokens_to_ids(options["end_of_turn"])
            if eot_id is None or eot_id == getattr(tokenizer, "unk_token_id", None):
                raise BackendConfigError(
                    f"The end-of-turn token {options['end_of_turn']!r} is not in the tokenizer of "
                    f"{options['model']!r}: fix 'end_of_turn' or leave it empty."
                )
            self.stop_token_ids.append(eot_id)

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingSettings
    ) -> Iterator[GenerationResult]:
        vllm = _import_vllm()
        check_sampling(sampling, self.options)
        ready: list[tuple[GenerationRequest, list[int]]] = []
        for request in requests:
            try:
                ids = prompt_token_ids(self.tokenizer, self.options, request.messages)
            except Exception as error:
                yield GenerationResult(request.key, error=f"Could not format the prompt: {error}")
                continue
            # vLLM aborts every request of the batch when one prompt is too long: refuse it alone.
            if self.max_model_len is not None and len(ids) >= self.max_model_len:
                yield GenerationResult(
                    request.key,
                    error=f"The prompt has {len(ids)} tokens; the model's context "
                    f"(max_model_len) is {self.max_model_len}, so nothing is left to answer.",
                )
                continue
            ready.append((request, ids))
        if not ready:
            return
        params = [
            vllm.SamplingParams(
                **sampling_kwargs(
                    sampling,
                    seed=request.seed if request.seed is not None else sampling.seed,
                    stop_token_ids=self.stop_token_ids,
                )
            )
            for request, _ in ready
        ]
        started = time.perf_counter()
        try:
            outputs = self.engine.generate(
                [{"prompt_token_ids": ids} for _, ids in ready], params, use_tqdm=False
            )
        except Exception as error:
            for request, _ in ready:
                yield GenerationResult(request.key, error=f"vLLM generation failed: {error}")
            return
        seconds = time.perf_counter() - started
        for (request, ids), output in zip(ready, outputs, strict=True):
            completion = output.outputs[0]
            reason = completion.finish_reason or ""
            text = completion.text.strip()
            if reason in FAILED_FINISH_REASONS or not text:
                why = f"finish reason {reason!r}" if reason in FAILED_FINISH_REASONS else "no text"
                yield GenerationResult(request.key, error=f"vLLM gave no answer ({why}).")
                continue
            yield GenerationResult(
                request.key,
                text=text,
                prompt_tokens=len(output.prompt_token_ids or ids),
                completion_tokens=len(completion.token_ids),
                finish_reason=reason,
                details={
                    "seed": request.seed,
                    "seed_scope": "request",
                    "batch_size": len(ready),
                    "batch_seconds": round(seconds, 3),
                },
            )
