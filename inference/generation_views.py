"""Generation pages and API: a round's generation progress, launch, cancel; registering models."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import LanguageModel, Round
from annotation.selectors import projects_for_user, rounds_for_user
from inference.backends import BACKENDS
from inference.forms import parse_json_object
from inference.generation import (
    GenerationInvalid,
    generation_cancel,
    generation_launch,
    generation_progress,
    model_register,
)
from inference.models import GenerationRun

# ---------------------------------------------------------------- pages


class LaunchForm(forms.Form):
    """Overrides of the paper's sampling for this round; empty fields keep each model's."""

    temperature = forms.FloatField(required=False, min_value=0)
    top_p = forms.FloatField(required=False, min_value=0.01, max_value=1)
    repetition_penalty = forms.FloatField(required=False, min_value=0.01)
    max_tokens = forms.IntegerField(required=False, min_value=1)
    seed = forms.IntegerField(required=False, help_text="Default: the round's seed.")

    def sampling(self) -> dict:
        keys = ("temperature", "top_p", "repetition_penalty", "max_tokens")
        return {k: self.cleaned_data[k] for k in keys if self.cleaned_data[k] is not None}


def _generation_context(round_: Round) -> dict:
    return {
        "round": round_,
        "run": round_.generation_runs.first(),
        "progress": generation_progress(round_),
    }


@login_required
@require_http_methods(["GET", "POST"])
def round_generation(request: HttpRequest, round_id: int) -> HttpResponse:
    round_ = get_object_or_404(rounds_for_user(request.user), pk=round_id)
    form = LaunchForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            run = generation_launch(
                round_=round_,
                sampling=form.sampling(),
                seed=form.cleaned_data["seed"],
                user=request.user,
            )
        except GenerationInvalid as invalid:
            form.add_error(None, str(invalid))
        else:
            messages.success(request, f"Generation {run.pk} is {run.status}.")
            return redirect("generation-round", round_id=round_.pk)
    context = {**_generation_context(round_), "form": form}
    template = "inference/_generation.html" if request.htmx else "inference/round_generation.html"
    return render(request, template, context)


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(
        GenerationRun.objects.filter(round__in=rounds_for_user(request.user)), pk=run_id
    )
    generation_cancel(run=run)
    messages.success(request, "Generation cancelled; launch again to resume it.")
    return redirect("generation-round", round_id=run.round_id)


class RegisterModelForm(forms.Form):
    project = forms.ModelChoiceField(queryset=None)
    name = forms.CharField(max_length=200)
    backend = forms.ChoiceField(choices=[(name, name) for name in sorted(BACKENDS)])
    config = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text='JSON, e.g. {"model": "/models/lima-65b", "tensor_parallel_size": 4} or '
        '{"model": "gpt-4", "api_key_env": "OPENAI_API_KEY"}. Never a key itself.',
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects

    def clean_config(self) -> dict:
        return parse_json_object(self.cleaned_data["config"])


@login_required
@require_http_methods(["GET", "POST"])
def model_new(request: HttpRequest) -> HttpResponse:
    form = RegisterModelForm(request.POST or None, projects=projects_for_user(request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            model = model_register(
                project=data["project"],
                name=data["name"],
                backend=data["backend"],
                config=data["config"],
            )
        except GenerationInvalid as invalid:
            form.add_error(None, str(invalid))
        else:
            messages.success(request, f"Model {model.name!r} registered ({model.backend}).")
            return redirect("generation-model-new")
    models = LanguageModel.objects.filter(
        project__in=projects_for_user(request.user)
    ).select_related("project")
    return render(request, "inference/model_new.html", {"form": form, "models": models})


# ---------------------------------------------------------------- API


class LaunchInputSerializer(serializers.Serializer):
    sampling = serializers.DictField(
        required=False,
        help_text="Overrides of the paper's sampling: temperature, top_p, repetition_penalty, "
        "max_tokens, stop.",
    )
    seed = serializers.IntegerField(required=False, help_text="Default: the round's seed.")


class ModelProgressSerializer(serializers.Serializer):
    model = serializers.CharField()
    backend = serializers.CharField()
    queue = serializers.CharField()
    status = serializers.CharField()
    needed = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    responses_per_second = serializers.FloatField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    errors = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))


class GenerationSerializer(serializers.Serializer):
    run = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(allow_blank=True)
    sampling = serializers.DictField()
    seed = serializers.IntegerField(allow_null=True)
    models = ModelProgressSerializer(many=True)


def _generation_data(round_: Round) -> dict:
    run = round_.generation_runs.first()
    return GenerationSerializer(
        {
            "run": run.pk if run else None,
            "status": run.status if run else "",
            "sampling": run.sampling if run else {},
            "seed": run.seed if run else None,
            "models": generation_progress(round_),
        }
    ).data


class RoundGenerationAPI(APIView):
    """A round's generation: progress per model (GET), launch or resume (POST)."""

    def _round(self, request: Request, round_id: int) -> Round:
        return get_object_or_404(rounds_for_user(request.user), pk=round_id)

    @extend_schema(responses=GenerationSerializer)
    def get(self, request: Request, round_id: int) -> Response:
        return Response(_generation_data(self._round(request, round_id)))

    @extend_schema(request=LaunchInputSerializer, responses={202: GenerationSerializer})
    def post(self, request: Request, round_id: int) -> Response:
        round_ = self._round(request, round_id)
        params = LaunchInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            generation_launch(round_=round_, user=request.user, **params.validated_data)
        except GenerationInvalid as error:
            raise serializers.ValidationError({"detail": str(error)}) from None
        return Response(_generation_data(round_), status=status.HTTP_202_ACCEPTED)


class RoundGenerationCancelAPI(APIView):
    @extend_schema(request=None, responses=GenerationSerializer)
    def post(self, request: Request, round_id: int) -> Response:
        round_ = get_object_or_404(rounds_for_user(request.user), pk=round_id)
        run = round_.generation_runs.first()
        if run is not None:
            generation_cancel(run=run)
        return Response(_generation_data(round_))
