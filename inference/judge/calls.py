"""Asking the judge one question, with retries: runs on worker threads, never touches the ORM.

The worker (`inference.judge.worker.judge_run_execute`) builds a `CallJob` per call, hands the
jobs to a thread pool, and writes each `CallOutcome` to the database from its own thread.
"""

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from inference.clients.openai_compat import (
    CallFailed,
    ChatReply,
    OpenAICompatClient,
    RetryPolicy,
    StopSignal,
    client_for,
    send_with_retries,
)
from inference.judge.prompts import Template

if TYPE_CHECKING:
    from inference.judge.models import Judge

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
    client: OpenAICompatClient,
    settings: RequestSettings,
    structured: StructuredSwitch,
    stop: StopSignal,
    policy: RetryPolicy,
) -> CallOutcome:
    """One judgment: the client's retries for what an API can throw, and one more request for
    a reply without a verdict, up to the policy's attempts in all. Never raises for an API
    failure: it comes back as the outcome."""
    outcome = CallOutcome(job.call_id, "failed")

    def send() -> ChatReply:
        body = settings.body(job.fields, structured=structured.on)
        outcome.request = body
        outcome.cache_key = cache_key(body, settings.template.version)
        try:
            return client.complete(body, estimated_tokens=estimate_tokens(body))
        except CallFailed as failure:
            message = str(failure).lower()
            if (
                failure.status == 400
                and "response_format" in body
                and any(word in message for word in _STRUCTURED_REFUSED)
            ):
                # Asked again at once, without the schema, for the rest of the run.
                structured.turn_off()
                raise CallFailed(str(failure), retry=True, delay=0.0) from None
            raise

    for _ in range(PARSE_ATTEMPTS):
        if stop.is_set():
            outcome.status, outcome.error = "pending", f"not sent: {stop.reason}"
            return outcome
        sent = send_with_retries(
            send, policy=policy, stop=stop, attempts_left=policy.max_attempts - outcome.attempts
        )
        outcome.attempts += sent.attempts
        if sent.reply is None:
            if sent.failure is None:
                outcome.status, outcome.error = "pending", f"not sent: {stop.reason}"
                return outcome
            outcome.error = str(sent.failure)
            if sent.failure.retry and not sent.failure.fatal:
                outcome.error += f" (gave up after {outcome.attempts} attempts)"
            return outcome
        reply = sent.reply
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
        if outcome.attempts >= policy.max_attempts:
            outcome.error += f" (gave up after {outcome.attempts} attempts)"
            return outcome
    return outcome


def _no_verdict(refusal: str, finish_reason: str) -> str:
    if refusal:
        return "the model refused to judge"
    if finish_reason == "length":
        return "no verdict in the reply: it was cut at max_tokens"
    return "no verdict in the reply"


def judge_client(judge: "Judge") -> OpenAICompatClient:
    """The judge's endpoint under its budgets; raises MissingApiKey where the key is not set."""
    return client_for(
        base_url=judge.base_url,
        api_key_env=judge.api_key_env,
        model=judge.model,
        timeout=judge.timeout_seconds,
        rpm=judge.rpm_limit,
        tpm=judge.tpm_limit,
        max_concurrency=judge.max_concurrency,
    )
