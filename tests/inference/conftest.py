"""Fixtures of the judge tests: the API key variable set, and a scripted OpenAI server."""

import pytest

from tests.support.judging import API_KEY, KEY_ENV, prefers_candidate
from tests.support.openai_server import ScriptedOpenAI


@pytest.fixture
def judge_api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)


@pytest.fixture
def server():
    """A scripted OpenAI-compatible server whose judge prefers the candidate."""
    with ScriptedOpenAI(responder=prefers_candidate) as running:
        yield running
