"""Answering a dialogue's pending turn: the model, through its generation backend, given the
whole conversation so far as chat messages, with the dialogue's sampling and a seed per turn.
A local model's weights (a vLLM engine, a transformers checkpoint) stay loaded in the worker
process between answers, as between generation tasks: only the first answer waits for them."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inference.backends.base import (
    BackendConfigError,
    GenerationRequest,
    SamplingSettings,
    backend_load,
    prompt_seed,
)
from inference.clients.openai_compat import MissingApiKey
from inference.dialogue.models import Dialogue, DialogueTurn

logger = logging.getLogger(__name__)
Status = DialogueTurn.Status


def dialogue_reply_execute(*, turn_id: int) -> str:
    """Write the model's answer; safe to run twice: an answer made or being made by a live
    worker is left alone (one whose worker went quiet is taken over)."""
    stale = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    claimed = (
        DialogueTurn.objects.filter(pk=turn_id)
        .filter(Q(status=Status.PENDING) | Q(status=Status.GENERATING, started_at__lt=stale))
        .update(status=Status.GENERATING, started_at=timezone.now())
    )
    if not claimed:
        return "already answered or being answered"
    answer = DialogueTurn.objects.select_related("dialogue__model").get(pk=turn_id)
    dialogue = answer.dialogue
    model = dialogue.model
    earlier = dialogue.turns.filter(index__lt=answer.index, status=Status.DONE).order_by("index")
    system = ({"role": "system", "content": dialogue.system},) if dialogue.system else ()
    messages = system + tuple({"role": turn.role, "content": turn.text} for turn in earlier)
    try:
        sampling = SamplingSettings.from_overrides(model.config.get("sampling"), dialogue.sampling)
        backend = backend_load(model.backend, model.config)
        request = GenerationRequest(
            key=answer.pk, messages=messages, seed=prompt_seed(dialogue.seed, answer.index)
        )
        results = list(backend.generate([request], sampling))
    except (BackendConfigError, MissingApiKey, OSError, ValueError, RuntimeError) as problem:
        logger.warning("dialogue %s: answer %s failed: %s", dialogue.pk, answer.pk, problem)
        _answered(answer, text=None, error=str(problem), details={})
        return f"failed: {problem}"
    result = results[0] if results else None
    if result is None or not result.ok:
        error = (result.error if result else "") or "no answer"
        _answered(answer, text=None, error=error, details={})
        return f"failed: {error}"
    details = {
        **backend.describe(sampling),
        **result.details,
        "seed": request.seed,
        "finish_reason": result.finish_reason,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
    }
    _answered(answer, text=result.text, error="", details=details)
    return "answered"


def _answered(answer: DialogueTurn, *, text: str | None, error: str, details: dict) -> None:
    """Write the answer (or why it failed) and open the dialogue for the next message."""
    with transaction.atomic():
        dialogue = Dialogue.objects.select_for_update().get(pk=answer.dialogue_id)
        DialogueTurn.objects.filter(pk=answer.pk).update(
            text=text or "",
            status=Status.DONE if text is not None else Status.FAILED,
            error=error,
            generation=details,
        )
        answers = dialogue.turns.filter(
            role=DialogueTurn.Role.ASSISTANT, status=Status.DONE
        ).count()
        finished = text is not None and answers >= dialogue.turns_planned
        Dialogue.objects.filter(pk=dialogue.pk).update(
            status=Dialogue.Status.DONE if finished else Dialogue.Status.OPEN,
            finished_at=timezone.now() if finished else None,
        )
