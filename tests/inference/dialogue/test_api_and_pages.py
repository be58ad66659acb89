"""The dialogue API and pages: start, say, label, read; for members of the project only."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Rating
from inference.dialogue.models import Dialogue, DialogueTurn
from inference.dialogue.worker import dialogue_reply_execute
from tests.factories import make_user
from tests.support.html_text import parsed

pytestmark = pytest.mark.django_db


def test_the_api_runs_a_dialogue(talker, user, django_capture_on_commit_callbacks):
    client = APIClient()
    client.force_authenticate(user)
    started = client.post(
        "/api/dialogues/",
        {"project": "dialogue lab", "model": "tiny-chat", "turns": 1},
        format="json",
    )
    assert started.status_code == 201, started.json()
    url = f"/api/dialogues/{started.json()['id']}/"
    with django_capture_on_commit_callbacks(execute=False) as sent:
        said = client.post(url + "messages/", {"text": "hello"}, format="json")
    assert said.status_code == 202 and said.json()["status"] == "replying"
    assert len(sent) == 1
    dialogue_reply_execute(turn_id=DialogueTurn.objects.get(role="assistant").pk)
    body = client.get(url).json()
    assert [turn["role"] for turn in body["turns"]] == ["user", "assistant"]
    assert body["status"] == "done"
    labelled = client.post(url + "labels/", {"number": 1, "rating": "pass"}, format="json")
    assert labelled.json()["labels"] == {"1": "pass"}
    refused = client.post(url + "messages/", {"text": "more"}, format="json")
    assert refused.status_code == 400 and "had its 1 turns" in refused.json()["detail"]
    missing = client.post(
        "/api/dialogues/", {"project": "dialogue lab", "model": "nope"}, format="json"
    )
    assert missing.status_code == 400 and "nope" in str(missing.json())
    stranger = APIClient()
    stranger.force_authenticate(make_user("stranger"))
    assert stranger.get(url).status_code == 404
    assert Rating.objects.count() == 1


def test_the_page_starts_a_dialogue_polls_while_the_model_answers_and_labels(
    client, talker, user, django_capture_on_commit_callbacks
):
    client.force_login(user)
    started = client.post(reverse("dialogues"), {"model": talker["model"].pk, "turns": 3})
    dialogue = Dialogue.objects.get()
    assert started["Location"] == reverse("dialogue", args=[dialogue.pk])
    with django_capture_on_commit_callbacks(execute=False):
        client.post(started["Location"], {"action": "say", "text": "<script>x</script> hi"})
    page = client.get(started["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in page and "The model is answering" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt; hi" in page
    dialogue_reply_execute(turn_id=DialogueTurn.objects.get(role="assistant").pk)
    page = client.get(started["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in page and 'aria-label="Label answer 1"' in page
    client.post(started["Location"], {"action": "label", "number": "1", "label": "excellent"})
    text = " ".join(
        " ".join(parsed(client.get(reverse("dialogue-report")).content.decode()).text).split()
    )
    assert "tiny-chat 1 1 0.0 % 0.0 % 100.0 % 0 of 1" in text
    bad = client.post(started["Location"], {"action": "label", "number": "9", "label": "pass"})
    assert bad.status_code == 302
    follow = client.get(bad["Location"]).content.decode()
    assert "no answer 9 to label" in follow


def test_the_command_prints_the_dialogue_report(talker, user, django_capture_on_commit_callbacks):
    import io
    import json

    from django.core.management import call_command

    from inference.dialogue.services import dialogue_label, dialogue_say, dialogue_start

    dialogue = dialogue_start(project=talker["project"], model=talker["model"], user=user)
    for number, label in ((1, "fail"), (2, "excellent")):
        with django_capture_on_commit_callbacks(execute=False):
            answer = dialogue_say(dialogue=dialogue, text=f"message {number}", by=user)
        dialogue_reply_execute(turn_id=answer.pk)
        dialogue_label(dialogue=dialogue, number=number, label=label, by=user)
    out = io.StringIO()
    call_command("dialogue_report", "--project", "dialogue lab", stdout=out)
    assert "tiny-chat" in out.getvalue() and "1 of 2" in out.getvalue()
    out = io.StringIO()
    call_command("dialogue_report", "--project", "dialogue lab", "--json", stdout=out)
    (row,) = json.loads(out.getvalue())["models"]
    assert (row["answers"], row["fails"], row["shares"]["excellent"]) == (2, 1, 50.0)
    assert row["by_turn"] == {"1": {"answers": 1, "fails": 1}, "2": {"answers": 1, "fails": 0}}
