"""Reports from the database: the real AlpacaEval run, the command's files, the page and the API."""

import json
import re
import xml.etree.ElementTree as ET
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from annotation.models import Annotation, Annotator, Item, Round
from annotation.reports.build import leaderboard
from annotation.reports.frames import project_battles
from annotation.reports.selectors import round_report
from annotation.services.rounds import round_create
from tests.factories import (
    make_model_with_responses,
    make_project,
    make_prompt_set,
    make_round,
    make_user,
)
from tests.shared_data import ANNOTATIONS

pytestmark = pytest.mark.django_db

JUDGE = "alpaca_eval_cot_gpt4_turbo_fn"
CHOICES = {"c": "candidate", "t": "tie", "b": "baseline"}


def run(*args: str) -> str:
    stdout = StringIO()
    call_command(*args, stdout=stdout)
    return stdout.getvalue()


def annotate(round_: Round, kind: str, name: str, choices: str, *, baseline: str) -> None:
    """One annotator's choices ('c', 't', 'b') on the round's items for `baseline`, in order."""
    annotator, _ = Annotator.objects.get_or_create(
        project_id=round_.project_id, kind=kind, name=name
    )
    items = Item.objects.filter(round=round_, baseline__name=baseline).order_by("position")
    Annotation.objects.bulk_create(
        Annotation(
            item=item,
            annotator=annotator,
            choice=CHOICES[letter],
            shown_choice=Annotation.shown_for(CHOICES[letter], item.candidate_first),
            candidate_first=item.candidate_first,
            seconds_spent=12.5,
        )
        for item, letter in zip(items, choices, strict=False)
    )


def served(response) -> bytes:
    """The body of a file served from a stored report build."""
    return b"".join(response.streaming_content)


@pytest.fixture
def judged_round() -> Round:
    """Four prompts against two baselines: three crowd workers, an author and a judge."""
    user = make_user()
    round_ = make_round(
        prompts=4, baselines=("alpaca", "davinci"), project=make_project("lab", user)
    )
    for baseline in ("alpaca", "davinci"):
        annotate(round_, "crowd", "w1", "cctb", baseline=baseline)
        annotate(round_, "crowd", "w2", "ctcb", baseline=baseline)
        annotate(round_, "crowd", "w3", "cbtb", baseline=baseline)
        annotate(round_, "author", "researcher", "cttb", baseline=baseline)
        annotate(round_, "judge", "gpt-4", "ccbb", baseline=baseline)
    return round_


def test_it_reports_the_published_alpaca_eval_figures_from_the_real_file():
    run("import_alpaca_eval", str(ANNOTATIONS), "--candidate", "Mistral-7B-Instruct-v0.2")

    summary = round_report(Round.objects.get()).summary()

    assert list(summary["groups"]) == [JUDGE]
    cell = summary["groups"][JUDGE]["gpt4_1106_preview"]
    assert (cell["wins"], cell["losses"], cell["ties"], cell["n"]) == (125, 680, 0, 805)
    assert cell["win_rate"] == 15.527950310559005
    low, high = cell["ci95"]
    assert low < cell["win_rate"] < high
    assert summary["agreement"] == []


def test_it_counts_per_annotation_and_per_item_for_every_group(judged_round):
    report = round_report(judged_round, resamples=200)

    assert list(report.per_annotation) == ["crowd", "author", "gpt-4"]
    crowd = report.per_annotation["crowd"]["alpaca"]
    # w1 cctb, w2 ctcb, w3 cbtb: per item c c c | c t b | t c t | b b b
    assert (crowd.wins, crowd.ties, crowd.losses) == (5, 3, 4)
    majority = report.per_item["crowd"]["alpaca"]
    # item 1 c, item 2 split (tie), item 3 t, item 4 b
    assert (majority.wins, majority.ties, majority.losses) == (1, 2, 1)


