"""The judges API: progress per judge, starting a judge, retrying failures; scoped to projects."""

import pytest
from rest_framework.test import APIClient

from inference.models import Judge, JudgeCall, JudgeRun
from tests.factories import make_project, make_round, make_user
from tests.support.judging import API_KEY, make_judge, run_judge
from tests.support.openai_server import ScriptedOpenAI, garbage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("judge_api_key")]


@pytest.fixture
def api():
    client = APIClient()
    user = make_user()
    client.force_authenticate(user)
    client.project = make_project("lab", user)
    return client


def test_it_reports_each_judges_progress_on_the_round(api):
    round_ = make_round(prompts=2, project=api.project)
    with ScriptedOpenAI(responder=lambda request: garbage()) as server:
        run_judge(round_, make_judge(round_, server))
    [data] = api.get(f"/api/rounds/{round_.pk}/judges/").json()
    assert data["judge"] == "gpt-4" and data["status"] == "done"
    assert (data["needed"], data["done"], data["failed"]) == (4, 0, 4)
    assert data["position_consistency"] is None and API_KEY not in str(data)


def test_it_starts_a_judge_creating_it_with_the_settings_given(api):
    round_ = make_round(prompts=2, project=api.project)
    body = {"judge": "local", "model": "llama-3-70b", "base_url": "http://gpu:8000/v1"}
    # The operator's OpenAI key (the default variable) never goes to another server.
    refused = api.post(f"/api/rounds/{round_.pk}/judges/", body, format="json")
    assert refused.status_code == 400
    assert "OPENAI_API_KEY may only be sent to https://api.openai.com/" in refused.json()["detail"]
    assert not Judge.objects.filter(name="local").exists()
    body["api_key_env"] = "TEST_API_KEY"
    response = api.post(f"/api/rounds/{round_.pk}/judges/", body, format="json")
    assert response.status_code == 202
    judge = Judge.objects.get(name="local")
    assert (judge.model, judge.base_url, judge.api_key_env) == (
        "llama-3-70b",
        "http://gpu:8000/v1",
        "TEST_API_KEY",
    )
    assert JudgeRun.objects.get(judge=judge).status == JudgeRun.Status.QUEUED
    assert response.json()[0]["needed"] == 4

    conflicting = {"judge": "local", "model": "gpt-4"}
    response = api.post(f"/api/rounds/{round_.pk}/judges/", conflicting, format="json")
    assert response.status_code == 400 and "already exists" in response.json()["detail"]


def test_it_refuses_a_key_given_where_the_variable_name_goes(api):
    round_ = make_round(prompts=1, project=api.project)
    body = {"judge": "leaky", "api_key_env": API_KEY}
    response = api.post(f"/api/rounds/{round_.pk}/judges/", body, format="json")
    assert response.status_code == 400 and not Judge.objects.exists()
    assert API_KEY not in response.content.decode()


def test_it_retries_failed_calls(api):
    round_ = make_round(prompts=1, project=api.project)
    with ScriptedOpenAI(responder=lambda request: garbage()) as server:
        run = run_judge(round_, make_judge(round_, server))
    response = api.post(f"/api/judge-runs/{run.pk}/retry/")
    assert response.status_code == 202
    assert run.calls.filter(status=JudgeCall.Status.PENDING).count() == 2


def test_other_teams_rounds_and_anonymous_callers_are_refused(api):
    round_ = make_round(prompts=1, project=make_project("other team"))
    assert api.get(f"/api/rounds/{round_.pk}/judges/").status_code == 404
    body = {"judge": "gpt-4"}
    assert api.post(f"/api/rounds/{round_.pk}/judges/", body, format="json").status_code == 404
    assert APIClient().get(f"/api/rounds/{round_.pk}/judges/").status_code in (401, 403)
