"""The demo's dialogues: both demo models on every demo prompt, ready to label and compare;
made once."""

import io

import pytest
from django.core.management import CommandError, call_command

from annotation.demo import DEMO_BASELINE, DEMO_CANDIDATE, DEMO_PROMPTS
from annotation.models import LanguageModel, Project
from inference.dialogue.models import Dialogue
from inference.dialogue.selectors import dialogue_pairs

pytestmark = pytest.mark.django_db


def test_the_demo_has_dialogues_of_both_models_to_compare(settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    with pytest.raises(CommandError, match=r"run `python manage\.py quickstart` first"):
        call_command("demo_dialogues")
    call_command("quickstart", stdout=io.StringIO())
    out = io.StringIO()
    call_command("demo_dialogues", stdout=out)
    call_command("demo_dialogues", stdout=io.StringIO())
    assert f"Demo dialogues: {2 * len(DEMO_PROMPTS)} added." in out.getvalue()
    assert "Compare them:      http://127.0.0.1:8000/inference/dialogues/compare/" in out.getvalue()
    project = Project.objects.get(name="demo")
    assert Dialogue.objects.filter(project=project).count() == 2 * len(DEMO_PROMPTS)
    candidate = LanguageModel.objects.get(project=project, name=DEMO_CANDIDATE)
    baseline = LanguageModel.objects.get(project=project, name=DEMO_BASELINE)
    assert len(dialogue_pairs(project.pk, candidate, baseline)) == len(DEMO_PROMPTS)
