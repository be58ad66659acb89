import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import (
    Annotation,
    Annotator,
    LanguageModel,
    Project,
    Prompt,
    PromptSet,
    Response,
    Round,
)
from annotation.services.assignment import annotation_submit, assignment_current, session_start
from tests.factories import (
    make_model_with_responses,
    make_project,
    make_prompt_set,
    make_round,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def project(user):
    return make_project("lab", user)


@pytest.fixture
def client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def jsonl(*records) -> bytes:
    return "\n".join(json.dumps(record) for record in records).encode()


def upload(content: bytes, name: str = "prompts.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/jsonl")


def annotate(item, *, kind: str, name: str, choice: str = Annotation.Choice.CANDIDATE):
    annotator, _ = Annotator.objects.get_or_create(
        project_id=item.round.project_id, kind=kind, name=name
    )
    return Annotation.objects.create(
        item=item,
        annotator=annotator,
        choice=choice,
        shown_choice=Annotation.shown_for(choice, item.candidate_first),
        candidate_first=item.candidate_first,
        seconds_spent=12.5,
    )


# ---------------------------------------------------------------- authentication and scope


def test_it_authenticates_with_a_token(user, project):
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.get("/api/projects/")

    assert response.status_code == 200
    assert [p["name"] for p in response.json()["results"]] == ["lab"]


@pytest.mark.parametrize(
    "url", ["/api/projects/", "/api/prompt-sets/", "/api/models/", "/api/rounds/"]
)
def test_it_refuses_unauthenticated_requests(project, url):
    response = APIClient().get(url)

    assert response.status_code == 401


def test_it_refuses_a_wrong_token(project):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert client.get("/api/projects/").status_code == 401


def test_it_makes_the_creator_a_member_of_a_new_project(client, user):
    response = client.post("/api/projects/", {"name": "new lab"}, format="json")

    assert response.status_code == 201
    assert list(Project.objects.get(name="new lab").members.all()) == [user]


def test_it_hides_the_objects_of_projects_the_user_is_not_in(client, project):
    other_round = make_round(project=make_project("other team"))
    annotation = annotate(other_round.items.first(), kind=Annotator.Kind.CROWD, name="w1")
    other_model = other_round.candidate

    assert client.get("/api/projects/").json()["count"] == 1
    assert client.get("/api/rounds/").json()["count"] == 0
    assert client.get("/api/models/").json()["count"] == 0
    assert client.get("/api/responses/").json()["count"] == 0
    assert client.get("/api/annotations/").json()["count"] == 0
    assert client.get(f"/api/projects/{other_round.project_id}/").status_code == 404
    assert client.get(f"/api/rounds/{other_round.pk}/").status_code == 404
    assert client.get(f"/api/prompt-sets/{other_round.prompt_set_id}/").status_code == 404
    assert client.get(f"/api/prompt-sets/{other_round.prompt_set_id}/prompts/").status_code == 404
    assert client.get(f"/api/models/{other_model.pk}/").status_code == 404
    assert client.get(f"/api/annotations/{annotation.pk}/").status_code == 404
    assert client.delete(f"/api/models/{other_model.pk}/").status_code == 404
    assert LanguageModel.objects.filter(pk=other_model.pk).exists()


def test_it_refuses_to_create_in_a_project_the_user_is_not_in(client, project):
    other = make_project("other team")
    other_set = make_prompt_set(other, 3)
    other_candidate = make_model_with_responses(other, other_set, "theirs")
    other_baseline = make_model_with_responses(other, other_set, "their baseline")

    model = client.post("/api/models/", {"project": other.pk, "name": "x"}, format="json")
    imported = client.post(
        "/api/prompt-sets/import/",
        {"project": other.pk, "name": "sneaky", "file": upload(jsonl({"prompt": "Hi?"}))},
        format="multipart",
    )
    round_ = client.post(
        "/api/rounds/",
        {
            "project": other.pk,
            "prompt_set": other_set.pk,
            "candidate": other_candidate.pk,
            "baselines": [other_baseline.pk],
        },
        format="json",
    )

    assert model.status_code == 400
    assert "project" in model.json()
    assert imported.status_code == 400
    assert imported.json()["field"] == "project"
    assert round_.status_code == 400
    assert set(round_.json()) == {"project", "prompt_set", "candidate", "baselines"}
    assert not LanguageModel.objects.filter(name="x").exists()
    assert not PromptSet.objects.filter(name="sneaky").exists()
    assert not Round.objects.exists()


# ---------------------------------------------------------------- prompt sets and responses


def test_it_imports_prompts_from_an_uploaded_file(client, project):
    content = jsonl(
        {"id": "p1", "prompt": "What is a llama?"},
        {"id": "p2", "conversations": ["Write a haiku.", "Thanks!"]},
    )

    response = client.post(
        "/api/prompt-sets/import/",
        {"project": project.pk, "name": "lima test", "file": upload(content)},
        format="multipart",
    )

    assert response.status_code == 201
    prompt_set = PromptSet.objects.get(project=project, name="lima test")
    assert response.json() == {"prompt_set": prompt_set.pk, "created": 2, "skipped": 0}
    assert list(prompt_set.prompts.values_list("external_id", "text")) == [
        ("p1", "What is a llama?"),
        ("p2", "Write a haiku."),
    ]
    listed = client.get(f"/api/prompt-sets/?project={project.pk}").json()["results"]
    assert [(s["name"], s["prompt_count"]) for s in listed] == [("lima test", 2)]
    prompts = client.get(f"/api/prompt-sets/{prompt_set.pk}/prompts/?limit=1").json()
    assert prompts["count"] == 2
    assert [p["external_id"] for p in prompts["results"]] == ["p1"]


def test_it_names_the_line_and_field_of_a_bad_prompt_file_and_writes_nothing(client, project):
    content = jsonl({"prompt": "Fine?"}, {"prompt": "Also fine?"}, {"prompt": 42})

    response = client.post(
        "/api/prompt-sets/import/",
        {"project": project.pk, "name": "broken", "file": upload(content, "bad.jsonl")},
        format="multipart",
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["file"], body["line"], body["field"]) == ("bad.jsonl", 3, "prompt")
    assert "line 3" in body["detail"]
    assert "expected text" in body["detail"]
    assert not PromptSet.objects.exists()
    assert not Prompt.objects.exists()


def test_it_imports_responses_and_filters_them_by_model(client, project):
    prompt_set = make_prompt_set(project, 2)
    content = jsonl(
        {"prompt_id": "0", "output": "Zero.", "model": "alpha"},
        {"prompt_id": "1", "output": "One.", "model": "alpha"},
        {"prompt_id": "0", "output": "Nought.", "model": "beta"},
    )

    response = client.post(
        "/api/responses/import/",
        {"project": project.pk, "prompt_set": prompt_set.name, "file": upload(content)},
        format="multipart",
    )

    assert response.status_code == 201
    assert response.json() == {"created": 3, "skipped": 0, "models_created": ["alpha", "beta"]}
    beta = LanguageModel.objects.get(project=project, name="beta")
    assert list(Response.objects.filter(model=beta).values_list("text", flat=True)) == ["Nought."]
    listed = client.get(f"/api/responses/?model={beta.pk}&prompt_set={prompt_set.pk}").json()
    assert [(r["model_name"], r["prompt_external_id"]) for r in listed["results"]] == [
        ("beta", "0")
    ]


def test_it_refuses_responses_to_a_missing_prompt_and_writes_nothing(client, project):
    prompt_set = make_prompt_set(project, 2)
    content = jsonl({"prompt_id": "0", "output": "Zero."}, {"prompt_id": "9", "output": "?"})

    response = client.post(
        "/api/responses/import/",
        {
            "project": project.pk,
            "prompt_set": prompt_set.name,
            "model": "alpha",
            "file": upload(content, "out.jsonl"),
        },
        format="multipart",
    )

    assert response.status_code == 400
    assert (response.json()["line"], response.json()["field"]) == (2, "prompt_id")
    assert not Response.objects.exists()
    assert not LanguageModel.objects.exists()


# ---------------------------------------------------------------- models


@pytest.mark.parametrize(
    "config",
    [
        {"api_key": "sk-live-123"},
        {"API_KEY": "sk-live-123"},
        {"apiKey": "sk-live-123"},
        {"headers": {"X-Api-Key": "sk-live-123"}},
        {"hf_token": "hf_abc"},
        {"client_secret": "s"},
        {"db": [{"password": "p"}]},
        {"api_key_env": "sk-live-123"},
    ],
)
def test_it_refuses_a_model_config_that_holds_a_secret(client, project, config):
    response = client.post(
        "/api/models/",
        {"project": project.pk, "name": "gpt", "backend": "openai", "config": config},
        format="json",
    )

    assert response.status_code == 400
    assert "environment variable" in response.json()["config"][0]
    assert not LanguageModel.objects.exists()


def test_it_keeps_sampling_settings_and_the_names_of_key_variables(client, project):
    config = {
        "model": "gpt-4",
        "base_url": "https://api.example.org/v1",
        "api_key_env": "TEST_API_KEY",
        "sampling": {"max_tokens": 512, "temperature": 0.7},
    }

    response = client.post(
        "/api/models/",
        {"project": project.pk, "name": "gpt", "backend": "openai", "config": config},
        format="json",
    )

    assert response.status_code == 201
    assert LanguageModel.objects.get(name="gpt").config == config


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"base_url": "https://api.example.org/v1"}, "'model' is required"),
        ({"model": "gpt-4", "tokenizer": "llama", "top_k": 40}, "unknown key 'tokenizer', 'top_k'"),
        ({"model": "gpt-4", "sampling": {"top_k": 40}}, "Unknown sampling setting 'top_k'"),
    ],
)
def test_it_refuses_a_model_that_its_backend_would_refuse_and_stores_nothing(
    client, project, config, named
):
    response = client.post(
        "/api/models/",
        {"project": project.pk, "name": "gpt", "backend": "openai", "config": config},
        format="json",
    )

    assert response.status_code == 400
    assert named in response.json()["config"][0]
    assert not LanguageModel.objects.filter(name="gpt").exists()


