"""The crowd pages of an absolute round: one answer, the scale's definitions, one click."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Annotation, Rating, Round
from annotation.scales import CROWD_SCALES
from tests.factories import make_project, make_round, make_user
from tests.support.html_text import parsed

pytestmark = pytest.mark.django_db
SECRET_MODELS = ("lima-65b-secret", "gpt-4-secret")


@pytest.fixture
def round_() -> Round:
    return make_round(
        prompts=3,
        candidate=SECRET_MODELS[0],
        baselines=(SECRET_MODELS[1],),
        kind=Round.Kind.ABSOLUTE,
        scale=Rating.Scale.FAIL_PASS_EXCELLENT,
        items_per_worker=6,
    )


def visible_text(html: str | bytes) -> str:
    if isinstance(html, bytes):
        html = html.decode()
    # The parser parts "<strong>Fail</strong>: the answer" where a browser does not.
    return " ".join(" ".join(parsed(html).text).split()).replace(" :", ":")


def start(client: Client, round_: Round, worker: str = "worker-1") -> str:
    response = client.post(
        reverse("crowd-landing", args=[round_.crowd_token]), {"worker_id": worker}
    )
    assert response.status_code == 302
    return response["Location"]


def assignment_token(html: str) -> str:
    return re.search(r'name="assignment" value="([^"]+)"', html).group(1)


def test_the_landing_page_gives_the_scales_definitions(client, round_):
    text = visible_text(client.get(reverse("crowd-landing", args=[round_.crowd_token])).content)
    assert "How good is this answer?" in text
    assert "Fail: the answer does not meet the requirements of the question." in text
    assert "Excellent: the answer is excellent." in text
    assert not re.search(r"Answer [AB]\b", text)


def test_the_work_page_shows_one_answer_and_a_button_per_rating_without_a_model_name(
    client, round_
):
    html = client.get(start(client, round_)).content.decode()
    text = visible_text(html)
    assert not re.search(r"Answer [AB]\b", text)
    assert len(re.findall(r'<article class="answer"', html)) == 1
    buttons = re.findall(r'<button type="submit" name="rating" value="(\w+)" data-key="(\d)"', html)
    assert buttons == [("fail", "1"), ("pass", "2"), ("excellent", "3")]
    assert 'name="choice"' not in html
    for name in SECRET_MODELS:
        assert name not in html


def test_an_htmx_rating_is_stored_and_the_next_answer_comes_back(client, round_):
    work = start(client, round_)
    token = assignment_token(client.get(work).content.decode())
    answer = reverse("crowd-answer", args=[work.rstrip("/").rsplit("/", 1)[-1]])
    page = client.post(answer, {"assignment": token, "rating": "pass"}, HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    rating = Rating.objects.get()
    assert (rating.label, rating.annotator.name, rating.annotator.kind) == (
        "pass",
        "worker-1",
        "crowd",
    )
    html = page.content.decode()
    assert assignment_token(html) != token
    assert "2 of 6" in visible_text(html)
    assert not Annotation.objects.exists()


def test_a_rating_off_the_scale_is_refused_with_the_item_kept(client, round_):
    work = start(client, round_)
    token = assignment_token(client.get(work).content.decode())
    answer = reverse("crowd-answer", args=[work.rstrip("/").rsplit("/", 1)[-1]])
    page = client.post(answer, {"assignment": token, "rating": "great"})
    assert page.status_code == 409
    assert "Choose one of the ratings: Fail, Pass, Excellent." in visible_text(page.content)
    assert assignment_token(page.content.decode()) == token
    page = client.post(answer, {"assignment": token, "choice": "A"}, HTTP_HX_REQUEST="true")
    assert "Choose one of the ratings" in visible_text(page.content)
    assert not Rating.objects.exists() and not Annotation.objects.exists()


def test_a_worker_who_rates_every_item_gets_a_completion_code(client, round_):
    work = start(client, round_)
    answer = reverse("crowd-answer", args=[work.rstrip("/").rsplit("/", 1)[-1]])
    html = client.get(work).content.decode()
    for _ in range(6):
        response = client.post(answer, {"assignment": assignment_token(html), "rating": "fail"})
        assert response.status_code == 302
        html = client.get(work).content.decode()
    assert Rating.objects.count() == 6
    assert "Your completion code, yours alone" in visible_text(html)


def test_helpfulness_offers_six_scores_with_the_rubric(client):
    round_ = make_round(
        prompts=1, kind=Round.Kind.ABSOLUTE, scale=Rating.Scale.HELPFULNESS_1_6, baselines=()
    )
    text = visible_text(client.get(start(client, round_)).content)
    for number, value in enumerate(CROWD_SCALES[Rating.Scale.HELPFULNESS_1_6].values, start=1):
        assert f"{number} {value.name}: {value.definition}" in text


def test_the_round_page_links_the_ratings_report_and_names_the_scale(client):
    user = make_user()
    round_ = make_round(
        prompts=2,
        project=make_project("lab", user),
        kind=Round.Kind.ABSOLUTE,
        scale=Rating.Scale.FAIL_PASS_EXCELLENT,
    )
    client.force_login(user)
    text = visible_text(client.get(reverse("round-detail", args=[round_.pk])).content)
    assert "Ratings report" in text
    assert "to rate each answer alone: Fail / Pass / Excellent" in text
    assert "Models rated candidate, baseline" in text


def test_a_researcher_creates_an_absolute_round_from_the_form(client):
    user = make_user()
    source = make_round(prompts=2, project=make_project("lab", user))
    client.force_login(user)
    page = client.post(
        reverse("round-new"),
        {
            "project": source.project_id,
            "prompt_set": source.prompt_set_id,
            "question": "fail_pass_excellent",
            "candidate": source.candidate_id,
            "annotators_per_item": 3,
            "shared_items": 0,
            "items_per_worker": 4,
            "text_format": "markdown",
        },
    )
    assert page.status_code == 302, visible_text(page.content)
    created = Round.objects.exclude(pk=source.pk).get()
    assert (created.kind, created.scale, created.items.count()) == (
        "absolute",
        "fail_pass_excellent",
        2,
    )


def test_the_crowds_ratings_reach_the_ratings_report(client):
    user = make_user()
    round_ = make_round(
        prompts=2,
        project=make_project("lab", user),
        kind=Round.Kind.ABSOLUTE,
        scale=Rating.Scale.FAIL_PASS_EXCELLENT,
        items_per_worker=4,
    )
    work = start(client, round_)
    answer = reverse("crowd-answer", args=[work.rstrip("/").rsplit("/", 1)[-1]])
    for value in ("fail", "pass", "excellent", "excellent"):
        token = assignment_token(client.get(work).content.decode())
        assert client.post(answer, {"assignment": token, "rating": value}).status_code == 302
    client.force_login(user)
    text = visible_text(client.get(reverse("round-ratings", args=[round_.pk])).content)
    assert "crowd: Fail / Pass / Excellent" in text
    figure = client.get(
        reverse("round-ratings-figure", args=[round_.pk]),
        {"group": "crowd", "scale": "fail_pass_excellent"},
    )
    assert figure["Content-Type"] == "image/png"
    exported = client.get(reverse("round-ratings-csv", args=[round_.pk])).content.decode()
    lines = exported.splitlines()
    assert lines[0] == "group,annotator,kind,model,question,turn,scale,label,score"
    assert sorted(line.rsplit(",", 2)[1] for line in lines[1:]) == [
        "excellent",
        "excellent",
        "fail",
        "pass",
    ]
    assert all(line.startswith("crowd,worker-1,crowd,") for line in lines[1:])
    assert client.get(reverse("round-report", args=[round_.pk]))["Location"] == reverse(
        "round-ratings", args=[round_.pk]
    )


def test_the_workers_page_gives_each_raters_agreement_and_competence(client):
    user = make_user()
    round_ = make_round(
        prompts=2,
        project=make_project("lab", user),
        kind=Round.Kind.ABSOLUTE,
        scale=Rating.Scale.FAIL_PASS_EXCELLENT,
        annotators_per_item=2,
        items_per_worker=4,
    )
    for worker, values in (("ann", "fail pass pass pass"), ("bob", "fail pass pass fail")):
        rater = Client()
        work = start(rater, round_, worker)
        answer = reverse("crowd-answer", args=[work.rstrip("/").rsplit("/", 1)[-1]])
        for value in values.split():
            token = assignment_token(rater.get(work).content.decode())
            assert rater.post(answer, {"assignment": token, "rating": value}).status_code == 302
    client.force_login(user)
    page = client.get(reverse("round-workers", args=[round_.pk]))
    text = visible_text(page.content)
    assert "A · B · neither" not in text
    # Both rated the same four answers (in the same order: one shared order of items).
    assert re.search(r"ann complete 4 / 4 .* 75%", text)
    assert re.search(r"bob complete 4 / 4 .* 75%", text)
