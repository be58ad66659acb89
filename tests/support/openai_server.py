"""A scripted OpenAI chat-completions server on 127.0.0.1, for the judge's tests and benchmark.

Each request gets the next scripted `Reply` (`script(...)`), or else what the `responder`
returns for it: a verdict, a verdict buried in prose, a refusal, garbage, a 429 with
Retry-After, a 500, a slow reply or a dropped connection. Every request is recorded with its
body and the time it arrived.

    with ScriptedOpenAI(responder=lambda request: verdict("A")) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
"""

import contextlib
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds before answering; None: the server's latency.
    delay: float | None = None
    drop: bool = False
    refusal: str | None = None
    model: str = "gpt-4-0613"
    finish_reason: str = "stop"
    error_message: str = ""
    raw_body: bytes | None = None


def verdict(letter: str, prose: str = "Both answers address the question.") -> Reply:
    word = {"A": "A", "B": "B", "N": "Neither"}[letter]
    return Reply(f"{prose}\n\nVerdict: {word}")


def buried(letter: str) -> Reply:
    """A verdict inside prose, without the requested last line."""
    sentence = {
        "A": "Answer A is significantly better",
        "B": "Answer B is significantly better",
        "N": "Neither is significantly better",
    }[letter]
    return Reply(
        "Let me weigh both. The first is concise; the second is thorough but wanders. "
        f"Having thought about what the asker needs, I would say {sentence}, mostly for "
        "its accuracy."
    )


def json_verdict(letter: str) -> Reply:
    word = {"A": "A", "B": "B", "N": "Neither"}[letter]
    return Reply(json.dumps({"explanation": "Compared both.", "verdict": word}))


def refusal(text: str = "I'm sorry, but I can't help with comparing these answers.") -> Reply:
    return Reply(text)


def api_refusal(text: str = "I can't assist with that.") -> Reply:
    return Reply("", refusal=text)


def garbage() -> Reply:
    return Reply("}}{{ lorem ipsum 0x3f 0x3f ### ~~~")


def rate_limited(retry_after: float = 1.0) -> Reply:
    return Reply(
        status=429,
        headers={"Retry-After": f"{retry_after:g}"},
        error_message="Rate limit reached for requests",
        delay=0.0,
    )


def server_error(status: int = 500) -> Reply:
    return Reply(status=status, error_message="The server had an error processing your request.")


def slow(seconds: float, then: Reply | None = None) -> Reply:
    return replace(then or verdict("A"), delay=seconds)


def dropped() -> Reply:
    return Reply(drop=True, delay=0.0)


@dataclass(frozen=True)
class Recorded:
    number: int
    at: float
    body: dict
    authorization: str

    @property
    def prompt(self) -> str:
        return "\n\n".join(m.get("content", "") for m in self.body.get("messages", []))

    @property
    def answers(self) -> tuple[str, str]:
        """Answer A and Answer B of a pairwise prompt."""
        match = re.search(r"\nAnswer A: (.*?)\n\nAnswer B: (.*?)\n\nComparing", self.prompt, re.S)
        return (match.group(1), match.group(2)) if match else ("", "")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many connections open at once under load; the default backlog of 5 would refuse some.
    request_queue_size = 1024


class ScriptedOpenAI:
    def __init__(
        self,
        responder: Callable[[Recorded], Reply] | None = None,
        *,
        latency: float = 0.0,
        record: bool = True,
    ) -> None:
        self.responder = responder or (lambda request: verdict("A"))
        self.latency = latency
        self.record = record
        self.requests: list[Recorded] = []
        # Status codes in the order answered (0: connection dropped), and with each request.
        self.statuses: list[int] = []
        self.answered: list[tuple[Recorded, int]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._count = 0
        self._http = _HTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        """The next requests get these replies, in order; then the responder answers."""
        with self._lock:
            self._script.extend(replies)

    def __enter__(self) -> "ScriptedOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    def _next(self, body: dict, authorization: str) -> tuple[Recorded, Reply]:
        with self._lock:
            self._count += 1
            request = Recorded(self._count, time.monotonic(), body, authorization)
            if self.record:
                self.requests.append(request)
            scripted = self._script.popleft() if self._script else None
        return request, scripted or self.responder(request)

    def _note(self, request: Recorded, status: int) -> None:
        with self._lock:
            self.statuses.append(status)
            if self.record:
                self.answered.append((request, status))


def _completion(body: dict, reply: Reply) -> dict:
    prompt_tokens = sum(len(m.get("content", "")) for m in body.get("messages", [])) // 4
    completion_tokens = max(1, len(reply.content) // 4)
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": reply.content if reply.refusal is None else None,
                    "refusal": reply.refusal,
                },
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _handler(server: ScriptedOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle's algorithm the body would wait
        # for the client's delayed ACK of the headers, adding 40 ms to every reply.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?")[0] != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            body = json.loads(raw or b"{}")
            request, reply = server._next(body, self.headers.get("Authorization", ""))
            with server._lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._answer(request, reply)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _answer(self, request: Recorded, reply: Reply) -> None:
            time.sleep(server.latency if reply.delay is None else reply.delay)
            if reply.drop:
                server._note(request, 0)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            server._note(request, reply.status)
            if reply.raw_body is not None:
                self._send(reply.status, reply.raw_body, reply.headers)
            elif reply.status != 200:
                error = {"message": reply.error_message, "type": "scripted", "code": None}
                self._send(reply.status, {"error": error}, reply.headers)
            else:
                self._send(200, _completion(request.body, reply), reply.headers)

        def _send(self, status: int, payload, headers: dict[str, str] | None = None) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            with contextlib.suppress(OSError):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

    return Handler
