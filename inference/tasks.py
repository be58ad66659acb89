"""The sweeper, sent by `celery beat` every RUN_SWEEP_SECONDS: it re-queues the judge runs,
generation tasks and experiments whose task was lost (see `inference.runs.leases_requeue_lost`)."""

from celery import shared_task

from inference.experiments.services import experiments_requeue_lost
from inference.generation.services import generation_tasks_requeue_lost
from inference.judge.services import judge_runs_requeue_lost


@shared_task(name="inference.tasks.sweep_runs")
def sweep_runs() -> str:
    judged = judge_runs_requeue_lost()
    generated = generation_tasks_requeue_lost()
    experiments = experiments_requeue_lost()
    return f"re-queued {judged} judge runs, {generated} generation tasks, {experiments} experiments"
