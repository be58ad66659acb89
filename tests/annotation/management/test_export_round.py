"""export_round: AlpacaEval files that AlpacaEval's rules read back to the same figures, and
preference pairs for DPO (JSON Lines and a Hugging Face dataset)."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotation.imports.alpaca_eval import alpaca_eval_import
from annotation.models import Annotator, Project
from annotation.reports.alpaca_eval import alpaca_eval_figures
from annotation.selectors import round_judge_preferences
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from annotation.services.judgments import annotations_record_judgments
from annotation.services.rounds import round_create
from tests.factories import make_model_with_responses, make_prompt_set, make_round
from tests.shared_data import ALPACA_EVAL

pytestmark = pytest.mark.django_db
WEIGHTED = "claude-2.1_vs_gpt4-1106-preview.weighted.annotations.json"


def run(*args) -> str:
    out = io.StringIO()
    call_command("export_round", *args, stdout=out)
    return out.getvalue()


def test_an_alpaca_eval_export_reads_back_to_the_same_figures(tmp_path):
    path = ALPACA_EVAL / WEIGHTED
    summary = alpaca_eval_import(
        project=Project.objects.create(name="a"), raw=path.read_bytes(), file=path.name
    )
    run(str(summary.round.pk), "--format", "alpaca-eval", "--out", str(tmp_path))
    exported = tmp_path / "annotations.weighted_alpaca_eval_gpt4_turbo.json"
    records = json.loads(exported.read_text())
    original = {r["instruction"]: r["preference"] for r in json.loads(path.read_text())}
    assert len(records) == 805
    assert all(r["preference"] == pytest.approx(original[r["instruction"]]) for r in records)
    outputs = json.loads((tmp_path / "model_outputs.claude-2.1.json").read_text())
    assert len(outputs) == 805 and set(outputs[0]) == {"instruction", "output", "generator"}

    again = alpaca_eval_import(
        project=Project.objects.create(name="b"), raw=exported.read_bytes(), file=exported.name
    )
    (preferences,) = round_judge_preferences(again.round).values()
    figures = alpaca_eval_figures(preferences)
    assert figures is not None
    assert figures.win_rate == pytest.approx(15.733506736409938, rel=1e-12)
    assert (figures.n_wins, figures.n_wins_base, figures.n_draws) == (115, 688, 2)


def crowd_round():
    """Three crowd workers on four items: unanimous, 2 to 1, 1 to 1 and a tie, 1 and 2 ties."""
    round_ = make_round(prompts=4, annotators_per_item=3, items_per_worker=4, seed=1)
    plans = {
        "w1": ["candidate"] * 4,
        "w2": ["candidate", "baseline", "baseline", "tie"],
        "w3": ["candidate", "candidate", "tie", "tie"],
    }
    for name, plan in plans.items():
        session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name=name)
        for _ in range(4):
            assignment = assignment_current(session=session)
            item = assignment.item
            choice = plan[item.position]
            letter = {"tie": "N", "candidate": "A" if item.candidate_first else "B"}.get(
                choice, "B" if item.candidate_first else "A"
            )
            annotation_submit(
                session=session, assignment_token=assignment.token, shown_choice=letter
            )
    return round_


def test_preference_pairs_take_the_majoritys_choice_with_its_margin(tmp_path):
    round_ = crowd_round()
    out = run(
        str(round_.pk), "--format", "preference-pairs", "--out", str(tmp_path), "--ties", "keep"
    )
    assert "3 pairs, 1 tied items kept apart." in out
    pairs = [
        json.loads(line) for line in (tmp_path / "preference_pairs.jsonl").read_text().splitlines()
    ]
    by_prompt = {p["prompt_id"]: p for p in pairs}
    assert by_prompt["0"]["chosen_model"] == "candidate" and by_prompt["0"]["margin"] == 1.0
    assert by_prompt["1"]["chosen_model"] == "candidate"
    assert by_prompt["1"]["margin"] == pytest.approx(1 / 3)
    assert (by_prompt["1"]["candidate_votes"], by_prompt["1"]["baseline_votes"]) == (2, 1)
    assert by_prompt["3"]["chosen_model"] == "candidate" and by_prompt["3"]["tie_votes"] == 2
    assert {"prompt", "chosen", "rejected"} <= set(pairs[0])
    (tie,) = [json.loads(line) for line in (tmp_path / "ties.jsonl").read_text().splitlines()]
    assert tie["prompt_id"] == "2"

    run(
        str(round_.pk),
        "--format",
        "preference-pairs",
        "--out",
        str(tmp_path),
        "--min-agreement",
        "0.5",
    )
    strict = (tmp_path / "preference_pairs.jsonl").read_text().splitlines()
    assert len(strict) == 2  # The 1-0-2 item has 1 of 3 votes for its chosen answer.


def test_preference_pairs_load_as_a_hugging_face_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    round_ = crowd_round()
    run(str(round_.pk), "--format", "preference-pairs", "--out", str(tmp_path), "--hf-dataset")
    dataset = datasets.load_from_disk(str(tmp_path / "preference_pairs"))
    assert dataset.num_rows == 3
    assert {"prompt", "chosen", "rejected", "margin"} <= set(dataset.column_names)


def test_it_names_a_group_the_round_does_not_have(tmp_path):
    round_ = crowd_round()
    with pytest.raises(
        CommandError, match=r"No annotations from gpt-4 in round \d+ \(its groups: crowd\)"
    ):
        run(str(round_.pk), "--format", "alpaca-eval", "--out", str(tmp_path), "--group", "gpt-4")


def test_names_with_a_slash_are_written_as_distinct_file_names_in_the_folder(tmp_path):
    # Hugging Face model names hold a slash; a judge's name may hold anything, and "a/b" and
    # "a_b" must not share a file.
    round_ = make_round(prompts=2, candidate="meta-llama/Llama-2-7b-chat-hf", baselines=("a/b",))
    for name in ("gpt/4", "gpt_4"):
        judge = Annotator.objects.create(project=round_.project, kind="judge", name=name)
        annotations_record_judgments(
            annotator=judge,
            judgments=[(item, "candidate", {True: "candidate"}) for item in round_.items.all()],
        )
    run(str(round_.pk), "--format", "alpaca-eval", "--out", str(tmp_path))
    written = sorted(path.name for path in tmp_path.iterdir())
    assert all(path.is_file() for path in tmp_path.iterdir())
    assert len(written) == 4
    assert "annotations.gpt_4.json" in written
    assert [n for n in written if n.startswith("annotations.gpt_4-")]
    (llama,) = [n for n in written if n.startswith("model_outputs.meta-llama_Llama-2-7b-chat-hf")]
    assert json.loads((tmp_path / llama).read_text())[0]["generator"] == (
        "meta-llama/Llama-2-7b-chat-hf"
    )


def test_preference_pairs_of_a_project_hold_every_rounds_pairs(tmp_path):
    first = crowd_round()
    project = first.project
    prompt_set = make_prompt_set(project, 2, name="more prompts")
    second = round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=make_model_with_responses(project, prompt_set, "other"),
        baselines=[make_model_with_responses(project, prompt_set, "third")],
        shared_items=0,
        seed=5,
    )
    judge = Annotator.objects.create(project=project, kind="judge", name="gpt-4")
    annotations_record_judgments(
        annotator=judge,
        judgments=[(item, "baseline", {True: "baseline"}) for item in second.items.all()],
    )
    out = run("--project", project.name, "--format", "preference-pairs", "--out", str(tmp_path))
    assert "5 pairs, 0 tied items kept apart." in out
    pairs = [
        json.loads(line) for line in (tmp_path / "preference_pairs.jsonl").read_text().splitlines()
    ]
    assert sorted(p["chosen_model"] for p in pairs) == ["candidate"] * 3 + ["third"] * 2
    with pytest.raises(CommandError, match="exports one round"):
        run("--project", project.name, "--format", "alpaca-eval", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="Name one round"):
        run(str(first.pk), "--project", project.name, "--format", "preference-pairs", "--out", "x")
