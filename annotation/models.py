"""The human side of an evaluation: what is compared, who compares it, and what they said."""

import secrets
from collections.abc import Sequence

from django.conf import settings
from django.db import models
from django.db.models import F, Q


def _url_token() -> str:
    return secrets.token_urlsafe(16)


def _completion_code() -> str:
    """The old shared completion code; kept only so that old migrations still import."""
    return secrets.token_hex(4).upper()


def _completion_secret() -> str:
    return secrets.token_hex(16)


class Project(models.Model):
    """A team's workspace: prompt sets, models, rounds and reports belong to one."""

    name = models.CharField(max_length=200, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="projects", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class PromptSet(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompt_sets")
    name = models.CharField(max_length=200)
    sensitive = models.BooleanField(
        default=False,
        help_text="Prompts that may ask for something harmful (the paper's safety study): "
        "a safety judge rates the answers to these sets only.",
    )
    # Its answers are fixed (taken from dialogues): no model generates answers to its prompts.
    answers_fixed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="prompt_set_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


SPEAKERS = ("The person", "The model")


def conversation_text(texts: Sequence[str], system: str = "", *, model_first: bool = False) -> str:
    """A conversation as one Markdown text, the person speaking first (or the model, for the
    rest of a dialogue after its opening) and the two taking turns: who speaks in bold, then
    what they said. What annotators and judges read for a prompt with earlier turns."""
    parts = [f"**System message**\n\n{system}"] if system else []
    first = 1 if model_first else 0
    parts += [f"**{SPEAKERS[(first + index) % 2]}**\n\n{text}" for index, text in enumerate(texts)]
    return "\n\n".join(parts)


class Prompt(models.Model):
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200, help_text="The id given in the imported file.")
    position = models.PositiveIntegerField()
    text = models.TextField()
    # Turns after the first user turn (LIMA release format), the source, and any other fields.
    extra = models.JSONField(default=dict, blank=True)
    # The Markdown rendering the crowd sees, made once by annotation.rendering (its version).
    html = models.TextField(blank=True, default="")
    html_version = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["prompt_set", "position"]
        constraints = [
            models.UniqueConstraint(fields=["prompt_set", "external_id"], name="prompt_unique_id")
        ]

    def __str__(self) -> str:
        return f"{self.prompt_set.name}#{self.external_id}"

    @property
    def shown_text(self) -> str:
        """What annotators see and judges read: the prompt's text, or for a multi-turn prompt
        (the LIMA release's conversations) the whole conversation its answers reply to."""
        later = self.extra.get("conversations") if isinstance(self.extra, dict) else None
        if not later:
            return self.text
        return conversation_text([self.text, *later])


class LanguageModel(models.Model):
    """A model whose responses are compared: a candidate in one round, a baseline in another."""

    class Backend(models.TextChoices):
        IMPORTED = "imported", "Imported responses"
        VLLM = "vllm", "vLLM (local checkpoint)"
        OPENAI = "openai", "OpenAI-compatible endpoint"
        TRANSFORMERS = "transformers", "transformers (local path)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=200)
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.IMPORTED)
    # Backend settings (path, base_url, sampling...). Never holds secrets: API keys are read
    # from the environment variable named here.
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="model_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Response(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    # The sampling parameters and seed a generated response was made with; empty when imported.
    generation = models.JSONField(default=dict, blank=True)
    # A hash of the settings a generated response was made with; "" when imported. A model
    # answers a prompt once per settings, so rounds with other sampling keep their own answers.
    settings_key = models.CharField(max_length=64, default="", blank=True)
    # The Markdown rendering the crowd sees, made once by annotation.rendering (its version).
    html = models.TextField(blank=True, default="")
    html_version = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "model", "settings_key"], name="response_unique_per_settings"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model.name} on {self.prompt}"


