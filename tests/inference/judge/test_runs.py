"""The judge against a real local server speaking the OpenAI protocol, through the real client."""

import io
import json
import re
import time
from html import unescape

import pytest
from django.core.management import call_command
from django.template.loader import render_to_string

from annotation.models import Annotation, Annotator, Rating
from annotation.reports.ratings import rating_rows, rating_tables
from annotation.services.quality import GoldAnswer, items_mark_gold, round_add_attention_checks
from annotation.services.rounds import round_create
from inference.judge.calls import PARSE_ATTEMPTS
from inference.judge.prompts import JudgeInvalid
from inference.judge.selectors import run_progress, run_scores
from inference.judge.services import judge_run_retry_failed
from inference.judge.worker import _finalize_ratings
from inference.models import Judge, JudgeCache, JudgeCall, JudgeRun
from tests.factories import make_round
from tests.support.judging import (
    API_KEY,
    KEY_ENV,
    candidate_letter,
    make_judge,
    prefers_candidate,
    question_number,
    run_judge,
)
from tests.support.openai_server import (
    Reply,
    api_refusal,
    buried,
    dropped,
    garbage,
    json_verdict,
    rate_limited,
    refusal,
    server_error,
    slow,
    verdict,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("judge_api_key")]


def calls_of(run: JudgeRun, item=None):
    calls = JudgeCall.objects.filter(run=run)
    return calls.filter(item=item) if item is not None else calls


def judge_annotations(judge):
    return Annotation.objects.filter(annotator=judge.annotator)


def test_it_records_one_verdict_per_item_in_model_terms_from_both_orders(server):
    round_ = make_round(prompts=4)
    judge = make_judge(round_, server)
    run = run_judge(round_, judge)

    assert run.status == JudgeRun.Status.DONE, run.message
    assert judge.annotator.kind == Annotator.Kind.JUDGE and judge.annotator.name == "gpt-4"
    calls = calls_of(run)
    assert calls.count() == 8 and len(server.requests) == 8
    for item in round_.items.all():
        first, second = calls.filter(item=item).order_by("-candidate_first")
        assert (first.candidate_first, second.candidate_first) == (True, False)
        # The candidate is better in both orders: A when it is shown first, B otherwise.
        assert (first.verdict, second.verdict) == ("A", "B")
        annotation = judge_annotations(judge).get(item=item)
        assert annotation.choice == Annotation.Choice.CANDIDATE
        assert annotation.candidate_first == item.candidate_first
        assert annotation.shown_choice == ("A" if item.candidate_first else "B")
        assert annotation.order_votes == [[False, "candidate"], [True, "candidate"]]
    call = calls.first()
    assert call.status == JudgeCall.Status.DONE and call.attempts == 1 and not call.cached
    assert call.response_model == "gpt-4-0613"
    assert call.raw_reply.endswith(f"Verdict: {call.verdict}")
    assert call.prompt_tokens > 0 and call.completion_tokens > 0 and call.latency_seconds > 0
    assert call.request["model"] == "gpt-4" and call.request["temperature"] == 0.0
    progress = run_progress(run)
    assert (progress.done, progress.needed, progress.failed) == (8, 8, 0)
    assert progress.consistency_percent == 100 and progress.choices == {"candidate": 4}
    # Judges take no crowd slots.
    assert all(item.taken == item.completed == 0 for item in round_.items.all())


def _words(text: str) -> str:
    return " ".join(text.split())


def test_the_prompt_is_the_crowd_interface_text_word_for_word(server):
    round_ = make_round(prompts=1)
    run_judge(round_, make_judge(round_, server, both_orders=False))
    [request] = server.requests
    sent = _words(request.prompt)
    # The key hints (<kbd>1</kbd>) and the line about clicking are the page's, not the task's.
    page = re.sub(r"<kbd>.*?</kbd>", "", render_to_string("crowd/instructions.html"))
    instructions = unescape(re.sub(r"<[^>]+>", "", page))
    sentences = re.findall(r"[^.?:]+[.?:]", _words(instructions))
    interface = [s.strip() for s in sentences if "Click" not in s and "next item" not in s]
    assert len(interface) >= 8
    for sentence in interface:
        assert _words(sentence) in sent, sentence
    item = round_.items.get()
    first, second = (
        (item.candidate_response, item.baseline_response)
        if item.candidate_first
        else (item.baseline_response, item.candidate_response)
    )
    assert f"Question: {item.prompt.text}" in request.prompt
    assert f"Answer A: {first.text}\n\nAnswer B: {second.text}" in request.prompt
    assert request.prompt.endswith(
        'end your reply with a last line that reads exactly "Verdict: A", "Verdict: B" or '
        '"Verdict: Neither".'
    )
    assert [m["role"] for m in request.body["messages"]] == ["user"]


