"""The one way tests wait for background work: poll a row until it says it is finished."""

import time
from collections.abc import Callable
from typing import TypeVar

from django.db.models import Model

Row = TypeVar("Row", bound=Model)


def wait_until(
    row: Row, finished: Callable[[Row], bool], *, seconds: float = 60, every: float = 0.1
) -> Row:
    """Reload `row` until `finished(row)`, or fail saying what it was left at."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row.refresh_from_db()
        if finished(row):
            return row
        time.sleep(every)
    details = {f: getattr(row, f) for f in ("status", "message", "progress") if hasattr(row, f)}
    raise AssertionError(f"{type(row).__name__} {row.pk} not finished after {seconds}s: {details}")
