"""The crowd path's one-call answer (annotation 0013's database function) against the general
path it stands in for: the same pages, the same records, on every kind of round."""

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotation.models import Annotation, Annotator, Assignment, Item, Prompt, Round, WorkerSession
from annotation.services.assignment import answer_and_next, assignment_current, session_start
from annotation.services.quality import round_add_attention_checks, round_set_quality
from tests.factories import make_project, make_round

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the one-call answer is a PostgreSQL function"
)


def lab_round(**settings) -> Round:
    """A round in a project of its own, so that one test can build the same study twice."""
    return make_round(project=make_project(f"lab-{Round.objects.count()}"), **settings)


@dataclass(frozen=True)
class Study:
    build: Callable[[], Round]
    # What the worker clicks at each step: a choice, "replay" (the last answer again) or
    # "stranger" (an assignment that is not theirs).
    steps: tuple[str, ...]


def plain() -> Round:
    return lab_round(prompts=6, baselines=("alpaca", "davinci"), annotators_per_item=2,
                      items_per_worker=5)  # fmt: skip


def with_shared_set() -> Round:
    return lab_round(prompts=6, baselines=("alpaca",), shared_items=3, items_per_worker=5)


def with_a_check_that_blocks() -> Round:
    # One check: which one comes when depends on no worker's token, so two studies agree.
    round_ = lab_round(prompts=8, baselines=("alpaca",), items_per_worker=8)
    round_add_attention_checks(round_=round_, count=1)
    return round_set_quality(round_=round_, check_rate=0.3, block_after_failed_checks=1)


def with_stale_html() -> Round:
    round_ = lab_round(prompts=5, baselines=("alpaca",), items_per_worker=5)
    Prompt.objects.filter(position__lt=3).update(html="<p>old</p>", html_version=0)
    return round_


def plain_text() -> Round:
    return lab_round(prompts=4, baselines=("alpaca",), items_per_worker=4, text_format="plain")


def nearly_full() -> Round:
    """Other workers hold most slots, one lease of theirs has run out."""
    round_ = lab_round(prompts=4, baselines=("alpaca",), items_per_worker=4)
    for name in ("early-1", "early-2", "early-3"):
        assignment_current(session=session_start(round_=round_, kind="crowd", name=name))
    Assignment.objects.filter(session__annotator__name="early-2").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    return round_


STUDIES = {
    "plain": Study(plain, ("A", "B", "N", "A", "B", "A")),
    "shared set": Study(with_shared_set, ("A", "replay", "B", "stranger", "N", "A", "B")),
    # The attention check asks for one answer: one of these two workers fails it.
    "a check, passed or failed A": Study(with_a_check_that_blocks, ("A",) * 9),
    "a check, passed or failed B": Study(with_a_check_that_blocks, ("B",) * 9),
    "stale html": Study(with_stale_html, ("B",) * 5),
    "plain text": Study(plain_text, ("N",) * 4),
    "nearly full": Study(nearly_full, ("A", "A", "B")),
}


def page_shown(response, tokens: dict[str, str]) -> str:
    """The page with the values that differ between two identical studies named instead."""
    text = f"{response.status_code} {response.get('HX-Redirect', '')}\n{response.content.decode()}"
    for value, name in tokens.items():
        text = text.replace(value, name)
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "csrf", text)
    text = re.sub(r'"X-CSRFToken": "[^"]+"', "csrf", text)
    text = re.sub(r'id="completion-code">[^<]+<', "code", text)
    return re.sub(r'name="assignment" value="[^"]+"', "assignment", text)


def assignment_token(response) -> str | None:
    found = re.search(r'name="assignment" value="([^"]+)"', response.content.decode())
    return found.group(1) if found else None


def records(round_: Round) -> dict:
    by_position = "item__position"
    return {
        "items": list(round_.items.order_by("position").values_list("position", "taken",
                                                                    "completed")),
        "annotations": list(
            Annotation.objects.filter(item__round=round_)
            .order_by("id")
            .values_list(by_position, "annotator__name", "choice", "shown_choice",
                         "candidate_first", "order_known", "order_votes", "preference")
        ),
        "assignments": list(
            Assignment.objects.filter(item__round=round_)
            .order_by("id")
            .values_list(by_position, "session__annotator__name", "status")
        ),
        "sessions": [
            (s.annotator.name, s.completed_items, s.finished_at is not None,
             s.blocked_at is not None)
            for s in WorkerSession.objects.filter(round=round_).select_related("annotator")
            .order_by("id")
        ],
    }  # fmt: skip


