"""Two models' dialogues on the same opening messages compared as wholes: pairing, verdicts,
refusals, positions, the report, the page (blinded), the API and the command."""

import io
import json
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import LanguageModel
from inference.dialogue.imports import dialogues_import
from inference.dialogue.models import Dialogue, DialogueComparison
from inference.dialogue.selectors import comparison_report, dialogue_pairs
from inference.dialogue.services import (
    DialogueRefused,
    dialogue_compare,
    dialogue_finish,
    dialogue_say,
    dialogue_start,
)
from inference.dialogue.worker import dialogue_reply_execute
from tests.factories import make_project, make_user
from tests.support.html_text import parsed

pytestmark = pytest.mark.django_db

OPENINGS = ["Plan a trip to Kyoto.", "Explain entropy to a child.", "Write a haiku about rain."]


STYLE = {"tuned": "Sure!", "zero-shot": "Okay."}


def conversations(model: str, openings: list[str]) -> bytes:
    # The texts do not name the model: the page must not either.
    style = STYLE[model]
    records = [
        {"conversations": [text, f"{style} An answer to {text}", "Thanks, more?", f"{style} More."]}
        for text in openings
    ]
    return "".join(json.dumps(record) + "\n" for record in records).encode()


@pytest.fixture
def study(user):
    project = make_project("dialogue study", user)
    dialogues_import(
        project=project,
        raw=conversations("zero-shot", OPENINGS),
        file="z.jsonl",
        model_name="zero-shot",
    )
    # The tuned model was not run on the last opening, and twice on the first.
    dialogues_import(
        project=project,
        raw=conversations("tuned", OPENINGS[:2]),
        file="t.jsonl",
        model_name="tuned",
    )
    dialogues_import(
        project=project,
        raw=conversations("tuned", OPENINGS[:1]).replace(b"More.", b"Even more."),
        file="t2.jsonl",
        model_name="tuned",
    )
    models = {m.name: m for m in LanguageModel.objects.filter(project=project)}
    return {"project": project, **models}


def test_dialogues_pair_by_their_opening_message(study):
    pairs = dialogue_pairs(study["project"].pk, study["tuned"], study["zero-shot"])
    openings = [pair.first.turns.get(index=0).text for pair in pairs]
    # One pair per opening both models had; the first opening's second tuned dialogue has no
    # zero-shot partner left.
    assert openings == OPENINGS[:2]
    for pair in pairs:
        assert pair.first.pk < pair.second.pk
        assert {pair.first.model.name, pair.second.model.name} == {"tuned", "zero-shot"}
    # Positions are drawn per labeller and pair, and stay put.
    assert pairs[0].first_on_left("ann") == pairs[0].first_on_left("ann")
    assert len({pair.first_on_left(name) for name in "abcdefgh" for pair in pairs}) == 2


def test_verdicts_are_counted_for_the_model_first_in_name_order(study, user):
    first_pair, second_pair = dialogue_pairs(
        study["project"].pk, study["tuned"], study["zero-shot"]
    )
    tuned = {
        p.key: (p.first if p.first.model.name == "tuned" else p.second)
        for p in (first_pair, second_pair)
    }
    other = {
        p.key: (p.second if tuned[p.key] == p.first else p.first) for p in (first_pair, second_pair)
    }
    # The tuned model's dialogue shown on the right and chosen; then shown on the left, neither.
    dialogue_compare(
        left=other[first_pair.key], right=tuned[first_pair.key], choice="right", by=user
    )
    dialogue_compare(
        left=tuned[second_pair.key], right=other[second_pair.key], choice="neither", by=user
    )
    colleague = make_user("colleague")
    study["project"].members.add(colleague)
    dialogue_compare(
        left=tuned[first_pair.key], right=other[first_pair.key], choice="right", by=colleague
    )
    # A second verdict by the same person replaces the first.
    again = dialogue_compare(
        left=tuned[first_pair.key], right=other[first_pair.key], choice="left", by=user
    )
    assert again.first_on_left == (again.first == tuned[first_pair.key])
    assert DialogueComparison.objects.count() == 3
    (row,) = comparison_report(study["project"].pk)
    assert (row.model, row.other, row.pairs) == ("tuned", "zero-shot", 2)
    assert (row.outcome.wins, row.outcome.ties, row.outcome.losses) == (1, 1, 1)
    assert row.outcome.win_rate == 50.0
    low, high = row.outcome.ci95
    assert 0 <= low <= 50.0 <= high <= 100


