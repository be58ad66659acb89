"""Ablation experiments (LIMA §5): one candidate trained per training set, each answering the
dev prompts several times, every answer scored for helpfulness by a judge."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Project, PromptSet
from inference.judge.models import Judge
from inference.training.models import TrainingRun, TrainingSet


class Experiment(models.Model):
    """A base model, the training sets compared, the dev prompts and the judge; run as a whole
    by one worker at a time (the run lease of inference.runs)."""

    class Axis(models.TextChoices):
        # The paper's Figure 5 (diversity, quality): a bar per training set.
        SETS = "sets", "Training sets side by side"
        # Its Figure 6 (quantity): the number of examples on a log-scale x-axis.
        SIZE = "size", "Training set size (log scale)"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200)
    base_model = models.CharField(max_length=500, help_text="A checkpoint folder or a hub id.")
    dev_set = models.ForeignKey(PromptSet, on_delete=models.PROTECT, related_name="experiments")
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="experiments")
    axis = models.CharField(max_length=10, choices=Axis.choices, default=Axis.SETS)
    samples_per_prompt = models.PositiveSmallIntegerField(
        default=5, help_text="Answers per dev prompt and candidate (the paper: 5)."
    )
    seed = models.BigIntegerField(default=0)
    # Training recipe overrides shared by every candidate (LIMA's recipe otherwise).
    recipe = models.JSONField(default=dict, blank=True)
    # Sampling overrides for the scored answers (the paper's decoding otherwise).
    sampling = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    # {"step": ..., "done": n, "total": n} of the step running now.
    progress = models.JSONField(default=dict, blank=True)
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
            models.UniqueConstraint(fields=["project", "name"], name="experiment_unique_name"),
            models.CheckConstraint(
                condition=Q(samples_per_prompt__gte=1, samples_per_prompt__lte=20),
                name="experiment_samples_1_to_20",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    def arm_run_name(self, label: str) -> str:
        """The name of the training run of an arm, and of the model it registers."""
        return f"{self.name}: {label}"[:200]

    def sample_key(self, sample: int) -> str:
        """The settings key of the experiment's `sample`-th answers (Response.settings_key)."""
        return f"experiment-{self.pk}-sample-{sample}"


class ExperimentArm(models.Model):
    """One training set of the experiment, and the run that trains its candidate."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    position = models.PositiveSmallIntegerField()
    training_set = models.ForeignKey(TrainingSet, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=200)
    # Examples in the training set: the x of a size experiment.
    examples = models.PositiveIntegerField()
    training_run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="arm"
    )

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "training_set"], name="experiment_arm_once_per_set"
            ),
            models.UniqueConstraint(
                fields=["experiment", "position"], name="experiment_arm_position_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment} / {self.label}"
