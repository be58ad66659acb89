"""One scoping rule for every API resource: members see their projects' objects, superusers
(the operators) see every project's, everyone else sees none and cannot name them as input."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.models import Annotator
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from annotation.services.ratings import RatingGiven, ratings_record
from tests.factories import make_round, make_user

pytestmark = pytest.mark.django_db

RESOURCES = ["/api/projects/", "/api/prompt-sets/", "/api/responses/", "/api/models/"]
RESOURCES += ["/api/rounds/", "/api/annotations/", "/api/ratings/"]


@pytest.fixture
def round_():
    round_ = make_round(prompts=3)
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w1")
    annotation_submit(
        session=session,
        assignment_token=assignment_current(session=session).token,
        shown_choice="A",
    )
    judge = Annotator.objects.create(project=round_.project, kind="judge", name="gpt-4")
    ratings_record(
        annotator=judge,
        ratings=[RatingGiven(round_.candidate_id, "0", "mt_bench_1_10", score=7.5)],
    )
    return round_


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def superuser():
    return get_user_model().objects.create_superuser(username="operator", password="pw-1-ops")


@pytest.mark.parametrize("url", RESOURCES)
def test_a_superuser_sees_every_projects_objects_of_every_resource(round_, url):
    listed = client_for(superuser()).get(url).json()

    assert listed["count"] > 0, url


@pytest.mark.parametrize("url", RESOURCES)
def test_a_member_sees_them_and_a_stranger_sees_none(round_, url):
    member = make_user("member")
    round_.project.members.add(member)

    assert client_for(member).get(url).json()["count"] > 0
    assert client_for(make_user("stranger")).get(url).json()["count"] == 0


def test_a_superuser_may_name_any_projects_objects_as_input(round_):
    response = client_for(superuser()).post(
        "/api/rounds/",
        {
            "project": round_.project_id,
            "prompt_set": round_.prompt_set_id,
            "candidate": round_.candidate_id,
            "baselines": [b.pk for b in round_.baselines.all()],
            "name": "again",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()


def test_a_stranger_may_not_name_them(round_):
    response = client_for(make_user("stranger")).post(
        "/api/rounds/",
        {
            "project": round_.project_id,
            "prompt_set": round_.prompt_set_id,
            "candidate": round_.candidate_id,
            "baselines": [b.pk for b in round_.baselines.all()],
        },
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()) >= {"project", "prompt_set", "candidate", "baselines"}


def test_a_superuser_sees_the_machine_side_of_every_project(round_):
    client = client_for(superuser())

    assert client.get(f"/api/rounds/{round_.pk}/generation/").status_code == 200
    assert client.get(f"/api/rounds/{round_.pk}/judges/").status_code == 200
    assert client.get("/api/training-runs/").status_code == 200


def test_ratings_filter_by_project_and_scale_and_refuse_an_unknown_scale(round_):
    client = client_for(superuser())
    listed = client.get(f"/api/ratings/?project={round_.project_id}&scale=mt_bench_1_10").json()
    assert [(r["model_name"], r["score"], r["annotator_kind"]) for r in listed["results"]] == [
        ("candidate", 7.5, "judge")
    ]
    assert client.get("/api/ratings/?scale=helpfulness_1_6").json()["count"] == 0
    refused = client.get("/api/ratings/?scale=stars")
    assert refused.status_code == 400
    assert "scale" in refused.json()


def test_a_member_marks_a_prompt_set_sensitive_and_a_stranger_cannot(round_):
    member = make_user("member")
    round_.project.members.add(member)
    url = f"/api/prompt-sets/{round_.prompt_set_id}/"
    answer = client_for(member).patch(url, {"sensitive": True, "name": "renamed"}, format="json")
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["sensitive"], answer.json()["name"]) == (True, "test prompts")
    assert client_for(make_user("stranger")).patch(url, {"sensitive": False}).status_code == 404
    assert client_for(member).put(url, {"sensitive": False}, format="json").status_code == 405
    round_.prompt_set.refresh_from_db()
    assert round_.prompt_set.sensitive
