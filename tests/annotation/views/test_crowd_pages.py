import re

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from annotation.models import Annotation, Annotator, Assignment, Prompt, Response, WorkerSession
from annotation.services.assignment import crowd_session_start
from annotation.services.completion import completion_code_for
from annotation.services.display import text_shown
from annotation.views import crowd as crowd_views
from annotation.views.crowd import BROWSER_COOKIE_SALT
from tests.factories import make_round
from tests.support.html_text import parsed

pytestmark = pytest.mark.django_db

HOSTILE_OUTPUT = (
    "Here you go <script>document.title='owned'</script>\n\n"
    '<img src="x" onerror="alert(1)"> [click me](javascript:alert(2)) '
    '<a href="https://example.org" onclick="alert(3)">ok</a>\n\n'
    "```python\nprint('<b>not bold</b>')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"
)


@pytest.fixture
def round_():
    return make_round(prompts=4, baselines=("gpt-4-secret-baseline",), items_per_worker=4)


def start(client, round_, worker="worker-1"):
    response = client.post(
        reverse("crowd-landing", args=[round_.crowd_token]), {"worker_id": worker}
    )
    assert response.status_code == 302
    return response["Location"]


def assignment_token(html: str) -> str:
    return re.search(r'name="assignment" value="([^"]+)"', html).group(1)


def test_it_prefills_the_worker_id_from_prolific(client, round_):
    page = client.get(reverse("crowd-landing", args=[round_.crowd_token]) + "?PROLIFIC_PID=abc123")
    html = page.content.decode()
    assert 'value="abc123"' in html
    assert "super-intelligent AI assistant" in html
    assert "empathy" in html


def test_it_asks_for_a_worker_id_when_none_is_given(client, round_):
    page = client.post(reverse("crowd-landing", args=[round_.crowd_token]), {"worker_id": " "})
    assert page.status_code == 400
    assert "Enter your worker id" in page.content.decode()
    assert WorkerSession.objects.count() == 0


def test_it_never_shows_a_crowd_worker_which_model_wrote_an_answer(client):
    names = ["lima-65b-secret", "gpt-4-secret"]
    round_ = make_round(prompts=4, candidate=names[0], baselines=(names[1],), items_per_worker=4)
    work_url = start(client, round_)
    for _ in range(4):
        page = client.get(work_url)
        html = page.content.decode()
        headers = " ".join(f"{k}: {v}" for k, v in page.headers.items())
        token = assignment_token(html)
        answer = client.post(work_url + "answer/", {"assignment": token, "choice": "A"})
        partial = client.post(
            work_url + "answer/",
            {"assignment": token, "choice": "A"},
            headers={"HX-Request": "true"},
        )
        seen = [html, headers, work_url, answer["Location"], partial.content.decode()]
        for name in names:
            assert not any(name in text for text in seen)
        assert "Answer A" in html and "Answer B" in html
    assert Annotation.objects.count() == 4


def test_it_swaps_in_the_next_item_for_htmx_and_counts_progress(client, round_):
    work_url = start(client, round_)
    html = client.get(work_url).content.decode()
    assert "1 of 4" in html
    partial = client.post(
        work_url + "answer/",
        {"assignment": assignment_token(html), "choice": "N"},
        headers={"HX-Request": "true"},
    )
    body = partial.content.decode()
    assert partial.status_code == 200
    assert "<html" not in body
    assert 'id="task"' in body and "2 of 4" in body


def test_it_shows_the_completion_code_at_the_end(client, round_):
    work_url = start(client, round_)
    for _ in range(4):
        html = client.get(work_url).content.decode()
        client.post(work_url + "answer/", {"assignment": assignment_token(html), "choice": "B"})
    html = client.get(work_url).content.decode()
    assert completion_code_for(round_, "worker-1") in html
    assert "Thank you" in html


def test_it_records_a_double_click_once(client, round_):
    work_url = start(client, round_)
    token = assignment_token(client.get(work_url).content.decode())
    for _ in range(3):
        client.post(work_url + "answer/", {"assignment": token, "choice": "A"})
    assert Annotation.objects.count() == 1


def test_it_refuses_an_answer_for_someone_elses_item_with_a_clear_message(client, round_):
    owner_url = start(client, round_, "owner")
    token = assignment_token(client.get(owner_url).content.decode())
    intruder_url = start(client, round_, "intruder")
    refused = client.post(intruder_url + "answer/", {"assignment": token, "choice": "A"})
    assert refused.status_code == 409
    assert "not assigned to you" in refused.content.decode()
    assert Annotation.objects.count() == 0


