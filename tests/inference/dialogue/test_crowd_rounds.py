"""Crowd workers label dialogue answers turn by turn: a round over the models' finished dialogues,
each answer shown after the conversation before it, through the real crowd pages; the labels
count in the dialogue report beside the authors'. The page, the API and the command."""

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import LanguageModel, PromptSet, Rating, Round
from inference.dialogue.imports import dialogues_import
from inference.dialogue.selectors import dialogue_report
from inference.dialogue.services import (
    DialogueRefused,
    dialogue_label,
    dialogue_pairs_round_create,
    dialogue_round_create,
)
from tests.factories import make_project
from tests.support.html_text import parsed

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(user):
    project = make_project("crowd dialogues", user)
    records = [
        {"messages": [{"role": "system", "content": "Answer kindly."},
                      {"role": "user", "content": "Name a **red** fruit."},
                      {"role": "assistant", "content": "A strawberry."},
                      {"role": "user", "content": "<script>alert(1)</script> And a yellow one?"},
                      {"role": "assistant", "content": "A banana."}]},
        {"messages": [{"role": "user", "content": "Say hi."},
                      {"role": "assistant", "content": "Hi!"}]},
    ]  # fmt: skip
    raw = "".join(json.dumps(record) + "\n" for record in records).encode()
    dialogues_import(project=project, raw=raw, file="talks.jsonl", model_name="secret-model-a")
    dialogues_import(
        project=project,
        raw=(json.dumps({"conversations": ["Say hi.", "Hello."]}) + "\n").encode(),
        file="other.jsonl",
        model_name="secret-model-b",
    )
    models = {m.name: m for m in LanguageModel.objects.filter(project=project)}
    return {"project": project, **models}


def test_each_answer_becomes_an_item_after_the_conversation_before_it(study):
    round_ = dialogue_round_create(
        project=study["project"],
        models=[study["secret-model-a"], study["secret-model-b"]],
        name="dialogue turns",
    )
    assert (round_.kind, round_.scale, round_.items.count()) == (
        "absolute",
        "fail_pass_excellent",
        4,
    )
    prompts = {p.external_id: p for p in round_.prompt_set.prompts.all()}
    second = next(p for p in prompts.values() if p.extra.get("turn") == 2)
    assert second.text == (
        "**System message**\n\nAnswer kindly.\n\n**The person**\n\nName a **red** fruit.\n\n"
        "**The model**\n\nA strawberry.\n\n**The person**\n\n"
        "<script>alert(1)</script> And a yellow one?"
    )
    assert second.responses.get().text == "A banana."
    with pytest.raises(DialogueRefused, match="already has a prompt set"):
        dialogue_round_create(project=study["project"], models=[study["secret-model-a"]],
                              name="dialogue turns")  # fmt: skip
    other = LanguageModel.objects.create(project=study["project"], name="nobody")
    with pytest.raises(DialogueRefused, match="no finished dialogue"):
        dialogue_round_create(project=study["project"], models=[other], name="empty")
    with pytest.raises(DialogueRefused, match="at least 1"):
        dialogue_round_create(project=study["project"], models=[other, study["secret-model-a"]],
                              name="bad", annotators_per_item=0)  # fmt: skip
    # Nothing of a refused round is left behind.
    assert set(PromptSet.objects.values_list("name", flat=True)) == {
        "dialogue turns: dialogue turns"
    }


