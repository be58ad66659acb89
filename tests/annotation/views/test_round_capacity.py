"""A round's cap on active crowd workers: set from the form, the API and the CLI; the crowd
landing page refuses a new worker beyond it."""

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Round, WorkerSession
from tests.factories import make_model_with_responses, make_project, make_prompt_set, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def lab(user):
    project = make_project("lab", user)
    prompt_set = make_prompt_set(project, 4)
    candidate = make_model_with_responses(project, prompt_set, "candidate")
    baseline = make_model_with_responses(project, prompt_set, "baseline")
    return project, prompt_set, candidate, baseline


def round_form(lab, **fields):
    project, prompt_set, candidate, baseline = lab
    return {
        "project": project.pk,
        "name": "capped",
        "prompt_set": prompt_set.pk,
        "candidate": candidate.pk,
        "baselines": [baseline.pk],
        "annotators_per_item": 1,
        "shared_items": 0,
        "items_per_worker": 4,
        "text_format": "markdown",
        **fields,
    }


def test_the_landing_page_asks_a_new_worker_beyond_the_cap_to_come_back(client, user, lab):
    client.force_login(user)
    client.post(reverse("round-new"), round_form(lab, max_active_workers=1))
    round_ = Round.objects.get()
    url = reverse("crowd-landing", args=[round_.crowd_token])
    first = Client()
    assert first.post(url, {"worker_id": "w1"}).status_code == 302

    refused = Client().post(url, {"worker_id": "w2"})

    assert refused.status_code == 503
    assert int(refused["Retry-After"]) > 0
    assert "as many workers as it can take right now" in refused.content.decode()
    assert first.post(url, {"worker_id": "w1"}).status_code == 302
    assert WorkerSession.objects.count() == 1


def test_the_form_leaves_a_round_uncapped_when_the_field_is_empty(client, user, lab):
    client.force_login(user)
    response = client.post(reverse("round-new"), round_form(lab, max_active_workers=""))
    round_ = Round.objects.get()
    assert round_.max_active_workers is None
    detail = client.get(response["Location"]).content.decode()
    assert "Active workers at once" in detail and "no cap" in detail


def test_the_round_page_shows_the_cap(client, user, lab):
    client.force_login(user)
    response = client.post(reverse("round-new"), round_form(lab, max_active_workers=40))
    assert "at most 40" in client.get(response["Location"]).content.decode()


def test_the_form_refuses_a_cap_of_zero(client, user, lab):
    client.force_login(user)
    response = client.post(reverse("round-new"), round_form(lab, max_active_workers=0))
    assert response.status_code == 200
    assert not Round.objects.exists()


def test_the_api_takes_and_returns_the_cap(user, lab):
    project, prompt_set, candidate, baseline = lab
    api = APIClient()
    api.force_authenticate(user)
    body = {
        "project": project.pk,
        "prompt_set": prompt_set.pk,
        "candidate": candidate.pk,
        "baselines": [baseline.pk],
        "shared_items": 0,
        "items_per_worker": 4,
    }
    capped = api.post("/api/rounds/", {**body, "max_active_workers": 25}, format="json")
    assert capped.status_code == 201
    assert capped.json()["max_active_workers"] == 25
    assert Round.objects.get(pk=capped.json()["id"]).max_active_workers == 25
    uncapped = api.post("/api/rounds/", body, format="json")
    assert uncapped.json()["max_active_workers"] is None
    refused = api.post("/api/rounds/", {**body, "max_active_workers": 0}, format="json")
    assert refused.status_code == 400
    assert "max_active_workers" in refused.json()


def test_create_round_takes_the_cap(lab):
    call_command(
        "create_round",
        *("--project", "lab", "--set", "test prompts", "--candidate", "candidate"),
        *("--baseline", "baseline", "--shared-items", "0", "--items-per-worker", "4"),
        *("--max-active-workers", "12"),
        stdout=io.StringIO(),
    )
    assert Round.objects.get().max_active_workers == 12
