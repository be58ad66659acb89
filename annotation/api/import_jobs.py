"""Background imports: the files the import endpoints queued instead of importing at once
(larger than IMPORT_API_SYNC_MAX_BYTES), and the upload page's jobs, with their progress."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from annotation import selectors
from annotation.api.common import ProjectFilter, filtered, request_user
from annotation.models import ImportJob

BACKGROUND_IMPORT = (
    "The file is larger than the API imports at once: it is queued as a background import "
    "job; follow its progress at /api/import-jobs/{id}/."
)


class ImportJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = [
            "id",
            "project",
            "kind",
            "original_name",
            "prompt_set_name",
            "model_name",
            "status",
            "processed",
            "total",
            "message",
            "created_at",
            "finished_at",
        ]


@extend_schema_view(list=extend_schema(parameters=[ProjectFilter]))
class ImportJobViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_converter = "int"
    serializer_class = ImportJobSerializer

    def get_queryset(self) -> QuerySet[ImportJob]:
        return selectors.visible_to(
            request_user(self.request), ImportJob.objects.all(), "project"
        ).order_by("-id")

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return filtered(queryset, self.request, ProjectFilter)
