"""Dialogue studies: crowd workers talk live to models that are never named to them, label each
answer, get a completion code; balanced across the models, one dialogue per worker, capped."""

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Annotator, LanguageModel, Rating
from inference.dialogue.models import Dialogue, DialogueStudy, DialogueTurn
from inference.dialogue.selectors import dialogue_report, study_completion_code
from inference.dialogue.services import DialogueRefused, study_create, study_join
from inference.dialogue.worker import dialogue_reply_execute

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_model(talker):
    model = talker["model"]
    return LanguageModel.objects.create(
        project=talker["project"], name="tiny-chat-2", backend=model.backend, config=model.config
    )


def test_workers_are_spread_over_the_models_and_keep_their_dialogue(talker, second_model, user):
    study = study_create(
        project=talker["project"],
        models=[talker["model"], second_model],
        name="live",
        user=user,
        turns=2,
        max_workers=3,
    )
    first, new = study_join(study=study, worker_id="w1")
    second, _ = study_join(study=study, worker_id="w2")
    assert new and {first.model, second.model} == {talker["model"], second_model}
    assert study_join(study=study, worker_id=" w1 ") == (first, False)
    assert first.token and first.token != second.token and first.annotator.kind == "crowd"
    study_join(study=study, worker_id="w3")
    with pytest.raises(DialogueRefused, match="all the workers it needs"):
        study_join(study=study, worker_id="w4")
    assert study_join(study=study, worker_id="w2") == (second, False)
    with pytest.raises(DialogueRefused, match="worker id"):
        study_join(study=study, worker_id="\x00bad")
    DialogueStudy.objects.filter(pk=study.pk).update(is_open=False, max_workers=None)
    with pytest.raises(DialogueRefused, match="closed"):
        study_join(study=study, worker_id="w5")
    # A refused worker leaves nothing behind.
    assert not Annotator.objects.filter(name__in=["w4", "w5"]).exists()


def test_only_the_browser_that_started_a_dialogue_continues_it(client, talker, user):
    study = study_create(
        project=talker["project"], models=[talker["model"]], name="live", user=user
    )
    landing = reverse("dialogue-study", args=[study.token])
    talk = client.post(landing, {"worker_id": "pid-1"})["Location"]
    assert client.post(landing, {"worker_id": "pid-1"})["Location"] == talk
    stranger = Client()
    refused = stranger.post(landing, {"worker_id": "pid-1"})
    assert refused.status_code == 400
    assert "started in another browser" in refused.content.decode()
    assert talk not in refused.content.decode()


def test_what_cannot_be_a_study_is_refused(talker, user):
    imported = LanguageModel.objects.create(project=talker["project"], name="imported only")
    with pytest.raises(DialogueRefused) as refused:
        study_create(
            project=talker["project"],
            models=[imported],
            name=" ",
            user=user,
            turns=0,
            max_workers=0,
            completion_url="ftp://x",
        )
    for expected in (
        "imported answers only",
        "Name the study",
        "from 1 to 50",
        "at least 1",
        "https://",
    ):
        assert expected in str(refused.value)
    study_create(project=talker["project"], models=[talker["model"]], name="once", user=user)
    with pytest.raises(DialogueRefused, match="already has a dialogue study"):
        study_create(project=talker["project"], models=[talker["model"]], name="once", user=user)


def test_a_worker_talks_labels_and_gets_a_code_without_seeing_the_model(
    client, talker, user, django_capture_on_commit_callbacks
):
    study = study_create(
        project=talker["project"],
        models=[talker["model"]],
        name="live",
        user=user,
        turns=2,
        completion_url="https://app.prolific.com/submissions/complete?cc={code}",
    )
    landing = reverse("dialogue-study", args=[study.token])
    page = client.get(landing, {"PROLIFIC_PID": "pid-1"}).content.decode()
    assert 'value="pid-1"' in page and "Excellent" in page
    talk = client.post(landing, {"worker_id": "pid-1"})["Location"]
    for number, label in ((1, "pass"), (2, "excellent")):
        with django_capture_on_commit_callbacks(execute=False) as sent:
            client.post(talk, {"action": "say", "text": f"<b>message</b> {number}"})
        assert len(sent) == 1
        waiting = client.get(talk).content.decode()
        assert 'hx-trigger="every 1s"' in waiting and "The assistant is answering" in waiting
        dialogue_reply_execute(turn_id=DialogueTurn.objects.filter(role="assistant").last().pk)
        html = client.get(talk).content.decode()
        assert "tiny-chat" not in html
        assert "&lt;b&gt;message&lt;/b&gt;" in html and "<b>message</b>" not in html
        if number == 2:
            assert "Label every answer above" in html and "completion-code" not in html
        client.post(talk, {"action": "label", "number": str(number), "label": label})
    html = client.get(talk).content.decode()
    code = re.search(r'id="completion-code">(\w+)<', html)[1]
    dialogue = Dialogue.objects.get()
    assert code == study_completion_code(dialogue)
    assert f"cc={code}" in html
    assert list(Rating.objects.order_by("turn").values_list("label", flat=True)) == [
        "pass",
        "excellent",
    ]
    # Another dialogue's token, or this one under another study, is not found.
    assert client.get(talk.replace(dialogue.token, "x" * 22)).status_code == 404
    other = study_create(
        project=talker["project"], models=[talker["model"]], name="other", user=user
    )
    assert client.get(talk.replace(study.token, other.token)).status_code == 404
    refused = client.post(talk, {"action": "say", "text": "more"})
    assert refused.status_code == 400 and "had its 2 turns" in refused.content.decode()
    # The researcher reads each worker's code to check the codes handed in.
    api = APIClient()
    api.force_authenticate(user)
    (worker,) = api.get(f"/api/dialogues/studies/{study.pk}/workers/").json()
    assert (worker["worker"], worker["answers"], worker["labelled"]) == ("pid-1", 2, 2)
    assert worker["completion_code"] == code
    rows, _ = dialogue_report(talker["project"].pk)
    (crowd,) = [row for row in rows if row.model == "tiny-chat (crowd)"]
    assert (crowd.dialogues, crowd.answers, crowd.fails) == (1, 2, 0)


def test_the_page_api_and_command_make_studies(client, talker, user):
    client.force_login(user)
    made = client.post(
        reverse("dialogues"),
        {
            "action": "study",
            "study-models": [talker["model"].pk],
            "study-name": "from page",
            "study-turns": 3,
        },
        follow=True,
    )
    assert "Dialogue study &#x27;from page&#x27; made" in made.content.decode()
    study = DialogueStudy.objects.get(name="from page")
    assert reverse("dialogue-study", args=[study.token]) in made.content.decode()
    api = APIClient()
    api.force_authenticate(user)
    created = api.post(
        "/api/dialogues/studies/",
        {"project": "dialogue lab", "models": ["tiny-chat"], "name": "from api", "turns": 2},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["link"].endswith(
        f"/talk/{DialogueStudy.objects.get(name='from api').token}/"
    )
    assert {study["name"] for study in api.get("/api/dialogues/studies/").json()} == {
        "from page",
        "from api",
    }
    out = io.StringIO()
    call_command(
        "dialogue_study",
        "--project",
        "dialogue lab",
        "--model",
        "tiny-chat",
        "--name",
        "from cli",
        "--turns",
        "1",
        stdout=out,
    )
    assert re.search(r"Crowd link: http\S+/talk/\S+/", out.getvalue())
