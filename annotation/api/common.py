"""What every resource of the researchers' API shares: project scoping, filters, errors.

Every object is reached through a project the requesting user may see (`selectors.visible_to`:
its members see it, superusers see every project), so another team's objects answer 404 and
their ids are refused as input. Crowd workers have no access.
"""

from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Model, QuerySet
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotAuthenticated, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors
from annotation.imports.records import ImportFailed
from annotation.models import Project
from evalplatform.upload_limits import too_large_message

M = TypeVar("M", bound=Model)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def import_upload_size_check(upload: UploadedFile) -> None:
    """Refuse an import file over IMPORT_MAX_BYTES (413); evalplatform.upload_limits refuses
    a body far above it before it is read."""
    if upload.size is not None and upload.size > settings.IMPORT_MAX_BYTES:
        raise PayloadTooLarge(too_large_message(settings.IMPORT_MAX_BYTES))


def import_in_background(upload: UploadedFile) -> bool:
    """Whether an import file is large enough to be imported by a background job (answered
    202 with the job) rather than while the client waits."""
    return upload.size is not None and upload.size > settings.IMPORT_API_SYNC_MAX_BYTES


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
    """Apply the query parameters that `filters` declares; each field's source is its lookup.
    A parameter given twice is refused: which of the two would count is anybody's guess."""
    repeated = {
        name: ["Give this parameter once."]
        for name in filters().fields.keys()  # noqa: SIM118 (the stubs iterate fields as Field)
        if len(request.query_params.getlist(name)) > 1
    }
    if repeated:
        raise ValidationError(repeated)
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


# A limit above max_limit is cut to it, but a huge one (beyond a 64-bit integer) is refused as
# malformed, and so is an offset beyond what PostgreSQL's OFFSET takes.
LARGEST_PAGE_PARAM = 2**62


class PageParams(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=LARGEST_PAGE_PARAM)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=LARGEST_PAGE_PARAM)


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset pages with a ceiling: at most max_limit rows a page (a larger limit is
    cut to it), and an offset the database can take (PostgreSQL's OFFSET is a 64-bit integer).

    A limit or offset that is not such a number answers 400 instead of being ignored.
    """

    max_limit = 1000

    def _param(self, request: Request, name: str) -> int | None:
        if len(request.query_params.getlist(name)) > 1:
            raise ValidationError({name: ["Give this parameter once."]})
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
            self.limit_query_param: {"minimum": 1, "maximum": LARGEST_PAGE_PARAM},
            self.offset_query_param: {"minimum": 0, "maximum": LARGEST_PAGE_PARAM},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = f"Rows per page; at most {self.max_limit} are returned."
        return parameters


def member_project(request: Request, name: str) -> Project:
    """The requesting user's project of that name (a body names it), or a 400 naming the field."""
    project = selectors.projects_for_user(request_user(request)).filter(name=name).first()
    if project is None:
        raise serializers.ValidationError({"project": "No such project of yours."})
    return project


def named_in_project(model: type[M], project: Project, name: str, field: str) -> M:
    """The project's object of that name (a body names it), or a 400 naming the field."""
    found = model._default_manager.filter(project=project, name=name).first()
    if found is None:
        raise serializers.ValidationError({field: f"No {field.replace('_', ' ')} named {name!r}."})
    return found
