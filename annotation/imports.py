"""Imports of prompt sets, responses and AlpacaEval judgments.

The CLI, the API and the upload form all call these functions. Each one validates the whole
file before writing and writes inside one transaction: a bad file changes nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction

from annotation.models import (
    Annotation,
    Annotator,
    Item,
    LanguageModel,
    Project,
    Prompt,
    PromptSet,
    Response,
    Round,
)
from annotation.records import ImportFailed, Record, optional_id, read_records, required_text

Progress = Callable[[int, int], None]
BATCH_SIZE = 2000


@dataclass
class ImportSummary:
    created: int = 0
    skipped: int = 0
    models_created: list[str] = field(default_factory=list)
    round: Round | None = None


def _noop_progress(done: int, total: int) -> None:
    return None


def _bulk_create(model: type, objects: list, progress: Progress, total: int) -> list:
    created = []
    for start in range(0, len(objects), BATCH_SIZE):
        created.extend(model.objects.bulk_create(objects[start : start + BATCH_SIZE]))
        progress(min(start + BATCH_SIZE, len(objects)), total)
    return created


# ---------------------------------------------------------------- prompts


@dataclass(frozen=True)
class ParsedPrompt:
    line: int
    external_id: str | None
    text: str
    extra: dict


def parse_prompt(record: Record, file: str) -> ParsedPrompt:
    data = record.data
    external_id = optional_id(record, "id", file)
    if "conversations" in data:
        conversations = data["conversations"]
        if not isinstance(conversations, list) or not conversations:
            raise ImportFailed(
                file, "expected a non-empty list of turns", line=record.line, field="conversations"
            )
        for index, turn in enumerate(conversations):
            if not isinstance(turn, str) or not turn.strip():
                raise ImportFailed(
                    file,
                    f"turn {index} must be non-empty text",
                    line=record.line,
                    field="conversations",
                )
        extra = {"conversations": conversations[1:]} if len(conversations) > 1 else {}
        if "source" in data:
            extra["source"] = data["source"]
        return ParsedPrompt(record.line, external_id, conversations[0], extra)
    field_name = "prompt" if "prompt" in data or "instruction" not in data else "instruction"
    text = required_text(record, field_name, file)
    extra = {key: value for key, value in data.items() if key not in {"id", field_name}}
    return ParsedPrompt(record.line, external_id, text, extra)


def prompts_import(
    *,
    project: Project,
    set_name: str,
    raw: bytes,
    file: str,
    progress: Progress = _noop_progress,
) -> ImportSummary:
    """Add the file's prompts to the named set (created if new).

    A prompt whose id is already in the set with the same text is skipped, so that importing
    a file twice is harmless; the same id with a different text is an error. A prompt without
    an id is skipped when the set already has its exact text.
    """
    records = read_records(raw, file)
    parsed = [parse_prompt(record, file) for record in records]

    with transaction.atomic():
        prompt_set, _ = PromptSet.objects.get_or_create(project=project, name=set_name)
        existing = dict(prompt_set.prompts.values_list("external_id", "text"))
        existing_texts = set(existing.values())
        next_position = prompt_set.prompts.count()
        seen_lines: dict[str, int] = {}
        to_create: list[Prompt] = []
        skipped = 0
        for number, prompt in enumerate(parsed):
            if prompt.external_id is None and prompt.text in existing_texts:
                skipped += 1
                continue
            external_id = prompt.external_id or str(next_position + number)
            if external_id in seen_lines:
                raise ImportFailed(
                    file,
                    f"duplicate id {external_id!r} (first used on line {seen_lines[external_id]})",
                    line=prompt.line,
                    field="id",
                )
            seen_lines[external_id] = prompt.line
            if external_id in existing:
                if existing[external_id] != prompt.text:
                    raise ImportFailed(
                        file,
                        f"id {external_id!r} is already in set {set_name!r} with another text",
                        line=prompt.line,
                        field="id",
                    )
                skipped += 1
                continue
            to_create.append(
                Prompt(
                    prompt_set=prompt_set,
                    external_id=external_id,
                    position=next_position + len(to_create),
                    text=prompt.text,
                    extra=prompt.extra,
                )
            )
        _bulk_create(Prompt, to_create, progress, len(to_create))
    return ImportSummary(created=len(to_create), skipped=skipped)


# ---------------------------------------------------------------- responses


@dataclass(frozen=True)
class ParsedResponse:
    line: int
    prompt_id: str | None
    prompt_text: str | None
    prompt_field: str
    output: str
    model_name: str


def parse_response(record: Record, file: str, model_name: str | None) -> ParsedResponse:
    data = record.data
    prompt_id = optional_id(record, "prompt_id", file)
    prompt_text = None
    prompt_field = "prompt_id"
    if prompt_id is None:
        if "prompt" in data:
            prompt_field = "prompt"
            prompt_text = required_text(record, prompt_field, file)
        elif "instruction" in data:
            prompt_field = "instruction"
            prompt_text = required_text(record, prompt_field, file)
        else:
            raise ImportFailed(
                file,
                "missing: give 'prompt_id', 'prompt' or 'instruction'",
                line=record.line,
                field="prompt_id",
            )
    output = data.get("output")
    if output is None:
        raise ImportFailed(file, "missing", line=record.line, field="output")
    if not isinstance(output, str):
        raise ImportFailed(
            file, f"expected text, found {type(output).__name__}", line=record.line, field="output"
        )
    if model_name is None:
        field_name = "model" if "model" in data or "generator" not in data else "generator"
        if field_name not in data:
            raise ImportFailed(
                file,
                "missing: give 'model' (or 'generator') per line, or --model for the file",
                line=record.line,
                field="model",
            )
        model_name = required_text(record, field_name, file).strip()
    return ParsedResponse(record.line, prompt_id, prompt_text, prompt_field, output, model_name)


def _prompt_lookup(prompt_set: PromptSet) -> tuple[dict[str, int], dict[str, int]]:
    by_id: dict[str, int] = {}
    by_text: dict[str, int] = {}
    for prompt_pk, external_id, text in prompt_set.prompts.values_list("id", "external_id", "text"):
        by_id[external_id] = prompt_pk
        by_text.setdefault(text, prompt_pk)
    return by_id, by_text


def _models_by_name(
    project: Project, names: set[str], summary: ImportSummary
) -> dict[str, LanguageModel]:
    models = {m.name: m for m in LanguageModel.objects.filter(project=project, name__in=names)}
    for name in sorted(names - models.keys()):
        models[name] = LanguageModel.objects.create(project=project, name=name)
        summary.models_created.append(name)
    return models


def responses_import(
    *,
    project: Project,
    set_name: str,
    raw: bytes,
    file: str,
    model_name: str | None = None,
    progress: Progress = _noop_progress,
) -> ImportSummary:
    """Attach the file's responses to the set's prompts, matched by id or exact text.

    Models named in the file that the project does not have yet are registered as
    imported-response models and reported in the summary.
    """
    try:
        prompt_set = PromptSet.objects.get(project=project, name=set_name)
    except PromptSet.DoesNotExist:
        raise ImportFailed(
            file, f"prompt set {set_name!r} does not exist in project {project.name!r}"
        ) from None
    records = read_records(raw, file)
    parsed = [parse_response(record, file, model_name) for record in records]
    by_id, by_text = _prompt_lookup(prompt_set)

    resolved: list[tuple[ParsedResponse, int]] = []
    for response in parsed:
        if response.prompt_id is not None:
            prompt_pk = by_id.get(response.prompt_id)
            if prompt_pk is None:
                raise ImportFailed(
                    file,
                    f"no prompt with id {response.prompt_id!r} in set {set_name!r}",
                    line=response.line,
                    field="prompt_id",
                )
        else:
            prompt_pk = by_text.get(response.prompt_text or "")
            if prompt_pk is None:
                raise ImportFailed(
                    file,
                    f"no prompt in set {set_name!r} has exactly this text",
                    line=response.line,
                    field=response.prompt_field,
                )
        resolved.append((response, prompt_pk))

    summary = ImportSummary()
    with transaction.atomic():
        models = _models_by_name(project, {r.model_name for r in parsed}, summary)
        # Imported responses have no generation settings (key ""); generated ones sit beside.
        existing = {
            (prompt_pk, model_pk): text
            for prompt_pk, model_pk, text in Response.objects.filter(
                prompt__prompt_set=prompt_set, model__in=models.values(), settings_key=""
            ).values_list("prompt_id", "model_id", "text")
        }
        seen: dict[tuple[int, int], int] = {}
        to_create: list[Response] = []
        for response, prompt_pk in resolved:
            model = models[response.model_name]
            key = (prompt_pk, model.pk)
            if key in seen:
                raise ImportFailed(
                    file,
                    f"a second response from {model.name!r} to the same prompt "
                    f"(first on line {seen[key]})",
                    line=response.line,
                    field="output",
                )
            seen[key] = response.line
            if key in existing:
                if existing[key] != response.output:
                    raise ImportFailed(
                        file,
                        f"{model.name!r} already has a different response to this prompt",
                        line=response.line,
                        field="output",
                    )
                summary.skipped += 1
                continue
            to_create.append(Response(prompt_id=prompt_pk, model=model, text=response.output))
        _bulk_create(Response, to_create, progress, len(to_create))
        summary.created = len(to_create)
    return summary


# ---------------------------------------------------------------- AlpacaEval annotations

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
    progress: Progress = _noop_progress,
) -> ImportSummary:
    """Import an AlpacaEval annotations.json: prompts, both models' responses, a round, and
    each verdict as an annotation by the model judge named in the record's `annotator`."""
    from annotation.services import round_add_missing_items, round_create

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
        _, by_text = _prompt_lookup(prompt_set)
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
        _, by_text = _prompt_lookup(prompt_set)

        models = _models_by_name(project, {candidate_name, baseline_name}, summary)
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
            name: Annotator.objects.get_or_create(kind=Annotator.Kind.JUDGE, name=name)[0]
            for name in {j.annotator for j in judgments}
        }
        already = set(
            Annotation.objects.filter(item__round=round_).values_list("item_id", "annotator_id")
        )
        annotations = []
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
            annotations.append(
                Annotation(
                    item=item,
                    annotator=judge,
                    choice=choice,
                    shown_choice=Annotation.shown_for(choice, candidate_first),
                    candidate_first=candidate_first,
                )
            )
        # Judge verdicts take no crowd slots: Item.taken/completed count human work only.
        _bulk_create(Annotation, annotations, progress, len(annotations))
        summary.created = len(annotations)
        summary.round = round_
    return summary
