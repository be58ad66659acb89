"""Two candidates on the same prompts: a sign test and a paired bootstrap, and no claim of a
difference the test does not support."""

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.models import Annotator, LanguageModel, Response
from annotation.reports.paired import paired_comparison
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from annotation.services.rounds import round_create
from tests.factories import make_round


def test_a_clear_difference_is_supported_and_a_small_one_is_not():
    rng = np.random.default_rng(3)
    prompts = [str(i) for i in range(200)]
    strong = {p: float(rng.random() < 0.7) for p in prompts}
    weak = {p: float(rng.random() < 0.4) for p in prompts}
    clear = paired_comparison(strong, weak, baseline="b", resamples=500)
    assert clear is not None and clear.supported
    assert clear.difference == pytest.approx(
        100 * (np.mean(list(strong.values())) - np.mean(list(weak.values())))
    )
    assert clear.ci95[0] > 0 and clear.sign_test_p < 0.001
    assert clear.sentence("x", "y").startswith("Against b, x beats y by")

    same = {p: float(rng.random() < 0.5) for p in prompts}
    near = {p: v if i % 25 else 1 - v for i, (p, v) in enumerate(same.items())}
    close = paired_comparison(same, near, baseline="b", resamples=500)
    assert close is not None and not close.supported
    assert "the data do not show a difference" in close.sentence("x", "y")
    assert close.first_better + close.second_better + close.same == 200


def test_only_the_prompts_both_were_judged_on_count():
    result = paired_comparison({"1": 1.0, "2": 0.0}, {"2": 1.0, "3": 1.0}, baseline="b")
    assert result is not None and result.prompts == 1 and result.second_better == 1
    assert paired_comparison({"1": 1.0}, {"2": 1.0}, baseline="b") is None


@pytest.mark.django_db
def test_compare_rounds_reports_each_shared_baseline():
    first = make_round(prompts=12, annotators_per_item=1, items_per_worker=12)
    other = LanguageModel.objects.create(project=first.project, name="other-candidate")
    Response.objects.bulk_create(
        Response(prompt=p, model=other, text=f"Other answer {p.pk}")
        for p in first.prompt_set.prompts.all()
    )
    second = round_create(
        project=first.project,
        prompt_set=first.prompt_set,
        candidate=other,
        baselines=list(first.baselines.all()),
        name="second",
        shared_items=0,
        items_per_worker=12,
    )
    for round_, choice in ((first, "candidate"), (second, "baseline")):
        session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w")
        for _ in range(12):
            assignment = assignment_current(session=session)
            item = assignment.item
            ours = "A" if item.candidate_first else "B"
            shown = ours if choice == "candidate" else "AB".replace(ours, "")
            annotation_submit(
                session=session, assignment_token=assignment.token, shown_choice=shown
            )
    out = io.StringIO()
    call_command("compare_rounds", str(first.pk), str(second.pk), stdout=out)
    text = out.getvalue()
    assert "Against baseline: 12 prompts; candidate better on 12, other-candidate on 0" in text
    assert "candidate beats other-candidate by 100.0 points" in text
    assert "sign test p < 0.001." in text
    with pytest.raises(CommandError, match="share no baseline judged by 'gpt-4'"):
        call_command("compare_rounds", str(first.pk), str(second.pk), "--group", "gpt-4")


@pytest.mark.django_db
def test_the_report_prints_a_tiny_p_value_as_below_a_thousandth(client):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from annotation.services.judgments import annotations_record_judgments

    round_ = make_round(prompts=20)
    judge = Annotator.objects.create(project=round_.project, kind="judge", name="first-lover")
    annotations_record_judgments(
        annotator=judge,
        judgments=[
            (
                item,
                "candidate" if item.candidate_first else "baseline",
                {item.candidate_first: "candidate" if item.candidate_first else "baseline"},
            )
            for item in round_.items.all()
        ],
    )
    client.force_login(get_user_model().objects.create_superuser("op", password="pw-op-123"))
    page = client.get(reverse("round-report", args=[round_.pk])).content.decode()
    assert "prefers the answer shown first in 100.0 %" in page
    assert "binomial test p &lt; 0.001" in page and "p = 0.000" not in page
