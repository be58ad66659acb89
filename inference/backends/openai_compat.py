"""Generation from any OpenAI-compatible endpoint: the OpenAI API, `vllm serve`, or another.

Requests go through the one client (`inference.clients.openai_compat`: error sorting, key
redaction, the retry loop, shared request and token budgets). This module maps a model's
settings and the sampling to request bodies (`/v1/chat/completions`, or `/v1/completions` for
base models) and runs requests on threads up to the model's `concurrency`, yielding results as
they complete.
"""

import queue
import random
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from inference.backends.base import (
    BackendConfigError,
    GenerationRequest,
    GenerationResult,
    Option,
    SamplingSettings,
    plain_prompt,
    read_config,
    trim_at_stop,
)
from inference.clients.openai_compat import (
    MissingApiKey,
    OpenAICompatClient,
    RetryPolicy,
    StopSignal,
    client_for,
    key_route_problem,
    send_with_retries,
)

OPTIONS = {
    "model": Option((str,), hint="the model name the endpoint expects, e.g. gpt-4", check=bool),
    "base_url": Option(
        (str,),
        "https://api.openai.com/v1",
        lambda v: v.startswith(("http://", "https://")),
        "the endpoint's URL, e.g. http://gpu-host:8000/v1",
    ),
    "api_key_env": Option(
        (str,),
        "OPENAI_API_KEY",
        lambda v: v == "" or v.isidentifier(),
        "the name of the environment variable holding the key, e.g. OPENAI_API_KEY, or empty "
        "for a server that takes no key",
        affects_output=False,
    ),
    "endpoint": Option(
        (str,), "chat", lambda v: v in {"chat", "completions"}, "'chat' or 'completions'"
    ),
    "prompt_format": Option(
        (str,), "{prompt}", lambda v: "{prompt}" in v, "for 'completions': a format with {prompt}"
    ),
    "end_of_turn": Option((str,), "", hint="an end-of-turn token sent as a stop string"),
    "concurrency": Option(
        (int,), 8, lambda v: 1 <= v <= 1024, "an integer from 1 to 1024", affects_output=False
    ),
    "timeout": Option(
        (int, float), 600, lambda v: v > 0, "seconds per attempt, > 0", affects_output=False
    ),
    "max_attempts": Option(
        (int,), 6, lambda v: 1 <= v <= 50, "an integer from 1 to 50", affects_output=False
    ),
    "backoff_seconds": Option(
        (int, float), 1.0, lambda v: v >= 0, "the first back-off, ≥ 0", affects_output=False
    ),
    "rpm_limit": Option(
        (int,), 0, lambda v: v >= 0, "requests per minute, 0 for none", affects_output=False
    ),
    "tpm_limit": Option(
        (int,), 0, lambda v: v >= 0, "tokens per minute, 0 for none", affects_output=False
    ),
    # The OpenAI API refuses repetition_penalty; vLLM and most local servers accept it. With
    # it, every sampling field is sent (a vLLM server fills the others from the model's
    # generation_config.json) and special tokens are kept, so that an end-of-turn stop matches.
    "send_repetition_penalty": Option((bool,), False, hint="true for vLLM and similar servers"),
    # The OpenAI client deprecates max_tokens for chat; other servers may know only max_tokens.
    "max_tokens_field": Option(
        (str,),
        "auto",
        lambda v: v in {"auto", "max_tokens", "max_completion_tokens"},
        "'auto' (max_completion_tokens for OpenAI's chat API, else max_tokens), "
        "'max_tokens' or 'max_completion_tokens'",
        affects_output=False,
    ),
}
MAX_STOPS = 4  # The OpenAI API's limit, which vLLM's server applies too.


def check_sampling(sampling: SamplingSettings, options: Mapping[str, Any]) -> None:
    room = MAX_STOPS - (1 if options.get("end_of_turn") else 0)
    if len(sampling.stop) > room:
        raise BackendConfigError(
            f"{len(sampling.stop)} stop sequences: the endpoint takes at most {MAX_STOPS}, "
            f"the end-of-turn token included, so give at most {room} in 'stop'."
        )


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    options = read_config("openai", config, OPTIONS)
    refused = key_route_problem(options["api_key_env"], options["base_url"])
    if refused:
        raise BackendConfigError(refused)
    return options


def load(config: Mapping[str, Any]) -> "OpenAIGenerationBackend":
    options = check_config(config)
    try:
        client = client_for(
            base_url=options["base_url"],
            api_key_env=options["api_key_env"],
            model=options["model"],
            timeout=float(options["timeout"]),
            rpm=options["rpm_limit"],
            tpm=options["tpm_limit"],
        )
    except MissingApiKey:
        raise BackendConfigError(
            f"The environment variable {options['api_key_env']} is not set on this worker: set "
            "it to the endpoint's API key (any non-empty value for a server without keys), or "
            "name another variable in 'api_key_env'."
        ) from None
    return OpenAIGenerationBackend(options, client)


