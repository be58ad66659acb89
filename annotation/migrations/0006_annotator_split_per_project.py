"""Each annotator gets the project of what it did: its annotations, worker sessions and judges.

One used in several projects is split into one per project, with that project's annotations,
sessions and judges moved to its copy; one that did nothing anywhere is deleted, as nothing
refers to it. Backwards, the annotators of one kind and name are merged again.

A migration of its own, apart from the schema changes around it, so that PostgreSQL runs its
deferred foreign-key checks before those tables are altered.
"""

from django.db import migrations


def split_per_project(apps, schema_editor):
    Annotator = apps.get_model("annotation", "Annotator")
    Annotation = apps.get_model("annotation", "Annotation")
    WorkerSession = apps.get_model("annotation", "WorkerSession")
    Judge = apps.get_model("inference", "Judge")
    for annotator in list(Annotator.objects.order_by("pk")):
        projects = (
            set(
                Annotation.objects.filter(annotator=annotator).values_list(
                    "item__round__project_id", flat=True
                )
            )
            | set(
                WorkerSession.objects.filter(annotator=annotator).values_list(
                    "round__project_id", flat=True
                )
            )
            | set(Judge.objects.filter(annotator=annotator).values_list("project_id", flat=True))
        )
        if not projects:
            annotator.delete()
            continue
        first, *others = sorted(projects)
        Annotator.objects.filter(pk=annotator.pk).update(project_id=first)
        for project_id in others:
            copy = Annotator.objects.create(
                project_id=project_id,
                kind=annotator.kind,
                name=annotator.name,
                user_id=annotator.user_id,
            )
            Annotator.objects.filter(pk=copy.pk).update(created_at=annotator.created_at)
            Annotation.objects.filter(
                annotator=annotator, item__round__project_id=project_id
            ).update(annotator=copy)
            WorkerSession.objects.filter(annotator=annotator, round__project_id=project_id).update(
                annotator=copy
            )
            Judge.objects.filter(annotator=annotator, project_id=project_id).update(annotator=copy)


def merge_across_projects(apps, schema_editor):
    Annotator = apps.get_model("annotation", "Annotator")
    Annotation = apps.get_model("annotation", "Annotation")
    WorkerSession = apps.get_model("annotation", "WorkerSession")
    Judge = apps.get_model("inference", "Judge")
    kept: dict[tuple[str, str], int] = {}
    for pk, kind, name in Annotator.objects.order_by("pk").values_list("pk", "kind", "name"):
        keeper = kept.setdefault((kind, name), pk)
        if keeper == pk:
            continue
        # Items, rounds and judges belong to one project each: the moved rows never collide.
        Annotation.objects.filter(annotator_id=pk).update(annotator_id=keeper)
        WorkerSession.objects.filter(annotator_id=pk).update(annotator_id=keeper)
        Judge.objects.filter(annotator_id=pk).update(annotator_id=keeper)
        Annotator.objects.filter(pk=pk).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0005_annotator_project"),
        # Judges name their annotator: a split judge annotator is re-pointed there too.
        ("inference", "0006_integrity_constraints"),
    ]

    operations = [
        migrations.RunPython(split_per_project, merge_across_projects),
    ]
