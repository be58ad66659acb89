"""Annotations of every annotator, crowd, author or judge, read-only."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from annotation import selectors
from annotation.api.common import (
    filtered,
    request_user,
)
from annotation.models import Annotation, Annotator


class AnnotationSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="item.round_id", read_only=True)
    prompt_external_id = serializers.CharField(source="item.prompt.external_id", read_only=True)
    baseline_name = serializers.CharField(source="item.baseline.name", read_only=True)
    annotator_name = serializers.CharField(source="annotator.name", read_only=True)
    annotator_kind = serializers.ChoiceField(
        source="annotator.kind", choices=Annotator.Kind.choices, read_only=True
    )

    class Meta:
        model = Annotation
        fields = [
            "id",
            "round",
            "item",
            "prompt_external_id",
            "baseline_name",
            "annotator_name",
            "annotator_kind",
            "choice",
            "shown_choice",
            "candidate_first",
            "seconds_spent",
            "created_at",
        ]


class AnnotationFilter(serializers.Serializer):
    round = serializers.IntegerField(required=False, source="item__round_id")


@extend_schema_view(list=extend_schema(parameters=[AnnotationFilter]))
class AnnotationViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_converter = "int"
    serializer_class = AnnotationSerializer

    def get_queryset(self) -> QuerySet[Annotation]:
        return (
            selectors.visible_to(
                request_user(self.request), Annotation.objects.all(), "item__round__project"
            )
            .select_related("item__prompt", "item__baseline", "annotator")
            .order_by("id")
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return filtered(queryset, self.request, AnnotationFilter)
