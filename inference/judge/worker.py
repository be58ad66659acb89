"""Executing a judge run on an `api` worker: every call not made yet, from a thread pool, with
the verdicts recorded through the one judgments service."""

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from annotation.models import Annotation, Item
from annotation.services.judgments import annotations_record_judgments
from annotation.services.ratings import RatingGiven, RatingInvalid, rating_value, ratings_record
from inference.clients.openai_compat import (
    MissingApiKey,
    OpenAICompatClient,
    RetryPolicy,
    StopSignal,
)
from inference.judge.calls import (
    CallJob,
    CallOutcome,
    RequestSettings,
    StructuredSwitch,
    ask,
    cache_key,
    judge_client,
)
from inference.judge.models import Judge, JudgeCache, JudgeCall, JudgeRun
from inference.judge.prompts import JudgeInvalid, Template, template_for
from inference.judge.verdicts import combine_orders
from inference.runs import Lease, heartbeat_seconds, lease_claim

logger = logging.getLogger(__name__)

Status = JudgeRun.Status
# Any run not held by a live worker may be claimed; a running one only once it is stale.
WAITING = (Status.QUEUED, Status.DONE, Status.FAILED)
LIVE = (Status.RUNNING,)
# Outcomes are written in batches, at most this often, so that the database keeps up; with
# nothing to write, the heartbeat alone is written this often (or more, for a short stale period).
WRITE_EVERY_SECONDS = 0.25
HEARTBEAT_EVERY_SECONDS = 10.0
TAKEN_OVER = "another worker took the run over"
# Passes over calls put back in line during a run, before it ends.
MORE_PASSES = 3

Progress = Callable[[JudgeRun], None]


def judge_run_execute(
    *, run_id: int, progress: Progress | None = None, task_id: str | None = None
) -> JudgeRun:
    """Make every call of the run that is not made yet, and record the verdicts.

    Safe to run twice: a run another worker is executing (fresh heartbeat) is left alone, and
    calls already done or failed are not made again; one whose worker died is taken over. A
    delivery of task `task_id` that finds an earlier delivery of it holding the run raises
    `LeaseBusy` (see `lease_claim`). Only the worker's own thread touches the database; the
    calls run on a thread pool.
    """
    now = timezone.now()
    lease = lease_claim(
        JudgeRun,
        run_id,
        claimable=WAITING,
        live=LIVE,
        status=Status.RUNNING,
        task_id=task_id,
        started_at=now,
        finished_at=None,
        message="",
    )
    if lease is None:
        return JudgeRun.objects.get(pk=run_id)
    run = JudgeRun.objects.select_related("judge", "round").get(pk=run_id)
    judge = run.judge
    try:
        template = template_for(judge.template_version, judge.mode)
        client = judge_client(judge)
    except (JudgeInvalid, MissingApiKey) as problem:
        lease.finish(Status.FAILED, str(problem), unless=())
        return JudgeRun.objects.get(pk=run_id)
    try:
        stop = _execute(run, template, client, lease, progress)
        # Calls put back in line while this pass ran ("retry failed") are made now.
        for _ in range(MORE_PASSES):
            if stop.is_set() or not run.calls.filter(status=JudgeCall.Status.PENDING).exists():
                break
            stop = _execute(run, template, client, lease, progress)
    except Exception as error:
        logger.exception("judge run %s stopped on an unexpected error", run_id)
        lease.finish(Status.FAILED, f"Stopped on an unexpected error: {error}", unless=())
        return JudgeRun.objects.get(pk=run_id)
    except BaseException:
        lease.finish(Status.FAILED, "Interrupted; start it again to go on.", unless=())
        raise
    finally:
        client.close()
    if stop.is_set():
        lease.finish(Status.FAILED, stop.reason, unless=())
    else:
        failed = run.calls.filter(status=JudgeCall.Status.FAILED).count()
        message = f"{failed} call{'s' if failed != 1 else ''} failed" if failed else ""
        lease.finish(Status.DONE, message, unless=())
    run.refresh_from_db()
    if progress:
        progress(run)
    return run


def _calls_ensure(run: JudgeRun) -> None:
    """Create the missing calls: each item in each order asked, or each response once."""
    existing_items = set(run.calls.values_list("item_id", "candidate_first"))
    existing_responses = set(run.calls.values_list("response_id", flat=True))
    new = []
    # Attention checks test people; gold items are judged too (a gold accuracy for the judge).
    judged = Item.objects.filter(round_id=run.round_id).exclude(check_kind=Item.Check.ATTENTION)
    items = judged.values_list(
        "id", "candidate_first", "candidate_response_id", "baseline_response_id", "response_id"
    )
    if run.judge.mode == Judge.Mode.PAIRWISE:
        for item_pk, candidate_first, *_ in items:
            orders = (
                (candidate_first, not candidate_first)
                if run.judge.both_orders
                else (candidate_first,)
            )
            new += [
                JudgeCall(run=run, item_id=item_pk, candidate_first=order)
                for order in orders
                if (item_pk, order) not in existing_items
            ]
    else:
        # A comparison's two answers, or a rated item's one.
        responses = dict.fromkeys(r for *_, c, b, rated in items for r in (c, b, rated) if r)
        new += [
            JudgeCall(run=run, response_id=pk) for pk in responses if pk not in existing_responses
        ]
    JudgeCall.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)


