"""Form helpers the pipelines' pages share."""

import json
from typing import Any

from django import forms


def parse_json_object(text: str) -> dict[str, Any]:
    """A form field's JSON object (model config, recipe overrides), or a message to fix it."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise forms.ValidationError(f"Not JSON: {error}") from None
    if not isinstance(value, dict):
        raise forms.ValidationError("Expected a JSON object.")
    return value


def choice_field(form: forms.Form, name: str) -> forms.ModelChoiceField:
    """A declared ModelChoiceField of the form, typed as one (`form.fields` holds any Field)."""
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)
    return field
