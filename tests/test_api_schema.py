"""The API against its own OpenAPI schema: schemathesis sends generated requests, valid and not,
to every operation and checks each answer: no server error, a documented status code, a body
and headers that match the schema, invalid input refused, valid input accepted.

The requests go through the WSGI application in the test's own database transaction, as a
member of a project with a round, its models, responses and annotations. Generated ids that are
not negative are mapped onto objects that exist, so that success answers are checked too; the
others mostly reach no object (404).
"""

from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.db.models import Model
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from annotation.models import (
    Annotation,
    Annotator,
    ImportJob,
    LanguageModel,
    Project,
    PromptSet,
    Rating,
    Round,
)
from annotation.models import Response as ModelResponse
from inference.dialogue.models import Dialogue
from inference.dialogue.services import dialogue_start
from inference.experiments.models import Experiment
from inference.experiments.services import experiment_create
from inference.judge.models import JudgeRun
from inference.judge.services import judge_create
from inference.training.models import TrainingRun
from inference.training.services import training_set_upload
from tests.factories import make_round, make_user
from tests.support.judging import KEY_ENV
from tests.support.training import jsonl

pytestmark = pytest.mark.django_db

# Enough to reach every branch of input checking seen so far; 40 operations in about 1 minute.
EXAMPLES_PER_OPERATION = 20

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
schema.config.generation.update(max_examples=EXAMPLES_PER_OPERATION)
# A schema-valid body may still name an object that does not exist or break a rule across
# fields (a round's candidate among its baselines); the API refuses those with a documented 400.
acceptance = schema.config.checks.positive_data_acceptance
acceptance.expected_statuses = [*acceptance.expected_statuses, "400"]
# Not checked: that every schema-violating request is refused. DRF coerces what it can (a
# number given for a name becomes its text) and ignores query parameters it does not read in
# a shape it does not know; both are accepted input, not errors. Repeated parameters and
# bodies that are not JSON are refused (tests/annotation/api/test_api.py).
schema.config.checks.negative_data_rejection.enabled = False

RESOURCES: dict[str, type[Model]] = {
    "annotations": Annotation,
    "dialogues": Dialogue,
    "experiments": Experiment,
    "import-jobs": ImportJob,
    "judge-runs": JudgeRun,
    "models": LanguageModel,
    "projects": Project,
    "prompt-sets": PromptSet,
    "ratings": Rating,
    "responses": ModelResponse,
    "rounds": Round,
    "training-runs": TrainingRun,
}


@schema.hook("map_path_parameters")
def existing_ids(context: Any, path_parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    if not path_parameters:
        return path_parameters
    resource = context.operation.path.removeprefix("/api/").split("/")[0]
    ids = list(RESOURCES[resource]._default_manager.order_by("pk").values_list("pk", flat=True))
    for name, value in path_parameters.items():
        if ids and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            path_parameters[name] = ids[value % len(ids)]
    return path_parameters


@pytest.fixture
def token() -> Any:
    # As Django's test client does: the request cycle would otherwise close the connection
    # that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        user = make_user()
        round_ = make_round(prompts=4, baselines=("baseline-a", "baseline-b"))
        round_.project.members.add(user)
        annotator = Annotator.objects.create(
            project=round_.project, kind=Annotator.Kind.AUTHOR, name="author"
        )
        for item in round_.items.all()[:3]:
            Annotation.objects.create(
                item=item,
                annotator=annotator,
                choice=Annotation.Choice.CANDIDATE,
                shown_choice=Annotation.shown_for(
                    Annotation.Choice.CANDIDATE, item.candidate_first
                ),
                candidate_first=item.candidate_first,
            )
        judge = Annotator.objects.create(
            project=round_.project, kind=Annotator.Kind.JUDGE, name="gpt-4"
        )
        Rating.objects.create(
            annotator=judge,
            model=round_.candidate,
            question="0",
            scale=Rating.Scale.MT_BENCH_1_10,
            score=7.5,
        )
        ImportJob.objects.create(
            project=round_.project,
            kind=ImportJob.Kind.PROMPTS,
            original_name="prompts.jsonl",
            prompt_set_name="imported",
        )
        helpfulness = judge_create(
            project=round_.project,
            name="helpfulness",
            mode="helpfulness_1_6",
            base_url="http://127.0.0.1:9/v1",
            api_key_env=KEY_ENV,
        )
        experiment_create(
            project=round_.project,
            name="quality",
            base_model="/models/base",
            dev_set=round_.prompt_set,
            judge=helpfulness,
            training_sets=[
                training_set_upload(project=round_.project, name="curated", raw=jsonl(2))
            ],
            enqueue_task=False,
        )
        talker = LanguageModel.objects.create(
            project=round_.project,
            name="talker",
            backend=LanguageModel.Backend.TRANSFORMERS,
            config={"model": "/models/talker"},
        )
        dialogue_start(project=round_.project, model=talker, user=user)
        yield Token.objects.create(user=user).key
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
# Derandomized: CI sees the same cases every run.
@settings(
    deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_operation_answers_as_its_schema_says(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"})
