"""Chat completions from an OpenAI-compatible endpoint (OpenAI, `vllm serve`, ...).

The official `openai` client makes each request with its own retries turned off: the caller
owns the retry loop (`backoff_delay`, `CallFailed.delay`), so that every attempt is counted and
every wait honours the budgets shared between workers. Requests in flight are capped by a
semaphore, so calls sleeping between attempts do not hold a slot.
"""

import email.utils
import queue
import random
import re
import ssl
import threading
import time
from dataclasses import dataclass

import httpx2
import openai
from openai.types.chat import ChatCompletion

from inference.ratelimit import RateLimiter

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


def api_key_from_env(variable: str) -> str:
    import os

    key = os.environ.get(variable, "").strip()
    if not key:
        raise MissingApiKey(
            f"The environment variable {variable} holding the API key is not set on this "
            "worker; set it and start the judge again."
        )
    return key


def _failure(error: openai.APIError, secret: str) -> CallFailed:
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


class ChatEndpoint:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        max_concurrency: int,
        limiter: RateLimiter,
    ) -> None:
        self._settings = {
            "base_url": base_url,
            "api_key": api_key,
            "max_retries": 0,
            "timeout": timeout,
        }
        self._secret = api_key
        self._slots = threading.BoundedSemaphore(max_concurrency)
        # One client per request in flight, each with its own connection pool: one shared
        # pool serialises every request on its lock at high concurrency.
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

    def complete(self, body: dict, *, estimated_tokens: int) -> ChatReply:
        """One attempt at one request; raises CallFailed."""
        self._limiter.acquire(estimated_tokens)
        used = 0
        try:
            with self._slots:
                client = self._client()
                try:
                    started = time.monotonic()
                    # The body is sent as built: the typed `create()` walks it again against
                    # the request types, a third of the client's time per request.
                    completion = client.post("/chat/completions", body=body, cast_to=ChatCompletion)
                    latency = time.monotonic() - started
                finally:
                    self._idle.put(client)
        except openai.APIError as error:
            raise _failure(error, self._secret) from None
        except ValueError as error:
            # The client could not parse the body (a proxy's error page, a cut connection).
            raise CallFailed(self.redact(f"malformed response: {error}"), retry=True) from None
        else:
            if not getattr(completion, "choices", None):
                raise CallFailed("the reply has no choices", retry=True)
            usage = completion.usage
            prompt_tokens = usage.prompt_tokens if usage else 0
            completion_tokens = usage.completion_tokens if usage else 0
            used = prompt_tokens + completion_tokens
            choice = completion.choices[0]
            return ChatReply(
                text=self.redact(choice.message.content or ""),
                refusal=self.redact(getattr(choice.message, "refusal", None) or ""),
                model=completion.model or "",
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason=choice.finish_reason or "",
                latency_seconds=latency,
            )
        finally:
            self._limiter.settle(estimated_tokens, used)

    def close(self) -> None:
        for client in self._clients:
            client.close()
