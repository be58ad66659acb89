import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotation.models import Annotator, Assignment, Round, WorkerSession
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from annotation.services.completion import session_complete
from annotation.services.rounds import round_create
from tests.factories import make_project, make_round, make_user

pytestmark = pytest.mark.django_db


def test_it_sends_visitors_to_the_login_page(client):
    for name in ("rounds", "imports", "round-new"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_it_lists_a_members_rounds_with_progress_per_baseline(client):
    user = make_user()
    round_ = make_round(
        prompts=4, baselines=("alpaca", "davinci"), project=make_project("lab", user)
    )
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w1")
    for _ in range(3):
        assignment = assignment_current(session=session)
        annotation_submit(session=session, assignment_token=assignment.token, shown_choice="A")
    client.force_login(user)
    html = client.get(reverse("rounds")).content.decode()
    assert round_.name in html
    assert "vs alpaca" in html and "vs davinci" in html
    counts = sorted(html.count(f"{n} / 4</span>") for n in (0, 1, 2, 3))
    assert counts == [0, 0, 1, 1]  # one baseline has 2 of 4, the other 1 of 4


def test_it_hides_other_projects_rounds_except_from_superusers(client):
    round_ = make_round(project=make_project("other team"))
    client.force_login(make_user("outsider"))
    assert round_.name not in client.get(reverse("rounds")).content.decode()
    assert client.get(reverse("round-detail", args=[round_.pk])).status_code == 404
    admin = get_user_model().objects.create_superuser("operator", password="pw-operator-1")
    client.force_login(admin)
    assert round_.name in client.get(reverse("rounds")).content.decode()


def test_it_shows_the_crowd_link_on_the_round_page(client):
    user = make_user()
    round_ = make_round(project=make_project("lab", user))
    client.force_login(user)
    html = client.get(reverse("round-detail", args=[round_.pk])).content.decode()
    assert f"/c/{round_.crowd_token}/" in html


def test_it_creates_a_round_from_the_form_and_explains_a_refusal(client):
    user = make_user()
    existing = make_round(project=make_project("lab", user))
    client.force_login(user)
    form = {
        "project": existing.project.pk,
        "name": "second round",
        "prompt_set": existing.prompt_set.pk,
        "candidate": existing.candidate.pk,
        "baselines": [existing.candidate.pk],
        "annotators_per_item": 1,
        "shared_items": 0,
        "items_per_worker": 10,
        "text_format": "plain",
    }
    refused = client.post(reverse("round-new"), form)
    assert "both the candidate and a baseline" in refused.content.decode()
    assert Round.objects.count() == 1
    form["baselines"] = [existing.baselines.get().pk]
    created = client.post(reverse("round-new"), form)
    new_round = Round.objects.get(name="second round")
    assert created["Location"] == reverse("round-detail", args=[new_round.pk])
    assert new_round.items.count() == existing.items.count()
    assert new_round.text_format == Round.TextFormat.PLAIN
    page = client.get(created["Location"]).content.decode()
    assert "Plain text, whitespace kept" in page


def test_it_chooses_the_project_already_when_the_user_has_only_one(client):
    user = make_user()
    project = make_project("lab", user)
    client.force_login(user)
    html = client.get(reverse("imports")).content.decode()
    assert f'<option value="{project.pk}" selected>' in html
    assert "---------" not in html.split('name="project"')[1].split("</select>")[0]


def test_it_polls_the_import_list_only_while_a_job_is_queued_or_running(client):
    from annotation.models import ImportJob

    user = make_user()
    project = make_project("lab", user)
    client.force_login(user)
    assert 'hx-trigger="every 2s"' not in client.get(reverse("imports")).content.decode()
    job = ImportJob.objects.create(
        project=project, kind="prompts", file="x.jsonl", original_name="x.jsonl",
        prompt_set_name="s",
    )  # fmt: skip
    assert 'hx-trigger="every 2s"' in client.get(reverse("imports")).content.decode()
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.DONE)
    partial = client.get(reverse("imports"), headers={"HX-Request": "true"}).content.decode()
    assert 'id="import-jobs"' in partial and 'hx-trigger="every 2s"' not in partial


def another_round(like: Round, name: str) -> Round:
    return round_create(
        project=like.project,
        prompt_set=like.prompt_set,
        candidate=like.candidate,
        baselines=list(like.baselines.all()),
        name=name,
        shared_items=0,
    )


