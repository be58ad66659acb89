"""Dialogue pages: start one, talk to the model turn by turn and label each answer as it comes,
and the report of a project's labelled dialogues."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotation.http import ResearcherRequest
from annotation.reports.charts import figure_bytes, ratings_figure
from annotation.reports.ratings import LABELLED
from annotation.scales import CROWD_SCALES
from annotation.selectors import projects_for_user
from inference.dialogue.forms import MessageForm, StartForm
from inference.dialogue.models import Dialogue, DialogueTurn
from inference.dialogue.selectors import (
    SCALE,
    dialogue_labels,
    dialogue_report,
    dialogues_for_user,
)
from inference.dialogue.services import (
    DialogueRefused,
    dialogue_label,
    dialogue_retry,
    dialogue_say,
    dialogue_start,
)
from inference.runs import QueueUnavailable

LABELS = LABELLED[SCALE].labels


@login_required
@require_http_methods(["GET", "POST"])
def dialogues(request: ResearcherRequest) -> HttpResponse:
    form = StartForm(request.POST or None, projects=projects_for_user(request.user))
    if request.method == "POST" and form.is_valid():
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
    context = {"dialogues": dialogues_for_user(request.user)[:50], "form": form}
    return render(request, "inference/dialogues.html", context)


def _mine(request: ResearcherRequest, dialogue_id: int) -> Dialogue:
    return get_object_or_404(dialogues_for_user(request.user), pk=dialogue_id)


def _page(
    request: ResearcherRequest, dialogue: Dialogue, form: MessageForm | None = None
) -> HttpResponse:
    dialogue.refresh_from_db()
    labels = dialogue_labels(dialogue)
    turns = [
        (turn, labels.get(turn.number) if turn.role == DialogueTurn.Role.ASSISTANT else None)
        for turn in dialogue.turns.order_by("index")
    ]
    answers = sum(1 for turn, _ in turns if turn.role == DialogueTurn.Role.ASSISTANT)
    context = {
        "dialogue": dialogue,
        "turns": turns,
        "labels": LABELS,
        "answers": answers,
        "form": form or MessageForm(),
        # The paper's definitions, as the crowd and the judge read them.
        "scale": CROWD_SCALES[SCALE],
        "can_say": dialogue.status == Dialogue.Status.OPEN
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
                    dialogue_say(dialogue=found, text=form.cleaned_data["text"])
                    form = None
            elif action == "label":
                number = request.POST.get("number", "")
                dialogue_label(
                    dialogue=found,
                    number=int(number) if number.isdigit() else 0,
                    label=request.POST.get("label", ""),
                )
            elif action == "retry":
                dialogue_retry(dialogue=found)
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
    context = {"projects": projects, "project": project, "rows": rows, "labels": LABELS,
               "figures": bool(tables)}  # fmt: skip
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
