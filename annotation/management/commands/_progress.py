"""A progress line for the import commands, shown on stderr for large files."""

from django.core.management.base import OutputWrapper

from annotation.imports.records import Progress

# Below this many rows an import is quick enough that a progress line is only noise.
PROGRESS_MIN_ROWS = 5000


def progress_line(stream: OutputWrapper, *, min_rows: int = PROGRESS_MIN_ROWS) -> Progress:
    """A progress callback that rewrites one line on `stream` and ends it when done."""

    def report(done: int, total: int) -> None:
        if total < min_rows:
            return
        stream.write(f"\r  {done}/{total} rows", ending="\n" if done >= total else "")
        stream.flush()

    return report
