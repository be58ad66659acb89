"""A large round's report built by a real Celery worker while the page shows its progress.

Locally the broker is kombu's filesystem transport; CI points CELERY_BROKER_URL at Redis.
"""

import pytest
from django.urls import reverse

from annotation.models import ReportBuild
from tests.annotation.reports.test_report import annotate
from tests.factories import make_project, make_round, make_user
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_large_rounds_report_is_built_on_a_worker_while_the_page_shows_progress(
    client, settings, celery_worker
):
    settings.REPORT_INLINE_MAX_ANNOTATIONS = 3
    user = make_user()
    round_ = make_round(prompts=4, baselines=("alpaca",), project=make_project("lab", user))
    annotate(round_, "crowd", "w1", "cctb", baseline="alpaca")
    client.force_login(user)
    url = reverse("round-report", args=[round_.pk])

    waiting = client.get(url).content.decode()
    build = wait_until(ReportBuild.objects.get(), lambda b: b.status == ReportBuild.Status.DONE)
    polled = client.get(url, headers={"HX-Request": "true"}).content.decode()

    assert "The report of 4 annotations is being built" in waiting
    assert 'hx-trigger="every 2s"' in waiting
    assert "Human preference (Figure 1)" not in waiting
    assert build.steps_done == build.steps_total > 0
    assert polled.strip().startswith('<div id="report">') and "hx-trigger" not in polled
    assert "Human preference (Figure 1)" in polled
    assert ReportBuild.objects.count() == 1
