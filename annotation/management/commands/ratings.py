import json
from pathlib import Path

from django.core.management.base import BaseCommand

from annotation.management.commands._ratings import add_scope_arguments, project_checked
from annotation.models import Rating
from annotation.reports.charts import figure_bytes, ratings_figure
from annotation.reports.exchange import file_part
from annotation.reports.ratings import (
    LABELLED,
    ModelRatings,
    RatingAgreement,
    RatingTable,
    rating_agreement,
    rating_rows,
    rating_tables,
)


class Command(BaseCommand):
    help = (
        "A project's absolute ratings per model: MT-Bench's mean score per turn and overall "
        "(as FastChat's show_result prints it), the mean helpfulness 1-6, the Fail / Pass / "
        "Excellent or safe / partly / unsafe shares; one table per judge and per group of people, "
        "with 95 % intervals over the questions; then how often two ratings of the same answer "
        "agree, within and across groups."
    )

    def add_arguments(self, parser):
        add_scope_arguments(parser)
        parser.add_argument("--scale", choices=Rating.Scale.values)
        parser.add_argument("--json", action="store_true", help="The tables as JSON.")
        parser.add_argument(
            "--figures",
            help="A folder for one figure per table (ratings-GROUP-SCALE.png): Fail / Pass / "
            "Excellent as stacked bars, a numeric scale's means with their intervals.",
        )

    def handle(self, *args, project: str, round: int | None, scale: str | None, **options):
        project_obj = project_checked(project, round)
        rows = rating_rows(project_obj.pk, round_id=round, scale=scale)
        tables = rating_tables(rows)
        agreement = rating_agreement(rows)
        if options["figures"]:
            folder = Path(options["figures"])
            folder.mkdir(parents=True, exist_ok=True)
            for table in tables:
                path = folder / f"ratings-{file_part(table.group)}-{table.scale}.png"
                path.write_bytes(figure_bytes(ratings_figure(table), "png"))
                self.stderr.write(f"wrote {path}")
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "tables": [table.as_json() for table in tables],
                        "agreement": [cell.as_json() for cell in agreement],
                    },
                    indent=2,
                )
            )
            return
        if not tables:
            self.stdout.write(f"No ratings in {project!r} yet.")
            return
        for table in tables:
            self.stdout.write(f"\n{table.title}")
            for line in _table_lines(table):
                self.stdout.write(f"  {line}")
        if agreement:
            self.stdout.write("\nAgreement on the same answers (pairs of ratings that are equal)")
            for cell in agreement:
                self.stdout.write(f"  {_agreement_line(cell)}")


def _interval(row: ModelRatings, digits: int) -> str:
    if row.ci95 is None:
        return "-"
    return f"{row.ci95[0]:.{digits}f} to {row.ci95[1]:.{digits}f}"


def _table_lines(table: RatingTable) -> list[str]:
    if table.scale in LABELLED:
        labelled = LABELLED[table.scale]
        heads = "".join(f" {label:>9}" for label in labelled.labels)
        lines = [f"{'model':<32} {'n':>5}{heads}  {labelled.headline_title}, 95 %"]
        for row in table.rows:
            shares = "".join(f" {row.shares[label]:>8.1f}%" for label in labelled.labels)
            lines.append(f"{row.model:<32} {row.n:>5}{shares}  {_interval(row, 1)}")
        return lines
    turns = sorted({turn for row in table.rows for turn in row.turn_means})
    turns = turns if len(turns) > 1 else []
    heads = "".join(f" {'turn ' + str(turn):>8}" for turn in turns)
    lines = [f"{'model':<32} {'n':>5} {'mean':>8}{heads}  95 %"]
    for row in table.rows:
        per_turn = "".join(
            f" {row.turn_means[turn]:>8.4f}" if turn in row.turn_means else f" {'-':>8}"
            for turn in turns
        )
        lines.append(
            f"{row.model:<32} {row.n:>5} {row.mean or 0.0:>8.4f}{per_turn}  {_interval(row, 2)}"
        )
    return lines


def _agreement_line(cell: RatingAgreement) -> str:
    who = f"within {cell.a}" if cell.a == cell.b else f"{cell.a} vs {cell.b}"
    line = f"{cell.scale} {who}: {cell.agreement:.1f}%"
    if cell.ci95:
        line += f" [{cell.ci95[0]:.1f}, {cell.ci95[1]:.1f}]"
    line += f" over {cell.pairs} pairs on {cell.answers} answers"
    if cell.mean_abs_difference is not None:
        line += f"; mean |difference| {cell.mean_abs_difference:.2f}"
    if cell.krippendorff_alpha is not None:
        line += f"; Krippendorff's alpha {cell.krippendorff_alpha:.3f}"
    return line
