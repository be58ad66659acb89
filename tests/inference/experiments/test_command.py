"""`manage.py experiment`: create (queued or here), show, export, cancel and resume."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inference.experiments.models import Experiment
from tests.support.openai_server import Reply

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("experiment", *args, stdout=out)
    return out.getvalue()


def test_it_runs_an_experiment_here_shows_and_exports_it(lab, base_model, judge_server, tmp_path):
    judge_server.responder = lambda request: Reply("Score: 2")
    common = ("--project", "lab")
    printed = run(
        "create", "size", *common, "--base-model", str(base_model),
        "--training-set", "2 examples=2k", "--training-set", "4 examples=4k",
        "--dev-set", "dev", "--judge", "chatgpt", "--axis", "size", "--samples", "1",
        "--set", "epochs=2", "--set", "select_from_epoch=1", "--set", "select_to_epoch=2",
        "--set", "batch_size=2", "--set", "max_length=64", "--set", "residual_dropout=0.0",
        "--set", "gradient_checkpointing=false", "--set", "selection_backend=transformers",
        "--sampling", '{"max_tokens": 4}', "--here",
    )  # fmt: skip
    assert "Experiment size: done" in printed
    assert "2k" in printed and "2/2   2.00" in printed
    shown = json.loads(run("show", "size", *common, "--json"))
    assert [(r["label"], r["mean"]) for r in shown["results"]] == [("2k", 2.0), ("4k", 2.0)]
    exported = run("export", "size", *common, "--out", str(tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "figure.png",
        "figure.svg",
        "results.csv",
    ]
    assert "wrote" in exported
    with pytest.raises(CommandError, match="is done"):
        run("resume", "size", *common)


def test_create_queues_by_default_and_cancel_stops_it(lab, base_model):
    printed = run(
        "create", "queued", "--project", "lab", "--base-model", str(base_model),
        "--training-set", "2 examples", "--dev-set", "dev", "--judge", "chatgpt",
    )  # fmt: skip
    experiment = Experiment.objects.get(name="queued")
    assert f"Experiment {experiment.pk} (queued) is queued" in printed
    assert "cancelled" in run("cancel", "queued", "--project", "lab")
    with pytest.raises(CommandError, match="create needs --base-model, --dev-set"):
        run("create", "other", "--project", "lab", "--training-set", "2 examples")
    with pytest.raises(CommandError, match="No experiment named 'nope'"):
        run("show", "nope", "--project", "lab")
