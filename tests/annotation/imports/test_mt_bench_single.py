"""MT-Bench single-answer grades (FastChat llm_judge *_single.jsonl) in as ratings, the table
FastChat's show_result prints from them, and a judge's numeric ratings out in the same format."""

import io
import json
import random

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.imports.mt_bench import DROPPED_UNREAD, mt_bench_single_import
from annotation.imports.records import ImportFailed
from annotation.models import Annotator, LanguageModel, Project, Rating
from annotation.reports.ratings import rating_rows, rating_tables

pytestmark = pytest.mark.django_db


def grade(question, model, score, turn=1, judge="gpt-4"):
    """A record as FastChat's gen_judgment.py writes it for the single-answer judges."""
    prompt = "single-v1" if turn == 1 else "single-v1-multi-turn"
    return {
        "question_id": question,
        "model": model,
        "judge": [judge, prompt],
        "user_prompt": "[Instruction]\nPlease act as an impartial judge ...",
        "judgment": f"... Rating: [[{score}]]",
        "score": score,
        "turn": turn,
        "tstamp": 1687221890.8,
    }


def jsonl(records) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def fastchat_show_result(records) -> tuple[dict, dict]:
    """What FastChat's show_result.py (display_result_single, mt_bench) computes: the mean
    score per (model, turn) and per model over both turns, with score -1 left out."""
    frame = pd.DataFrame(records)[["model", "score", "turn"]]
    frame = frame[frame["score"] != -1]
    per_turn = frame.groupby(["model", "turn"])["score"].mean().to_dict()
    overall = frame[["model", "score"]].groupby("model")["score"].mean().to_dict()
    return per_turn, overall


def mt_bench_file(seed=7):
    rng = random.Random(seed)
    records = [
        grade(question, model, rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 7.5]), turn)
        for question in range(81, 161)
        for model in ("vicuna-13b-v1.3", "llama-13b", "gpt-3.5-turbo")
        for turn in (1, 2)
    ]
    # FastChat's -1: the judge's reply gave no [[rating]].
    records[5]["score"] = -1
    records[17]["score"] = -1
    return records


def test_the_table_equals_fastchats_show_result_and_unread_grades_are_dropped():
    project = Project.objects.create(name="mt")
    records = mt_bench_file()
    summary = mt_bench_single_import(project=project, raw=jsonl(records), file="gpt-4_single.jsonl")
    assert summary.created == len(records) - 2
    assert summary.dropped == {DROPPED_UNREAD: 2}
    assert summary.annotators == ["gpt-4"]
    assert sorted(summary.models_created) == ["gpt-3.5-turbo", "llama-13b", "vicuna-13b-v1.3"]

    per_turn, overall = fastchat_show_result(records)
    (table,) = rating_tables(rating_rows(project.pk))
    assert (table.group, table.scale) == ("gpt-4", "mt_bench_1_10")
    assert {row.model: row.mean for row in table.rows} == pytest.approx(overall, abs=1e-12)
    for row in table.rows:
        for turn, mean in row.turn_means.items():
            assert mean == pytest.approx(per_turn[(row.model, turn)], abs=1e-12)
        low, high = row.ci95
        assert low < row.mean < high
    assert [row.mean for row in table.rows] == sorted(overall.values(), reverse=True)
    assert Annotator.objects.get(project=project, name="gpt-4").kind == "judge"


def test_a_second_import_skips_what_is_there_and_counts_a_changed_score_as_a_conflict():
    project = Project.objects.create(name="mt")
    records = [grade(81, "a", 8), grade(81, "a", 6, turn=2), grade(82, "a", 3)]
    mt_bench_single_import(project=project, raw=jsonl(records), file="x.jsonl")
    records[2]["score"] = 9
    again = mt_bench_single_import(project=project, raw=jsonl(records), file="x.jsonl")
    assert (again.created, again.skipped, again.conflicts) == (0, 3, 1)
    assert Rating.objects.get(question="82").score == 3


@pytest.mark.parametrize(
    ("broken", "field", "message"),
    [
        ({"score": 11}, "score", "expected a score from 1 to 10"),
        ({"score": "7"}, "score", "found '7'"),
        ({"score": True}, "score", "expected a score"),
        ({"score": None}, "score", "found None"),
        ({"turn": 0}, "turn", "whole number from 1"),
        ({"question_id": None}, "question_id", "expected the question's id"),
        ({"model": ""}, "model", ""),
        ({"g1_winner": "model_1"}, "g1_winner", "pairwise judgment"),
    ],
)
def test_a_bad_record_names_its_line_and_field_and_nothing_is_written(broken, field, message):
    project = Project.objects.create(name="mt")
    records = [grade(81, "a", 8), {**grade(82, "a", 5), **broken}]
    with pytest.raises(ImportFailed) as error:
        mt_bench_single_import(project=project, raw=jsonl(records), file="x.jsonl")
    assert (error.value.line, error.value.field) == (2, field)
    assert message in error.value.message
    assert not Rating.objects.exists()
    assert not LanguageModel.objects.exists()


def test_the_same_grade_twice_in_a_file_names_both_lines():
    project = Project.objects.create(name="mt")
    records = [grade(81, "a", 8), grade(82, "a", 5), grade(81, "a", 7)]
    with pytest.raises(ImportFailed, match="as line 1") as error:
        mt_bench_single_import(project=project, raw=jsonl(records), file="x.jsonl")
    assert error.value.line == 3


