"""Comparison rounds: create, list with progress, and the report summary (from the report's
stored build, as the report page)."""

from collections.abc import Sequence
from typing import cast

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.serializer_helpers import ReturnList

from annotation import selectors
from annotation.api.common import (
    DetailSerializer,
    InProject,
    ProjectFilter,
    filtered,
)
from annotation.links import crowd_link
from annotation.models import (
    ROUND_SCALES,
    LanguageModel,
    Project,
    PromptSet,
    ReportBuild,
    Round,
)
from annotation.report_builds.files import report_build_summary
from annotation.report_builds.services import report_state
from annotation.services.rounds import RoundInvalid, round_create


class RoundInputSerializer(serializers.Serializer):
    project = InProject(queryset=Project.objects.all(), via="")
    prompt_set = InProject(queryset=PromptSet.objects.all(), via="project")
    candidate = InProject(queryset=LanguageModel.objects.all(), via="project")
    baselines = InProject(
        queryset=LanguageModel.objects.all(),
        via="project",
        many=True,
        required=False,
        allow_empty=True,
        help_text="At least one for a pairwise round; an absolute round rates the candidate's "
        "and these models' answers alike.",
    )
    kind = serializers.ChoiceField(
        choices=Round.Kind.choices,
        required=False,
        help_text="Default: absolute when a scale is given, else pairwise.",
    )
    scale = serializers.ChoiceField(
        choices=[(str(scale), scale.label) for scale in ROUND_SCALES],
        required=False,
        allow_blank=True,
        help_text="The scale of an absolute round (safety: sensitive prompt sets only).",
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    annotators_per_item = serializers.IntegerField(required=False, min_value=0)
    shared_items = serializers.IntegerField(required=False, min_value=0)
    items_per_worker = serializers.IntegerField(required=False, min_value=0)
    lease_seconds = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Seconds a crowd worker holds an item; default: the CROWD_LEASE_SECONDS setting.",
    )
    seed = serializers.IntegerField(required=False, min_value=-(2**63), max_value=2**63 - 1)
    completion_url = serializers.URLField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="Where a worker who finished is sent (e.g. Prolific's completion URL); "
        "{code} in it is replaced by the worker's own completion code.",
    )
    text_format = serializers.ChoiceField(
        choices=Round.TextFormat.choices,
        required=False,
        help_text="How annotators see prompts and answers; the judge always reads the raw text.",
    )
    max_active_workers = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text=Round._meta.get_field("max_active_workers").help_text,
    )

    def validate(self, attrs: dict) -> dict:
        if attrs.get("scale") and "kind" not in attrs:
            attrs["kind"] = Round.Kind.ABSOLUTE
        return attrs


class BaselineProgressSerializer(serializers.Serializer):
    baseline = serializers.CharField(
        help_text="The baseline's name; in an absolute round, the rated model's."
    )
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
    # A URL, or "" for none: a string in the schema, since "" is no URI.
    completion_url = serializers.CharField(
        read_only=True, help_text=Round._meta.get_field("completion_url").help_text
    )
    item_count = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    # A scale's name, or "" for a pairwise round: a string in the schema, as "" is in no enum.
    scale = serializers.CharField(
        read_only=True,
        help_text="An absolute round's scale (fail_pass_excellent, helpfulness_1_6, safety); "
        '"" for a pairwise round.',
    )

    class Meta:
        model = Round
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "scale",
            "prompt_set",
            "candidate",
            "baselines",
            "annotators_per_item",
            "shared_items",
            "items_per_worker",
            "lease_seconds",
            "max_active_workers",
            "text_format",
            "seed",
            "crowd_link",
            "completion_url",
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
    def get_progress(self, round_: Round) -> ReturnList:
        progress = self.context["progress"][round_.pk]
        return cast(ReturnList, BaselineProgressSerializer(progress, many=True).data)


# What a 202 tells the client to wait before asking again for a report being built.
REPORT_RETRY_AFTER_SECONDS = 5


class ReportBuildingSerializer(serializers.Serializer):
    detail = serializers.CharField()
    status = serializers.ChoiceField(choices=ReportBuild.Status.choices)
    steps_done = serializers.IntegerField()
    steps_total = serializers.IntegerField(help_text="0 until a worker has started the build.")
    annotations = serializers.IntegerField(help_text="The round's annotations being reported.")


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
        return filtered(queryset, self.request, ProjectFilter)

    def _output(self, rounds: Sequence[Round]) -> ReturnList:
        context = {**self.get_serializer_context(), "progress": selectors.rounds_progress(rounds)}
        return cast(ReturnList, RoundOutputSerializer(rounds, many=True, context=context).data)

    def list(self, request: Request) -> Response:
        rounds = self.paginate_queryset(self.filter_queryset(self.get_queryset())) or []
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
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, "The report summary."),
            202: OpenApiResponse(
                ReportBuildingSerializer,
                "A large round's report is being built on a worker: ask the same URL again "
                "after Retry-After seconds.",
            ),
            500: OpenApiResponse(DetailSerializer, "The report could not be built."),
        },
        parameters=[
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                required=True,
                response=[202],
                description="Seconds to wait before asking again.",
            )
        ],
        description=(
            "The round's report summary, as summary.json of `manage.py report`: {round, "
            "groups: {GROUP: {BASELINE: {wins, ties, losses, n, win_rate, ci95}}}, agreement: "
            "[{a, b, items, pairs, agreement, ci95}]}. Win rates and agreement in percent. "
            "Served from the report's stored build until the round's annotations change; a "
            "round above REPORT_INLINE_MAX_ANNOTATIONS is built on a worker meanwhile (202)."
        ),
    )
    @action(detail=True)
    def report(self, request: Request, pk: int) -> Response:
        state = report_state(round_=self.get_object(), include_excluded=False)
        if state.current and state.shown is not None:
            return Response(report_build_summary(state.shown))
        if state.failed is not None:
            return Response(
                {"detail": state.failed.message}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
            )
        # Else a build is under way (or, in a race, one of a state the round has since left).
        build = state.building or state.shown
        assert build is not None  # report_state's build is active, done or failed.
        body = {
            "detail": "The report is being built; ask again in a moment.",
            "status": build.status,
            "steps_done": build.steps_done,
            "steps_total": build.steps_total,
            "annotations": build.annotations,
        }
        return Response(
            ReportBuildingSerializer(body).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Retry-After": str(REPORT_RETRY_AFTER_SECONDS)},
        )
