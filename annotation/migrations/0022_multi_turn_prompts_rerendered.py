"""Multi-turn prompts (the LIMA release's conversations) are now shown as their whole
conversation, as the judge reads them: their stored rendering, made from the first turn only,
is marked stale, so it is made again the next time it is shown."""

from django.db import migrations


def mark_stale(apps, schema_editor):
    Prompt = apps.get_model("annotation", "Prompt")
    Prompt.objects.filter(extra__has_key="conversations").update(html_version=0)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0021_rated_check_items")]

    operations = [migrations.RunPython(mark_stale, migrations.RunPython.noop)]
