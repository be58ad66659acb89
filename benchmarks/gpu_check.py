"""On a machine with an NVIDIA GPU and vLLM (pip install '.[gpu]'), check the platform's vLLM
backend against vLLM used directly: the same prompts, token ids and seeds must give the same
tokens, at about the same speed. Not part of CI (no GPU there).

    python benchmarks/gpu_check.py [--model Qwen/Qwen2.5-0.5B-Instruct] [--prompts 64]

Prints, for each way, the tokens per second, and how many of the prompts' outputs are the same
token for token (all of them, with vLLM's per-request seeds; a difference means the backend
sends something else than what it claims, e.g. a second BOS or another chat template).
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")

QUESTIONS = [
    "What is the capital of France, and why did it become the capital?",
    "Write a haiku about the sea.",
    "Explain how rain forms, in three sentences.",
    "Give me three ideas for a birthday party for a seven-year-old.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="Qwen/Qwen2.5-0.5B-Instruct")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=128)
    options = parser.parse_args()
    import django
    import vllm

    django.setup()
    from inference.backends import vllm as vllm_backend
    from inference.backends.base import (
        GenerationRequest,
        SamplingSettings,
        backend_load,
        messages_for,
        prompt_seed,
    )

    config = {"model": options.model, "gpu_memory_utilization": 0.6, "enforce_eager": True}
    sampling = SamplingSettings.from_overrides({"max_tokens": options.max_tokens})
    backend = backend_load("vllm", config)
    requests = [
        GenerationRequest(
            key=i, messages=messages_for(QUESTIONS[i % len(QUESTIONS)], ()), seed=prompt_seed(7, i)
        )
        for i in range(options.prompts)
    ]

    started = time.perf_counter()
    ours = list(backend.generate(requests, sampling))
    ours_seconds = time.perf_counter() - started

    ids = [
        vllm_backend.prompt_token_ids(backend.tokenizer, backend.options, r.messages)
        for r in requests
    ]
    params = [
        vllm.SamplingParams(**vllm_backend.sampling_kwargs(sampling, seed=r.seed)) for r in requests
    ]
    started = time.perf_counter()
    direct = backend.engine.generate([{"prompt_token_ids": i} for i in ids], params, use_tqdm=False)
    direct_seconds = time.perf_counter() - started

    same = sum(
        1
        for mine, theirs in zip(ours, direct, strict=True)
        if mine.ok
        and mine.completion_tokens == len(theirs.outputs[0].token_ids)
        and mine.text == theirs.outputs[0].text.strip()
    )
    double_bos = sum(
        1 for i in ids if len(i) > 1 and i[0] == i[1] == backend.tokenizer.bos_token_id
    )
    ours_tokens = sum(r.completion_tokens for r in ours)
    direct_tokens = sum(len(o.outputs[0].token_ids) for o in direct)
    print(f"model {options.model}, {options.prompts} prompts, vLLM {vllm.__version__}")
    print(f"platform backend: {ours_tokens / ours_seconds:.0f} tokens/s")
    print(f"vLLM directly:    {direct_tokens / direct_seconds:.0f} tokens/s")
    print(f"same output: {same} of {options.prompts}; prompts with two BOS: {double_bos}")


if __name__ == "__main__":
    main()
