"""The machine side of an evaluation: model judges, their runs on rounds, and every call made."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from annotation.models import (
    Annotator,
    Item,
    LanguageModel,
    Project,
    Prompt,
    Response,
    Round,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


def not_a_key(value: str) -> None:
    # The field names a variable; a pasted key must never reach the database.
    if value.lower().startswith("sk"):
        raise ValidationError("Give the name of the environment variable, not the key itself.")


env_var_name = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable name: letters, digits and _."
)


class Judge(models.Model):
    """A model behind an OpenAI-compatible endpoint plus a versioned prompt template.

    The API key is never stored: `api_key_env` names the environment variable that holds it
    on the workers.
    """

    class Mode(models.TextChoices):
        PAIRWISE = "pairwise", "Pairwise (A better / B better / neither)"
        HELPFULNESS = "helpfulness_1_6", "Helpfulness 1-6 per response"
        FAIL_PASS_EXCELLENT = "fail_pass_excellent", "Fail / Pass / Excellent per response"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judges")
    name = models.CharField(max_length=200, help_text="Also the annotator name in reports.")
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="judges")
    base_url = models.CharField(max_length=500, default=DEFAULT_BASE_URL)
    model = models.CharField(max_length=200, default="gpt-4")
    api_key_env = models.CharField(
        max_length=100,
        default=DEFAULT_API_KEY_ENV,
        validators=[env_var_name, not_a_key],
        help_text="Name of the environment variable holding the API key on the workers.",
    )
    mode = models.CharField(max_length=24, choices=Mode.choices, default=Mode.PAIRWISE)
    template_version = models.CharField(max_length=50)
    structured_output = models.BooleanField(
        default=False,
        help_text="Ask for the verdict as a JSON-schema field (response_format); falls back "
        "to the text verdict if the endpoint refuses it.",
    )
    both_orders = models.BooleanField(default=True)
    inconsistent_as_tie = models.BooleanField(
        default=True,
        help_text="Both orders disagree: count a tie (on) or leave the item without a verdict.",
    )
    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(default=1024)
    timeout_seconds = models.FloatField(default=120.0, validators=[MinValueValidator(0.1)])
    max_attempts = models.PositiveSmallIntegerField(default=6, validators=[MinValueValidator(1)])
    max_concurrency = models.PositiveSmallIntegerField(default=8, validators=[MinValueValidator(1)])
    rpm_limit = models.PositiveIntegerField(default=500, help_text="Requests per minute; 0: none.")
    tpm_limit = models.PositiveIntegerField(
        default=300_000, help_text="Tokens per minute; 0: none."
    )
    price_input_per_1k = models.DecimalField(
        max_digits=10, decimal_places=6, default=Decimal("0.03")
    )
    price_output_per_1k = models.DecimalField(
        max_digits=10, decimal_places=6, default=Decimal("0.06")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="judge_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class JudgeRun(models.Model):
    """A judge attached to a round. Running it again only makes the calls still missing."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="judge_runs")
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    # The worker executing the run and its last sign of life: a second worker leaves a run
    # alone while the heartbeat is fresh, and takes over one whose worker died.
    worker = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round", "judge__name"]
        constraints = [
            models.UniqueConstraint(fields=["round", "judge"], name="judge_run_once_per_round")
        ]

    def __str__(self) -> str:
        return f"{self.judge} on {self.round}"


class JudgeCall(models.Model):
    """One judgment asked of the judge, with everything needed to audit it.

    Pairwise: an item shown in one order. Absolute modes: one response.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="calls")
    item = models.ForeignKey(Item, null=True, on_delete=models.CASCADE, related_name="+")
    candidate_first = models.BooleanField(null=True, help_text="Order shown: candidate was A.")
    response = models.ForeignKey(Response, null=True, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    request = models.JSONField(default=dict, help_text="The request body sent, prompt included.")
    raw_reply = models.TextField(blank=True)
    verdict = models.CharField(
        max_length=12, blank=True, help_text="A / B / N (pairwise) or the score label."
    )
    error = models.TextField(blank=True)
    response_model = models.CharField(max_length=200, blank=True, help_text="As the API named it.")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_seconds = models.FloatField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cached = models.BooleanField(default=False, help_text="Answered from the cache, not paid.")
    cache_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "item", "candidate_first"],
                condition=Q(item__isnull=False),
                name="judge_call_once_per_order",
            ),
            models.UniqueConstraint(
                fields=["run", "response"],
                condition=Q(response__isnull=False),
                name="judge_call_once_per_response",
            ),
            models.CheckConstraint(
                condition=(
                    Q(item__isnull=False, candidate_first__isnull=False, response__isnull=True)
                    | Q(item__isnull=True, candidate_first__isnull=True, response__isnull=False)
                ),
                name="judge_call_item_or_response",
            ),
        ]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"call {self.pk} of run {self.run_id} ({self.status})"

    @property
    def prompt(self) -> str:
        return "\n\n".join(m.get("content", "") for m in self.request.get("messages", []))


class JudgeCache(models.Model):
    """A verdict already paid for, keyed by the hash of everything that shapes the reply.

    The unique key lets many workers write at once: the second writer's insert fails and
    the row already there is used.
    """

    key = models.CharField(max_length=64, unique=True)
    model = models.CharField(max_length=200)
    template_version = models.CharField(max_length=50)
    reply = models.TextField()
    verdict = models.CharField(max_length=12)
    response_model = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.model} {self.template_version} {self.key[:12]}"


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
            models.UniqueConstraint(fields=["run", "model"], name="generation_task_once_per_model")
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
            models.UniqueConstraint(fields=["run", "step"], name="checkpoint_score_once")
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} epoch {self.epoch}: {self.mean_score}"
