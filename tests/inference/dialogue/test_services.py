"""A dialogue end to end in this process: messages, the model's answers through the
transformers backend with the whole conversation, labels as ratings, refusals."""

import pytest
from django.db import IntegrityError, transaction

from annotation.models import LanguageModel, Rating
from inference.dialogue.models import Dialogue, DialogueTurn
from inference.dialogue.selectors import dialogue_labels, dialogue_report
from inference.dialogue.services import (
    DialogueRefused,
    dialogue_label,
    dialogue_retry,
    dialogue_say,
    dialogue_start,
)
from inference.dialogue.worker import dialogue_reply_execute

pytestmark = pytest.mark.django_db


def say(dialogue: Dialogue, text: str, django_capture_on_commit_callbacks) -> DialogueTurn:
    # The answer's task is sent on commit; here it runs in this process instead.
    with django_capture_on_commit_callbacks(execute=False):
        answer = dialogue_say(dialogue=dialogue, text=text, by=dialogue.created_by)
    assert dialogue_reply_execute(turn_id=answer.pk) == "answered"
    answer.refresh_from_db()
    return answer


def test_a_person_talks_to_a_model_and_labels_each_answer(
    talker, user, django_capture_on_commit_callbacks
):
    dialogue = dialogue_start(project=talker["project"], model=talker["model"], user=user, turns=2)
    first = say(dialogue, "tell me a story about a cat", django_capture_on_commit_callbacks)
    assert first.status == DialogueTurn.Status.DONE and first.number == 1
    assert first.generation["backend"] == "transformers"
    dialogue.refresh_from_db()
    assert dialogue.status == Dialogue.Status.OPEN
    second = say(dialogue, "why is the ocean salty", django_capture_on_commit_callbacks)
    # The second answer saw the whole conversation: three messages, the last the person's.
    assert second.generation["seed"] != first.generation["seed"]
    dialogue.refresh_from_db()
    assert dialogue.status == Dialogue.Status.DONE and dialogue.finished_at is not None
    with pytest.raises(DialogueRefused, match="had its 2 turns"):
        dialogue_say(dialogue=dialogue, text="one more", by=user)

    dialogue_label(dialogue=dialogue, number=1, label="Excellent", by=user)
    dialogue_label(dialogue=dialogue, number=2, label="pass", by=user)
    dialogue_label(dialogue=dialogue, number=2, label="fail", by=user)  # changed their mind
    assert dialogue_labels(dialogue, dialogue.annotator) == {1: "excellent", 2: "fail"}
    stored = Rating.objects.get(turn=2)
    assert (stored.question, stored.annotator.kind, stored.model_id) == (
        dialogue.question,
        "author",
        talker["model"].pk,
    )
    with pytest.raises(DialogueRefused, match="no answer 3"):
        dialogue_label(dialogue=dialogue, number=3, label="pass", by=user)
    with pytest.raises(DialogueRefused, match="expected one of fail, pass, excellent"):
        dialogue_label(dialogue=dialogue, number=1, label="great", by=user)

    rows, tables = dialogue_report(talker["project"].pk)
    (row,) = rows
    assert (row.model, row.dialogues, row.answers, row.fails) == ("tiny-chat", 1, 2, 1)
    assert row.shares == {"fail": 50.0, "pass": 0.0, "excellent": 50.0}
    assert tables[0].group == "author"


def test_the_worker_sends_the_whole_conversation(
    talker, user, django_capture_on_commit_callbacks, monkeypatch
):
    from inference.dialogue import worker

    sent = []
    load = worker.backend_load

    def recording(backend, config):
        loaded = load(backend, config)
        generate = loaded.generate

        def generate_and_record(requests, sampling):
            sent.extend(request.messages for request in requests)
            return generate(requests, sampling)

        loaded.generate = generate_and_record
        return loaded

    # The real backend answers; this only keeps a copy of what it was sent.
    monkeypatch.setattr(worker, "backend_load", recording)
    dialogue = dialogue_start(project=talker["project"], model=talker["model"], user=user)
    first = say(dialogue, "hello there", django_capture_on_commit_callbacks)
    say(dialogue, "and then", django_capture_on_commit_callbacks)
    assert sent[1] == (
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "and then"},
    )


