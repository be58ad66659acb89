"""Every kind of AlpacaEval annotations file imports by AlpacaEval's own rules, and gives the
leaderboard's figures (from AlpacaEval's published leaderboards, in ../shared/fixtures)."""

import json

import pytest

from annotation.imports.alpaca_eval import (
    DROPPED_NULL,
    DROPPED_RANGE,
    DROPPED_SELF,
    alpaca_eval_import,
)
from annotation.imports.records import ImportFailed
from annotation.models import Annotation, Project, Round
from annotation.reports.alpaca_eval import alpaca_eval_figures
from annotation.reports.selectors import round_report
from annotation.selectors import round_judge_preferences
from tests.shared_data import ALPACA_EVAL

pytestmark = pytest.mark.django_db

# file, candidate generator: win_rate, standard_error, n_wins, n_wins_base, n_draws, n_total,
# discrete_win_rate, as AlpacaEval's leaderboards publish them.
PUBLISHED = {
    "mistral-7b-instruct-v0.2_vs_gpt4-1106-preview.annotations.json": (
        15.527950310559005,
        None,
        125,
        680,
        0,
        805,
        15.527950310559005,
    ),
    "claude-2.1_vs_gpt4-1106-preview.weighted.annotations.json": (
        15.733506736409938,
        1.120315865445773,
        115,
        688,
        2,
        805,
        14.409937888198757,
    ),
    "gemini-pro_vs_gpt4-1106-preview.cot.annotations.json": (
        17.039800995024876,
        1.320962077510413,
        135,
        665,
        4,
        804,
        17.039800995024876,
    ),
    "alpaca-7b_vs_text-davinci-003.alpaca-eval-1.annotations.json": (
        26.459627329192543,
        1.535711469748,
        205,
        584,
        16,
        805,
        26.459627329192543,
    ),
}


@pytest.fixture
def project():
    return Project.objects.create(name="alpaca")


def imported(project, name: str, **names):
    path = ALPACA_EVAL / name
    return alpaca_eval_import(
        project=project, raw=path.read_bytes(), file=path.name, set_name=name, **names
    )


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_kind_of_file_imports_with_the_leaderboards_figures(project, name):
    summary = imported(project, name)
    (preferences,) = round_judge_preferences(summary.round).values()
    figures = alpaca_eval_figures(preferences)
    win_rate, error, wins, losses, draws, total, discrete = PUBLISHED[name]
    assert figures is not None
    assert (figures.n_wins, figures.n_wins_base, figures.n_draws, figures.n_total) == (
        wins,
        losses,
        draws,
        total,
    )
    # The leaderboards print 17 digits; the last one depends on the order of summation.
    assert figures.win_rate == pytest.approx(win_rate, rel=1e-14)
    assert figures.discrete_win_rate == pytest.approx(discrete, rel=1e-14)
    if error is not None:
        assert figures.standard_error == pytest.approx(error, rel=1e-12)
    assert summary.created == total


def test_a_weighted_verdict_keeps_the_judges_probability_beside_its_rounded_label(project):
    name = "claude-2.1_vs_gpt4-1106-preview.weighted.annotations.json"
    records = json.loads((ALPACA_EVAL / name).read_text())
    imported(project, name)
    by_prompt = {a.item.prompt.text: a for a in Annotation.objects.select_related("item__prompt")}
    for record in records[:50]:
        annotation = by_prompt[record["instruction"]]
        assert annotation.preference == record["preference"] - 1  # claude-2.1 is output_2
        expected = (
            "tie"
            if record["preference"] == 1.5
            else ("candidate" if round(record["preference"]) == 2 else "baseline")
        )
        assert annotation.choice == expected


def test_null_preferences_and_old_draws_follow_alpaca_evals_rules(project):
    cot = imported(project, "gemini-pro_vs_gpt4-1106-preview.cot.annotations.json")
    assert cot.dropped == {DROPPED_NULL: 1}
    old = imported(project, "alpaca-7b_vs_text-davinci-003.alpaca-eval-1.annotations.json")
    assert old.dropped == {}
    draws = Annotation.objects.filter(item__round=old.round, choice="tie")
    assert draws.count() == 16 and set(draws.values_list("preference", flat=True)) == {0.5}


