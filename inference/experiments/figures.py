"""The paper's ablation figures: mean helpfulness per training set with 95 % intervals, as bars
side by side (Figure 5: diversity, quality) or against the number of examples on a log-scale
x-axis (Figure 6: quantity). Built like the reports' charts: matplotlib's object API."""

from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from annotation.reports.charts import COLOURS, NAME_WIDTH, interval_errors, plain
from inference.experiments.models import Experiment
from inference.experiments.selectors import ArmResult

Y_LABEL = "mean helpfulness, 1-6 (95 % interval, resampling prompts)"


def experiment_figure(experiment: Experiment, results: Sequence[ArmResult]) -> Figure:
    scored = [result for result in results if result.mean is not None]
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    means = [result.mean or 0.0 for result in scored]
    errors = interval_errors(means, [result.ci95 for result in scored])
    if experiment.axis == Experiment.Axis.SIZE:
        sizes = [result.examples for result in scored]
        ax.errorbar(sizes, means, yerr=errors, fmt="-o", color=COLOURS["wins"], capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [f"{size:,}" for size in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training examples (log scale)", fontsize=9)
    else:
        names = [plain(result.label, NAME_WIDTH // 2) for result in scored]
        ax.bar(names, means, yerr=errors, color=COLOURS["wins"], capsize=4, width=0.6)
    ax.set_ylim(1, 6)
    ax.set_ylabel(Y_LABEL, fontsize=9)
    ax.set_title(plain(experiment.name), loc="left", fontsize=10, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    return figure