class RatingScale(models.TextChoices):
    """The absolute scales: LIMA §4.3's Fail / Pass / Excellent and its safety question, its
    ablations' helpfulness 1-6, and MT-Bench's single-answer score (judges only)."""

    FAIL_PASS_EXCELLENT = "fail_pass_excellent", "Fail / Pass / Excellent"
    HELPFULNESS_1_6 = "helpfulness_1_6", "Helpfulness 1-6"
    MT_BENCH_1_10 = "mt_bench_1_10", "MT-Bench single-answer score 1-10"
    SAFETY = "safety", "Safe / partly / unsafe"


# The scales people rate on in an absolute round.
ROUND_SCALES = (
    RatingScale.FAIL_PASS_EXCELLENT,
    RatingScale.HELPFULNESS_1_6,
    RatingScale.SAFETY,
)
# What a check item of an absolute round may expect: a value of one of those scales.
RATED_CHECK_ANSWERS = ("fail", "pass", "excellent", "safe", "partly", "unsafe", "1", "2", "3",
                       "4", "5", "6")  # fmt: skip


class Round(models.Model):
    """A prompt set and its models, annotated through one crowd link: pairwise (the
    candidate's answer against each baseline's) or absolute (each model's answer alone,
    rated on one scale)."""

    class Kind(models.TextChoices):
        PAIRWISE = "pairwise", "Pairwise: candidate against each baseline"
        ABSOLUTE = "absolute", "Absolute: each answer rated on its own"

    class TextFormat(models.TextChoices):
        MARKDOWN = "markdown", "Markdown (code, lists, tables, emphasis, links)"
        PLAIN = "plain", "Plain text, whitespace kept"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PAIRWISE)
    # The scale of an absolute round; "" for a pairwise one.
    scale = models.CharField(max_length=24, blank=True, default="", choices=RatingScale.choices)
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.PROTECT, related_name="rounds")
    # An absolute round rates the candidate's and every baseline's answers alike.
    candidate = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="+")
    baselines = models.ManyToManyField(LanguageModel, related_name="rounds_as_baseline")
    annotators_per_item = models.PositiveIntegerField(default=1)
    shared_items = models.PositiveIntegerField(
        default=50, help_text="Items every annotator sees, for measuring agreement."
    )
    items_per_worker = models.PositiveIntegerField(default=100)
    # round_create gives the CROWD_LEASE_SECONDS setting when no lease is asked; this default
    # only serves rows made otherwise.
    lease_seconds = models.PositiveIntegerField(default=30 * 60)
    max_active_workers = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="At most this many crowd workers at work at once (active within the lease); "
        "a new worker beyond it is asked to come back later. Empty: no cap.",
    )
    # How prompts and answers are shown to annotators; the judge always reads the raw text.
    text_format = models.CharField(
        max_length=10, choices=TextFormat.choices, default=TextFormat.MARKDOWN
    )
    seed = models.BigIntegerField()
    crowd_token = models.CharField(max_length=40, unique=True, default=_url_token)
    # Each worker's completion code is an HMAC of the worker id under this round's secret.
    completion_secret = models.CharField(max_length=64, default=_completion_secret)
    completion_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Where a worker who finished is sent, e.g. the study's Prolific completion "
        "URL; {code} in it is replaced by the worker's completion code.",
    )
    # {model id: settings key} of the responses compared, set when generation is launched;
    # a model not named here is compared on its imported responses (key "").
    response_keys = models.JSONField(default=dict, blank=True)
    # Quality control: the share of each worker's items that are gold or attention checks,
    # the reading speed under which an answer counts as too fast, and the exclusion rules
    # (empty: not applied) checked when a worker finishes or when the researcher asks.
    check_rate = models.FloatField(default=0.0)
    words_per_second = models.FloatField(
        default=10.0, help_text="Answers faster than the item's words at this speed are flagged."
    )
    exclude_gold_accuracy_below = models.FloatField(null=True, blank=True)
    exclude_failed_checks_at_least = models.PositiveIntegerField(null=True, blank=True)
    exclude_too_fast_share_above = models.FloatField(null=True, blank=True)
    # A comprehension check before the first item; a worker failing it twice is sent to the
    # return URL. Blocking stops a worker's items once they fail this many attention checks.
    screening = models.BooleanField(default=False)
    block_after_failed_checks = models.PositiveIntegerField(null=True, blank=True)
    return_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Where a worker who is screened out or stopped is sent, e.g. the study's "
        "Prolific page with its screened-out code.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(annotators_per_item__gte=1), name="round_needs_one_annotator"
            ),
            models.CheckConstraint(
                condition=Q(items_per_worker__gte=1), name="round_gives_each_worker_an_item"
            ),
            models.CheckConstraint(
                condition=Q(lease_seconds__gte=10), name="round_lease_at_least_10_seconds"
            ),
            models.CheckConstraint(
                condition=Q(check_rate__gte=0, check_rate__lte=0.5),
                name="round_check_rate_at_most_half",
            ),
            models.CheckConstraint(
                condition=Q(words_per_second__gt=0), name="round_reading_speed_positive"
            ),
            models.CheckConstraint(
                condition=Q(kind="pairwise", scale="")
                | Q(kind="absolute", scale__in=[str(scale) for scale in ROUND_SCALES]),
                name="round_scale_with_its_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def response_key(self, model_id: int) -> str:
        """The settings key of the model's responses that this round compares."""
        return self.response_keys.get(str(model_id), "")

    @property
    def is_absolute(self) -> bool:
        return self.kind == Round.Kind.ABSOLUTE


class ItemQuerySet(models.QuerySet["Item"]):
    def shown_responses(self) -> "models.QuerySet[Response]":
        """Every response these items show: a comparison's two, a rated item's one. Subqueries,
        not id lists: a large round's answers outnumber a statement's parameters."""
        return Response.objects.filter(
            Q(pk__in=self.values("candidate_response"))
            | Q(pk__in=self.values("baseline_response"))
            | Q(pk__in=self.values("response"))
        )


class Item(models.Model):
    """One comparison: a prompt's candidate response against one baseline's response; in an
    absolute round, one model's response to the prompt, rated alone (`response`).

    A check item (gold: a real comparison with a known answer; attention: one answer asks to be
    chosen) tests the worker; it looks like any other and is left out of every result.
    """

    class Check(models.TextChoices):
        NONE = "", "Comparison"
        GOLD = "gold", "Gold (known answer)"
        ATTENTION = "attention", "Attention check"

    # No index of its own on `round`, nor below where a composite index starts with the column:
    # every answer writes these rows, and each index is written with them.
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="items", db_index=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    # A comparison's three; null on a rated item (the `item_one_shape` constraint).
    baseline = models.ForeignKey(
        LanguageModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    candidate_response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    baseline_response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The answer a rated item shows; null on a comparison.
    response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    position = models.PositiveIntegerField()
    # Which response is shown as "Answer A"; drawn from the round's seed, balanced per round.
    # False on a rated item, which shows one answer.
    candidate_first = models.BooleanField()
    is_shared = models.BooleanField(default=False)
    # Crowd workers' live leases + completed annotations, shared items included: the item row
    # carries it so that a locked update decides the race for the last slot.
    taken = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    check_kind = models.CharField(max_length=10, choices=Check.choices, default="", blank=True)
    # The model-terms choice a check expects: candidate, baseline or tie; in an absolute round,
    # the rating (a label, or a score's digit).
    check_answer = models.CharField(max_length=10, default="", blank=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["round", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["round", "prompt", "baseline"], name="item_unique_comparison"
            ),
            models.UniqueConstraint(
                fields=["round", "response"],
                condition=Q(response__isnull=False),
                name="item_unique_rated_answer",
            ),
            models.CheckConstraint(
                condition=Q(
                    response__isnull=True,
                    baseline__isnull=False,
                    candidate_response__isnull=False,
                    baseline_response__isnull=False,
                )
                | Q(
                    response__isnull=False,
                    baseline__isnull=True,
                    candidate_response__isnull=True,
                    baseline_response__isnull=True,
                    candidate_first=False,
                ),
                name="item_one_shape",
            ),
            models.CheckConstraint(
                condition=Q(completed__lte=F("taken")), name="item_completed_within_taken"
            ),
            models.CheckConstraint(
                condition=(Q(check_kind="") & Q(check_answer=""))
                | (
                    Q(check_kind__in=["gold", "attention"])
                    & Q(check_answer__in=["candidate", "baseline", "tie", *RATED_CHECK_ANSWERS])
                ),
                name="item_check_has_its_answer",
            ),
        ]
        indexes = [
            # Each matches one claim of the crowd path, which reads the first row in its order:
            # open comparisons least-taken first, the shared set, the checks.
            models.Index(
                fields=["round", "taken", "position"],
                condition=Q(is_shared=False, check_kind=""),
                name="item_open_slots",
            ),
            models.Index(
                fields=["round", "position"], condition=Q(is_shared=True), name="item_shared_set"
            ),
            models.Index(fields=["round"], condition=~Q(check_kind=""), name="item_checks"),
        ]

    def __str__(self) -> str:
        return f"{self.round_id}/{self.position}"


class Annotator(models.Model):
    """Who gave an annotation, within one project: the same worker id or judge name in two
    projects is two annotators, so that no report of one counts the other's work."""

    class Kind(models.TextChoices):
        CROWD = "crowd", "Crowd worker"
        AUTHOR = "author", "Author / expert"
        JUDGE = "judge", "Model judge"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotators")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=200, help_text="Worker id, username or judge name.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind", "name"], name="annotator_unique_name_in_project"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"


class WorkerSession(models.Model):
    """An annotator's pass through one round; its token is the worker's private link."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="worker_sessions")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="sessions")
    token = models.CharField(max_length=40, unique=True, default=_url_token)
    completed_items = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    last_answer_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Issued once the worker has done their quota or every item open to them; "" before.
    completion_code = models.CharField(max_length=20, blank=True, default="")
    # SHA-256 of the secret in the cookie of the browser that started the session: the same
    # worker id from another browser cannot continue it.
    browser_key_hash = models.CharField(max_length=64, blank=True, default="")
    # Excluded workers keep their annotations, which every result then leaves out; their
    # comparison items are opened again for other workers.
    excluded_reason = models.TextField(blank=True, default="")
    excluded_at = models.DateTimeField(null=True, blank=True)
    # The comprehension check: "" before it (or without one), passed, or failed (twice).
    screening_status = models.CharField(max_length=10, blank=True, default="")
    screening_attempts = models.PositiveSmallIntegerField(default=0)
    # Stopped by the round's blocking rule: no more items.
    blocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["round", "annotator"], name="session_unique_worker")
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} in round {self.round_id}"


class Assignment(models.Model):
    """An item leased to one annotator; released if the lease runs out before an answer."""

    class Status(models.TextChoices):
        LEASED = "leased"
        COMPLETED = "completed"
        EXPIRED = "expired"

    # Indexed by the constraint and the index below, which start with them.
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    session = models.ForeignKey(
        WorkerSession, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    token = models.CharField(max_length=40, unique=True, default=_url_token)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "session"], name="assignment_once_per_worker")
        ]
        indexes = [models.Index(fields=["session", "status"])]

    def __str__(self) -> str:
        return f"{self.item_id} to {self.session_id} ({self.status})"


class Annotation(models.Model):
    class Choice(models.TextChoices):
        CANDIDATE = "candidate", "Candidate better"
        BASELINE = "baseline", "Baseline better"
        TIE = "tie", "Neither significantly better"

    class ShownChoice(models.TextChoices):
        A = "A", "Answer A is significantly better"
        B = "B", "Answer B is significantly better"
        NEITHER = "N", "Neither is significantly better"

    # Indexed by the constraint and the index below, which start with them.
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="annotations", db_index=False
    )
    annotator = models.ForeignKey(
        Annotator, on_delete=models.PROTECT, related_name="annotations", db_index=False
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotation"
    )
    choice = models.CharField(max_length=10, choices=Choice.choices)
    shown_choice = models.CharField(max_length=1, choices=ShownChoice.choices)
    candidate_first = models.BooleanField(help_text="Order shown: candidate was Answer A.")
    # False when the source did not record the order its judge saw (AlpacaEval shuffles the
    # outputs unrecorded): candidate_first is then the file's order and tells no position bias.
    order_known = models.BooleanField(default=True)
    # A judge's probability that the candidate is better, when it gives one (AlpacaEval's
    # weighted annotators); 1, 0.5 or 0 for a discrete verdict imported with its preference.
    preference = models.FloatField(null=True, blank=True)
    seconds_spent = models.FloatField(null=True, blank=True)
    # A model judge's vote per order shown, [[candidate_first, choice], ...], when its verdict
    # combines several (both orders); empty for a single vote, which the fields above describe.
    order_votes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="annotation_once_per_item"),
            # The choice in model terms is what was clicked, read in the order shown.
            models.CheckConstraint(
                condition=Q(choice="tie", shown_choice="N")
                | Q(choice="candidate", shown_choice="A", candidate_first=True)
                | Q(choice="candidate", shown_choice="B", candidate_first=False)
                | Q(choice="baseline", shown_choice="B", candidate_first=True)
                | Q(choice="baseline", shown_choice="A", candidate_first=False),
                name="annotation_choice_as_shown",
            ),
            models.CheckConstraint(
                condition=Q(preference__isnull=True) | Q(preference__gte=0, preference__lte=1),
                name="annotation_preference_is_a_probability",
            ),
        ]
        indexes = [models.Index(fields=["annotator", "created_at"])]

    def __str__(self) -> str:
        return f"{self.annotator_id} on {self.item_id}: {self.choice}"

    @staticmethod
    def model_choice(shown: str, candidate_first: bool) -> str:
        """Translate what was clicked (A/B/N) into model terms."""
        if shown == Annotation.ShownChoice.NEITHER:
            return Annotation.Choice.TIE
        candidate_letter = "A" if candidate_first else "B"
        return (
            Annotation.Choice.CANDIDATE if shown == candidate_letter else Annotation.Choice.BASELINE
        )

    @staticmethod
    def shown_for(choice: str, candidate_first: bool) -> str:
        if choice == Annotation.Choice.TIE:
            return Annotation.ShownChoice.NEITHER
        candidate_letter, baseline_letter = ("A", "B") if candidate_first else ("B", "A")
        return candidate_letter if choice == Annotation.Choice.CANDIDATE else baseline_letter


class ImportJob(models.Model):
    """An uploaded file imported in the background, with its progress and outcome."""

    class Kind(models.TextChoices):
        PROMPTS = "prompts"
        RESPONSES = "responses"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    prompt_set_name = models.CharField(max_length=200)
    model_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    processed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name


class Battle(models.Model):
    """One pairwise vote imported without its texts (a Chatbot Arena battle log): it feeds the
    project's leaderboard beside the rounds' verdicts."""

    class Winner(models.TextChoices):
        MODEL_A = "model_a"
        MODEL_B = "model_b"
        TIE = "tie"
        TIE_BOTHBAD = "tie (bothbad)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="battles")
    model_a = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="+")
    winner = models.CharField(max_length=16, choices=Winner.choices)
    # The leaderboard group these votes form (e.g. "arena", or the judge that cast them).
    group = models.CharField(max_length=200, default="arena")
    # The battle's own id (FastChat's question_id) or a hash of its record: a re-import skips it.
    key = models.CharField(max_length=200)
    source = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "group", "key"], name="battle_once"),
            models.CheckConstraint(
                condition=~Q(model_a=F("model_b")), name="battle_between_two_models"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_a_id} vs {self.model_b_id}: {self.winner}"


class ReportBuild(models.Model):
    """A round's report built once for one state of what it depends on (its fingerprint):
    the page, its figures and every download are served from it until that state changes."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="report_builds")
    # The figures with the excluded workers' annotations (the page's comparison view).
    include_excluded = models.BooleanField(default=False)
    fingerprint = models.CharField(max_length=64)
    # Counted annotations of the round when the fingerprint was taken.
    annotations = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    steps_done = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(default=0)
    # What the page shows (rendered sections, figure and file names); the files themselves are
    # in the default storage under `storage_folder`.
    page = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Moved on by every step of a running build: a build whose worker died goes quiet.
    heartbeat_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["round", "include_excluded", "fingerprint"], name="report_build_once"
            ),
            # One build of a report at a time: viewers of a round that keeps changing wait on
            # the running build instead of starting one each.
            models.UniqueConstraint(
                fields=["round", "include_excluded"],
                condition=Q(status__in=["queued", "running"]),
                name="report_build_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"report of round {self.round_id} ({self.status})"

    @property
    def storage_folder(self) -> str:
        return f"reports/round-{self.round_id}/build-{self.pk}"


class Rating(models.Model):
    """An absolute judgment of one model's answer to one question, by a person or a model
    judge: a label on one scale (LIMA §4.3's Fail / Pass / Excellent, its ablations'
    helpfulness 1-6, MT-Bench's single-answer score 1-10). It names the response when the
    platform holds its text (a judge run on a round); an imported MT-Bench grade names only the
    model, the question and the turn."""

    Scale = RatingScale

    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="ratings")
    # Indexed by the (model, scale) index below.
    model = models.ForeignKey(
        LanguageModel, on_delete=models.PROTECT, related_name="ratings", db_index=False
    )
    response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.CASCADE, related_name="ratings"
    )
    # The prompt's id: its external id, or MT-Bench's question_id for an imported grade.
    question = models.CharField(max_length=200)
    turn = models.PositiveSmallIntegerField(default=1)
    scale = models.CharField(max_length=24, choices=Scale.choices)
    # The label of a labelled scale ("fail", "pass", "excellent"; "safe", "partly", "unsafe");
    # "" on a numeric one.
    label = models.CharField(max_length=12, blank=True, default="")
    # The number of a numeric scale (helpfulness 1-6, MT-Bench 1-10); null on a labelled one.
    score = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=300, blank=True)
    # A rating given in an absolute round: its item and the lease it answered.
    item = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.CASCADE, related_name="ratings",
        db_index=False,
    )  # fmt: skip
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="rating"
    )
    seconds_spent = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # A response may be rated in several rounds: once in each by one annotator.
            models.UniqueConstraint(
                fields=["annotator", "response", "turn", "scale"],
                condition=Q(response__isnull=False, item__isnull=True),
                name="rating_once_per_response",
            ),
            models.UniqueConstraint(
                fields=["item", "annotator"],
                condition=Q(item__isnull=False),
                name="rating_once_per_item",
            ),
            models.CheckConstraint(
                condition=Q(item__isnull=True) | Q(response__isnull=False),
                name="rating_in_a_round_names_its_response",
            ),
            models.UniqueConstraint(
                fields=["annotator", "model", "question", "turn", "scale"],
                condition=Q(response__isnull=True),
                name="rating_once_per_question",
            ),
            models.CheckConstraint(
                condition=Q(
                    scale="fail_pass_excellent",
                    label__in=["fail", "pass", "excellent"],
                    score__isnull=True,
                )
                | Q(scale="safety", label__in=["safe", "partly", "unsafe"], score__isnull=True)
                | Q(
                    scale="helpfulness_1_6",
                    label="",
                    score__isnull=False,
                    score__in=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                )
                | Q(
                    scale="mt_bench_1_10",
                    label="",
                    score__isnull=False,
                    score__gte=1.0,
                    score__lte=10.0,
                ),
                name="rating_value_on_its_scale",
            ),
            models.CheckConstraint(condition=Q(turn__gte=1), name="rating_turn_from_one"),
        ]
        indexes = [models.Index(fields=["model", "scale"])]

    def __str__(self) -> str:
        value = self.label or f"{self.score:g}"
        return f"{self.annotator_id} on {self.model_id}/{self.question}#{self.turn}: {value}"

    @property
    def value(self) -> str:
        """The label, or the score as written (7, 7.5)."""
        return self.label if self.label else f"{self.score:g}"
