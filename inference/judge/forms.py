"""The judge page's form: start an existing judge on a round, or describe a new one."""

from typing import Any

from django import forms
from django.db.models import QuerySet

from annotation.validators import env_var_name, not_a_key
from inference.judge.models import DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL, Judge


class VariableNameInput(forms.TextInput):
    """Sends back only a value that is a variable name: a key pasted by mistake is dropped."""

    def format_value(self, value: Any) -> str | None:
        text = super().format_value(value)
        if (
            text is None
            # django-stubs types RegexValidator.regex as str | Pattern (a class may declare it
            # as a string); on an instance, as here, it is always the compiled pattern.
            or not env_var_name.regex.match(text)  # type: ignore[union-attr]
            or text.lower().startswith("sk")
        ):
            return None
        return text


VARIABLE, NO_KEY = "variable", "none"


class JudgeStartForm(forms.Form):
    """Start an existing judge on the round, or describe a new one."""

    judge = forms.ModelChoiceField(
        queryset=Judge.objects.none(), required=False, empty_label="New judge…"
    )
    name = forms.CharField(max_length=200, required=False, initial="gpt-4")
    model = forms.CharField(max_length=200, required=False, initial="gpt-4")
    base_url = forms.CharField(max_length=500, required=False, initial=DEFAULT_BASE_URL)
    api_key = forms.ChoiceField(
        choices=[(VARIABLE, "from the variable below"), (NO_KEY, "none (server needs no key)")],
        initial=VARIABLE,
        required=False,
        widget=forms.RadioSelect,
        label="API key",
    )
    api_key_env = forms.CharField(
        max_length=100,
        required=False,
        initial=DEFAULT_API_KEY_ENV,
        validators=[env_var_name, not_a_key],
        widget=VariableNameInput,
        label="API key variable",
        help_text="The name of the environment variable holding the key on the workers.",
    )
    mode = forms.ChoiceField(choices=Judge.Mode.choices, initial=Judge.Mode.PAIRWISE)

    def __init__(self, *args: Any, judges: QuerySet[Judge], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        judge = self.fields["judge"]
        assert isinstance(judge, forms.ModelChoiceField)  # Declared above.
        judge.queryset = judges

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data.
        if not data.get("judge") and not (data.get("name") or "").strip():
            raise forms.ValidationError("Choose a judge or name a new one.")
        return data
