"""MT-Bench pairwise judgments (FastChat llm_judge) in as leaderboard battles, and a judge's
verdicts out in the same format."""

import io
import json

import pytest
from django.core.management import call_command

from annotation.imports.arena import DROPPED_ERROR, mt_bench_pairwise_import
from annotation.imports.records import ImportFailed
from annotation.models import Annotator, Battle, Project
from annotation.services.judgments import annotations_record_judgments
from tests.factories import make_round

pytestmark = pytest.mark.django_db


def judgment(question, g1, g2, model_1="vicuna-13b", model_2="llama-13b", judge="gpt-4", turn=1):
    """A record as FastChat's gen_judgment.py writes it for the pairwise judges."""
    return {
        "question_id": question,
        "model_1": model_1,
        "model_2": model_2,
        "g1_winner": g1,
        "g2_winner": g2,
        "judge": [judge, "pair-v2"],
        "g1_user_prompt": "[User Question] ...",
        "g1_judgment": "... [[A]]",
        "g2_user_prompt": "[User Question] ...",
        "g2_judgment": "... [[B]]",
        "turn": turn,
        "tstamp": 1687221890.0,
    }


def jsonl(*records) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def test_both_orders_agreeing_win_disagreeing_tie_and_errors_are_dropped():
    project = Project.objects.create(name="mt")
    raw = jsonl(
        judgment(81, "model_1", "model_1"),
        judgment(82, "model_2", "model_2"),
        judgment(83, "model_1", "model_2"),
        judgment(84, "tie", "tie"),
        judgment(85, "error", "model_1"),
        judgment(81, "model_1", "tie", turn=2),
        judgment(81, "model_2", "model_2", judge="claude-v1"),
    )
    summary = mt_bench_pairwise_import(project=project, raw=raw, file="gpt-4_pair.jsonl")
    assert (summary.created, summary.inconsistent) == (6, 2)
    assert summary.dropped == {DROPPED_ERROR: 1}
    by_group = {}
    for group, winner in Battle.objects.values_list("group", "winner"):
        by_group.setdefault(group, []).append(winner)
    assert sorted(by_group["gpt-4"]) == ["model_a", "model_b", "tie", "tie", "tie"]
    assert by_group["claude-v1"] == ["model_b"]
    again = mt_bench_pairwise_import(project=project, raw=raw, file="gpt-4_pair.jsonl")
    assert (again.created, again.skipped) == (0, 6)


def test_a_bad_winner_names_its_line_and_field_and_nothing_is_written():
    project = Project.objects.create(name="mt")
    raw = jsonl(judgment(81, "model_1", "model_1"), judgment(82, "A", "model_1"))
    with pytest.raises(ImportFailed) as error:
        mt_bench_pairwise_import(project=project, raw=raw, file="x.jsonl")
    assert (error.value.line, error.value.field) == (2, "g1_winner")
    assert not Battle.objects.exists()


def test_a_judges_verdicts_export_in_the_format_and_import_back(tmp_path):
    round_ = make_round(prompts=3)
    judge = Annotator.objects.create(project=round_.project, kind="judge", name="gpt-4")
    items = list(round_.items.order_by("position"))
    votes = [
        {True: "candidate", False: "candidate"},
        {True: "candidate", False: "baseline"},
        {True: "tie", False: "tie"},
    ]
    annotations_record_judgments(
        annotator=judge,
        judgments=[
            (item, vote[True] if vote[True] == vote[False] else "tie", vote)
            for item, vote in zip(items, votes, strict=True)
        ],
    )
    out = io.StringIO()
    call_command(
        "export_round", str(round_.pk), "--format", "mt-bench", "--out", str(tmp_path), stdout=out
    )
    path = tmp_path / "model_judgment.gpt-4_pair.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["g1_winner"], r["g2_winner"]) for r in records] == [
        ("model_1", "model_1"),
        ("model_1", "model_2"),
        ("tie", "tie"),
    ]
    assert records[0]["model_1"] == "candidate" and records[0]["judge"][0] == "gpt-4"
    copy = Project.objects.create(name="copy")
    summary = mt_bench_pairwise_import(project=copy, raw=path.read_bytes(), file=path.name)
    assert (summary.created, summary.inconsistent) == (3, 1)
