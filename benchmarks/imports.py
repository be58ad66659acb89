"""Import speed: the bulk import service against a per-row ORM loop on the same rows.

    python benchmarks/imports.py [--rows 100000]

Runs on whatever DATABASE_URL points at (a throw-away SQLite file by default) and prints
rows/s for each and their ratio.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from annotation.imports.prompts import prompts_import
    from annotation.imports.responses import responses_import
    from annotation.models import LanguageModel, Project, Prompt, PromptSet, Response

    call_command("migrate", verbosity=0)
    project, _ = Project.objects.get_or_create(name=f"bench-{time.time_ns()}")
    prompts = b"\n".join(
        json.dumps({"id": i, "prompt": f"Prompt number {i}: explain topic {i % 97}."}).encode()
        for i in range(args.rows)
    )
    outputs = b"\n".join(
        json.dumps({"prompt_id": i, "output": f"An answer to prompt {i}.", "model": "m"}).encode()
        for i in range(args.rows)
    )

    started = time.perf_counter()
    prompts_import(project=project, set_name="bulk", raw=prompts, file="prompts.jsonl")
    responses_import(project=project, set_name="bulk", raw=outputs, file="outputs.jsonl")
    bulk_seconds = time.perf_counter() - started

    sample = min(args.rows, 5_000)
    started = time.perf_counter()
    with transaction.atomic():
        prompt_set = PromptSet.objects.create(project=project, name="row by row")
        model = LanguageModel.objects.create(project=project, name="row-by-row")
        for i in range(sample):
            prompt = Prompt.objects.create(
                prompt_set=prompt_set, external_id=str(i), position=i, text=f"Prompt {i}"
            )
            Response.objects.create(prompt=prompt, model=model, text=f"An answer to {i}.")
    loop_seconds = time.perf_counter() - started

    bulk_rate = 2 * args.rows / bulk_seconds
    loop_rate = 2 * sample / loop_seconds
    print(f"database: {django.db.connection.vendor}")
    for label, rows, seconds, rate in (
        ("bulk import service", 2 * args.rows, bulk_seconds, bulk_rate),
        ("per-row ORM loop", 2 * sample, loop_seconds, loop_rate),
    ):
        print(f"{label:<20} {rows} rows in {seconds:.2f}s = {rate:,.0f} rows/s")
    print(f"ratio (bulk / loop): {bulk_rate / loop_rate:.1f}x")


if __name__ == "__main__":
    main()
