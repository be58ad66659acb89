"""Importing conversations to label turn by turn: the LIMA release's records
(`{"conversations": [user, assistant, ...], "source": ...}`) or OpenAI chat-format JSON Lines
(`{"messages": [{"role", "content"}, ...]}`), one conversation per record.

The whole file is checked before anything is written, and written in one transaction: a bad
file changes nothing. A conversation the project already holds for the same model (the same
messages) is skipped, so importing a file twice adds nothing.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from annotation.imports.records import (
    ImportFailed,
    ImportSummary,
    Record,
    checked_name,
    checked_text,
    read_records,
    required_name,
    shown,
)
from annotation.imports.responses import models_by_name
from annotation.models import Project
from annotation.validators import MAX_NAME_LENGTH
from inference.dialogue.models import Dialogue, DialogueTurn

# Dialogue.turns_planned's bound: a conversation has at most this many answers of the model.
MAX_ANSWERS = 50
USER, ASSISTANT = DialogueTurn.Role.USER, DialogueTurn.Role.ASSISTANT


@dataclass(frozen=True)
class ParsedConversation:
    line: int
    model_name: str
    system: str
    messages: tuple[str, ...]  # The person's first, then the two take turns.
    source: str

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps([self.system, *self.messages], ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _message_text(value: Any, file: str, line: int, field: str) -> str:
    """A message's content: text, or OpenAI's list of text parts joined."""
    if isinstance(value, list):
        parts = []
        for number, part in enumerate(value):
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise ImportFailed(
                    file,
                    f"only text parts can be labelled, found {shown(part)}",
                    line=line,
                    field=f"{field}[{number}]",
                )
            parts.append(_message_text(part.get("text"), file, line, f"{field}[{number}].text"))
        value = "".join(parts)
    if not isinstance(value, str):
        found = "nothing" if value is None else type(value).__name__
        raise ImportFailed(file, f"expected text, found {found}", line=line, field=field)
    if not value.strip():
        raise ImportFailed(file, "is empty", line=line, field=field)
    return checked_text(value, file, line=line, field=field)


def _lima_messages(record: Record, file: str) -> tuple[str, tuple[str, ...]]:
    utterances = record.data["conversations"]
    if not isinstance(utterances, list):
        raise ImportFailed(
            file,
            f"expected a list of utterances, found {type(utterances).__name__}",
            line=record.line,
            field="conversations",
        )
    texts = tuple(
        _message_text(text, file, record.line, f"conversations[{number}]")
        for number, text in enumerate(utterances)
    )
    return "", texts


def _chat_messages(record: Record, file: str) -> tuple[str, tuple[str, ...]]:
    messages = record.data["messages"]
    if not isinstance(messages, list):
        raise ImportFailed(
            file,
            f"expected a list of messages, found {type(messages).__name__}",
            line=record.line,
            field="messages",
        )
    system = ""
    texts: list[str] = []
    for number, message in enumerate(messages):
        field = f"messages[{number}]"
        if not isinstance(message, dict):
            raise ImportFailed(
                file,
                f"expected an object with role and content, found {type(message).__name__}",
                line=record.line,
                field=field,
            )
        role = message.get("role")
        expected = USER.value if len(texts) % 2 == 0 else ASSISTANT.value
        if role == "system" and number == 0:
            system = _message_text(message.get("content"), file, record.line, f"{field}.content")
            continue
        if role != expected:
            if not texts:
                where = "first"
            else:
                where = "after the " + ("person's message" if expected == ASSISTANT else "answer")
            raise ImportFailed(
                file,
                f"expected role {expected!r} {where}, found {shown(role)} (the person speaks "
                "first, then the two take turns; a system message may only come first)",
                line=record.line,
                field=f"{field}.role",
            )
        texts.append(_message_text(message.get("content"), file, record.line, f"{field}.content"))
    return system, tuple(texts)


def parse_conversation(record: Record, file: str, model_name: str | None) -> ParsedConversation:
    data = record.data
    if "conversations" in data:
        system, messages = _lima_messages(record, file)
        field = "conversations"
    elif "messages" in data:
        system, messages = _chat_messages(record, file)
        field = "messages"
    else:
        raise ImportFailed(
            file,
            "expected 'conversations' (the LIMA release's list of utterances) or 'messages' "
            "(OpenAI chat format)",
            line=record.line,
        )
    if len(messages) < 2:
        raise ImportFailed(
            file,
            "a conversation needs the person's message and the model's answer",
            line=record.line,
            field=field,
        )
    if len(messages) % 2:
        raise ImportFailed(
            file,
            "the conversation ends with the person's message: it must end with the model's "
            "answer, the turn to be labelled",
            line=record.line,
            field=field,
        )
    if len(messages) // 2 > MAX_ANSWERS:
        raise ImportFailed(
            file,
            f"{len(messages) // 2} answers of the model, more than the {MAX_ANSWERS} a "
            "dialogue may have",
            line=record.line,
            field=field,
        )
    if model_name is None:
        if "model" not in data:
            raise ImportFailed(
                file,
                "missing: name the model in each record or give the model for the whole file",
                line=record.line,
                field="model",
            )
        model_name = required_name(record, "model", file)
    source = data.get("source", "")
    if not isinstance(source, str):
        raise ImportFailed(
            file, f"expected text, found {type(source).__name__}", line=record.line, field="source"
        )
    checked_text(source, file, line=record.line, field="source", limit=MAX_NAME_LENGTH)
    return ParsedConversation(record.line, model_name, system, messages, source.strip())


@dataclass
class DialogueImportSummary(ImportSummary):
    answers: int = 0


def dialogues_import(
    *,
    project: Project,
    raw: bytes,
    file: str,
    model_name: str | None = None,
    user: User | None = None,
) -> DialogueImportSummary:
    """Every conversation of the file as a finished dialogue of its model, ready to label.

    Models the project does not have yet are registered as imported-answer models and named
    in the summary. `model_name` names the model of every conversation (over a record's own
    `model`).
    """
    if model_name is not None:
        model_name = checked_name(model_name, file, "the model's name").strip()
    parsed = [parse_conversation(record, file, model_name) for record in read_records(raw, file)]
    seen: dict[tuple[str, str], int] = {}
    for conversation in parsed:
        key = (conversation.model_name, conversation.fingerprint)
        if key in seen:
            raise ImportFailed(
                file,
                f"the same conversation of {conversation.model_name!r} again (first on line "
                f"{seen[key]})",
                line=conversation.line,
            )
        seen[key] = conversation.line

    summary = DialogueImportSummary()
    with transaction.atomic():
        models = models_by_name(project, {c.model_name for c in parsed}, summary)
        held = set(
            Dialogue.objects.filter(
                project=project, origin=Dialogue.Origin.IMPORTED, model__in=models.values()
            ).values_list("model_id", "fingerprint")
        )
        new = [c for c in parsed if (models[c.model_name].pk, c.fingerprint) not in held]
        summary.skipped = len(parsed) - len(new)
        dialogues = Dialogue.objects.bulk_create(
            [
                Dialogue(
                    project=project,
                    model=models[c.model_name],
                    origin=Dialogue.Origin.IMPORTED,
                    turns_planned=len(c.messages) // 2,
                    system=c.system,
                    source=_source(file, c),
                    fingerprint=c.fingerprint,
                    status=Dialogue.Status.DONE,
                    created_by=user,
                )
                for c in new
            ]
        )
        turns = [
            DialogueTurn(
                dialogue=dialogue,
                index=index,
                role=USER if index % 2 == 0 else ASSISTANT,
                text=text,
            )
            for dialogue, conversation in zip(dialogues, new, strict=True)
            for index, text in enumerate(conversation.messages)
        ]
        DialogueTurn.objects.bulk_create(turns, batch_size=2000)
        summary.created = len(dialogues)
        summary.answers = sum(len(c.messages) // 2 for c in new)
    return summary


def _source(file: str, conversation: ParsedConversation) -> str:
    where = f"{file}, line {conversation.line}"
    text = f"{where} ({conversation.source})" if conversation.source else where
    return text[:300]