def test_it_writes_every_file_and_a_summary_in_the_documented_schema(judged_round, tmp_path):
    out = tmp_path / "report"

    stdout = run("report", str(judged_round.pk), "--out", str(out), "--resamples", "100")

    names = {path.name for path in out.iterdir()}
    assert names == {
        *(f"figure{n}.{fmt}" for n in (1, 2) for fmt in ("png", "svg", "pdf")),
        "agreement.csv",
        "annotations.jsonl",
        "summary.json",
    }
    assert str(out / "summary.json") in stdout
    assert (out / "figure1.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (out / "figure2.pdf").read_bytes().startswith(b"%PDF")
    ET.fromstring((out / "figure1.svg").read_bytes())

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {
        "round",
        "groups",
        "groups_per_item",
        "agreement",
        "alpaca_eval",
        "excluded_workers",
        "includes_excluded_workers",
    }
    assert set(summary["groups_per_item"]) == set(summary["groups"])
    assert summary["round"] == judged_round.pk
    for cells in summary["groups"].values():
        for cell in cells.values():
            assert set(cell) == {"wins", "ties", "losses", "n", "win_or_tie", "win_rate", "ci95"}
            assert cell["win_or_tie"] == pytest.approx(
                (cell["wins"] + cell["ties"]) / cell["n"] * 100
            )
            assert cell["n"] == cell["wins"] + cell["ties"] + cell["losses"]
            assert cell["win_rate"] == pytest.approx(
                (cell["wins"] + cell["ties"] / 2) / cell["n"] * 100
            )
            assert len(cell["ci95"]) == 2
    for cell in summary["agreement"]:
        assert set(cell) == {"a", "b", "items", "pairs", "agreement", "ci95"}
    pairs = {(c["a"], c["b"]): c for c in summary["agreement"]}
    assert (pairs["crowd", "crowd"]["items"], pairs["crowd", "crowd"]["pairs"]) == (8, 24)

    rows = [json.loads(line) for line in (out / "annotations.jsonl").read_text().splitlines()]
    assert len(rows) == Annotation.objects.count() == 40
    first = Annotation.objects.order_by("id").first()
    assert rows[0] == {
        "annotation": first.pk,
        "item": first.item_id,
        "prompt_id": first.item.prompt.external_id,
        "baseline": "alpaca",
        "annotator": first.annotator_id,
        "group": "crowd",
        "choice": "candidate",
        "candidate_first": first.candidate_first,
        "seconds": 12.5,
        "created_at": rows[0]["created_at"],
    }
    header = (out / "agreement.csv").read_text().splitlines()[0]
    assert header.startswith("a,b,items,pairs,agreement,ci95_low,ci95_high,raw_agreement")


def test_it_writes_only_the_formats_asked_for_and_skips_figure2_without_a_judge(tmp_path):
    round_ = make_round(prompts=3)
    annotate(round_, "crowd", "w1", "ctb", baseline="baseline")

    run("report", str(round_.pk), "--out", str(tmp_path), "--formats", "svg", "--resamples", "10")

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "agreement.csv",
        "annotations.jsonl",
        "figure1.svg",
        "summary.json",
    ]


def test_it_names_a_missing_round_and_an_unknown_format(tmp_path):
    with pytest.raises(CommandError, match="No round with id 999"):
        run("report", "999", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="unknown gif"):
        run("report", "999", "--out", str(tmp_path), "--formats", "png,gif")


def test_it_gives_the_same_numbers_for_the_same_seed(judged_round):
    first = round_report(judged_round, resamples=300, seed=3).summary()
    again = round_report(judged_round, resamples=300, seed=3).summary()
    other = round_report(judged_round, resamples=300, seed=4).summary()

    assert first == again
    assert first != other


def test_it_redraws_the_papers_figure_1(tmp_path):
    stdout = run("paper_figure", "--out", str(tmp_path), "--formats", "png,svg")

    assert (tmp_path / "paper_figure1.png").read_bytes().startswith(b"\x89PNG")
    ET.fromstring((tmp_path / "paper_figure1.svg").read_bytes())
    assert "paper_figure1.png" in stdout


# ---------------------------------------------------------------- page, downloads, API


