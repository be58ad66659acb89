"""An experiment created through the API is run by a real Celery worker on the `train` queue.

Locally the broker is kombu's filesystem transport; CI points CELERY_BROKER_URL at Redis.
"""

import pytest
from rest_framework.test import APIClient

from inference.experiments.models import Experiment
from tests.support.openai_server import Reply
from tests.support.training import FAST
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_experiment_posted_to_the_api_runs_on_the_train_worker(
    lab, user, base_model, judge_server, celery_worker
):
    judge_server.responder = lambda request: Reply("Score: 4")
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(
        "/api/experiments/",
        {
            "project": "lab",
            "name": "filtering",
            "base_model": str(base_model),
            "training_sets": ["2 examples", "4 examples"],
            "labels": ["unfiltered", "filtered"],
            "dev_set": "dev",
            "judge": "chatgpt",
            "samples_per_prompt": 1,
            "recipe": FAST,
            "sampling": {"max_tokens": 4},
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    experiment = Experiment.objects.get(pk=response.json()["id"])

    experiment = wait_until(experiment, lambda e: not e.is_active, seconds=180, every=0.5)

    assert experiment.status == Experiment.Status.DONE, experiment.message
    body = client.get(f"/api/experiments/{experiment.pk}/").json()
    assert [(arm["arm"], arm["scored"], arm["mean"]) for arm in body["results"]] == [
        ("unfiltered", 2, 4.0),
        ("filtered", 2, 4.0),
    ]
