"""No secret leaves a worker: a config may name only the key variables the operator allows
(API_KEYS), and each key goes only to the base URLs allowed for it."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from annotation.models import LanguageModel
from evalplatform.env import env_key_routes
from inference.clients.openai_compat import NO_KEY, KeyNotAllowed, api_key_for, key_route_problem
from inference.models import Judge, JudgeRun
from tests.factories import make_project, make_round, make_user
from tests.support.judging import make_judge, run_judge

pytestmark = pytest.mark.django_db


def test_the_setting_reads_variables_with_their_urls_and_names_a_bad_entry(monkeypatch):
    monkeypatch.setenv("API_KEYS", "OPENAI_API_KEY=https://api.openai.com/; LAB_KEY_*=*")
    assert env_key_routes("API_KEYS", "") == {
        "OPENAI_API_KEY": ("https://api.openai.com/",),
        "LAB_KEY_*": ("*",),
    }
    monkeypatch.setenv("API_KEYS", "OPENAI_API_KEY")
    with pytest.raises(ImproperlyConfigured, match="'OPENAI_API_KEY' is not VARIABLE=URL_PREFIX"):
        env_key_routes("API_KEYS", "")


def test_only_allowed_variables_go_only_where_they_are_allowed(monkeypatch, settings):
    settings.API_KEYS = {"OPENAI_API_KEY": ("https://api.openai.com/",), "LAB_KEY_*": ("*",)}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator")
    monkeypatch.setenv("LAB_KEY_GPU", "sk-lab")
    assert api_key_for("OPENAI_API_KEY", "https://api.openai.com/v1") == "sk-operator"
    assert api_key_for("LAB_KEY_GPU", "http://gpu-host:8000/v1") == "sk-lab"
    assert api_key_for("", "http://gpu-host:8000/v1") == NO_KEY  # A server without a key.
    with pytest.raises(KeyNotAllowed, match="not one the operator allows"):
        api_key_for("DATABASE_URL", "https://api.openai.com/v1")
    with pytest.raises(KeyNotAllowed, match=r"may only be sent to https://api\.openai\.com/"):
        api_key_for("OPENAI_API_KEY", "https://collector.example.org/v1")
    assert key_route_problem("OPENAI_API_KEY", "https://api.openai.com.evil.org/v1") != ""


def test_a_model_naming_another_secret_is_refused_at_registration(client):
    user = make_user()
    project = make_project("lab", user)
    client.force_login(user)
    for config in (
        {
            "model": "m",
            "base_url": "https://collector.example.org/v1",
            "api_key_env": "DATABASE_URL",
        },
        {"model": "m", "base_url": "https://collector.example.org/v1"},  # the default key
    ):
        response = client.post(
            "/api/models/",
            {"project": project.pk, "name": "leak", "backend": "openai", "config": config},
            content_type="application/json",
        )
        assert response.status_code == 400
    assert not LanguageModel.objects.filter(name="leak").exists()


def test_a_judge_stored_before_the_rule_sends_nothing_to_its_server(server, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/prod")
    round_ = make_round(prompts=1)
    judge = make_judge(round_, server)
    Judge.objects.filter(pk=judge.pk).update(api_key_env="DATABASE_URL")
    judge.refresh_from_db()
    run = run_judge(round_, judge)
    assert run.status == JudgeRun.Status.FAILED
    assert "DATABASE_URL is not one the operator allows" in run.message
    assert server.requests == []
