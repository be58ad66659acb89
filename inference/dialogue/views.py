"""Dialogue pages: start one or import conversations, talk to the model turn by turn and label
each answer as it comes, compare two models' dialogues that open alike, and the report of a
project's labels and comparisons."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotation.http import ResearcherRequest
from annotation.imports.records import ImportFailed
from annotation.models import Annotator, LanguageModel
from annotation.reports.charts import Panel, figure_bytes, preference_figure, ratings_figure
from annotation.reports.ratings import LABELLED
from annotation.scales import CROWD_SCALES
from annotation.selectors import projects_for_user
from inference.dialogue.forms import (
    CompareForm,
    CrowdRoundForm,
    ImportForm,
    MessageForm,
    StartForm,
    StudyForm,
)
from inference.dialogue.imports import dialogues_import
from inference.dialogue.models import Dialogue, DialogueComparison, DialogueTurn
from inference.dialogue.selectors import (
    SCALE,
    author_of,
    comparison_report,
    dialogue_pairs,
    dialogue_report,
    dialogues_for_user,
    studies_for_user,
    turns_with_labels,
)
from inference.dialogue.services import (
    DialogueRefused,
    dialogue_compare,
    dialogue_finish,
    dialogue_label,
    dialogue_pairs_round_create,
    dialogue_retry,
    dialogue_round_create,
    dialogue_say,
    dialogue_start,
    study_create,
)
from inference.runs import QueueUnavailable

LABELS = LABELLED[SCALE].labels


@login_required
@require_http_methods(["GET", "POST"])
def dialogues(request: ResearcherRequest) -> HttpResponse:
    projects = projects_for_user(request.user)
    action = request.POST.get("action", "start") if request.method == "POST" else ""
    importing = action == "import"
    form = StartForm(request.POST if action == "start" else None, projects=projects)
    import_form = ImportForm(
        request.POST if importing else None, request.FILES or None, projects=projects
    )
    round_form = CrowdRoundForm(request.POST if action == "crowd" else None, projects=projects)
    if action == "crowd" and round_form.is_valid():
        chosen = round_form.cleaned_data["models"]
        try:
            round_ = dialogue_round_create(
                project=chosen[0].project,
                models=chosen,
                name=round_form.cleaned_data["name"],
                annotators_per_item=round_form.cleaned_data["annotators_per_item"],
                shared_items=round_form.cleaned_data["shared_items"],
            )
        except DialogueRefused as problem:
            round_form.add_error(None, str(problem))
        else:
            return redirect("round-detail", round_id=round_.pk)
    if importing and import_form.is_valid():
        upload = import_form.cleaned_data["file"]
        try:
            summary = dialogues_import(
                project=import_form.cleaned_data["project"],
                raw=upload.read(),
                file=upload.name,
                model_name=import_form.cleaned_data["model"] or None,
                user=request.user,
            )
        except ImportFailed as problem:
            import_form.add_error("file", str(problem))
        else:
            messages.success(
                request,
                f"{upload.name}: {summary.created} conversations added, {summary.answers} "
                f"answers to label ({summary.skipped} already there).",
            )
            return redirect("dialogues")
    study_form = StudyForm(request.POST if action == "study" else None, projects=projects)
    if action == "study" and study_form.is_valid():
        data = study_form.cleaned_data
        try:
            study_create(
                project=data["models"][0].project,
                models=data["models"],
                name=data["name"],
                user=request.user,
                turns=data["turns"],
                completion_url=data["completion_url"],
                max_workers=data["max_workers"],
            )
        except DialogueRefused as problem:
            study_form.add_error(None, str(problem))
        else:
            messages.success(request, f"Dialogue study {data['name']!r} made: send its link.")
            return redirect("dialogues")
    if action == "start" and form.is_valid():
        model = form.cleaned_data["model"]
        try:
            dialogue = dialogue_start(
                project=model.project,
                model=model,
                user=request.user,
                turns=form.cleaned_data["turns"],
                sampling=form.cleaned_data["sampling"],
            )
        except DialogueRefused as problem:
            form.add_error(None, str(problem))
        else:
            return redirect("dialogue", dialogue_id=dialogue.pk)
    context = {
        "dialogues": dialogues_for_user(request.user)[:100],
        "form": form,
        "import_form": import_form,
        "round_form": round_form,
        "study_form": study_form,
        "studies": studies_for_user(request.user)[:50],
        "study_base_url": settings.PUBLIC_BASE_URL,
    }
    return render(request, "inference/dialogues.html", context)


def _mine(request: ResearcherRequest, dialogue_id: int) -> Dialogue:
    return get_object_or_404(dialogues_for_user(request.user), pk=dialogue_id)


def _page(
    request: ResearcherRequest, dialogue: Dialogue, form: MessageForm | None = None
) -> HttpResponse:
    dialogue.refresh_from_db()
    viewer = author_of(dialogue, request.user)
    speaking = dialogue.is_live and viewer is not None and viewer.pk == dialogue.annotator_id
    turns, answers = turns_with_labels(dialogue, viewer)
    context = {
        "dialogue": dialogue,
        "turns": turns,
        "labels": LABELS,
        "answers": answers,
        "form": form or MessageForm(),
        # The paper's definitions, as the crowd and the judge read them.
        "scale": CROWD_SCALES[SCALE],
        "speaking": speaking,
        "can_say": speaking
        and dialogue.status == Dialogue.Status.OPEN
        and not any(turn.status == DialogueTurn.Status.FAILED for turn, _ in turns),
    }
    template = "inference/_dialogue.html" if request.htmx else "inference/dialogue.html"
    response = render(request, template, context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def dialogue(request: ResearcherRequest, dialogue_id: int) -> HttpResponse:
    """The conversation; a POST says the next message, labels an answer or retries one."""
    found = _mine(request, dialogue_id)
    form = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "say":
                form = MessageForm(request.POST)
                if form.is_valid():
                    dialogue_say(dialogue=found, text=form.cleaned_data["text"], by=request.user)
                    form = None
            elif action == "label":
                number = request.POST.get("number", "")
                dialogue_label(
                    dialogue=found,
                    number=int(number) if number.isdigit() else 0,
                    label=request.POST.get("label", ""),
                    by=request.user,
                )
            elif action == "retry":
                dialogue_retry(dialogue=found, by=request.user)
            elif action == "finish":
                dialogue_finish(dialogue=found, by=request.user)
        except (DialogueRefused, QueueUnavailable) as problem:
            messages.error(request, str(problem))
        if form is None and not request.htmx:
            return redirect("dialogue", dialogue_id=found.pk)
    return _page(request, found, form)


@login_required
@require_GET
def dialogue_report_page(request: ResearcherRequest) -> HttpResponse:
    """Per project: each model's labelled answers in dialogues, as the paper's Section 6."""
    projects = projects_for_user(request.user)
    asked = request.GET.get("project", "")
    project = projects.filter(pk=int(asked)).first() if asked.isdigit() else projects.first()
    rows, tables = dialogue_report(project.pk) if project else ([], [])
    compared = comparison_report(project.pk) if project else []
    turns = sorted({turn for row in rows for turn in row.by_turn})
    context = {
        "projects": projects,
        "project": project,
        "rows": rows,
        "labels": LABELS,
        "figures": bool(tables),
        "turns": turns,
        "by_turn": [(row.model, [row.by_turn.get(turn) for turn in turns]) for row in rows],
        "compared": compared,
        "compared_models": sorted({row.model for row in compared}),
    }
    return render(request, "inference/dialogue_report.html", context)


@login_required
@require_GET
def dialogue_report_figure(request: ResearcherRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(projects_for_user(request.user), pk=project_id)
    _, tables = dialogue_report(project.pk)
    if not tables:
        return HttpResponse("No labelled dialogue yet.", status=404, content_type="text/plain")
    figure = ratings_figure(tables[0])
    return HttpResponse(figure_bytes(figure, "png"), content_type="image/png")


@login_required
@require_GET
def dialogue_comparison_figure(request: ResearcherRequest, project_id: int) -> HttpResponse:
    """The comparisons of one model's dialogues with the others' (?model=NAME), as the
    pairwise study's stacked bars."""
    project = get_object_or_404(projects_for_user(request.user), pk=project_id)
    model = request.GET.get("model", "")
    rows = [row for row in comparison_report(project.pk) if row.model == model]
    if not rows:
        return HttpResponse("No comparison of this model's dialogues yet.", status=404,
                            content_type="text/plain")  # fmt: skip
    figure = preference_figure(
        [
            Panel(
                "Dialogues on the same opening messages", [(row.other, row.outcome) for row in rows]
            )
        ],
        candidate=model,
        title=f"{model}'s dialogues compared as wholes",
        mode="per verdict",
    )
    return HttpResponse(figure_bytes(figure, "png"), content_type="image/png")


