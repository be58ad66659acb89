"""Quality control of a crowd round: check items, and excluding workers (with reasons).

Check items are gold items (real comparisons with an answer the researcher knows) and
attention checks (one answer asks to be chosen); in an absolute round, answers whose rating the
researcher knows, and an "answer" that asks for a given rating. Both are served at the round's
check rate, look like any other item, and are left out of every result. An excluded worker
keeps their annotations, which the results then leave out, and their comparison items open
again so that the round still reaches K annotations per item.
"""

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from annotation.models import (
    Annotation,
    Annotator,
    Item,
    LanguageModel,
    Rating,
    Response,
    Round,
    WorkerSession,
)
from annotation.scales import CROWD_SCALES
from annotation.selectors import WorkerChecks, round_worker_checks

# The stand-in model whose "answers" are the attention checks; its name says what it is.
ATTENTION_MODEL_NAME = "attention check (not a model)"
ATTENTION_TEXT = (
    "This is an attention check, not a real answer. To show that you are reading both answers "
    "carefully, please choose this answer as the better one, whatever the other answer says."
)
ATTENTION_RATING_TEXT = (
    "This is an attention check, not a real answer. To show that you are reading carefully, "
    "please rate this answer {name}, whatever the question asks."
)


class QualityInvalid(ValueError):
    """The check or exclusion cannot be applied as asked; the message says why."""


@dataclass(frozen=True)
class GoldAnswer:
    """One line of a gold file: the item (prompt id, and the baseline when there are several)."""

    line: int
    prompt_id: str
    answer: str
    baseline: str = ""


def _comparisons_only(round_: Round, what: str) -> None:
    if round_.is_absolute:
        raise QualityInvalid(
            f"{what} are made for comparisons; this round rates answers alone, so it has none."
        )


@transaction.atomic
def items_mark_gold(*, round_: Round, answers: list[GoldAnswer], source: str = "gold") -> int:
    """Make the named comparison items gold items with their known answer; all or nothing. In
    an absolute round an item is a model's answer (`baseline` names the model when the round
    rates several) and the answer is its rating."""
    items: dict[tuple[str, str], Item] = {}
    for item in Item.objects.filter(round=round_, check_kind="").select_related(
        "prompt", "baseline", "response__model"
    ):
        named = item.response.model if item.response is not None else item.baseline
        assert named is not None  # One or the other: the item_one_shape constraint.
        items[(item.prompt.external_id, named.name)] = item
    names = sorted({name for _, name in items})
    if round_.is_absolute:
        allowed = [value.value for value in CROWD_SCALES[round_.scale].values]
        field, which = "model", f"the round rates {', '.join(names)}"
        expected = f"one of {', '.join(allowed)}"
    else:
        allowed = ["candidate", "baseline", "tie"]
        field, which = "baseline", f"the round compares {', '.join(names)}"
        expected = "candidate, baseline or tie"
    problems, chosen = [], {}
    for gold in answers:
        where = f"{source}, line {gold.line}"
        if gold.answer not in allowed:
            problems.append(f"{where}: 'answer' must be {expected}, not {gold.answer!r}")
            continue
        name = gold.baseline or (names[0] if len(names) == 1 else "")
        if not name:
            problems.append(f"{where}: give '{field}' ({which})")
            continue
        marked = items.get((gold.prompt_id, name))
        if marked is None:
            missing = (
                f"no answer of {name!r} to prompt {gold.prompt_id!r}"
                if round_.is_absolute
                else f"no comparison of prompt {gold.prompt_id!r} against {name!r}"
            )
            problems.append(f"{where}: {missing} in this round")
        elif marked.is_shared:
            problems.append(
                f"{where}: prompt {gold.prompt_id!r} is in the shared set, which measures "
                "agreement; choose another item"
            )
        elif marked.pk in chosen:
            problems.append(f"{where}: prompt {gold.prompt_id!r} is marked twice")
        else:
            chosen[marked.pk] = gold.answer
    if problems:
        raise QualityInvalid("; ".join(problems))
    for answer in allowed:
        Item.objects.filter(pk__in=[pk for pk, a in chosen.items() if a == answer]).update(
            check_kind=Item.Check.GOLD, check_answer=answer
        )
    return len(chosen)


