"""Researcher pages: rounds and their progress, imports, authoring annotations."""

import csv
from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation import selectors
from annotation.forms import ImportForm, QualityForm, RoundForm
from annotation.http import HtmxRequest, ResearcherRequest
from annotation.import_jobs.services import import_job_create
from annotation.imports.gold import read_gold
from annotation.imports.records import ImportFailed
from annotation.links import crowd_link
from annotation.models import Annotator, ImportJob, Round, WorkerSession
from annotation.services import quality as quality_services
from annotation.services.assignment import session_start
from annotation.services.quality import QUALITY_SETTINGS
from annotation.services.rounds import RoundInvalid, round_create

ROUNDS_PER_PAGE = 25


@require_GET
def healthz(request: HtmxRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@login_required
@require_GET
def home(request: ResearcherRequest) -> HttpResponse:
    return redirect("rounds")


@login_required
@require_GET
def rounds(request: ResearcherRequest) -> HttpResponse:
    page = Paginator(
        selectors.rounds_for_user(request.user).order_by("-created_at", "-id"), ROUNDS_PER_PAGE
    ).get_page(request.GET.get("page"))
    round_list = list(page)
    progress = selectors.rounds_progress(round_list)
    context = {
        "rows": [(r, progress[r.pk]) for r in round_list],
        "page": page,
        "refresh_seconds": selectors.rounds_refresh_seconds(round_list, progress),
    }
    template = "research/_rounds_table.html" if request.htmx else "research/rounds.html"
    return render(request, template, context)


@login_required
@require_GET
def round_detail(request: ResearcherRequest, round_id: int) -> HttpResponse:
    round_ = get_object_or_404(selectors.rounds_for_user(request.user), pk=round_id)
    progress = selectors.round_progress(round_)
    context = {
        "round": round_,
        "progress": progress,
        "refresh_seconds": selectors.rounds_refresh_seconds([round_], {round_.pk: progress}),
        "counts": selectors.round_annotation_counts(round_),
        "workers": selectors.round_worker_count(round_),
        "crowd_link": crowd_link(round_),
    }
    template = "research/_round_progress.html" if request.htmx else "research/round_detail.html"
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def round_workers(request: ResearcherRequest, round_id: int) -> HttpResponse:
    round_ = get_object_or_404(selectors.rounds_for_user(request.user), pk=round_id)
    initial = {name: getattr(round_, name) for name in QUALITY_SETTINGS}
    quality = QualityForm(initial=initial)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "quality":
                quality = QualityForm(request.POST, request.FILES, initial=initial)
                if quality.is_valid():
                    messages.success(request, _quality_apply(round_, quality.cleaned_data))
                    return redirect("round-workers", round_id=round_.pk)
            elif action in ("exclude", "reinstate"):
                session = get_object_or_404(
                    WorkerSession, round=round_, pk=request.POST.get("session")
                )
                if action == "exclude":
                    quality_services.worker_exclude(
                        session=session, reason=request.POST.get("reason", "")
                    )
                else:
                    quality_services.worker_reinstate(session=session)
                messages.success(request, f"{session.annotator.name}: {action}d.")
                return redirect("round-workers", round_id=round_.pk)
        except (quality_services.QualityInvalid, ImportFailed) as problem:
            messages.error(request, str(problem))
    workers = selectors.round_workers(round_)
    counts = Counter(worker.status for worker in workers if worker.kind == Annotator.Kind.CROWD)
    sessions = dict(WorkerSession.objects.filter(round=round_).values_list("annotator__name", "pk"))
    rows = [(worker, sessions.get(worker.worker_id)) for worker in workers]
    context = {"round": round_, "rows": rows, "counts": counts, "quality": quality}
    return render(request, "research/round_workers.html", context)


@transaction.atomic
def _quality_apply(round_: Round, data: dict) -> str:
    """Everything the quality form asks, or nothing of it."""
    done = []
    if data["gold_file"]:
        answers = read_gold(data["gold_file"].read(), data["gold_file"].name)
        marked = quality_services.items_mark_gold(
            round_=round_, answers=answers, source=data["gold_file"].name
        )
        done.append(f"{marked} gold items marked")
    if data["attention_checks"]:
        added = quality_services.round_add_attention_checks(
            round_=round_, count=data["attention_checks"]
        )
        done.append(f"{added} attention checks added")
    quality_services.round_set_quality(
        round_=round_, **{name: data[name] for name in QUALITY_SETTINGS}
    )
    excluded = quality_services.round_apply_quality_rules(round_=round_)
    workers = f"{len(excluded)} worker{'s' if len(excluded) != 1 else ''}"
    done.append(f"settings saved; {workers} excluded by the rules")
    summary = "; ".join(done)
    return summary[0].upper() + summary[1:] + "."


@login_required
@require_GET
def round_workers_csv(request: ResearcherRequest, round_id: int) -> HttpResponse:
    """Worker ids with status, counts and codes: what approving and rejecting a study needs."""
    round_ = get_object_or_404(selectors.rounds_for_user(request.user), pk=round_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="round-{round_.pk}-workers.csv"'
    writer = csv.writer(response)
    writer.writerow(selectors.WORKER_COLUMNS)
    for worker in selectors.round_workers(round_):
        row = [getattr(worker, column) for column in selectors.WORKER_COLUMNS]
        writer.writerow("" if value is None else value for value in row)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def round_new(request: ResearcherRequest) -> HttpResponse:
    projects = selectors.projects_for_user(request.user)
    form = RoundForm(request.POST or None, projects=projects)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            round_ = round_create(
                project=data["project"],
                name=data["name"],
                prompt_set=data["prompt_set"],
                candidate=data["candidate"],
                baselines=list(data["baselines"]),
                annotators_per_item=data["annotators_per_item"],
                shared_items=data["shared_items"],
                items_per_worker=data["items_per_worker"],
                text_format=data["text_format"],
                completion_url=data["completion_url"],
                max_active_workers=data["max_active_workers"],
                kind=Round.Kind.ABSOLUTE if data["question"] else Round.Kind.PAIRWISE,
                scale=data["question"],
            )
        except RoundInvalid as invalid:
            form.add_error(None, str(invalid))
        else:
            messages.success(request, f"Round {round_.name!r} created.")
            return redirect("round-detail", round_id=round_.pk)
    return render(request, "research/round_new.html", {"form": form})


@login_required
@require_POST
def round_annotate(request: ResearcherRequest, round_id: int) -> HttpResponse:
    """A researcher annotates as an author, through the crowd worker's own page."""
    round_ = get_object_or_404(selectors.rounds_for_user(request.user), pk=round_id)
    session = session_start(
        round_=round_,
        kind=Annotator.Kind.AUTHOR,
        name=request.user.get_username(),
        user=request.user,
    )
    return redirect("crowd-work", session_token=session.token)


@login_required
@require_http_methods(["GET", "POST"])
def imports(request: ResearcherRequest) -> HttpResponse:
    projects = selectors.projects_for_user(request.user)
    form = ImportForm(request.POST or None, request.FILES or None, projects=projects)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        import_job_create(
            project=data["project"],
            kind=data["kind"],
            upload=data["file"],
            set_name=data["prompt_set"],
            model_name=data["model"],
            user=request.user,
        )
        messages.success(request, f"{data['file'].name} is queued for import.")
        return redirect("imports")
    jobs = list(ImportJob.objects.filter(project__in=projects)[:20])
    jobs_active = any(
        job.status in (ImportJob.Status.PENDING, ImportJob.Status.RUNNING) for job in jobs
    )
    template = "research/_import_jobs.html" if request.htmx else "research/imports.html"
    return render(request, template, {"form": form, "jobs": jobs, "jobs_active": jobs_active})
