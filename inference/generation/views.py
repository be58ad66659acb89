"""Generation pages: a round's generation progress, launch, cancel; registering models."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotation.http import ResearcherRequest
from annotation.models import LanguageModel, Round
from annotation.selectors import projects_for_user, rounds_for_user
from inference.generation.forms import LaunchForm, RegisterModelForm
from inference.generation.models import GenerationRun
from inference.generation.selectors import generation_progress
from inference.generation.services import (
    GenerationInvalid,
    generation_cancel,
    generation_launch,
    model_register,
)
from inference.runs import QueueUnavailable


def _generation_context(round_: Round) -> dict[str, Any]:
    return {
        "round": round_,
        "run": round_.generation_runs.first(),
        "progress": generation_progress(round_),
    }


@login_required
@require_http_methods(["GET", "POST"])
def round_generation(request: ResearcherRequest, round_id: int) -> HttpResponse:
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
        except QueueUnavailable as down:
            messages.error(request, str(down))
            return redirect("generation-round", round_id=round_.pk)
        else:
            messages.success(request, f"Generation {run.pk} is {run.status}.")
            return redirect("generation-round", round_id=round_.pk)
    context = {**_generation_context(round_), "form": form}
    template = "inference/_generation.html" if request.htmx else "inference/round_generation.html"
    return render(request, template, context)


@login_required
@require_POST
def run_cancel(request: ResearcherRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(
        GenerationRun.objects.filter(round__in=rounds_for_user(request.user)), pk=run_id
    )
    generation_cancel(run=run)
    messages.success(request, "Generation cancelled; launch again to resume it.")
    return redirect("generation-round", round_id=run.round_id)


@login_required
@require_http_methods(["GET", "POST"])
def model_new(request: ResearcherRequest) -> HttpResponse:
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
