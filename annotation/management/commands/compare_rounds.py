from django.core.management.base import BaseCommand, CommandError

from annotation.models import Round
from annotation.reports.frames import round_verdict_rows
from annotation.reports.paired import paired_comparison, prompt_scores


class Command(BaseCommand):
    help = (
        "Compare two rounds' candidates on the prompts both were judged on, against each "
        "baseline they share: sign test and paired bootstrap of the win-rate difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("first", type=int, help="A round id.")
        parser.add_argument("second", type=int, help="Another round id.")
        parser.add_argument("--group", default="crowd", help="crowd, author or a judge's name.")

    def handle(self, *args, first: int, second: int, group: str, **options):
        rounds = {r.pk: r for r in Round.objects.filter(pk__in=[first, second])}
        missing = [str(pk) for pk in (first, second) if pk not in rounds]
        if missing:
            raise CommandError(f"No round {', '.join(missing)}.")
        one, two = rounds[first], rounds[second]
        scores = [prompt_scores(round_verdict_rows(r.pk), group) for r in (one, two)]
        shared = sorted(set(scores[0]) & set(scores[1]))
        if not shared:
            judged = [", ".join(found) or "none" for found in scores]
            raise CommandError(
                f"The rounds share no baseline judged by {group!r} "
                f"(first: {judged[0]}; second: {judged[1]})."
            )
        for baseline in shared:
            result = paired_comparison(scores[0][baseline], scores[1][baseline], baseline=baseline)
            if result is None:
                self.stdout.write(f"Against {baseline}: no prompt judged in both rounds.")
                continue
            if result.sign_test_p is None:
                p = "p = n/a"
            elif result.sign_test_p < 0.001:
                p = "p < 0.001"
            else:
                p = f"p = {result.sign_test_p:.3f}"
            self.stdout.write(
                f"Against {baseline}: {result.prompts} prompts; {one.candidate} better on "
                f"{result.first_better}, {two.candidate} on {result.second_better}, equal on "
                f"{result.same}; sign test {p}."
            )
            self.stdout.write(result.sentence(one.candidate.name, two.candidate.name))
