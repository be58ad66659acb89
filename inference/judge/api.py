"""REST API for judges: a round's judges with progress, starting one, retrying failures.

The same services as the page and `manage.py judge_round`; rounds are reached through the
requesting user's projects, so another team's round answers 404.
"""

from typing import cast

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.serializer_helpers import ReturnList
from rest_framework.views import APIView

from annotation.api.common import DetailSerializer
from annotation.models import Round
from annotation.selectors import rounds_for_user
from inference.judge import selectors, services
from inference.judge.models import Judge, JudgeRun
from inference.judge.prompts import JudgeInvalid
from inference.runs import QueueUnavailable


class JudgeStartInputSerializer(serializers.Serializer):
    judge = serializers.CharField(max_length=200, help_text="The judge's name, e.g. gpt-4.")
    model = serializers.CharField(max_length=200, required=False, help_text="New judge: gpt-4.")
    base_url = serializers.CharField(max_length=500, required=False)
    api_key_env = serializers.CharField(
        max_length=100,
        required=False,
        help_text="The name of the environment variable holding the key on the workers.",
    )
    mode = serializers.ChoiceField(choices=Judge.Mode.choices, required=False)


class JudgeRunSerializer(serializers.Serializer):
    run = serializers.IntegerField(source="run.pk")
    judge = serializers.CharField(source="run.judge.name")
    model = serializers.CharField(source="run.judge.model")
    mode = serializers.CharField(source="run.judge.mode")
    template_version = serializers.CharField(source="run.judge.template_version")
    status = serializers.CharField(source="run.status")
    message = serializers.CharField(source="run.message")
    needed = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    cached = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=12, decimal_places=2)
    choices = serializers.DictField(child=serializers.IntegerField())
    position_consistency = serializers.FloatField(
        source="consistency_percent", allow_null=True, help_text="Percent of items."
    )


def _runs_data(round_: Round) -> ReturnList:
    progress = selectors.round_judge_progress(round_)
    return cast(ReturnList, JudgeRunSerializer(progress, many=True).data)


class RoundJudgesAPI(APIView):
    """A round's judges: progress (GET); attach and start a judge (POST)."""

    @extend_schema(responses=JudgeRunSerializer(many=True))
    def get(self, request: Request, round_id: int) -> Response:
        round_ = get_object_or_404(rounds_for_user(request.user), pk=round_id)
        return Response(_runs_data(round_))

    @extend_schema(
        request=JudgeStartInputSerializer,
        responses={202: JudgeRunSerializer(many=True), 503: DetailSerializer},
    )
    def post(self, request: Request, round_id: int) -> Response:
        round_ = get_object_or_404(rounds_for_user(request.user), pk=round_id)
        params = JudgeStartInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        try:
            judge, _ = services.judge_get_or_create(
                project=round_.project, name=data.pop("judge"), **data
            )
            services.judge_run_start(round_=round_, judge=judge)
        except JudgeInvalid as invalid:
            raise serializers.ValidationError({"detail": str(invalid)}) from None
        except QueueUnavailable as down:
            return Response({"detail": str(down)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(_runs_data(round_), status=status.HTTP_202_ACCEPTED)


class JudgeRunRetryAPI(APIView):
    """Put a run's failed calls back in line and queue the run."""

    @extend_schema(
        request=None, responses={202: JudgeRunSerializer(many=True), 503: DetailSerializer}
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(
            JudgeRun.objects.filter(round__in=rounds_for_user(request.user)), pk=run_id
        )
        try:
            services.judge_run_retry_failed(run=run)
        except QueueUnavailable as down:
            return Response({"detail": str(down)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(_runs_data(run.round), status=status.HTTP_202_ACCEPTED)
