"""Reading JSON / JSON Lines files into numbered records, with errors that name file, line, field;
what every import shares (its summary, progress callback, batched writes).

The readers are pure parsing; only `bulk_create_batched` touches the database.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.db.models import Model

from annotation.models import Round


class ImportFailed(Exception):
    """A file could not be imported; nothing was written."""

    def __init__(self, file: str, message: str, *, line: int | None = None, field: str = ""):
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        where = file if line is None else f"{file}, line {line}"
        what = f"field '{field}': {message}" if field else message
        super().__init__(f"{where}: {what}")


@dataclass(frozen=True)
class Record:
    line: int
    data: dict[str, Any]


def read_text(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ImportFailed(
            file,
            f"not valid UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8",
            line=line,
        ) from None


def read_records(raw: bytes, file: str) -> list[Record]:
    """A JSON array of objects, or JSON Lines; each record keeps the line it starts on."""
    text = read_text(raw, file)
    stripped = text.lstrip()
    if not stripped:
        raise ImportFailed(file, "the file is empty")
    if stripped.startswith("["):
        return list(_json_array_records(text, file))
    return list(_json_lines_records(text, file))


def _json_lines_records(text: str, file: str) -> Iterator[Record]:
    # Split on "\n" only: str.splitlines() also breaks on U+2028, U+0085 and other characters
    # that JSON allows raw inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise ImportFailed(file, f"not valid JSON ({error.msg})", line=number) from None
        yield Record(number, _require_object(data, file, number))


def _json_array_records(text: str, file: str) -> Iterator[Record]:
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    line = text.count("\n", 0, position) + 1
    counted_to = position

    def skip(chars: str) -> None:
        nonlocal position
        while position < len(text) and text[position] in chars:
            position += 1

    def line_at(offset: int) -> int:
        nonlocal line, counted_to
        line += text.count("\n", counted_to, offset)
        counted_to = offset
        return line

    skip(" \t\r\n")
    if position < len(text) and text[position] == "]":
        return
    while True:
        skip(" \t\r\n")
        start_line = line_at(position)
        try:
            data, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise ImportFailed(
                file, f"not valid JSON ({error.msg})", line=line_at(error.pos)
            ) from None
        yield Record(start_line, _require_object(data, file, start_line))
        skip(" \t\r\n")
        if position < len(text) and text[position] == ",":
            position += 1
            continue
        if position < len(text) and text[position] == "]":
            return
        raise ImportFailed(file, "not valid JSON (expected ',' or ']')", line=line_at(position))


def _require_object(data: Any, file: str, line: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ImportFailed(file, f"expected a JSON object, found {type(data).__name__}", line=line)
    return data


def required_text(record: Record, field: str, file: str) -> str:
    value = record.data.get(field)
    if value is None:
        raise ImportFailed(file, "missing", line=record.line, field=field)
    if not isinstance(value, str):
        raise ImportFailed(
            file, f"expected text, found {type(value).__name__}", line=record.line, field=field
        )
    if not value.strip():
        raise ImportFailed(file, "is empty", line=record.line, field=field)
    return value


def optional_id(record: Record, field: str, file: str) -> str | None:
    value = record.data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ImportFailed(
            file,
            f"expected a string or integer id, found {type(value).__name__}",
            line=record.line,
            field=field,
        )
    text = str(value).strip()
    if not text:
        raise ImportFailed(file, "is empty", line=record.line, field=field)
    return text


def load_file(path: str | Path) -> tuple[bytes, str]:
    path = Path(path)
    try:
        return path.read_bytes(), path.name
    except FileNotFoundError:
        raise ImportFailed(str(path), "no such file") from None
    except IsADirectoryError:
        raise ImportFailed(str(path), "is a directory, not a file") from None


Progress = Callable[[int, int], None]
BATCH_SIZE = 2000


@dataclass
class ImportSummary:
    created: int = 0
    skipped: int = 0
    models_created: list[str] = field(default_factory=list)
    round: Round | None = None


def no_progress(done: int, total: int) -> None:
    return None


M = TypeVar("M", bound=Model)


def bulk_create_batched(
    model: type[M], objects: list[M], progress: Progress, total: int
) -> list[M]:
    created: list[M] = []
    for start in range(0, len(objects), BATCH_SIZE):
        # The default manager: `objects`, as no model here declares another.
        created.extend(model._default_manager.bulk_create(objects[start : start + BATCH_SIZE]))
        progress(min(start + BATCH_SIZE, len(objects)), total)
    return created
