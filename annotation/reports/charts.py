"""Charts in the style of the LIMA paper's Figures 1 and 2, and the leaderboard.

Figures are built on matplotlib's object API with the Agg canvas (no pyplot, no global
figure state), so that they can be drawn from a web worker.
"""

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from annotation.reports.bradley_terry import Rating
from annotation.reports.ratings import LABELLED, RatingTable
from annotation.reports.stats import Outcome

FORMATS = ("png", "svg", "pdf")
COLOURS = {"wins": "#2f6db3", "tie": "#b8bec8", "loses": "#d9822b"}
# Segments narrower than this (percent) are too small to carry their label.
MIN_LABELLED_PERCENT = 6
# Model names are wrapped at this width so that a long one keeps the layout.
NAME_WIDTH = 28


def plain(text: str, width: int | None = None) -> str:
    """Untrusted text (a model or group name) drawn as written: matplotlib would read
    `$...$` as mathtext (and fail on a lone `$`); long names wrap."""
    if width is not None:
        text = "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text
    return text.replace("$", r"\$")


@dataclass(frozen=True)
class Panel:
    """One block of bars: a title (an annotator group) and one (baseline, outcome) per bar."""

    title: str
    rows: Sequence[tuple[str, Outcome]]


def _row_note(outcome: Outcome) -> str:
    note = f"n = {outcome.n}   win or tie {outcome.win_or_tie:.0f}%"
    note += f"   win rate {outcome.win_rate:.1f}%"
    if outcome.ci95:
        low, high = outcome.ci95
        note += f" [{low:.1f}, {high:.1f}]"
    return note


def _stacked_percent_bars(
    ax, names: Sequence[str], segments: Sequence[Sequence[float]], colours, legend
) -> None:
    """Horizontal bars of three stacked segments (percent), each labelled when wide enough;
    the middle (grey) one in dark text."""
    left = [0.0] * len(names)
    for index, (widths, colour, label) in enumerate(zip(segments, colours, legend, strict=True)):
        bars = ax.barh(names, widths, left=left, color=colour, label=label, height=0.62)
        ax.bar_label(
            bars,
            labels=[f"{w:.0f}%" if w >= MIN_LABELLED_PERCENT else "" for w in widths],
            label_type="center",
            color="#1d2330" if index == 1 else "white",
            fontsize=9,
        )
        left = [start + width for start, width in zip(left, widths, strict=True)]


def preference_figure(
    panels: Sequence[Panel],
    *,
    candidate: str,
    title: str,
    mode: str,
    empty: str = "No annotations yet.",
) -> Figure:
    """Horizontal stacked bars: candidate wins / tie / candidate loses, in percent.

    Each bar is labelled with its baseline; beside it are the number of verdicts and the
    tie-discounted win rate with its 95 % interval. The mode (per annotation or per item) is
    stated under the title.
    """
    panels = [panel for panel in panels if panel.rows]
    bar_count = sum(len(panel.rows) for panel in panels)
    height = 1.3 + 0.42 * bar_count + 0.45 * len(panels)
    figure = Figure(figsize=(9, max(height, 2.2)), layout="constrained")
    FigureCanvasAgg(figure)
    intervals = any(o.ci95 for panel in panels for _, o in panel.rows)
    figure.suptitle(
        f"{plain(title)}\n{mode}; win rate counts a tie as half a win"
        + (" [95% bootstrap interval]" if intervals else ""),
        fontsize=10.5,
    )
    if not panels:
        figure.text(0.5, 0.45, empty, ha="center", va="center", color="#5b6475")
        return figure
    axes = figure.subplots(
        len(panels), 1, squeeze=False, height_ratios=[len(p.rows) + 0.6 for p in panels]
    )[:, 0]
    shown = plain(textwrap.shorten(candidate, 40, placeholder="…"))
    legend = (f"{shown} wins", "Tie", f"{shown} loses")
    for ax, panel in zip(axes, panels, strict=True):
        names = [plain(name, NAME_WIDTH) for name, _ in panel.rows]
        percents = [outcome.percents() for _, outcome in panel.rows]
        segments = [[p[segment] for p in percents] for segment in range(3)]
        _stacked_percent_bars(ax, names, segments, list(COLOURS.values()), legend)
        for row, (_, outcome) in enumerate(panel.rows):
            ax.text(101.5, row, _row_note(outcome), va="center", fontsize=8.5, color="#1d2330")
        ax.set_xlim(0, 100)
        ax.invert_yaxis()
        ax.set_title(plain(panel.title), loc="left", fontsize=10, fontweight="bold")
        ax.xaxis.set_major_formatter(PercentFormatter())
        ax.tick_params(axis="x", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].legend(loc="lower left", bbox_to_anchor=(0, 1.08), ncols=3, frameon=False, fontsize=9)
    return figure