def test_it_checks_an_updated_config_with_its_backend_too(client, project):
    created = client.post(
        "/api/models/",
        {"project": project.pk, "name": "gpt", "backend": "openai", "config": {"model": "gpt-4"}},
        format="json",
    )
    assert created.status_code == 201

    refused = client.patch(
        f"/api/models/{created.json()['id']}/", {"config": {"modle": "gpt-4"}}, format="json"
    )

    assert refused.status_code == 400
    assert LanguageModel.objects.get(name="gpt").config == {"model": "gpt-4"}


def test_it_refuses_to_delete_a_model_that_a_round_compares(client, project):
    round_ = make_round(project=project)

    response = client.delete(f"/api/models/{round_.candidate_id}/")

    assert response.status_code == 409
    assert LanguageModel.objects.filter(pk=round_.candidate_id).exists()


# ---------------------------------------------------------------- rounds


def test_it_creates_an_absolute_round_when_a_scale_is_given(client, project):
    prompt_set = make_prompt_set(project, 3)
    lima = make_model_with_responses(project, prompt_set, "lima")
    alpaca = make_model_with_responses(project, prompt_set, "alpaca")
    body = {"project": project.pk, "prompt_set": prompt_set.pk, "candidate": lima.pk}
    response = client.post(
        "/api/rounds/",
        {**body, "baselines": [alpaca.pk], "scale": "helpfulness_1_6", "shared_items": 0},
        format="json",
    )
    assert response.status_code == 201, response.json()
    made = response.json()
    assert (made["kind"], made["scale"], made["item_count"]) == ("absolute", "helpfulness_1_6", 6)
    assert [(p["baseline"], p["items"]) for p in made["progress"]] == [("alpaca", 3), ("lima", 3)]
    refused = client.post("/api/rounds/", {**body, "kind": "absolute"}, format="json")
    assert refused.status_code == 400
    assert "An absolute round needs a scale" in refused.json()["detail"]
    assert Round.objects.count() == 1


