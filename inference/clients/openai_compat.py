"""The one client for OpenAI-compatible endpoints (OpenAI, `vllm serve`, ...), used by the judge,
API-model generation and checkpoint selection.

The official `openai` client makes each request with its own retries turned off: `send_with_retries`
owns the one retry loop (Retry-After honoured with a little jitter, exponential back-off with
full jitter otherwise), so that every attempt is counted and every wait honours the request and
token budgets shared between workers (`clients.ratelimit`). Requests in flight are capped by a
semaphore, so calls sleeping between attempts do not hold a slot.
"""

import email.utils
import fnmatch
import os
import queue
import random
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from django.conf import settings

from inference.clients.ratelimit import RateLimiter, budget_name, rate_limiter

# A Retry-After longer than this is not waited for: the call fails and can be retried later.
MAX_RETRY_AFTER_SECONDS = 120.0
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{4,}")


class MissingApiKey(Exception):
    """The environment variable that should hold the API key is not set on this worker."""


@dataclass(frozen=True)
class ChatReply:
    text: str
    refusal: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency_seconds: float


class CallFailed(Exception):
    """One attempt failed. `retry`: worth another attempt, after `delay` seconds if the server
    said so. `fatal`: no call to this endpoint can succeed (bad key, unknown model)."""

    def __init__(
        self,
        message: str,
        *,
        retry: bool,
        delay: float | None = None,
        fatal: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry, self.delay, self.fatal, self.status = retry, delay, fatal, status


def redact(text: str, secret: str) -> str:
    """Remove the key, and anything shaped like an OpenAI key, from text we store or log."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)


def retry_after_seconds(headers) -> float | None:
    """Seconds asked for by `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        parsed = email.utils.parsedate_tz(value)
        if parsed is not None:
            return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def backoff_delay(
    attempt: int, *, rng: random.Random, base: float = 0.5, cap: float = 30.0
) -> float:
    """Exponential back-off with full jitter: spreads the retries of many workers apart."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class KeyNotAllowed(MissingApiKey):
    """The config names a key variable, or a URL for it, that the operator did not allow."""


# The placeholder sent to servers that take no key (the client library needs one).
NO_KEY = "EMPTY"


def key_route_problem(variable: str, base_url: str) -> str:
    """Why this key variable may not be sent to this URL under the API_KEYS setting ("": it
    may). No variable (an empty name) sends no key and is always allowed."""
    if not variable:
        return ""
    routes = settings.API_KEYS
    allowed = next(
        (
            prefixes
            for pattern, prefixes in routes.items()
            if fnmatch.fnmatchcase(variable, pattern)
        ),
        None,
    )
    if allowed is None:
        return (
            f"The key variable {variable} is not one the operator allows "
            f"({', '.join(routes) or 'none'}; the API_KEYS setting). Ask the operator to add it, "
            "or leave api_key_env empty for a server that needs no key."
        )
    if "*" not in allowed and not any(base_url.startswith(prefix) for prefix in allowed):
        return (
            f"The key in {variable} may only be sent to {', '.join(allowed)} (the API_KEYS "
            f"setting), not to {base_url}."
        )
    return ""


def api_key_for(variable: str, base_url: str) -> str:
    """The key to send to `base_url`: raises KeyNotAllowed or MissingApiKey."""
    problem = key_route_problem(variable, base_url)
    if problem:
        raise KeyNotAllowed(problem)
    if not variable:
        return NO_KEY
    key = os.environ.get(variable, "").strip()
    if not key:
        raise MissingApiKey(
            f"The environment variable {variable} holding the API key is not set on this "
            "worker; set it and start the judge again."
        )
    return key


def failure_from(error: openai.APIError, secret: str) -> CallFailed:
    if isinstance(error, openai.APITimeoutError):
        return CallFailed("the request timed out", retry=True)
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        return CallFailed(
            redact(f"connection failed: {type(cause).__name__}: {cause}", secret), retry=True
        )
    if not isinstance(error, openai.APIStatusError):
        return CallFailed(redact(f"unreadable response: {error}", secret), retry=True)
    status = error.status_code
    message = redact(f"HTTP {status}: {error.message}", secret)
    delay = retry_after_seconds(error.response.headers)
    if status == 429 or status >= 500 or status in (408, 409):
        if delay is not None and delay > MAX_RETRY_AFTER_SECONDS:
            return CallFailed(f"{message} (asked to wait {delay:.0f}s)", retry=False, status=status)
        return CallFailed(message, retry=True, delay=delay, status=status)
    if status in (401, 403, 404):
        return CallFailed(message, retry=False, fatal=True, status=status)
    return CallFailed(message, retry=False, status=status)


class StopSignal:
    """Set when no further call can succeed (the key was refused, the model is unknown) or the
    consumer stopped; calls not sent yet are then given up."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


class OpenAICompatClient:
    """`/chat/completions` and `/completions` on one endpoint, from many threads.

    One `openai.OpenAI` per request in flight, each with its own connection pool (one shared
    pool serialises every request on its lock at high concurrency), all sharing one TLS context.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        limiter: RateLimiter,
        max_concurrency: int | None = None,
    ) -> None:
        self._settings: dict[str, Any] = {
            "base_url": base_url,
            "api_key": api_key,
            "max_retries": 0,
            "timeout": timeout,
        }
        self._secret = api_key
        self._slots = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        self._idle: queue.SimpleQueue[openai.OpenAI] = queue.SimpleQueue()
        self._clients: list[openai.OpenAI] = []
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._limiter = limiter

    def _client(self) -> openai.OpenAI:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._tls is None:
                # Building the default TLS context takes ~20 ms: one for all the clients.
                self._tls = httpx2.create_ssl_context()
            client = openai.OpenAI(
                **self._settings, http_client=openai.DefaultHttpxClient(verify=self._tls)
            )
            self._clients.append(client)
        return client

    def redact(self, text: str) -> str:
        return redact(text, self._secret)

    def complete(
        self, body: dict[str, Any], *, estimated_tokens: int, chat: bool = True
    ) -> ChatReply:
        """One attempt at one request (`/chat/completions`, or `/completions` when not `chat`);
        raises CallFailed."""
        self._limiter.acquire(estimated_tokens)
        used = 0
        try:
            if self._slots is None:
                reply, latency = self._post(body, chat)
            else:
                with self._slots:
                    reply, latency = self._post(body, chat)
            parsed = self._parse(reply, chat, latency)
            used = parsed.prompt_tokens + parsed.completion_tokens
            return parsed
        except openai.APIError as error:
            raise failure_from(error, self._secret) from None
        except ValueError as error:
            # The client could not parse the body (a proxy's error page, a cut connection).
            raise CallFailed(self.redact(f"malformed response: {error}"), retry=True) from None
        finally:
            self._limiter.settle(estimated_tokens, used)

    def _post(self, body: dict[str, Any], chat: bool) -> tuple[Any, float]:
        client = self._client()
        try:
            started = time.monotonic()
            # The body is sent as built and the reply read as JSON: the typed `create()` and
            # its models cost half of the client's time per request at high concurrency.
            reply = client.post(
                "/chat/completions" if chat else "/completions", body=body, cast_to=dict
            )
            return reply, time.monotonic() - started
        finally:
            self._idle.put(client)

    def _parse(self, reply: Any, chat: bool, latency: float) -> ChatReply:
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not choices or not isinstance(choices[0], dict):
            raise CallFailed("malformed response: the reply has no choices", retry=True)
        choice = choices[0]
        message = choice.get("message") or {}
        if not isinstance(message, dict):  # e.g. a completions-shaped or garbled body
            raise CallFailed(
                "malformed response: the choice's message is not an object", retry=True
            )
        text = message.get("content") if chat else choice.get("text")
        refusal = message.get("refusal") or ""
        if not isinstance(text, str) and not refusal:
            raise CallFailed("malformed response: the choice has no text", retry=True)
        usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
        return ChatReply(
            text=self.redact(text or ""),
            refusal=self.redact(refusal),
            model=reply.get("model") or "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason") or "",
            latency_seconds=latency,
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()


def client_for(
    *,
    base_url: str,
    api_key_env: str,
    model: str,
    timeout: float,
    rpm: int = 0,
    tpm: int = 0,
    max_concurrency: int | None = None,
) -> OpenAICompatClient:
    """A client for one model behind one endpoint, under the request and token budgets that
    every worker using the same endpoint, key variable and model shares; raises MissingApiKey."""
    return OpenAICompatClient(
        base_url=base_url,
        api_key=api_key_for(api_key_env, base_url),
        timeout=timeout,
        max_concurrency=max_concurrency,
        limiter=rate_limiter(
            name=budget_name(base_url=base_url, api_key_env=api_key_env, model=model),
            rpm=rpm,
            tpm=tpm,
        ),
    )


@dataclass
class RetryPolicy:
    """How many requests one call may make, and how long to wait between them."""

    max_attempts: int
    rng: random.Random = field(default_factory=random.Random)
    backoff_base: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def delay(self, failure: CallFailed, attempt: int) -> float:
        if failure.delay is not None:
            # At least what the server asked for, plus a little so that workers told the same
            # Retry-After do not all come back at once.
            return failure.delay * (1 + self.rng.uniform(0, 0.1))
        return backoff_delay(attempt, rng=self.rng, base=self.backoff_base)


@dataclass
class Sent:
    """What `send_with_retries` got: a reply, or the last failure; and the requests it made.
    Neither when the stop signal was set before anything was sent."""

    reply: ChatReply | None = None
    failure: CallFailed | None = None
    attempts: int = 0


def send_with_retries(
    send: Callable[[], ChatReply],
    *,
    policy: RetryPolicy,
    stop: StopSignal | None = None,
    attempts_left: int | None = None,
) -> Sent:
    """Call `send` until it returns a reply, up to the policy's attempts (or `attempts_left`).

    Retries what an API can throw (429 after its Retry-After, 5xx, timeouts, dropped connections,
    unreadable bodies); a failure that no retry can mend returns at once, and a fatal one (bad
    key, unknown model) sets `stop` so that the calls not sent yet are given up.
    """
    budget = policy.max_attempts if attempts_left is None else attempts_left
    sent = Sent()
    while sent.attempts < budget:
        if stop is not None and stop.is_set():
            return sent
        sent.attempts += 1
        try:
            sent.reply, sent.failure = send(), None
            return sent
        except CallFailed as failure:
            sent.failure = failure
            if failure.fatal and stop is not None:
                stop.set(f"an earlier request failed: {failure}")
            if not failure.retry:
                return sent
            if sent.attempts < budget:
                policy.sleep(policy.delay(failure, sent.attempts))
    return sent
