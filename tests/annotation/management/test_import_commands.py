"""The import and round commands: what they print, and that a bad file changes nothing."""

import json
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import (
    Annotation,
    Annotator,
    Item,
    LanguageModel,
    Project,
    Prompt,
    PromptSet,
    Response,
    Round,
)
from tests.shared_data import ANNOTATIONS, GPT4_OUTPUTS, LIMA_PROMPTS, MISTRAL_OUTPUTS

CANDIDATE = "Mistral-7B-Instruct-v0.2"
BASELINE = "gpt4_1106_preview"


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def lines(*records) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def lima_records() -> list[dict]:
    return [json.loads(line) for line in LIMA_PROMPTS.read_text(encoding="utf-8").splitlines()]


def row_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Prompt, Response, LanguageModel, PromptSet)
    }


@pytest.fixture
def lima_set() -> PromptSet:
    run("import_prompts", str(LIMA_PROMPTS), "--set", "lima")
    return PromptSet.objects.get(name="lima")


@pytest.fixture
def alpaca_set() -> PromptSet:
    run("import_prompts", str(MISTRAL_OUTPUTS), "--set", "alpaca")
    run("import_responses", str(MISTRAL_OUTPUTS), "--set", "alpaca")
    run("import_responses", str(GPT4_OUTPUTS), "--set", "alpaca")
    return PromptSet.objects.get(name="alpaca")


# ---------------------------------------------------------------- import_prompts


@pytest.mark.django_db
def test_it_imports_the_lima_prompts_into_the_default_project():
    stdout, stderr = run("import_prompts", str(LIMA_PROMPTS), "--set", "lima")

    assert "test_prompts.jsonl: 300 prompts added to set 'lima' (0 already there)." in stdout
    assert stderr == ""
    prompt_set = PromptSet.objects.get()
    assert (prompt_set.project.name, prompt_set.name) == ("default", "lima")
    assert list(prompt_set.prompts.values_list("external_id", "text")) == [
        (str(record["id"]), record["prompt"]) for record in lima_records()
    ]


@pytest.mark.django_db
def test_a_set_imported_as_sensitive_is_marked_and_stays_so():
    stdout, _ = run("import_prompts", str(LIMA_PROMPTS), "--set", "lima", "--sensitive")
    assert "(0 already there); the set is marked sensitive." in stdout
    run("import_prompts", str(LIMA_PROMPTS), "--set", "lima")
    assert PromptSet.objects.get().sensitive


@pytest.mark.django_db
def test_it_skips_all_300_lima_prompts_on_a_second_import(lima_set):
    stdout, _ = run("import_prompts", str(LIMA_PROMPTS), "--set", "lima")

    assert "0 prompts added to set 'lima' (300 already there)." in stdout
    assert Prompt.objects.count() == 300


@pytest.mark.django_db
def test_it_imports_into_the_named_project():
    run("import_prompts", str(LIMA_PROMPTS), "--set", "lima", "--project", "lab")

    assert PromptSet.objects.get().project == Project.objects.get(name="lab")


@pytest.mark.django_db
def test_it_imports_the_lima_release_format(tmp_path):
    path = tmp_path / "lima_release.jsonl"
    path.write_bytes(
        lines(
            {"conversations": ["How do I boil an egg?"], "source": "wikihow"},
            {"conversations": ["Name a prime.", "Seven.", "Another?"], "source": "author"},
        )
    )

    run("import_prompts", str(path), "--set", "release")

    first, second = Prompt.objects.order_by("position")
    assert (first.text, first.extra) == ("How do I boil an egg?", {"source": "wikihow"})
    assert (second.text, second.extra) == (
        "Name a prime.",
        {"conversations": ["Seven.", "Another?"], "source": "author"},
    )