def test_it_creates_a_round_and_returns_its_crowd_link(client, project, settings):
    settings.PUBLIC_BASE_URL = "https://eval.example.org"
    prompt_set = make_prompt_set(project, 6)
    candidate = make_model_with_responses(project, prompt_set, "candidate")
    baseline = make_model_with_responses(project, prompt_set, "baseline")

    response = client.post(
        "/api/rounds/",
        {
            "project": project.pk,
            "prompt_set": prompt_set.pk,
            "candidate": candidate.pk,
            "baselines": [baseline.pk],
            "annotators_per_item": 3,
            "shared_items": 2,
            "items_per_worker": 4,
        },
        format="json",
    )

    assert response.status_code == 201
    round_ = Round.objects.get()
    body = response.json()
    assert body["crowd_link"] == f"https://eval.example.org/c/{round_.crowd_token}/"
    assert body["item_count"] == 6
    assert body["progress"] == [
        {
            "baseline": "baseline",
            "items": 6,
            "annotations_collected": 0,
            "annotations_needed": 18,
        }
    ]
    assert (round_.annotators_per_item, round_.shared_items, round_.items_per_worker) == (3, 2, 4)
    assert round_.items.filter(is_shared=True).count() == 2
    assert round_.text_format == body["text_format"] == "markdown"


