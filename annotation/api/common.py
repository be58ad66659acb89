"""What every resource of the researchers' API shares: project scoping, filters, errors.

Every object is reached through a project the requesting user may see (`selectors.visible_to`:
its members see it, superusers see every project), so another team's objects answer 404 and
their ids are refused as input. Crowd workers have no access.
"""

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotAuthenticated
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


def import_params_refused(params: serializers.Serializer, data: Any) -> Response:
    """An import's form fields refused, in the body `import_refused` gives (ImportErrorSerializer):
    the first field named, every message in `detail`."""
    errors = params.errors
    upload = data.get("file")
    return Response(
        {
            "detail": "; ".join(
                f"{name}: {' '.join(str(message) for message in messages)}"
                for name, messages in errors.items()
            ),
            "file": str(getattr(upload, "name", "")),
            "line": None,
            "field": next(iter(errors), None),
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


class PageParams(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=2**62)


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset pages with a ceiling: at most MAX_LIMIT rows a page (a larger limit is
    cut to it), and an offset the database can take (PostgreSQL's OFFSET is a 64-bit integer).

    A limit or offset that is not such a number answers 400 instead of being ignored.
    """

    max_limit = 1000

    def _param(self, request: Request, name: str) -> int | None:
        params = PageParams(data={name: request.query_params[name]})
        params.is_valid(raise_exception=True)
        return params.validated_data[name]

    def get_limit(self, request: Request) -> int | None:
        if self.limit_query_param not in request.query_params:
            return self.default_limit
        limit = self._param(request, self.limit_query_param)
        return min(limit, self.max_limit) if limit is not None else None

    def get_offset(self, request: Request) -> int:
        if self.offset_query_param not in request.query_params:
            return 0
        return self._param(request, self.offset_query_param) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        bounds = {
            self.limit_query_param: {"minimum": 1},
            self.offset_query_param: {"minimum": 0, "maximum": 2**62},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
