"""The LIMA paper's Figure 1 (Zhou et al., 2023), as published, to redraw with our chart code.

Percent of the 300 test prompts (../shared/lima-reference.md); the paper gives no intervals.
"""

from matplotlib.figure import Figure

from annotation.reports.charts import Panel, preference_figure
from annotation.reports.stats import Outcome

PAPER_PROMPTS = 300
# baseline: (LIMA wins, tie, LIMA loses), percent.
FIGURE_1_HUMANS = {
    "Alpaca 65B": (53, 21, 26),
    "DaVinci003": (44, 21, 35),
    "Bard (April)": (33, 25, 42),
    "Claude (April)": (24, 22, 54),
    "GPT-4 (April)": (18, 25, 57),
}


def _outcome(percents: tuple[int, int, int]) -> Outcome:
    """The paper's percentages as counts out of its prompts."""
    wins, ties, losses = (round(p * PAPER_PROMPTS / 100) for p in percents)
    return Outcome(wins, ties, losses)


def paper_figure_1() -> Figure:
    rows = [(baseline, _outcome(percents)) for baseline, percents in FIGURE_1_HUMANS.items()]
    return preference_figure(
        [Panel("Human preference (Zhou et al., 2023, Figure 1)", rows)],
        candidate="LIMA",
        title="LIMA against each baseline, redrawn from the paper's percentages",
        mode=f"per prompt, {PAPER_PROMPTS} prompts per baseline",
    )
