"""Training sets, fine-tuning runs and the scores of their checkpoints."""

from django.conf import settings
from django.db import models

from annotation.models import LanguageModel, Project
from inference.judge.models import Judge


class TrainingSet(models.Model):
    """Curated conversations to fine-tune on, uploaded as JSON Lines and checked line by line."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_sets")
    name = models.CharField(max_length=200)
    original_name = models.CharField(max_length=255, blank=True)
    # Counts and token lengths (LengthStats), measured with `stats["tokenizer"]`.
    stats = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="training_set_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class TrainingExample(models.Model):
    training_set = models.ForeignKey(TrainingSet, on_delete=models.CASCADE, related_name="examples")
    line = models.PositiveIntegerField(help_text="The line of the uploaded file.")
    # user, assistant, user, assistant, ...
    conversations = models.JSONField()
    source = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["training_set", "line"]
        constraints = [
            models.UniqueConstraint(fields=["training_set", "line"], name="training_example_once")
        ]

    def __str__(self) -> str:
        return f"{self.training_set} line {self.line}"


class TrainingRun(models.Model):
    """A fine-tune of a base model on a training set, its checkpoint choice and the model made.

    `recipe` holds the settings as asked (LIMA defaults plus overrides); `plan` the recipe as
    resolved on the worker with the hardware it ran on; `progress` the latest step's figures
    and the loss curve.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SELECTING = "selecting", "Selecting a checkpoint"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    name = models.CharField(max_length=200, help_text="Also the name of the model registered.")
    training_set = models.ForeignKey(TrainingSet, on_delete=models.PROTECT, related_name="runs")
    base_model = models.CharField(max_length=500, help_text="A checkpoint folder or a hub id.")
    dev_set = models.ForeignKey(
        "annotation.PromptSet", on_delete=models.PROTECT, related_name="training_runs"
    )
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="training_runs")
    recipe = models.JSONField(default=dict, blank=True)
    plan = models.JSONField(default=dict, blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True, help_text="Why the run stopped, and what to fix.")
    progress = models.JSONField(default=dict, blank=True)
    chosen_checkpoint = models.CharField(max_length=500, blank=True)
    registered_model = models.ForeignKey(
        LanguageModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="training_run_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING, self.Status.SELECTING)


class CheckpointScore(models.Model):
    """One checkpoint's answers to the dev set and the judge's helpfulness scores (1-6)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="scores")
    step = models.PositiveIntegerField()
    epoch = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    mean_score = models.FloatField(null=True, blank=True)
    scored = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # [{prompt, answer, score, error}] per dev prompt.
    samples = models.JSONField(default=list, blank=True)
    chosen = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step"], name="checkpoint_score_once"),
            models.UniqueConstraint(
                fields=["run"],
                condition=models.Q(chosen=True),
                name="checkpoint_score_one_chosen_per_run",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} epoch {self.epoch}: {self.mean_score}"