@login_required
@require_http_methods(["GET", "POST"])
def dialogue_compare_page(request: ResearcherRequest) -> HttpResponse:
    """Two models' dialogues on the same opening message side by side, the models not named,
    in positions drawn per labeller and pair; the labeller says which conversation is better.
    One pair at a time, those not yet judged by this labeller first."""
    projects = projects_for_user(request.user)
    query: QueryDict = request.POST if request.method == "POST" else request.GET
    form = CompareForm(query if "model_a" in query else None, projects=projects)
    context: dict = {"form": form, "pairs": None}
    if not form.is_valid():
        return render(request, "inference/dialogue_compare.html", context)
    model_a: LanguageModel = form.cleaned_data["model_a"]
    model_b: LanguageModel = form.cleaned_data["model_b"]
    pairs = dialogue_pairs(model_a.project_id, model_a, model_b)
    by_key = {pair.key: pair for pair in pairs}
    if request.method == "POST" and request.POST.get("action") == "crowd":
        annotators = request.POST.get("annotators_per_item", "1")
        try:
            round_ = dialogue_pairs_round_create(
                project=model_a.project,
                model_a=model_a,
                model_b=model_b,
                name=request.POST.get("name", ""),
                annotators_per_item=int(annotators) if annotators.isdigit() else 0,
            )
        except DialogueRefused as problem:
            messages.error(request, str(problem))
            return redirect(f"{request.path}?{form.query()}")
        return redirect("round-detail", round_id=round_.pk)
    if request.method == "POST":
        sides_shown = (request.POST.get("left", ""), request.POST.get("right", ""))
        shown = [int(x) for x in sides_shown if x.isdigit()]
        pair = by_key.get((min(shown), max(shown))) if len(shown) == 2 else None
        try:
            if pair is None:
                raise DialogueRefused("These two dialogues are not a pair of the chosen models.")
            sides = {pair.first.pk: pair.first, pair.second.pk: pair.second}
            shown_at = request.POST.get("shown_at", "")
            seconds = (
                time.time() - float(shown_at) if shown_at.replace(".", "", 1).isdigit() else None
            )
            dialogue_compare(
                left=sides[shown[0]],
                right=sides[shown[1]],
                choice=request.POST.get("choice", ""),
                by=request.user,
                seconds_spent=seconds if seconds is not None and 0 <= seconds < 86_400 else None,
            )
        except DialogueRefused as problem:
            messages.error(request, str(problem))
        return redirect(f"{request.path}?{form.query()}")
    name = request.user.get_username()
    judged = set(
        DialogueComparison.objects.filter(
            annotator__project_id=model_a.project_id,
            annotator__kind=Annotator.Kind.AUTHOR,
            annotator__name=name,
        ).values_list("first_id", "second_id")
    )
    waiting = [pair for pair in pairs if pair.key not in judged]
    context.update({"pairs": len(pairs), "judged": len(pairs) - len(waiting)})
    if waiting:
        pair = waiting[0]
        left, right = (
            (pair.first, pair.second) if pair.first_on_left(name) else (pair.second, pair.first)
        )
        context.update(
            {
                "left": left,
                "right": right,
                "left_turns": left.turns.order_by("index"),
                "right_turns": right.turns.order_by("index"),
                "shown_at": f"{time.time():.3f}",
            }
        )
    return render(request, "inference/dialogue_compare.html", context)
