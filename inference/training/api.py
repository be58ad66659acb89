"""The training API: runs (launch, list, watch, cancel, resume) and training sets (upload, list)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.common import member_project, named_in_project, request_user
from annotation.models import PromptSet
from inference.judge.models import Judge
from inference.training.data import TrainingDataInvalid
from inference.training.models import TrainingRun, TrainingSet
from inference.training.selectors import (
    run_progress,
    training_runs_for_user,
    training_sets_for_user,
)
from inference.training.services import (
    TrainingRejected,
    training_run_cancel,
    training_run_launch,
    training_run_resume,
    training_set_upload,
)


class CheckpointScoreSerializer(serializers.Serializer):
    epoch = serializers.IntegerField()
    step = serializers.IntegerField()
    path = serializers.CharField()
    mean_score = serializers.FloatField(allow_null=True)
    scored = serializers.IntegerField()
    failed = serializers.IntegerField()
    chosen = serializers.BooleanField()


class TrainingRunSerializer(serializers.ModelSerializer):
    training_set = serializers.CharField(source="training_set.name")
    dev_set = serializers.CharField(source="dev_set.name")
    judge = serializers.CharField(source="judge.name")
    project = serializers.CharField(source="project.name")
    progress = serializers.SerializerMethodField()
    scores = CheckpointScoreSerializer(many=True, read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "project",
            "name",
            "status",
            "message",
            "base_model",
            "training_set",
            "dev_set",
            "judge",
            "recipe",
            "plan",
            "progress",
            "scores",
            "chosen_checkpoint",
            "registered_model",
            "output_dir",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_progress(self, run: TrainingRun) -> dict:
        progress = run_progress(run)
        return {
            "epoch": progress.epoch,
            "step": progress.step,
            "max_steps": progress.max_steps,
            "loss": progress.loss,
            "learning_rate": progress.learning_rate,
            "tokens_per_second": progress.tokens_per_second,
            "eta_seconds": progress.eta_seconds,
            "selection": {"done": progress.selection_done, "total": progress.selection_total},
            "history": (run.progress or {}).get("history", []),
        }


class TrainingLaunchInputSerializer(serializers.Serializer):
    project = serializers.CharField()
    name = serializers.CharField()
    training_set = serializers.CharField(help_text="The training set's name in the project.")
    base_model = serializers.CharField()
    dev_set = serializers.CharField(help_text="The name of a prompt set in the project.")
    judge = serializers.CharField(help_text="The name of a helpfulness judge in the project.")
    recipe = serializers.DictField(required=False, help_text="Overrides of the LIMA recipe.")


class TrainingRunsAPI(APIView):
    """Training runs: list (GET) and launch (POST), with the LIMA recipe as defaults."""

    @extend_schema(responses=TrainingRunSerializer(many=True))
    def get(self, request: Request) -> Response:
        runs = training_runs_for_user(request_user(request)).prefetch_related("scores")[:100]
        return Response(TrainingRunSerializer(runs, many=True).data)

    @extend_schema(request=TrainingLaunchInputSerializer, responses={202: TrainingRunSerializer})
    def post(self, request: Request) -> Response:
        params = TrainingLaunchInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        project = member_project(request, data["project"])
        try:
            run = training_run_launch(
                project=project,
                name=data["name"],
                training_set=named_in_project(
                    TrainingSet, project, data["training_set"], "training_set"
                ),
                base_model=data["base_model"],
                dev_set=named_in_project(PromptSet, project, data["dev_set"], "dev_set"),
                judge=named_in_project(Judge, project, data["judge"], "judge"),
                recipe=data.get("recipe") or {},
                user=request_user(request),
            )
        except TrainingRejected as problem:
            raise serializers.ValidationError({"detail": str(problem)}) from None
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunAPI(APIView):
    @extend_schema(responses=TrainingRunSerializer)
    def get(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(training_runs_for_user(request_user(request)), pk=run_id)
        return Response(TrainingRunSerializer(run).data)


class TrainingRunCancelAPI(APIView):
    @extend_schema(request=None, responses=TrainingRunSerializer)
    def post(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(training_runs_for_user(request_user(request)), pk=run_id)
        return Response(TrainingRunSerializer(training_run_cancel(run=run)).data)


class TrainingRunResumeAPI(APIView):
    @extend_schema(request=None, responses={202: TrainingRunSerializer})
    def post(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(training_runs_for_user(request_user(request)), pk=run_id)
        try:
            run = training_run_resume(run=run)
        except TrainingRejected as problem:
            raise serializers.ValidationError({"detail": str(problem)}) from None
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingSetSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.name")

    class Meta:
        model = TrainingSet
        fields = ["id", "project", "name", "original_name", "stats", "created_at"]


class UploadInputSerializer(serializers.Serializer):
    project = serializers.CharField()
    name = serializers.CharField()
    file = serializers.FileField()
    tokenizer = serializers.CharField(required=False, allow_blank=True)
    max_length = serializers.IntegerField(required=False, min_value=8)


class TrainingSetsAPI(APIView):
    """Training sets: list (GET) and upload a JSON Lines file (POST, multipart)."""

    parser_classes = [MultiPartParser]

    @extend_schema(responses=TrainingSetSerializer(many=True))
    def get(self, request: Request) -> Response:
        sets = training_sets_for_user(request_user(request))[:100]
        return Response(TrainingSetSerializer(sets, many=True).data)

    @extend_schema(request=UploadInputSerializer, responses={201: TrainingSetSerializer})
    def post(self, request: Request) -> Response:
        params = UploadInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        project = member_project(request, data["project"])
        try:
            training_set = training_set_upload(
                project=project,
                name=data["name"],
                raw=data["file"].read(),
                file_name=data["file"].name,
                tokenizer=data.get("tokenizer", ""),
                max_length=data.get("max_length", 2048),
                user=request_user(request),
            )
        except TrainingDataInvalid as invalid:
            lines = [{"line": line, "problem": problem} for line, problem in invalid.problems]
            return Response(
                {"detail": str(invalid), "lines": lines}, status=status.HTTP_400_BAD_REQUEST
            )
        except TrainingRejected as problem:
            raise serializers.ValidationError({"detail": str(problem)}) from None
        return Response(TrainingSetSerializer(training_set).data, status=status.HTTP_201_CREATED)
