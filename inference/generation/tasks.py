"""Celery tasks of generation: thin, they take ids and call the worker.

Each task is sent to its backend's queue (`gpu` for vLLM, `api` for OpenAI-compatible
endpoints, `default` for transformers) by `generation_launch`. Late acknowledgement: a task
whose worker dies is delivered again and makes only the responses still missing.
"""

from celery import shared_task

from inference.generation.worker import generation_run_model


@shared_task(
    name="inference.generation_tasks.generate_responses",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=0,
)
def generate_responses(task_id: int) -> str:
    return generation_run_model(task_id=task_id)
