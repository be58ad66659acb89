"""A round created without a lease gets the CROWD_LEASE_SECONDS setting, whichever way in."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from annotation.models import Round
from tests.factories import make_model_with_responses, make_project, make_prompt_set, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab():
    user = make_user()
    project = make_project("lab", user)
    prompt_set = make_prompt_set(project, 3, name="s")
    for name in ("candidate", "baseline"):
        make_model_with_responses(project, prompt_set, name)
    return user, project, prompt_set


def create_round(*extra: str) -> Round:
    call_command(
        "create_round",
        *("--project", "lab", "--set", "s", "--candidate", "candidate", "--baseline", "baseline"),
        *("--shared-items", "0", *extra),
        stdout=StringIO(),
    )
    return Round.objects.get()


@override_settings(CROWD_LEASE_SECONDS=120)
def test_the_create_round_command_gives_the_setting_when_no_lease_is_asked(lab):
    assert create_round().lease_seconds == 120


@override_settings(CROWD_LEASE_SECONDS=120)
def test_the_create_round_command_gives_the_lease_asked(lab):
    assert create_round("--lease-seconds", "45").lease_seconds == 45


@override_settings(CROWD_LEASE_SECONDS=120)
def test_the_api_gives_the_setting_when_no_lease_is_sent(lab):
    user, project, prompt_set = lab
    client = APIClient()
    client.force_authenticate(user)
    models = {m.name: m.pk for m in project.models.all()}

    response = client.post(
        "/api/rounds/",
        {
            "project": project.pk,
            "prompt_set": prompt_set.pk,
            "candidate": models["candidate"],
            "baselines": [models["baseline"]],
            "shared_items": 0,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["lease_seconds"] == 120
    assert Round.objects.get().lease_seconds == 120