def test_a_model_compared_with_itself_and_out_of_range_preferences_are_dropped_and_counted(
    project,
):
    base = json.loads(
        (ALPACA_EVAL / "mistral-7b-instruct-v0.2_vs_gpt4-1106-preview.annotations.json").read_text()
    )[:3]
    itself = [{**r, "generator_2": r["generator_1"], "output_2": r["output_1"]} for r in base]
    summary = alpaca_eval_import(project=project, raw=json.dumps(itself).encode(), file="self.json")
    assert summary.dropped == {DROPPED_SELF: 3} and summary.round is None
    assert not Round.objects.exists()
    odd = [{**base[0], "preference": 3}, base[1], base[2]]
    summary = alpaca_eval_import(project=project, raw=json.dumps(odd).encode(), file="odd.json")
    assert summary.dropped == {DROPPED_RANGE: 1} and summary.created == 2


def test_no_imported_verdict_claims_an_order_shown_so_no_position_bias_is_reported(project):
    summary = imported(project, "mistral-7b-instruct-v0.2_vs_gpt4-1106-preview.annotations.json")
    assert not Annotation.objects.filter(order_known=True).exists()
    (judge,) = round_report(summary.round, resamples=10).judges
    assert (judge.position.first, judge.position.second, judge.position.ties) == (0, 0, 0)
    assert judge.position.prefers_first is None
    assert judge.alpaca_eval is not None and judge.alpaca_eval.n_total == 805


def test_a_reimport_with_other_verdicts_reports_the_conflicts(project):
    name = "mistral-7b-instruct-v0.2_vs_gpt4-1106-preview.annotations.json"
    records = json.loads((ALPACA_EVAL / name).read_text())[:20]
    alpaca_eval_import(project=project, raw=json.dumps(records).encode(), file="a.json")
    changed = [
        {**r, "preference": 3 - r["preference"]} if i < 3 else r for i, r in enumerate(records)
    ]
    again = alpaca_eval_import(project=project, raw=json.dumps(changed).encode(), file="b.json")
    assert (again.created, again.skipped, again.conflicts) == (0, 17, 3)


def test_a_duplicated_instruction_names_both_lines_and_nothing_is_written(project):
    records = json.loads(
        (ALPACA_EVAL / "mistral-7b-instruct-v0.2_vs_gpt4-1106-preview.annotations.json").read_text()
    )[:2]
    raw = "\n".join(json.dumps(r) for r in [records[0], records[1], records[0]]).encode()
    with pytest.raises(ImportFailed) as error:
        alpaca_eval_import(project=project, raw=raw, file="dup.jsonl")
    assert str(error.value) == (
        "dup.jsonl, line 3: field 'instruction': the same instruction as line 1; "
        "a round compares each prompt once"
    )
    assert not Round.objects.exists()


def test_platform_names_can_be_given_for_the_files_generators(project):
    summary = imported(
        project,
        "alpaca-7b_vs_text-davinci-003.alpaca-eval-1.annotations.json",
        candidate_name="Alpaca 7B",
        baseline_name="DaVinci003",
    )
    assert summary.round.candidate.name == "Alpaca 7B"
    assert [m.name for m in summary.round.baselines.all()] == ["DaVinci003"]
    with pytest.raises(ImportFailed, match="not one of this record's generators"):
        imported(
            project,
            "alpaca-7b_vs_text-davinci-003.alpaca-eval-1.annotations.json",
            candidate_generator="gpt-5",
        )


def test_a_preference_that_is_not_a_number_is_refused_with_its_line(project):
    record = json.loads(
        (ALPACA_EVAL / "mistral-7b-instruct-v0.2_vs_gpt4-1106-preview.annotations.json").read_text()
    )[0]
    with pytest.raises(ImportFailed) as error:
        alpaca_eval_import(
            project=project, raw=json.dumps({**record, "preference": "2"}).encode(), file="x.jsonl"
        )
    assert (error.value.line, error.value.field) == (1, "preference")


def test_the_report_page_gives_alpaca_evals_win_rate_and_no_position_bias(project, client):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    summary = imported(project, "claude-2.1_vs_gpt4-1106-preview.weighted.annotations.json")
    client.force_login(get_user_model().objects.create_superuser("op", password="pw-op-123"))
    page = client.get(reverse("round-report", args=[summary.round.pk])).content.decode()
    assert "AlpacaEval win rate" in page and "15.73 % ± 1.12" in page
    assert "discrete 14.41 %" in page
    assert "not known: the source did not record the order its judge saw" in page
