"""Small builders shared by the tests: a project with prompts, two or more models and a round."""

import hashlib

from django.contrib.auth import get_user_model

from annotation.models import LanguageModel, Project, Prompt, PromptSet, Response, Round
from annotation.services.rounds import round_create


def make_user(username: str = "researcher", password: str = "pw-for-tests-1"):
    user = get_user_model().objects.create_user(username=username, password=password)
    return user


def make_project(name: str = "lab", *members) -> Project:
    project = Project.objects.create(name=name)
    if members:
        project.members.add(*members)
    return project


def make_prompt_set(project: Project, count: int = 10, name: str = "test prompts") -> PromptSet:
    prompt_set = PromptSet.objects.create(project=project, name=name)
    Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, external_id=str(i), position=i, text=f"Question number {i}?")
        for i in range(count)
    )
    return prompt_set


def make_model_with_responses(
    project: Project, prompt_set: PromptSet, name: str, *, text: str | None = None
) -> LanguageModel:
    model = LanguageModel.objects.create(project=project, name=name)
    # Texts never contain the model's name, so that blinding tests can search pages for it.
    voice = hashlib.sha1(name.encode()).hexdigest()[:6]
    Response.objects.bulk_create(
        Response(prompt=prompt, model=model, text=text or f"Answer {voice} to {prompt.external_id}")
        for prompt in prompt_set.prompts.all()
    )
    return model


def make_round(
    *,
    prompts: int = 10,
    baselines: tuple[str, ...] = ("baseline",),
    candidate: str = "candidate",
    project: Project | None = None,
    **round_settings,
) -> Round:
    project = project or make_project()
    prompt_set = make_prompt_set(project, prompts)
    candidate_model = make_model_with_responses(project, prompt_set, candidate)
    baseline_models = [make_model_with_responses(project, prompt_set, b) for b in baselines]
    round_settings.setdefault("shared_items", 0)
    round_settings.setdefault("seed", 1234)
    return round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=candidate_model,
        baselines=baseline_models,
        **round_settings,
    )