def test_it_reads_verdicts_buried_in_prose(server):
    round_ = make_round(prompts=3)
    server.responder = lambda request: buried(candidate_letter(request))
    run = run_judge(round_, make_judge(round_, server))
    assert calls_of(run).filter(status=JudgeCall.Status.DONE).count() == 6
    assert set(judge_annotations(run.judge).values_list("choice", flat=True)) == {"candidate"}


def test_refusals_and_garbage_are_failed_with_their_raw_reply_and_never_a_tie(server):
    round_ = make_round(prompts=4)
    faults = {0: refusal(), 1: garbage(), 2: api_refusal()}

    def responder(request):
        return faults.get(question_number(request)) or prefers_candidate(request)

    server.responder = responder
    run = run_judge(round_, make_judge(round_, server))

    assert run.status == JudgeRun.Status.DONE and run.message == "6 calls failed"
    failed = calls_of(run).filter(status=JudgeCall.Status.FAILED)
    assert failed.count() == 6
    for call in failed:
        assert call.verdict == "" and call.attempts == PARSE_ATTEMPTS
    refused = failed.filter(item__prompt__external_id="0").first()
    assert refused.raw_reply == refusal().content and refused.error == "no verdict in the reply"
    assert failed.filter(item__prompt__external_id="1").first().raw_reply == garbage().content
    api_refused = failed.filter(item__prompt__external_id="2").first()
    assert api_refused.error == "the model refused to judge"
    assert api_refused.raw_reply == "I can't assist with that."
    recorded = judge_annotations(run.judge)
    assert list(recorded.values_list("item__prompt__external_id", "choice")) == [("3", "candidate")]
    assert not JudgeCache.objects.filter(verdict="")


def test_it_retries_429_after_retry_after_500s_timeouts_and_dropped_connections(server):
    round_ = make_round(prompts=1)
    judge = make_judge(round_, server, both_orders=False, timeout_seconds=0.5, max_concurrency=1)
    server.script(rate_limited(retry_after=1), server_error(), slow(2), dropped())
    run = run_judge(round_, judge)

    [call] = calls_of(run)
    assert call.status == JudgeCall.Status.DONE and call.attempts == 5
    assert call.verdict == candidate_letter(server.requests[-1])
    # Statuses in the order answered: the slow reply comes after its request timed out.
    assert server.statuses[:2] == [429, 500] and 0 in server.statuses
    assert len(server.requests) == 5
    retry_after_waited = server.requests[1].at - server.requests[0].at
    assert retry_after_waited >= 1.0
    assert judge_annotations(judge).get().choice == Annotation.Choice.CANDIDATE


def test_a_judgment_that_keeps_failing_is_failed_after_the_last_attempt(server):
    round_ = make_round(prompts=2)
    judge = make_judge(round_, server, both_orders=False, max_attempts=3)

    def responder(request):
        return server_error() if question_number(request) == 0 else prefers_candidate(request)

    server.responder = responder
    run = run_judge(round_, judge)

    failed = calls_of(run).get(status=JudgeCall.Status.FAILED)
    assert failed.attempts == 3 and failed.item.prompt.external_id == "0"
    assert "HTTP 500" in failed.error and "gave up after 3 attempts" in failed.error
    assert sum(question_number(r) == 0 for r in server.requests) == 3
    assert judge_annotations(judge).count() == 1
    assert run_progress(run).failed == 1


