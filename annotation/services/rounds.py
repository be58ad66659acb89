"""Creating rounds and their comparison items."""

import logging
import random
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from annotation.models import (
    ROUND_SCALES,
    Item,
    LanguageModel,
    Project,
    PromptSet,
    RatingScale,
    Response,
    Round,
)
from annotation.services.display import texts_render

logger = logging.getLogger(__name__)


class RoundInvalid(ValueError):
    """The round cannot be created as asked; the message says what to change."""


@transaction.atomic
def round_create(
    *,
    project: Project,
    prompt_set: PromptSet,
    candidate: LanguageModel,
    baselines: Sequence[LanguageModel] = (),
    name: str = "",
    annotators_per_item: int = 1,
    shared_items: int = 50,
    items_per_worker: int = 100,
    lease_seconds: int | None = None,
    seed: int | None = None,
    text_format: str = Round.TextFormat.MARKDOWN,
    completion_url: str = "",
    max_active_workers: int | None = None,
    kind: str = Round.Kind.PAIRWISE,
    scale: str = "",
) -> Round:
    """A round and its items; the lease defaults to the CROWD_LEASE_SECONDS setting.

    `max_active_workers` caps the crowd workers at work at once (None: no cap). An absolute
    round (`kind`) rates every answer of the candidate and the baselines alone, on `scale`.
    """
    if lease_seconds is None:
        lease_seconds = settings.CROWD_LEASE_SECONDS
    _kind_check(kind=kind, scale=scale, prompt_set=prompt_set)
    if not baselines and kind == Round.Kind.PAIRWISE:
        raise RoundInvalid("Give at least one baseline.")
    if candidate in baselines:
        raise RoundInvalid(f"{candidate.name!r} cannot be both the candidate and a baseline.")
    for model in (candidate, *baselines):
        if model.project_id != project.pk:
            raise RoundInvalid(f"Model {model.name!r} belongs to another project.")
    if prompt_set.project_id != project.pk:
        raise RoundInvalid(f"Prompt set {prompt_set.name!r} belongs to another project.")
    if annotators_per_item < 1:
        raise RoundInvalid("Annotators per item must be at least 1.")
    if shared_items < 0:
        raise RoundInvalid("Shared items cannot be negative.")
    if items_per_worker < 1:
        raise RoundInvalid("Items per worker must be at least 1.")
    if text_format not in Round.TextFormat.values:
        raise RoundInvalid(
            f"Unknown text format {text_format!r}: use one of {', '.join(Round.TextFormat.values)}."
        )
    if completion_url.strip() and urlsplit(completion_url.strip()).scheme not in ("https", "http"):
        raise RoundInvalid("The completion URL must start with https:// (or http://).")
    if lease_seconds < 10:
        raise RoundInvalid("The lease must be at least 10 seconds.")
    if max_active_workers is not None and max_active_workers < 1:
        raise RoundInvalid("The cap on active workers must be at least 1 (or none).")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    round_ = Round.objects.create(
        project=project,
        name=name or _default_name(kind, scale, candidate, baselines),
        kind=kind,
        scale=scale,
        prompt_set=prompt_set,
        candidate=candidate,
        annotators_per_item=annotators_per_item,
        shared_items=shared_items,
        items_per_worker=items_per_worker,
        lease_seconds=lease_seconds,
        seed=seed,
        text_format=text_format,
        completion_url=completion_url.strip(),
        max_active_workers=max_active_workers,
    )
    round_.baselines.set(baselines)
    created = round_add_missing_items(round_=round_)
    # A model with a generation backend gets its responses when the round is launched.
    generated = not prompt_set.answers_fixed and any(
        m.backend != LanguageModel.Backend.IMPORTED for m in (candidate, *baselines)
    )
    if created == 0 and not generated:
        if round_.is_absolute:
            raise RoundInvalid(
                f"No prompt in {prompt_set.name!r} has a response from any of "
                f"{', '.join(repr(m.name) for m in (candidate, *baselines))}: import responses "
                "first."
            )
        raise RoundInvalid(
            f"No prompt in {prompt_set.name!r} has responses from both {candidate.name!r} and "
            f"any of {', '.join(repr(b.name) for b in baselines)}: import responses first."
        )
    shared_count = round_.items.filter(is_shared=True).count()
    if generated:
        per_prompt = len(baselines) + 1 if round_.is_absolute else len(baselines)
        possible = prompt_set.prompts.count() * per_prompt
        shared_count = max(shared_count, min(shared_items, possible))
    if items_per_worker < shared_count:
        raise RoundInvalid(
            f"Items per worker ({items_per_worker}) must be at least the shared set "
            f"({shared_count} items), since every worker annotates the whole shared set."
        )
    return round_


def _kind_check(*, kind: str, scale: str, prompt_set: PromptSet) -> None:
    if kind not in Round.Kind.values:
        raise RoundInvalid(
            f"Unknown round kind {kind!r}: use one of {', '.join(Round.Kind.values)}."
        )
    if kind == Round.Kind.PAIRWISE:
        if scale:
            raise RoundInvalid("A pairwise round has no scale; give one to an absolute round.")
        return
    if scale not in ROUND_SCALES:
        raise RoundInvalid(
            f"An absolute round needs a scale: one of {', '.join(ROUND_SCALES)}, not {scale!r}."
        )
    if scale == RatingScale.SAFETY and not prompt_set.sensitive:
        raise RoundInvalid(
            f"The safety question is asked of sensitive prompt sets only, and {prompt_set.name!r} "
            "is not marked sensitive."
        )


