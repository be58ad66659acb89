"""Importing an AlpacaEval `annotations.json`: prompts, both models' responses, a round, and
each verdict as the named judge's annotation."""

from dataclasses import dataclass

from django.db import transaction

from annotation.imports.records import (
    BATCH_SIZE,
    ImportFailed,
    ImportSummary,
    Progress,
    Record,
    no_progress,
    read_records,
    required_text,
)
from annotation.imports.responses import models_by_name, prompt_lookup
from annotation.models import (
    Annotation,
    Annotator,
    Item,
    Project,
    Prompt,
    PromptSet,
    Response,
    Round,
)
from annotation.services.judgments import annotations_record_judgments
from annotation.services.rounds import round_add_missing_items, round_create

ALPACA_EVAL_PREFERENCES = {1: "output_1", 2: "output_2", 1.5: "tie"}


@dataclass(frozen=True)
class ParsedJudgment:
    line: int
    instruction: str
    outputs: dict[str, str]  # generator name -> output
    first_generator: str
    annotator: str
    verdict: str  # "output_1", "output_2" or "tie"


def parse_judgment(record: Record, file: str) -> ParsedJudgment:
    instruction = required_text(record, "instruction", file)
    generator_1 = required_text(record, "generator_1", file).strip()
    generator_2 = required_text(record, "generator_2", file).strip()
    if generator_1 == generator_2:
        raise ImportFailed(
            file, "generator_1 and generator_2 are the same", line=record.line, field="generator_2"
        )
    outputs = {}
    for name, generator in (("output_1", generator_1), ("output_2", generator_2)):
        value = record.data.get(name)
        if not isinstance(value, str):
            raise ImportFailed(file, "missing or not text", line=record.line, field=name)
        outputs[generator] = value
    annotator = required_text(record, "annotator", file).strip()
    preference = record.data.get("preference")
    # The type check comes first: a list or object here is unhashable.
    if (
        isinstance(preference, bool)
        or not isinstance(preference, int | float)
        or preference not in ALPACA_EVAL_PREFERENCES
    ):
        raise ImportFailed(
            file,
            f"expected 1, 2 or 1.5, found {preference!r}",
            line=record.line,
            field="preference",
        )
    return ParsedJudgment(
        record.line,
        instruction,
        outputs,
        generator_1,
        annotator,
        ALPACA_EVAL_PREFERENCES[preference],
    )


def alpaca_eval_import(
    *,
    project: Project,
    raw: bytes,
    file: str,
    candidate_name: str,
    set_name: str = "alpaca_eval",
    progress: Progress = no_progress,
) -> ImportSummary:
    """Import an AlpacaEval annotations.json: prompts, both models' responses, a round, and
    each verdict as an annotation by the model judge named in the record's `annotator`."""
    records = read_records(raw, file)
    judgments = [parse_judgment(record, file) for record in records]
    baseline_names: set[str] = set()
    for judgment in judgments:
        if candidate_name not in judgment.outputs:
            raise ImportFailed(
                file,
                f"candidate {candidate_name!r} is not one of this record's generators "
                f"({', '.join(sorted(judgment.outputs))})",
                line=judgment.line,
                field="generator_1",
            )
        baseline_names.update(set(judgment.outputs) - {candidate_name})
    if len(baseline_names) != 1:
        raise ImportFailed(
            file,
            f"expected one baseline against {candidate_name!r}, found {sorted(baseline_names)}",
        )
    (baseline_name,) = baseline_names

    summary = ImportSummary()
    with transaction.atomic():
        prompt_set, _ = PromptSet.objects.get_or_create(project=project, name=set_name)
        _, by_text = prompt_lookup(prompt_set)
        next_position = prompt_set.prompts.count()
        new_prompts: dict[str, Prompt] = {}
        for judgment in judgments:
            text = judgment.instruction
            if text not in by_text and text not in new_prompts:
                position = next_position + len(new_prompts)
                new_prompts[text] = Prompt(
                    prompt_set=prompt_set, external_id=str(position), position=position, text=text
                )
        Prompt.objects.bulk_create(new_prompts.values(), batch_size=BATCH_SIZE)
        _, by_text = prompt_lookup(prompt_set)

        models = models_by_name(project, {candidate_name, baseline_name}, summary)
        existing = {
            (prompt_pk, model_pk): text
            for prompt_pk, model_pk, text in Response.objects.filter(
                prompt__prompt_set=prompt_set, model__in=models.values(), settings_key=""
            ).values_list("prompt_id", "model_id", "text")
        }
        to_create = []
        for judgment in judgments:
            prompt_pk = by_text[judgment.instruction]
            for generator, output in judgment.outputs.items():
                key = (prompt_pk, models[generator].pk)
                if key in existing:
                    if existing[key] != output:
                        raise ImportFailed(
                            file,
                            f"{generator!r} already has a different response to this prompt",
                            line=judgment.line,
                            field="output_1"
                            if generator == judgment.first_generator
                            else "output_2",
                        )
                    continue
                existing[key] = output
                to_create.append(
                    Response(prompt_id=prompt_pk, model=models[generator], text=output)
                )
        Response.objects.bulk_create(to_create, batch_size=BATCH_SIZE)

        round_name = f"{candidate_name} vs {baseline_name} (AlpacaEval)"
        round_ = Round.objects.filter(
            project=project,
            name=round_name,
            prompt_set=prompt_set,
            candidate=models[candidate_name],
        ).first()
        if round_ is not None:
            # A later file may bring prompts the round has no items for yet.
            round_add_missing_items(round_=round_)
        else:
            round_ = round_create(
                project=project,
                name=round_name,
                prompt_set=prompt_set,
                candidate=models[candidate_name],
                baselines=[models[baseline_name]],
                shared_items=0,
            )
        items = {item.prompt_id: item for item in Item.objects.filter(round=round_)}
        judges = {
            name: Annotator.objects.get_or_create(
                project=project, kind=Annotator.Kind.JUDGE, name=name
            )[0]
            for name in {j.annotator for j in judgments}
        }
        already = set(
            Annotation.objects.filter(item__round=round_).values_list("item_id", "annotator_id")
        )
        judgments_by_judge: dict[Annotator, list[tuple[Item, str, dict[bool, str]]]] = {
            judge: [] for judge in judges.values()
        }
        for judgment in judgments:
            item = items[by_text[judgment.instruction]]
            judge = judges[judgment.annotator]
            if (item.pk, judge.pk) in already:
                summary.skipped += 1
                continue
            already.add((item.pk, judge.pk))
            candidate_first = judgment.first_generator == candidate_name
            if judgment.verdict == "tie":
                choice = Annotation.Choice.TIE
            else:
                first_won = judgment.verdict == "output_1"
                choice = (
                    Annotation.Choice.CANDIDATE
                    if first_won == candidate_first
                    else Annotation.Choice.BASELINE
                )
            judgments_by_judge[judge].append((item, choice, {candidate_first: choice}))
        total = sum(len(rows) for rows in judgments_by_judge.values())
        done = 0
        for judge, rows in judgments_by_judge.items():
            for start in range(0, len(rows), BATCH_SIZE):
                batch = rows[start : start + BATCH_SIZE]
                annotations_record_judgments(annotator=judge, judgments=batch)
                done += len(batch)
                progress(done, total)
        summary.created = total
        summary.round = round_
    return summary
