"""Imported conversations: both formats, checked whole before anything is written, idempotent,
labelled turn by turn by any author of the project, not continued."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from annotation.imports.records import ImportFailed
from annotation.models import Annotator, LanguageModel, Project
from inference.dialogue.imports import dialogues_import
from inference.dialogue.models import Dialogue, DialogueTurn
from inference.dialogue.selectors import dialogue_labels, dialogue_report
from inference.dialogue.services import (
    DialogueRefused,
    dialogue_finish,
    dialogue_label,
    dialogue_say,
)
from tests.factories import make_project, make_user
from tests.shared_data import LIMA_PROMPTS

pytestmark = pytest.mark.django_db


def jsonl(*records: object) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def lima_openings(count: int) -> list[str]:
    with LIMA_PROMPTS.open() as lines:
        return [json.loads(line)["prompt"] for line, _ in zip(lines, range(count), strict=False)]


@pytest.fixture
def project(user) -> Project:
    return make_project("conversations", user)


def test_the_lima_release_format_becomes_finished_dialogues_to_label(project, user):
    first, second = lima_openings(2)
    raw = jsonl(
        {"conversations": [first, "An answer.", "And more?", "More."], "source": "multi_turn"},
        {"conversations": [second, "Another answer."]},
    )
    summary = dialogues_import(project=project, raw=raw, file="lima.jsonl", model_name="LIMA")
    assert (summary.created, summary.answers, summary.skipped) == (2, 3, 0)
    assert summary.models_created == ["LIMA"]
    model = LanguageModel.objects.get(project=project, name="LIMA")
    assert model.backend == LanguageModel.Backend.IMPORTED
    dialogue = Dialogue.objects.get(turns_planned=2)
    assert (dialogue.origin, dialogue.status, dialogue.annotator) == ("imported", "done", None)
    assert dialogue.source == "lima.jsonl, line 1 (multi_turn)"
    assert list(dialogue.turns.values_list("role", "text")) == [
        ("user", first),
        ("assistant", "An answer."),
        ("user", "And more?"),
        ("assistant", "More."),
    ]
    again = dialogues_import(project=project, raw=raw, file="lima.jsonl", model_name="LIMA")
    assert (again.created, again.skipped) == (0, 2)
    assert Dialogue.objects.count() == 2


def test_openai_chat_files_keep_the_system_message_and_join_text_parts(project):
    raw = jsonl(
        {
            "model": "gpt-x",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
                },
                {"role": "assistant", "content": "Hello."},
            ],
        }
    )  # fmt: skip
    dialogues_import(project=project, raw=raw, file="chat.jsonl")
    dialogue = Dialogue.objects.get(model__name="gpt-x")
    assert dialogue.system == "Be brief."
    assert dialogue.turns.get(index=0).text == "Hi there"


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"conversations": ["only the question"]}, "conversations", "needs the person's message"),
        ({"conversations": ["q", "a", "q2"]}, "conversations", "ends with the person's message"),
        ({"conversations": ["q", "  "]}, "conversations[1]", "is empty"),
        ({"conversations": ["q", 3]}, "conversations[1]", "expected text, found int"),
        ({"conversations": "q a"}, "conversations", "expected a list of utterances"),
        ({"conversations": ["q", "a\u0000b"]}, "conversations[1]", "NUL character"),
        ({"conversations": ["q", "a"] * 51}, "conversations", "more than the 50"),
        (
            {"messages": [{"role": "assistant", "content": "a"}]},
            "messages[0].role",
            "expected role 'user' first",
        ),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "q"}]},
            "messages[1].role",
            "expected role 'assistant' after the person's message",
        ),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                          {"role": "system", "content": "s"}]},
            "messages[2].role",
            "a system message may only come first",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0]",
            "only text parts",
        ),
        ({"messages": [{"role": "user", "content": "q"}, "a"]}, "messages[1]", "an object"),
        ({"turns": ["q", "a"]}, "", "expected 'conversations'"),
        ({"conversations": ["q", "a"], "source": 7}, "source", "expected text"),
    ],
)  # fmt: skip
def test_a_bad_conversation_is_refused_by_line_and_field_and_nothing_is_written(
    project, record, field, message
):
    good = {"conversations": ["fine", "answer"]}
    raw = jsonl(good, good | {"source": "second"}, record)
    with pytest.raises(ImportFailed) as refused:
        dialogues_import(project=project, raw=raw, file="bad.jsonl", model_name="m")
    assert (refused.value.file, refused.value.line, refused.value.field) == ("bad.jsonl", 3, field)
    assert message in refused.value.message
    assert not Dialogue.objects.exists() and not LanguageModel.objects.exists()


def test_each_conversation_names_its_model_or_the_file_does(project):
    raw = jsonl({"conversations": ["q", "a"], "model": "one"}, {"conversations": ["q2", "a"]})
    with pytest.raises(ImportFailed, match="line 2: field 'model': missing"):
        dialogues_import(project=project, raw=raw, file="f.jsonl")
    twice = jsonl({"conversations": ["q", "a"]}, {"conversations": ["q", "a"]})
    with pytest.raises(ImportFailed, match="line 2: the same conversation of 'm' again"):
        dialogues_import(project=project, raw=twice, file="f.jsonl", model_name="m")
    # The file's model wins over a record's.
    dialogues_import(project=project, raw=raw, file="f.jsonl", model_name="m")
    assert set(Dialogue.objects.values_list("model__name", flat=True)) == {"m"}


def test_any_author_labels_an_imported_conversation_which_is_not_continued(project, user):
    dialogues_import(
        project=project,
        raw=jsonl({"conversations": ["q", "a1", "q2", "a2"]}),
        file="f.jsonl",
        model_name="m",
    )
    dialogue = Dialogue.objects.get()
    colleague = make_user("colleague")
    project.members.add(colleague)
    dialogue_label(dialogue=dialogue, number=1, label="pass", by=user)
    dialogue_label(dialogue=dialogue, number=2, label="excellent", by=user)
    dialogue_label(dialogue=dialogue, number=2, label="fail", by=colleague)
    mine = Annotator.objects.get(name=user.username)
    theirs = Annotator.objects.get(name="colleague")
    assert dialogue_labels(dialogue, mine) == {1: "pass", 2: "excellent"}
    assert dialogue_labels(dialogue, theirs) == {2: "fail"}
    (row,), _ = dialogue_report(project.pk)
    assert (row.dialogues, row.answers, row.fails) == (1, 3, 1)
    assert row.by_turn == {1: (1, 0), 2: (2, 1)}
    with pytest.raises(DialogueRefused, match="labelled, not continued"):
        dialogue_say(dialogue=dialogue, text="more", by=user)
    with pytest.raises(DialogueRefused, match="labelled, not continued"):
        dialogue_finish(dialogue=dialogue, by=user)
    assert DialogueTurn.objects.count() == 4


def test_the_command_imports_and_a_failed_import_leaves_no_project(tmp_path, db):
    path = tmp_path / "talks.jsonl"
    path.write_bytes(jsonl({"conversations": ["q", "a"]}, {"conversations": ["q"]}))
    with pytest.raises(CommandError, match=r"talks\.jsonl, line 2"):
        call_command("import_dialogues", str(path), "--project", "new one", "--model", "m")
    assert not Project.objects.filter(name="new one").exists()
    path.write_bytes(jsonl({"conversations": ["q", "a"]}))
    out = io.StringIO()
    call_command("import_dialogues", str(path), "--project", "new one", "--model", "m", stdout=out)
    assert "1 conversations added with 1 answers to label (0 already there)" in out.getvalue()
    assert "New models: m." in out.getvalue()


def test_the_api_and_the_page_import_and_refuse_with_the_line(client, project, user):
    api = APIClient()
    api.force_authenticate(user)
    upload = io.BytesIO(jsonl({"conversations": ["q", "a"]}, {"conversations": ["q", 1]}))
    upload.name = "talks.jsonl"
    refused = api.post(
        "/api/dialogues/import/",
        {"project": "conversations", "model": "m", "file": upload},
        format="multipart",
    )
    assert refused.status_code == 400
    assert refused.json() | {"detail": ""} == {
        "detail": "", "file": "talks.jsonl", "line": 2, "field": "conversations[1]",
    }  # fmt: skip
    upload = io.BytesIO(jsonl({"conversations": ["q", "a"]}))
    upload.name = "talks.jsonl"
    created = api.post(
        "/api/dialogues/import/",
        {"project": "conversations", "model": "m", "file": upload},
        format="multipart",
    )
    assert created.status_code == 201
    assert created.json() == {"created": 1, "skipped": 0, "answers": 1, "models_created": ["m"]}
    (listed,) = api.get("/api/dialogues/").json()
    assert (listed["origin"], listed["annotator"], listed["labels"]) == ("imported", None, {})

    client.force_login(user)
    upload = io.BytesIO(jsonl({"messages": [{"role": "user", "content": "hi"}]}))
    upload.name = "chat.jsonl"
    form = {"action": "import", "import-project": project.pk, "import-model": "m"}
    page = client.post("/inference/dialogues/", {**form, "import-file": upload})
    assert page.status_code == 200
    assert (
        "chat.jsonl, line 1: field &#x27;messages&#x27;: a conversation needs"
        in page.content.decode()
    )
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    upload = io.BytesIO(jsonl({"messages": chat}))
    upload.name = "chat.jsonl"
    page = client.post("/inference/dialogues/", {**form, "import-file": upload}, follow=True)
    assert "chat.jsonl: 1 conversations added, 1 answers to label" in page.content.decode()
    assert Dialogue.objects.count() == 2
