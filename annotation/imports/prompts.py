"""Importing prompt sets: plain `{id?, prompt}` records or LIMA `{conversations, source}`."""

from dataclasses import dataclass

from django.db import transaction

from annotation.imports.records import (
    ImportFailed,
    ImportSummary,
    Progress,
    Record,
    bulk_create_batched,
    checked_extra,
    checked_name,
    checked_text,
    no_progress,
    optional_id,
    read_records,
    required_text,
)
from annotation.models import (
    Project,
    Prompt,
    PromptSet,
)


@dataclass(frozen=True)
class ParsedPrompt:
    line: int
    external_id: str | None
    text: str
    extra: dict
    field: str  # where the text came from, as errors name it


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
            checked_text(turn, file, line=record.line, field=f"conversations.{index}")
        extra = {"conversations": conversations[1:]} if len(conversations) > 1 else {}
        if "source" in data:
            extra["source"] = data["source"]
        extra = checked_extra(extra, file, record.line)
        return ParsedPrompt(record.line, external_id, conversations[0], extra, "conversations")
    field_name = "prompt" if "prompt" in data or "instruction" not in data else "instruction"
    text = required_text(record, field_name, file)
    extra = {key: value for key, value in data.items() if key not in {"id", field_name}}
    return ParsedPrompt(
        record.line, external_id, text, checked_extra(extra, file, record.line), field_name
    )


def _refuse_texts_known_twice(parsed: list[ParsedPrompt], file: str) -> None:
    """A prompt without an id is known by its text (responses find it by it, a re-import skips
    it by it), so no other prompt of the file may have the same text."""
    first: dict[str, ParsedPrompt] = {}
    for prompt in parsed:
        earlier = first.setdefault(prompt.text, prompt)
        if earlier is not prompt and None in (earlier.external_id, prompt.external_id):
            raise ImportFailed(
                file,
                f"the same text as line {earlier.line}, and a prompt without an id is known "
                "by its text: give both an id, or drop one",
                line=prompt.line,
                field=prompt.field,
            )


def prompts_import(
    *,
    project: Project,
    set_name: str,
    raw: bytes,
    file: str,
    progress: Progress = no_progress,
    sensitive: bool = False,
) -> ImportSummary:
    """Add the file's prompts to the named set (created if new); `sensitive` marks the set so
    (prompts that may ask for harm, for the safety study).

    A prompt whose id is already in the set with the same text is skipped, so that importing
    a file twice is harmless; the same id with a different text is an error. A prompt without
    an id is skipped when the set already has its exact text, and may not share its text with
    another prompt of the file.
    """
    set_name = checked_name(set_name, file, "the prompt set's name")
    records = read_records(raw, file)
    parsed = [parse_prompt(record, file) for record in records]
    _refuse_texts_known_twice(parsed, file)

    with transaction.atomic():
        prompt_set, _ = PromptSet.objects.get_or_create(project=project, name=set_name)
        if sensitive and not prompt_set.sensitive:
            prompt_set.sensitive = True
            prompt_set.save(update_fields=["sensitive"])
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
        bulk_create_batched(Prompt, to_create, progress, len(to_create))
    return ImportSummary(created=len(to_create), skipped=skipped)