def _job_fields(call: JudgeCall) -> dict[str, str]:
    # A call has an item or a response, never both (the judge_call_item_or_response constraint).
    if call.item_id is None:
        response = call.response
        assert response is not None
        return {"question": response.prompt.shown_text, "answer": response.text}
    item = call.item
    assert item is not None and item.candidate_response and item.baseline_response
    candidate, baseline = item.candidate_response.text, item.baseline_response.text
    first, second = (candidate, baseline) if call.candidate_first else (baseline, candidate)
    return {"question": item.prompt.shown_text, "answer_a": first, "answer_b": second}


def _execute(
    run: JudgeRun,
    template: Template,
    client: OpenAICompatClient,
    lease: Lease,
    progress: Progress | None,
) -> StopSignal:
    judge = run.judge
    _calls_ensure(run)
    pending = list(
        run.calls.filter(status=JudgeCall.Status.PENDING).select_related(
            "item__prompt",
            "item__candidate_response",
            "item__baseline_response",
            "response__prompt",
        )
    )
    settings = RequestSettings(judge.model, template, judge.temperature, judge.max_tokens)
    structured = StructuredSwitch(judge.structured_output)
    jobs = [CallJob(call.pk, _job_fields(call)) for call in pending]
    jobs = _answer_from_cache(run, jobs, settings, structured)
    _finalize_items(run)
    _finalize_ratings(run)
    if progress:
        progress(run)

    stop = StopSignal()
    rng = random.Random()
    # Twice the in-flight limit: calls sleeping before a retry leave their slot to others.
    threads = 2 * judge.max_concurrency
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="judge") as pool:
        futures: set[Future[CallOutcome]] = {
            pool.submit(
                ask,
                job,
                client=client,
                settings=settings,
                structured=structured,
                stop=stop,
                policy=RetryPolicy(judge.max_attempts, rng=random.Random(rng.random())),
            )
            for job in jobs
        }
        written_at = time.monotonic()
        beat_every = min(HEARTBEAT_EVERY_SECONDS, heartbeat_seconds())
        try:
            while futures:
                done, futures = wait(
                    futures, timeout=WRITE_EVERY_SECONDS, return_when=ALL_COMPLETED
                )
                if done or time.monotonic() - written_at > beat_every:
                    # A worker that lost the run stops sending calls: the new holder makes them.
                    if not _write_outcomes(run, [f.result() for f in done], lease):
                        stop.set(TAKEN_OVER)
                    written_at = time.monotonic()
                if done and progress:
                    progress(run)
        except BaseException:
            stop.set("the worker stopped")
            raise
    return stop


def _answer_from_cache(
    run: JudgeRun, jobs: list[CallJob], settings: RequestSettings, structured: StructuredSwitch
) -> list[CallJob]:
    """Fill the calls whose exact request was answered before; returns the others."""
    bodies = {job.call_id: settings.body(job.fields, structured=structured.on) for job in jobs}
    keys = {call_id: cache_key(body, settings.template.version) for call_id, body in bodies.items()}
    hits: dict[str, JudgeCache] = {}
    key_list = list(set(keys.values()))
    for start in range(0, len(key_list), 500):
        for cached in JudgeCache.objects.filter(key__in=key_list[start : start + 500]):
            hits[cached.key] = cached
    now = timezone.now()
    answered = []
    for call_id, key in keys.items():
        entry = hits.get(key)
        if entry is None:
            continue
        outcome = CallOutcome(
            call_id,
            JudgeCall.Status.DONE,
            request=bodies[call_id],
            raw_reply=entry.reply,
            verdict=entry.verdict,
            response_model=entry.response_model,
            prompt_tokens=entry.prompt_tokens,
            completion_tokens=entry.completion_tokens,
            cache_key=key,
        )
        answered.append(outcome)
    with transaction.atomic():
        for outcome in answered:
            _call_update(outcome, now, cached=True)
    answered_ids = {outcome.call_id for outcome in answered}
    return [job for job in jobs if job.call_id not in answered_ids]