def leaderboard_figure(ratings: Sequence[Rating], *, title: str) -> Figure:
    """Ratings with their 95 % intervals, best at the top."""
    figure = Figure(figsize=(8, 1.2 + 0.35 * max(len(ratings), 1)), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    names = [plain(r.model, NAME_WIDTH) for r in ratings]
    values = [r.rating for r in ratings]
    errors = interval_errors(values, [r.ci95 for r in ratings])
    ax.errorbar(values, names, xerr=errors, fmt="o", color=COLOURS["wins"], capsize=3)
    ax.invert_yaxis()
    ax.set_xlabel("Bradley-Terry rating (Elo scale, 95 % bootstrap interval)", fontsize=9)
    ax.set_title(plain(title), loc="left", fontsize=10, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def interval_errors(
    values: Sequence[float], intervals: Sequence[tuple[float, float] | None]
) -> list[list[float]]:
    """Matplotlib's error bar lengths below and above each value; none without an interval."""
    bounds = [interval or (value, value) for value, interval in zip(values, intervals, strict=True)]
    return [
        [value - low for value, (low, _) in zip(values, bounds, strict=True)],
        [high - value for value, (_, high) in zip(values, bounds, strict=True)],
    ]


def figure_bytes(figure: Figure, fmt: str, *, salt: str = "evalplatform") -> bytes:
    """The figure as PNG, SVG or PDF; the same figure gives the same bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; expected one of {', '.join(FORMATS)}")
    metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}
    buffer = io.BytesIO()
    # The salt seeds the SVG's element ids: figures inlined in one page need distinct ones.
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        figure.savefig(buffer, format=fmt, dpi=150, metadata=metadata[fmt])
    return buffer.getvalue()


# A labelled scale's labels, worst to best.
LABEL_COLOURS = ("#d9822b", "#b8bec8", "#2f6db3")


def ratings_figure(table: RatingTable) -> Figure:
    """One group's absolute ratings: a labelled scale's shares as stacked bars per model (Fail /
    Pass / Excellent as in the paper's Figure 3; unsafe / partly / safe), or a numeric scale's
    mean per model with its 95 % interval."""
    rows = table.rows
    figure = Figure(figsize=(9, 1.4 + 0.42 * max(len(rows), 1)), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    names = [plain(row.model, NAME_WIDTH) for row in rows]
    if table.scale in LABELLED:
        labelled = LABELLED[table.scale]
        segments = [[row.shares[label] for row in rows] for label in labelled.labels]
        legend = [label.title() for label in labelled.labels]
        _stacked_percent_bars(ax, names, segments, list(LABEL_COLOURS), legend)
        for index, row in enumerate(rows):
            note = f"n = {row.n}"
            if row.ci95:
                note += f"   {labelled.headline_title} [{row.ci95[0]:.0f}, {row.ci95[1]:.0f}]%"
            ax.text(101.5, index, note, va="center", fontsize=8.5, color="#1d2330")
        ax.set_xlim(0, 100)
        ax.xaxis.set_major_formatter(PercentFormatter())
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.02), ncols=3, frameon=False, fontsize=9)
    else:
        means = [row.mean or 0.0 for row in rows]
        errors = interval_errors(means, [row.ci95 for row in rows])
        ax.errorbar(means, names, xerr=errors, fmt="o", color=COLOURS["wins"], capsize=3)
        low, high = (1, 6) if table.scale == "helpfulness_1_6" else (1, 10)
        ax.set_xlim(low - 0.2, high + 0.2)
        ax.set_xlabel("mean score (95 % interval, resampling questions)", fontsize=9)
        for index, row in enumerate(rows):
            ax.text(high + 0.35, index, f"n = {row.n}", va="center", fontsize=8.5)
    ax.invert_yaxis()
    ax.set_title(plain(table.title), loc="left", fontsize=10, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    return figure
