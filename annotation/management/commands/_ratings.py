"""What the ratings commands share: which project's ratings, and of which round's answers."""

from django.core.management.base import CommandError, CommandParser

from annotation.models import Project


def add_scope_arguments(parser: CommandParser) -> None:
    parser.add_argument("--project", required=True)
    parser.add_argument("--round", type=int, help="Only the ratings of this round's answers.")


def project_checked(name: str, round_id: int | None) -> Project:
    """The project named, with the round (if one is given) among its rounds."""
    project = Project.objects.filter(name=name).first()
    if project is None:
        raise CommandError(f"No project named {name!r}.")
    if round_id is not None and not project.rounds.filter(pk=round_id).exists():
        raise CommandError(f"Project {name!r} has no round {round_id}.")
    return project
