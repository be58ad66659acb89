"""Actions on dialogues: start one, say the next message (its answer is made on a worker of the
model's queue), finish early, label an answer, try a failed answer again; compare two models'
dialogues that open with the same message.

The pages and the API call these. Labels are stored as the labeller's ratings of the dialogue's
turns: whoever labels (the person who spoke, or any author of the project for an imported
conversation) has their own label of each answer.
"""

import random
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from annotation.models import (
    Annotator,
    LanguageModel,
    Project,
    Prompt,
    PromptSet,
    Rating,
    Response,
    Round,
    conversation_text,
)
from annotation.services.ratings import RatingInvalid, rating_value
from annotation.services.rounds import RoundInvalid, round_create
from annotation.validators import MAX_TEXT_LENGTH
from inference.backends.base import QUEUES, BackendConfigError, SamplingSettings
from inference.dialogue.models import (
    Dialogue,
    DialogueComparison,
    DialogueStudy,
    DialogueTurn,
    new_token,
)
from inference.dialogue.selectors import dialogue_pairs, opening
from inference.dialogue.tasks import dialogue_reply
from inference.runs import QueueUnavailable, enqueue, new_task_id

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
    return Dialogue.objects.create(
        project=project,
        model=model,
        annotator=author(project, user),
        turns_planned=turns,
        sampling=dict(sampling or {}),
        seed=random.SystemRandom().randrange(2**31) if seed is None else seed,
        created_by=user,
    )


def author(project: Project, user: User | AnonymousUser) -> Annotator:
    """The signed-in person as an author of the project: who speaks, labels and compares."""
    if not isinstance(user, User):
        raise DialogueRefused("Sign in first.")
    annotator, _ = Annotator.objects.get_or_create(
        project=project,
        kind=Annotator.Kind.AUTHOR,
        name=user.get_username(),
        defaults={"user": user},
    )
    return annotator


# Who acts: a signed-in author (the research pages, the API), or a crowd worker's annotator
# (reached through their own dialogue's link).
Acting = User | AnonymousUser | Annotator


def acting(project: Project, by: Acting) -> Annotator:
    return by if isinstance(by, Annotator) else author(project, by)


def _speaker_check(dialogue: Dialogue, by: Acting) -> None:
    if not dialogue.is_live:
        raise DialogueRefused("An imported conversation is labelled, not continued.")
    if dialogue.annotator_id != acting(dialogue.project, by).pk:
        assert dialogue.annotator is not None  # A live dialogue has its speaker.
        raise DialogueRefused(
            f"Only {dialogue.annotator.name}, who started this dialogue, speaks in it."
        )


@transaction.atomic
def dialogue_say(*, dialogue: Dialogue, text: str, by: Acting) -> DialogueTurn:
    """The person's next message, and the model's answer to it queued; returns the answer's
    (pending) turn."""
    dialogue = (
        Dialogue.objects.select_for_update(of=("self",))
        .select_related("model", "project", "annotator")
        .get(pk=dialogue.pk)
    )
    _speaker_check(dialogue, by)
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
    # Sent once committed. If the broker is unreachable the answer is marked failed, so that it
    # can be tried again once the broker is back, and QueueUnavailable reaches the caller.
    queue = QUEUES[model.backend]

    def send() -> None:
        try:
            enqueue(dialogue_reply, answer.pk, task_id=new_task_id(), queue=queue)
        except QueueUnavailable:
            DialogueTurn.objects.filter(pk=answer.pk).update(
                status=DialogueTurn.Status.FAILED,
                error="The task queue is unreachable: try again once it is back.",
            )
            Dialogue.objects.filter(pk=answer.dialogue_id).update(status=Dialogue.Status.OPEN)
            raise

    transaction.on_commit(send)


@transaction.atomic
def dialogue_finish(*, dialogue: Dialogue, by: Acting) -> Dialogue:
    """End a live dialogue before its planned number of answers (it then counts as finished,
    for comparisons too)."""
    dialogue = (
        Dialogue.objects.select_for_update(of=("self",))
        .select_related("project", "annotator")
        .get(pk=dialogue.pk)
    )
    _speaker_check(dialogue, by)
    if dialogue.status == Dialogue.Status.DONE:
        return dialogue
    if dialogue.status == Dialogue.Status.REPLYING:
        raise DialogueRefused("The model is still answering: finish once its answer is there.")
    done = dialogue.turns.filter(role=DialogueTurn.Role.ASSISTANT, status=DialogueTurn.Status.DONE)
    if not done.exists():
        raise DialogueRefused("The model has not answered yet: there is nothing to finish.")
    # A failed last answer (and the message it answers) are dropped: the dialogue ends on the
    # last answer the model gave.
    last = done.order_by("-index").values_list("index", flat=True)[0]
    dialogue.turns.filter(index__gt=last).delete()
    dialogue.status = Dialogue.Status.DONE
    dialogue.finished_at = timezone.now()
    dialogue.save(update_fields=["status", "finished_at"])
    return dialogue


