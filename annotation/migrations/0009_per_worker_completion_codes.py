"""Per-worker completion codes: each round gets its own secret, workers their own code.

The shared code is dropped. A column default would give every existing round the same
secret, so each round draws its own here.
"""

import secrets

import annotation.models
from django.db import migrations, models


def give_each_round_its_own_secret(apps, schema_editor):
    Round = apps.get_model("annotation", "Round")
    for round_ in Round.objects.only("pk"):
        Round.objects.filter(pk=round_.pk).update(completion_secret=secrets.token_hex(16))


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0008_rendered_text_and_text_format'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='round',
            name='completion_code',
        ),
        migrations.AddField(
            model_name='round',
            name='completion_secret',
            field=models.CharField(default=annotation.models._completion_secret, max_length=64),
        ),
        migrations.RunPython(give_each_round_its_own_secret, migrations.RunPython.noop),
        migrations.AddField(
            model_name='round',
            name='completion_url',
            field=models.URLField(blank=True, help_text="Where a worker who finished is sent, e.g. the study's Prolific completion URL; {code} in it is replaced by the worker's completion code.", max_length=500),
        ),
        migrations.AddField(
            model_name='workersession',
            name='browser_key_hash',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddField(
            model_name='workersession',
            name='completion_code',
            field=models.CharField(blank=True, default='', max_length=20),
        ),
        migrations.AddField(
            model_name='workersession',
            name='last_answer_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