def test_a_failed_answer_is_shown_and_tried_again(talker, user, django_capture_on_commit_callbacks):
    model = talker["model"]
    model.config = {**model.config, "model": "/no/such/checkpoint"}
    model.save()
    dialogue = dialogue_start(project=talker["project"], model=model, user=user)
    with django_capture_on_commit_callbacks(execute=False):
        answer = dialogue_say(dialogue=dialogue, text="hello", by=user)
    assert dialogue_reply_execute(turn_id=answer.pk).startswith("failed")
    answer.refresh_from_db()
    assert answer.status == DialogueTurn.Status.FAILED and "/no/such/checkpoint" in answer.error
    with pytest.raises(DialogueRefused, match="try it again first"):
        dialogue_say(dialogue=dialogue, text="hello?", by=user)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        dialogue_retry(dialogue=dialogue, by=user)
    assert len(sent) == 1
    # A second delivery of an answer already being made leaves it alone.
    DialogueTurn.objects.filter(pk=answer.pk).update(status=DialogueTurn.Status.DONE)
    assert dialogue_reply_execute(turn_id=answer.pk) == "already answered or being answered"


def test_it_refuses_what_cannot_be_a_dialogue(talker, user, django_capture_on_commit_callbacks):
    imported = LanguageModel.objects.create(project=talker["project"], name="imported")
    with pytest.raises(DialogueRefused) as refused:
        dialogue_start(
            project=talker["project"], model=imported, user=user, turns=0,
            sampling={"temprature": 1},
        )  # fmt: skip
    for expected in ("imported answers only", "from 1 to 50", "Unknown sampling setting"):
        assert expected in str(refused.value)
    dialogue = dialogue_start(project=talker["project"], model=talker["model"], user=user)
    with pytest.raises(DialogueRefused, match="Write a message first"):
        dialogue_say(dialogue=dialogue, text="   ", by=user)
    with django_capture_on_commit_callbacks(execute=False):
        dialogue_say(dialogue=dialogue, text="hi", by=user)
    with pytest.raises(DialogueRefused, match="still answering"):
        dialogue_say(dialogue=dialogue, text="hi again", by=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        DialogueTurn.objects.create(dialogue=dialogue, index=2, role="assistant")


def test_the_worker_loads_the_model_once_for_the_whole_dialogue(
    talker, user, django_capture_on_commit_callbacks, monkeypatch
):
    import transformers

    from inference.backends.base import backends_release

    backends_release()  # As a new worker process: nothing loaded yet.
    loads = []
    real = transformers.AutoModelForCausalLM.from_pretrained

    def counting(*args, **kwargs):
        loads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", counting)
    dialogue = dialogue_start(project=talker["project"], model=talker["model"], user=user)
    for text in ("one", "two", "three"):
        say(dialogue, text, django_capture_on_commit_callbacks)
    assert loads == [talker["model"].config["model"]]
    backends_release()
    say(dialogue, "four", django_capture_on_commit_callbacks)
    assert len(loads) == 2


def test_an_answer_whose_task_was_lost_or_not_sent_can_be_tried_again(
    talker, user, django_capture_on_commit_callbacks, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from inference.runs import QueueUnavailable
    from tests.support.celery_process import broker_unreachable

    dialogue = dialogue_start(project=talker["project"], model=talker["model"], user=user)
    unreachable = broker_unreachable()
    sending = django_capture_on_commit_callbacks(execute=True)
    with unreachable, pytest.raises(QueueUnavailable), sending:
        dialogue_say(dialogue=dialogue, text="hello", by=user)
    answer = DialogueTurn.objects.get(role="assistant")
    assert answer.status == DialogueTurn.Status.FAILED and "unreachable" in answer.error
    dialogue.refresh_from_db()
    assert dialogue.status == Dialogue.Status.OPEN
    with django_capture_on_commit_callbacks(execute=False) as sent:
        dialogue_retry(dialogue=dialogue, by=user)
    assert len(sent) == 1
    # Sent, then lost (a broker restart): pending for good, until it is stale.
    with pytest.raises(DialogueRefused, match="No answer of this dialogue failed"):
        dialogue_retry(dialogue=dialogue, by=user)
    long_ago = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS + 1)
    DialogueTurn.objects.filter(pk=answer.pk).update(created_at=long_ago)
    answer.refresh_from_db()
    assert answer.is_stuck
    with django_capture_on_commit_callbacks(execute=False) as sent:
        dialogue_retry(dialogue=dialogue, by=user)
    assert len(sent) == 1
    assert dialogue_reply_execute(turn_id=answer.pk) == "answered"
