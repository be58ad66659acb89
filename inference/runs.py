"""The run lease every pipeline shares: claim, heartbeat, stale takeover, finish.

A judge run, a generation task and a training run are each executed by one worker at a time.
The worker claims the row (a conditional UPDATE, so two workers never both win), names itself
in `worker`, writes `heartbeat_at` while it works, and finishes the row only while it still
holds it. A row whose worker stopped writing for `stale_after()` (settings.RUN_STALE_SECONDS)
is taken to be dead: the next delivery of its task takes it over. Rows need `status`, `worker`,
`heartbeat_at`, `message` and `finished_at`.

While a row waits in line, `worker` names the task message that will work on it
(`queued:<task id>`) and `heartbeat_at` says when it was queued; a worker names itself with its
task id too. So a delivery can tell an earlier delivery of its own message, whose worker died
(wait for the heartbeat to go stale, then take over: `LeaseBusy`), from another message for the
same row (leave it), and the sweeper (`leases_requeue_lost`) can tell a message that was lost.
"""

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
QUEUED_PREFIX = "queued:"


def stale_after() -> timedelta:
    """A worker that has not written for this long is taken to be dead."""
    return timedelta(seconds=settings.RUN_STALE_SECONDS)


def heartbeat_seconds() -> float:
    """How often a live worker writes: several beats fit in the stale period."""
    return min(HEARTBEAT_SECONDS, stale_after().total_seconds() / 5)


class LeaseBusy(Exception):
    """An earlier delivery of this task's message holds the row with a fresh heartbeat: its
    worker may have died (the message came back) or may still run (the broker's visibility
    timeout ran out). Try again once the heartbeat would be stale."""

    def __init__(self, message: str, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class QueueUnavailable(Exception):
    """The task could not be sent: the broker is unreachable."""


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

    def held(self, *, unless: Collection[str] = ("cancelled",)) -> bool:
        """Whether the row is still this worker's and not moved to one of `unless`."""
        return bool(self._mine().exclude(status__in=list(unless)).exists())

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


def task_token(task_id: str | None = None) -> str:
    """A task id as the rows store it (32 characters), or a fresh token without a task."""
    return (task_id or uuid.uuid4().hex).replace("-", "")[:32]


def worker_name(task_id: str | None = None) -> str:
    """This worker: host, process, and the task (or a token telling apart claims made in one
    process without one). The host is cut so that the name fits a 64-character column."""
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{task_token(task_id)}"


def queued_marker(task_id: str) -> str:
    """What `worker` holds while the row waits for the task message `task_id`."""
    return f"{QUEUED_PREFIX}{task_token(task_id)}"


def _token_of(worker: str) -> str:
    return worker.rsplit(":", 1)[-1]


def is_stale(heartbeat_at: Any, now: Any = None) -> bool:
    now = now or timezone.now()
    return heartbeat_at is None or heartbeat_at < now - stale_after()


def lease_claim(
    model: type[Model],
    pk: int,
    *,
    claimable: Collection[str],
    live: Collection[str] = (),
    status: Any,
    task_id: str | None = None,
    **fields: Any,
) -> Lease | None:
    """Take the row for this worker, or None if it is not to be worked on now.

    A row in a `claimable` status is taken at once; one in a `live` status only once its
    heartbeat is stale (its worker died). The row gets `status` (a value or an expression),
    the worker's name, a fresh heartbeat and `fields`. Given the delivering task's id, a row
    held live by an earlier delivery of the same message raises `LeaseBusy`: that delivery's
    worker is probably dead, and nothing else would take the row over.
    """
    now = timezone.now()
    stale = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - stale_after())
    takeable = Q(status__in=list(claimable)) | (Q(status__in=list(live)) & stale)
    worker = worker_name(task_id)
    rows = model._default_manager.filter(pk=pk)
    claimed = rows.filter(takeable).update(status=status, worker=worker, heartbeat_at=now, **fields)
    if claimed:
        return Lease(model, pk, worker)
    if task_id is not None:
        held = rows.filter(status__in=list(live)).values_list("worker", "heartbeat_at").first()
        if held and _token_of(held[0]) == task_token(task_id) and not is_stale(held[1], now):
            retry_in = (held[1] + stale_after() - now).total_seconds()
            raise LeaseBusy(
                f"{model.__name__} {pk} is held by an earlier delivery of this task "
                f"({held[0]}); taking it over once its heartbeat is stale",
                retry_in=max(1.0, retry_in + 1.0),
            )
    return None


