import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from annotation.demo import DEMO_BASELINE, DEMO_CANDIDATE, DEMO_PROMPTS
from annotation.models import Project
from inference.dialogue.imports import dialogues_import

FOLLOW_UP = "Can you say that in one sentence?"


def _first_sentence(text: str) -> str:
    sentence = text.split(". ")[0].strip().rstrip(".")
    return f"In one sentence: {sentence}."


class Command(BaseCommand):
    help = (
        "Give the demo project (made by quickstart) a two-turn conversation of each demo model "
        "on every demo prompt, to label on /inference/dialogues/ and compare on "
        "/inference/dialogues/compare/. Running it again adds nothing."
    )

    def handle(self, *args, **options) -> None:
        project = Project.objects.filter(name="demo").first()
        if project is None:
            raise CommandError("No demo project: run `python manage.py quickstart` first.")
        added = 0
        for model_name, column in ((DEMO_CANDIDATE, 1), (DEMO_BASELINE, 2)):
            records = [
                {"conversations": [row[0], row[column], FOLLOW_UP, _first_sentence(row[column])]}
                for row in DEMO_PROMPTS
            ]
            raw = "".join(json.dumps(record) + "\n" for record in records).encode()
            summary = dialogues_import(
                project=project, raw=raw, file=f"{model_name} dialogues", model_name=model_name
            )
            added += summary.created
        base = settings.PUBLIC_BASE_URL
        self.stdout.write(
            f"Demo dialogues: {added} added."
            f"\n  Label them:        {base}{reverse('dialogues')}"
            f"\n  Compare them:      {base}{reverse('dialogue-compare')}"
        )
