"""The dialogue pages' forms: start a dialogue, import conversations, say the next message,
choose the two models whose dialogues are compared."""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.db.models import QuerySet

from annotation.models import LanguageModel, Project
from annotation.validators import MAX_NAME_LENGTH
from inference.dialogue.services import MAX_MESSAGE_CHARACTERS
from inference.form_fields import choice_field, parse_json_object


class StartForm(forms.Form):
    model = forms.ModelChoiceField(
        queryset=LanguageModel.objects.none(),
        help_text="A model with a generation backend: it answers through it, on its queue.",
    )
    turns = forms.IntegerField(
        min_value=1, max_value=50, initial=5, help_text="How many answers the dialogue has."
    )
    sampling = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='Overrides of the model\'s sampling as JSON, e.g. {"temperature": 0.7}.',
    )

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "model").queryset = (
            LanguageModel.objects.filter(project__in=projects)
            .exclude(backend=LanguageModel.Backend.IMPORTED)
            .select_related("project")
            .order_by("project__name", "name")
        )

    def clean_sampling(self) -> dict:
        text = self.cleaned_data["sampling"].strip()
        return parse_json_object(text) if text else {}


class MessageForm(forms.Form):
    text = forms.CharField(
        max_length=MAX_MESSAGE_CHARACTERS,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Your message",
    )


class ImportForm(forms.Form):
    prefix = "import"
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    model = forms.CharField(
        required=False,
        max_length=MAX_NAME_LENGTH,
        label="Model of every conversation",
        help_text="Otherwise each record names its 'model'. "
        "A model the project does not have yet is registered with imported answers.",
    )
    file = forms.FileField(
        help_text='JSON Lines: the LIMA release\'s {"conversations": [...]} or OpenAI chat '
        'format {"messages": [{"role", "content"}, ...]}, one conversation per line.'
    )

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = choice_field(self, "project")
        field.queryset = projects.order_by("name")
        if len(field.queryset[:2]) == 1:
            field.initial = field.queryset[0]


class CompareForm(forms.Form):
    model_a = forms.ModelChoiceField(queryset=LanguageModel.objects.none(), label="One model")
    model_b = forms.ModelChoiceField(queryset=LanguageModel.objects.none(), label="The other")

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models = (
            LanguageModel.objects.filter(project__in=projects, dialogues__isnull=False)
            .distinct()
            .select_related("project")
            .order_by("project__name", "name")
        )
        choice_field(self, "model_a").queryset = models
        choice_field(self, "model_b").queryset = models

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        a, b = data.get("model_a"), data.get("model_b")
        if a is not None and b is not None:
            if a == b:
                raise forms.ValidationError("Choose two different models.")
            if a.project_id != b.project_id:
                raise forms.ValidationError("Choose two models of the same project.")
        return data

    def query(self) -> str:
        """The choice as the page's query string."""
        return urlencode(
            {"model_a": self.cleaned_data["model_a"].pk, "model_b": self.cleaned_data["model_b"].pk}
        )


class _ModelsOfOneProject(forms.Form):
    """A form whose `models` must all belong to one project."""

    def clean_models(self) -> list[LanguageModel]:
        chosen = list(self.cleaned_data["models"])
        if len({model.project_id for model in chosen}) > 1:
            raise forms.ValidationError("Choose models of one project.")
        return chosen


class CrowdRoundForm(_ModelsOfOneProject):
    """An absolute round over the chosen models' finished dialogues, one item per answer."""

    prefix = "crowd"
    models = forms.ModelMultipleChoiceField(
        queryset=LanguageModel.objects.none(),
        help_text="Every answer of these models' finished dialogues is labelled.",
    )
    name = forms.CharField(max_length=150, help_text="The round's name.")
    annotators_per_item = forms.IntegerField(min_value=1, max_value=20, initial=1)
    shared_items = forms.IntegerField(
        min_value=0,
        initial=0,
        help_text="Answers every worker labels, to measure agreement between workers.",
    )

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "models").queryset = (
            LanguageModel.objects.filter(project__in=projects, dialogues__status="done")
            .distinct()
            .select_related("project")
            .order_by("project__name", "name")
        )


class StudyForm(_ModelsOfOneProject):
    """Crowd workers talk to these models live, through the study's link."""

    prefix = "study"
    models = forms.ModelMultipleChoiceField(
        queryset=LanguageModel.objects.none(),
        help_text="Each worker talks to one of them (the one with the fewest dialogues so far).",
    )
    name = forms.CharField(max_length=150)
    turns = forms.IntegerField(min_value=1, max_value=50, initial=5, label="Answers per dialogue")
    max_workers = forms.IntegerField(
        min_value=1, required=False, help_text="At most this many workers; empty: no cap."
    )
    completion_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Where a worker who finished is sent; {code} is replaced by their code.",
    )

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "models").queryset = (
            LanguageModel.objects.filter(project__in=projects)
            .exclude(backend=LanguageModel.Backend.IMPORTED)
            .select_related("project")
            .order_by("project__name", "name")
        )
