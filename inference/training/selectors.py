"""Reads for the training pages, the API and the `train` command."""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet

from annotation.selectors import Viewer, visible_to
from inference.training.data import Example
from inference.training.models import TrainingExample, TrainingRun, TrainingSet


def training_runs_for_user(user: Viewer) -> QuerySet[TrainingRun]:
    return visible_to(user, TrainingRun.objects.all()).select_related(
        "project", "training_set", "dev_set", "judge", "registered_model"
    )


def training_sets_for_user(user: Viewer) -> QuerySet[TrainingSet]:
    return visible_to(user, TrainingSet.objects.all()).select_related("project")


@dataclass(frozen=True)
class RunProgress:
    """The latest figures of a run, as shown live."""

    status: str
    epoch: float | None
    epochs: int | None
    step: int
    max_steps: int
    loss: float | None
    learning_rate: float | None
    tokens_per_second: float | None
    eta_seconds: float | None
    selection_done: int
    selection_total: int
    note: str

    @property
    def percent(self) -> int:
        return round(100 * self.step / self.max_steps) if self.max_steps else 0

    @property
    def eta(self) -> str:
        if self.eta_seconds is None:
            return ""
        return str(timedelta(seconds=round(self.eta_seconds)))

    def line(self) -> str:
        """One line for the command line: epoch, step, loss, learning rate, speed, ETA."""
        parts = [self.status]
        if self.max_steps:
            parts.append(f"epoch {self.epoch:.2f}/{self.epochs}")
            parts.append(f"step {self.step}/{self.max_steps}")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.learning_rate is not None:
            parts.append(f"lr {self.learning_rate:.2e}")
        if self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:,.0f} tokens/s")
        if self.eta and self.step < self.max_steps:
            parts.append(f"ETA {self.eta}")
        if self.selection_total:
            parts.append(f"checkpoints judged {self.selection_done}/{self.selection_total}")
        return ", ".join(parts)


def run_progress(run: TrainingRun) -> RunProgress:
    progress = run.progress or {}
    selection = progress.get("selection") or {}
    recipe = (run.plan.get("training") or {}).get("recipe") or run.recipe
    return RunProgress(
        status=run.status,
        epoch=progress.get("epoch"),
        epochs=recipe.get("epochs", 15),
        step=progress.get("step", 0),
        max_steps=progress.get("max_steps", 0),
        loss=progress.get("loss"),
        learning_rate=progress.get("learning_rate"),
        tokens_per_second=progress.get("tokens_per_second"),
        eta_seconds=progress.get("eta_seconds"),
        selection_done=selection.get("done", 0),
        selection_total=selection.get("total", 0),
        note=progress.get("note", ""),
    )


def loss_curve(run: TrainingRun, width: int = 600, height: int = 120) -> str:
    """SVG polyline points of the loss by step, for an inline chart."""
    history = [h for h in (run.progress or {}).get("history", []) if h[1] is not None]
    if len(history) < 2:
        return ""
    steps = [h[0] for h in history]
    losses = [h[1] for h in history]
    low, high = min(losses), max(losses)
    span = (high - low) or 1.0
    first, last = steps[0], steps[-1]
    return " ".join(
        f"{width * (s - first) / (last - first):.1f},{height * (1 - (v - low) / span):.1f}"
        for s, v in zip(steps, losses, strict=True)
    )


def training_dir() -> Path:
    return Path(getattr(settings, "TRAINING_DIR", settings.VAR_DIR / "training"))


def training_examples(training_set_id: int) -> list[Example]:
    """The set's examples in file order, as the trainer reads them."""
    rows = TrainingExample.objects.filter(training_set_id=training_set_id).order_by("line")
    return [Example(row.line, tuple(row.conversations), row.source) for row in rows]