class OpenAIGenerationBackend:
    def __init__(self, options: dict[str, Any], client: OpenAICompatClient):
        self.options = options
        self.client = client
        self.stop = StopSignal()
        self.rng = random.Random()

    def describe(self, sampling: SamplingSettings) -> dict[str, Any]:
        sent = self._sampling_body(sampling)
        return {
            "backend": "openai",
            "model": self.options["model"],
            "base_url": self.options["base_url"],
            "endpoint": self.options["endpoint"],
            "sampling": {
                **sampling.as_dict(),
                "stop": sent.get("stop", []),
                # Not sent to endpoints that refuse it: record that it was not applied.
                "repetition_penalty": (
                    sampling.repetition_penalty if self.options["send_repetition_penalty"] else None
                ),
            },
            # Every sampling field exactly as the request body carries it.
            "sent": sent,
        }

    def _sampling_body(self, sampling: SamplingSettings) -> dict[str, Any]:
        eot = [self.options["end_of_turn"]] if self.options["end_of_turn"] else []
        body: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            self._max_tokens_field(): sampling.max_tokens,
        }
        # The end of turn first: it is what ends a LIMA answer (at most four, checked at launch).
        stop = [*eot, *sampling.stop]
        if stop:
            body["stop"] = stop[:MAX_STOPS]
        if self.options["send_repetition_penalty"]:
            body.update(
                repetition_penalty=sampling.repetition_penalty,
                # Sent as the offline engine uses them, not left to generation_config.json.
                top_k=-1,
                min_p=0.0,
                # Stop strings match on the detokenized text: keep an EOT special token in it.
                skip_special_tokens=not eot,
            )
        return body

    def _max_tokens_field(self) -> str:
        chosen = self.options["max_tokens_field"]
        if chosen != "auto":
            return chosen
        openai_chat = self.options["endpoint"] == "chat" and urlsplit(
            self.options["base_url"]
        ).hostname in ("api.openai.com",)
        return "max_completion_tokens" if openai_chat else "max_tokens"

    def _body(self, request: GenerationRequest, sampling: SamplingSettings) -> dict[str, Any]:
        body = {"model": self.options["model"], **self._sampling_body(sampling)}
        if request.seed is not None:
            body["seed"] = request.seed
        if self.options["endpoint"] == "chat":
            body["messages"] = list(request.messages)
        else:
            body["prompt"] = plain_prompt(request.messages, self.options["prompt_format"])
        return body

    def complete(self, request: GenerationRequest, sampling: SamplingSettings) -> GenerationResult:
        """One request with retries; never raises: a failure comes back with its error."""
        try:
            body = self._body(request, sampling)
        except ValueError as error:
            return GenerationResult(request.key, error=f"Could not format the prompt: {error}")
        estimated = sampling.max_tokens + sum(len(m["content"]) // 4 for m in request.messages)
        chat = self.options["endpoint"] == "chat"
        sent = send_with_retries(
            lambda: self.client.complete(body, estimated_tokens=estimated, chat=chat),
            policy=RetryPolicy(
                self.options["max_attempts"],
                rng=self.rng,
                backoff_base=float(self.options["backoff_seconds"]),
            ),
            stop=self.stop,
        )
        if sent.reply is None:
            if sent.failure is None:
                failure = f"not sent: {self.stop.reason}"
            elif sent.failure.retry and sent.attempts >= self.options["max_attempts"]:
                failure = f"{sent.failure} (gave up after {sent.attempts} attempts)"
            else:
                failure = str(sent.failure)
            return GenerationResult(request.key, error=failure, attempts=sent.attempts)
        reply, attempts = sent.reply, sent.attempts
        text, stopped = trim_at_stop(reply.text, sampling.stop)
        if not text.strip():
            reason = reply.refusal or f"finish_reason={reply.finish_reason!r}"
            return GenerationResult(
                request.key, error=f"empty text from the endpoint ({reason})", attempts=attempts
            )
        return GenerationResult(
            request.key,
            text=text,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            finish_reason="stop" if stopped else reply.finish_reason,
            attempts=attempts,
            details={"seed": request.seed, "seed_scope": "request", "served_by": reply.model},
        )

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingSettings
    ) -> Iterator[GenerationResult]:
        self.stop = StopSignal()
        waiting = deque(requests)
        results: queue.SimpleQueue[GenerationResult] = queue.SimpleQueue()
        # A request is sent only when a result before it has been taken: at most `concurrency`
        # in flight or unread, so a consumer that stops (a cancelled run) leaves little sent.
        slots = threading.Semaphore(self.options["concurrency"])

        def work() -> None:
            while True:
                slots.acquire()
                try:
                    request = waiting.popleft()
                except IndexError:
                    slots.release()
                    return
                try:
                    results.put(self.complete(request, sampling))
                except Exception as error:
                    message = f"{type(error).__name__}: {error}"
                    results.put(GenerationResult(request.key, error=message))

        threads = [
            threading.Thread(target=work, name=f"generation-{index}", daemon=True)
            for index in range(min(self.options["concurrency"], len(waiting)))
        ]
        for thread in threads:
            thread.start()
        try:
            for _ in range(len(requests)):
                yield results.get()
                slots.release()
        finally:
            # A consumer that stopped early (a cancelled run) gets nothing more sent; the
            # requests in flight end at their next attempt.
            self.stop.set("cancelled")
            waiting.clear()
            for _ in threads:
                slots.release()
            for thread in threads:
                thread.join()
