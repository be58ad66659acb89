"""Celery tasks for generation: thin, they take ids and call the service.

Each task is sent to its backend's queue (`gpu` for vLLM, `api` for OpenAI-compatible
endpoints, `default` for transformers) by `generation_launch`. Late acknowledgement: a task
whose worker dies is delivered again and makes only the responses still missing.
"""

from celery import shared_task

from inference import generation


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=0)
def generate_responses(task_id: int) -> str:
    return generation.generation_run_model(task_id=task_id)
