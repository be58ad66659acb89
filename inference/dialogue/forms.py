"""The dialogue pages' forms: start a dialogue, say the next message."""

from typing import Any

from django import forms
from django.db.models import QuerySet

from annotation.models import LanguageModel, Project
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
