"""Helpers for the judge's tests: a judge pointed at the scripted server, and responders."""

import hashlib

from inference.judge.services import judge_create, judge_run_attach
from inference.judge.worker import judge_run_execute
from inference.models import Judge, JudgeRun
from tests.support.openai_server import Recorded, Reply, ScriptedOpenAI, verdict

# Shaped like an OpenAI key, so that any leak would also be caught by its pattern.
API_KEY = "sk-judge-test-5f2b9c1e8d7a6b4c3e2f1a0b9c8d7e6f"
KEY_ENV = "EVALPLATFORM_TEST_JUDGE_KEY"
# tests.factories writes each model's answers with this voice (no model name in the text).
CANDIDATE_VOICE = hashlib.sha1(b"candidate").hexdigest()[:6]


def make_judge(round_, server: ScriptedOpenAI, **settings) -> Judge:
    defaults = {
        "base_url": server.base_url,
        "api_key_env": KEY_ENV,
        "timeout_seconds": 2.0,
        "max_concurrency": 4,
        "rpm_limit": 0,
        "tpm_limit": 0,
    }
    name = settings.pop("name", "gpt-4")
    return judge_create(project=round_.project, name=name, **{**defaults, **settings})


def run_judge(round_, judge: Judge) -> JudgeRun:
    run = judge_run_attach(round_=round_, judge=judge)
    return judge_run_execute(run_id=run.pk)


def candidate_letter(request: Recorded) -> str:
    return "A" if CANDIDATE_VOICE in request.answers[0] else "B"


def prefers_candidate(request: Recorded) -> Reply:
    return verdict(candidate_letter(request))


def prefers_baseline(request: Recorded) -> Reply:
    return verdict("B" if candidate_letter(request) == "A" else "A")


def question_number(request: Recorded) -> int:
    return int(request.prompt.split("Question: Question number ")[1].split("?")[0])
