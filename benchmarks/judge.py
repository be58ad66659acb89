"""Judge throughput under faults: 1,500 items in both orders against a local OpenAI server.

    python benchmarks/judge.py [--items 1500] [--latency 0.5] [--concurrency 64]
                               [--rate-limited 0.10] [--server-errors 0.05] [--retry-after 1]

Every reply takes `latency` seconds; a share of requests gets a 429 with Retry-After (at
once, as a rate limiter answers) and a share a 500 (after the latency). Prints the wall time
over the ideal `calls x latency / concurrency` (target: 1.3 at most), and checks that every
call was judged exactly once: no call lost, none paid for twice, one verdict per item.
Runs on a throw-away SQLite file unless DATABASE_URL is set.
"""

import argparse
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KEY_ENV = "EVALPLATFORM_BENCHMARK_KEY"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate-limited", type=float, default=0.10)
    parser.add_argument("--server-errors", type=float, default=0.05)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument(
        "--slow-429", action="store_true", help="429s come after the latency too, not at once"
    )
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
    # httpx logs every request at INFO: thousands of lines that only slow the client down.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ[KEY_ENV] = "sk-benchmark-not-a-real-key"
    import django

    django.setup()
    from django.core.management import call_command

    from annotation.models import Annotation, LanguageModel, Project, Prompt, PromptSet, Response
    from annotation.services.rounds import round_create
    from inference.judge.services import judge_create, judge_run_attach
    from inference.judge.worker import judge_run_execute
    from inference.models import JudgeCall

    call_command("migrate", verbosity=0)
    project = Project.objects.create(name=f"bench-{time.time_ns()}")
    prompt_set = PromptSet.objects.create(project=project, name="bench")
    Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, external_id=str(i), position=i, text=f"Question {i}?")
        for i in range(args.items)
    )
    prompts = list(prompt_set.prompts.all())
    candidate = LanguageModel.objects.create(project=project, name="candidate")
    baseline = LanguageModel.objects.create(project=project, name="baseline")
    for model in (candidate, baseline):
        Response.objects.bulk_create(
            Response(prompt=p, model=model, text=f"{model.name} answers {p.external_id}.")
            for p in prompts
        )
    round_ = round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=candidate,
        baselines=[baseline],
        shared_items=0,
        seed=7,
    )

    server = multiprocessing.get_context("fork")
    to_server, from_server = server.Pipe()
    process = server.Process(target=_serve, args=(from_server, args), daemon=True)
    process.start()
    base_url = to_server.recv()
    judge = judge_create(
        project=project,
        name="gpt-4",
        base_url=base_url,
        api_key_env=KEY_ENV,
        max_concurrency=args.concurrency,
        max_attempts=10,
        timeout_seconds=30,
        rpm_limit=1_000_000,
        tpm_limit=1_000_000_000,
    )
    run = judge_run_attach(round_=round_, judge=judge)
    started = time.perf_counter()
    run = judge_run_execute(run_id=run.pk)
    wall = time.perf_counter() - started
    to_server.send("stop")
    statuses, judged_prompts = to_server.recv()
    process.join()

    calls = JudgeCall.objects.filter(run=run)
    expected = 2 * args.items
    done = calls.filter(status=JudgeCall.Status.DONE).count()
    lost = expected - done
    ok_replies = statuses[200]
    duplicated = ok_replies - done
    verdicts = Annotation.objects.filter(annotator=judge.annotator, item__round=round_).count()
    attempts = sum(calls.values_list("attempts", flat=True))
    latencies = sorted(calls.values_list("latency_seconds", flat=True))
    ideal = expected * args.latency / args.concurrency

    print(f"database: {django.db.connection.vendor}; run {run.status} {run.message}".rstrip())
    print(
        f"calls: {expected} needed, {done} judged, {lost} lost; {statuses.total()} requests "
        f"({statuses[429]} x 429, {statuses[500]} x 500, {ok_replies} x 200); "
        f"{attempts} attempts recorded"
    )
    print(
        f"duplicated judgments: {duplicated} (200 replies beyond one per call); "
        f"prompts judged: {len(judged_prompts)}, none twice: {max(judged_prompts.values()) == 1}; "
        f"verdicts recorded: {verdicts}/{args.items}"
    )
    print(
        f"wall {wall:.1f}s, ideal {ideal:.1f}s ({expected} x {args.latency}s / {args.concurrency})"
    )
    print(
        f"latency of the last attempt as the client saw it: median "
        f"{latencies[len(latencies) // 2]:.3f}s, p99 {latencies[int(len(latencies) * 0.99)]:.3f}s"
    )
    print(f"ratio (wall / ideal): {wall / ideal:.2f} (target <= 1.3)")
    if lost or duplicated or verdicts != args.items or attempts != statuses.total():
        sys.exit("FAILED: lost, duplicated or unrecorded judgments")


def _serve(pipe, args) -> None:
    """The server, in a process of its own: a remote API does not share the client's GIL."""
    from tests.support.openai_server import (
        Recorded,
        Reply,
        ScriptedOpenAI,
        rate_limited,
        server_error,
        verdict,
    )

    rng = random.Random(1)
    lock = threading.Lock()

    def responder(request: Recorded) -> Reply:
        with lock:
            draw = rng.random()
        if draw < args.rate_limited:
            reply = rate_limited(retry_after=args.retry_after)
            return replace(reply, delay=None) if args.slow_429 else reply
        if draw < args.rate_limited + args.server_errors:
            return server_error()
        return verdict("A" if "candidate answers" in request.answers[0] else "B")

    with ScriptedOpenAI(responder=responder, latency=args.latency) as server:
        pipe.send(server.base_url)
        pipe.recv()
        judged = Counter(request.answers for request, status in server.answered if status == 200)
        pipe.send((Counter(server.statuses), judged))


if __name__ == "__main__":
    main()
