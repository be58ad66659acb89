"""Responses of models to prompts, and response imports."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors
from annotation.api.common import (
    ImportErrorSerializer,
    ImportSummarySerializer,
    InProject,
    filtered,
    import_in_background,
    import_params_refused,
    import_refused,
    import_upload_size_check,
    request_user,
)
from annotation.api.import_jobs import BACKGROUND_IMPORT, ImportJobSerializer
from annotation.import_jobs.services import import_job_create
from annotation.imports.records import ImportFailed, ImportSummary
from annotation.imports.responses import responses_import
from annotation.models import ImportJob, Project
from annotation.models import Response as ModelResponse


class ResponseSerializer(serializers.ModelSerializer):
    prompt_external_id = serializers.CharField(source="prompt.external_id", read_only=True)
    prompt_set = serializers.IntegerField(source="prompt.prompt_set_id", read_only=True)
    model_name = serializers.CharField(source="model.name", read_only=True)

    class Meta:
        model = ModelResponse
        fields = [
            "id",
            "prompt",
            "prompt_external_id",
            "prompt_set",
            "model",
            "model_name",
            "text",
            "generation",
            "settings_key",
            "created_at",
        ]


class ResponseFilter(serializers.Serializer):
    model = serializers.IntegerField(required=False, source="model_id")
    prompt_set = serializers.IntegerField(required=False, source="prompt__prompt_set_id")


class ResponseImportSerializer(serializers.Serializer):
    project = InProject(queryset=Project.objects.all(), via="")
    prompt_set = serializers.CharField(max_length=200, help_text="Name of an existing prompt set.")
    model = serializers.CharField(
        max_length=200,
        required=False,
        help_text="The model that wrote every response; otherwise each line names its model.",
    )
    file = serializers.FileField()


class ResponseImportResultSerializer(ImportSummarySerializer):
    models_created = serializers.ListField(child=serializers.CharField())


@extend_schema_view(list=extend_schema(parameters=[ResponseFilter]))
class ResponseViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_converter = "int"
    serializer_class = ResponseSerializer

    def get_queryset(self) -> QuerySet[ModelResponse]:
        return (
            selectors.visible_to(
                request_user(self.request), ModelResponse.objects.all(), "model__project"
            )
            .select_related("prompt", "model")
            .order_by("id")
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return filtered(queryset, self.request, ResponseFilter)

    @extend_schema(
        responses={
            201: ResponseImportResultSerializer,
            202: OpenApiResponse(ImportJobSerializer, BACKGROUND_IMPORT),
            400: ImportErrorSerializer,
        }
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        serializer_class=ResponseImportSerializer,
        parser_classes=[MultiPartParser, FormParser],
    )
    def import_file(self, request: Request) -> Response:
        params = ResponseImportSerializer(data=request.data, context={"request": request})
        if not params.is_valid():
            return import_params_refused(params, request.data)
        data = params.validated_data
        import_upload_size_check(data["file"])
        if import_in_background(data["file"]):
            job = import_job_create(
                project=data["project"],
                kind=ImportJob.Kind.RESPONSES,
                upload=data["file"],
                set_name=data["prompt_set"],
                model_name=data.get("model") or "",
                user=request_user(request),
            )
            return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
        try:
            summary: ImportSummary = responses_import(
                project=data["project"],
                set_name=data["prompt_set"],
                raw=data["file"].read(),
                file=data["file"].name,
                model_name=data.get("model"),
            )
        except ImportFailed as error:
            return import_refused(error)
        return Response(
            {
                "created": summary.created,
                "skipped": summary.skipped,
                "models_created": summary.models_created,
            },
            status=status.HTTP_201_CREATED,
        )
