"""A multi-turn prompt (the LIMA release's conversations) is shown to the crowd and sent to the
judge as its whole conversation, the answers replying to its last turn: both read the same."""

import json
import re
from html import unescape

import pytest
from django.urls import reverse

from annotation.imports.prompts import prompts_import
from annotation.imports.responses import responses_import
from annotation.models import LanguageModel, PromptSet, Round
from annotation.services.rounds import round_create
from tests.factories import make_project
from tests.support.html_text import parsed
from tests.support.judging import make_judge, prefers_candidate, run_judge

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("judge_api_key")]

TURNS = ["Name a red fruit.", "A strawberry.", "And a <yellow> one?"]


def jsonl(*records: object) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


@pytest.fixture
def round_() -> Round:
    project = make_project("multi-turn")
    prompts_import(
        project=project,
        set_name="turns",
        file="p.jsonl",
        raw=jsonl({"id": "p1", "conversations": TURNS}),
    )
    for model, answer in (("candidate", "A banana."), ("baseline", "A lemon.")):
        responses_import(
            project=project,
            set_name="turns",
            file=f"{model}.jsonl",
            raw=jsonl({"prompt_id": "p1", "output": answer, "model": model}),
        )
    models = {m.name: m for m in LanguageModel.objects.filter(project=project)}
    return round_create(
        project=project,
        prompt_set=PromptSet.objects.get(project=project),
        candidate=models["candidate"],
        baselines=[models["baseline"]],
        shared_items=0,
    )


def test_the_crowd_and_the_judge_read_the_whole_conversation(client, round_, server):
    landing = client.post(reverse("crowd-landing", args=[round_.crowd_token]), {"worker_id": "w"})
    html = client.get(landing["Location"]).content.decode()
    text = " ".join(" ".join(parsed(html).text).split())
    shown = re.search(r"Question (.*) Answer A", text)[1]
    for turn in TURNS:
        assert unescape(turn) in shown
    assert shown.index("The person") < shown.index(TURNS[0]) < shown.index("The model")
    assert shown.index("A strawberry.") < shown.index("And a <yellow> one?")

    server.responder = prefers_candidate
    run_judge(round_, make_judge(round_, server))
    prompt = round_.items.get().prompt
    assert server.requests
    for request in server.requests:
        assert prompt.shown_text in request.prompt
        for turn in TURNS:
            assert turn in request.prompt