def test_crowd_workers_label_the_turns_blinded_and_the_report_counts_them(client, study, user):
    round_ = dialogue_round_create(
        project=study["project"], models=[study["secret-model-a"], study["secret-model-b"]],
        name="crowd", annotators_per_item=1,
    )  # fmt: skip
    landing = client.post(reverse("crowd-landing", args=[round_.crowd_token]), {"worker_id": "w1"})
    work = landing["Location"]
    session_token = work.rstrip("/").rsplit("/", 1)[-1]
    seen = []
    for label in ("fail", "pass", "excellent", "pass"):
        html = client.get(work).content.decode()
        assert "secret-model" not in html
        assert "<script>alert(1)</script>" not in html
        seen.append(" ".join(parsed(html).text))
        token = re.search(r'name="assignment" value="([^"]+)"', html).group(1)
        client.post(
            reverse("crowd-answer", args=[session_token]), {"assignment": token, "rating": label}
        )
    shown = " ".join(seen)
    # The conversation before the answer is on the page, with who said what, escaped.
    assert "The person" in shown and "The model" in shown and "A strawberry." in shown
    assert "<script>alert(1)</script> And a yellow one?" in shown
    assert Rating.objects.filter(item__round=round_).count() == 4

    dialogue = study["secret-model-a"].dialogues.get(turns_planned=2)
    dialogue_label(dialogue=dialogue, number=1, label="excellent", by=user)
    rows, _ = dialogue_report(study["project"].pk)
    by_model = {row.model: row for row in rows}
    crowd_a = by_model["secret-model-a (crowd)"]
    assert (crowd_a.dialogues, crowd_a.answers) == (2, 3)
    assert sum(crowd_a.by_turn[turn][0] for turn in crowd_a.by_turn) == 3
    assert crowd_a.by_turn[2][0] == 1
    assert (by_model["secret-model-a"].answers, by_model["secret-model-b (crowd)"].answers) == (
        1,
        1,
    )


def test_the_page_api_and_command_make_the_round(client, study, user):
    client.force_login(user)
    made = client.post(reverse("dialogues"), {
        "action": "crowd", "crowd-models": [study["secret-model-a"].pk], "crowd-name": "from page",
        "crowd-annotators_per_item": 2, "crowd-shared_items": 0,
    })  # fmt: skip
    round_ = Round.objects.get(name="from page")
    assert made["Location"] == reverse("round-detail", args=[round_.pk])
    assert (round_.annotators_per_item, round_.items.count()) == (2, 3)

    api = APIClient()
    api.force_authenticate(user)
    created = api.post("/api/dialogues/rounds/", {
        "project": "crowd dialogues", "models": ["secret-model-b"], "name": "from api",
    }, format="json")  # fmt: skip
    assert created.status_code == 201, created.json()
    assert created.json()["items"] == 1 and "/c/" in created.json()["crowd_link"]
    refused = api.post("/api/dialogues/rounds/", {
        "project": "crowd dialogues", "models": ["secret-model-b"], "name": "from api",
    }, format="json")  # fmt: skip
    assert refused.status_code == 400 and "already has a prompt set" in refused.json()["detail"]

    out = io.StringIO()
    call_command("dialogue_round", "--project", "crowd dialogues", "--model", "secret-model-a",
                 "--model", "secret-model-b", "--name", "from cli", stdout=out)  # fmt: skip
    assert re.search(r"Round \d+: from cli \(4 answers\)", out.getvalue())
    assert "Crowd link: " in out.getvalue()
    with pytest.raises(CommandError, match="No model named 'nope'"):
        call_command("dialogue_round", "--project", "crowd dialogues", "--model", "nope",
                     "--name", "x")  # fmt: skip


@pytest.mark.usefixtures("judge_api_key")
def test_a_judge_labels_the_same_conversations_and_counts_in_the_report(study, server):
    from annotation.services.display import item_texts_shown  # the crowd page's texts
    from tests.support.judging import make_judge, run_judge
    from tests.support.openai_server import Reply

    round_ = dialogue_round_create(
        project=study["project"], models=[study["secret-model-a"]], name="judged"
    )
    server.responder = lambda request: Reply("Label: Excellent")
    judge = make_judge(round_, server, mode="fail_pass_excellent", name="gpt-4-labels")
    run_judge(round_, judge)
    asked = {request.prompt for request in server.requests}
    item = round_.items.get(prompt__extra__turn=2)
    # The judge was sent the conversation the crowd sees, raw where the crowd sees it rendered.
    assert any(item.prompt.text in prompt for prompt in asked)
    assert "A strawberry." in str(item_texts_shown(item, round_.text_format)[0])
    rows, _ = dialogue_report(study["project"].pk)
    (judged,) = [row for row in rows if row.model == "secret-model-a (gpt-4-labels)"]
    assert (judged.answers, judged.shares["excellent"]) == (3, 100.0)


