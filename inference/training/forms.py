"""The training page's forms: upload a training set, launch a run."""

from typing import Any

from django import forms
from django.db.models import QuerySet

from annotation.models import Project, PromptSet
from inference.form_fields import choice_field, parse_json_object
from inference.judge.models import Judge
from inference.training.models import TrainingSet


class UploadForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    name = forms.CharField(max_length=200)
    file = forms.FileField(help_text="JSON Lines: {conversations, source} or {prompt, response}.")
    tokenizer = forms.CharField(
        max_length=500,
        required=False,
        help_text="A tokenizer folder or hub id on the web server for exact token lengths; "
        "empty: estimated (about 4 characters a token).",
    )

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "project").queryset = projects


class LaunchForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    name = forms.CharField(max_length=200, help_text="Also the name of the model registered.")
    training_set = forms.ModelChoiceField(queryset=TrainingSet.objects.none())
    base_model = forms.CharField(
        max_length=500, help_text="A checkpoint folder on the training worker, or a hub id."
    )
    dev_set = forms.ModelChoiceField(
        queryset=PromptSet.objects.none(), help_text="Prompts for checkpoint selection."
    )
    judge = forms.ModelChoiceField(
        queryset=Judge.objects.none(), help_text="A judge in mode helpfulness 1-6."
    )
    recipe = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='Overrides of the LIMA recipe as JSON, e.g. {"epochs": 10, '
        '"residual_dropout": 0.2}; empty: the paper\'s settings.',
    )

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "project").queryset = projects
        choice_field(self, "training_set").queryset = TrainingSet.objects.filter(
            project__in=projects
        )
        choice_field(self, "dev_set").queryset = PromptSet.objects.filter(project__in=projects)
        choice_field(self, "judge").queryset = Judge.objects.filter(
            project__in=projects, mode=Judge.Mode.HELPFULNESS
        )

    def clean_recipe(self) -> dict:
        text = self.cleaned_data["recipe"].strip()
        return parse_json_object(text) if text else {}
