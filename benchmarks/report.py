"""Report speed and memory on a synthetic round, against a per-item Python loop.

    python benchmarks/report.py [--annotations 1000000] [--items 100000] [--annotators 1000]
                                [--resamples 1000] [--loop-items 2000] [--page-prompts 5000]

The round: 5 baselines, a 50-item shared set that every annotator labels, the other items
labelled by ~9-10 distinct annotators each; annotators are crowd workers, authors and two
model judges. The arrays are built directly with numpy (no database), so this times the
report's maths: counts, the agreement table, 1,000-resample bootstrap intervals, judge
diagnostics and Bradley-Terry with 1,000 resamples. A second Bradley-Terry run uses 20 models
and 1,000,000 battles, the setting of FastChat's published timings; FastChat itself is not run
here, so its figure is printed as cited, with its source.

The report page (`--page-prompts`, 0 to skip): a round stored in a throwaway database (the
configured one's server, DATABASE_URL; SQLite by default) with three crowd workers and a judge
on every item, viewed through Django's test client as a signed-in researcher: the first view
builds and stores the report, later views and downloads are served from the stored build.
First view against the median cached view, in the same run.

The baseline is the straightforward code: a Python loop over annotations for the counts, and
for agreement a loop over items that enumerates every pair of annotators. Counting runs on all
annotations; the pair loop runs on a subsample of items (`--loop-items` ordinary items and 2
shared ones) and its time is extrapolated by the number of pairs; the output says so.
"""

import argparse
import itertools
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annotation.reports.agreement import agreement_table, pair_sums
from annotation.reports.bradley_terry import battle_counts, ratings
from annotation.reports.build import build_report, leaderboard
from annotation.reports.counts import LABELS, TIE, annotation_frame, label_counts
from annotation.reports.judges import judge_diagnostics
from annotation.reports.stats import outcomes

BASELINES = ["alpaca-65b", "davinci-003", "bard", "claude", "gpt-4"]
# Not measured by this script: FastChat is not installed here.
FASTCHAT_CITED = (
    "cited, not measured in this run: FastChat's Bradley-Terry on the same setting took 18.8 s "
    "(2.7 s with one BLAS thread), as timed on this machine kind by the session that added "
    "this benchmark (commit 7a224f1, benchmarks/README.md)"
)
SHARED = 50


