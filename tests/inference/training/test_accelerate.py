"""The launcher for several GPUs, in its single-process form: the worker starts
`accelerate launch ... manage.py train --process RUN`, which trains and reports to the database
from its own process; the worker then selects and registers as usual."""

from pathlib import Path

import pytest
from django.db import connection

from inference.models import TrainingRun
from inference.training.services import training_run_launch
from inference.training.trainer import TrainingPlan
from inference.training.worker import accelerate_command, training_run_execute
from tests.support.training import FAST

pytestmark = pytest.mark.django_db(transaction=True)

SINGLE_PROCESS = {
    "launcher": "accelerate",
    "accelerate_config": "configs/accelerate/single_process.yaml",
    "num_processes": 1,
}


def database_url() -> str:
    """The test database, for the training process started by accelerate."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def test_the_worker_trains_through_accelerate_launch(lab, base_model, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url())
    run = training_run_launch(
        project=lab["project"],
        name="launched",
        training_set=lab["training_set"],
        base_model=str(base_model),
        dev_set=lab["dev_set"],
        judge=lab["judge"],
        recipe={**FAST, **SINGLE_PROCESS},
        enqueue=False,
    )

    run = training_run_execute(run_id=run.pk)

    assert run.status == TrainingRun.Status.DONE, run.message
    assert run.progress["step"] == run.progress["max_steps"] == 4
    assert run.scores.count() == 2
    command = accelerate_command(run, TrainingPlan.from_dict(run.plan["training"]))
    assert command[1:3] == ["launch", "--config_file"]
    assert command[3].endswith("configs/accelerate/single_process.yaml")
    assert command[-3:] == ["train", "--process", str(run.pk)]
    assert "Traceback" not in (Path(run.output_dir) / "train.log").read_text()


def test_a_failing_launch_reports_the_end_of_its_log(lab, base_model, monkeypatch):
    # Nothing listens on port 1: the training process cannot reach its database.
    monkeypatch.setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
    run = training_run_launch(
        project=lab["project"],
        name="broken",
        training_set=lab["training_set"],
        base_model=str(base_model),
        dev_set=lab["dev_set"],
        judge=lab["judge"],
        recipe={**FAST, **SINGLE_PROCESS},
        enqueue=False,
    )

    run = training_run_execute(run_id=run.pk)

    assert run.status == TrainingRun.Status.FAILED
    assert "accelerate launch exited with status" in run.message
    assert "train.log" in run.message
