from django import forms

from annotation.models import LanguageModel, Project, PromptSet


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
        self.fields["project"].queryset = projects


class RoundForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    name = forms.CharField(max_length=200, required=False)
    prompt_set = forms.ModelChoiceField(queryset=PromptSet.objects.none())
    candidate = forms.ModelChoiceField(queryset=LanguageModel.objects.none())
    baselines = forms.ModelMultipleChoiceField(queryset=LanguageModel.objects.none())
    annotators_per_item = forms.IntegerField(min_value=1, initial=1)
    shared_items = forms.IntegerField(min_value=0, initial=50)
    items_per_worker = forms.IntegerField(min_value=1, initial=100)

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        self.fields["prompt_set"].queryset = PromptSet.objects.filter(project__in=projects)
        models = LanguageModel.objects.filter(project__in=projects).order_by("name")
        self.fields["candidate"].queryset = models
        self.fields["baselines"].queryset = models
