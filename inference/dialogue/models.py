"""Dialogues (LIMA §6): a person talks to a model turn by turn, or a conversation is imported
from a file; each answer of the model is labelled Fail / Pass / Excellent. The labels are the
labeller's ratings of the dialogue's turns (annotation.Rating, question "dialogue-ID", one per
assistant turn and labeller). Two models' dialogues that open with the same message can be
compared as wholes (DialogueComparison)."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.models import Annotator, LanguageModel, Project


def new_token() -> str:
    return secrets.token_urlsafe(16)


class DialogueStudy(models.Model):
    """Crowd workers talk to the study's models live: each opens the study's link with their
    worker id, is given a dialogue with one of the models (the one with the fewest dialogues so
    far, never named), writes and labels each answer, and gets a completion code."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dialogue_studies")
    name = models.CharField(max_length=150)
    language_models = models.ManyToManyField(LanguageModel, related_name="dialogue_studies")
    turns = models.PositiveSmallIntegerField(
        default=5, help_text="How many answers of the model each worker's dialogue has."
    )
    token = models.CharField(max_length=40, unique=True, default=new_token)
    completion_secret = models.CharField(max_length=64, default=new_token)
    completion_url = models.URLField(max_length=500, blank=True)
    max_workers = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many workers' dialogues; none: no cap."
    )
    is_open = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="dialogue_study_unique_name"),
            models.CheckConstraint(
                condition=Q(turns__gte=1, turns__lte=50), name="dialogue_study_turns_1_to_50"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Dialogue(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Waiting for the next message"
        REPLYING = "replying", "The model is answering"
        DONE = "done", "Finished"

    class Origin(models.TextChoices):
        LIVE = "live", "Live"
        IMPORTED = "imported", "Imported"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dialogues")
    model = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="dialogues")
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.LIVE)
    # Who spoke to the model; an imported conversation has no speaker here.
    annotator = models.ForeignKey(
        Annotator, null=True, blank=True, on_delete=models.PROTECT, related_name="dialogues"
    )
    # A crowd worker's dialogue in a study, reached through its own token (the worker's link).
    study = models.ForeignKey(
        DialogueStudy, null=True, blank=True, on_delete=models.PROTECT, related_name="dialogues"
    )
    token = models.CharField(max_length=40, null=True, blank=True, unique=True)
    # A system message the conversation starts with (imported chat files may have one).
    system = models.TextField(blank=True)
    # Where an imported conversation came from: file and line, and the file's own "source".
    source = models.CharField(max_length=300, blank=True)
    # SHA-256 of an imported conversation's messages: importing the same file twice adds
    # nothing.
    fingerprint = models.CharField(max_length=64, blank=True)
    turns_planned = models.PositiveSmallIntegerField(
        default=5, help_text="How many answers of the model the dialogue has."
    )
    # Overrides of the model's sampling for its answers; each answer's seed derives from `seed`.
    sampling = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(turns_planned__gte=1, turns_planned__lte=50),
                name="dialogue_turns_1_to_50",
            ),
            models.CheckConstraint(
                condition=Q(origin="imported") | Q(annotator__isnull=False),
                name="dialogue_live_has_speaker",
            ),
            models.UniqueConstraint(
                fields=["project", "model", "fingerprint"],
                condition=Q(origin="imported"),
                name="dialogue_imported_once",
            ),
            # A worker has one dialogue in a study (re-opening the link resumes it).
            models.UniqueConstraint(
                fields=["study", "annotator"],
                condition=Q(study__isnull=False),
                name="dialogue_once_per_study_worker",
            ),
        ]

    def __str__(self) -> str:
        return f"dialogue {self.pk} with {self.model}"

    @property
    def question(self) -> str:
        """What the dialogue's ratings are filed under (Rating.question)."""
        return f"dialogue-{self.pk}"

    @property
    def is_live(self) -> bool:
        return self.origin == self.Origin.LIVE


class DialogueTurn(models.Model):
    """One message: the person's, or the model's answer (pending until a worker writes it)."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        DONE = "done"
        PENDING = "pending"
        GENERATING = "generating"
        FAILED = "failed"

    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveSmallIntegerField()
    role = models.CharField(max_length=10, choices=Role.choices)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DONE)
    error = models.TextField(blank=True)
    # What the answer was made with: the backend's description, the sampling and the seed.
    generation = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dialogue", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dialogue", "index"], name="dialogue_turn_once"),
            # The person speaks first, then the two take turns.
            models.CheckConstraint(
                condition=Q(role="user", index__in=range(0, 100, 2))
                | Q(role="assistant", index__in=range(1, 100, 2)),
                name="dialogue_turns_alternate",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dialogue_id}#{self.index} ({self.role})"

    @property
    def number(self) -> int:
        """The answer's number in the dialogue, from 1 (Rating.turn)."""
        return self.index // 2 + 1

    @property
    def is_stuck(self) -> bool:
        """An answer still waiting or being made after RUN_STALE_SECONDS: its task was lost
        (a broker restart) or its worker went quiet; it may be tried again."""
        if self.status not in (self.Status.PENDING, self.Status.GENERATING):
            return False
        since = self.started_at or self.created_at
        stale = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
        return since is not None and since < stale


class DialogueComparison(models.Model):
    """A labeller's verdict on two models' dialogues that open with the same message: which is
    the better conversation as a whole, or neither. `first` is the dialogue with the lower id;
    `first_on_left` records where it was shown (positions are drawn per labeller and pair)."""

    class Choice(models.TextChoices):
        FIRST = "first", "The first dialogue is better"
        SECOND = "second", "The second dialogue is better"
        NEITHER = "neither", "Neither is significantly better"

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="dialogue_comparisons"
    )
    annotator = models.ForeignKey(
        Annotator, on_delete=models.PROTECT, related_name="dialogue_comparisons"
    )
    first = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="+")
    first_on_left = models.BooleanField()
    choice = models.CharField(max_length=10, choices=Choice.choices)
    seconds_spent = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "first", "second"], name="dialogue_comparison_once"
            ),
            models.CheckConstraint(
                condition=Q(first__lt=models.F("second")), name="dialogue_comparison_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_id} vs {self.second_id}: {self.choice}"
