"""The REST API for researchers: the same imports and services as the CLI, scoped to projects.

Every object is reached through a project that the requesting user is a member of, so another
team's objects answer 404 and their ids are refused as input. Crowd workers have no access.
"""

import re
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Count, ProtectedError, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors
from annotation.imports import ImportSummary, prompts_import, responses_import
from annotation.links import crowd_link
from annotation.models import (
    Annotation,
    Annotator,
    LanguageModel,
    Project,
    Prompt,
    PromptSet,
    Round,
)
from annotation.models import Response as ModelResponse
from annotation.records import ImportFailed
from annotation.reports.selectors import round_report
from annotation.services import RoundInvalid, round_create


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _import_refused(error: ImportFailed) -> Response:
    return Response(
        {
            "detail": str(error),
            "file": error.file,
            "line": error.line,
            "field": error.field or None,
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


class MemberOwned(serializers.PrimaryKeyRelatedField):
    """The id of an object in one of the requesting user's projects; `path` leads to members."""

    def __init__(self, *, path: str, **kwargs: Any):
        self.path = path
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().filter(**{self.path: self.context["request"].user})


def _filtered(
    queryset: QuerySet, request: Request, filters: type[serializers.Serializer]
) -> QuerySet:
    """Apply the query parameters that `filters` declares; each field's source is its lookup."""
    params = filters(data=request.query_params)
    params.is_valid(raise_exception=True)
    return queryset.filter(**params.validated_data)


class ProjectFilter(serializers.Serializer):
    project = serializers.IntegerField(required=False, source="project_id")


# ---------------------------------------------------------------- projects


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
        return selectors.projects_for_user(self.request.user).order_by("name")

    @transaction.atomic
    def perform_create(self, serializer: ProjectSerializer) -> None:
        project = serializer.save()
        project.members.add(self.request.user)


# ---------------------------------------------------------------- prompt sets


class PromptSetSerializer(serializers.ModelSerializer):
    prompt_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = PromptSet
        fields = ["id", "project", "name", "prompt_count", "created_at"]


class PromptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "external_id", "position", "text", "extra"]


class PromptImportSerializer(serializers.Serializer):
    project = MemberOwned(queryset=Project.objects.all(), path="members")
    name = serializers.CharField(max_length=200, help_text="The prompt set, created if new.")
    file = serializers.FileField(help_text="JSON array or JSON Lines (LIMA or Alpaca style).")


class ImportSummarySerializer(serializers.Serializer):
    created = serializers.IntegerField()
    skipped = serializers.IntegerField()


class PromptImportResultSerializer(ImportSummarySerializer):
    prompt_set = serializers.IntegerField()


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ImportErrorSerializer(DetailSerializer):
    file = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_null=True)


