"""What every resource of the researchers' API shares: project scoping, filters, errors.

Every object is reached through a project the requesting user may see (`selectors.visible_to`:
its members see it, superusers see every project), so another team's objects answer 404 and
their ids are refused as input. Crowd workers have no access.
"""

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotAuthenticated, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors
from annotation.imports.records import ImportFailed


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def request_user(request: Request) -> User:
    """The signed-in user making an API request.

    Every API view requires one (IsAuthenticated is the default permission, checked before the
    view runs), so an anonymous user does not get this far; it is refused all the same.
    """
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def import_refused(error: ImportFailed) -> Response:
    return Response(
        {
            "detail": str(error),
            "file": error.file,
            "line": error.line,
            "field": error.field or None,
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


class InProject(serializers.PrimaryKeyRelatedField):
    """The id of an object in a project the requesting user may see; `via` leads from the
    object to its project ("" for a project itself)."""

    def __init__(self, *, queryset: QuerySet, via: str = "project", **kwargs: Any) -> None:
        self.via = via
        super().__init__(queryset=queryset, **kwargs)

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        assert queryset is not None  # __init__ requires one.
        return selectors.visible_to(self.context["request"].user, queryset, self.via)


def filtered(
    queryset: QuerySet, request: Request, filters: type[serializers.Serializer]
) -> QuerySet:
    """Apply the query parameters that `filters` declares; each field's source is its lookup."""
    params = filters(data=request.query_params)
    params.is_valid(raise_exception=True)
    return queryset.filter(**params.validated_data)


class ProjectFilter(serializers.Serializer):
    project = serializers.IntegerField(required=False, source="project_id")


class ImportSummarySerializer(serializers.Serializer):
    created = serializers.IntegerField()
    skipped = serializers.IntegerField()


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ImportErrorSerializer(DetailSerializer):
    file = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_null=True)


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset pages with a ceiling: at most MAX_LIMIT rows a page, and an offset the
    database can take (PostgreSQL's OFFSET is a 64-bit integer)."""

    max_limit = 1000
    max_offset = 2**62

    def get_offset(self, request: Request) -> int:
        offset = super().get_offset(request)
        if offset > self.max_offset:
            raise ValidationError({"offset": f"at most {self.max_offset}"})
        return offset
