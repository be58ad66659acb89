"""What the machine side's commands share: the project and models a command names."""

from django.core.management.base import CommandError

from annotation.models import LanguageModel, Project


def project_named(name: str) -> Project:
    project = Project.objects.filter(name=name).first()
    if project is None:
        raise CommandError(f"No project named {name!r}.")
    return project


def models_named(project: Project, names: list[str]) -> list[LanguageModel]:
    """The project's models of these names, each once, in the order given."""
    models = []
    for name in dict.fromkeys(names):
        model = LanguageModel.objects.filter(project=project, name=name).first()
        if model is None:
            raise CommandError(f"No model named {name!r} in project {project.name!r}.")
        models.append(model)
    return models
