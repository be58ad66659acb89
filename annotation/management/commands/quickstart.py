"""Set up the embedded demo: database, researcher login, demo prompts, responses, a pairwise
round and an absolute one."""

import json
import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotation.demo import DEMO_BASELINE, DEMO_CANDIDATE, DEMO_PROMPTS
from annotation.imports.prompts import prompts_import
from annotation.imports.responses import responses_import
from annotation.links import crowd_link
from annotation.models import LanguageModel, Project, PromptSet, RatingScale, Round
from annotation.services.rounds import round_create

DEMO_ROUND = "Demo: demo-candidate vs demo-baseline"
DEMO_RATINGS_ROUND = "Demo: each answer rated Fail / Pass / Excellent"


def _jsonl(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


class Command(BaseCommand):
    help = "Migrate and load a demo round ready to annotate (safe to run again)."

    def handle(self, *args, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        username = os.environ.get("QUICKSTART_USERNAME", "researcher")
        password = os.environ.get("QUICKSTART_PASSWORD", "evalplatform-demo")
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user = user_model.objects.create_superuser(username=username, password=password)
            password_note = password
        else:
            password_note = "(unchanged since the first quickstart)"

        project, _ = Project.objects.get_or_create(name="demo")
        project.members.add(user)
        prompts_import(
            project=project,
            set_name="demo prompts",
            raw=_jsonl(
                [{"id": f"demo-{i}", "prompt": p} for i, (p, _, _) in enumerate(DEMO_PROMPTS)]
            ),
            file="demo prompts",
        )
        for model_name, column in ((DEMO_CANDIDATE, 1), (DEMO_BASELINE, 2)):
            responses_import(
                project=project,
                set_name="demo prompts",
                model_name=model_name,
                raw=_jsonl(
                    [
                        {"prompt_id": f"demo-{i}", "output": row[column]}
                        for i, row in enumerate(DEMO_PROMPTS)
                    ]
                ),
                file=f"{model_name} responses",
            )
        prompt_set = PromptSet.objects.get(project=project, name="demo prompts")
        candidate = LanguageModel.objects.get(project=project, name=DEMO_CANDIDATE)
        baseline = LanguageModel.objects.get(project=project, name=DEMO_BASELINE)
        round_ = Round.objects.filter(project=project, name=DEMO_ROUND).first()
        if round_ is None:
            round_ = round_create(
                project=project,
                name=DEMO_ROUND,
                prompt_set=prompt_set,
                candidate=candidate,
                baselines=[baseline],
                annotators_per_item=2,
                shared_items=3,
                items_per_worker=len(DEMO_PROMPTS),
            )
        ratings_round = Round.objects.filter(project=project, name=DEMO_RATINGS_ROUND).first()
        if ratings_round is None:
            ratings_round = round_create(
                project=project,
                name=DEMO_RATINGS_ROUND,
                kind=Round.Kind.ABSOLUTE,
                scale=RatingScale.FAIL_PASS_EXCELLENT,
                prompt_set=prompt_set,
                candidate=candidate,
                baselines=[baseline],
                annotators_per_item=2,
                shared_items=3,
                items_per_worker=2 * len(DEMO_PROMPTS),
            )
        link = crowd_link(round_)
        self.stdout.write(
            self.style.SUCCESS("The demo is ready.")
            + f"\n  Crowd link:        {link}?PROLIFIC_PID=demo-worker"
            + f"\n  Ratings link:      {crowd_link(ratings_round)}?PROLIFIC_PID=demo-worker"
            + f"\n  Researcher pages:  {link.split('/c/')[0]}/rounds/"
            + f"\n  Login:             {username} / {password_note}"
        )