@transaction.atomic
def round_add_attention_checks(*, round_: Round, count: int, seed: int | None = None) -> int:
    """Add `count` attention items, each pairing a prompt's candidate answer with a request to
    be chosen; the answer expected is that request (the item's baseline side). In an absolute
    round the item is a request to be rated with the scale's first value."""
    if count < 0:
        raise QualityInvalid("The number of attention checks cannot be negative.")
    if round_.is_absolute:
        return _rated_attention_checks_add(round_=round_, count=count, seed=seed)
    comparisons = list(
        Item.objects.filter(round=round_, check_kind="", is_shared=False)
        .exclude(
            prompt__in=Item.objects.filter(round=round_, check_kind=Item.Check.ATTENTION).values(
                "prompt"
            )
        )
        .order_by("position")
        .values_list("prompt_id", "candidate_response_id")
        .distinct()
    )
    by_prompt = dict(comparisons)
    if count > len(by_prompt):
        raise QualityInvalid(
            f"Asked for {count} attention checks but only {len(by_prompt)} prompts of the round "
            "have none yet."
        )
    rng = random.Random(round_.seed if seed is None else seed)
    prompts = rng.sample(sorted(by_prompt), count)
    model, requests = _attention_requests(round_, prompts, ATTENTION_TEXT)
    start = (Item.objects.filter(round=round_).aggregate(last=Max("position"))["last"] or 0) + 1
    Item.objects.bulk_create(
        Item(
            round=round_,
            prompt_id=prompt_pk,
            baseline=model,
            candidate_response_id=by_prompt[prompt_pk],
            baseline_response_id=requests[prompt_pk],
            position=start + offset,
            candidate_first=rng.random() < 0.5,
            check_kind=Item.Check.ATTENTION,
            check_answer="baseline",
        )
        for offset, prompt_pk in enumerate(prompts)
    )
    return count


def _attention_requests(
    round_: Round, prompt_pks: list[int], text: str
) -> tuple[LanguageModel, dict[int, int]]:
    """The stand-in model, and its request for each prompt (made once per round): {prompt:
    response}."""
    model, _ = LanguageModel.objects.get_or_create(
        project_id=round_.project_id,
        name=ATTENTION_MODEL_NAME,
        defaults={"backend": LanguageModel.Backend.IMPORTED},
    )
    settings_key = f"attention-check-{round_.pk}"
    Response.objects.bulk_create(
        [
            Response(prompt_id=p, model=model, text=text, settings_key=settings_key)
            for p in prompt_pks
        ],
        ignore_conflicts=True,
    )
    return model, dict(
        Response.objects.filter(
            model=model, settings_key=settings_key, prompt_id__in=prompt_pks
        ).values_list("prompt_id", "pk")
    )


def _rated_attention_checks_add(*, round_: Round, count: int, seed: int | None) -> int:
    asked = CROWD_SCALES[round_.scale].values[0]
    checked = Item.objects.filter(round=round_, check_kind=Item.Check.ATTENTION).values("prompt")
    prompts = sorted(
        set(
            Item.objects.filter(round=round_, check_kind="", is_shared=False)
            .exclude(prompt__in=checked)
            .values_list("prompt_id", flat=True)
        )
    )
    if count > len(prompts):
        raise QualityInvalid(
            f"Asked for {count} attention checks but only {len(prompts)} prompts of the round "
            "have none yet."
        )
    rng = random.Random(round_.seed if seed is None else seed)
    chosen = rng.sample(prompts, count)
    _, requests = _attention_requests(round_, chosen, ATTENTION_RATING_TEXT.format(name=asked.name))
    start = (Item.objects.filter(round=round_).aggregate(last=Max("position"))["last"] or 0) + 1
    Item.objects.bulk_create(
        Item(
            round=round_,
            prompt_id=prompt_pk,
            response_id=requests[prompt_pk],
            position=start + offset,
            candidate_first=False,
            check_kind=Item.Check.ATTENTION,
            check_answer=asked.value,
        )
        for offset, prompt_pk in enumerate(chosen)
    )
    return count


QUALITY_SETTINGS = (
    "check_rate",
    "words_per_second",
    "exclude_gold_accuracy_below",
    "exclude_failed_checks_at_least",
    "exclude_too_fast_share_above",
    "screening",
    "block_after_failed_checks",
    "return_url",
)


@transaction.atomic
def round_set_quality(*, round_: Round, **changes: Any) -> Round:
    """Change the named quality settings (a rule set to None is not applied)."""
    unknown = sorted(set(changes) - set(QUALITY_SETTINGS))
    if unknown:
        raise QualityInvalid(f"Unknown quality settings: {', '.join(unknown)}.")
    rate = changes.get("check_rate", round_.check_rate)
    if rate is None or not 0 <= rate <= 0.5:
        raise QualityInvalid("The check rate is a share of each worker's items, from 0 to 0.5.")
    if changes.get("screening"):
        _comparisons_only(round_, "The comprehension check and its practice items")
    speed = changes.get("words_per_second", round_.words_per_second)
    if speed is None or speed <= 0:
        raise QualityInvalid("The reading speed must be above 0 words per second.")
    for name, label in (
        ("exclude_gold_accuracy_below", "gold accuracy"),
        ("exclude_too_fast_share_above", "share of answers too fast"),
    ):
        share = changes.get(name)
        if share is not None and not 0 <= share <= 1:
            raise QualityInvalid(f"The {label} rule is a share from 0 to 1.")
    for name in ("exclude_failed_checks_at_least", "block_after_failed_checks"):
        failed = changes.get(name)
        if failed is not None and failed < 1:
            raise QualityInvalid("A number of failed attention checks must be at least 1.")
    return_url = str(changes.get("return_url") or "").strip()
    if return_url and urlsplit(return_url).scheme not in ("https", "http"):
        raise QualityInvalid("The return URL must start with https:// (or http://).")
    if "return_url" in changes:
        changes["return_url"] = return_url
    if "screening" in changes:
        changes["screening"] = bool(changes["screening"])
    for name, value in changes.items():
        setattr(round_, name, value)
    round_.save(update_fields=list(changes))
    return round_


