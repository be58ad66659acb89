from django.core.management.base import BaseCommand, CommandError

from annotation.models import Round
from annotation.services.display import texts_render


class Command(BaseCommand):
    help = (
        "Render and store the Markdown of a round's prompts and responses that are not rendered "
        "yet, so that the crowd page serves every item as stored (a round larger than "
        "ROUND_RENDER_MAX_TEXTS is otherwise rendered as its items are first shown)."
    )

    def add_arguments(self, parser):
        parser.add_argument("round_id", type=int)

    def handle(self, *args, round_id: int, **options):
        round_ = Round.objects.filter(pk=round_id).first()
        if round_ is None:
            raise CommandError(f"No round with id {round_id}.")
        if round_.text_format != Round.TextFormat.MARKDOWN:
            self.stdout.write(f"Round {round_id} shows plain text: there is nothing to render.")
            return
        items = round_.items.all()
        rendered = texts_render(
            prompt_pks=set(items.values_list("prompt_id", flat=True)),
            response_pks=set(items.shown_responses().values_list("pk", flat=True)),
            progress=lambda done, total: self.stdout.write(f"rendered {done} of {total} texts"),
        )
        self.stdout.write(self.style.SUCCESS(f"Rendered {rendered} texts of round {round_id}."))
