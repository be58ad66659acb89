import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project, Round
from annotation.reports.exchange import (
    PairRules,
    alpaca_eval_annotations,
    alpaca_eval_model_outputs,
    file_part,
    mt_bench_pairwise,
    preference_pairs,
)
from annotation.reports.frames import project_verdict_rows, round_verdict_rows


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


class Command(BaseCommand):
    help = (
        "Export a round's verdicts: AlpacaEval's annotations.json (one per annotator group) and "
        "model_outputs.json, MT-Bench pairwise judgments, or preference pairs (JSON Lines, and a "
        "Hugging Face dataset with --hf-dataset) for TRL's DPOTrainer, of a round or of every "
        "round of a project (--project)."
    )

    def add_arguments(self, parser):
        parser.add_argument("round_id", type=int, nargs="?")
        parser.add_argument(
            "--project",
            help="Preference pairs from every round of this project (instead of one round).",
        )
        parser.add_argument(
            "--format", choices=["alpaca-eval", "preference-pairs", "mt-bench"], required=True
        )
        parser.add_argument("--out", required=True, help="Folder to write into (created).")
        parser.add_argument(
            "--group", action="append", default=[], help="crowd, author or a judge's name."
        )
        parser.add_argument("--min-agreement", type=float, default=0.0)
        parser.add_argument("--ties", choices=["drop", "keep"], default="drop")
        parser.add_argument(
            "--include-excluded", action="store_true", help="Count excluded workers too."
        )
        parser.add_argument(
            "--hf-dataset",
            action="store_true",
            help="Also save a datasets.Dataset (needs [train]).",
        )

    def handle(self, *args, round_id: int | None, project: str | None, **options):
        if (round_id is None) == (project is None):
            raise CommandError("Name one round (ROUND_ID) or one project (--project NAME).")
        if project is not None:
            if options["format"] != "preference-pairs":
                raise CommandError(
                    f"--format {options['format']} exports one round: give its ROUND_ID "
                    "(a project's rounds compare different models)."
                )
            project_obj = Project.objects.filter(name=project).first()
            if project_obj is None:
                raise CommandError(f"No project named {project!r}.")
            rows = project_verdict_rows(
                project_obj.pk, include_excluded=options["include_excluded"]
            )
            where = f"project {project!r}"
        else:
            assert round_id is not None  # One of the two is given (checked above).
            round_ = Round.objects.filter(pk=round_id).first()
            if round_ is None:
                raise CommandError(f"No round {round_id}.")
            rows = round_verdict_rows(round_.pk, include_excluded=options["include_excluded"])
            where = f"round {round_.pk}"
        known = sorted(set(rows["group"])) if len(rows) else []
        unknown = sorted(set(options["group"]) - set(known))
        if unknown:
            raise CommandError(
                f"No annotations from {', '.join(unknown)} in {where} "
                f"(its groups: {', '.join(known) or 'none'})."
            )
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        written = []
        if options["format"] == "mt-bench":
            for group in options["group"] or [g for g in known if g not in ("crowd", "author")]:
                name = f"model_judgment.{file_part(group)}_pair.jsonl"
                written.append(_write_jsonl(out / name, mt_bench_pairwise(rows, group)))
        elif options["format"] == "alpaca-eval":
            for group in options["group"] or known:
                name = f"annotations.{file_part(group)}.json"
                written.append(_write_json(out / name, alpaca_eval_annotations(rows, group)))
            for model, records in alpaca_eval_model_outputs(rows).items():
                written.append(_write_json(out / f"model_outputs.{file_part(model)}.json", records))
        else:
            rules = PairRules(
                groups=tuple(options["group"]),
                min_agreement=options["min_agreement"],
                ties=options["ties"],
            )
            pairs, ties = preference_pairs(rows, rules)
            written.append(_write_jsonl(out / "preference_pairs.jsonl", pairs))
            if options["ties"] == "keep":
                written.append(_write_jsonl(out / "ties.jsonl", ties))
            if options["hf_dataset"]:
                try:
                    import datasets  # The [train] extra: only this export needs it.
                except ImportError as missing:
                    raise CommandError("--hf-dataset needs pip install '.[train]'.") from missing
                datasets.Dataset.from_list(pairs).save_to_disk(str(out / "preference_pairs"))
                written.append(out / "preference_pairs")
            self.stdout.write(f"{len(pairs)} pairs, {len(ties)} tied items kept apart.")
        for path in written:
            self.stdout.write(str(path))
