"""The round's absolute ratings page: tables, figures and agreement, for members only."""

import json

import pytest
from django.urls import reverse

from annotation.imports.ratings import ratings_import
from annotation.models import Annotator, LanguageModel
from annotation.services.ratings import RatingGiven, ratings_record
from tests.factories import make_project, make_round, make_user
from tests.support.html_text import parsed

pytestmark = pytest.mark.django_db
HOSTILE = "<script>alert(1)</script>"


def visible_text(html: str) -> str:
    return " ".join(" ".join(parsed(html).text).split())


def rated_round(user):
    round_ = make_round(prompts=3, project=make_project("lab", user), candidate=HOSTILE)
    records = [
        {"prompt_id": str(p), "model": model, "label": label, "annotator": who}
        for who, plan in {
            "ann": ["excellent", "pass", "fail"],
            "bob": ["excellent", "fail", "fail"],
        }.items()
        for model in (HOSTILE, "baseline")
        for p, label in enumerate(plan)
    ]
    raw = "\n".join(json.dumps(r) for r in records).encode()
    ratings_import(round_=round_, raw=raw, file="labels.jsonl", scale="fail_pass_excellent")
    return round_


def test_a_member_sees_each_groups_shares_figure_and_agreement(client):
    user = make_user()
    round_ = rated_round(user)
    client.force_login(user)
    page = client.get(reverse("round-ratings", args=[round_.pk]))
    assert page.status_code == 200
    text = visible_text(page.content.decode())
    assert "author: Fail / Pass / Excellent" in text
    assert HOSTILE in text and HOSTILE not in page.content.decode()
    # Each model: 3 fail, 1 pass, 2 excellent of 6 ratings.
    assert "6 50.0 % 16.7 % 33.3 %" in text
    assert "within author 6 6 66.7 %" in text
    url = reverse("round-ratings-figure", args=[round_.pk])
    figure = client.get(url, {"group": "author", "scale": "fail_pass_excellent"})
    assert figure["Content-Type"] == "image/png" and figure.content.startswith(b"\x89PNG")
    missing = client.get(url, {"group": "crowd", "scale": "safety"})
    assert missing.status_code == 404


def test_a_judge_named_with_a_slash_gets_its_figure(client):
    user = make_user()
    round_ = make_round(prompts=2, project=make_project("lab", user))
    judge = Annotator.objects.create(project=round_.project, kind="judge", name="openai/gpt-4o")
    response = round_.items.first().candidate_response
    ratings_record(
        annotator=judge,
        ratings=[
            RatingGiven(response.model_id, "0", "helpfulness_1_6", score=4, response_id=response.pk)
        ],
    )
    client.force_login(user)
    page = client.get(reverse("round-ratings", args=[round_.pk]))
    assert page.status_code == 200
    (src,) = [attrs["src"] for tag, attrs in parsed(page.content.decode()).tags if tag == "img"]
    assert "group=openai%2Fgpt-4o" in src
    figure = client.get(src)
    assert figure.status_code == 200 and figure.content.startswith(b"\x89PNG")


def test_a_round_without_ratings_says_how_to_get_them_and_strangers_see_nothing(client):
    user = make_user()
    round_ = make_round(prompts=2, project=make_project("lab", user))
    client.force_login(user)
    text = visible_text(client.get(reverse("round-ratings", args=[round_.pk])).content.decode())
    assert "No ratings of this round's answers yet" in text
    assert f"import_ratings FILE --round {round_.pk}" in text
    client.force_login(make_user("stranger"))
    assert client.get(reverse("round-ratings", args=[round_.pk])).status_code == 404
    assert LanguageModel.objects.filter(project=round_.project).count() == 2
    assert not Annotator.objects.filter(kind="author").exists()
