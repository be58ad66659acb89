"""vLLM's offline engine on a GPU worker (`pip install .[gpu]`; the `gpu` queue, concurrency 1).

All of a model's prompts go to the engine in one `generate` call, so that its continuous
batching does the scheduling. The engine stays loaded in the worker process between tasks for
the same model; a task for another model replaces it. The mapping from a model's settings and
the round's sampling to vLLM's arguments is kept in plain functions, testable without vLLM.
"""

import gc
import json
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


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return read_config("vllm", config, OPTIONS)


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
        vllm = _import_vllm()
        if is_local_path(args["model"]) and not os.path.isdir(args["model"]):
            raise BackendConfigError(
                f"The model folder {args['model']} does not exist on this worker: fix 'model' "
                "in the model's config (a checkpoint folder or a hub id)."
            )
        _release_engine()
        try:
            engine = vllm.LLM(**args)
        except (OSError, ValueError) as error:
            raise BackendConfigError(
                f"vLLM could not load {args['model']!r}: {error}. Check 'model' and the engine "
                "settings (max_model_len, gpu_memory_utilization, tensor_parallel_size)."
            ) from None
        _engine[key] = engine
        return engine


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
    return VLLMBackend(options, engine_for(engine_args(config)))


class VLLMBackend(LocalModelBackend):
    name = "vllm"

    def __init__(self, options: dict[str, Any], engine: Any):
        self.options = options
        self.engine = engine
        self.tokenizer = engine.get_tokenizer()
        if options["chat_template"]:
            self.tokenizer.chat_template = options["chat_template"]
        if options["prompt_format"] == "chat" and not getattr(
            self.tokenizer, "chat_template", None
        ):
            raise BackendConfigError(
                f"The tokenizer of {options['model']!r} has no chat template: set 'chat_template' "
                "in the model's config, or a plain 'prompt_format' such as \"{prompt}\\n\\n\"."
            )
        self.stop_token_ids: list[int] = []
        if options["end_of_turn"]:
            eot_id = self.tokenizer.convert_tokens_to_ids(options["end_of_turn"])
            if eot_id is None or eot_id == getattr(self.tokenizer, "unk_token_id", None):
                raise BackendConfigError(
                    f"The end-of-turn token {options['end_of_turn']!r} is not in the tokenizer of "
                    f"{options['model']!r}: fix 'end_of_turn' or leave it empty."
                )
            self.stop_token_ids.append(eot_id)

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingSettings
    ) -> Iterator[GenerationResult]:
        vllm = _import_vllm()
        ready: list[tuple[GenerationRequest, str]] = []
        for request in requests:
            try:
                ready.append((request, self._render(request)))
            except Exception as error:
                yield GenerationResult(request.key, error=f"Could not format the prompt: {error}")
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
            outputs = self.engine.generate([text for _, text in ready], params, use_tqdm=False)
        except Exception as error:
            for request, _ in ready:
                yield GenerationResult(request.key, error=f"vLLM generation failed: {error}")
            return
        seconds = time.perf_counter() - started
        for (request, _), output in zip(ready, outputs, strict=True):
            completion = output.outputs[0]
            yield GenerationResult(
                request.key,
                text=completion.text.strip(),
                prompt_tokens=len(output.prompt_token_ids or ()),
                completion_tokens=len(completion.token_ids),
                finish_reason=completion.finish_reason or "",
                details={
                    "seed": request.seed,
                    "seed_scope": "request",
                    "batch_size": len(ready),
                    "batch_seconds": round(seconds, 3),
                },
            )
