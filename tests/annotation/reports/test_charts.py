"""Figures: valid PNG, SVG and PDF files, and SVG safe to show in a page."""

import xml.etree.ElementTree as ET

from annotation.reports.bradley_terry import Rating
from annotation.reports.charts import (
    Panel,
    figure_bytes,
    leaderboard_figure,
    preference_figure,
)
from annotation.reports.paper import paper_figure_1
from annotation.reports.stats import Outcome

HOSTILE = "</svg><script>alert(1)</script><!-- -->"


def sample_figure(name: str = "alpaca-65b"):
    panel = Panel("Crowd workers", [(name, Outcome(53, 21, 26, (55.0, 70.0)))])
    return preference_figure([panel], candidate="lima", title="Human preference", mode="per item")


def test_it_writes_valid_png_svg_and_pdf():
    figure = sample_figure()

    assert figure_bytes(figure, "png").startswith(b"\x89PNG\r\n\x1a\n")
    assert figure_bytes(figure, "pdf").startswith(b"%PDF")
    root = ET.fromstring(figure_bytes(figure, "svg"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_it_gives_the_same_bytes_for_the_same_figure():
    assert figure_bytes(sample_figure(), "svg") == figure_bytes(sample_figure(), "svg")
    assert figure_bytes(sample_figure(), "pdf") == figure_bytes(sample_figure(), "pdf")


def test_it_escapes_names_in_the_svg_the_page_shows():
    svg = figure_bytes(sample_figure(HOSTILE), "svg").decode()

    assert "<script" not in svg
    assert svg.count("</svg>") == 1
    assert "<!-- -->" not in svg
    ET.fromstring(svg)


def test_it_says_so_when_there_is_nothing_to_draw():
    figure = preference_figure([], candidate="lima", title="Judge preference", mode="per item")

    assert "No annotations yet." in [t.get_text() for t in figure.texts]


def test_it_redraws_the_papers_figure_1_from_its_percentages():
    figure = paper_figure_1()

    (ax,) = figure.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["Alpaca 65B", "DaVinci003", "Bard (April)", "Claude (April)", "GPT-4 (April)"]
    wins = [patch.get_width() for patch in ax.containers[0]]
    assert wins == [53, 44, 33, 24, 18]
    assert figure_bytes(figure, "png").startswith(b"\x89PNG")


def test_it_draws_the_leaderboard():
    rows = [Rating("a", 1050, (1040, 1060), 10, 60), Rating("b", 950, (940, 960), 10, 40)]

    assert figure_bytes(leaderboard_figure(rows, title="crowd"), "png").startswith(b"\x89PNG")


def test_it_draws_any_model_name_as_plain_text():
    for name in ("base $x^$", "$\\frac{1}{0}$ model", "cost: $5 and $10", "a$"):
        svg = figure_bytes(sample_figure(name), "svg").decode()  # mathtext would raise here
        assert ET.fromstring(svg) is not None
        figure = sample_figure(name)
        figure_bytes(figure, "png")
        labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
        assert labels == [name.replace("$", "\\$")]  # "\$" is matplotlib's literal dollar


def test_a_long_model_name_wraps_and_keeps_the_bars_inside_the_figure():
    long_name = "an-extremely-long-model-name-from-an-import-file-" * 3
    figure = sample_figure(long_name)
    figure_bytes(figure, "png")
    (label,) = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert "\n" in label and max(len(line) for line in label.split("\n")) <= 28
    renderer = figure.canvas.get_renderer()
    box = figure.axes[0].get_tightbbox(renderer)
    assert box is not None and box.x0 >= 0


def test_a_judge_only_round_says_it_has_no_human_annotations():
    from annotation.reports.build import build_report
    from annotation.reports.counts import annotation_frame
    from annotation.reports.export import figure_1

    frame = annotation_frame(
        annotation=[1],
        item=[1],
        prompt=["p"],
        baseline=["b"],
        annotator=[1],
        group=["gpt-4"],
        label=[0],
        candidate_first=[True],
        seconds=[None],
        created_at=[None],
        candidate_chars=[10],
        baseline_chars=[10],
    )
    report = build_report(frame, round_id=1, candidate="c", baselines=["b"], resamples=10)
    texts = [t.get_text() for t in figure_1(report).texts]
    assert "No human annotations: only model judges have answered." in texts
