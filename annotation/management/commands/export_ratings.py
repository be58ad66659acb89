import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._ratings import add_scope_arguments, project_checked
from annotation.models import Annotator, Rating
from annotation.reports.exchange import (
    MT_BENCH_NUMERIC,
    file_part,
    mt_bench_clash,
    mt_bench_single,
)
from annotation.reports.ratings import rating_rows


class Command(BaseCommand):
    help = (
        "Export a project's numeric judge ratings (MT-Bench grades, helpfulness 1-6) as "
        "FastChat llm_judge single-answer judgments: model_judgment/<judge>_single.jsonl (MT-Bench "
        "scores) and <judge>.helpfulness_1_6_single.jsonl, one file per judge and scale, which "
        "FastChat's show_result.py and import_mt_bench read."
    )

    def add_arguments(self, parser):
        add_scope_arguments(parser)
        parser.add_argument("--out", required=True, help="Folder to write into (created).")
        parser.add_argument("--judge", action="append", default=[], help="A judge's name.")

    def handle(self, *args, project: str, out: str, round: int | None, **options):
        project_obj = project_checked(project, round)
        rows = rating_rows(project_obj.pk, round_id=round)
        rows = rows[(rows["kind"] == Annotator.Kind.JUDGE) & rows["scale"].isin(MT_BENCH_NUMERIC)]
        known = sorted(set(rows["annotator"]))
        unknown = sorted(set(options["judge"]) - set(known))
        if unknown:
            raise CommandError(
                f"No numeric ratings from {', '.join(unknown)} in {project!r} "
                f"(judges with some: {', '.join(known) or 'none'})."
            )
        if not known:
            raise CommandError(
                f"No judge of {project!r} has numeric ratings (MT-Bench or helpfulness 1-6) "
                "to export; Fail / Pass / Excellent labels have no MT-Bench score."
            )
        # Every file is made and checked before the first is written: a refusal writes nothing.
        files = []
        for judge in options["judge"] or known:
            for scale in sorted(set(rows[rows["annotator"] == judge]["scale"])):
                records = mt_bench_single(rows, judge, scale)
                clash = mt_bench_clash(records)
                if clash is not None:
                    model, question, turn = clash
                    raise CommandError(
                        f"{judge!r} rated two answers of {model!r} to questions with the id "
                        f"{question!r} (turn {turn}), from two prompt sets: MT-Bench's format "
                        "cannot tell them apart. Export one round at a time (--round ID)."
                    )
                # One file per scale: FastChat's show_result averages every score of a file.
                suffix = "" if scale == Rating.Scale.MT_BENCH_1_10 else f".{scale}"
                files.append((f"{file_part(judge)}{suffix}_single.jsonl", records))
        folder = Path(out) / "model_judgment"
        folder.mkdir(parents=True, exist_ok=True)
        for name, records in files:
            path = folder / name
            path.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                encoding="utf-8",
            )
            self.stdout.write(f"{path}: {len(records)} judgments")
