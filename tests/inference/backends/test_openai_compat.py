"""The OpenAI-compatible backend, with the real openai client, against a real local server."""

import time

import pytest

from inference.backends.base import (
    BackendConfigError,
    GenerationRequest,
    SamplingSettings,
    backend_load,
    messages_for,
)
from tests.support.openai_completions_server import OpenAICompletionsServer

SAMPLING = SamplingSettings.from_overrides({"max_tokens": 64})


@pytest.fixture
def server():
    with OpenAICompletionsServer() as running:
        yield running


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", "sk-test")


def backend_for(server, **options):
    config = {
        "model": "test-model",
        "base_url": server.url,
        "api_key_env": "TEST_API_KEY",
        "backoff_seconds": 0.01,
        "timeout": 2,
        **options,
    }
    return backend_load("openai", config)


def requests_for(*texts):
    return [
        GenerationRequest(key=i, messages=messages_for(text), seed=100 + i)
        for i, text in enumerate(texts)
    ]


def generate(backend, *texts):
    return {result.key: result for result in backend.generate(requests_for(*texts), SAMPLING)}


def test_it_generates_through_the_chat_endpoint(server):
    results = generate(backend_for(server), "What is rain?", "Why is the sky blue?")
    assert results[0].text == "Here is an answer to: What is rain?"
    assert results[1].completion_tokens == 10 and results[1].attempts == 1
    [first] = [e for e in server.log if e.body["messages"][0]["content"] == "What is rain?"]
    assert first.path == "/v1/chat/completions"
    assert first.body["messages"] == [{"role": "user", "content": "What is rain?"}]
    assert (first.body["temperature"], first.body["top_p"], first.body["max_tokens"]) == (
        0.7,
        0.9,
        64,
    )
    assert first.body["seed"] == 100
    assert "repetition_penalty" not in first.body


def test_it_generates_through_the_completions_endpoint_with_a_prompt_format(server):
    backend = backend_for(
        server,
        endpoint="completions",
        prompt_format="### Question\n{prompt}\n### Answer\n",
        end_of_turn="<EOT>",
        send_repetition_penalty=True,
    )
    [result] = generate(backend, "Name a fruit.").values()
    assert result.ok and "Name a fruit." in result.text
    [sent] = server.log
    assert sent.path == "/v1/completions"
    assert sent.body["prompt"] == "### Question\nName a fruit.\n### Answer\n"
    assert sent.body["stop"] == ["<EOT>"]
    assert sent.body["repetition_penalty"] == 1.2


def test_it_waits_as_long_as_retry_after_asks_on_429(server):
    server.fail_next("429", count=2, retry_after=0.5)
    started = time.monotonic()
    [result] = generate(backend_for(server), "hello").values()
    assert result.ok and result.attempts == 3
    assert server.outcomes() == ["429", "429", "ok"]
    retry_times = [entry.at for entry in server.log]
    assert retry_times[1] - retry_times[0] >= 0.5 and retry_times[2] - retry_times[1] >= 0.5
    assert time.monotonic() - started >= 1.0


@pytest.mark.parametrize("fault", ["500", "503", "malformed", "no_choices", "slow"])
def test_it_retries_server_errors_timeouts_and_malformed_bodies(server, fault):
    server.fail_next(fault, slow=3)
    backend = backend_for(server, timeout=0.5)
    [result] = generate(backend, "hello").values()
    assert result.ok, result.error
    assert result.attempts == 2
    assert result.text == "Here is an answer to: hello"


def test_it_records_a_response_that_keeps_failing_as_failed_with_its_error(server):
    server.fail_when("cursed", "500")
    results = generate(backend_for(server, max_attempts=3), "fine", "a cursed prompt")
    assert results[0].ok
    failed = results[1]
    assert not failed.ok and failed.text is None
    assert "HTTP 500" in failed.error and "gave up after 3 attempts" in failed.error
    assert server.outcomes("cursed") == ["500", "500", "500"]


def test_it_records_malformed_bodies_that_persist_as_failed(server):
    server.fail_when("broken", "malformed")
    [result] = generate(backend_for(server, max_attempts=2), "broken").values()
    assert not result.ok and "malformed response" in result.error


def test_it_stops_sending_once_the_endpoint_refuses_the_key(server):
    server.fail_when("", "401")
    backend = backend_for(server, concurrency=1)
    results = generate(backend, *[f"prompt {i}" for i in range(20)])
    assert all(not r.ok for r in results.values())
    assert "HTTP 401" in results[0].error
    assert len(server.log) == 1
    assert "not sent: an earlier request failed" in results[19].error


def test_it_runs_requests_concurrently_up_to_the_limit(server):
    server.latency = 0.2
    backend = backend_for(server, concurrency=8)
    started = time.monotonic()
    results = generate(backend, *[f"prompt {i}" for i in range(32)])
    elapsed = time.monotonic() - started
    assert len(results) == 32 and all(r.ok for r in results.values())
    assert server.max_in_flight == 8
    assert elapsed < 32 * 0.2 / 2


def test_it_says_which_variable_to_set_when_the_key_is_missing(server, monkeypatch):
    monkeypatch.delenv("TEST_API_KEY")
    with pytest.raises(BackendConfigError) as error:
        backend_for(server)
    assert "The environment variable TEST_API_KEY is not set on this worker" in str(error.value)