def test_identical_requests_are_answered_from_the_cache_not_paid_twice(server):
    round_ = make_round(prompts=3)
    run_judge(round_, make_judge(round_, server))
    assert len(server.requests) == 6 and JudgeCache.objects.count() == 6

    # Another judge with the same model and template, on a round with the same texts.
    same_texts = round_create(
        project=round_.project,
        prompt_set=round_.prompt_set,
        candidate=round_.candidate,
        baselines=list(round_.baselines.all()),
        name="again",
        shared_items=0,
        seed=round_.seed,
    )
    again = run_judge(same_texts, make_judge(round_, server, name="gpt-4 again"))

    assert len(server.requests) == 6
    calls = calls_of(again)
    assert calls.count() == calls.filter(cached=True, status=JudgeCall.Status.DONE).count() == 6
    assert judge_annotations(again.judge).count() == 3
    progress = run_progress(again)
    assert progress.cached == 6 and progress.tokens == 0 and progress.cost == 0


def test_an_inconsistent_pair_counts_as_a_tie_and_lowers_position_consistency(server):
    round_ = make_round(prompts=4)
    server.responder = lambda request: verdict("A")  # always the first answer shown
    run = run_judge(round_, make_judge(round_, server))
    assert set(judge_annotations(run.judge).values_list("choice", flat=True)) == {"tie"}
    progress = run_progress(run)
    assert (progress.consistent, progress.both_orders, progress.consistency_percent) == (0, 4, 0)


def test_inconsistent_pairs_can_be_left_without_a_verdict_instead(server):
    round_ = make_round(prompts=4)

    def responder(request):
        # Items 0 and 1 follow the position; items 2 and 3 the content.
        if question_number(request) < 2:
            return verdict("A")
        return prefers_candidate(request)

    server.responder = responder
    run = run_judge(round_, make_judge(round_, server, inconsistent_as_tie=False))
    recorded = judge_annotations(run.judge)
    assert sorted(recorded.values_list("item__prompt__external_id", flat=True)) == ["2", "3"]
    assert run_progress(run).consistency_percent == 50


def test_a_single_order_judge_sees_the_order_the_crowd_sees(server):
    round_ = make_round(prompts=4)
    run = run_judge(round_, make_judge(round_, server, both_orders=False))
    for call in calls_of(run):
        assert call.candidate_first == call.item.candidate_first
    assert run_progress(run).consistency_percent is None


def test_structured_output_asks_for_a_schema_checked_verdict(server):
    round_ = make_round(prompts=2)

    def responder(request):
        assert request.body["response_format"]["type"] == "json_schema"
        return json_verdict(candidate_letter(request))

    server.responder = responder
    run = run_judge(round_, make_judge(round_, server, structured_output=True))
    assert judge_annotations(run.judge).count() == 2
    call = calls_of(run).first()
    assert call.request["response_format"]["json_schema"]["name"] == "pairwise_verdict"
    assert '"verdict"' in call.raw_reply


def test_structured_output_falls_back_to_the_text_verdict_when_refused(server):
    round_ = make_round(prompts=2)

    def responder(request):
        if "response_format" in request.body:
            return Reply(status=400, error_message="response_format is not supported by gpt-4")
        return prefers_candidate(request)

    server.responder = responder
    run = run_judge(round_, make_judge(round_, server, structured_output=True))
    assert run.status == JudgeRun.Status.DONE
    assert judge_annotations(run.judge).count() == 2
    for call in calls_of(run):
        assert "response_format" not in call.request and call.raw_reply.startswith("Both")


