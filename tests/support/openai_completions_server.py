"""A local OpenAI-compatible server for tests and benchmarks, with faults on demand.

It speaks `/v1/chat/completions` and `/v1/completions` (no streaming) and answers with a
deterministic text built from the prompt. Faults are queued (`fail_next`) or tied to a marker
in the prompt (`fail_when`): a 429 with Retry-After, a 500, a slow answer (past the client's
timeout), a malformed body, a body without choices, a 401.

    with OpenAICompletionsServer(latency=0.2) as server:
        client = openai.OpenAI(base_url=server.url, api_key="test")

Run it on its own (a separate process keeps its threads off the client's GIL):
    python -m tests.support.openai_completions_server --latency 0.2
"""

import argparse
import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = {"429", "500", "503", "slow", "malformed", "no_choices", "401"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open many connections at once; the default backlog of 5 would refuse some.
    request_queue_size = 1024


@dataclass
class Fault:
    kind: str
    retry_after: float | None = None
    slow_seconds: float = 5.0


@dataclass(frozen=True)
class Logged:
    at: float
    path: str
    body: dict
    outcome: str


class OpenAICompletionsServer:
    def __init__(self, *, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0):
        self.latency = latency
        self.log: list[Logged] = []
        self._queued: deque[Fault] = deque()
        self._when: dict[str, Fault] = {}
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self._http = _Server((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail_next(
        self, kind: str, *, count: int = 1, retry_after: float | None = None, slow: float = 5.0
    ) -> None:
        """The next `count` requests (any prompt) get this fault."""
        assert kind in FAULTS, kind
        with self._lock:
            self._queued.extend(Fault(kind, retry_after, slow) for _ in range(count))

    def fail_when(self, marker: str, kind: str, *, retry_after: float | None = None) -> None:
        """Every request whose prompt contains `marker` gets this fault."""
        assert kind in FAULTS, kind
        self._when[marker] = Fault(kind, retry_after)

    def outcomes(self, marker: str = "") -> list[str]:
        return [entry.outcome for entry in self.log if marker in json.dumps(entry.body)]

    def start(self) -> "OpenAICompletionsServer":
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> "OpenAICompletionsServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _fault_for(self, prompt: str) -> Fault | None:
        for marker, fault in self._when.items():
            if marker in prompt:
                return fault
        with self._lock:
            return self._queued.popleft() if self._queued else None

    def _record(self, path: str, body: dict, outcome: str) -> None:
        with self._lock:
            self.log.append(Logged(time.monotonic(), path, body, outcome))


def _prompt_of(path: str, body: dict) -> str:
    if path.endswith("/chat/completions"):
        messages = body.get("messages") or [{}]
        return str(messages[-1].get("content", ""))
    return str(body.get("prompt", ""))


def _answer(path: str, body: dict, prompt: str) -> dict:
    words = f"Here is an answer to: {prompt}".split()
    limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or len(words))
    words = words[:limit]
    text = " ".join(words)
    finish = "length" if limit < len(f"Here is an answer to: {prompt}".split()) else "stop"
    usage = {
        "prompt_tokens": len(prompt.split()),
        "completion_tokens": len(words),
        "total_tokens": len(prompt.split()) + len(words),
    }
    common = {
        "id": "cmpl-test",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "usage": usage,
    }
    if path.endswith("/chat/completions"):
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish,
        }
        return {**common, "object": "chat.completion", "choices": [choice]}
    choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
    return {**common, "object": "text_completion", "choices": [choice]}


def _handler_for(server: OpenAICompletionsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold every keep-alive response back by about 40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            body = {"error": {"message": message, "type": "test_fault", "code": str(status)}}
            self._send(status, json.dumps(body).encode(), headers)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            path = self.path.split("?")[0]
            if path not in ("/v1/chat/completions", "/v1/completions"):
                self._error(404, f"no route {path}")
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._error(400, "request body is not JSON")
                return
            prompt = _prompt_of(path, body)
            fault = server._fault_for(prompt)
            with server._lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                if server.latency:
                    time.sleep(server.latency)
                server._record(path, body, fault.kind if fault else "ok")
                self._reply(path, body, prompt, fault)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _reply(self, path: str, body: dict, prompt: str, fault: Fault | None) -> None:
            if fault is None:
                self._send(200, json.dumps(_answer(path, body, prompt)).encode())
            elif fault.kind in ("429", "503"):
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                self._error(int(fault.kind), "slow down", headers)
            elif fault.kind == "500":
                self._error(500, "the server had an error")
            elif fault.kind == "401":
                self._error(401, "Incorrect API key provided")
            elif fault.kind == "slow":
                time.sleep(fault.slow_seconds)
                self._send(200, json.dumps(_answer(path, body, prompt)).encode())
            elif fault.kind == "malformed":
                self._send(200, b'{"id": "cmpl-test", "choices": [{"mess')
            elif fault.kind == "no_choices":
                self._send(
                    200, json.dumps({"id": "cmpl-test", "object": "chat.completion"}).encode()
                )

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    args = parser.parse_args()
    server = OpenAICompletionsServer(latency=args.latency, port=args.port)
    print(server.url, flush=True)
    server._http.serve_forever()


if __name__ == "__main__":
    main()
