"""Absolute ratings of every annotator (people, judges, imported MT-Bench grades), read-only."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from annotation import selectors
from annotation.api.common import filtered, request_user
from annotation.models import Annotator, Rating


class RatingSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="annotator.project_id", read_only=True)
    model_name = serializers.CharField(source="model.name", read_only=True)
    annotator_name = serializers.CharField(source="annotator.name", read_only=True)
    annotator_kind = serializers.ChoiceField(
        source="annotator.kind", choices=Annotator.Kind.choices, read_only=True
    )

    class Meta:
        model = Rating
        fields = [
            "id",
            "project",
            "model",
            "model_name",
            "response",
            "question",
            "turn",
            "scale",
            "label",
            "score",
            "annotator_name",
            "annotator_kind",
            "created_at",
        ]


class RatingFilter(serializers.Serializer):
    project = serializers.IntegerField(required=False, source="annotator__project_id")
    model = serializers.IntegerField(required=False, source="model_id")
    scale = serializers.ChoiceField(required=False, choices=Rating.Scale.choices)


@extend_schema_view(list=extend_schema(parameters=[RatingFilter]))
class RatingViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_converter = "int"
    serializer_class = RatingSerializer

    def get_queryset(self) -> QuerySet[Rating]:
        return (
            selectors.visible_to(
                request_user(self.request), Rating.objects.all(), "annotator__project"
            )
            .select_related("model", "annotator")
            .order_by("id")
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return filtered(queryset, self.request, RatingFilter)
