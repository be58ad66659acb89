"""The judge section of a round: progress, failures, cost, starting a judge, retrying; no key."""

import io
import logging

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inference.judge import selectors
from inference.judge.services import judge_run_attach
from inference.judge.worker import judge_run_execute
from inference.models import Judge, JudgeCall, JudgeRun
from tests.factories import make_project, make_round, make_user
from tests.support.judging import (
    API_KEY,
    make_judge,
    prefers_candidate,
    question_number,
    run_judge,
)
from tests.support.openai_server import Reply, garbage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("judge_api_key")]


@pytest.fixture
def researcher(client):
    user = make_user()
    client.force_login(user)
    return make_project("lab", user)


def judges_page(client, round_, **headers) -> str:
    response = client.get(reverse("judge-round", args=[round_.pk]), headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def test_the_round_page_links_to_its_judges(client, researcher):
    round_ = make_round(project=researcher)
    html = client.get(reverse("round-detail", args=[round_.pk])).content.decode()
    assert f'href="{reverse("judge-round", args=[round_.pk])}"' in html


def test_it_shows_progress_failures_tokens_and_cost(client, researcher, server):
    round_ = make_round(prompts=3, project=researcher)

    def responder(request):
        return garbage() if question_number(request) == 0 else prefers_candidate(request)

    server.responder = responder
    run = run_judge(round_, make_judge(round_, server))
    html = judges_page(client, round_)
    assert "4 / 6</span>" in html
    assert "<dt>Failed</dt><dd>2</dd>" in html
    calls = JudgeCall.objects.filter(run=run)
    tokens = sum(c.prompt_tokens + c.completion_tokens for c in calls)
    assert f"<dt>Tokens paid for</dt><dd>{tokens} (" in html
    assert "Estimated cost</dt><dd>$0." in html
    assert "Verdicts recorded</dt><dd>2: candidate 2" in html
    assert "Position consistency</dt><dd>100%" in html
    assert "no verdict in the reply" in html and "lorem ipsum" in html
    assert "Retry failed (2)" in html
    partial = judges_page(client, round_, HX_Request="true")
    assert "<html" not in partial and "4 / 6</span>" in partial


def test_starting_a_judge_from_the_page_creates_it_and_queues_its_run(client, researcher):
    round_ = make_round(prompts=2, project=researcher)
    form = {"judge": "", "name": "gpt-4", "model": "gpt-4", "base_url": "", "mode": "pairwise"}
    form["api_key_env"] = "OPENAI_API_KEY"
    response = client.post(reverse("judge-round", args=[round_.pk]), form)
    assert response.status_code == 302
    judge = Judge.objects.get(project=researcher, name="gpt-4")
    assert judge.base_url == "https://api.openai.com/v1" and judge.both_orders
    assert JudgeRun.objects.get(round=round_, judge=judge).status == JudgeRun.Status.QUEUED
    assert "gpt-4" in judges_page(client, round_)


def test_the_page_starts_a_judge_that_sends_no_key_to_a_keyless_server(client, researcher):
    round_ = make_round(prompts=2, project=researcher)
    assert "none (server needs no key)" in judges_page(client, round_)
    form = {"judge": "", "name": "local", "model": "llama", "mode": "pairwise"}
    form |= {"base_url": "http://10.0.0.5:8000/v1", "api_key": "none"}
    # The variable field keeps its initial value: choosing no key overrides it.
    form["api_key_env"] = "OPENAI_API_KEY"
    response = client.post(reverse("judge-round", args=[round_.pk]), form)
    assert response.status_code == 302
    judge = Judge.objects.get(project=researcher, name="local")
    assert (judge.api_key_env, judge.base_url) == ("", "http://10.0.0.5:8000/v1")
    assert JudgeRun.objects.get(round=round_, judge=judge).status == JudgeRun.Status.QUEUED

    form["api_key"] = "variable"
    refused = client.post(reverse("judge-round", args=[round_.pk]), form)
    assert refused.status_code == 200
    assert (
        "already exists with other settings (api_key_env=&#x27;&#x27;)" in refused.content.decode()
    )


def test_the_page_refuses_a_pasted_key_in_place_of_a_variable_name(client, researcher):
    round_ = make_round(prompts=2, project=researcher)
    form = {"judge": "", "name": "leaky", "mode": "pairwise", "api_key_env": API_KEY}
    response = client.post(reverse("judge-round", args=[round_.pk]), form)
    assert response.status_code == 200
    assert not Judge.objects.exists()
    assert API_KEY not in response.content.decode()


def test_retry_failed_puts_the_failed_calls_back_in_line(client, researcher, server):
    round_ = make_round(prompts=2, project=researcher)
    server.responder = lambda request: garbage()
    run = run_judge(round_, make_judge(round_, server))
    assert run.calls.filter(status=JudgeCall.Status.FAILED).count() == 4
    response = client.post(reverse("judge-run-retry", args=[run.pk]))
    assert response.status_code == 302
    assert run.calls.filter(status=JudgeCall.Status.PENDING).count() == 4
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.QUEUED


def test_other_projects_judges_are_hidden(client, researcher, server):
    round_ = make_round(prompts=1, project=make_project("other team"))
    run = run_judge(round_, make_judge(round_, server))
    assert client.get(reverse("judge-round", args=[round_.pk])).status_code == 404
    assert client.post(reverse("judge-run-retry", args=[run.pk])).status_code == 404


def test_the_api_key_is_in_no_database_row_log_line_or_page(client, researcher, server, caplog):
    caplog.set_level(logging.DEBUG)
    round_ = make_round(prompts=3, project=researcher)

    def responder(request):
        if question_number(request) == 0:
            # Some endpoints echo the key back in their error message.
            return Reply(status=400, error_message=f"Bad request for key {API_KEY}")
        if question_number(request) == 1:
            return Reply(f"I see your key {API_KEY}. Verdict: A")
        return prefers_candidate(request)

    server.responder = responder
    run = run_judge(round_, make_judge(round_, server))
    assert server.requests[0].authorization == f"Bearer {API_KEY}"
    assert run.calls.filter(status=JudgeCall.Status.FAILED).count() == 2
    assert "[redacted]" in run.calls.filter(status=JudgeCall.Status.FAILED).first().error

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert API_KEY not in dump.getvalue() and API_KEY[:20] not in dump.getvalue()
    assert API_KEY not in caplog.text
    pages = judges_page(client, round_) + client.get(reverse("admin:index")).content.decode()
    assert API_KEY not in pages


def queries_for(client, url, **headers) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, headers=headers).status_code == 200
    return len(captured)


