"""`manage.py judge_round`: creates the judge, runs it here with --wait, or queues it."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotation.models import Annotation
from inference.models import Judge, JudgeRun
from tests.factories import make_round
from tests.support.judging import API_KEY, KEY_ENV

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("judge_api_key")]


def judge_round(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("judge_round", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_creates_the_judge_and_judges_the_round_with_wait(server):
    round_ = make_round(prompts=4)
    out, err = judge_round(
        str(round_.pk), "--judge", "gpt-4", "--base-url", server.base_url,
        "--api-key-env", KEY_ENV, "--wait",
    )  # fmt: skip
    judge = Judge.objects.get(name="gpt-4")
    assert (judge.model, judge.base_url, judge.api_key_env) == ("gpt-4", server.base_url, KEY_ENV)
    assert "Created judge 'gpt-4'" in out
    assert "done, 4 verdicts recorded, position consistency 100%" in out
    assert "8/8 judged, 0 failed, 0 from cache" in err
    assert Annotation.objects.filter(annotator=judge.annotator, choice="candidate").count() == 4
    assert API_KEY not in out + err

    # Again: nothing left to do, nothing sent.
    out, _ = judge_round(str(round_.pk), "--judge", "gpt-4", "--wait")
    assert len(server.requests) == 8 and "done" in out


def test_it_refuses_other_settings_for_an_existing_judge(server):
    round_ = make_round(prompts=1)
    judge_round(
        str(round_.pk), "--judge", "gpt-4", "--base-url", server.base_url, "--api-key-env", KEY_ENV
    )
    with pytest.raises(CommandError, match="already exists with other settings"):
        judge_round(str(round_.pk), "--judge", "gpt-4", "--model", "gpt-4o")


def test_it_says_which_variable_is_missing(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    round_ = make_round(prompts=1)
    with pytest.raises(CommandError, match=f"environment variable {KEY_ENV} holding the API key"):
        judge_round(
            str(round_.pk), "--judge", "j", "--base-url", server.base_url,
            "--api-key-env", KEY_ENV, "--wait",
        )  # fmt: skip
    assert server.requests == []


def test_without_wait_it_queues_the_run_for_a_worker(server):
    round_ = make_round(prompts=1)
    out, _ = judge_round(
        str(round_.pk), "--judge", "gpt-4", "--base-url", server.base_url, "--api-key-env", KEY_ENV
    )
    run = JudgeRun.objects.get()
    assert run.status == JudgeRun.Status.QUEUED
    assert f"(run {run.pk})" in out and f"/inference/rounds/{round_.pk}/judges/" in out
    assert server.requests == []


def test_it_says_a_run_a_live_worker_executes_is_running_not_queued(server):
    round_ = make_round(prompts=1)
    args = (str(round_.pk), "--judge", "gpt-4", "--base-url", server.base_url)
    judge_round(*args, "--api-key-env", KEY_ENV)
    JudgeRun.objects.update(
        status=JudgeRun.Status.RUNNING, worker="cpu-1:7:abc", heartbeat_at=timezone.now()
    )
    out, _ = judge_round(*args)
    assert "already running on cpu-1:7:abc" in out and "queued" not in out
    assert JudgeRun.objects.get().worker == "cpu-1:7:abc"


def test_it_names_a_round_that_does_not_exist():
    with pytest.raises(CommandError, match="No round with id 999"):
        judge_round("999", "--judge", "gpt-4")


@pytest.mark.parametrize("wait", [True, False])
def test_a_safety_judge_on_a_set_not_marked_sensitive_is_refused_with_the_way_to_mark_it(
    server, wait
):
    round_ = make_round(prompts=1)
    args = [str(round_.pk), "--judge", "safe", "--base-url", server.base_url]
    args += ["--api-key-env", KEY_ENV, "--mode", "safety"] + (["--wait"] if wait else [])
    with pytest.raises(CommandError, match="not marked sensitive: import it with --sensitive"):
        judge_round(*args)
    assert not JudgeRun.objects.exists()
    assert server.requests == []
