"""Asking the judge one question, with retries: runs on worker threads, never touches the ORM.

The service (`inference.services.judge_run_execute`) builds a `CallJob` per call, hands the
jobs to a thread pool, and writes each `CallOutcome` to the database from its own thread.
"""

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from inference.judge.endpoint import CallFailed, ChatEndpoint, backoff_delay
from inference.judge.prompts import Template

# A reply without a verdict (or a refusal) is asked once more before the call is failed.
PARSE_ATTEMPTS = 2
_STRUCTURED_REFUSED = ("response_format", "json_schema", "structured")


class StructuredSwitch:
    """Whether to ask for the verdict as a schema-checked field; turned off for the rest of
    the run the first time the endpoint refuses `response_format`."""

    def __init__(self, on: bool) -> None:
        self._on = on
        self._lock = threading.Lock()

    @property
    def on(self) -> bool:
        return self._on

    def turn_off(self) -> None:
        with self._lock:
            self._on = False


class StopSignal:
    """Set when no further call can succeed (the key was refused, the model is unknown)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class RequestSettings:
    model: str
    template: Template
    temperature: float
    max_tokens: int

    def body(self, fields: dict[str, str], *, structured: bool) -> dict:
        body = {
            "model": self.model,
            "messages": self.template.messages(structured=structured, **fields),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if structured:
            body["response_format"] = self.template.schema
        return body


def cache_key(body: dict, template_version: str) -> str:
    """Everything that shapes the reply: model, template version, exact messages, settings."""
    payload = json.dumps({"template": template_version, **body}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def estimate_tokens(body: dict) -> int:
    """What a rate limiter counts before the call: the prompt (about 4 characters a token)
    and the most the reply may use."""
    prompt = sum(len(message["content"]) for message in body["messages"])
    return prompt // 4 + body.get("max_tokens", 0)


@dataclass(frozen=True)
class CallJob:
    call_id: int
    fields: dict[str, str]


@dataclass
class CallOutcome:
    call_id: int
    # "done", "failed", or "pending" when the run stopped before the call was sent.
    status: str
    request: dict = field(default_factory=dict)
    raw_reply: str = ""
    verdict: str = ""
    error: str = ""
    response_model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_seconds: float | None = None
    attempts: int = 0
    cache_key: str = ""


def ask(
    job: CallJob,
    *,
    endpoint: ChatEndpoint,
    settings: RequestSettings,
    structured: StructuredSwitch,
    stop: StopSignal,
    max_attempts: int,
    rng: random.Random,
    sleep: Callable[[float], None] = time.sleep,
) -> CallOutcome:
    """One judgment: retries what an API can throw (429 after its Retry-After, 5xx, timeouts,
    dropped connections, unreadable bodies) and replies without a verdict, up to
    `max_attempts` requests. Never raises for an API failure: it comes back as the outcome."""
    outcome = CallOutcome(job.call_id, "failed")
    unparsed = 0
    while outcome.attempts < max_attempts:
        if stop.is_set():
            outcome.status, outcome.error = "pending", f"not sent: {stop.reason}"
            return outcome
        body = settings.body(job.fields, structured=structured.on)
        outcome.request = body
        outcome.cache_key = cache_key(body, settings.template.version)
        outcome.attempts += 1
        try:
            reply = endpoint.complete(body, estimated_tokens=estimate_tokens(body))
        except CallFailed as failure:
            outcome.error = str(failure)
            message = outcome.error.lower()
            if (
                failure.status == 400
                and "response_format" in body
                and any(word in message for word in _STRUCTURED_REFUSED)
            ):
                structured.turn_off()
                continue
            if failure.fatal:
                stop.set(f"the endpoint refused the run: {failure}")
                return outcome
            if not failure.retry:
                return outcome
            if outcome.attempts < max_attempts:
                sleep(_delay(failure, outcome.attempts, rng))
            continue
        outcome.prompt_tokens += reply.prompt_tokens
        outcome.completion_tokens += reply.completion_tokens
        outcome.raw_reply = reply.text or reply.refusal
        outcome.response_model = reply.model
        outcome.latency_seconds = reply.latency_seconds
        verdict = None if reply.refusal else settings.template.parse(reply.text)
        if verdict is not None:
            outcome.status, outcome.verdict, outcome.error = "done", verdict, ""
            return outcome
        outcome.error = _no_verdict(reply.refusal, reply.finish_reason)
        unparsed += 1
        if unparsed >= PARSE_ATTEMPTS:
            return outcome
    outcome.error = f"{outcome.error} (gave up after {outcome.attempts} attempts)"
    return outcome


def _delay(failure: CallFailed, attempt: int, rng: random.Random) -> float:
    if failure.delay is not None:
        # At least what the server asked for, plus a little so that workers told the same
        # Retry-After do not all come back at once.
        return failure.delay * (1 + rng.uniform(0, 0.1))
    return backoff_delay(attempt, rng=rng)


def _no_verdict(refusal: str, finish_reason: str) -> str:
    if refusal:
        return "the model refused to judge"
    if finish_reason == "length":
        return "no verdict in the reply: it was cut at max_tokens"
    return "no verdict in the reply"
