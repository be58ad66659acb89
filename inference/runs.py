"""The run lease every pipeline shares: claim, heartbeat, stale takeover, finish.

A judge run, a generation task and a training run are each executed by one worker at a time.
The worker claims the row (a conditional UPDATE, so two workers never both win), names itself
in `worker`, writes `heartbeat_at` while it works, and finishes the row only while it still
holds it. A row whose worker stopped writing for `STALE_AFTER` is taken to be dead: the next
delivery of its task takes it over. Rows need `status`, `worker`, `heartbeat_at`, `message`
and `finished_at`.
"""

import os
import socket
import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Model, Q
from django.utils import timezone

# A worker that has not written for this long is taken to be dead.
STALE_AFTER = timedelta(minutes=5)
HEARTBEAT_SECONDS = 30.0


@dataclass(frozen=True)
class Lease:
    """A row held by one worker."""

    model: type[Model]
    pk: int
    worker: str

    def _mine(self) -> Any:
        return self.model._default_manager.filter(pk=self.pk, worker=self.worker)

    def status(self) -> str:
        return self.model._default_manager.values_list("status", flat=True).get(pk=self.pk)

    def beat(self) -> bool:
        """Write the heartbeat; False once another worker took the row over."""
        return bool(self._mine().update(heartbeat_at=timezone.now()))

    def update(self, **fields: Any) -> bool:
        """Write fields while the row is still this worker's."""
        return bool(self._mine().update(**fields))

    def finish(
        self, status: str, message: str = "", *, unless: Collection[str] = ("cancelled",)
    ) -> bool:
        """Close the row with a status and why, unless it was moved to one of `unless` (a
        cancel wins over whatever the worker was about to write)."""
        now = timezone.now()
        return bool(
            self._mine()
            .exclude(status__in=list(unless))
            .update(status=status, message=message, finished_at=now, heartbeat_at=now)
        )


def worker_name() -> str:
    """This worker: host, process and a token telling apart claims made in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_stale(heartbeat_at: Any, now: Any = None) -> bool:
    now = now or timezone.now()
    return heartbeat_at is None or heartbeat_at < now - STALE_AFTER


def lease_claim(
    model: type[Model],
    pk: int,
    *,
    claimable: Collection[str],
    live: Collection[str] = (),
    status: Any,
    **fields: Any,
) -> Lease | None:
    """Take the row for this worker, or None if it is not to be worked on now.

    A row in a `claimable` status is taken at once; one in a `live` status only once its
    heartbeat is stale (its worker died). The row gets `status` (a value or an expression),
    the worker's name, a fresh heartbeat and `fields`.
    """
    now = timezone.now()
    stale = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - STALE_AFTER)
    takeable = Q(status__in=list(claimable)) | (Q(status__in=list(live)) & stale)
    worker = worker_name()
    claimed = (
        model._default_manager.filter(pk=pk)
        .filter(takeable)
        .update(status=status, worker=worker, heartbeat_at=now, **fields)
    )
    return Lease(model, pk, worker) if claimed else None


def lease_is_live(row: Any, live: Collection[str]) -> bool:
    """Whether a worker holds the row now: in a live status with a fresh heartbeat."""
    return row.status in live and not is_stale(row.heartbeat_at)


class Heartbeat:
    """Writes the lease's heartbeat from a thread while the worker loads, generates or trains."""

    def __init__(self, lease: Lease, every: float = HEARTBEAT_SECONDS) -> None:
        self.lease, self.every = lease, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.every):
                self.lease.beat()
        finally:
            connection.close()
