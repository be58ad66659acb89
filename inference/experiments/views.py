"""Experiment pages: create one, watch its candidates train and get scored, see the figure."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.http import ResearcherRequest
from annotation.reports.charts import figure_bytes
from annotation.selectors import projects_for_user
from inference.experiments.figures import experiment_figure
from inference.experiments.forms import ExperimentForm
from inference.experiments.models import Experiment
from inference.experiments.selectors import experiment_results, experiments_for_user, results_csv
from inference.experiments.services import (
    ExperimentRejected,
    experiment_cancel,
    experiment_create,
    experiment_resume,
)
from inference.runs import QueueUnavailable


@login_required
@require_http_methods(["GET", "POST"])
def experiments(request: ResearcherRequest) -> HttpResponse:
    form = ExperimentForm(request.POST or None, projects=projects_for_user(request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            experiment = experiment_create(
                project=data["project"],
                name=data["name"],
                base_model=data["base_model"],
                dev_set=data["dev_set"],
                judge=data["judge"],
                training_sets=list(data["training_sets"]),
                labels=data["labels"],
                axis=data["axis"],
                samples_per_prompt=data["samples_per_prompt"],
                seed=data["seed"],
                recipe=data["recipe"],
                sampling=data["sampling"],
                user=request.user,
            )
        except ExperimentRejected as problem:
            form.add_error(None, str(problem))
        except QueueUnavailable as problem:
            messages.error(request, str(problem))
            return redirect("experiments")
        else:
            messages.success(request, f"Experiment {experiment.name!r} is queued.")
            return redirect("experiment", experiment_id=experiment.pk)
    context = {"experiments": experiments_for_user(request.user)[:50], "form": form}
    return render(request, "inference/experiments.html", context)


def _mine(request: ResearcherRequest, experiment_id: int) -> Experiment:
    return get_object_or_404(experiments_for_user(request.user), pk=experiment_id)


@login_required
@require_GET
def experiment(request: ResearcherRequest, experiment_id: int) -> HttpResponse:
    """Its arms' training, answers and scores; refreshes itself while it runs."""
    found = _mine(request, experiment_id)
    results = experiment_results(found)
    context = {
        "experiment": found,
        "results": results,
        "has_scores": any(result.mean is not None for result in results),
        "resumable": found.status in (Experiment.Status.CANCELLED, Experiment.Status.FAILED),
    }
    template = "inference/_experiment.html" if request.htmx else "inference/experiment.html"
    return render(request, template, context)


@login_required
@require_GET
def experiment_figure_png(request: ResearcherRequest, experiment_id: int) -> HttpResponse:
    found = _mine(request, experiment_id)
    figure = experiment_figure(found, experiment_results(found))
    return HttpResponse(figure_bytes(figure, "png"), content_type="image/png")


@login_required
@require_GET
def experiment_csv(request: ResearcherRequest, experiment_id: int) -> HttpResponse:
    found = _mine(request, experiment_id)
    response = HttpResponse(
        results_csv(experiment_results(found)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="experiment-{found.pk}.csv"'
    return response


@login_required
@require_POST
def experiment_cancel_view(request: ResearcherRequest, experiment_id: int) -> HttpResponse:
    experiment_cancel(experiment=_mine(request, experiment_id))
    messages.success(request, "Cancelled: it stops after the step it is in.")
    return redirect("experiment", experiment_id=experiment_id)


@login_required
@require_POST
def experiment_resume_view(request: ResearcherRequest, experiment_id: int) -> HttpResponse:
    try:
        experiment_resume(experiment=_mine(request, experiment_id))
    except (ExperimentRejected, QueueUnavailable) as problem:
        messages.error(request, str(problem))
    else:
        messages.success(request, "Queued again: it goes on where it stopped.")
    return redirect("experiment", experiment_id=experiment_id)
