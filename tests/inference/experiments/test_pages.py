"""The experiment pages: the form, the live table, the figure and the CSV, for members only."""

import pytest
from django.urls import reverse

from inference.experiments.models import Experiment
from inference.experiments.worker import experiment_execute
from tests.factories import make_user
from tests.support.html_text import parsed
from tests.support.openai_server import Reply
from tests.support.training import FAST

pytestmark = pytest.mark.django_db


def visible_text(content: bytes) -> str:
    return " ".join(" ".join(parsed(content.decode()).text).split())


def test_it_creates_an_experiment_from_the_page_and_shows_its_progress(client, user, lab):
    client.force_login(user)
    page = client.post(
        reverse("experiments"),
        {
            "project": lab["project"].pk,
            "name": "quality",
            "base_model": "/models/llama-7b",
            "training_sets": [lab["small"].pk, lab["large"].pk],
            "labels": "unfiltered\nfiltered",
            "axis": "sets",
            "dev_set": lab["dev_set"].pk,
            "judge": lab["judge"].pk,
            "samples_per_prompt": 5,
        },
    )
    experiment = Experiment.objects.get()
    assert page["Location"] == reverse("experiment", args=[experiment.pk])
    assert list(experiment.arms.values_list("label", "examples")) == [
        ("unfiltered", 2),
        ("filtered", 4),
    ]
    html = client.get(page["Location"]).content
    text = visible_text(html)
    assert "Queued" in text and "unfiltered (2 examples) 2 not started 0 / 10" in text
    assert b'hx-trigger="every 3s"' in html
    assert "Cancel" in text


def test_a_refused_experiment_keeps_the_form_with_the_reasons(client, user, lab):
    client.force_login(user)
    page = client.post(
        reverse("experiments"),
        {
            "project": lab["project"].pk,
            "name": "quality",
            "base_model": "/models/llama-7b",
            "training_sets": [lab["small"].pk],
            "labels": "one\ntwo",
            "axis": "sets",
            "dev_set": lab["dev_set"].pk,
            "judge": lab["judge"].pk,
            "samples_per_prompt": 5,
            "recipe": '{"epochs": 0}',
        },
    )
    assert page.status_code == 200
    text = visible_text(page.content)
    assert "Give a label for each of the 1 training sets." in text and "recipe:" in text
    assert not Experiment.objects.exists()


def test_a_finished_experiment_shows_its_figure_and_csv_to_members_only(
    client, user, lab, base_model, judge_server
):
    from inference.experiments.services import experiment_create

    judge_server.responder = lambda request: Reply("Score: 5")
    experiment = experiment_create(
        project=lab["project"],
        name="<b>quantity</b>",
        base_model=str(base_model),
        dev_set=lab["dev_set"],
        judge=lab["judge"],
        training_sets=[lab["small"]],
        axis=Experiment.Axis.SIZE,
        samples_per_prompt=1,
        recipe=FAST,
        sampling={"max_tokens": 4},
        enqueue_task=False,
    )
    experiment_execute(experiment_id=experiment.pk)
    client.force_login(user)
    page = client.get(reverse("experiment", args=[experiment.pk]))
    assert b"hx-trigger" not in page.content
    assert b"<b>quantity</b>" not in page.content
    assert "Experiment <b>quantity</b>" in visible_text(page.content)
    figure = client.get(reverse("experiment-figure", args=[experiment.pk]))
    assert figure["Content-Type"] == "image/png" and figure.content.startswith(b"\x89PNG")
    exported = client.get(reverse("experiment-csv", args=[experiment.pk])).content.decode()
    assert exported.splitlines()[1].startswith("2 examples,2,2 examples,done,")
    client.force_login(make_user("outsider"))
    assert client.get(reverse("experiment", args=[experiment.pk])).status_code == 404
    assert client.get(reverse("experiment-csv", args=[experiment.pk])).status_code == 404