def test_it_shows_html_in_model_output_as_text_and_still_renders_markdown(client, round_):
    Response.objects.update(text=HOSTILE_OUTPUT, html_version=0)
    html = client.get(start(client, round_)).content.decode()
    task = parsed(html[html.index('id="task"') :])
    tags = {tag for tag, _ in task.tags}
    assert not tags & {"script", "img", "style", "iframe"}
    assert all(not name.startswith("on") for _, attrs in task.tags for name in attrs)
    links = [attrs["href"] for tag, attrs in task.tags if tag == "a" and "href" in attrs]
    assert "https://example.org" not in links  # Raw HTML, so shown, not made a link.
    assert all(not (href or "").startswith("javascript") for href in links)
    assert {"table", "pre", "code"} <= tags
    text = "".join(task.text)
    for written in (
        "<script>document.title='owned'</script>",
        '<img src="x" onerror="alert(1)">',
        "[click me](javascript:alert(2))",
        '<a href="https://example.org" onclick="alert(3)">ok</a>',
        "print('<b>not bold</b>')",
    ):
        assert written in text


def test_it_fetches_and_answers_an_item_in_a_handful_of_queries(
    client, round_, django_assert_max_num_queries
):
    # Each text is rendered and stored the first time it is shown; count the steady state.
    for text_of in [*Response.objects.all(), *Prompt.objects.all()]:
        text_shown(text_of, round_.text_format)
    work_url = start(client, round_)
    client.get(work_url)
    with django_assert_max_num_queries(12):
        html = client.get(work_url).content.decode()
    with django_assert_max_num_queries(20):
        client.post(
            work_url + "answer/",
            {"assignment": assignment_token(html), "choice": "A"},
            headers={"HX-Request": "true"},
        )


def test_it_lets_a_researcher_annotate_as_an_author(client, round_):
    from tests.factories import make_user

    user = make_user()
    round_.project.members.add(user)
    client.force_login(user)
    response = client.post(reverse("round-annotate", args=[round_.pk]))
    html = client.get(response["Location"]).content.decode()
    client.post(
        response["Location"] + "answer/", {"assignment": assignment_token(html), "choice": "N"}
    )
    annotation = Annotation.objects.get()
    assert annotation.annotator.kind == Annotator.Kind.AUTHOR
    assert annotation.annotator.name == user.username


def test_it_asks_workers_to_wait_while_responses_are_still_being_generated(client):
    round_ = make_round(prompts=4, items_per_worker=4)
    baseline = round_.baselines.get()
    baseline.backend = "transformers"
    baseline.save()
    round_.response_keys = {str(baseline.pk): "a1b2c3"}  # a launch is generating it
    round_.save()
    round_.items.filter(position__gte=2).delete()
    work_url = start(client, round_)
    for _ in range(2):
        html = client.get(work_url).content.decode()
        client.post(work_url + "answer/", {"assignment": assignment_token(html), "choice": "A"})
    html = client.get(work_url).content.decode()
    assert "More items are on their way" in html
    assert 'id="completion-code"' not in html


def test_it_ends_the_task_when_missing_responses_will_never_come(client):
    round_ = make_round(prompts=4, items_per_worker=4)
    round_.items.filter(position__gte=2).delete()
    work_url = start(client, round_)
    for _ in range(2):
        html = client.get(work_url).content.decode()
        client.post(work_url + "answer/", {"assignment": assignment_token(html), "choice": "A"})
    assert completion_code_for(round_, "worker-1") in client.get(work_url).content.decode()


def test_it_sends_an_author_back_to_the_round_instead_of_giving_a_completion_code(client, round_):
    from tests.factories import make_user

    user = make_user()
    round_.project.members.add(user)
    client.force_login(user)
    work_url = client.post(reverse("round-annotate", args=[round_.pk]))["Location"]
    for _ in range(4):
        html = client.get(work_url).content.decode()
        client.post(work_url + "answer/", {"assignment": assignment_token(html), "choice": "N"})
    html = client.get(work_url).content.decode()
    assert reverse("round-detail", args=[round_.pk]) in html
    assert 'id="completion-code"' not in html


def test_it_ends_the_task_when_a_generating_model_stays_on_its_imported_answers(client):
    round_ = make_round(prompts=4, items_per_worker=4)
    baseline = round_.baselines.get()
    baseline.backend = "transformers"
    baseline.save()
    round_.items.filter(position__gte=2).delete()
    work_url = start(client, round_)
    for _ in range(2):
        html = client.get(work_url).content.decode()
        client.post(work_url + "answer/", {"assignment": assignment_token(html), "choice": "A"})
    assert completion_code_for(round_, "worker-1") in client.get(work_url).content.decode()


