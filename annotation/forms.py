from django import forms
from django.conf import settings

from annotation.models import ROUND_SCALES, LanguageModel, Project, PromptSet, Round
from evalplatform.upload_limits import too_large_message


def _model_choices(form: forms.Form, name: str) -> forms.ModelChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)  # Declared on the form.
    return field


def _offer_projects(field: forms.ModelChoiceField, projects) -> None:
    """Offer the user's projects, chosen already when there is only one."""
    field.queryset = projects
    only = list(projects[:2])
    if len(only) == 1:
        field.initial = only[0].pk
        field.empty_label = None


class ImportForm(forms.Form):
    KIND_CHOICES = [("prompts", "Prompts"), ("responses", "Responses")]

    project = forms.ModelChoiceField(queryset=Project.objects.none())
    kind = forms.ChoiceField(choices=KIND_CHOICES)
    prompt_set = forms.CharField(
        max_length=200, help_text="Created if it does not exist (prompts)."
    )
    model = forms.CharField(
        max_length=200, required=False, help_text="Responses only; else each line's 'model'."
    )
    file = forms.FileField(help_text="JSON Lines or JSON.")

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        _offer_projects(_model_choices(self, "project"), projects)
        # static/research.js refuses a larger file before it is sent, with the same message.
        self.fields["file"].widget.attrs.update(
            {
                "data-max-bytes": settings.IMPORT_MAX_BYTES,
                "data-too-large": too_large_message(settings.IMPORT_MAX_BYTES),
            }
        )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(too_large_message(settings.IMPORT_MAX_BYTES))
        return upload


class RoundForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    name = forms.CharField(max_length=200, required=False)
    # "" compares the candidate with each baseline; a scale makes an absolute round.
    QUESTION_CHOICES = [("", "Which of two answers is better (pairwise)")] + [
        (str(scale), f"Rate each answer alone: {scale.label}") for scale in ROUND_SCALES
    ]

    prompt_set = forms.ModelChoiceField(queryset=PromptSet.objects.none())
    question = forms.ChoiceField(
        choices=QUESTION_CHOICES,
        required=False,
        label="Annotators are asked",
        help_text="Rated alone, every answer of the candidate and the baselines is an item "
        "(LIMA's absolute study); the safety question is for sensitive prompt sets.",
    )
    candidate = forms.ModelChoiceField(queryset=LanguageModel.objects.none())
    baselines = forms.ModelMultipleChoiceField(
        queryset=LanguageModel.objects.none(),
        required=False,
        help_text="Hold Ctrl (Cmd on a Mac) to choose several; not the candidate. At least one "
        "for a pairwise round.",
    )
    annotators_per_item = forms.IntegerField(min_value=1, initial=1)
    shared_items = forms.IntegerField(min_value=0, initial=50)
    items_per_worker = forms.IntegerField(min_value=1, initial=100)
    completion_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Optional: where a worker who finished is sent, e.g. your Prolific study's "
        "completion URL; {code} in it is replaced by the worker's own code.",
    )
    text_format = forms.ChoiceField(
        choices=Round.TextFormat.choices,
        initial=Round.TextFormat.MARKDOWN,
        help_text="How annotators see prompts and answers; the judge always reads the raw text.",
    )
    max_active_workers = forms.IntegerField(
        min_value=1,
        required=False,
        help_text="Optional: at most this many crowd workers at work at once; a new worker "
        "beyond it is asked to come back in a few minutes. Empty: no cap.",
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        _offer_projects(_model_choices(self, "project"), projects)
        prompt_sets = PromptSet.objects.filter(project__in=projects)
        _model_choices(self, "prompt_set").queryset = prompt_sets
        models = LanguageModel.objects.filter(project__in=projects).order_by("name")
        _model_choices(self, "candidate").queryset = models
        _model_choices(self, "baselines").queryset = models


class QualityForm(forms.Form):
    """A round's check items and exclusion rules, on its workers page."""

    check_rate = forms.FloatField(
        min_value=0,
        max_value=0.5,
        help_text="Share of each worker's items that are gold or attention checks (0 to 0.5).",
    )
    attention_checks = forms.IntegerField(
        min_value=0, initial=0, required=False, help_text="Attention checks to add now."
    )
    gold_file = forms.FileField(
        required=False,
        help_text='Gold answers, JSON Lines: {"prompt_id": …, "answer": "candidate" | '
        '"baseline" | "tie", "baseline": name if the round has several}.',
    )
    words_per_second = forms.FloatField(
        min_value=0.1, help_text="Answers faster than the item's words at this speed are too fast."
    )
    exclude_gold_accuracy_below = forms.FloatField(
        min_value=0, max_value=1, required=False, help_text="Exclude below this gold accuracy."
    )
    exclude_failed_checks_at_least = forms.IntegerField(
        min_value=1, required=False, help_text="Exclude at this many failed attention checks."
    )
    exclude_too_fast_share_above = forms.FloatField(
        min_value=0, max_value=1, required=False, help_text="Exclude above this share too fast."
    )
    screening = forms.BooleanField(
        required=False,
        help_text="Ask three questions on the instructions first (two attempts); a worker who "
        "fails both is sent to the return URL and counted as screened out.",
    )
    block_after_failed_checks = forms.IntegerField(
        min_value=1,
        required=False,
        help_text="Stop a worker's items (politely) once they fail this many attention checks.",
    )
    return_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Where a screened-out or stopped worker is sent (e.g. the study's page).",
    )
