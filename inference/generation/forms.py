"""Generation's forms: launch a round's generation, register a model."""

from typing import Any

from django import forms
from django.db.models import QuerySet

from annotation.models import Project
from inference.backends.base import BACKENDS
from inference.form_fields import parse_json_object


class LaunchForm(forms.Form):
    """Overrides of the paper's sampling for this round; empty fields keep each model's."""

    temperature = forms.FloatField(required=False, min_value=0)
    top_p = forms.FloatField(required=False, min_value=0.01, max_value=1)
    repetition_penalty = forms.FloatField(required=False, min_value=0.01)
    max_tokens = forms.IntegerField(required=False, min_value=1)
    seed = forms.IntegerField(required=False, help_text="Default: the round's seed.")

    def sampling(self) -> dict[str, Any]:
        keys = ("temperature", "top_p", "repetition_penalty", "max_tokens")
        return {k: self.cleaned_data[k] for k in keys if self.cleaned_data[k] is not None}


class RegisterModelForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    name = forms.CharField(max_length=200)
    backend = forms.ChoiceField(choices=[(name, name) for name in sorted(BACKENDS)])
    config = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text='JSON, e.g. {"model": "/models/lima-65b", "tensor_parallel_size": 4} or '
        '{"model": "gpt-4", "api_key_env": "OPENAI_API_KEY"}. Never a key itself.',
    )

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        project = self.fields["project"]
        assert isinstance(project, forms.ModelChoiceField)  # Declared above.
        project.queryset = projects

    def clean_config(self) -> dict[str, Any]:
        return parse_json_object(self.cleaned_data["config"])