def test_it_asks_early_workers_to_wait_for_a_round_not_yet_generated(client):
    round_ = make_round(prompts=2, items_per_worker=2)
    round_.candidate.backend = "transformers"
    round_.candidate.save()
    round_.items.all().delete()
    html = client.get(start(client, round_)).content.decode()
    assert "More items are on their way" in html


def test_a_worker_who_arrives_after_the_round_is_full_gets_no_work_and_no_code(client, round_):
    round_.items_per_worker = 10
    round_.save()
    work_url = start(client, round_, "early")
    for _ in range(4):
        html = client.get(work_url).content.decode()
        client.post(work_url + "answer/", {"assignment": assignment_token(html), "choice": "A"})
    late = Client()
    html = late.get(start(late, round_, "late")).content.decode()
    assert "No work available" in html
    assert 'id="completion-code"' not in html
    assert completion_code_for(round_, "late") not in html
    assert WorkerSession.objects.get(annotator__name="late").completion_code == ""


def test_two_workers_of_a_round_get_different_codes(client, round_):
    round_.annotators_per_item = 2
    round_.save()
    codes = []
    for name in ("w1", "w2"):
        browser = Client()
        work_url = start(browser, round_, name)
        for _ in range(4):
            html = browser.get(work_url).content.decode()
            browser.post(
                work_url + "answer/", {"assignment": assignment_token(html), "choice": "A"}
            )
        html = browser.get(work_url).content.decode()
        codes.append(re.search(r'id="completion-code">([^<]+)<', html).group(1))
    assert codes == [completion_code_for(round_, "w1"), completion_code_for(round_, "w2")]
    assert codes[0] != codes[1]


def test_another_browser_cannot_continue_a_workers_session_but_the_same_one_resumes(round_):
    owner, intruder = Client(), Client()
    work_url = start(owner, round_, "prolific-123")
    landing = reverse("crowd-landing", args=[round_.crowd_token])
    refused = intruder.post(landing, {"worker_id": "prolific-123"})
    assert refused.status_code == 400
    assert "already started this study in another browser" in refused.content.decode()
    assert start(owner, round_, "prolific-123") == work_url  # A reload resumes.
    assert WorkerSession.objects.count() == 1


def test_two_worker_ids_started_in_one_browser_both_resume_and_stay_refused_elsewhere(round_):
    lab_computer, elsewhere = Client(), Client()
    first = start(lab_computer, round_, "prolific-1")
    second = start(lab_computer, round_, "prolific-2")
    assert first != second
    assert start(lab_computer, round_, "prolific-1") == first
    assert start(lab_computer, round_, "prolific-2") == second
    landing = reverse("crowd-landing", args=[round_.crowd_token])
    for worker in ("prolific-1", "prolific-2"):
        refused = elsewhere.post(landing, {"worker_id": worker})
        assert refused.status_code == 400
        assert "already started this study in another browser" in refused.content.decode()
    assert WorkerSession.objects.count() == 2


def test_a_browser_keeps_the_keys_of_its_most_recent_worker_ids_only(round_, monkeypatch):
    monkeypatch.setattr(crowd_views, "BROWSER_KEYS_KEPT", 2)
    browser = Client()
    work_urls = {worker: start(browser, round_, worker) for worker in ("w1", "w2")}
    assert start(browser, round_, "w1") == work_urls["w1"]  # Now w2 is the least recent.
    start(browser, round_, "w3")
    landing = reverse("crowd-landing", args=[round_.crowd_token])
    assert browser.post(landing, {"worker_id": "w2"}).status_code == 400
    assert start(browser, round_, "w1") == work_urls["w1"]


def test_a_finished_worker_is_sent_to_the_studys_completion_url_with_their_code(client, round_):
    round_.completion_url = "https://app.prolific.com/submissions/complete?cc={code}"
    round_.save()
    work_url = start(client, round_)
    code = completion_code_for(round_, "worker-1")
    expected = f"https://app.prolific.com/submissions/complete?cc={code}"
    for number in range(4):
        token = assignment_token(client.get(work_url).content.decode())
        answered = client.post(
            work_url + "answer/",
            {"assignment": token, "choice": "A"},
            headers={"HX-Request": "true"},
        )
        if number < 3:
            assert "HX-Redirect" not in answered
    assert answered["HX-Redirect"] == expected
    html = client.get(work_url).content.decode()
    assert f'href="{expected}"' in html.replace("&amp;", "&")


RIGHT = {"task": "compare", "neither": "similar", "empathy": "asker"}