def _locked(session: WorkerSession) -> WorkerSession:
    return WorkerSession.objects.select_for_update().select_related("annotator").get(pk=session.pk)


def _counted_items(session: WorkerSession) -> Counter[int]:
    """The comparison (or rated) items whose K slots this crowd worker's answers fill."""
    answers = Rating if session.round.is_absolute else Annotation
    return Counter(
        answers.objects.filter(
            assignment__session=session, item__check_kind="", item__is_shared=False
        ).values_list("item_id", flat=True)
    )


@transaction.atomic
def worker_exclude(*, session: WorkerSession, reason: str) -> WorkerSession:
    """Leave the worker's annotations out of every result and open their items again."""
    reason = reason.strip()
    if not reason:
        raise QualityInvalid("Say why the worker is excluded.")
    session = (
        WorkerSession.objects.select_for_update().select_related("annotator").get(pk=session.pk)
    )
    if session.excluded_at is None and session.annotator.kind == Annotator.Kind.CROWD:
        Item.objects.filter(pk__in=list(_counted_items(session))).update(
            completed=F("completed") - 1, taken=F("taken") - 1
        )
    session.excluded_reason = reason
    session.excluded_at = session.excluded_at or timezone.now()
    session.save(update_fields=["excluded_reason", "excluded_at"])
    return session


@transaction.atomic
def worker_reinstate(*, session: WorkerSession) -> WorkerSession:
    """Count the worker again; their items may then hold more than K annotations."""
    session = (
        WorkerSession.objects.select_for_update().select_related("annotator").get(pk=session.pk)
    )
    if session.excluded_at is not None and session.annotator.kind == Annotator.Kind.CROWD:
        Item.objects.filter(pk__in=list(_counted_items(session))).update(
            completed=F("completed") + 1, taken=F("taken") + 1
        )
    session.excluded_reason = ""
    session.excluded_at = None
    session.save(update_fields=["excluded_reason", "excluded_at"])
    return session


def rule_violations(round_: Round, checks: WorkerChecks) -> list[str]:
    """Why the round's rules exclude this worker ([] when they pass)."""
    reasons = []
    rule = round_.exclude_gold_accuracy_below
    if rule is not None and checks.gold_seen and checks.gold_accuracy < rule:
        reasons.append(
            f"gold accuracy {checks.gold_accuracy:.0%} ({checks.gold_correct} of "
            f"{checks.gold_seen}) below {rule:.0%}"
        )
    failed_rule = round_.exclude_failed_checks_at_least
    if failed_rule is not None and checks.attention_failed >= failed_rule:
        reasons.append(f"{checks.attention_failed} failed attention checks (limit {failed_rule})")
    fast_rule = round_.exclude_too_fast_share_above
    if fast_rule is not None and checks.answered and checks.too_fast_share > fast_rule:
        reasons.append(
            f"{checks.too_fast} of {checks.answered} answers too fast to have read the item "
            f"({checks.too_fast_share:.0%}, limit {fast_rule:.0%})"
        )
    return reasons


def worker_block_if_due(*, session: WorkerSession, answered: Item) -> bool:
    """Stop the worker's items once they fail the round's number of attention checks.

    Their answers are excluded too; returns whether the worker is (now) blocked. Only an
    answer to an attention check can change the count, so others are not recounted.
    """
    limit = session.round.block_after_failed_checks
    if session.blocked_at is not None:
        return True
    if limit is None or session.annotator.kind != Annotator.Kind.CROWD:
        return False
    if answered.check_kind != Item.Check.ATTENTION:
        return False
    failed = round_worker_checks(session.round, session_pk=session.pk).get(session.pk)
    if failed is None or failed.attention_failed < limit:
        return False
    session = worker_exclude(
        session=session, reason=f"blocked: failed {failed.attention_failed} attention checks"
    )
    WorkerSession.objects.filter(pk=session.pk).update(blocked_at=timezone.now())
    return True


def round_apply_quality_rules(*, round_: Round) -> list[WorkerSession]:
    """Exclude every crowd worker the round's rules reject; returns those newly excluded."""
    checks = round_worker_checks(round_)
    excluded = []
    sessions = WorkerSession.objects.filter(
        round=round_, annotator__kind=Annotator.Kind.CROWD, excluded_at__isnull=True
    ).select_related("annotator")
    for session in sessions:
        reasons = rule_violations(round_, checks.get(session.pk, WorkerChecks()))
        if reasons:
            excluded.append(worker_exclude(session=session, reason="rules: " + "; ".join(reasons)))
    return excluded
