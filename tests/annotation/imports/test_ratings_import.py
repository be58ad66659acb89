"""Absolute labels of a round's answers imported from outside (authors, another tool's crowd),
and how often two ratings of the same answer agree, within and across groups."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.imports.ratings import ratings_import
from annotation.imports.records import ImportFailed
from annotation.models import Annotator, Rating
from annotation.reports.ratings import rating_agreement, rating_rows, rating_tables
from annotation.services.ratings import RatingGiven, ratings_record
from tests.factories import make_round

pytestmark = pytest.mark.django_db


def jsonl(records) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def labels(annotator, plan):
    """Records for the answers of prompts 0-3 of the candidate and the baseline."""
    return [
        {"prompt_id": str(prompt), "model": model, "label": label, "annotator": annotator}
        for (prompt, model), label in plan.items()
    ]


PLAN_ANN = {(0, "candidate"): "excellent", (1, "candidate"): "pass", (0, "baseline"): "fail"}
PLAN_BOB = {(0, "candidate"): "excellent", (1, "candidate"): "fail", (0, "baseline"): "fail"}


def test_authors_labels_become_ratings_of_the_rounds_responses():
    round_ = make_round(prompts=4)
    raw = jsonl(labels("ann", PLAN_ANN) + labels("bob", PLAN_BOB))
    summary = ratings_import(
        round_=round_, raw=raw, file="labels.jsonl", scale="fail_pass_excellent"
    )
    assert (summary.created, summary.annotators) == (6, ["ann", "bob"])
    for rating in Rating.objects.select_related("response__prompt", "response__model"):
        assert rating.annotator.kind == "author"
        assert (rating.response.prompt.external_id, rating.response.model.name) == (
            rating.question,
            rating.model.name,
        )
    changed = {**PLAN_BOB, (1, "candidate"): "pass"}
    again = ratings_import(
        round_=round_, raw=jsonl(labels("bob", changed)), file="x", scale="fail_pass_excellent"
    )
    assert (again.created, again.skipped, again.conflicts) == (0, 3, 1)


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"prompt_id": "9", "model": "candidate", "label": "pass"}, "prompt_id", "no answer"),
        ({"prompt_id": "1", "model": "other", "label": "pass"}, "model", "no answer of 'other'"),
        ({"prompt_id": "1", "model": "candidate", "label": "good"}, "label", "expected one of"),
        ({"prompt_id": "1", "model": "candidate"}, "score", "as a label or a number"),
        ({"model": "candidate", "label": "pass"}, "prompt_id", "missing"),
        ({"prompt_id": "1", "model": "candidate", "label": "pass", "turn": 0}, "turn", "from 1"),
        (
            {"prompt_id": "1", "model": "candidate", "label": "pass", "turn": 40000},
            "turn",
            "to 100",
        ),
    ],
)
def test_a_bad_record_names_its_line_and_field_and_nothing_is_written(record, field, message):
    round_ = make_round(prompts=4)
    good = {"prompt_id": "0", "model": "candidate", "label": "pass"}
    raw = jsonl([good, record])
    with pytest.raises(ImportFailed) as error:
        ratings_import(
            round_=round_, raw=raw, file="x.jsonl", scale="fail_pass_excellent", annotator="ann"
        )
    assert (error.value.line, error.value.field) == (2, field)
    assert message in error.value.message
    assert not Rating.objects.exists()
    assert not Annotator.objects.filter(name="ann").exists()


def test_agreement_within_authors_and_with_the_judge_counts_pairs_of_equal_ratings():
    round_ = make_round(prompts=4)
    raw = jsonl(labels("ann", PLAN_ANN) + labels("bob", PLAN_BOB))
    ratings_import(round_=round_, raw=raw, file="labels.jsonl", scale="fail_pass_excellent")
    judge = Annotator.objects.create(project=round_.project, kind="judge", name="gpt-4")
    responses = {
        (r.question, r.model.name): r
        for r in Rating.objects.filter(annotator__name="ann").select_related("model")
    }
    judge_labels = {
        ("0", "candidate"): "pass",
        ("1", "candidate"): "pass",
        ("0", "baseline"): "fail",
    }
    ratings_record(
        annotator=judge,
        ratings=[
            RatingGiven(
                responses[key].model_id,
                key[0],
                "fail_pass_excellent",
                label=label,
                response_id=responses[key].response_id,
            )
            for key, label in judge_labels.items()
        ],
    )
    cells = {(c.a, c.b): c for c in rating_agreement(rating_rows(round_.project_id))}
    # ann and bob agree on 2 of 3 answers.
    within = cells[("author", "author")]
    assert (within.answers, within.pairs) == (3, 3)
    assert within.agreement == pytest.approx(100 * 2 / 3)
    assert within.krippendorff_alpha is not None
    # Author-judge pairs: answer 0/candidate 0 of 2, 1/candidate 1 of 2, 0/baseline 2 of 2.
    across = cells[("author", "gpt-4")]
    assert (across.answers, across.pairs) == (3, 6)
    assert across.agreement == pytest.approx(100 * 3 / 6)
    assert across.mean_abs_difference is None
    low, high = across.ci95
    assert 0 <= low <= across.agreement <= high <= 100


def test_numeric_agreement_gives_the_mean_absolute_difference(tmp_path):
    round_ = make_round(prompts=2)
    records = [
        {"prompt_id": "0", "model": "candidate", "score": 5, "annotator": "ann"},
        {"prompt_id": "0", "model": "candidate", "score": 3, "annotator": "bob"},
        {"prompt_id": "1", "model": "candidate", "score": 6, "annotator": "ann"},
        {"prompt_id": "1", "model": "candidate", "score": 6, "annotator": "bob"},
    ]
    path = tmp_path / "scores.jsonl"
    path.write_bytes(jsonl(records))
    out = io.StringIO()
    call_command(
        "import_ratings", str(path), "--round", str(round_.pk), "--scale", "helpfulness_1_6",
        stdout=out,
    )  # fmt: skip
    assert "4 ratings added (0 already there, 0 of them with another value" in out.getvalue()
    (cell,) = rating_agreement(rating_rows(round_.project_id))
    assert (cell.agreement, cell.mean_abs_difference) == (50.0, 1.0)
    table = io.StringIO()
    call_command("ratings", "--project", round_.project.name, stdout=table)
    assert (
        "helpfulness_1_6 within author: 50.0% [0.0, 100.0] over 2 pairs on 2 answers; "
        "mean |difference| 1.00" in table.getvalue()
    )
    with pytest.raises(CommandError, match="No round 999"):
        call_command("import_ratings", str(path), "--round", "999", "--scale", "helpfulness_1_6")


def test_a_spreadsheets_empty_label_column_beside_a_score_is_read_as_the_score():
    round_ = make_round(prompts=1)
    raw = jsonl([{"prompt_id": "0", "model": "candidate", "label": None, "score": 4}])
    ratings_import(round_=round_, raw=raw, file="x", scale="helpfulness_1_6", annotator="ann")
    assert Rating.objects.get().score == 4.0


def test_two_turns_of_one_answer_by_one_annotator_are_no_pair():
    round_ = make_round(prompts=1)
    raw = jsonl(
        [{"prompt_id": "0", "model": "candidate", "label": "pass", "turn": turn} for turn in (1, 2)]
    )
    ratings_import(round_=round_, raw=raw, file="x", scale="fail_pass_excellent", annotator="a")
    assert rating_agreement(rating_rows(round_.project_id)) == []


def test_a_judge_named_like_a_kind_of_people_is_not_pooled_with_them():
    round_ = make_round(prompts=1)
    raw = jsonl([{"prompt_id": "0", "model": "candidate", "label": "pass"}])
    ratings_import(round_=round_, raw=raw, file="x", scale="fail_pass_excellent", annotator="a")
    scale = "fail_pass_excellent"
    ratings_import(round_=round_, raw=raw, file="x", scale=scale, kind="judge", annotator="author")
    tables = rating_tables(rating_rows(round_.project_id))
    assert sorted(table.group for table in tables) == ["author", "author (judge)"]
