"""Importing model responses: AlpacaEval `model_outputs.json`, or JSON Lines of
`{prompt_id|prompt, output, model?}`."""

from dataclasses import dataclass

from django.db import transaction

from annotation.imports.records import (
    ImportFailed,
    ImportSummary,
    Progress,
    Record,
    bulk_create_batched,
    checked_name,
    no_progress,
    optional_id,
    read_records,
    required_name,
    required_text,
)
from annotation.models import (
    LanguageModel,
    Project,
    PromptSet,
    Response,
)


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
    # An empty output is a model's real answer (AlpacaEval keeps them), so it is stored.
    output = required_text(record, "output", file, empty=True)
    if model_name is None:
        field_name = "model" if "model" in data or "generator" not in data else "generator"
        if field_name not in data:
            raise ImportFailed(
                file,
                "missing: give 'model' (or 'generator') per line, or --model for the file",
                line=record.line,
                field="model",
            )
        model_name = required_name(record, field_name, file)
    return ParsedResponse(record.line, prompt_id, prompt_text, prompt_field, output, model_name)


def prompt_lookup(prompt_set: PromptSet) -> tuple[dict[str, int], dict[str, int]]:
    by_id: dict[str, int] = {}
    by_text: dict[str, int] = {}
    for prompt_pk, external_id, text in prompt_set.prompts.values_list("id", "external_id", "text"):
        by_id[external_id] = prompt_pk
        by_text.setdefault(text, prompt_pk)
    return by_id, by_text


def models_by_name(
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
    progress: Progress = no_progress,
) -> ImportSummary:
    """Attach the file's responses to the set's prompts, matched by id or exact text.

    Models named in the file that the project does not have yet are registered as
    imported-response models and reported in the summary.
    """
    set_name = checked_name(set_name, file, "the prompt set's name")
    if model_name is not None:
        model_name = checked_name(model_name, file, "the model's name")
    try:
        prompt_set = PromptSet.objects.get(project=project, name=set_name)
    except PromptSet.DoesNotExist:
        raise ImportFailed(
            file, f"prompt set {set_name!r} does not exist in project {project.name!r}"
        ) from None
    records = read_records(raw, file)
    parsed = [parse_response(record, file, model_name) for record in records]
    by_id, by_text = prompt_lookup(prompt_set)

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
        models = models_by_name(project, {r.model_name for r in parsed}, summary)
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
        bulk_create_batched(Response, to_create, progress, len(to_create))
        summary.created = len(to_create)
    return summary
