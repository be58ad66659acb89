import json

from django.core.management.base import BaseCommand, CommandError

from annotation.models import LanguageModel, Project
from inference.backends.base import BACKENDS
from inference.generation.services import GenerationInvalid, model_register


class Command(BaseCommand):
    help = (
        "Register a model with a generation backend (or change the backend of an existing one). "
        'Example: register_model gpt-4 --backend openai --config \'{"model": "gpt-4", '
        '"api_key_env": "OPENAI_API_KEY"}\'. API keys are never stored: name the variable.'
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--backend", required=True, choices=[*sorted(BACKENDS), LanguageModel.Backend.IMPORTED]
        )
        parser.add_argument("--config", default="{}", help="The backend's settings, as JSON.")
        parser.add_argument("--project", default="default")

    def handle(self, *args, **options):
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}.")
        try:
            config = json.loads(options["config"])
        except ValueError as error:
            raise CommandError(f"--config is not JSON: {error}") from None
        if not isinstance(config, dict):
            raise CommandError("--config must be a JSON object.")
        try:
            model = model_register(
                project=project, name=options["name"], backend=options["backend"], config=config
            )
        except GenerationInvalid as invalid:
            raise CommandError(str(invalid)) from invalid
        self.stdout.write(f"Model {model.pk}: {model.name} ({model.backend}) in {project.name}")
