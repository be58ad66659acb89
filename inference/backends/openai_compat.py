"""Generation from any OpenAI-compatible endpoint: the OpenAI API, `vllm serve`, or another.

The official openai client with its own retries off, as in the judge's endpoint client
(`inference.judge.endpoint`), whose error sorting (retry / give up / fatal), key redaction and
shared request and token budgets are reused. This module adds the retry loop (Retry-After
honoured, exponential back-off otherwise), `/v1/completions` for base models, and concurrency:
requests run in a thread pool up to the model's `concurrency`, and results are yielded as they
complete.
"""

import queue
import random
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import openai

from inference.backends import (
    BackendConfigError,
    GenerationRequest,
    GenerationResult,
    Option,
    SamplingSettings,
    plain_prompt,
    read_config,
    trim_at_stop,
)
from inference.judge.endpoint import (
    MAX_RETRY_AFTER_SECONDS,
    CallFailed,
    ChatReply,
    MissingApiKey,
    _failure,
    api_key_from_env,
    backoff_delay,
    redact,
)
from inference.ratelimit import budget_name, rate_limiter

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
        lambda v: v.isidentifier(),
        "the name of the environment variable holding the key, e.g. OPENAI_API_KEY",
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
    # The OpenAI API refuses repetition_penalty; vLLM and most local servers accept it.
    "send_repetition_penalty": Option((bool,), False, hint="true for vLLM and similar servers"),
}


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return read_config("openai", config, OPTIONS)


def load(config: Mapping[str, Any]) -> "OpenAIGenerationBackend":
    options = check_config(config)
    try:
        api_key = api_key_from_env(options["api_key_env"])
    except MissingApiKey:
        raise BackendConfigError(
            f"The environment variable {options['api_key_env']} is not set on this worker: set "
            "it to the endpoint's API key (any non-empty value for a server without keys), or "
            "name another variable in 'api_key_env'."
        ) from None
    return OpenAIGenerationBackend(options, api_key)


class Endpoint:
    """One attempt at `/chat/completions` or `/completions`, failing like the judge's client."""

    def __init__(self, *, kind: str, base_url: str, api_key: str, timeout: float, limiter: Any):
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout
        )
        self._chat = kind == "chat"
        self._secret = api_key
        self._limiter = limiter

    def complete(self, body: dict, *, estimated_tokens: int) -> ChatReply:
        self._limiter.acquire(estimated_tokens)
        used = 0
        try:
            started = time.monotonic()
            # The body is sent as built and the reply read as JSON: the typed `create()` and
            # its models cost half of the client's time per request at high concurrency.
            reply = self._client.post(
                "/chat/completions" if self._chat else "/completions", body=body, cast_to=dict
            )
            choices = reply.get("choices") if isinstance(reply, dict) else None
            if not choices or not isinstance(choices[0], dict):
                raise CallFailed("malformed response: no choices", retry=True)
            choice = choices[0]
            message = choice.get("message") or {}
            text = message.get("content") if self._chat else choice.get("text")
            refusal = message.get("refusal") or ""
            if not isinstance(text, str) and not refusal:
                raise CallFailed("malformed response: the choice has no text", retry=True)
            usage = reply.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
            used = prompt_tokens + completion_tokens
            return ChatReply(
                text=redact(text or "", self._secret),
                refusal=redact(refusal, self._secret),
                model=reply.get("model") or "",
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason=choice.get("finish_reason") or "",
                latency_seconds=time.monotonic() - started,
            )
        except openai.APIError as error:
            raise _failure(error, self._secret) from None
        except ValueError as error:
            # The client could not parse the body (a proxy's error page, a cut connection).
            message = redact(f"malformed response: {error}", self._secret)
            raise CallFailed(message, retry=True) from None
        finally:
            self._limiter.settle(estimated_tokens, used)


class OpenAIGenerationBackend:
    def __init__(self, options: dict[str, Any], api_key: str):
        self.options = options
        limiter = rate_limiter(
            name=budget_name(
                base_url=options["base_url"],
                api_key_env=options["api_key_env"],
                model=options["model"],
            ),
            rpm=options["rpm_limit"],
            tpm=options["tpm_limit"],
        )
        self._endpoint_settings = {
            "kind": options["endpoint"],
            "base_url": options["base_url"],
            "api_key": api_key,
            "limiter": limiter,
            "timeout": float(options["timeout"]),
        }
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self.stop_event = threading.Event()
        self.stop_reason = ""
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
        }

    def _sampling_body(self, sampling: SamplingSettings) -> dict[str, Any]:
        eot = [self.options["end_of_turn"]] if self.options["end_of_turn"] else []
        body: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        stop = [*sampling.stop, *eot]
        if stop:
            # The OpenAI API takes at most four stop sequences; the rest are cut here.
            body["stop"] = stop[:4]
        if self.options["send_repetition_penalty"]:
            body["repetition_penalty"] = sampling.repetition_penalty
        return body

    def _body(self, request: GenerationRequest, sampling: SamplingSettings) -> dict[str, Any]:
        body = {"model": self.options["model"], **self._sampling_body(sampling)}
        if request.seed is not None:
            body["seed"] = request.seed
        if self.options["endpoint"] == "chat":
            body["messages"] = list(request.messages)
        else:
            body["prompt"] = plain_prompt(request.messages, self.options["prompt_format"])
        return body

    def _attempt(self, body: dict[str, Any], estimated_tokens: int) -> ChatReply:
        # One client per request in flight, reused: a shared client's connection pool is
        # scanned and locked on every request, which at 64 in flight costs more than the call.
        try:
            endpoint = self._idle.get_nowait()
        except queue.Empty:
            endpoint = Endpoint(**self._endpoint_settings)
        try:
            return endpoint.complete(body, estimated_tokens=estimated_tokens)
        finally:
            self._idle.put(endpoint)

    def complete(self, request: GenerationRequest, sampling: SamplingSettings) -> GenerationResult:
        """One request with retries; never raises: a failure comes back with its error."""
        try:
            body = self._body(request, sampling)
        except ValueError as error:
            return GenerationResult(request.key, error=f"Could not format the prompt: {error}")
        estimated = sampling.max_tokens + sum(len(m["content"]) // 4 for m in request.messages)
        attempts = 0
        while True:
            if self.stop_event.is_set():
                return GenerationResult(request.key, error=self.stop_reason, attempts=attempts)
            attempts += 1
            try:
                reply = self._attempt(body, estimated)
                break
            except CallFailed as failure:
                if failure.fatal:
                    self.stop_reason = f"not sent: an earlier request failed: {failure}"
                    self.stop_event.set()
                if not failure.retry or attempts >= self.options["max_attempts"]:
                    suffix = f" (gave up after {attempts} attempts)" if failure.retry else ""
                    return GenerationResult(
                        request.key, error=f"{failure}{suffix}", attempts=attempts
                    )
                delay = failure.delay
                if delay is None:
                    delay = backoff_delay(
                        attempts, rng=self.rng, base=float(self.options["backoff_seconds"])
                    )
                time.sleep(min(delay, MAX_RETRY_AFTER_SECONDS))
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
        self.stop_event.clear()
        self.stop_reason = ""
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
            self.stop_reason = self.stop_reason or "cancelled"
            self.stop_event.set()
            waiting.clear()
            for _ in threads:
                slots.release()
            for thread in threads:
                thread.join()