@transaction.atomic
def dialogue_retry(*, dialogue: Dialogue, by: Acting) -> DialogueTurn:
    """Queue the model's failed (or stuck) answer again."""
    dialogue = (
        Dialogue.objects.select_for_update(of=("self",))
        .select_related("model", "project", "annotator")
        .get(pk=dialogue.pk)
    )
    _speaker_check(dialogue, by)
    last = dialogue.turns.filter(role=DialogueTurn.Role.ASSISTANT).last()
    # A failed answer, or one whose task was lost or whose worker went quiet.
    failed = last if last is not None and (last.status == "failed" or last.is_stuck) else None
    if failed is None:
        raise DialogueRefused("No answer of this dialogue failed.")
    DialogueTurn.objects.filter(pk=failed.pk).update(
        status=DialogueTurn.Status.PENDING, error="", started_at=None
    )
    Dialogue.objects.filter(pk=dialogue.pk).update(status=Dialogue.Status.REPLYING)
    _queue(failed, dialogue.model)
    return failed


@transaction.atomic
def dialogue_label(*, dialogue: Dialogue, number: int, label: str, by: Acting) -> Rating:
    """The person acting labels the model's `number`-th answer (from 1) Fail, Pass or
    Excellent; a new label of the same answer by the same person replaces the old one."""
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
        annotator=acting(dialogue.project, by),
        model=dialogue.model,
        response=None,
        question=dialogue.question,
        turn=number,
        scale=SCALE,
        defaults={"label": value, "score": None, "source": f"dialogue {dialogue.pk}"},
    )
    return rating


Choice = DialogueComparison.Choice
SIDES = {"left", "right", "neither"}


@transaction.atomic
def dialogue_compare(
    *,
    left: Dialogue,
    right: Dialogue,
    choice: str,
    by: Acting,
    seconds_spent: float | None = None,
) -> DialogueComparison:
    """The signed-in person's verdict on two models' dialogues shown side by side: `left`,
    `right` or `neither` is better. A new verdict on the same two replaces the old one."""
    problems = []
    if choice not in SIDES:
        problems.append(f"Choose left, right or neither, not {choice!r}.")
    if left.project_id != right.project_id:
        problems.append("The two dialogues belong to different projects.")
    if left.model_id == right.model_id:
        problems.append("The two dialogues are of the same model: compare two models.")
    if left.status != Dialogue.Status.DONE or right.status != Dialogue.Status.DONE:
        problems.append("Both dialogues must be finished.")
    if not problems and opening(left).strip() != opening(right).strip():
        problems.append("The two dialogues open with different messages.")
    if problems:
        raise DialogueRefused(" ".join(problems))
    first, second = sorted((left, right), key=lambda dialogue: dialogue.pk)
    chosen = {"left": left, "right": right}.get(choice)
    verdict = (
        Choice.NEITHER if chosen is None else Choice.FIRST if chosen == first else Choice.SECOND
    )
    comparison, _ = DialogueComparison.objects.update_or_create(
        annotator=acting(left.project, by),
        first=first,
        second=second,
        defaults={
            "project_id": left.project_id,
            "first_on_left": first == left,
            "choice": verdict,
            "seconds_spent": seconds_spent,
        },
    )
    return comparison