def test_the_rounds_list_is_paginated_newest_first(client):
    user = make_user()
    project = make_project("lab", user)
    first_round = make_round(prompts=1, project=project, name="round 00")
    made = [first_round] + [another_round(first_round, f"round {i:02d}") for i in range(1, 27)]
    client.force_login(user)
    first = client.get(reverse("rounds")).content.decode()
    assert "round 26" in first and "round 02" in first and "round 01" not in first
    assert "Page 1 of 2 · 27 rounds" in first
    second = client.get(reverse("rounds"), {"page": 2}).content.decode()
    assert "round 01" in second and "round 00" in second and "round 02" not in second
    assert f'hx-get="{reverse("rounds")}?page=2"' in second
    assert len(made) == 27


def test_the_rounds_list_takes_the_same_queries_for_one_round_or_a_page_of_them(
    client, django_assert_num_queries
):
    user = make_user()
    project = make_project("lab", user)
    first_round = make_round(prompts=2, project=project, baselines=("a", "b"))
    client.force_login(user)
    with CaptureQueriesContext(connection) as one_round:
        client.get(reverse("rounds"))
    for i in range(30):
        another_round(first_round, f"more {i}")
    with django_assert_num_queries(len(one_round)):
        client.get(reverse("rounds"))


def test_round_pages_poll_fast_while_a_worker_holds_an_item_slowly_while_open_and_never_after(
    client,
):
    user = make_user()
    round_ = make_round(prompts=1, project=make_project("lab", user), annotators_per_item=1)
    client.force_login(user)
    pages = (reverse("rounds"), reverse("round-detail", args=[round_.pk]))

    def triggers() -> list[str]:
        found = []
        for url in pages:
            for headers in ({}, {"HX-Request": "true"}):
                html = client.get(url, headers=headers).content.decode()
                found.append(
                    html.split('hx-trigger="')[1].split('"')[0] if "hx-trigger" in html else ""
                )
        return found

    assert triggers() == ["every 60s"] * 4  # Open, nobody working yet.
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w1")
    assignment = assignment_current(session=session)
    assert triggers() == ["every 5s"] * 4
    annotation_submit(session=session, assignment_token=assignment.token, shown_choice="A")
    assert triggers() == [""] * 4  # Every item has its K annotations.


def test_the_workers_page_and_export_list_who_finished_who_works_and_who_left(client):
    user = make_user()
    round_ = make_round(
        prompts=4, project=make_project("lab", user), annotators_per_item=3, items_per_worker=2
    )
    finished = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="finished-1")
    for _ in range(2):
        assignment = assignment_current(session=finished)
        annotation_submit(session=finished, assignment_token=assignment.token, shown_choice="A")
    assert assignment_current(session=finished) is None
    code = session_complete(session=finished)
    working = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="working-2")
    assignment_current(session=working)
    left = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="left-3")
    assignment = assignment_current(session=left)
    annotation_submit(session=left, assignment_token=assignment.token, shown_choice="N")
    Assignment.objects.filter(session=left, status=Assignment.Status.LEASED).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    client.force_login(user)

    page = client.get(reverse("round-workers", args=[round_.pk])).content.decode()
    assert "1 complete · 1 working now · 1 left before the end" in " ".join(page.split())
    assert code in page

    export = client.get(reverse("round-workers-csv", args=[round_.pk]))
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    by_worker = {row["worker_id"]: row for row in rows}
    assert by_worker["finished-1"]["status"] == "complete"
    assert by_worker["finished-1"]["completion_code"] == code
    assert (by_worker["finished-1"]["items_done"], by_worker["finished-1"]["answered_a"]) == (
        "2",
        "2",
    )
    assert by_worker["working-2"]["status"] == "working"
    assert by_worker["left-3"]["status"] == "left"
    assert by_worker["left-3"]["answered_neither"] == "1"
    assert by_worker["left-3"]["completion_code"] == ""

    client.force_login(make_user("outsider"))
    assert client.get(reverse("round-workers-csv", args=[round_.pk])).status_code == 404


