from pathlib import Path

from django.core.management.base import BaseCommand

from annotation.management.commands.report import formats_list
from annotation.reports.charts import FORMATS, figure_bytes
from annotation.reports.paper import paper_figure_1


class Command(BaseCommand):
    help = (
        "Redraw the LIMA paper's Figure 1 from its published percentages with the report's "
        "chart code, to hold beside the paper: writes paper_figure1.<fmt> into --out."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, type=Path, help="Folder, created if new.")
        parser.add_argument("--formats", default=",".join(FORMATS), help="e.g. png,svg,pdf")

    def handle(self, *args, out: Path, formats: str, **options):
        chosen = formats_list(formats)
        out.mkdir(parents=True, exist_ok=True)
        figure = paper_figure_1()
        for fmt in chosen:
            path = out / f"paper_figure1.{fmt}"
            path.write_bytes(figure_bytes(figure, fmt, salt="paper_figure1"))
            self.stdout.write(str(path))