def run(study: Study, *, fast: bool) -> tuple[list[str], dict, list[int]]:
    """The worker's pages, the round's records and the queries each answer took."""
    round_ = study.build()
    stranger = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="stranger")
    strangers_item = assignment_current(session=stranger)
    client = Client()
    landing = client.post(reverse("crowd-landing", args=[round_.crowd_token]), {"worker_id": "w"})
    work_url = landing["Location"]
    session_token = work_url.rstrip("/").split("/")[-1]
    tokens = {session_token: "session", round_.crowd_token: "round"}
    page = client.get(work_url)
    pages, queries, last = [page_shown(page, tokens)], [], None
    answer_url = reverse("crowd-answer", args=[session_token])
    with override_settings(CROWD_FAST_PATH=fast):
        for step in study.steps:
            token = {"replay": last, "stranger": strangers_item and strangers_item.token}.get(
                step, assignment_token(page)
            )
            if token is None:
                break
            choice = "A" if step in ("replay", "stranger") else step
            with CaptureQueriesContext(connection) as captured:
                page = client.post(answer_url, {"assignment": token, "choice": choice},
                                   HTTP_HX_REQUEST="true")  # fmt: skip
            queries.append(len(captured))
            last = token
            pages.append(page_shown(page, tokens))
            if page.get("HX-Redirect"):
                code = page["HX-Redirect"].rsplit("=", 1)[-1]
                pages[-1] = pages[-1].replace(code, "code")
    return pages, records(round_), queries


@on_postgresql
@pytest.mark.parametrize("name", list(STUDIES))
def test_the_one_call_answer_shows_and_records_what_the_general_path_does(name):
    general = run(STUDIES[name], fast=False)
    one_call = run(STUDIES[name], fast=True)

    assert one_call[0] == general[0]
    assert one_call[1] == general[1]
    assert sum(one_call[2]) < sum(general[2])


@on_postgresql
def test_one_of_the_two_check_studies_blocks_its_worker():
    blocked = [
        run(STUDIES[f"a check, passed or failed {choice}"], fast=True)[1]["sessions"][-1][3]
        for choice in "AB"
    ]
    assert sorted(blocked) == [False, True]


@on_postgresql
def test_an_answer_and_the_next_stored_item_take_one_statement():
    pages, _, queries = run(STUDIES["plain"], fast=True)
    # The first answer counts the round's items for the progress bar, later ones reuse the
    # count; the fifth ends the worker's quota, which the general path handles.
    assert queries[1:4] == [1, 1, 1]
    assert "6 of 5" not in "".join(pages) and "5 of 5" in pages[4]


@on_postgresql
def test_the_one_call_answer_renders_and_stores_html_it_finds_stale():
    round_ = with_stale_html()
    session = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w")
    first = assignment_current(session=session)
    step = answer_and_next(
        session_token=session.token, assignment_token=first.token, shown_choice="A"
    )
    item = Item.objects.select_related("prompt").get(assignments__token=step.assignment_token)
    assert "old" not in step.prompt_html and item.prompt.text in step.prompt_html
    item.prompt.refresh_from_db()
    assert item.prompt.html == step.prompt_html and item.prompt.html_version > 0


@on_postgresql
def test_the_one_call_answer_leaves_the_unusual_cases_to_the_general_path():
    round_ = lab_round(prompts=3, baselines=("alpaca",), items_per_worker=3)
    author = session_start(round_=round_, kind=Annotator.Kind.AUTHOR, name="me")
    worker = session_start(round_=round_, kind=Annotator.Kind.CROWD, name="w")
    authors_item, workers_item = (assignment_current(session=s) for s in (author, worker))
    cases = {
        "an author": (author.token, authors_item.token, "A"),
        "no such choice": (worker.token, workers_item.token, "X"),
        "someone else's item": (worker.token, authors_item.token, "A"),
        "no such session": ("nobody", workers_item.token, "A"),
    }
    for session_token, token, choice in cases.values():
        assert (
            answer_and_next(session_token=session_token, assignment_token=token,
                            shown_choice=choice) is None
        )  # fmt: skip
    assert not Annotation.objects.exists()
    assert Assignment.objects.filter(status=Assignment.Status.LEASED).count() == 2


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_racing_workers_never_overfill_an_item_or_get_one_twice():
    round_ = lab_round(prompts=30, baselines=("alpaca", "davinci"), annotators_per_item=3,
                        items_per_worker=12)  # fmt: skip
    sessions = [session_start(round_=round_, kind="crowd", name=f"w{n}") for n in range(16)]
    firsts = {s.token: assignment_current(session=s).token for s in sessions}
    errors: list[BaseException] = []

    def work(session_token: str, token: str) -> None:
        try:
            while True:
                step = answer_and_next(
                    session_token=session_token, assignment_token=token, shown_choice="A"
                )
                if step is None:
                    return
                token = step.assignment_token
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=pair) for pair in firsts.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    items = list(round_.items.values_list("taken", "completed"))
    answered = Counter(Annotation.objects.values_list("item_id", "annotator_id"))
    assert all(completed <= taken <= 3 for taken, completed in items)
    assert set(answered.values()) == {1}
    # 16 workers, 12 answers each, fill 180 of the 180 slots; the rest found the round full.
    assert Annotation.objects.count() == sum(completed for _, completed in items) == 180