@pytest.mark.django_db
def test_it_shows_progress_on_one_line_for_a_100k_line_file(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_bytes(lines(*({"id": i, "prompt": f"Prompt number {i}?"} for i in range(100_000))))

    _, stderr = run("import_prompts", str(path), "--set", "big")

    assert Prompt.objects.count() == 100_000
    assert stderr.endswith("\r  100000/100000 rows\n")
    assert stderr.count("\n") == 1


# ---------------------------------------------------------------- import_responses


@pytest.mark.django_db
def test_it_imports_alpaca_eval_model_outputs_matched_by_instruction():
    run("import_prompts", str(MISTRAL_OUTPUTS), "--set", "alpaca")

    stdout, _ = run("import_responses", str(MISTRAL_OUTPUTS), "--set", "alpaca")
    run("import_responses", str(GPT4_OUTPUTS), "--set", "alpaca")

    assert "805 responses added to set 'alpaca'" in stdout
    assert f"New models: {CANDIDATE}." in stdout
    assert Prompt.objects.count() == 805
    counts = Counter(Response.objects.values_list("model__name", flat=True))
    assert counts == {CANDIDATE: 805, BASELINE: 805}
    expected = {r["instruction"]: r["output"] for r in json.loads(GPT4_OUTPUTS.read_text())}
    stored = Response.objects.filter(model__name=BASELINE).values_list("prompt__text", "text")
    assert dict(stored) == expected


@pytest.mark.django_db
def test_it_imports_json_lines_responses_by_prompt_id(lima_set, tmp_path):
    path = tmp_path / "responses.jsonl"
    path.write_bytes(
        lines(
            *(
                {"prompt_id": record["id"], "output": f"{model} on {record['id']}", "model": model}
                for record in lima_records()
                for model in ("lima-65b", "davinci-003")
            )
        )
    )

    stdout, _ = run("import_responses", str(path), "--set", "lima")

    assert "600 responses added" in stdout
    assert "New models: davinci-003, lima-65b." in stdout
    response = Response.objects.get(model__name="lima-65b", prompt__external_id="7")
    assert response.text == "lima-65b on 7"


@pytest.mark.django_db
def test_it_takes_the_model_from_the_command_line(lima_set, tmp_path):
    path = tmp_path / "responses.jsonl"
    path.write_bytes(lines({"prompt_id": 0, "output": "An answer."}))

    run("import_responses", str(path), "--set", "lima", "--model", "lima-7b")

    assert Response.objects.get().model.name == "lima-7b"


# ---------------------------------------------------------------- bad files change nothing


def _bad_files() -> list:
    records = lima_records()
    good = lines({"id": "a", "prompt": "First?"}, {"id": "b", "prompt": "Second?"})
    responses = lines(*({"prompt_id": r["id"], "output": "Yes.", "model": "m"} for r in records))
    return [
        pytest.param(
            "import_prompts", good + b'{"id": "c", "prompt": "Third?"\n', 3, "", id="malformed json"
        ),
        pytest.param(
            "import_prompts", good + lines({"id": "c", "text": "Third?"}), 3, "prompt", id="missing"
        ),
        pytest.param(
            "import_prompts", good + lines({"id": "a", "prompt": "Again?"}), 3, "id", id="dup id"
        ),
        pytest.param(
            "import_responses",
            lines({"prompt_id": 0, "output": "Yes.", "model": "m"})
            + lines({"prompt_id": 999, "output": "No.", "model": "m"}),
            2,
            "prompt_id",
            id="unknown prompt id",
        ),
        pytest.param(
            "import_prompts",
            good + '{"id": "c", "prompt": "Caf\u00e9?"}\n'.encode("latin-1"),
            3,
            "",
            id="not utf-8",
        ),
        pytest.param(
            "import_prompts",
            lines(*records) + lines({"id": 300}),
            301,
            "prompt",
            id="last prompt line",
        ),
        pytest.param(
            "import_responses",
            responses + lines({"prompt_id": 299, "output": "Again.", "model": "m"}),
            301,
            "output",
            id="last response line",
        ),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(("command", "content", "line", "field"), _bad_files())
def test_it_names_file_line_and_field_and_writes_nothing_for_a_bad_file(
    lima_set, tmp_path, command, content, line, field
):
    path = tmp_path / "bad_file.jsonl"
    path.write_bytes(content)
    set_name = "new set" if command == "import_prompts" else "lima"
    before = row_counts()

    with pytest.raises(CommandError) as error:
        run(command, str(path), "--set", set_name)

    message = str(error.value)
    assert message.startswith(f"bad_file.jsonl, line {line}: ")
    if field:
        assert f"field '{field}'" in message
    assert row_counts() == before


@pytest.mark.django_db
def test_it_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("import_prompts", str(tmp_path / "nothing.jsonl"), "--set", "s")


@pytest.mark.django_db
def test_it_refuses_responses_for_a_set_that_does_not_exist():
    with pytest.raises(CommandError, match="prompt set 'nope' does not exist"):
        run("import_responses", str(GPT4_OUTPUTS), "--set", "nope")


# ---------------------------------------------------------------- create_round


@pytest.mark.django_db
def test_it_creates_a_round_and_prints_its_id_and_crowd_link(alpaca_set, settings):
    settings.PUBLIC_BASE_URL = "https://eval.example.org"

    stdout, _ = run(
        "create_round",
        *("--set", "alpaca", "--candidate", CANDIDATE, "--baseline", BASELINE),
        *("--shared-items", "20", "--seed", "7", "--name", "mistral vs gpt4"),
    )

    round_ = Round.objects.get()
    assert f"Round {round_.pk}: mistral vs gpt4 (805 items)" in stdout
    assert f"Crowd link: https://eval.example.org/c/{round_.crowd_token}/" in stdout
    assert (round_.seed, round_.shared_items) == (7, 20)
    assert round_.items.filter(is_shared=True).count() == 20
    assert round_.text_format == Round.TextFormat.MARKDOWN


@pytest.mark.django_db
def test_it_creates_an_absolute_round_that_rates_each_answer_alone(alpaca_set):
    stdout, _ = run(
        "create_round",
        *("--set", "alpaca", "--candidate", CANDIDATE, "--baseline", BASELINE),
        *("--scale", "fail_pass_excellent", "--shared-items", "0"),
    )
    round_ = Round.objects.get()
    assert (round_.kind, round_.scale) == ("absolute", "fail_pass_excellent")
    assert f"({2 * 805} items)" in stdout
    with pytest.raises(CommandError, match="not marked sensitive"):
        run("create_round", "--set", "alpaca", "--candidate", CANDIDATE, "--scale", "safety")
    with pytest.raises(CommandError, match="Give at least one baseline"):
        run("create_round", "--set", "alpaca", "--candidate", CANDIDATE)
    assert Round.objects.count() == 1


@pytest.mark.django_db
def test_it_creates_a_round_that_shows_plain_text(alpaca_set):
    run(
        "create_round",
        *("--set", "alpaca", "--candidate", CANDIDATE, "--baseline", BASELINE),
        *("--text-format", "plain"),
    )
    assert Round.objects.get().text_format == Round.TextFormat.PLAIN


@pytest.mark.django_db
def test_it_compares_the_candidate_with_every_baseline(lima_set, tmp_path):
    path = tmp_path / "responses.jsonl"
    models = ("lima-65b", "davinci-003", "claude-v1")
    path.write_bytes(
        lines(
            *(
                {"prompt_id": r["id"], "output": "…", "model": m}
                for r in lima_records()
                for m in models
            )
        )
    )
    run("import_responses", str(path), "--set", "lima")

    run(
        "create_round",
        *("--set", "lima", "--candidate", "lima-65b"),
        *("--baseline", "davinci-003", "--baseline", "claude-v1", "--shared-items", "0"),
    )

    assert Counter(Item.objects.values_list("baseline__name", flat=True)) == {
        "davinci-003": 300,
        "claude-v1": 300,
    }


@pytest.mark.django_db
def test_it_names_an_unknown_model(alpaca_set):
    with pytest.raises(CommandError, match="No model named 'gpt-5'"):
        run("create_round", "--set", "alpaca", "--candidate", CANDIDATE, "--baseline", "gpt-5")

    assert not Round.objects.exists()


@pytest.mark.django_db
def test_it_names_an_unknown_prompt_set(alpaca_set):
    with pytest.raises(CommandError, match="No prompt set named 'lima'"):
        run("create_round", "--set", "lima", "--candidate", CANDIDATE, "--baseline", BASELINE)


@pytest.mark.django_db
def test_it_explains_that_the_models_share_no_prompt(lima_set, tmp_path):
    path = tmp_path / "responses.jsonl"
    path.write_bytes(
        lines(
            *({"prompt_id": i, "output": "A.", "model": "first"} for i in range(10)),
            *({"prompt_id": i, "output": "B.", "model": "second"} for i in range(10, 20)),
        )
    )
    run("import_responses", str(path), "--set", "lima")

    with pytest.raises(CommandError, match="No prompt in 'lima' has responses from both 'first'"):
        run("create_round", "--set", "lima", "--candidate", "first", "--baseline", "second")

    assert not Round.objects.exists()


# ---------------------------------------------------------------- import_alpaca_eval


@pytest.mark.django_db
def test_it_imports_the_alpaca_eval_verdicts_with_the_published_win_rate():
    stdout, _ = run("import_alpaca_eval", str(ANNOTATIONS), "--candidate", CANDIDATE)

    round_ = Round.objects.get()
    assert f"Round {round_.pk}: " in stdout
    assert "805 judge annotations added (0 already there); 805 items in the round." in stdout
    assert round_.items.count() == 805
    judge = Annotator.objects.get()
    assert (judge.kind, judge.name) == (Annotator.Kind.JUDGE, "alpaca_eval_cot_gpt4_turbo_fn")
    counts = Counter(Annotation.objects.values_list("choice", flat=True))
    wins, losses, ties = (counts[choice] for choice in Annotation.Choice.values)
    assert (wins, losses, ties) == (125, 680, 0)
    win_rate = (wins + ties / 2) / (wins + losses + ties) * 100
    assert win_rate == pytest.approx(15.527950310559005, abs=1e-9)


@pytest.mark.django_db
def test_it_adds_nothing_when_the_alpaca_eval_file_is_imported_twice():
    run("import_alpaca_eval", str(ANNOTATIONS), "--candidate", CANDIDATE)
    before = {
        **row_counts(),
        "Annotation": Annotation.objects.count(),
        "Item": Item.objects.count(),
        "Round": Round.objects.count(),
        "Annotator": Annotator.objects.count(),
    }

    stdout, _ = run("import_alpaca_eval", str(ANNOTATIONS), "--candidate", CANDIDATE)

    assert "0 judge annotations added (805 already there)" in stdout
    assert before == {
        **row_counts(),
        "Annotation": Annotation.objects.count(),
        "Item": Item.objects.count(),
        "Round": Round.objects.count(),
        "Annotator": Annotator.objects.count(),
    }


@pytest.mark.django_db
def test_it_names_the_line_and_generator_field_for_a_candidate_not_in_the_file():
    with pytest.raises(CommandError) as error:
        run("import_alpaca_eval", str(ANNOTATIONS), "--candidate-generator", "llama-2-70b")

    message = str(error.value)
    assert message.startswith(f"{ANNOTATIONS.name}, line 2: field 'generator_2': ")
    assert "'llama-2-70b'" in message
    assert not Round.objects.exists()
    assert row_counts() == dict.fromkeys(["Prompt", "Response", "LanguageModel", "PromptSet"], 0)
