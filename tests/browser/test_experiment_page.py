"""An experiment's page in a real Chromium, on a phone and a desktop: the table of candidates,
the figure drawn from the judge's scores, the CSV link; nothing wider than the screen."""

import pytest

from annotation.models import LanguageModel, Rating, Response
from annotation.services.ratings import RatingGiven, ratings_record
from inference.experiments.models import Experiment
from inference.experiments.services import experiment_create
from inference.judge.services import judge_create
from inference.training.models import TrainingRun
from inference.training.services import training_set_upload
from tests.browser.test_crowd_layout import Screen
from tests.factories import make_project, make_prompt_set, make_user
from tests.support.judging import KEY_ENV
from tests.support.training import jsonl

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-battery-7"
SCORES = {"2 examples": [2, 3, 3, 4], "4 examples": [4, 5, 5, 6]}


def scored_experiment(user) -> Experiment:
    """An experiment whose two candidates were trained and whose answers the judge scored."""
    project = make_project("ablation lab", user)
    dev = make_prompt_set(project, 2, name="dev")
    judge = judge_create(
        project=project,
        name="chatgpt",
        mode="helpfulness_1_6",
        base_url="http://127.0.0.1:9/v1",
        api_key_env=KEY_ENV,
    )
    sets = [
        training_set_upload(project=project, name=name, raw=jsonl(int(name[0]))) for name in SCORES
    ]
    experiment = experiment_create(
        project=project,
        name="quantity <i>sweep</i>",
        base_model="/models/base",
        dev_set=dev,
        judge=judge,
        training_sets=sets,
        axis=Experiment.Axis.SIZE,
        samples_per_prompt=2,
        enqueue_task=False,
    )
    for arm in experiment.arms.all():
        model = LanguageModel.objects.create(
            project=project, name=f"{experiment.name}: {arm.label}"
        )
        run = TrainingRun.objects.create(
            project=project, name=model.name, training_set=arm.training_set,
            base_model="/models/base", dev_set=dev, judge=judge,
            status=TrainingRun.Status.DONE, registered_model=model,
        )  # fmt: skip
        arm.training_run = run
        arm.save()
        given = []
        scores = iter(SCORES[arm.label])
        for prompt in dev.prompts.all():
            for sample in range(2):
                answer = Response.objects.create(
                    prompt=prompt, model=model, text=f"answer {sample}",
                    settings_key=experiment.sample_key(sample),
                )  # fmt: skip
                given.append(
                    RatingGiven(
                        model_id=model.pk, question=prompt.external_id,
                        scale=Rating.Scale.HELPFULNESS_1_6, score=float(next(scores)),
                        response_id=answer.pk,
                    )
                )  # fmt: skip
        ratings_record(annotator=judge.annotator, ratings=given)
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.DONE)
    return experiment


@pytest.mark.parametrize(
    "screen",
    [Screen(390, 844, is_phone=True), Screen(1280, 800, is_phone=False)],
    ids=lambda screen: f"{screen.width}x{screen.height}",
)
def test_the_experiment_page_shows_each_candidates_mean_and_the_figure(
    live_server, screen_page, screen_page_errors, screen, screenshot
):
    page = screen_page
    user = make_user("ada", PASSWORD)
    experiment = scored_experiment(user)
    page.goto(f"{live_server.url}/accounts/login/?next=/inference/experiments/{experiment.pk}/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Experiment quantity <i>sweep</i>")
    rows = page.locator("#experiment-results tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("2 examples")
    expect(rows.nth(0)).to_contain_text("3.00")
    expect(rows.nth(1)).to_contain_text("5.00")
    figure = page.get_by_role("img", name="Mean helpfulness per training set")
    expect(figure).to_be_visible()
    page.wait_for_function(
        "() => [...document.images].every((image) => image.complete && image.naturalWidth > 0)"
    )
    wide = page.evaluate(
        "(width) => [...document.querySelectorAll('body *')].filter((e) => "
        "e.getBoundingClientRect().right > width + 0.5 && !e.closest('.table-scroll table'))"
        ".map((e) => e.outerHTML.slice(0, 80))",
        screen.width,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= screen.width, wide
    box = figure.bounding_box()
    assert box is not None and box["width"] <= screen.width
    expect(page.get_by_role("link", name="The results as CSV")).to_be_visible()
    screenshot(page, f"experiment-{screen.width}x{screen.height}")
    assert screen_page_errors == []
