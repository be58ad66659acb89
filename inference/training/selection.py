"""Checkpoint selection as in the paper: perplexity does not track quality, so each checkpoint of
epochs 5 to 10 answers a dev set, a judge rates every answer for helpfulness (1 to 6), and the
checkpoint with the best mean is chosen.

No database here: answers come from the generation backends (vLLM on a GPU, transformers
elsewhere), ratings from an OpenAI-compatible endpoint through the one OpenAI-compatible
client and retry loop, with the judge's versioned helpfulness template.
"""

import importlib.util
import random
import statistics
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.backends.base import (
    GenerationRequest,
    SamplingSettings,
    backend_load,
    messages_for,
    prompt_seed,
)
from inference.clients.openai_compat import OpenAICompatClient, RetryPolicy, StopSignal
from inference.judge.calls import CallJob, RequestSettings, StructuredSwitch, ask
from inference.judge.prompts import Template
from inference.training.recipe import SERVING_KEYS


@dataclass(frozen=True)
class DevPrompt:
    key: int
    external_id: str
    text: str
    turns: tuple[str, ...] = ()


@dataclass
class Sample:
    prompt: str
    answer: str = ""
    score: int | None = None
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CheckpointVerdict:
    step: int
    epoch: int
    path: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def scores(self) -> list[int]:
        return [s.score for s in self.samples if s.score is not None]

    @property
    def mean_score(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None

    @property
    def failed(self) -> int:
        return sum(1 for s in self.samples if s.score is None)


def selection_backend(wanted: str) -> str:
    """vLLM where a GPU and vLLM are present, otherwise transformers."""
    if wanted != "auto":
        return wanted
    if importlib.util.find_spec("vllm") is None:
        return "transformers"
    import torch

    return "vllm" if torch.cuda.is_available() else "transformers"


GIB = 1024**3
DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2}


def checkpoint_bytes(checkpoint: Path) -> int:
    """The size of the checkpoint's weights as saved (the trainer saves them in fp32)."""
    return sum(p.stat().st_size for p in checkpoint.glob("*.safetensors")) or sum(
        p.stat().st_size for p in checkpoint.glob("*.bin")
    )


def serving_fit_problem(
    *,
    weights_fp32_bytes: int,
    backend: str,
    serving: dict[str, Any],
    gpu_bytes: list[int],
    ram_bytes: int,
) -> str:
    """Why the checkpoint cannot be served as asked on this machine ("" when it fits).

    The checkpoint is in fp32; vLLM's dtype "auto" takes the checkpoint's, so it loads fp32
    too unless dtype says otherwise. Only the weights are counted: vLLM also needs room for
    its KV cache, so this refuses only what certainly cannot start.
    """
    dtype = serving.get("dtype", "auto")
    weights = weights_fp32_bytes * DTYPE_BYTES.get(dtype, 4) // 4
    if backend == "vllm":
        parallel = int(serving.get("tensor_parallel_size", 1))
        if parallel > len(gpu_bytes):
            return (
                f"selection_serving asks tensor_parallel_size={parallel}, but this worker sees "
                f"{len(gpu_bytes)} GPU{'s' if len(gpu_bytes) != 1 else ''}."
            )
        share = float(serving.get("gpu_memory_utilization", 0.9))
        per_gpu, room = weights / parallel, share * min(gpu_bytes)
        if per_gpu > room:
            needed = max(1, -(-int(weights) // int(room)))
            return (
                f"The checkpoint's weights need {per_gpu / GIB:.0f} GiB per GPU in {dtype} with "
                f"tensor_parallel_size={parallel}; each GPU offers {room / GIB:.0f} GiB at "
                f"gpu_memory_utilization={share}. Set selection_serving's tensor_parallel_size "
                f"to at least {needed}, or dtype to bfloat16."
            )
        return ""
    device_room = (
        min(gpu_bytes) if gpu_bytes and serving.get("device", "auto") != "cpu" else ram_bytes
    )
    if weights > device_room:
        return (
            f"transformers would load the checkpoint's {weights / GIB:.0f} GiB of weights "
            f"({dtype}) onto one device with {device_room / GIB:.0f} GiB: select with vLLM "
            "(selection_backend 'vllm' on a GPU worker, with tensor_parallel_size) instead."
        )
    return ""


def answer_dev_set(
    *,
    checkpoint: str,
    prompts: Sequence[DevPrompt],
    backend: str,
    end_of_turn: str,
    sampling: dict[str, Any],
    seed: int,
    serving: dict[str, Any] | None = None,
) -> dict[str, Sample]:
    """Each dev prompt answered by the checkpoint, prompted in its training format and served
    with the recipe's selection_serving settings."""
    options = {k: v for k, v in (serving or {}).items() if k in SERVING_KEYS[backend]}
    model = backend_load(backend, {"model": checkpoint, "end_of_turn": end_of_turn, **options})
    settings = SamplingSettings.from_overrides(sampling, {"seed": seed})
    requests = [
        GenerationRequest(
            key=prompt.key,
            messages=messages_for(prompt.text, prompt.turns),
            seed=prompt_seed(seed, prompt.external_id),
        )
        for prompt in prompts
    ]
    by_key = {prompt.key: prompt.external_id for prompt in prompts}
    samples = {}
    results = model.generate(requests, settings)
    try:
        for result in results:
            external_id = by_key[result.key]
            samples[external_id] = (
                Sample(external_id, answer=result.text or "")
                if result.ok
                else Sample(external_id, error=result.error or "no answer")
            )
    finally:
        # Backends' generate() are generators (the Backend protocol says only Iterator).
        if isinstance(results, Generator):
            results.close()
    return samples


@dataclass(frozen=True)
class HelpfulnessJudge:
    """The judge's endpoint and template, rating one answer at a time."""

    client: OpenAICompatClient
    template: Template
    model: str
    temperature: float
    max_tokens: int
    max_attempts: int
    max_concurrency: int
    structured: bool = False

    def rate(self, items: Sequence[tuple[str, str]]) -> list[tuple[int | None, str]]:
        """(score, error) for each (question, answer), in order."""
        settings = RequestSettings(self.model, self.template, self.temperature, self.max_tokens)
        structured = StructuredSwitch(self.structured)
        stop = StopSignal()
        rng = random.Random()

        def one(index: int) -> tuple[int | None, str]:
            question, answer = items[index]
            outcome = ask(
                CallJob(index, {"question": question, "answer": answer}),
                client=self.client,
                settings=settings,
                structured=structured,
                stop=stop,
                policy=RetryPolicy(self.max_attempts, rng=random.Random(rng.random())),
            )
            if outcome.status == "done":
                return int(outcome.verdict), ""
            return None, outcome.error or "no verdict"

        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(one, range(len(items))))


def rate_checkpoint(
    verdict: CheckpointVerdict,
    prompts: Sequence[DevPrompt],
    answers: dict[str, Sample],
    judge: HelpfulnessJudge,
) -> CheckpointVerdict:
    """The judge's score for every answer; prompts without an answer keep their error."""
    samples = [
        answers.get(p.external_id) or Sample(p.external_id, error="no answer") for p in prompts
    ]
    to_rate = [(p, s) for p, s in zip(prompts, samples, strict=True) if not s.error]
    ratings = judge.rate([(p.text, s.answer) for p, s in to_rate])
    for (_, sample), (score, error) in zip(to_rate, ratings, strict=True):
        sample.score, sample.error = score, error
    verdict.samples = samples
    return verdict