def pair_study(user):
    project = make_project("paired dialogues", user)
    for model, style in (("secret-one", "Sure!"), ("secret-two", "Okay.")):
        records = [
            {"conversations": [opening, f"{style} First answer.", "More?", f"{style} More."]}
            for opening in ("Plan a trip.", "Explain rain.")
        ]
        raw = "".join(json.dumps(record) + "\n" for record in records).encode()
        dialogues_import(project=project, raw=raw, file=f"{model}.jsonl", model_name=model)
    return project, {m.name: m for m in LanguageModel.objects.filter(project=project)}


def test_a_pairwise_round_shows_each_dialogue_after_its_opening_as_an_answer(client, user):
    project, models = pair_study(user)
    round_ = dialogue_pairs_round_create(
        project=project, model_a=models["secret-one"], model_b=models["secret-two"], name="pairs"
    )
    assert (round_.kind, round_.items.count()) == ("pairwise", 2)
    item = round_.items.select_related("prompt", "candidate_response").get(
        prompt__text="Plan a trip."
    )
    assert item.candidate_response.text == (
        "**The model**\n\nSure! First answer.\n\n**The person**\n\nMore?\n\n"
        "**The model**\n\nSure! More."
    )
    landing = client.post(reverse("crowd-landing", args=[round_.crowd_token]), {"worker_id": "w"})
    html = client.get(landing["Location"]).content.decode()
    text = " ".join(" ".join(parsed(html).text).split())
    assert "Answer A" in text and "Sure! First answer." in text and "Okay. First answer." in text
    assert "secret-" not in html
    with pytest.raises(DialogueRefused, match="two different models"):
        dialogue_pairs_round_create(
            project=project, model_a=models["secret-one"], model_b=models["secret-one"], name="same"
        )
    alone = LanguageModel.objects.create(project=project, name="alone")
    with pytest.raises(DialogueRefused, match="no finished dialogues that open with the same"):
        dialogue_pairs_round_create(
            project=project, model_a=models["secret-one"], model_b=alone, name="none"
        )

    client.force_login(user)
    made = client.post(
        reverse("dialogue-compare"),
        {
            "action": "crowd",
            "model_a": models["secret-one"].pk,
            "model_b": models["secret-two"].pk,
            "name": "from page",
            "annotators_per_item": "3",
        },
    )
    page_round = Round.objects.get(name="from page")
    assert made["Location"] == reverse("round-detail", args=[page_round.pk])
    assert (page_round.annotators_per_item, page_round.items.count()) == (3, 2)
    api = APIClient()
    api.force_authenticate(user)
    created = api.post(
        "/api/dialogues/rounds/",
        {
            "project": "paired dialogues",
            "pairs": True,
            "models": ["secret-one", "secret-two"],
            "name": "from api",
        },
        format="json",
    )
    assert created.status_code == 201 and created.json()["items"] == 2
    out = io.StringIO()
    call_command(
        "dialogue_round",
        "--project",
        "paired dialogues",
        "--model",
        "secret-one",
        "--model",
        "secret-two",
        "--name",
        "from cli",
        "--pairs",
        stdout=out,
    )
    assert re.search(r"Round \d+: from cli \(2 pairs\)", out.getvalue())
    with pytest.raises(CommandError, match="give --model twice"):
        call_command(
            "dialogue_round",
            "--project",
            "paired dialogues",
            "--model",
            "secret-one",
            "--name",
            "x",
            "--pairs",
        )


def test_no_model_generates_for_a_round_over_dialogues(study):
    from inference.generation.services import GenerationInvalid, generation_launch

    model = study["secret-model-a"]
    model.backend, model.config = LanguageModel.Backend.TRANSFORMERS, {"model": "/tiny"}
    model.save()
    round_ = dialogue_round_create(project=study["project"], models=[model], name="fixed")
    assert round_.prompt_set.answers_fixed and round_.items.count() == 3
    with pytest.raises(GenerationInvalid, match="fixed"):
        generation_launch(round_=round_)
    assert not round_.generation_runs.exists()