def test_a_researcher_excludes_a_worker_with_a_reason_and_the_report_says_so(client):
    user = make_user()
    round_ = make_round(prompts=3, project=make_project("lab", user), items_per_worker=3)
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="speedy")
    for _ in range(3):
        assignment = assignment_current(session=session)
        annotation_submit(session=session, assignment_token=assignment.token, shown_choice="A")
    client.force_login(user)
    url = reverse("round-workers", args=[round_.pk])
    refused = client.post(url, {"action": "exclude", "session": session.pk, "reason": " "})
    assert (
        refused.status_code == 200 and "Say why the worker is excluded." in refused.content.decode()
    )
    client.post(url, {"action": "exclude", "session": session.pk, "reason": "always A"})
    page = client.get(url).content.decode()
    assert "excluded: always A" in page and "Count again" in page

    report = client.get(reverse("round-report", args=[round_.pk])).content.decode()
    assert "1 worker excluded" in report and "speedy (always A)" in report
    assert "Show the figures with them" in report
    with_them = client.get(reverse("round-report", args=[round_.pk]), {"excluded": "include"})
    assert "These figures <strong>include</strong> their annotations" in with_them.content.decode()
    download = reverse("round-report-download", args=[round_.pk, "summary.json"])
    summary = json.loads(b"".join(client.get(download).streaming_content))
    assert summary["excluded_workers"] == [{"worker_id": "speedy", "reason": "always A"}]
    assert summary["includes_excluded_workers"] is False and summary["groups"] == {}

    client.post(url, {"action": "reinstate", "session": session.pk})
    assert WorkerSession.objects.get(pk=session.pk).excluded_at is None


def test_the_quality_form_marks_gold_adds_attention_checks_and_names_a_bad_line(client):
    user = make_user()
    round_ = make_round(prompts=4, project=make_project("lab", user))
    first = round_.items.order_by("position").first().prompt.external_id
    client.force_login(user)
    url = reverse("round-workers", args=[round_.pk])
    form = {
        "action": "quality",
        "check_rate": "0.2",
        "words_per_second": "10",
        "attention_checks": "2",
    }
    bad = SimpleUploadedFile(
        "gold.jsonl", b'{"prompt_id": "' + first.encode() + b'", "answer": "mabye"}\n'
    )
    page = client.post(url, {**form, "gold_file": bad}, follow=True).content.decode()
    assert "gold.jsonl, line 1: &#x27;answer&#x27; must be candidate, baseline or tie" in page
    assert not round_.items.exclude(check_kind="").exists()  # Nothing half-done.

    good = SimpleUploadedFile(
        "gold.jsonl", b'{"prompt_id": "' + first.encode() + b'", "answer": "tie"}\n'
    )
    page = client.post(url, {**form, "gold_file": good}, follow=True).content.decode()
    assert "1 gold items marked; 2 attention checks added; settings saved" in page
    round_.refresh_from_db()
    assert round_.check_rate == 0.2
    assert round_.items.filter(check_kind="gold").count() == 1
    assert round_.items.filter(check_kind="attention").count() == 2


def test_the_workers_page_and_export_give_no_competence_to_a_worker_who_shares_no_item(client):
    user = make_user()
    # Each worker takes the least-annotated items: "a" and "c" share two, "b" has two alone.
    round_ = make_round(
        prompts=4, project=make_project("lab", user), annotators_per_item=2, items_per_worker=2
    )
    for name in ("a", "b", "c"):
        session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name=name)
        while (assignment := assignment_current(session=session)) is not None:
            annotation_submit(session=session, assignment_token=assignment.token, shown_choice="A")
    items = {
        name: set(Assignment.objects.filter(session__annotator__name=name).values_list("item"))
        for name in ("a", "b", "c")
    }
    assert items["a"] == items["c"] and not items["b"] & (items["a"] | items["c"])
    client.force_login(user)

    page = client.get(reverse("round-workers", args=[round_.pk])).content.decode()
    rows = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in page.split('<tr class="worker-')]
    competence = {cells[0]: cells[10] for cells in rows[1:]}
    assert competence["b"] == '<span title="no item shared with another crowd worker">—</span>'
    assert re.fullmatch(r"\d+%", competence["a"]) and re.fullmatch(r"\d+%", competence["c"])

    export = client.get(reverse("round-workers-csv", args=[round_.pk])).content.decode()
    by_worker = {row["worker_id"]: row for row in csv.DictReader(io.StringIO(export))}
    assert by_worker["b"]["competence"] == ""
    assert by_worker["b"]["competence_note"] == "no item shared with another crowd worker"
    assert 0 < float(by_worker["a"]["competence"]) <= 1 and by_worker["a"]["competence_note"] == ""
