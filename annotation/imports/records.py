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
from annotation.validators import (
    MAX_EXTRA_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TEXT_LENGTH,
    json_depth_problem,
    json_value_problem,
    text_problem,
)


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


def shown(value: Any, limit: int = 60) -> str:
    """A value from the file as an error message quotes it: escaped, and cut if long."""
    text = ascii(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        except (RecursionError, ValueError) as error:
            raise ImportFailed(file, _unreadable(error), line=number) from None
        yield _checked_record(data, file, number)


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
        raise ImportFailed(file, "the JSON array is empty: there is nothing to import", line=line)
    while True:
        skip(" \t\r\n")
        start_line = line_at(position)
        try:
            data, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise ImportFailed(
                file, f"not valid JSON ({error.msg})", line=line_at(error.pos)
            ) from None
        except (RecursionError, ValueError) as error:
            raise ImportFailed(file, _unreadable(error), line=start_line) from None
        yield _checked_record(data, file, start_line)
        skip(" \t\r\n")
        if position < len(text) and text[position] == ",":
            position += 1
            continue
        if position < len(text) and text[position] == "]":
            position += 1
            skip(" \t\r\n")
            if position < len(text):
                raise ImportFailed(
                    file,
                    "unexpected data after the JSON array's closing ']'",
                    line=line_at(position),
                )
            return
        raise ImportFailed(file, "not valid JSON (expected ',' or ']')", line=line_at(position))


def _unreadable(error: RecursionError | ValueError) -> str:
    # Python's reader gives up on nesting near 1,000 levels and on integers over 4,300 digits.
    if isinstance(error, RecursionError):
        return "not readable JSON (nested too deeply)"
    return "not readable JSON (an integer with too many digits)"


def _checked_record(data: Any, file: str, line: int) -> Record:
    if not isinstance(data, dict):
        raise ImportFailed(file, f"expected a JSON object, found {type(data).__name__}", line=line)
    deep = json_depth_problem(data)
    if deep is not None:
        raise ImportFailed(file, deep[1], line=line, field=deep[0])
    return Record(line, data)


def required_text(
    record: Record, field: str, file: str, *, limit: int = MAX_TEXT_LENGTH, empty: bool = False
) -> str:
    """The record's text in `field`, which must be storable and (unless `empty`) not blank."""
    value = record.data.get(field)
    if value is None:
        raise ImportFailed(file, "missing", line=record.line, field=field)
    if not isinstance(value, str):
        raise ImportFailed(
            file, f"expected text, found {type(value).__name__}", line=record.line, field=field
        )
    if not empty and not value.strip():
        raise ImportFailed(file, "is empty", line=record.line, field=field)
    checked_text(value, file, line=record.line, field=field, limit=limit)
    return value


def required_name(record: Record, field: str, file: str) -> str:
    """A model's, judge's or generator's name: text of at most MAX_NAME_LENGTH characters."""
    return required_text(record, field, file, limit=MAX_NAME_LENGTH).strip()


def checked_text(
    value: str, file: str, *, line: int | None, field: str, limit: int = MAX_TEXT_LENGTH
) -> str:
    problem = text_problem(value, limit=limit)
    if problem:
        raise ImportFailed(file, problem, line=line, field=field)
    return value


def checked_name(value: str, file: str, what: str) -> str:
    """A name given beside the file (a prompt set, a model, a group): not blank, and storable.
    `what` says which, as the error names it."""
    problem = "is empty" if not value.strip() else text_problem(value, limit=MAX_NAME_LENGTH)
    if problem:
        raise ImportFailed(file, f"{what} {problem}")
    return value


def checked_extra(extra: dict[str, Any], file: str, line: int) -> dict[str, Any]:
    """A record's other fields, kept as JSON beside what the import reads."""
    bad = json_value_problem(extra)
    if bad is not None:
        raise ImportFailed(file, bad[1], line=line, field=bad[0])
    size = len(json.dumps(extra, ensure_ascii=False))
    if size > MAX_EXTRA_LENGTH:
        raise ImportFailed(
            file,
            f"the other fields take {size:,} characters as JSON, more than the "
            f"{MAX_EXTRA_LENGTH:,} kept beside a prompt",
            line=line,
        )
    return extra


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
    return checked_text(text, file, line=record.line, field=field, limit=MAX_NAME_LENGTH)


# Turns of a conversation rated turn by turn: far beyond any dialogue (MT-Bench has two).
MAX_TURN = 100


def checked_turn(record: Record, file: str) -> int:
    """The record's `turn`, 1 when it has none."""
    value = record.data.get("turn", 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TURN:
        raise ImportFailed(
            file,
            f"expected the turn as a whole number from 1 to {MAX_TURN}, found {shown(value)}",
            line=record.line,
            field="turn",
        )
    return value


def load_file(path: str | Path) -> tuple[bytes, str]:
    """The file's bytes and the name errors give it (a name that is not UTF-8 shown with
    U+FFFD, as it may be stored beside what it brings)."""
    path = Path(path)
    name = path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    try:
        return path.read_bytes(), name
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
