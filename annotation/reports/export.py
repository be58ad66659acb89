"""A report's files: figure1/figure2 in each format, agreement.csv, annotations.jsonl and
summary.json. The command writes them to a folder; the page serves them one at a time."""

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from annotation.reports.build import RoundReport
from annotation.reports.charts import FORMATS, Panel, figure_bytes, preference_figure
from annotation.reports.counts import LABELS
from annotation.reports.stats import MODE_TITLES, Mode

AGREEMENT_COLUMNS = [
    "a",
    "b",
    "items",
    "pairs",
    "agreement",
    "ci95_low",
    "ci95_high",
    "raw_agreement",
    "cohen_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
]


class UnknownFile(LookupError):
    pass


def group_title(group: str) -> str:
    return {"crowd": "Crowd workers", "author": "Authors"}.get(group, f"Judge: {group}")


def _panels(report: RoundReport, groups: Sequence[str], mode: Mode) -> list[Panel]:
    cells = report.outcomes(mode)
    return [Panel(group_title(g), list(cells.get(g, {}).items())) for g in groups]


def figure_1(report: RoundReport, mode: Mode = "annotation") -> Figure:
    """Human preference: a block of bars per human group (crowd, authors)."""
    return preference_figure(
        _panels(report, report.human_groups, mode),
        candidate=report.candidate,
        title=f"Human preference: {report.candidate} against each baseline",
        mode=MODE_TITLES[mode],
        empty="No human annotations: only model judges have answered."
        if report.judge_groups
        else "No annotations yet.",
    )


def figure_2(report: RoundReport, mode: Mode = "annotation") -> Figure:
    """Model-judge preference: a block of bars per judge."""
    return preference_figure(
        _panels(report, report.judge_groups, mode),
        candidate=report.candidate,
        title=f"Judge preference: {report.candidate} against each baseline",
        mode=MODE_TITLES[mode],
    )


def agreement_csv(report: RoundReport) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(AGREEMENT_COLUMNS)
    for cell in report.agreement:
        writer.writerow(
            [
                cell.a,
                cell.b,
                cell.items,
                cell.pairs,
                cell.agreement,
                *cell.ci95,
                cell.raw,
                *(
                    "" if value is None else value
                    for value in (cell.cohen_kappa, cell.fleiss_kappa, cell.krippendorff_alpha)
                ),
            ]
        )
    return buffer.getvalue().encode()


def annotations_jsonl(report: RoundReport) -> bytes:
    """One line per annotation: the item and prompt, the baseline, who answered (annotator id
    and group), the choice in model terms, the order shown, the time taken and when."""
    frame = report.frame
    choices = pd.Categorical.from_codes(frame["label"], categories=pd.Index(LABELS))
    rows = pd.DataFrame(
        {
            "annotation": frame["annotation"],
            "item": frame["item"],
            "prompt_id": frame["prompt"].astype(str),
            "baseline": frame["baseline"].astype(str),
            "annotator": frame["annotator"],
            "group": frame["group"].astype(str),
            "choice": choices.astype(str),
            "candidate_first": frame["candidate_first"],
            "seconds": frame["seconds"],
            "created_at": pd.to_datetime(frame["created_at"], utc=True),
        }
    )
    if rows.empty:
        return b""
    text = rows.to_json(orient="records", lines=True, date_format="iso", force_ascii=False)
    return text.encode() if text.endswith("\n") else (text + "\n").encode()


def summary_json(report: RoundReport) -> bytes:
    return (json.dumps(report.summary(), indent=2, ensure_ascii=False) + "\n").encode()


FIGURES = {"figure1": figure_1, "figure2": figure_2}
DATA = {
    "agreement.csv": agreement_csv,
    "annotations.jsonl": annotations_jsonl,
    "summary.json": summary_json,
}


def figure_stems(report: RoundReport) -> list[str]:
    """figure1 always (it says so when no human has annotated yet), figure2 when judged."""
    return ["figure1", "figure2"] if report.judge_groups else ["figure1"]


def file_names(report: RoundReport, formats: Sequence[str] = FORMATS) -> list[str]:
    return [f"{stem}.{fmt}" for stem in figure_stems(report) for fmt in formats] + list(DATA)


def report_file(report: RoundReport, name: str) -> bytes:
    """One of the report's files by name; UnknownFile for any other name."""
    if name in DATA:
        return DATA[name](report)
    stem, _, fmt = name.partition(".")
    if stem in FIGURES and fmt in FORMATS:
        return figure_bytes(FIGURES[stem](report), fmt, salt=stem)
    raise UnknownFile(name)


def report_write(report: RoundReport, out: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write the report's files into `out` (created if needed); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem in figure_stems(report):
        figure = FIGURES[stem](report)
        for fmt in formats:
            written.append(out / f"{stem}.{fmt}")
            written[-1].write_bytes(figure_bytes(figure, fmt, salt=stem))
    for name, render in DATA.items():
        written.append(out / name)
        written[-1].write_bytes(render(report))
    return written
