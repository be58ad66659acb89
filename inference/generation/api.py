"""Generation's API: a round's generation (progress, launch, cancel) and the models themselves,
registered through the one registration service that the page and `register_model` use."""

from typing import Any

from django.db import transaction
from django.db.models import ProtectedError, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.common import (
    Conflict,
    DetailSerializer,
    InProject,
    ProjectFilter,
    filtered,
    request_user,
)
from annotation.models import LanguageModel, Project, Round
from annotation.selectors import rounds_for_user, visible_to
from inference.generation.selectors import generation_progress
from inference.generation.services import (
    GenerationInvalid,
    generation_cancel,
    generation_launch,
    model_register,
)
from inference.runs import QueueUnavailable


class GenerationLaunchInputSerializer(serializers.Serializer):
    sampling = serializers.DictField(
        required=False,
        help_text="Overrides of the paper's sampling: temperature, top_p, repetition_penalty, "
        "max_tokens, stop.",
    )
    seed = serializers.IntegerField(required=False, help_text="Default: the round's seed.")


class ModelProgressSerializer(serializers.Serializer):
    model = serializers.CharField()
    backend = serializers.CharField()
    queue = serializers.CharField()
    status = serializers.CharField()
    needed = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    responses_per_second = serializers.FloatField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    # The stubs see this shadowing Serializer.errors; DRF's metaclass moves declared fields out
    # of the class into _declared_fields, so the property stays as it is.
    errors = serializers.ListField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField())
    )


class GenerationSerializer(serializers.Serializer):
    run = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(allow_blank=True)
    sampling = serializers.DictField()
    seed = serializers.IntegerField(allow_null=True)
    models = ModelProgressSerializer(many=True)


def _generation_data(round_: Round) -> dict[str, Any]:
    run = round_.generation_runs.first()
    return GenerationSerializer(
        {
            "run": run.pk if run else None,
            "status": run.status if run else "",
            "sampling": run.sampling if run else {},
            "seed": run.seed if run else None,
            "models": generation_progress(round_),
        }
    ).data


class RoundGenerationAPI(APIView):
    """A round's generation: progress per model (GET), launch or resume (POST)."""

    def _round(self, request: Request, round_id: int) -> Round:
        return get_object_or_404(rounds_for_user(request_user(request)), pk=round_id)

    @extend_schema(responses=GenerationSerializer)
    def get(self, request: Request, round_id: int) -> Response:
        return Response(_generation_data(self._round(request, round_id)))

    @extend_schema(
        request=GenerationLaunchInputSerializer,
        responses={202: GenerationSerializer, 503: DetailSerializer},
    )
    def post(self, request: Request, round_id: int) -> Response:
        round_ = self._round(request, round_id)
        params = GenerationLaunchInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            generation_launch(round_=round_, user=request_user(request), **params.validated_data)
        except GenerationInvalid as error:
            raise serializers.ValidationError({"detail": str(error)}) from None
        except QueueUnavailable as down:
            return Response({"detail": str(down)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(_generation_data(round_), status=status.HTTP_202_ACCEPTED)


class RoundGenerationCancelAPI(APIView):
    @extend_schema(request=None, responses=GenerationSerializer)
    def post(self, request: Request, round_id: int) -> Response:
        round_ = get_object_or_404(rounds_for_user(request_user(request)), pk=round_id)
        run = round_.generation_runs.first()
        if run is not None:
            generation_cancel(run=run)
        return Response(_generation_data(round_))


class LanguageModelSerializer(serializers.ModelSerializer):
    project = InProject(queryset=Project.objects.all(), via="")

    class Meta:
        model = LanguageModel
        fields = ["id", "project", "name", "backend", "config", "created_at"]

    def validate_project(self, project: Project) -> Project:
        if self.instance is not None and project != self.instance.project:
            raise serializers.ValidationError("A model cannot move to another project.")
        return project

    def validate_config(self, config: Any) -> dict[str, Any]:
        if not isinstance(config, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        return config

    def save(self, **kwargs: Any) -> LanguageModel:
        data = {**(self.validated_data or {}), **kwargs}
        instance = self.instance
        project = data.get("project", instance.project if instance else None)
        if project is None:
            # Only a partial create could get here: the field is required otherwise.
            raise serializers.ValidationError({"project": ["This field is required."]})
        try:
            self.instance = model_register(
                project=project,
                name=data.get("name", instance.name if instance else ""),
                backend=data.get("backend", instance.backend if instance else ""),
                config=data.get("config", instance.config if instance else {}),
                instance=instance,
            )
        except GenerationInvalid as invalid:
            raise serializers.ValidationError({"config": [str(invalid)]}) from None
        return self.instance


@extend_schema_view(list=extend_schema(parameters=[ProjectFilter]))
class LanguageModelViewSet(viewsets.ModelViewSet):
    """Candidates and baselines, each checked by its backend before it is stored."""

    lookup_value_converter = "int"
    serializer_class = LanguageModelSerializer

    def get_queryset(self) -> QuerySet[LanguageModel]:
        return visible_to(request_user(self.request), LanguageModel.objects.all()).order_by("id")

    def filter_queryset(
        self, queryset: QuerySet[LanguageModel, Any]
    ) -> QuerySet[LanguageModel, Any]:
        return filtered(queryset, self.request, ProjectFilter)

    @extend_schema(responses={204: None, 409: DetailSerializer})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().destroy(request, *args, **kwargs)

    @transaction.atomic
    def perform_destroy(self, instance: LanguageModel) -> None:
        try:
            instance.delete()
        except ProtectedError:
            raise Conflict(
                f"{instance.name!r} is compared in a round; delete the round first."
            ) from None