@transaction.atomic
def dialogue_round_create(
    *,
    project: Project,
    models: Sequence[LanguageModel],
    name: str,
    annotators_per_item: int = 1,
    shared_items: int = 0,
    items_per_worker: int = 100,
    completion_url: str = "",
) -> Round:
    """An absolute round in which crowd workers (or a judge) label every answer of the models'
    finished dialogues Fail / Pass / Excellent, turn by turn, with all of the crowd machinery.

    Each answer becomes a prompt of a new prompt set named after the round, whose text is the
    conversation up to the person's message it answers (so the crowd and a judge read the same
    conversation), and a response of its model. Their labels count in the dialogue report
    beside the authors'.
    """
    models = list(dict.fromkeys(models))
    if not models:
        raise DialogueRefused("Choose at least one model whose dialogues are labelled.")
    name, set_name = _round_names(project, name, "dialogue turns")
    dialogues = list(
        Dialogue.objects.filter(project=project, model__in=models, status=Dialogue.Status.DONE)
        .select_related("model")
        .prefetch_related("turns")
        .order_by("pk")
    )
    if not dialogues:
        names = ", ".join(model.name for model in models)
        raise DialogueRefused(f"{names}: no finished dialogue to label.")
    prompt_set = PromptSet.objects.create(project=project, name=set_name, answers_fixed=True)
    prompts: list[Prompt] = []
    answers: list[tuple[Dialogue, DialogueTurn]] = []
    for dialogue in dialogues:
        turns = sorted(dialogue.turns.all(), key=lambda turn: turn.index)
        for answer in turns:
            if (
                answer.role != DialogueTurn.Role.ASSISTANT
                or answer.status != DialogueTurn.Status.DONE
            ):
                continue
            text = transcript(dialogue.system, [t for t in turns if t.index < answer.index])
            if len(text) > MAX_TEXT_LENGTH:
                raise DialogueRefused(
                    f"Dialogue {dialogue.pk}, answer {answer.number}: the conversation before it "
                    f"takes {len(text):,} characters, more than the {MAX_TEXT_LENGTH:,} a prompt "
                    "may have."
                )
            prompts.append(
                Prompt(
                    prompt_set=prompt_set,
                    external_id=f"dialogue-{dialogue.pk}-{answer.number}",
                    position=len(prompts),
                    text=text,
                    extra={"dialogue": dialogue.pk, "turn": answer.number},
                )
            )
            answers.append((dialogue, answer))
    created = Prompt.objects.bulk_create(prompts, batch_size=2000)
    Response.objects.bulk_create(
        [
            Response(
                prompt=prompt,
                model=dialogue.model,
                text=answer.text,
                generation={"dialogue": dialogue.pk, "turn": answer.number, **answer.generation},
            )
            for prompt, (dialogue, answer) in zip(created, answers, strict=True)
        ],
        batch_size=2000,
    )
    labelled = [model for model in models if any(d.model_id == model.pk for d in dialogues)]
    try:
        return round_create(
            project=project,
            prompt_set=prompt_set,
            candidate=labelled[0],
            baselines=labelled[1:],
            name=name,
            annotators_per_item=annotators_per_item,
            shared_items=shared_items,
            items_per_worker=items_per_worker,
            completion_url=completion_url,
            kind=Round.Kind.ABSOLUTE,
            scale=SCALE,
        )
    except RoundInvalid as invalid:
        raise DialogueRefused(str(invalid)) from None


@transaction.atomic
def dialogue_pairs_round_create(
    *,
    project: Project,
    model_a: LanguageModel,
    model_b: LanguageModel,
    name: str,
    annotators_per_item: int = 1,
    shared_items: int = 0,
    items_per_worker: int = 100,
    completion_url: str = "",
) -> Round:
    """A pairwise round over two models' dialogues that open with the same message: the crowd
    (or a judge) sees the opening message as the question and each model's dialogue after it
    as an answer, in drawn positions, and says which is better, as in any pairwise round; its
    report is the round's. `model_a` is the round's candidate."""
    if model_a == model_b:
        raise DialogueRefused("Choose two different models.")
    name, set_name = _round_names(project, name, "dialogue pairs")
    pairs = dialogue_pairs(project.pk, model_a, model_b)
    if not pairs:
        raise DialogueRefused(
            f"{model_a.name} and {model_b.name} have no finished dialogues that open with the "
            "same message."
        )
    prompt_set = PromptSet.objects.create(project=project, name=set_name, answers_fixed=True)
    responses = []
    for position, pair in enumerate(pairs):
        first_turns = sorted(pair.first.turns.all(), key=lambda turn: turn.index)
        prompt = Prompt.objects.create(
            prompt_set=prompt_set,
            external_id=f"dialogues-{pair.first.pk}-{pair.second.pk}",
            position=position,
            text=first_turns[0].text,
            extra={"dialogues": [pair.first.pk, pair.second.pk]},
        )
        for dialogue in (pair.first, pair.second):
            turns = sorted(dialogue.turns.all(), key=lambda turn: turn.index)
            text = conversation_text(
                [turn.text for turn in turns[1:]], dialogue.system, model_first=True
            )
            if len(text) > MAX_TEXT_LENGTH:
                raise DialogueRefused(
                    f"Dialogue {dialogue.pk} takes {len(text):,} characters after its opening, "
                    f"more than the {MAX_TEXT_LENGTH:,} an answer may have."
                )
            responses.append(
                Response(
                    prompt=prompt,
                    model=dialogue.model,
                    text=text,
                    generation={"dialogue": dialogue.pk},
                )
            )
    Response.objects.bulk_create(responses, batch_size=2000)
    try:
        return round_create(
            project=project,
            prompt_set=prompt_set,
            candidate=model_a,
            baselines=[model_b],
            name=name,
            annotators_per_item=annotators_per_item,
            shared_items=shared_items,
            items_per_worker=items_per_worker,
            completion_url=completion_url,
        )
    except RoundInvalid as invalid:
        raise DialogueRefused(str(invalid)) from None


