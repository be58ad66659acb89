"""The experiments page's form: the training sets compared, the dev prompts, the judge."""

from typing import Any

from django import forms
from django.db.models import QuerySet

from annotation.models import Project, PromptSet
from inference.experiments.models import Experiment
from inference.form_fields import choice_field, parse_json_object
from inference.judge.models import Judge
from inference.training.models import TrainingSet


class ExperimentForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    name = forms.CharField(
        max_length=150, help_text="Each candidate is registered as 'NAME: label'."
    )
    base_model = forms.CharField(
        max_length=500, help_text="A checkpoint folder on the training worker, or a hub id."
    )
    training_sets = forms.ModelMultipleChoiceField(
        queryset=TrainingSet.objects.none(),
        help_text="One candidate is trained on each (Ctrl or Cmd to choose several).",
    )
    labels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: one label per line, in the order of the training sets listed above "
        "(e.g. filtered, unfiltered); empty: their names.",
    )
    axis = forms.ChoiceField(choices=Experiment.Axis.choices, initial=Experiment.Axis.SETS)
    dev_set = forms.ModelChoiceField(
        queryset=PromptSet.objects.none(), help_text="The prompts every candidate answers."
    )
    judge = forms.ModelChoiceField(
        queryset=Judge.objects.none(), help_text="A judge in mode helpfulness 1-6."
    )
    samples_per_prompt = forms.IntegerField(min_value=1, max_value=20, initial=5)
    seed = forms.IntegerField(required=False, help_text="Empty: drawn at random.")
    recipe = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Overrides of the LIMA training recipe as JSON, shared by every candidate.",
    )
    sampling = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='Overrides of the paper\'s decoding as JSON, e.g. {"max_tokens": 512}.',
    )

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "project").queryset = projects
        choice_field(self, "training_sets").queryset = TrainingSet.objects.filter(
            project__in=projects
        ).order_by("name")
        choice_field(self, "dev_set").queryset = PromptSet.objects.filter(project__in=projects)
        choice_field(self, "judge").queryset = Judge.objects.filter(
            project__in=projects, mode=Judge.Mode.HELPFULNESS
        )

    def clean_labels(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["labels"].splitlines() if line.strip()]

    def clean_recipe(self) -> dict:
        text = self.cleaned_data["recipe"].strip()
        return parse_json_object(text) if text else {}

    def clean_sampling(self) -> dict:
        text = self.cleaned_data["sampling"].strip()
        return parse_json_object(text) if text else {}