def synthetic_round(annotations: int, items: int, annotators: int, seed: int = 0) -> dict:
    """Columns of a report frame: every annotator labels the shared set; the rest of the
    annotations are spread over the other items, distinct annotators per item."""
    rng = np.random.default_rng(seed)
    rest = annotations - SHARED * annotators
    per_item = np.full(items - SHARED, rest // (items - SHARED))
    per_item[: rest % (items - SHARED)] += 1
    shared_item = np.repeat(np.arange(SHARED), annotators)
    shared_annotator = np.tile(np.arange(annotators), SHARED)
    other_item = np.repeat(np.arange(SHARED, items), per_item)
    # Consecutive annotators from a random start: distinct within an item.
    start = rng.integers(0, annotators, items - SHARED)
    offset = np.arange(len(other_item)) - np.repeat(np.cumsum(per_item) - per_item, per_item)
    other_annotator = (np.repeat(start, per_item) + offset) % annotators
    item = np.concatenate([shared_item, other_item])
    annotator = np.concatenate([shared_annotator, other_annotator])
    n = len(item)

    group_names = np.array(["crowd", "author", "gpt-4-judge", "claude-judge"])
    group_of = np.where(np.arange(annotators) < annotators - 32, 0, 1)
    group_of[-2:] = [2, 3]
    baseline = item % len(BASELINES)
    # Each item has a true verdict that depends on the baseline; annotators report it 60 % of
    # the time and otherwise answer at random.
    truth = rng.choice(3, items, p=[0.45, 0.25, 0.30])
    label = np.where(rng.random(n) < 0.6, truth[item], rng.integers(0, 3, n))
    candidate_chars = rng.integers(50, 3000, items)
    baseline_chars = rng.integers(50, 3000, items)
    return {
        "annotation": np.arange(n),
        "item": item,
        "prompt": (item // len(BASELINES)).astype(str),
        "baseline": pd.Categorical.from_codes(baseline, categories=BASELINES),
        "annotator": annotator,
        "group": pd.Categorical.from_codes(group_of[annotator], categories=group_names),
        "label": label.astype(np.int8),
        "candidate_first": rng.random(n) < 0.5,
        "seconds": rng.gamma(2.0, 15.0, n),
        "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
        "candidate_chars": candidate_chars[item],
        "baseline_chars": baseline_chars[item],
    }


def round_battles(frame: pd.DataFrame) -> pd.DataFrame:
    """The round's verdicts as battles of the candidate against a baseline (what
    frames.project_battles reads for a project)."""
    return pd.DataFrame(
        {
            "candidate": pd.Categorical.from_codes(np.zeros(len(frame), int), ["candidate"]),
            "baseline": frame["baseline"],
            "group": frame["group"],
            "label": frame["label"],
        }
    )


def arena_battles(models: int, battles: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, models)
    first = rng.integers(0, models, battles)
    second = (first + rng.integers(1, models, battles)) % models
    p_first = 1 / (1 + np.exp(strength[second] - strength[first]))
    draw = rng.random(battles)
    outcome = np.where(draw < 0.85 * p_first, 0, np.where(draw < 0.85 * p_first + 0.15, 1, 2))
    return battle_counts(first, second, outcome, models)


def vector_counts(frame: pd.DataFrame) -> dict:
    """The same counts from the per-item label counts the report is built on."""
    counts = label_counts(frame, BASELINES)
    result = {}
    for b, baseline in enumerate(counts.baselines):
        totals = counts.counts[counts.item_baseline == b].sum(axis=0)
        for g, group in enumerate(counts.groups):
            for label, count in enumerate(totals[g]):
                if count:
                    result[group, baseline, LABELS[label]] = int(count)
    return result


def timed(stages: dict, name: str, function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    stages[name] = time.perf_counter() - started
    return result


def loop_counts(columns: dict) -> tuple[float, dict]:
    """Counts per (group, baseline, label), one annotation at a time."""
    groups = [str(g) for g in columns["group"]]
    baselines = [str(b) for b in columns["baseline"]]
    labels = columns["label"].tolist()
    started = time.perf_counter()
    counts: Counter = Counter()
    for group, baseline, label in zip(groups, baselines, labels, strict=True):
        counts[group, baseline, LABELS[label]] += 1
    return time.perf_counter() - started, counts


def loop_agreement(columns: dict, chosen_items: np.ndarray) -> tuple[float, dict]:
    """Tie-discounted agreement per pair of groups on the chosen items, pair by pair."""
    keep = np.isin(columns["item"], chosen_items)
    rows = zip(
        columns["item"][keep].tolist(),
        [str(g) for g in columns["group"][keep]],
        columns["label"][keep].tolist(),
        strict=True,
    )
    started = time.perf_counter()
    by_item = defaultdict(list)
    for item, group, label in rows:
        by_item[item].append((group, label))
    scores: dict = defaultdict(lambda: [0.0, 0])
    for labels in by_item.values():
        for (group_a, label_a), (group_b, label_b) in itertools.combinations(labels, 2):
            key = tuple(sorted((group_a, group_b)))
            if label_a == label_b:
                score = 1.0
            elif TIE in (label_a, label_b):
                score = 0.5
            else:
                score = 0.0
            scores[key][0] += score
            scores[key][1] += 1
    return time.perf_counter() - started, dict(scores)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--loop-items", type=int, default=2000)
    parser.add_argument("--page-prompts", type=int, default=5000)
    parser.add_argument("--page-views", type=int, default=20)
    args = parser.parse_args()

    columns = synthetic_round(args.annotations, args.items, args.annotators)
    print(
        f"synthetic round: {len(columns['item']):,} annotations, {args.items:,} items, "
        f"{args.annotators:,} annotators, {len(BASELINES)} baselines, {SHARED}-item shared set "
        f"labelled by every annotator; {args.resamples} bootstrap resamples"
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    stages: dict[str, float] = {}
    frame = timed(stages, "frame from arrays", annotation_frame, **columns)
    counts = timed(stages, "label counts per item and group", label_counts, frame, BASELINES)
    for mode in ("annotation", "item"):
        timed(
            stages,
            f"counts + win-rate intervals, per {mode}",
            outcomes,
            counts,
            mode=mode,
            resamples=args.resamples,
        )
    cells = timed(
        stages,
        "agreement table + intervals + kappas/alpha",
        agreement_table,
        frame,
        counts,
        resamples=args.resamples,
    )
    timed(stages, "judge diagnostics", judge_diagnostics, frame, counts)
    battles = round_battles(frame)
    crowd_verdicts = int((battles["group"] == "crowd").sum())
    timed(
        stages, f"Bradley-Terry, {crowd_verdicts:,} crowd verdicts", leaderboard, battles, "crowd"
    )

    started = time.perf_counter()
    frame = annotation_frame(**columns)
    build_report(frame, round_id=1, candidate="candidate", baselines=BASELINES)
    leaderboard(round_battles(frame), "crowd")
    full = time.perf_counter() - started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    tracemalloc.start()
    frame = annotation_frame(**columns)
    build_report(frame, round_id=1, candidate="candidate", baselines=BASELINES)
    leaderboard(round_battles(frame), "crowd")
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    arena = arena_battles(20, 1_000_000)
    started = time.perf_counter()
    ratings(arena, [f"m{i}" for i in range(20)], resamples=1000)
    arena_seconds = time.perf_counter() - started

    print("\nstages (vectorised):")
    for name, seconds in stages.items():
        print(f"  {name:<45} {seconds:7.3f} s")
    print(f"  {'full report (all of the above, fresh)':<45} {full:7.3f} s")
    print(f"  {'Bradley-Terry, 20 models, 1M battles, 1000 rs':<45} {arena_seconds:7.3f} s")
    print(f"    {FASTCHAT_CITED}")
    print(
        f"\npeak memory: {rss_peak:,.0f} MiB resident for the whole process "
        f"({rss_before:,.0f} MiB before the report: interpreter, libraries and input arrays); "
        f"{traced_peak:,.0f} MiB allocated at peak by the report (tracemalloc)"
    )

    # The per-item Python loop.
    count_seconds, loop_count = loop_counts(columns)
    started = time.perf_counter()
    vectorised = vector_counts(frame)
    vector_counts_seconds = time.perf_counter() - started
    assert dict(loop_count) == vectorised, "the loop and the report disagree on counts"

    rng = np.random.default_rng(2)
    ordinary = rng.choice(np.arange(SHARED, args.items), args.loop_items, replace=False)
    sample = np.concatenate([[0, 1], ordinary])
    pair_seconds, loop_scores = loop_agreement(columns, sample)
    sample_counts = counts.counts[np.isin(counts.items, sample)]
    all_pairs = pair_sums(counts.counts.sum(axis=1)).pairs.sum()
    sample_pairs = pair_sums(sample_counts.sum(axis=1)).pairs.sum()
    extrapolated = pair_seconds * all_pairs / sample_pairs
    # Check the loop against the vectorised formula on the same items.
    crowd = counts.groups.index("crowd")
    sums = pair_sums(sample_counts[:, crowd])
    formula = (sums.equal.sum() + sums.one_tie.sum() / 2) / sums.pairs.sum()
    looped = loop_scores["crowd", "crowd"][0] / loop_scores["crowd", "crowd"][1]
    assert abs(formula - looped) < 1e-12, "the loop and the formula disagree on agreement"

    vector_agreement_seconds = stages["agreement table + intervals + kappas/alpha"]
    print("\nper-item Python loop (point estimates only, no intervals):")
    print(
        f"  counts: {count_seconds:.2f} s over all {len(columns['item']):,} annotations; "
        f"vectorised (per-item label counts, then sums) {vector_counts_seconds:.3f} s "
        f"-> {count_seconds / vector_counts_seconds:.0f}x"
    )
    print(
        f"  agreement: {pair_seconds:.2f} s for {sample_pairs:,} pairs on a subsample of "
        f"{len(sample):,} items (2 shared); extrapolated by pairs to all {all_pairs:,} pairs: "
        f"{extrapolated:.0f} s; vectorised table with intervals and kappas "
        f"{vector_agreement_seconds:.3f} s -> {extrapolated / vector_agreement_seconds:.0f}x"
    )
    print(
        f"  the loop and the report agree: counts exactly, crowd-crowd agreement on the "
        f"subsample {100 * looped:.4f} % both ways"
    )
    print(f"\nagreement table ({len(cells)} cells):")
    for cell in cells:
        print(
            f"  {cell.a:>12} - {cell.b:<12} items {cell.items:>7,} pairs {cell.pairs:>11,} "
            f"agreement {cell.agreement:5.1f} % [{cell.ci95[0]:.1f}, {cell.ci95[1]:.1f}]"
        )
    if args.page_prompts:
        print()
        page_views(args.page_prompts, args.page_views)


def _stored_round(prompts: int):
    """A round of `prompts` items against one baseline, three crowd workers and a judge on
    each: 4 annotations an item."""
    from annotation.models import Annotation, Annotator, LanguageModel, Project, Prompt, PromptSet
    from annotation.models import Response as ModelResponse
    from annotation.services.rounds import round_create

    project = Project.objects.create(name="report benchmark")
    prompt_set = PromptSet.objects.create(project=project, name="prompts")
    Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, external_id=str(i), position=i, text=f"Question {i}?")
        for i in range(prompts)
    )
    models = [LanguageModel.objects.create(project=project, name=n) for n in ("cand", "base")]
    ModelResponse.objects.bulk_create(
        (
            ModelResponse(prompt=prompt, model=model, text=f"{model.name} answers {prompt.pk}")
            for prompt in prompt_set.prompts.all()
            for model in models
        ),
        batch_size=5000,
    )
    round_ = round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=models[0],
        baselines=models[1:],
        shared_items=0,
    )
    annotators = [
        Annotator.objects.create(project=project, kind=kind, name=name)
        for kind, name in (("crowd", "w1"), ("crowd", "w2"), ("crowd", "w3"), ("judge", "gpt-4"))
    ]
    rng = np.random.default_rng(3)
    choices = ["candidate", "tie", "baseline"]
    rows = []
    for item in round_.items.all():
        for annotator, pick in zip(annotators, rng.integers(0, 3, len(annotators)), strict=True):
            choice = choices[pick]
            rows.append(
                Annotation(
                    item=item,
                    annotator=annotator,
                    choice=choice,
                    shown_choice=Annotation.shown_for(choice, item.candidate_first),
                    candidate_first=item.candidate_first,
                    seconds_spent=10.0,
                )
            )
    Annotation.objects.bulk_create(rows, batch_size=5000)
    return round_, len(rows)


def page_views(prompts: int, views: int) -> None:
    """First view of the report page (builds the report) against cached views, in a
    throwaway database."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    # Built in the request that views it, whatever the round's size, to time the build.
    settings.REPORT_INLINE_MAX_ANNOTATIONS = 10**12
    settings.MEDIA_ROOT = media = Path(tempfile.mkdtemp(prefix="bench-report-media-"))
    settings.ALLOWED_HOSTS = ["testserver"]
    setup_test_environment()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        f"bench_report_{os.getpid()}"
        if connection.vendor != "sqlite"
        else str(settings.VAR_DIR / f"bench-report-{os.getpid()}.sqlite3")
    )
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        round_, annotations = _stored_round(prompts)
        user = User.objects.create_user("bench")
        round_.project.members.add(user)
        client = Client()
        client.force_login(user)
        url = reverse("round-report", args=[round_.pk])

        def timed_get(address: str) -> float:
            started = time.perf_counter()
            response = client.get(address)
            if response.streaming:
                b"".join(response.streaming_content)
            assert response.status_code == 200, response.status_code
            return time.perf_counter() - started

        first = timed_get(url)
        cached = sorted(timed_get(url) for _ in range(views))
        download = reverse("round-report-download", args=[round_.pk, "annotations.jsonl"])
        downloads = sorted(timed_get(download) for _ in range(views))
        median, p90 = cached[len(cached) // 2], cached[int(len(cached) * 0.9)]
        print(
            f"report page, stored round of {annotations:,} annotations ({prompts:,} items, "
            f"{connection.vendor}):\n"
            f"  first view (builds and stores the report)     {first:7.3f} s\n"
            f"  cached view, median of {views} (p90)            {median * 1000:7.1f} ms "
            f"({p90 * 1000:.1f} ms)\n"
            f"  first view / cached view                       {first / median:7.0f}x\n"
            f"  annotations.jsonl download, cached, median     "
            f"{downloads[len(downloads) // 2] * 1000:7.1f} ms\n"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