def _round_names(project: Project, name: str, kind: str) -> tuple[str, str]:
    """The round's name and its new prompt set's ("KIND: NAME"), refused if taken or blank."""
    name = name.strip()
    if not name:
        raise DialogueRefused("Name the round.")
    set_name = f"{kind}: {name}"
    if PromptSet.objects.filter(project=project, name=set_name).exists():
        raise DialogueRefused(f"The project already has a prompt set named {set_name!r}.")
    return name, set_name


def transcript(system: str, turns: Sequence[DialogueTurn]) -> str:
    """The conversation before an answer as one Markdown text (as a multi-turn prompt is
    shown)."""
    return conversation_text([turn.text for turn in turns], system)


@transaction.atomic
def study_create(
    *,
    project: Project,
    models: Sequence[LanguageModel],
    name: str,
    user: User | AnonymousUser | None,
    turns: int = 5,
    completion_url: str = "",
    max_workers: int | None = None,
) -> DialogueStudy:
    """A study in which crowd workers talk to the models live, through the study's link."""
    models = list(dict.fromkeys(models))
    problems = []
    if not models:
        problems.append("Choose at least one model to talk to.")
    for model in models:
        if model.project_id != project.pk:
            problems.append(f"Model {model.name!r} belongs to another project.")
        if model.backend == LanguageModel.Backend.IMPORTED:
            problems.append(f"Model {model.name!r} has imported answers only: it cannot talk.")
    name = name.strip()
    if not name:
        problems.append("Name the study.")
    elif DialogueStudy.objects.filter(project=project, name=name).exists():
        problems.append(f"The project already has a dialogue study named {name!r}.")
    if not 1 <= turns <= 50:
        problems.append("A dialogue has from 1 to 50 answers of the model.")
    if max_workers is not None and max_workers < 1:
        problems.append("The cap on workers must be at least 1 (or none).")
    if completion_url and not completion_url.startswith(("https://", "http://")):
        problems.append("The completion URL must start with https:// or http://.")
    if problems:
        raise DialogueRefused(" ".join(problems))
    study = DialogueStudy.objects.create(
        project=project,
        name=name,
        turns=turns,
        completion_url=completion_url,
        max_workers=max_workers,
        created_by=user if isinstance(user, User) else None,
    )
    study.language_models.set(models)
    return study


WORKER_ID_MAX = 200


@transaction.atomic
def study_join(*, study: DialogueStudy, worker_id: str) -> tuple[Dialogue, bool]:
    """The crowd worker's dialogue in the study and whether it is new: the one they started
    (the caller checks it is their browser that resumes it), or a new one with the model that
    has the fewest dialogues in the study. Nothing is written for a refused worker."""
    worker_id = worker_id.strip()
    if not worker_id or len(worker_id) > WORKER_ID_MAX or not worker_id.isprintable():
        raise DialogueRefused(f"Give your worker id (at most {WORKER_ID_MAX} characters).")
    study = DialogueStudy.objects.select_for_update().get(pk=study.pk)
    mine = Dialogue.objects.filter(
        study=study, annotator__kind=Annotator.Kind.CROWD, annotator__name=worker_id
    ).first()
    if mine is not None:
        return mine, False
    if not study.is_open:
        raise DialogueRefused("This study is closed.")
    if study.max_workers is not None and study.dialogues.count() >= study.max_workers:
        raise DialogueRefused("This study has all the workers it needs: thank you.")
    models = list(study.language_models.order_by("pk"))
    if not models:
        raise DialogueRefused("This study has no model to talk to.")
    held = dict(
        study.dialogues.values("model_id")
        .annotate(count=Count("pk"))
        .values_list("model_id", "count")
    )
    model = min(models, key=lambda m: (held.get(m.pk, 0), m.pk))
    annotator, _ = Annotator.objects.get_or_create(
        project_id=study.project_id, kind=Annotator.Kind.CROWD, name=worker_id
    )
    dialogue = Dialogue.objects.create(
        project_id=study.project_id,
        model=model,
        annotator=annotator,
        study=study,
        token=new_token(),
        turns_planned=study.turns,
        seed=random.SystemRandom().randrange(2**31),
    )
    return dialogue, True
