"""Gold answers for a round's items: JSON Lines or a JSON array of
{"prompt_id": ..., "answer": "candidate" | "baseline" | "tie", "baseline": name (if several)};
for an absolute round, {"prompt_id", "answer": a rating ("fail", "5"...), "model": name (if
several)}."""

from annotation.imports.records import (
    ImportFailed,
    checked_text,
    optional_id,
    read_records,
    required_name,
)
from annotation.services.quality import GoldAnswer
from annotation.validators import MAX_NAME_LENGTH


def read_gold(raw: bytes, file: str) -> list[GoldAnswer]:
    answers = []
    for record in read_records(raw, file):
        prompt_id = optional_id(record, "prompt_id", file)
        if prompt_id is None:
            raise ImportFailed(file, "missing", line=record.line, field="prompt_id")
        named = "model" if "model" in record.data else "baseline"
        baseline = record.data.get(named) or ""
        if not isinstance(baseline, str):
            raise ImportFailed(file, "expected text", line=record.line, field=named)
        checked_text(baseline, file, line=record.line, field=named, limit=MAX_NAME_LENGTH)
        answers.append(
            GoldAnswer(
                line=record.line,
                prompt_id=prompt_id,
                answer=required_name(record, "answer", file).lower(),
                baseline=baseline.strip(),
            )
        )
    return answers