@extend_schema_view(list=extend_schema(parameters=[ProjectFilter]))
class PromptSetViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_converter = "int"
    serializer_class = PromptSetSerializer

    def get_queryset(self) -> QuerySet[PromptSet]:
        return (
            PromptSet.objects.filter(project__members=self.request.user)
            .annotate(prompt_count=Count("prompts"))
            .order_by("id")
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return _filtered(queryset, self.request, ProjectFilter)

    @extend_schema(responses=PromptSerializer(many=True))
    @action(detail=True, serializer_class=PromptSerializer)
    def prompts(self, request: Request, pk: int) -> Response:
        prompt_set = self.get_object()
        page = self.paginate_queryset(prompt_set.prompts.order_by("position"))
        return self.get_paginated_response(PromptSerializer(page, many=True).data)

    @extend_schema(
        responses={201: PromptImportResultSerializer, 400: ImportErrorSerializer},
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
        params.is_valid(raise_exception=True)
        project, name, file = (params.validated_data[k] for k in ("project", "name", "file"))
        try:
            summary = prompts_import(
                project=project, set_name=name, raw=file.read(), file=file.name
            )
        except ImportFailed as error:
            return _import_refused(error)
        prompt_set = PromptSet.objects.get(project=project, name=name)
        return Response(
            {"prompt_set": prompt_set.pk, "created": summary.created, "skipped": summary.skipped},
            status=status.HTTP_201_CREATED,
        )


# ---------------------------------------------------------------- responses


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
    project = MemberOwned(queryset=Project.objects.all(), path="members")
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
            ModelResponse.objects.filter(model__project__members=self.request.user)
            .select_related("prompt", "model")
            .order_by("id")
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return _filtered(queryset, self.request, ResponseFilter)

    @extend_schema(responses={201: ResponseImportResultSerializer, 400: ImportErrorSerializer})
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        serializer_class=ResponseImportSerializer,
        parser_classes=[MultiPartParser, FormParser],
    )
    def import_file(self, request: Request) -> Response:
        params = ResponseImportSerializer(data=request.data, context={"request": request})
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            summary: ImportSummary = responses_import(
                project=data["project"],
                set_name=data["prompt_set"],
                raw=data["file"].read(),
                file=data["file"].name,
                model_name=data.get("model"),
            )
        except ImportFailed as error:
            return _import_refused(error)
        return Response(
            {
                "created": summary.created,
                "skipped": summary.skipped,
                "models_created": summary.models_created,
            },
            status=status.HTTP_201_CREATED,
        )


# ---------------------------------------------------------------- models (candidates, baselines)

# Whole words, so that `max_tokens`, `tokenizer` or `top_k` are not mistaken for secrets.
_SECRET_WORDS = {"key", "token"}
_SECRET_PARTS = ("apikey", "password", "passwd", "secret")
_ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _looks_secret(key: str, value: Any) -> bool:
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
    words = [word for word in re.split(r"[^a-z0-9]+", snake) if word]
    if words[-1:] == ["env"] and isinstance(value, str) and _ENV_VAR_NAME.match(value):
        return False  # `api_key_env: "OPENAI_API_KEY"` names where the secret is read from.
    compact = "".join(words)
    return bool(_SECRET_WORDS.intersection(words)) or any(p in compact for p in _SECRET_PARTS)


def secret_config_keys(config: Any, prefix: str = "") -> list[str]:
    """The config's keys, at any depth, that look like they hold a secret."""
    if isinstance(config, list):
        return [
            found
            for index, value in enumerate(config)
            for found in secret_config_keys(value, f"{prefix}{index}.")
        ]
    if not isinstance(config, dict):
        return []
    found = []
    for key, value in config.items():
        if _looks_secret(str(key), value):
            found.append(f"{prefix}{key}")
        found.extend(secret_config_keys(value, f"{prefix}{key}."))
    return found


class LanguageModelSerializer(serializers.ModelSerializer):
    project = MemberOwned(queryset=Project.objects.all(), path="members")

    class Meta:
        model = LanguageModel
        fields = ["id", "project", "name", "backend", "config", "created_at"]

    def validate_project(self, project: Project) -> Project:
        if self.instance is not None and project != self.instance.project:
            raise serializers.ValidationError("A model cannot move to another project.")
        return project

    def validate_config(self, config: Any) -> dict:
        if not isinstance(config, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        secrets = secret_config_keys(config)
        if secrets:
            raise serializers.ValidationError(
                f"The config must not hold secrets ({', '.join(secrets)}): put the secret in an "
                "environment variable and give its name instead, e.g. "
                '"api_key_env": "OPENAI_API_KEY".'
            )
        return config


@extend_schema_view(list=extend_schema(parameters=[ProjectFilter]))
class LanguageModelViewSet(viewsets.ModelViewSet):
    lookup_value_converter = "int"
    serializer_class = LanguageModelSerializer

    def get_queryset(self) -> QuerySet[LanguageModel]:
        return LanguageModel.objects.filter(project__members=self.request.user).order_by("id")

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return _filtered(queryset, self.request, ProjectFilter)

    @extend_schema(responses={204: None, 409: DetailSerializer})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance: LanguageModel) -> None:
        try:
            instance.delete()
        except ProtectedError:
            raise Conflict(
                f"{instance.name!r} is compared in a round; delete the round first."
            ) from None


# ---------------------------------------------------------------- rounds


class RoundInputSerializer(serializers.Serializer):
    project = MemberOwned(queryset=Project.objects.all(), path="members")
    prompt_set = MemberOwned(queryset=PromptSet.objects.all(), path="project__members")
    candidate = MemberOwned(queryset=LanguageModel.objects.all(), path="project__members")
    baselines = MemberOwned(
        queryset=LanguageModel.objects.all(), path="project__members", many=True
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    annotators_per_item = serializers.IntegerField(required=False, min_value=0)
    shared_items = serializers.IntegerField(required=False, min_value=0)
    items_per_worker = serializers.IntegerField(required=False, min_value=0)
    lease_seconds = serializers.IntegerField(required=False, min_value=0)
    seed = serializers.IntegerField(required=False, min_value=-(2**63), max_value=2**63 - 1)


class BaselineProgressSerializer(serializers.Serializer):
    baseline = serializers.CharField(help_text="The baseline's name.")
    items = serializers.IntegerField()
    annotations_collected = serializers.IntegerField(
        source="collected",
        help_text="Crowd annotations, counting at most annotators_per_item per item.",
    )
    annotations_needed = serializers.IntegerField(source="needed")


class RoundOutputSerializer(serializers.ModelSerializer):
    """A round with its crowd link and progress; `progress` in the context maps round ids
    to selectors.rounds_progress entries, read for a whole page at once."""

    crowd_link = serializers.SerializerMethodField()
    item_count = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Round
        fields = [
            "id",
            "project",
            "name",
            "prompt_set",
            "candidate",
            "baselines",
            "annotators_per_item",
            "shared_items",
            "items_per_worker",
            "lease_seconds",
            "seed",
            "crowd_link",
            "completion_code",
            "item_count",
            "progress",
            "created_at",
        ]
        read_only_fields = fields

    def get_crowd_link(self, round_: Round) -> str:
        return crowd_link(round_)

    def get_item_count(self, round_: Round) -> int:
        return sum(entry.items for entry in self.context["progress"][round_.pk])

    @extend_schema_field(BaselineProgressSerializer(many=True))
    def get_progress(self, round_: Round) -> list[dict]:
        return BaselineProgressSerializer(self.context["progress"][round_.pk], many=True).data


@extend_schema_view(
    list=extend_schema(parameters=[ProjectFilter]),
    create=extend_schema(request=RoundInputSerializer, responses={201: RoundOutputSerializer}),
)
class RoundViewSet(viewsets.GenericViewSet):
    lookup_value_converter = "int"
    serializer_class = RoundOutputSerializer

    def get_queryset(self) -> QuerySet[Round]:
        return selectors.rounds_for_user(self.request.user).order_by("-created_at", "-id")

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return _filtered(queryset, self.request, ProjectFilter)

    def _output(self, rounds: Sequence[Round]) -> list[dict]:
        context = {**self.get_serializer_context(), "progress": selectors.rounds_progress(rounds)}
        return RoundOutputSerializer(rounds, many=True, context=context).data

    def list(self, request: Request) -> Response:
        rounds = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._output(rounds))

    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(self._output([self.get_object()])[0])

    def create(self, request: Request) -> Response:
        params = RoundInputSerializer(data=request.data, context={"request": request})
        params.is_valid(raise_exception=True)
        try:
            round_ = round_create(**params.validated_data)
        except RoundInvalid as error:
            raise serializers.ValidationError({"detail": str(error)}) from None
        round_ = self.get_queryset().get(pk=round_.pk)
        return Response(self._output([round_])[0], status=status.HTTP_201_CREATED)

    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        description=(
            "The round's report summary, as summary.json of `manage.py report`: {round, "
            "groups: {GROUP: {BASELINE: {wins, ties, losses, n, win_rate, ci95}}}, agreement: "
            "[{a, b, items, pairs, agreement, ci95}]}. Win rates and agreement in percent."
        ),
    )
    @action(detail=True)
    def report(self, request: Request, pk: int) -> Response:
        return Response(round_report(self.get_object()).summary())


# ---------------------------------------------------------------- annotations


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
            Annotation.objects.filter(item__round__project__members=self.request.user)
            .select_related("item__prompt", "item__baseline", "annotator")
            .order_by("id")
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return _filtered(queryset, self.request, AnnotationFilter)