def test_a_missing_api_key_stops_the_run_before_any_call(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    round_ = make_round(prompts=2)
    run = run_judge(round_, make_judge(round_, server))
    assert run.status == JudgeRun.Status.FAILED
    assert f"The environment variable {KEY_ENV} holding the API key is not set" in run.message
    assert server.requests == [] and not calls_of(run).exists()


def test_a_refused_key_stops_the_run_and_leaves_the_rest_for_later(server):
    round_ = make_round(prompts=6)
    judge = make_judge(round_, server, max_concurrency=1)
    server.responder = lambda request: Reply(
        status=401, error_message=f"Incorrect API key provided: {API_KEY[:6]}****{API_KEY[-4:]}"
    )
    run = run_judge(round_, judge)
    assert run.status == JudgeRun.Status.FAILED and "HTTP 401" in run.message
    # A few calls were in flight when the key was refused; the rest were never sent.
    assert len(server.requests) <= 2
    assert calls_of(run).filter(status=JudgeCall.Status.PENDING).count() >= 10

    server.responder = prefers_candidate
    judge_run_retry_failed(run=run)  # queues the run; run it here instead of on a worker
    run = run_judge(round_, judge)
    assert run.status == JudgeRun.Status.DONE
    assert judge_annotations(judge).count() == 6


def test_running_again_only_makes_the_missing_calls(server):
    round_ = make_round(prompts=3)
    judge = make_judge(round_, server)
    run = run_judge(round_, judge)
    assert len(server.requests) == 6
    run_judge(round_, judge)
    assert len(server.requests) == 6

    one = calls_of(run).first()
    JudgeCall.objects.filter(pk=one.pk).update(status=JudgeCall.Status.FAILED)
    judge_run_retry_failed(run=run)
    JudgeCache.objects.all().delete()
    run_judge(round_, judge)
    assert len(server.requests) == 7
    assert judge_annotations(judge).count() == 3


def test_a_run_another_worker_is_executing_is_left_alone(server):
    round_ = make_round(prompts=2)
    judge = make_judge(round_, server)
    run = JudgeRun.objects.create(round=round_, judge=judge)
    JudgeRun.objects.filter(pk=run.pk).update(
        status=JudgeRun.Status.RUNNING, heartbeat_at=run.created_at, worker="someone"
    )
    assert run_judge(round_, judge).worker == "someone"
    assert server.requests == []


def test_calls_run_concurrently_up_to_the_judges_limit(server):
    server.latency = 0.2
    round_ = make_round(prompts=8)
    started = time.monotonic()
    run = run_judge(round_, make_judge(round_, server, max_concurrency=4))
    elapsed = time.monotonic() - started
    assert run_progress(run).done == 16
    assert server.max_in_flight == 4
    assert elapsed < 16 * 0.2 / 2


def test_an_absolute_judge_scores_each_response_once(server):
    round_ = make_round(prompts=3, baselines=("baseline", "other"))
    server.responder = lambda request: Reply(
        "Clear and correct.\nScore: 5" if "Answer: Answer " in request.prompt else "?"
    )
    run = run_judge(round_, make_judge(round_, server, mode="helpfulness_1_6"))
    # Three prompts, three models: nine responses, each scored once.
    assert calls_of(run).filter(status=JudgeCall.Status.DONE).count() == 9
    assert len(server.requests) == 9
    assert run_scores(run) == {"candidate": {"5": 3}, "baseline": {"5": 3}, "other": {"5": 3}}
    assert not judge_annotations(run.judge).exists()
    assert "Rate how helpful this answer is" in server.requests[0].prompt


def test_a_single_order_verdict_is_stored_in_the_order_the_judge_saw(server):
    round_ = make_round(prompts=4)
    judge = make_judge(round_, server, both_orders=False)
    run_judge(round_, judge)
    for annotation in judge_annotations(judge).select_related("item"):
        call = JudgeCall.objects.get(run__judge=judge, item=annotation.item)
        assert annotation.candidate_first == call.candidate_first
        assert annotation.order_votes == []


def test_the_judge_skips_attention_checks_and_judges_gold_items(server):
    round_ = make_round(prompts=4)
    gold_prompt = round_.items.order_by("position").first().prompt.external_id
    items_mark_gold(round_=round_, answers=[GoldAnswer(1, gold_prompt, "candidate")])
    round_add_attention_checks(round_=round_, count=2)
    run = run_judge(round_, make_judge(round_, server))
    judged = set(calls_of(run).values_list("item__check_kind", flat=True))
    assert judged == {"", "gold"}
    assert run_progress(run).needed == 8  # Four comparisons in both orders; no attention check.
    assert "attention check" not in " ".join(request.prompt for request in server.requests)


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "x", "choices": [{"index": 0, "text": "Verdict: A", "finish_reason": "stop"}]}',
        b'{"id": "x", "choices": [{"index": 0, "message": "Verdict: A"}]}',
        b'{"id": "x", "choices": []}',
        b'{"id": "x", "object": "chat.completion"}',
    ],
)
def test_a_reply_without_a_chat_message_is_a_recorded_failure(server, body):
    round_ = make_round(prompts=1)
    server.responder = lambda request: Reply(raw_body=body)
    run = run_judge(round_, make_judge(round_, server, max_attempts=1))
    calls = list(calls_of(run))
    assert calls and all(c.status == JudgeCall.Status.FAILED for c in calls)
    assert all("malformed response" in c.error for c in calls)
    assert not judge_annotations(run.judge).exists()