def lease_is_live(row: Any, live: Collection[str]) -> bool:
    """Whether a worker holds the row now: in a live status with a fresh heartbeat."""
    return row.status in live and not is_stale(row.heartbeat_at)


class Heartbeat:
    """Writes the lease's heartbeat from a thread while the worker loads, generates or trains."""

    def __init__(self, lease: Lease, every: float | None = None) -> None:
        self.lease, self.every = lease, every or heartbeat_seconds()
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


# ---------------------------------------------------------------- queueing


def enqueue(task: Task, *args: Any, task_id: str, queue: str | None = None) -> None:
    """Send the task, or raise QueueUnavailable: the broker settings bound how long it tries."""
    routing: dict[str, Any] = {"queue": queue} if queue else {}
    try:
        task.apply_async(args=args, task_id=task_id, **routing)
    except OperationalError as error:
        raise QueueUnavailable(
            f"The task queue is unreachable ({error}). The run is recorded as queued: it starts "
            "once the queue is back (the sweeper re-sends it), or start it again then."
        ) from error


def new_task_id() -> str:
    return uuid.uuid4().hex


def task_ids_waiting(queues: Collection[str]) -> set[str] | None:
    """Ids of the task messages waiting in these queues, or None where the broker cannot be
    asked (only Redis can: its queues are lists). A message a worker has received is no longer
    waiting: with late acknowledgement it sits in `unacked` until acknowledged, also when that
    worker died."""
    app = current_app
    if not str(app.conf.broker_url).startswith(("redis://", "rediss://")):
        return None
    waiting: set[str] = set()
    with app.connection_for_read() as broker:
        unreachable: tuple[type[BaseException], ...] = (OperationalError, *broker.connection_errors)
        try:
            # kombu's Redis channel: its `client` is a redis-py client on the broker's database.
            channel: Any = broker.default_channel
            messages = [raw for queue in queues for raw in channel.client.lrange(queue, 0, -1)]
        except unreachable as error:
            raise QueueUnavailable(f"The task queue is unreachable ({error}).") from error
    for raw in messages:
        try:
            waiting.add(task_token(json.loads(raw)["headers"]["id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return waiting


def leases_requeue_lost(
    rows: QuerySet[Any],
    *,
    queued: str,
    live: Collection[str],
    queues: Collection[str],
    queued_for: timedelta,
) -> list[tuple[int, str]]:
    """Put back in line the rows whose task is lost, each under a new task id; returns the
    rows' ids with the task ids to send.

    Lost: a row in a `live` status whose heartbeat is stale (its worker died; with late
    acknowledgement its message may stay unacknowledged on the broker for the whole
    visibility timeout), and a row queued for longer than `queued_for` whose message is not
    waiting in its queue (the broker was down when it was sent, or restarted without
    persistence, or the worker that received it died before starting it). A broker that cannot
    be asked leaves queued rows alone. The updates are conditional on what was read, so two
    sweepers at once re-queue a row once.
    """
    now = timezone.now()
    stale = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - stale_after())
    seen = ("pk", "status", "worker", "heartbeat_at")
    candidates = list(rows.filter(Q(status__in=list(live)) & stale).values_list(*seen))
    waiting = task_ids_waiting(queues)
    if waiting is not None:
        old = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - queued_for)
        candidates += [
            row
            for row in rows.filter(Q(status=queued) & old).values_list(*seen)
            if _token_of(row[2]) not in waiting
        ]
    requeued = []
    for pk, status, worker, heartbeat_at in candidates:
        task_id = new_task_id()
        fields: dict[str, Any] = {"heartbeat_at": now, "worker": queued_marker(task_id)}
        if status != queued:
            fields.update(status=queued, message="Its worker stopped; queued again.")
        unchanged = rows.filter(pk=pk, status=status, worker=worker, heartbeat_at=heartbeat_at)
        if unchanged.update(**fields):
            logger.warning("re-queued %s %s (was %s, %s)", rows.model.__name__, pk, status, worker)
            requeued.append((pk, task_id))
    return requeued
