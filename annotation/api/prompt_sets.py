"""Prompt sets, their prompts, and prompt imports."""

from django.db.models import Count, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors
from annotation.api.common import (
    ImportErrorSerializer,
    ImportSummarySerializer,
    InProject,
    ProjectFilter,
    filtered,
    import_in_background,
    import_params_refused,
    import_refused,
    import_upload_size_check,
    request_user,
)
from annotation.api.import_jobs import BACKGROUND_IMPORT, ImportJobSerializer
from annotation.import_jobs.services import import_job_create
from annotation.imports.prompts import prompts_import
from annotation.imports.records import ImportFailed
from annotation.models import ImportJob, Project, Prompt, PromptSet


class PromptSetSerializer(serializers.ModelSerializer):
    prompt_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = PromptSet
        fields = ["id", "project", "name", "sensitive", "prompt_count", "created_at"]
        # A set is made by importing prompts into it; only its `sensitive` mark is changed here.
        read_only_fields = ["project", "name"]


class PromptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "external_id", "position", "text", "extra"]


class PromptImportSerializer(serializers.Serializer):
    project = InProject(queryset=Project.objects.all(), via="")
    name = serializers.CharField(max_length=200, help_text="The prompt set, created if new.")
    file = serializers.FileField(help_text="JSON array or JSON Lines (LIMA or Alpaca style).")


class PromptImportResultSerializer(ImportSummarySerializer):
    prompt_set = serializers.IntegerField()


@extend_schema_view(list=extend_schema(parameters=[ProjectFilter]))
class PromptSetViewSet(mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    lookup_value_converter = "int"
    serializer_class = PromptSetSerializer
    # PATCH sets `sensitive`; PUT would have to repeat the read-only fields.
    http_method_names = ["get", "patch", "post", "head", "options"]

    def get_queryset(self) -> QuerySet[PromptSet]:
        return (
            selectors.visible_to(request_user(self.request), PromptSet.objects.all(), "project")
            .annotate(prompt_count=Count("prompts"))
            .order_by("id")
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return filtered(queryset, self.request, ProjectFilter)

    @extend_schema(responses=PromptSerializer(many=True))
    @action(detail=True, serializer_class=PromptSerializer)
    def prompts(self, request: Request, pk: int) -> Response:
        prompt_set = self.get_object()
        page = self.paginate_queryset(prompt_set.prompts.order_by("position"))
        return self.get_paginated_response(PromptSerializer(page, many=True).data)

    @extend_schema(
        responses={
            201: PromptImportResultSerializer,
            202: OpenApiResponse(ImportJobSerializer, BACKGROUND_IMPORT),
            400: ImportErrorSerializer,
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        serializer_class=PromptImportSerializer,
        parser_classes=[MultiPartParser, FormParser],
    )
    def import_file(self, request: Request) -> Response:
        params = PromptImportSerializer(data=request.data, context={"request": request})
        if not params.is_valid():
            return import_params_refused(params, request.data)
        project, name, file = (params.validated_data[k] for k in ("project", "name", "file"))
        import_upload_size_check(file)
        if import_in_background(file):
            job = import_job_create(
                project=project,
                kind=ImportJob.Kind.PROMPTS,
                upload=file,
                set_name=name,
                model_name="",
                user=request_user(request),
            )
            return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
        try:
            summary = prompts_import(
                project=project, set_name=name, raw=file.read(), file=file.name
            )
        except ImportFailed as error:
            return import_refused(error)
        prompt_set = PromptSet.objects.get(project=project, name=name)
        return Response(
            {"prompt_set": prompt_set.pk, "created": summary.created, "skipped": summary.skipped},
            status=status.HTTP_201_CREATED,
        )