def _call_update(outcome: CallOutcome, now: datetime, *, cached: bool = False) -> None:
    # One UPDATE per call: bulk_update's CASE expressions cost more than they save here.
    JudgeCall.objects.filter(pk=outcome.call_id).update(
        status=outcome.status,
        request=outcome.request,
        raw_reply=outcome.raw_reply,
        verdict=outcome.verdict,
        error=outcome.error,
        response_model=outcome.response_model,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        latency_seconds=outcome.latency_seconds,
        attempts=outcome.attempts,
        cached=cached,
        cache_key=outcome.cache_key,
        finished_at=now,
    )


def _cache_row(outcome: CallOutcome, judge: Judge) -> JudgeCache:
    return JudgeCache(
        key=outcome.cache_key,
        model=judge.model,
        template_version=judge.template_version,
        reply=outcome.raw_reply,
        verdict=outcome.verdict,
        response_model=outcome.response_model,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
    )


def _write_outcomes(run: JudgeRun, outcomes: list[CallOutcome], lease: Lease) -> bool:
    """One transaction per batch: the calls, the new cache entries, the finished items; False
    once the run is no longer this worker's."""
    now = timezone.now()
    finished = [o for o in outcomes if o.status != JudgeCall.Status.PENDING]
    done = [o for o in finished if o.status == JudgeCall.Status.DONE]
    with transaction.atomic():
        for outcome in finished:
            _call_update(outcome, now)
        # Another worker may have cached the same request a moment ago: its row stays.
        JudgeCache.objects.bulk_create(
            [_cache_row(o, run.judge) for o in done], ignore_conflicts=True
        )
        item_ids = JudgeCall.objects.filter(
            pk__in=[o.call_id for o in done], item__isnull=False
        ).values_list("item_id", flat=True)
        _finalize_items(run, set(item_ids))
        _finalize_ratings(run, [o.call_id for o in done])
        return lease.beat()


def _finalize_items(run: JudgeRun, item_ids: Iterable[int] | None = None) -> int:
    """Record the judge's annotation on every item whose calls are all done; returns how many."""
    if run.judge.mode != Judge.Mode.PAIRWISE:
        return 0
    calls = JudgeCall.objects.filter(run=run, item__isnull=False)
    if item_ids is not None:
        calls = calls.filter(item_id__in=list(item_ids))
    votes: dict[int, dict[bool, str]] = defaultdict(dict)
    complete: dict[int, bool] = defaultdict(lambda: True)
    for item_pk, order, status, verdict in calls.values_list(
        "item_id", "candidate_first", "status", "verdict"
    ):
        if status == JudgeCall.Status.DONE:
            assert order is not None  # A call with an item has its order (see JudgeCall).
            votes[item_pk][order] = verdict
        else:
            complete[item_pk] = False
    ready = [pk for pk in votes if complete[pk]]
    recorded = set(
        Annotation.objects.filter(
            item_id__in=ready, annotator_id=run.judge.annotator_id
        ).values_list("item_id", flat=True)
    )
    items = Item.objects.in_bulk([pk for pk in ready if pk not in recorded])
    judgments = []
    for item_pk, item in items.items():
        combined = combine_orders(votes[item_pk], inconsistent_as_tie=run.judge.inconsistent_as_tie)
        if combined.choice is not None:
            in_model_terms = {
                order: Annotation.model_choice(shown, order)
                for order, shown in votes[item_pk].items()
            }
            judgments.append((item, combined.choice, in_model_terms))
    annotations_record_judgments(annotator=run.judge.annotator, judgments=judgments)
    return len(judgments)


def _finalize_ratings(run: JudgeRun, call_ids: Iterable[int] | None = None) -> int:
    """Absolute modes: record the judge's rating of every response whose call is done (the
    project's ratings, beside the people's); returns how many are new."""
    if run.judge.mode == Judge.Mode.PAIRWISE:
        return 0
    calls = JudgeCall.objects.filter(run=run, status=JudgeCall.Status.DONE, response__isnull=False)
    if call_ids is not None:
        calls = calls.filter(pk__in=list(call_ids))
    scale = run.judge.mode
    given = []
    for response_pk, model_pk, question, verdict in calls.values_list(
        "response_id", "response__model_id", "response__prompt__external_id", "verdict"
    ):
        try:
            label, score = rating_value(scale, verdict)
        except RatingInvalid:
            # Made before the judge's mode was changed (the admin allows it): not this scale's.
            logger.warning("judge run %s: verdict %r is off the scale %s", run.pk, verdict, scale)
            continue
        given.append(
            RatingGiven(
                model_id=model_pk,
                question=question,
                scale=scale,
                label=label,
                score=score,
                response_id=response_pk,
            )
        )
    recorded = ratings_record(
        annotator=run.judge.annotator, ratings=given, source=f"judge run {run.pk}"
    )
    return recorded.created