def test_the_command_reads_the_kind_of_the_file_and_prints_the_table(tmp_path):
    path = tmp_path / "gpt-4_single.jsonl"
    path.write_bytes(jsonl([grade(81, "a", 8), grade(81, "a", 6, turn=2), grade(81, "b", -1)]))
    out = io.StringIO()
    call_command("import_mt_bench", str(path), "--project", "mt", stdout=out)
    assert "2 single-answer grades added" in out.getvalue()
    assert "1 records dropped: a judgment whose reply gave no rating" in out.getvalue()
    table = io.StringIO()
    call_command("ratings", "--project", "mt", stdout=table)
    lines = table.getvalue().splitlines()
    assert "gpt-4: MT-Bench single-answer score 1-10" in lines
    (row,) = [line for line in lines if line.strip().startswith("a ")]
    assert row.split()[:5] == ["a", "2", "7.0000", "8.0000", "6.0000"]


def test_export_writes_fastchats_format_and_it_imports_back_to_the_same_table(tmp_path):
    project = Project.objects.create(name="mt")
    records = mt_bench_file(seed=3)
    mt_bench_single_import(project=project, raw=jsonl(records), file="gpt-4_single.jsonl")
    call_command("export_ratings", "--project", "mt", "--out", str(tmp_path), stdout=io.StringIO())
    exported = (tmp_path / "model_judgment" / "gpt-4_single.jsonl").read_text().splitlines()
    first = json.loads(exported[0])
    assert set(first) == {"question_id", "model", "judge", "score", "turn"}
    assert isinstance(first["question_id"], int)
    assert first["judge"] == ["gpt-4", "evalplatform-mt_bench_1_10"]
    copy = Project.objects.create(name="copy")
    raw = "\n".join(exported).encode()
    mt_bench_single_import(project=copy, raw=raw, file="gpt-4_single.jsonl")
    original = [t.as_json() for t in rating_tables(rating_rows(project.pk))]
    assert [t.as_json() for t in rating_tables(rating_rows(copy.pk))] == original
    per_turn, overall = fastchat_show_result([json.loads(line) for line in exported])
    expected_per_turn, expected_overall = fastchat_show_result(records)
    assert per_turn == pytest.approx(expected_per_turn)
    assert overall == pytest.approx(expected_overall)


def test_export_says_when_no_judge_has_a_numeric_rating(tmp_path):
    Project.objects.create(name="empty")
    with pytest.raises(CommandError, match="No judge of 'empty' has numeric ratings"):
        call_command("export_ratings", "--project", "empty", "--out", str(tmp_path))


def test_the_figures_draw_every_scale_and_any_model_name(tmp_path):
    from annotation.services.ratings import RatingGiven, ratings_record

    project = Project.objects.create(name="mt")
    raw = jsonl([grade(q, "base $x^$", 4 + q % 5) for q in range(10)])
    mt_bench_single_import(project=project, raw=raw, file="gpt-4_single.jsonl")
    judge = Annotator.objects.create(project=project, kind="judge", name="labels")
    model = LanguageModel.objects.get(project=project)
    ratings_record(
        annotator=judge,
        ratings=[
            RatingGiven(model.pk, str(q), "fail_pass_excellent", label=label)
            for q, label in enumerate(["fail", "pass", "excellent", "excellent"])
        ],
    )
    call_command(
        "ratings",
        "--project",
        "mt",
        "--figures",
        str(tmp_path),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == [
        "ratings-gpt-4-mt_bench_1_10.png",
        "ratings-labels-fail_pass_excellent.png",
    ]
    assert all((tmp_path / name).read_bytes().startswith(b"\x89PNG") for name in written)
    (labels,) = [t for t in rating_tables(rating_rows(project.pk)) if t.group == "labels"]
    assert labels.rows[0].shares == {"fail": 25.0, "pass": 25.0, "excellent": 50.0}


def test_a_file_beyond_one_lookup_imports_again_as_all_already_there(monkeypatch):
    # The stored ratings are looked up in chunks (PostgreSQL takes at most 65,535 parameters a
    # statement); a smaller chunk here crosses its boundaries with a small file.
    monkeypatch.setattr("annotation.services.ratings.LOOKUP_CHUNK", 1000)
    project = Project.objects.create(name="mt")
    raw = jsonl([grade(question, "a", 1 + question % 10) for question in range(2500)])
    first = mt_bench_single_import(project=project, raw=raw, file="big.jsonl")
    raw = jsonl([grade(question, "a", 1 + (question + 1) % 10) for question in range(2500)])
    again = mt_bench_single_import(project=project, raw=raw, file="big.jsonl")
    assert (first.created, again.created, again.skipped, again.conflicts) == (2500, 0, 2500, 2500)


def test_export_refuses_two_prompt_sets_whose_ids_clash_and_names_the_way_out(tmp_path):
    from annotation.models import Response
    from annotation.services.ratings import RatingGiven, ratings_record
    from tests.factories import make_prompt_set

    project = Project.objects.create(name="two sets")
    judge = Annotator.objects.create(project=project, kind="judge", name="gpt-4")
    model = LanguageModel.objects.create(project=project, name="m")
    given = []
    for set_name in ("first", "second"):
        prompt = make_prompt_set(project, 1, name=set_name).prompts.get()
        response = Response.objects.create(prompt=prompt, model=model, text="answer")
        given.append(RatingGiven(model.pk, "0", "mt_bench_1_10", score=7, response_id=response.pk))
    ratings_record(annotator=judge, ratings=given)
    with pytest.raises(CommandError, match=r"cannot tell them apart\. Export one round at a"):
        call_command("export_ratings", "--project", "two sets", "--out", str(tmp_path))
    assert list(tmp_path.iterdir()) == []