def test_it_creates_a_plain_text_round_and_names_an_unknown_format(client, project):
    prompt_set = make_prompt_set(project, 2)
    candidate = make_model_with_responses(project, prompt_set, "candidate")
    baseline = make_model_with_responses(project, prompt_set, "baseline")
    body = {
        "project": project.pk,
        "prompt_set": prompt_set.pk,
        "candidate": candidate.pk,
        "baselines": [baseline.pk],
    }
    refused = client.post("/api/rounds/", {**body, "text_format": "html"}, format="json")
    assert refused.status_code == 400 and "text_format" in refused.json()
    assert not Round.objects.exists()
    made = client.post("/api/rounds/", {**body, "text_format": "plain"}, format="json")
    assert made.status_code == 201 and made.json()["text_format"] == "plain"
    assert Round.objects.get().text_format == Round.TextFormat.PLAIN


def test_it_refuses_a_round_whose_candidate_is_also_a_baseline(client, project):
    prompt_set = make_prompt_set(project, 3)
    candidate = make_model_with_responses(project, prompt_set, "candidate")

    response = client.post(
        "/api/rounds/",
        {
            "project": project.pk,
            "prompt_set": prompt_set.pk,
            "candidate": candidate.pk,
            "baselines": [candidate.pk],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "'candidate' cannot be both the candidate and a baseline."}
    assert not Round.objects.exists()


def answer(round_, *, kind: str, name: str, items: int = 1, user=None) -> list[Annotation]:
    """Annotate the way a worker does: start a session, take the next item, answer it."""
    session = session_start(round_=round_, kind=kind, name=name, user=user)
    answers = []
    for _ in range(items):
        assignment = assignment_current(session=session)
        answers.append(
            annotation_submit(session=session, assignment_token=assignment.token, shown_choice="A")
        )
    return answers


def test_it_counts_round_progress_from_crowd_annotations_only(client, user, project):
    round_ = make_round(
        project=project,
        prompts=4,
        baselines=("b1", "b2"),
        annotators_per_item=2,
        shared_items=1,
        items_per_worker=8,
    )
    # Every worker sees the shared item first: three crowd answers there count as two.
    for worker in ("w1", "w2", "w3"):
        answer(round_, kind=Annotator.Kind.CROWD, name=worker)
    (extra,) = answer(round_, kind=Annotator.Kind.CROWD, name="w1")
    answer(round_, kind=Annotator.Kind.AUTHOR, name="researcher", items=2, user=user)
    shared = round_.items.get(is_shared=True)

    response = client.get(f"/api/rounds/{round_.pk}/")

    assert response.status_code == 200
    assert response.json()["item_count"] == 8
    progress = {entry["baseline"]: entry for entry in response.json()["progress"]}
    expected = {"b1": 0, "b2": 0}
    expected[shared.baseline.name] += 2
    expected[extra.item.baseline.name] += 1
    assert {name: entry["annotations_collected"] for name, entry in progress.items()} == expected
    assert {name: entry["items"] for name, entry in progress.items()} == {"b1": 4, "b2": 4}
    assert {name: entry["annotations_needed"] for name, entry in progress.items()} == {
        "b1": 8,
        "b2": 8,
    }
    assert Annotation.objects.filter(annotator__kind=Annotator.Kind.AUTHOR).count() == 2


def test_it_lists_rounds_in_a_fixed_number_of_queries(client, user, django_assert_max_num_queries):
    for number in range(3):
        make_round(project=make_project(f"team {number}", user))

    with django_assert_max_num_queries(4):
        response = client.get("/api/rounds/")

    assert response.json()["count"] == 3
    assert all(r["item_count"] == 10 for r in response.json()["results"])


# ---------------------------------------------------------------- annotations


def test_it_lists_a_rounds_annotations_in_a_fixed_number_of_queries(
    client, user, project, django_assert_max_num_queries
):
    round_ = make_round(project=project, prompts=50)
    for item in round_.items.all():
        annotate(item, kind=Annotator.Kind.CROWD, name=f"worker {item.position}")
    other_round = make_round(project=make_project("second", user), prompts=2)
    annotate(other_round.items.first(), kind=Annotator.Kind.CROWD, name="elsewhere")

    with django_assert_max_num_queries(2):
        response = client.get(f"/api/annotations/?round={round_.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 50
    first = body["results"][0]
    assert first["round"] == round_.pk
    assert first["baseline_name"] == "baseline"
    assert first["annotator_kind"] == "crowd"
    assert first["choice"] == "candidate"
    assert first["shown_choice"] == ("A" if first["candidate_first"] else "B")
    assert {a["prompt_external_id"] for a in body["results"]} == {str(i) for i in range(50)}


def test_it_refuses_a_filter_that_is_not_an_id(client, project):
    response = client.get("/api/annotations/?round=latest")

    assert response.status_code == 400
    assert "round" in response.json()


# ---------------------------------------------------------------- schema


def test_it_serves_an_openapi_schema_that_describes_rounds(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/rounds/" in response.content
    assert b"/api/prompt-sets/import/" in response.content


def test_list_pages_are_capped_and_a_huge_limit_or_offset_is_a_clear_400(client, project):
    prompt_set = make_prompt_set(project, 1100)
    make_model_with_responses(project, prompt_set, "m")
    page = client.get("/api/responses/", {"limit": 10**9})
    assert page.status_code == 200 and len(page.json()["results"]) == 1000
    assert page.json()["count"] == 1100
    for param in ("limit", "offset"):
        refused = client.get("/api/responses/", {param: 2**70})
        assert refused.status_code == 400 and param in refused.json()


def test_the_two_launch_bodies_have_their_own_names_in_the_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    assert "LaunchInput" not in components and "LaunchInputRequest" not in components

    def body(path: str) -> str:
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        return content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]

    assert body("/api/rounds/{round_id}/generation/") == "GenerationLaunchInputRequest"
    assert body("/api/training-runs/") == "TrainingLaunchInputRequest"
    assert "base_model" in components["TrainingLaunchInputRequest"]["properties"]
    assert "base_model" not in components["GenerationLaunchInputRequest"]["properties"]


def test_a_filter_or_page_parameter_given_twice_is_a_clear_400(client, project):
    for query in ("?project=1&project=2", "?limit=1&limit=2", "?offset=0&offset=1"):
        answer = client.get("/api/rounds/" + query)
        assert answer.status_code == 400, query
        assert "Give this parameter once." in str(answer.json())


def test_a_body_that_is_not_json_is_refused_with_415_outside_the_uploads(client, project):
    answer = client.post("/api/projects/", {"name": "form-made"}, format="multipart")
    assert answer.status_code == 415
    assert not Project.objects.filter(name="form-made").exists()