def test_what_is_not_a_pair_is_refused(study, user, talker, django_capture_on_commit_callbacks):
    tuned = Dialogue.objects.filter(model=study["tuned"]).order_by("pk")
    zero = Dialogue.objects.filter(model=study["zero-shot"]).order_by("pk")
    with pytest.raises(DialogueRefused, match="same model"):
        dialogue_compare(left=tuned[0], right=tuned[2], choice="left", by=user)
    with pytest.raises(DialogueRefused, match="open with different messages"):
        dialogue_compare(left=tuned[0], right=zero[1], choice="left", by=user)
    with pytest.raises(DialogueRefused, match="left, right or neither"):
        dialogue_compare(left=tuned[0], right=zero[0], choice="A", by=user)
    live = dialogue_start(project=talker["project"], model=talker["model"], user=user, turns=3)
    with pytest.raises(DialogueRefused, match=r"different projects.*must be finished"):
        dialogue_compare(left=tuned[0], right=live, choice="left", by=user)
    with pytest.raises(DialogueRefused, match="nothing to finish"):
        dialogue_finish(dialogue=live, by=user)
    with django_capture_on_commit_callbacks(execute=False):
        answer = dialogue_say(dialogue=live, text=OPENINGS[0], by=user)
    dialogue_reply_execute(turn_id=answer.pk)
    stranger = make_user("stranger")
    talker["project"].members.add(stranger)
    with pytest.raises(DialogueRefused, match="who started this dialogue"):
        dialogue_finish(dialogue=live, by=stranger)
    finished = dialogue_finish(dialogue=live, by=user)
    assert (finished.status, finished.turns.count()) == ("done", 2)
    assert not DialogueComparison.objects.exists()


def test_the_page_shows_pairs_blinded_and_records_verdicts(client, study, user):
    client.force_login(user)
    url = reverse("dialogue-compare")
    chosen = f"{url}?model_a={study['tuned'].pk}&model_b={study['zero-shot'].pk}"
    page = client.get(chosen).content.decode()
    text = " ".join(parsed(page).text)
    assert "0 of 2 pairs judged." in text
    # Both texts are there, the models' names are not (outside the form that chose them).
    shown = page.split('id="comparison"')[1]
    assert "Sure! An answer to" in shown and "Okay. An answer to" in shown
    assert "tuned" not in shown and "zero-shot" not in shown
    left = re.search(r'name="left" value="(\d+)"', page)[1]
    right = re.search(r'name="right" value="(\d+)"', page)[1]
    assert client.get(chosen).content.decode().count(f'name="left" value="{left}"') == 1
    posted = client.post(
        url,
        {
            "model_a": study["tuned"].pk,
            "model_b": study["zero-shot"].pk,
            "left": left,
            "right": right,
            "choice": "left",
            "shown_at": "1",
        },
    )
    assert posted.status_code == 302 and posted["Location"] == chosen
    verdict = DialogueComparison.objects.get()
    assert verdict.first_on_left == (int(left) < int(right))
    assert verdict.choice == ("first" if int(left) < int(right) else "second")
    assert "1 of 2 pairs judged." in " ".join(parsed(client.get(chosen).content.decode()).text)
    forged = client.post(
        url,
        {
            "model_a": study["tuned"].pk,
            "model_b": study["zero-shot"].pk,
            "left": left,
            "right": str(int(left) + 100),
            "choice": "left",
        },
        follow=True,
    )
    assert "not a pair of the chosen models" in forged.content.decode()
    same = client.get(f"{url}?model_a={study['tuned'].pk}&model_b={study['tuned'].pk}")
    assert "Choose two different models." in same.content.decode()

    report = " ".join(
        " ".join(parsed(client.get(reverse("dialogue-report")).content.decode()).text).split()
    )
    assert "tuned zero-shot 1" in report
    figure = client.get(
        reverse("dialogue-comparison-figure", args=[study["project"].pk]), {"model": "tuned"}
    )
    assert figure.status_code == 200 and figure["Content-Type"] == "image/png"


def test_the_api_lists_pairs_records_verdicts_and_reports(study, user):
    api = APIClient()
    api.force_authenticate(user)
    pairs = api.get(
        "/api/dialogues/pairs/",
        {"project": "dialogue study", "model_a": "tuned", "model_b": "zero-shot"},
    ).json()
    assert len(pairs) == 2
    for pair, choice in zip(pairs, ("first", "second"), strict=True):
        made = api.post(
            "/api/dialogues/comparisons/",
            {"first": pair["first"], "second": pair["second"], "choice": choice},
            format="json",
        )
        assert made.status_code == 201, made.json()
    refused = api.post(
        "/api/dialogues/comparisons/",
        {"first": pairs[0]["first"], "second": pairs[0]["first"], "choice": "first"},
        format="json",
    )
    assert refused.status_code == 400 and "same model" in refused.json()["detail"]
    missing = api.get("/api/dialogues/pairs/", {"project": "dialogue study"})
    assert missing.status_code == 400 and set(missing.json()) == {"model_a", "model_b"}
    report = api.get("/api/dialogues/report/", {"project": "dialogue study"}).json()
    (row,) = report["comparisons"]
    assert (row["pairs"], row["wins"] + row["losses"], row["ties"]) == (2, 2, 0)
    out = io.StringIO()
    call_command("dialogue_report", "--project", "dialogue study", stdout=out)
    assert "tuned vs zero-shot: 2 pairs" in out.getvalue()
