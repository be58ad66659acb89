"""Judge pages: a round's judges with live progress, starting a judge, retrying failures."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotation.http import ResearcherRequest
from annotation.selectors import rounds_for_user
from inference.judge import selectors, services
from inference.judge.forms import NO_KEY, JudgeStartForm
from inference.judge.models import Judge, JudgeRun
from inference.judge.prompts import JudgeInvalid
from inference.runs import QueueUnavailable


@login_required
@require_http_methods(["GET", "POST"])
def round_judges(request: ResearcherRequest, round_id: int) -> HttpResponse:
    round_ = get_object_or_404(rounds_for_user(request.user), pk=round_id)
    judges = selectors.judges_for_project(round_.project_id)
    form = JudgeStartForm(request.POST or None, judges=judges)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        # Fields left empty take the judge's defaults; no key is an empty variable name.
        settings = {key: data[key] for key in ("model", "base_url", "api_key_env", "mode")}
        settings = {key: value for key, value in settings.items() if value}
        if data["api_key"] == NO_KEY:
            settings["api_key_env"] = ""
        try:
            judge = (
                data["judge"]
                or services.judge_get_or_create(
                    project=round_.project, name=data["name"], **settings
                )[0]
            )
            _, queued = services.judge_run_start(round_=round_, judge=judge)
        except JudgeInvalid as invalid:
            form.add_error(None, str(invalid))
        except QueueUnavailable as down:
            messages.error(request, str(down))
            return redirect("judge-round", round_id=round_.pk)
        else:
            state = "queued" if queued else "already running"
            messages.success(request, f"Judge {judge.name!r} is {state} on this round.")
            return redirect("judge-round", round_id=round_.pk)
    progress = selectors.round_judge_progress(round_)
    runs = [
        (
            run,
            selectors.run_failures(run.run) if run.failed else [],
            selectors.run_scores(run.run) if run.run.judge.mode != Judge.Mode.PAIRWISE else {},
        )
        for run in progress
    ]
    active = any(run.run.is_active for run in progress)
    context = {"round": round_, "runs": runs, "form": form, "active": active}
    template = "inference/_judge_runs.html" if request.htmx else "inference/round_judges.html"
    return render(request, template, context)


@login_required
@require_POST
def run_retry_failed(request: ResearcherRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(
        JudgeRun.objects.filter(round__in=rounds_for_user(request.user)), pk=run_id
    )
    try:
        count = services.judge_run_retry_failed(run=run)
    except QueueUnavailable as down:
        messages.error(request, str(down))
    else:
        messages.success(request, f"{count} failed call{'s' if count != 1 else ''} queued again.")
    return redirect("judge-round", round_id=run.round_id)
