"""Actions on dialogues: start one, say the next message (its answer is made on a worker of the
model's queue), label an answer, try a failed answer again.

The page and the API call these. Labels are stored as the annotator's ratings of the dialogue's
turns, through the one service every rating goes through.
"""

import random
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction

from annotation.models import Annotator, LanguageModel, Project, Rating
from annotation.services.ratings import RatingInvalid, rating_value
from inference.backends.base import QUEUES, BackendConfigError, SamplingSettings
from inference.dialogue.models import Dialogue, DialogueTurn
from inference.dialogue.tasks import dialogue_reply
from inference.runs import enqueue, new_task_id

MAX_MESSAGE_CHARACTERS = 20_000
SCALE = Rating.Scale.FAIL_PASS_EXCELLENT


class DialogueRefused(ValueError):
    """The dialogue cannot go on as asked; the message says why."""


@transaction.atomic
def dialogue_start(
    *,
    project: Project,
    model: LanguageModel,
    user: User | AnonymousUser,
    turns: int = 5,
    sampling: dict[str, Any] | None = None,
    seed: int | None = None,
) -> Dialogue:
    """A dialogue of the signed-in person (an author of the project) with a model."""
    problems = []
    if model.project_id != project.pk:
        problems.append(f"Model {model.name!r} belongs to another project.")
    if model.backend == LanguageModel.Backend.IMPORTED:
        problems.append(
            f"Model {model.name!r} has imported answers only: talking to it needs a generation "
            "backend (vLLM, an OpenAI-compatible endpoint or transformers)."
        )
    if not 1 <= turns <= 50:
        problems.append("A dialogue has from 1 to 50 answers of the model.")
    try:
        SamplingSettings.from_overrides(model.config.get("sampling"), sampling)
    except (BackendConfigError, TypeError) as problem:
        problems.append(f"sampling: {problem}")
    if not isinstance(user, User):
        problems.append("Sign in to talk to a model.")
    if problems:
        raise DialogueRefused(" ".join(problems))
    assert isinstance(user, User)  # Refused above otherwise.
    annotator, _ = Annotator.objects.get_or_create(
        project=project,
        kind=Annotator.Kind.AUTHOR,
        name=user.get_username(),
        defaults={"user": user},
    )
    return Dialogue.objects.create(
        project=project,
        model=model,
        annotator=annotator,
        turns_planned=turns,
        sampling=dict(sampling or {}),
        seed=random.SystemRandom().randrange(2**31) if seed is None else seed,
        created_by=user,
    )


@transaction.atomic
def dialogue_say(*, dialogue: Dialogue, text: str) -> DialogueTurn:
    """The person's next message, and the model's answer to it queued; returns the answer's
    (pending) turn."""
    dialogue = Dialogue.objects.select_for_update().select_related("model").get(pk=dialogue.pk)
    if dialogue.status == Dialogue.Status.REPLYING:
        raise DialogueRefused("The model is still answering your last message.")
    answers = dialogue.turns.filter(role=DialogueTurn.Role.ASSISTANT).count()
    if dialogue.status == Dialogue.Status.DONE or answers >= dialogue.turns_planned:
        raise DialogueRefused(f"This dialogue has had its {dialogue.turns_planned} turns.")
    if dialogue.turns.filter(status=DialogueTurn.Status.FAILED).exists():
        raise DialogueRefused("The model's last answer failed: try it again first.")
    if not text.strip():
        raise DialogueRefused("Write a message first.")
    if len(text) > MAX_MESSAGE_CHARACTERS:
        raise DialogueRefused(f"A message has at most {MAX_MESSAGE_CHARACTERS:,} characters.")
    index = dialogue.turns.count()
    DialogueTurn.objects.create(
        dialogue=dialogue, index=index, role=DialogueTurn.Role.USER, text=text
    )
    answer = DialogueTurn.objects.create(
        dialogue=dialogue,
        index=index + 1,
        role=DialogueTurn.Role.ASSISTANT,
        status=DialogueTurn.Status.PENDING,
    )
    Dialogue.objects.filter(pk=dialogue.pk).update(status=Dialogue.Status.REPLYING)
    _queue(answer, dialogue.model)
    return answer


def _queue(answer: DialogueTurn, model: LanguageModel) -> None:
    # Sent once committed: if the broker is unreachable this raises QueueUnavailable, and the
    # answer can be tried again once it is back.
    queue = QUEUES[model.backend]
    transaction.on_commit(
        lambda: enqueue(dialogue_reply, answer.pk, task_id=new_task_id(), queue=queue)
    )


@transaction.atomic
def dialogue_retry(*, dialogue: Dialogue) -> DialogueTurn:
    """Queue the model's failed answer again."""
    dialogue = Dialogue.objects.select_for_update().select_related("model").get(pk=dialogue.pk)
    failed = dialogue.turns.filter(status=DialogueTurn.Status.FAILED).last()
    if failed is None:
        raise DialogueRefused("No answer of this dialogue failed.")
    DialogueTurn.objects.filter(pk=failed.pk).update(
        status=DialogueTurn.Status.PENDING, error="", started_at=None
    )
    Dialogue.objects.filter(pk=dialogue.pk).update(status=Dialogue.Status.REPLYING)
    _queue(failed, dialogue.model)
    return failed


@transaction.atomic
def dialogue_label(*, dialogue: Dialogue, number: int, label: str) -> Rating:
    """Label the model's `number`-th answer (from 1) Fail, Pass or Excellent; a new label of the
    same answer replaces the old one."""
    answer = dialogue.turns.filter(
        role=DialogueTurn.Role.ASSISTANT, index=2 * number - 1, status=DialogueTurn.Status.DONE
    ).first()
    if answer is None:
        raise DialogueRefused(f"The dialogue has no answer {number} to label yet.")
    try:
        value, _ = rating_value(SCALE, label)
    except RatingInvalid as invalid:
        raise DialogueRefused(f"Label: {invalid}.") from None
    rating, _ = Rating.objects.update_or_create(
        annotator=dialogue.annotator,
        model=dialogue.model,
        response=None,
        question=dialogue.question,
        turn=number,
        scale=SCALE,
        defaults={"label": value, "score": None, "source": f"dialogue {dialogue.pk}"},
    )
    return rating