def test_a_screened_round_asks_about_the_instructions_first_with_a_second_attempt(client, round_):
    round_.screening = True
    round_.save()
    work_url = start(client, round_)
    gate = client.get(work_url)
    screening_url = reverse("crowd-screening", args=[work_url.split("/")[-2]])
    assert gate.status_code == 302 and gate["Location"] == screening_url
    assert "Before you start: three questions" in client.get(screening_url).content.decode()
    refused = client.post(work_url + "answer/", {"assignment": "x", "choice": "A"})
    assert refused["Location"] == screening_url  # No answers before the check.

    first = client.post(screening_url, {**RIGHT, "neither": "never"}).content.decode()
    assert "1 answer did not match the instructions" in first
    assert "You have 1 more attempt" in first and "neither answer is clearly better" in first
    passed = client.post(screening_url, RIGHT)
    practice_url = screening_url.replace("/screening/", "/practice/")
    assert passed["Location"] == practice_url
    assert client.get(work_url)["Location"] == practice_url  # Practice before the items.

    first_item = client.get(practice_url).content.decode()
    assert "Practice 1 of 2" in first_item and "capital of Australia" in first_item
    feedback = client.post(practice_url, {"number": "0", "choice": "A"}).content.decode()
    assert "Not quite." in feedback and "Answer A is wrong" in feedback
    assert 'href="?number=1"' in feedback
    second = client.post(practice_url, {"number": "1", "choice": "N"}).content.decode()
    assert "Right." in second and "Start the study" in second
    started = client.post(practice_url, {"finish": "1"})
    assert started["Location"] == work_url
    assert 'name="assignment"' in client.get(work_url).content.decode()
    assert not Annotation.objects.exists()  # Practice answers are not recorded.
    session = WorkerSession.objects.get()
    assert (session.screening_status, session.screening_attempts) == ("passed", 2)


def test_a_worker_who_fails_the_check_twice_is_sent_back_and_counted(client, round_):
    round_.screening = True
    round_.return_url = "https://app.prolific.com/submissions/complete?cc=SCREENED"
    round_.save()
    work_url = start(client, round_)
    screening_url = reverse("crowd-screening", args=[work_url.split("/")[-2]])
    client.post(screening_url, {"task": "write"})
    failed = client.post(screening_url, {"task": "write"}).content.decode()
    assert "this study cannot include you" in failed
    assert 'href="https://app.prolific.com/submissions/complete?cc=SCREENED"' in failed
    again = client.post(screening_url, RIGHT).content.decode()  # No third attempt.
    assert "this study cannot include you" in again
    assert WorkerSession.objects.get().screening_status == "failed"
    assert not Annotation.objects.exists()


def test_a_worker_is_stopped_politely_after_failing_the_attention_checks(client):
    from annotation.services.quality import round_add_attention_checks, round_set_quality

    round_ = make_round(prompts=6, items_per_worker=10)
    round_add_attention_checks(round_=round_, count=3)
    round_set_quality(round_=round_, check_rate=0.5, block_after_failed_checks=1)
    work_url = start(client, round_)
    for _ in range(10):
        html = client.get(work_url).content.decode()
        if 'name="assignment"' not in html:
            break
        token = assignment_token(html)
        item = Assignment.objects.select_related("item").get(token=token).item
        # The candidate's answer every time: wrong on each attention check.
        shown = "A" if item.candidate_first else "B"
        client.post(work_url + "answer/", {"assignment": token, "choice": shown})
    html = client.get(work_url).content.decode()
    assert 'id="blocked"' in html and "has no more items for you" in html
    assert 'id="completion-code"' not in html
    session = WorkerSession.objects.get()
    assert session.blocked_at is not None
    assert session.excluded_reason == "blocked: failed 1 attention checks"


def test_a_browser_with_the_previous_versions_cookie_still_resumes_its_session(round_):
    started = crowd_session_start(round_=round_, name="mid-study", browser_keys={})
    browser = Client()
    cookie = f"crowd_browser_{round_.pk}"
    # As the version before kept it: one bare key per round, in a Django signed cookie.
    browser.cookies[cookie] = signing.get_cookie_signer(salt=cookie + BROWSER_COOKIE_SALT).sign(
        started.new_browser_key
    )
    work_url = start(browser, round_, "mid-study")
    assert work_url.endswith(f"/c/w/{started.session.token}/")
    assert start(browser, round_, "mid-study") == work_url  # and again, from the new cookie
    assert start(browser, round_, "a-second-id") != work_url
    assert start(browser, round_, "mid-study") == work_url
