"""Generation runs: one launch per round, one task per model, the prompts that failed."""

from django.conf import settings
from django.db import models

from annotation.models import LanguageModel, Prompt, Round


class GenerationRun(models.Model):
    """One launch of a round's generation: each response missing for its settings is made.

    Launching again after a failure or a cancel starts a new run that makes only what is
    still missing.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="generation_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # The round's overrides of the paper's sampling, on top of each model's own.
    sampling = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(help_text="Each prompt's seed is derived from this one.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"generation {self.pk} for {self.round}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class GenerationTask(models.Model):
    """One model's share of a run, executed by a worker on its backend's queue."""

    Status = GenerationRun.Status

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="tasks")
    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="+")
    queue = models.CharField(max_length=20)
    # The key the task's responses are written under (backends.settings_key), fixed at launch.
    settings_key = models.CharField(max_length=64, default="", blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    needed = models.PositiveIntegerField(default=0, help_text="Prompts in the round's set.")
    done = models.PositiveIntegerField(default=0, help_text="Prompts with a response.")
    generated = models.PositiveIntegerField(default=0, help_text="Responses made by this task.")
    failed = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    # Seconds from the first request to the latest result: throughput = generated / this.
    busy_seconds = models.FloatField(default=0.0)
    load_seconds = models.FloatField(default=0.0)
    message = models.TextField(blank=True, help_text="Why the task stopped, and what to fix.")
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "model"], name="generation_task_once_per_model"),
            models.CheckConstraint(
                condition=models.Q(done__lte=models.F("needed")),
                name="generation_task_done_within_needed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} in generation {self.run_id} ({self.status})"

    @property
    def responses_per_second(self) -> float | None:
        return self.generated / self.busy_seconds if self.busy_seconds else None

    @property
    def tokens_per_second(self) -> float | None:
        return self.completion_tokens / self.busy_seconds if self.busy_seconds else None


class GenerationFailure(models.Model):
    """A prompt a task could not get a response for, with the last error."""

    task = models.ForeignKey(GenerationTask, on_delete=models.CASCADE, related_name="failures")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    error = models.TextField()
    attempts = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "prompt__position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "prompt"], name="generation_failure_once")
        ]

    def __str__(self) -> str:
        return f"{self.prompt} in task {self.task_id}: {self.error[:60]}"
