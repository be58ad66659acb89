import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0006_annotator_split_per_project"),
    ]

    operations = [
        migrations.AlterField(
            model_name="annotator",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="annotators",
                to="annotation.project",
            ),
        ),
        migrations.AddConstraint(
            model_name="annotator",
            constraint=models.UniqueConstraint(
                fields=("project", "kind", "name"), name="annotator_unique_name_in_project"
            ),
        ),
    ]
