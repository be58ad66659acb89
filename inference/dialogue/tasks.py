"""The answer task: thin, it takes a pending answer's id and calls the worker; sent to the
model's queue (`gpu`, `api` or `default`), like its generation tasks."""

from celery import shared_task

from inference.dialogue.worker import dialogue_reply_execute


@shared_task(
    name="inference.dialogue.tasks.dialogue_reply",
    acks_late=True,
    reject_on_worker_lost=True,
)
def dialogue_reply(turn_id: int) -> str:
    return dialogue_reply_execute(turn_id=turn_id)
