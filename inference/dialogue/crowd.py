"""The crowd's dialogue pages: a worker opens a dialogue study's link with their worker id, talks
to a model that is never named, labels each answer as it comes and gets a completion code.
Their own dialogue's token in the address is what lets them in; no account is needed."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotation import ratelimits
from annotation.scales import CROWD_SCALES
from annotation.services.completion import completion_url_with_code
from annotation.views.crowd import WORKER_ID_PARAMETERS, limited_page
from inference.dialogue.forms import MessageForm
from inference.dialogue.models import Dialogue, DialogueStudy, DialogueTurn
from inference.dialogue.selectors import SCALE, study_completion_code, turns_with_labels
from inference.dialogue.services import (
    DialogueRefused,
    dialogue_label,
    dialogue_retry,
    dialogue_say,
    study_join,
)
from inference.runs import QueueUnavailable

COOKIE_SALT = "inference.dialogue.study"
COOKIE_SECONDS = 30 * 24 * 3600


@require_http_methods(["GET", "POST"])
def study_landing(request: HttpRequest, study_token: str) -> HttpResponse:
    study = get_object_or_404(DialogueStudy, token=study_token)
    error, status = "", 200
    if request.method == "POST":
        if limited := ratelimits.crowd_start_limited(request, study.pk, study="dialogue-study"):
            return limited_page(request, limited, again_url=request.path)
        cookie = f"dialogue-study-{study.pk}"
        try:
            dialogue, new = study_join(study=study, worker_id=request.POST.get("worker_id", ""))
            # Knowing someone's worker id is not enough to continue their dialogue: only the
            # browser that started it holds its token.
            held = request.get_signed_cookie(cookie, None, salt=COOKIE_SALT)
            if not new and held != dialogue.token:
                raise DialogueRefused(
                    "This worker id already has a dialogue in this study, started in another "
                    "browser: continue it there."
                )
        except DialogueRefused as refused:
            error, status = str(refused), 400
        else:
            token = dialogue.token
            assert token is not None  # A study's dialogue has its token.
            response = redirect(
                "dialogue-study-talk", study_token=study.token, dialogue_token=token
            )
            response.set_signed_cookie(
                cookie,
                token,
                salt=COOKIE_SALT,
                max_age=COOKIE_SECONDS,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
                path=request.path,
            )
            return response
    worker_id = next(
        (request.GET[p] for p in WORKER_ID_PARAMETERS if request.GET.get(p)),
        request.POST.get("worker_id", ""),
    )
    context = {
        "study": study,
        "worker_id": worker_id,
        "error": error,
        "scale": CROWD_SCALES[SCALE],
    }
    return render(request, "inference/crowd_dialogue_landing.html", context, status=status)


@require_http_methods(["GET", "POST"])
def study_talk(request: HttpRequest, study_token: str, dialogue_token: str) -> HttpResponse:
    """The worker's dialogue: write, wait for the answer (the page polls), label it."""
    dialogue = get_object_or_404(
        Dialogue.objects.select_related("study", "annotator", "project", "model"),
        study__token=study_token,
        token=dialogue_token,
    )
    speaker = dialogue.annotator
    assert speaker is not None  # A study's dialogue is a worker's.
    form = None
    error = ""
    status = 200
    if request.method == "POST":
        if limited := ratelimits.crowd_answer_limited(request):
            return limited_page(request, limited, again_url=request.path)
        action = request.POST.get("action", "")
        try:
            if action == "say":
                form = MessageForm(request.POST)
                if form.is_valid():
                    dialogue_say(dialogue=dialogue, text=form.cleaned_data["text"], by=speaker)
                    form = None
            elif action == "label":
                number = request.POST.get("number", "")
                dialogue_label(
                    dialogue=dialogue,
                    number=int(number) if number.isdigit() else 0,
                    label=request.POST.get("label", ""),
                    by=speaker,
                )
            elif action == "retry":
                dialogue_retry(dialogue=dialogue, by=speaker)
        except (DialogueRefused, QueueUnavailable) as problem:
            error, status = str(problem), 400
        if form is None and not error and not getattr(request, "htmx", False):
            return redirect(request.path)
    dialogue.refresh_from_db()
    turns, answers = turns_with_labels(dialogue, speaker)
    code = study_completion_code(dialogue)
    assert dialogue.study is not None  # Reached through its study's token.
    context = {
        "dialogue": dialogue,
        "study": dialogue.study,
        "turns": turns,
        "answers": answers,
        "labels": [value.value for value in CROWD_SCALES[SCALE].values],
        "scale": CROWD_SCALES[SCALE],
        "form": form or MessageForm(),
        "error": error,
        "can_say": dialogue.status == Dialogue.Status.OPEN
        and not any(turn.status == DialogueTurn.Status.FAILED for turn, _ in turns),
        "unlabelled": [
            turn.number
            for turn, label in turns
            if turn.role == DialogueTurn.Role.ASSISTANT
            and turn.status == DialogueTurn.Status.DONE
            and label is None
        ],
        "completion_code": code,
        "completion_url": completion_url_with_code(dialogue.study.completion_url, code)
        if code
        else "",
    }
    template = (
        "inference/_crowd_dialogue.html"
        if getattr(request, "htmx", False)
        else "inference/crowd_dialogue.html"
    )
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response