def test_it_shows_the_report_page_to_a_member(client, judged_round):
    client.force_login(judged_round.project.members.get())

    response = client.get(reverse("round-report", args=[judged_round.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    figures = re.findall(r'<img src="([^"]+)"', html)
    assert len(figures) == 3  # humans, judges, leaderboard
    for figure in figures:
        response = client.get(figure)
        assert response["Content-Type"] == "image/svg+xml"
        ET.fromstring(served(response))
    assert "Human preference (Figure 1)" in html and "Judge preference (Figure 2)" in html
    assert "crowd \N{EN DASH} crowd" in html
    assert "Judge diagnostics: gpt-4" in html
    assert reverse("round-report-download", args=[judged_round.pk, "summary.json"]) in html
    detail = client.get(reverse("round-detail", args=[judged_round.pk])).content.decode()
    assert reverse("round-report", args=[judged_round.pk]) in detail


def test_it_switches_to_per_item_counts(client, judged_round):
    client.force_login(judged_round.project.members.get())

    html = client.get(
        reverse("round-report", args=[judged_round.pk]), {"mode": "item"}
    ).content.decode()

    assert "Per item (majority vote" in html


def test_it_hides_the_report_from_non_members(client, judged_round):
    client.force_login(make_user("outsider"))

    assert client.get(reverse("round-report", args=[judged_round.pk])).status_code == 404
    download = reverse("round-report-download", args=[judged_round.pk, "summary.json"])
    assert client.get(download).status_code == 404
    assert client.get(f"/api/rounds/{judged_round.pk}/report/").status_code == 404


def test_it_escapes_hostile_model_names_in_the_page(client):
    user = make_user()
    hostile = "<script>alert(1)</script>"
    round_ = make_round(prompts=2, baselines=(hostile,), project=make_project("lab", user))
    annotate(round_, "judge", "--><script>x</script>", "cb", baseline=hostile)
    client.force_login(user)

    html = client.get(reverse("round-report", args=[round_.pk])).content.decode()
    figures = [served(client.get(src)).decode() for src in re.findall(r'<img src="([^"]+)"', html)]

    assert figures
    for text in (html, *figures):
        assert "<script>alert(1)" not in text
        assert "<script>x" not in text


def test_it_serves_each_download(client, judged_round):
    client.force_login(judged_round.project.members.get())

    def get(name: str):
        return client.get(reverse("round-report-download", args=[judged_round.pk, name]))

    assert served(get("figure1.png")).startswith(b"\x89PNG")
    assert served(get("figure2.pdf")).startswith(b"%PDF")
    ET.fromstring(served(get("figure1.svg")))
    summary = get("summary.json")
    assert summary["Content-Type"] == "application/json"
    assert f'filename="round-{judged_round.pk}-summary.json"' in summary["Content-Disposition"]
    assert json.loads(served(summary))["round"] == judged_round.pk
    assert get("agreement.csv")["Content-Type"].startswith("text/csv")
    assert get("settings.py").status_code == 404
    assert get("figure3.png").status_code == 404


def test_it_serves_the_summary_from_the_api(client, judged_round):
    client.force_login(judged_round.project.members.get())

    response = client.get(f"/api/rounds/{judged_round.pk}/report/")

    assert response.status_code == 200
    assert response.json() == round_report(judged_round).summary()


def test_it_reports_a_round_without_annotations(client, tmp_path):
    user = make_user()
    round_ = make_round(prompts=3, project=make_project("lab", user))
    client.force_login(user)

    html = client.get(reverse("round-report", args=[round_.pk])).content.decode()
    run("report", str(round_.pk), "--out", str(tmp_path), "--formats", "png", "--resamples", "10")

    assert "No annotations yet" in html
    assert json.loads((tmp_path / "summary.json").read_text()) == {
        "round": round_.pk,
        "groups": {},
        "groups_per_item": {},
        "agreement": [],
        "alpaca_eval": {},
        "excluded_workers": [],
        "includes_excluded_workers": False,
    }
    assert (tmp_path / "figure1.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "annotations.jsonl").read_bytes() == b""


def test_it_ranks_every_model_of_the_project_from_one_groups_verdicts(client):
    user = make_user()
    project = make_project("lab", user)
    prompt_set = make_prompt_set(project, 6)
    strong, middle, weak = (
        make_model_with_responses(project, prompt_set, name)
        for name in ("strong", "middle", "weak")
    )
    first, second = (
        round_create(
            project=project,
            prompt_set=prompt_set,
            candidate=candidate,
            baselines=[middle],
            shared_items=0,
        )
        for candidate in (strong, weak)
    )
    annotate(first, "crowd", "w1", "cccctb", baseline="middle")
    annotate(second, "crowd", "w1", "bbbbtc", baseline="middle")
    annotate(second, "judge", "gpt-4", "cccccc", baseline="middle")

    crowd = leaderboard(project_battles(project.pk), "crowd", resamples=100)
    judge = leaderboard(project_battles(project.pk), "gpt-4", resamples=100)

    assert [r.model for r in crowd] == ["strong", "middle", "weak"]
    assert [r.model for r in judge] == ["weak", "middle"]
    client.force_login(user)
    html = client.get(
        reverse("round-report", args=[second.pk]), {"leaderboard": "gpt-4"}
    ).content.decode()
    assert "<strong>Judge: gpt-4</strong>" in html
