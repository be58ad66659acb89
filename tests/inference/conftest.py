"""Fixtures of the machine side's tests: the judge's API key variable set and a scripted OpenAI
server; for training and experiments, a tiny base model, a helpfulness judge and a lab."""

import pytest

from inference.judge.services import judge_create
from inference.training.services import training_set_upload
from tests.factories import make_project, make_prompt_set, make_user
from tests.support.judging import API_KEY, KEY_ENV, prefers_candidate
from tests.support.openai_server import Reply, ScriptedOpenAI
from tests.support.tiny_model import build_tiny_model
from tests.support.training import jsonl


@pytest.fixture
def judge_api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)


@pytest.fixture
def server():
    """A scripted OpenAI-compatible server whose judge prefers the candidate."""
    with ScriptedOpenAI(responder=prefers_candidate) as running:
        yield running


@pytest.fixture(autouse=True)
def _checkpoints_in_tmp(settings, tmp_path):
    settings.TRAINING_DIR = tmp_path / "training"


@pytest.fixture(scope="session")
def base_model(tmp_path_factory):
    """A tiny LLaMA whose tokenizer has no end-of-turn token yet, as a base model's has not."""
    pytest.importorskip("transformers", reason="the train extra (transformers) is not installed")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-base"), layers=4, end_of_turn=False)


@pytest.fixture
def judge_server():
    with ScriptedOpenAI(responder=lambda request: Reply("Fine.\n\nScore: 3")) as server:
        yield server


@pytest.fixture
def user(db):
    return make_user()


@pytest.fixture
def lab(db, user, judge_server, monkeypatch):
    """A project with a training set, a two-prompt dev set and a helpfulness judge."""
    monkeypatch.setenv(KEY_ENV, API_KEY)
    project = make_project("lab", user)
    judge = judge_create(
        project=project,
        name="chatgpt",
        mode="helpfulness_1_6",
        base_url=judge_server.base_url,
        api_key_env=KEY_ENV,
        model="gpt-3.5-turbo",
        timeout_seconds=5.0,
        max_concurrency=1,
        rpm_limit=0,
        tpm_limit=0,
    )
    return {
        "project": project,
        "judge": judge,
        "dev_set": make_prompt_set(project, 2, name="dev"),
        "training_set": training_set_upload(project=project, name="curated", raw=jsonl(4)),
    }
