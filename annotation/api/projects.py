"""Projects: the user's own, and new ones with the user as their first member."""

from django.db import transaction
from django.db.models import QuerySet
from rest_framework import mixins, serializers, viewsets
from rest_framework.serializers import BaseSerializer

from annotation import selectors
from annotation.api.common import request_user
from annotation.models import Project


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "created_at"]


class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    lookup_value_converter = "int"
    serializer_class = ProjectSerializer

    def get_queryset(self) -> QuerySet[Project]:
        return selectors.projects_for_user(request_user(self.request)).order_by("name")

    @transaction.atomic
    def perform_create(self, serializer: BaseSerializer[Project]) -> None:
        project = serializer.save()
        project.members.add(request_user(self.request))