def test_the_page_polls_only_while_a_judge_run_is_queued_or_running(client, researcher, server):
    round_ = make_round(prompts=2, project=researcher)
    judge = make_judge(round_, server)
    run = judge_run_attach(round_=round_, judge=judge)
    assert 'hx-trigger="every 3s"' in judges_page(client, round_)
    judge_run_execute(run_id=run.pk)
    page, partial = judges_page(client, round_), judges_page(client, round_, HX_Request="true")
    assert 'id="judge-runs"' in page and 'id="judge-runs"' in partial
    assert "hx-trigger" not in page and "hx-trigger" not in partial


def test_judge_progress_takes_the_same_queries_for_one_run_or_many(client, researcher, server):
    round_ = make_round(prompts=3, baselines=("baseline", "other"), project=researcher)
    url = reverse("judge-round", args=[round_.pk])
    run_judge(round_, make_judge(round_, server, name="first"))
    one_run = queries_for(client, url, HX_Request="true")
    for name in ("second", "third"):
        run_judge(round_, make_judge(round_, server, name=name))
    assert queries_for(client, url, HX_Request="true") == one_run
    progress = selectors.round_judge_progress(round_)
    assert [(p.run.judge.name, p.done, p.needed, p.recorded) for p in progress] == [
        (name, 12, 12, 6) for name in ("first", "second", "third")
    ]
    assert all(p.consistency_percent == 100 for p in progress)


def test_an_absolute_judge_needs_each_response_once_beside_a_pairwise_one(
    client, researcher, server
):
    round_ = make_round(prompts=3, baselines=("baseline", "other"), project=researcher)

    def responder(request):
        if "Answer: Answer " in request.prompt:
            return Reply("Clear and correct.\nScore: 5")
        return prefers_candidate(request)

    server.responder = responder
    run_judge(round_, make_judge(round_, server, name="pairs"))
    run_judge(round_, make_judge(round_, server, name="scores", mode="helpfulness_1_6"))
    by_name = {p.run.judge.name: p for p in selectors.round_judge_progress(round_)}
    # Six items judged in both orders; nine responses (three models) scored once each.
    assert (by_name["pairs"].done, by_name["pairs"].needed) == (12, 12)
    assert (by_name["scores"].done, by_name["scores"].needed) == (9, 9)
    assert by_name["scores"].choices == {} and by_name["pairs"].choices == {"candidate": 6}
    assert selectors.run_progress(by_name["scores"].run) == by_name["scores"]
    assert "<td>other</td><td>5: 3</td>" in judges_page(client, round_)
