"""The project a command-line import names, created if new."""

from annotation.imports.records import checked_name
from annotation.models import Project


def import_project(*, name: str, file: str) -> Project:
    """Get or create the project; call it inside the import's transaction, so that a failed
    import leaves no project behind."""
    project, _ = Project.objects.get_or_create(
        name=checked_name(name, file, "the project's name (--project)")
    )
    return project
