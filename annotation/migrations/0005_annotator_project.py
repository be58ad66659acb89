"""Annotators belong to a project; filled from what each annotated in the next migration."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0004_integrity_constraints"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotator",
            name="project",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="annotators",
                to="annotation.project",
            ),
        ),
        migrations.RemoveConstraint(model_name="annotator", name="annotator_unique_name"),
    ]
