"""Model judges, their runs on rounds, and every call made."""

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from annotation.models import Annotator, Item, Project, Response, Round
from annotation.validators import env_var_name, not_a_key

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


class Judge(models.Model):
    """A model behind an OpenAI-compatible endpoint plus a versioned prompt template.

    The API key is never stored: `api_key_env` names the environment variable that holds it
    on the workers.
    """

    class Mode(models.TextChoices):
        PAIRWISE = "pairwise", "Pairwise (A better / B better / neither)"
        HELPFULNESS = "helpfulness_1_6", "Helpfulness 1-6 per response"
        FAIL_PASS_EXCELLENT = "fail_pass_excellent", "Fail / Pass / Excellent per response"
        SAFETY = "safety", "Safe / partly / unsafe per response (sensitive prompt sets)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judges")
    name = models.CharField(max_length=200, help_text="Also the annotator name in reports.")
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="judges")
    base_url = models.CharField(max_length=500, default=DEFAULT_BASE_URL)
    model = models.CharField(max_length=200, default="gpt-4")
    api_key_env = models.CharField(
        max_length=100,
        default=DEFAULT_API_KEY_ENV,
        blank=True,
        validators=[env_var_name, not_a_key],
        help_text="Name of the environment variable holding the API key on the workers; empty "
        "for a server that takes no key.",
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

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


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