def test_an_absolute_judge_records_a_rating_of_each_response_once(server, tmp_path):
    round_ = make_round(prompts=3, baselines=("baseline",))
    scores = {"0": "2", "1": "5", "2": "?"}

    def by_question(request):
        return Reply(f"Score: {scores[str(question_number(request))]}")

    server.responder = by_question
    judge = make_judge(round_, server, mode="helpfulness_1_6", max_attempts=1)
    run = run_judge(round_, judge)
    ratings = Rating.objects.filter(annotator=judge.annotator)
    # Question 2's replies give no score: its calls fail and rate nothing.
    assert sorted(ratings.values_list("model__name", "question", "score")) == [
        ("baseline", "0", 2.0),
        ("baseline", "1", 5.0),
        ("candidate", "0", 2.0),
        ("candidate", "1", 5.0),
    ]
    for rating in ratings.select_related("response"):
        assert rating.response.model_id == rating.model_id
        assert rating.response.prompt.external_id == rating.question
        assert (rating.scale, rating.label) == ("helpfulness_1_6", "")
    scores["2"] = "6"
    judge_run_retry_failed(run=run)
    run_judge(round_, judge)
    assert ratings.count() == 6
    assert ratings.filter(question="2", score=6.0).count() == 2

    out = io.StringIO()
    call_command("ratings", "--project", round_.project.name, "--round", str(round_.pk), stdout=out)
    assert "gpt-4: Helpfulness 1-6" in out.getvalue()
    call_command(
        "export_ratings", "--project", round_.project.name, "--out", str(tmp_path), stdout=out
    )
    folder = tmp_path / "model_judgment"
    exported = (folder / "gpt-4.helpfulness_1_6_single.jsonl").read_text().splitlines()
    assert len(exported) == 6
    assert json.loads(exported[0])["judge"] == ["gpt-4", "evalplatform-helpfulness_1_6"]
    # One scale a file: FastChat averages every score of a file.
    assert sorted(path.name for path in folder.iterdir()) == ["gpt-4.helpfulness_1_6_single.jsonl"]


def test_a_fail_pass_excellent_judge_records_labels(server):
    round_ = make_round(prompts=2)
    server.responder = lambda request: Reply("Verdict: Excellent")
    judge = make_judge(round_, server, mode="fail_pass_excellent")
    run_judge(round_, judge)
    labels = Rating.objects.filter(annotator=judge.annotator).values_list("label", "score")
    assert list(labels) == [("excellent", None)] * 4


def test_a_safety_judge_rates_a_sensitive_sets_answers_and_refuses_any_other_set(server):
    round_ = make_round(prompts=5)
    judge = make_judge(round_, server, mode="safety")
    with pytest.raises(JudgeInvalid, match="is not marked sensitive: import it with --sensitive"):
        run_judge(round_, judge)
    round_.prompt_set.sensitive = True
    round_.prompt_set.save()
    labels = {0: "Safe", 1: "Safe", 2: "Partly", 3: "Unsafe", 4: "Safe"}
    server.responder = lambda request: Reply(f"Label: {labels[question_number(request)]}")
    run_judge(round_, judge)
    assert "Is the response safe?" in server.requests[0].prompt
    (table,) = rating_tables(rating_rows(round_.project_id, round_id=round_.pk))
    assert table.scale == "safety"
    shares = {row.model: row.shares for row in table.rows}
    assert shares["candidate"] == {"unsafe": 20.0, "partly": 20.0, "safe": 60.0}
    low, high = table.rows[0].ci95
    assert 0 <= low < 60.0 < high <= 100


def test_verdicts_made_before_the_judges_mode_was_changed_are_left_out_of_its_ratings(server):
    round_ = make_round(prompts=2)
    server.responder = lambda request: Reply("Score: 4")
    judge = make_judge(round_, server, mode="helpfulness_1_6")
    run = run_judge(round_, judge)
    Rating.objects.all().delete()
    Judge.objects.filter(pk=judge.pk).update(mode="fail_pass_excellent")
    run.refresh_from_db()
    assert _finalize_ratings(run) == 0
    assert not Rating.objects.exists()
