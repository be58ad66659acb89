"""A judge run queued by the page and executed by a real Celery worker on the `api` queue."""

import pytest
from django.urls import reverse

from annotation.models import Annotation
from inference.models import Judge, JudgeCall, JudgeRun
from tests.factories import make_project, make_round, make_user
from tests.support.judging import API_KEY, KEY_ENV, prefers_candidate
from tests.support.openai_server import ScriptedOpenAI
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

FINISHED = (JudgeRun.Status.DONE, JudgeRun.Status.FAILED)


def test_a_judge_started_from_the_page_runs_on_a_celery_worker(client, monkeypatch, celery_worker):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    user = make_user()
    round_ = make_round(prompts=5, project=make_project("lab", user))
    client.force_login(user)
    with ScriptedOpenAI(responder=prefers_candidate) as server:
        form = {
            "judge": "",
            "name": "gpt-4",
            "model": "gpt-4",
            "base_url": server.base_url,
            "api_key_env": KEY_ENV,
            "mode": "pairwise",
        }
        assert client.post(reverse("judge-round", args=[round_.pk]), form).status_code == 302
        run = wait_until(JudgeRun.objects.get(), lambda run: run.status in FINISHED, seconds=30)
        assert run.status == JudgeRun.Status.DONE, run.message
        assert len(server.requests) == 10

        # Redelivered or started again: the worker finds nothing left to do.
        client.post(reverse("judge-round", args=[round_.pk]), {**form, "judge": run.judge_id})
        run = wait_until(run, lambda run: run.status in FINISHED, seconds=30)
        assert len(server.requests) == 10

    judge = Judge.objects.get()
    assert JudgeCall.objects.filter(run=run, status=JudgeCall.Status.DONE).count() == 10
    assert Annotation.objects.filter(annotator=judge.annotator, choice="candidate").count() == 5
    page = client.get(reverse("judge-round", args=[round_.pk])).content.decode()
    assert "10 / 10</span>" in page and API_KEY not in page
