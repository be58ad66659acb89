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


def answer_dev_set(
    *,
    checkpoint: str,
    prompts: Sequence[DevPrompt],
    backend: str,
    end_of_turn: str,
    sampling: dict[str, Any],
    seed: int,
) -> dict[str, Sample]:
    """Each dev prompt answered by the checkpoint, prompted in its training format."""
    model = backend_load(backend, {"model": checkpoint, "end_of_turn": end_of_turn})
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
