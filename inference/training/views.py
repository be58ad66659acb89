"""Training pages: upload a training set, launch a run, watch it, cancel or resume it."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotation.http import ResearcherRequest
from annotation.selectors import projects_for_user
from inference.training.data import TrainingDataInvalid
from inference.training.forms import LaunchForm, UploadForm
from inference.training.models import TrainingRun
from inference.training.recipe import Recipe
from inference.training.selectors import (
    loss_curve,
    run_progress,
    training_runs_for_user,
    training_sets_for_user,
)
from inference.training.services import (
    TrainingRejected,
    training_run_cancel,
    training_run_launch,
    training_run_resume,
    training_set_upload,
)


@login_required
@require_http_methods(["GET", "POST"])
def training(request: ResearcherRequest) -> HttpResponse:
    """Runs with their progress, the training sets, and the forms to upload and launch."""
    projects = projects_for_user(request.user)
    posted = request.POST.get("action")
    upload = UploadForm(
        request.POST if posted == "upload" else None,
        request.FILES if posted == "upload" else None,
        projects=projects,
    )
    launch = LaunchForm(request.POST if posted == "launch" else None, projects=projects)
    if posted == "upload" and upload.is_valid():
        data = upload.cleaned_data
        try:
            training_set = training_set_upload(
                project=data["project"],
                name=data["name"],
                raw=data["file"].read(),
                file_name=data["file"].name,
                tokenizer=data["tokenizer"],
                user=request.user,
            )
        except (TrainingDataInvalid, TrainingRejected) as problem:
            upload.add_error(None, str(problem))
        else:
            count = training_set.stats["examples"]
            messages.success(request, f"Training set {training_set.name!r}: {count} examples.")
            return redirect("training")
    if posted == "launch" and launch.is_valid():
        data = launch.cleaned_data
        try:
            run = training_run_launch(
                project=data["project"],
                name=data["name"],
                training_set=data["training_set"],
                base_model=data["base_model"],
                dev_set=data["dev_set"],
                judge=data["judge"],
                recipe=data["recipe"],
                user=request.user,
            )
        except TrainingRejected as problem:
            launch.add_error(None, str(problem))
        else:
            messages.success(request, f"Training run {run.name!r} is queued.")
            return redirect("training-run", run_id=run.pk)
    runs = [(run, run_progress(run)) for run in training_runs_for_user(request.user)[:50]]
    context = {
        "runs": runs,
        "active": any(run.is_active for run, _ in runs),
        "training_sets": training_sets_for_user(request.user)[:50],
        "upload": upload,
        "launch": launch,
        "defaults": json.dumps(Recipe().as_dict(), indent=1),
    }
    template = "inference/_training_runs.html" if request.htmx else "inference/training.html"
    return render(request, template, context)


@login_required
@require_http_methods(["GET"])
def training_run(request: ResearcherRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(training_runs_for_user(request.user), pk=run_id)
    context = {
        "run": run,
        "progress": run_progress(run),
        "curve": loss_curve(run),
        "scores": run.scores.order_by("epoch"),
        "resumable": run.status in (TrainingRun.Status.CANCELLED, TrainingRun.Status.FAILED),
    }
    template = "inference/_training_run.html" if request.htmx else "inference/training_run.html"
    return render(request, template, context)


@login_required
@require_POST
def training_run_cancel_view(request: ResearcherRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(training_runs_for_user(request.user), pk=run_id)
    training_run_cancel(run=run)
    messages.success(request, "Cancelled: it stops at the next step with a checkpoint.")
    return redirect("training-run", run_id=run.pk)


@login_required
@require_POST
def training_run_resume_view(request: ResearcherRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(training_runs_for_user(request.user), pk=run_id)
    try:
        training_run_resume(run=run)
    except TrainingRejected as problem:
        messages.error(request, str(problem))
    else:
        messages.success(request, "Queued again: it continues from its last checkpoint.")
    return redirect("training-run", run_id=run.pk)