def _default_name(
    kind: str, scale: str, candidate: LanguageModel, baselines: Sequence[LanguageModel]
) -> str:
    if kind == Round.Kind.ABSOLUTE:
        rated = ", ".join(model.name for model in (candidate, *baselines))
        return f"{rated}: {RatingScale(scale).label}"
    return f"{candidate.name} vs {', '.join(b.name for b in baselines)}"


def round_add_missing_items(*, round_: Round) -> int:
    """Create an item for every (prompt, baseline) that has both responses and no item yet;
    in an absolute round, for every answer of the round's models that has none.

    Each model's responses are those made with the settings the round compares
    (`Round.response_keys`). Orders are drawn from the round's seed so that, over the round,
    half the items show the candidate as Answer A; the shared set is topped up to its size the
    same way.
    """
    if round_.is_absolute:
        return _rated_items_add(round_=round_)
    existing = set(round_.items.values_list("prompt_id", "baseline_id"))
    baseline_ids = list(round_.baselines.values_list("id", flat=True))
    responses = _round_responses(round_, [round_.candidate_id, *baseline_ids]).values_list(
        "id", "prompt_id", "model_id", "prompt__position"
    )
    by_prompt: dict[int, dict[int, int]] = {}
    positions: dict[int, int] = {}
    for response_pk, prompt_pk, model_pk, position in responses:
        by_prompt.setdefault(prompt_pk, {})[model_pk] = response_pk
        positions[prompt_pk] = position

    pairs = []
    for prompt_pk in sorted(by_prompt, key=positions.__getitem__):
        answers = by_prompt[prompt_pk]
        if round_.candidate_id not in answers:
            continue
        for baseline_pk in baseline_ids:
            if baseline_pk in answers and (prompt_pk, baseline_pk) not in existing:
                pairs.append(
                    (prompt_pk, baseline_pk, answers[round_.candidate_id], answers[baseline_pk])
                )
    if not pairs:
        return 0

    rng = random.Random(f"{round_.seed}:{len(existing)}")
    orders = Counter(round_.items.values_list("candidate_first", flat=True))
    total = len(existing) + len(pairs)
    candidate_first_needed = max(0, total // 2 + rng.randrange(total % 2 + 1) - orders[True])
    flags = [True] * min(candidate_first_needed, len(pairs))
    flags += [False] * (len(pairs) - len(flags))
    rng.shuffle(flags)

    shared_missing = max(0, round_.shared_items - round_.items.filter(is_shared=True).count())
    shared_indices = set(rng.sample(range(len(pairs)), min(shared_missing, len(pairs))))
    start = len(existing)
    Item.objects.bulk_create(
        [
            Item(
                round=round_,
                prompt_id=prompt_pk,
                baseline_id=baseline_pk,
                candidate_response_id=candidate_response,
                baseline_response_id=baseline_response,
                position=start + index,
                candidate_first=flags[index],
                is_shared=index in shared_indices,
            )
            for index, (prompt_pk, baseline_pk, candidate_response, baseline_response) in enumerate(
                pairs
            )
        ],
        batch_size=2000,
    )
    _texts_render_if_small(
        round_,
        prompt_pks={pair[0] for pair in pairs},
        response_pks={pk for pair in pairs for pk in pair[2:]},
    )
    return len(pairs)


def _round_responses(round_: Round, model_pks: Sequence[int]):
    """The responses of the prompt set that the round shows: each model's made with the
    settings the round compares."""
    compared = Q()
    for model_pk in model_pks:
        compared |= Q(model_id=model_pk, settings_key=round_.response_key(model_pk))
    return Response.objects.filter(prompt__prompt_set=round_.prompt_set_id).filter(compared)


def _rated_items_add(*, round_: Round) -> int:
    """One item for each answer of the round's models without one, in an order drawn from the
    round's seed, so that a worker's next answer is seldom to the same prompt; the shared set
    is topped up from them."""
    model_pks = [round_.candidate_id, *round_.baselines.values_list("id", flat=True)]
    existing = set(round_.items.values_list("response_id", flat=True))
    answers = [
        (response_pk, prompt_pk)
        for response_pk, prompt_pk in _round_responses(round_, model_pks)
        .order_by("prompt__position", "model_id")
        .values_list("id", "prompt_id")
        if response_pk not in existing
    ]
    if not answers:
        return 0
    rng = random.Random(f"{round_.seed}:{len(existing)}")
    rng.shuffle(answers)
    shared_missing = max(0, round_.shared_items - round_.items.filter(is_shared=True).count())
    shared_indices = set(rng.sample(range(len(answers)), min(shared_missing, len(answers))))
    start = len(existing)
    Item.objects.bulk_create(
        [
            Item(
                round=round_,
                prompt_id=prompt_pk,
                response_id=response_pk,
                position=start + index,
                candidate_first=False,
                is_shared=index in shared_indices,
            )
            for index, (response_pk, prompt_pk) in enumerate(answers)
        ],
        batch_size=2000,
    )
    _texts_render_if_small(
        round_,
        prompt_pks={prompt_pk for _, prompt_pk in answers},
        response_pks={response_pk for response_pk, _ in answers},
    )
    return len(answers)


def _texts_render_if_small(round_: Round, *, prompt_pks: set[int], response_pks: set[int]) -> None:
    if (
        round_.text_format == Round.TextFormat.MARKDOWN
        and len(prompt_pks) + len(response_pks) <= settings.ROUND_RENDER_MAX_TEXTS
    ):
        # Rendered now, once, so that the crowd path serves every item as stored. Larger
        # rounds render each text when first shown, or all at once with `render_texts`.
        texts_render(prompt_pks=prompt_pks, response_pks=response_pks)
