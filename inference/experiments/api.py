"""The experiments API: create (queued on the train worker), list, watch with results, cancel,
resume."""

from typing import cast

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.serializer_helpers import ReturnList
from rest_framework.views import APIView

from annotation.api.common import member_project, named_in_project, request_user
from annotation.models import PromptSet
from inference.experiments.models import Experiment
from inference.experiments.selectors import experiment_results, experiments_for_user
from inference.experiments.services import (
    ExperimentRejected,
    experiment_cancel,
    experiment_create,
    experiment_resume,
)
from inference.judge.models import Judge
from inference.training.models import TrainingSet


class ArmResultSerializer(serializers.Serializer):
    arm = serializers.CharField(source="label", help_text="The training set's label.")
    examples = serializers.IntegerField()
    training_set = serializers.CharField()
    run_status = serializers.CharField(help_text="The candidate's training run, or 'not started'.")
    model = serializers.CharField(help_text="The candidate registered; '' before.")
    answers = serializers.IntegerField()
    needed = serializers.IntegerField(help_text="Dev prompts times answers per prompt.")
    scored = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True, help_text="Mean helpfulness, 1-6.")
    ci95 = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="95 % bootstrap interval of the mean, resampling dev prompts.",
    )


class ExperimentSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.name")
    dev_set = serializers.CharField(source="dev_set.name")
    judge = serializers.CharField(source="judge.name")
    results = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = [
            "id",
            "project",
            "name",
            "status",
            "message",
            "base_model",
            "dev_set",
            "judge",
            "axis",
            "samples_per_prompt",
            "seed",
            "recipe",
            "sampling",
            "progress",
            "results",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(ArmResultSerializer(many=True))
    def get_results(self, experiment: Experiment) -> ReturnList:
        results = [result.as_json() for result in experiment_results(experiment)]
        return cast(ReturnList, ArmResultSerializer(results, many=True).data)


class ExperimentInputSerializer(serializers.Serializer):
    project = serializers.CharField()
    name = serializers.CharField(max_length=150)
    base_model = serializers.CharField(max_length=500)
    training_sets = serializers.ListField(
        child=serializers.CharField(),
        min_length=1,
        help_text="Names of training sets in the project: one candidate is trained on each.",
    )
    labels = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="One per training set, in order; default: their names.",
    )
    dev_set = serializers.CharField(help_text="The name of a prompt set in the project.")
    judge = serializers.CharField(help_text="The name of a helpfulness judge in the project.")
    axis = serializers.ChoiceField(choices=Experiment.Axis.choices, required=False)
    samples_per_prompt = serializers.IntegerField(required=False, min_value=1, max_value=20)
    seed = serializers.IntegerField(required=False, min_value=-(2**63), max_value=2**63 - 1)
    recipe = serializers.DictField(required=False, help_text="Overrides of the LIMA recipe.")
    sampling = serializers.DictField(required=False, help_text="Overrides of the decoding.")


class ExperimentsAPI(APIView):
    """Experiments: list (GET) and create, queued on the train worker (POST)."""

    @extend_schema(responses=ExperimentSerializer(many=True))
    def get(self, request: Request) -> Response:
        found = experiments_for_user(request_user(request))[:100]
        return Response(ExperimentSerializer(found, many=True).data)

    @extend_schema(request=ExperimentInputSerializer, responses={202: ExperimentSerializer})
    def post(self, request: Request) -> Response:
        params = ExperimentInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        project = member_project(request, data["project"])
        try:
            experiment = experiment_create(
                project=project,
                name=data["name"],
                base_model=data["base_model"],
                dev_set=named_in_project(PromptSet, project, data["dev_set"], "dev_set"),
                judge=named_in_project(Judge, project, data["judge"], "judge"),
                training_sets=[
                    named_in_project(TrainingSet, project, name, "training_set")
                    for name in data["training_sets"]
                ],
                labels=data.get("labels") or (),
                axis=data.get("axis", Experiment.Axis.SETS),
                samples_per_prompt=data.get("samples_per_prompt", 5),
                seed=data.get("seed"),
                recipe=data.get("recipe") or {},
                sampling=data.get("sampling") or {},
                user=request_user(request),
            )
        except ExperimentRejected as problem:
            raise serializers.ValidationError({"detail": str(problem)}) from None
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_202_ACCEPTED)


class ExperimentAPI(APIView):
    @extend_schema(responses=ExperimentSerializer)
    def get(self, request: Request, experiment_id: int) -> Response:
        found = get_object_or_404(experiments_for_user(request_user(request)), pk=experiment_id)
        return Response(ExperimentSerializer(found).data)


class ExperimentCancelAPI(APIView):
    @extend_schema(request=None, responses=ExperimentSerializer)
    def post(self, request: Request, experiment_id: int) -> Response:
        found = get_object_or_404(experiments_for_user(request_user(request)), pk=experiment_id)
        return Response(ExperimentSerializer(experiment_cancel(experiment=found)).data)


class ExperimentResumeAPI(APIView):
    @extend_schema(request=None, responses={202: ExperimentSerializer})
    def post(self, request: Request, experiment_id: int) -> Response:
        found = get_object_or_404(experiments_for_user(request_user(request)), pk=experiment_id)
        try:
            found = experiment_resume(experiment=found)
        except ExperimentRejected as problem:
            raise serializers.ValidationError({"detail": str(problem)}) from None
        return Response(ExperimentSerializer(found).data, status=status.HTTP_202_ACCEPTED)
