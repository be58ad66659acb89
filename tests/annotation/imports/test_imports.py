"""The import services on the real LIMA and AlpacaEval files, and the parsing edge cases."""

import json
from collections import Counter

import pytest

from annotation.imports.alpaca_eval import alpaca_eval_import
from annotation.imports.prompts import prompts_import
from annotation.imports.records import ImportFailed, read_records
from annotation.imports.responses import responses_import
from annotation.models import (
    Annotation,
    Annotator,
    Item,
    LanguageModel,
    Project,
    Prompt,
    PromptSet,
    Response,
)
from tests.factories import make_project
from tests.shared_data import ANNOTATIONS, GPT4_OUTPUTS, LIMA_PROMPTS, MISTRAL_OUTPUTS


def jsonl(*records) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


@pytest.fixture
def project() -> Project:
    return make_project()


@pytest.mark.django_db
def test_it_imports_the_300_lima_test_prompts_with_their_ids_and_text(project):
    expected = [json.loads(line) for line in LIMA_PROMPTS.read_text(encoding="utf-8").splitlines()]

    summary = prompts_import(
        project=project, set_name="lima", raw=LIMA_PROMPTS.read_bytes(), file=LIMA_PROMPTS.name
    )

    assert (summary.created, summary.skipped) == (300, 0)
    prompts = list(Prompt.objects.filter(prompt_set__name="lima").order_by("position"))
    assert [(p.external_id, p.text) for p in prompts] == [
        (str(record["id"]), record["prompt"]) for record in expected
    ]
    assert [p.position for p in prompts] == list(range(300))


@pytest.mark.django_db
def test_it_skips_every_lima_prompt_on_a_second_import(project):
    raw = LIMA_PROMPTS.read_bytes()
    prompts_import(project=project, set_name="lima", raw=raw, file=LIMA_PROMPTS.name)

    summary = prompts_import(project=project, set_name="lima", raw=raw, file=LIMA_PROMPTS.name)

    assert (summary.created, summary.skipped) == (0, 300)
    assert Prompt.objects.count() == 300


@pytest.mark.django_db
def test_it_keeps_later_turns_and_source_of_the_lima_release_format(project):
    raw = jsonl(
        {"conversations": ["Write a haiku about rain."], "source": "author"},
        {
            "conversations": ["Plan a trip to Rome.", "Here is a plan...", "Make it cheaper."],
            "source": "stackexchange",
        },
    )

    prompts_import(project=project, set_name="lima-release", raw=raw, file="test.jsonl")

    first, second = Prompt.objects.order_by("position")
    assert (first.text, first.extra) == ("Write a haiku about rain.", {"source": "author"})
    assert second.text == "Plan a trip to Rome."
    assert second.extra == {
        "conversations": ["Here is a plan...", "Make it cheaper."],
        "source": "stackexchange",
    }


@pytest.mark.django_db
def test_it_skips_prompts_without_ids_whose_text_is_already_in_the_set(project):
    raw = MISTRAL_OUTPUTS.read_bytes()
    prompts_import(project=project, set_name="alpaca", raw=raw, file=MISTRAL_OUTPUTS.name)

    summary = prompts_import(project=project, set_name="alpaca", raw=raw, file=MISTRAL_OUTPUTS.name)

    assert (summary.created, summary.skipped) == (0, 805)
    assert Prompt.objects.count() == 805


@pytest.mark.django_db
def test_it_matches_alpaca_eval_model_outputs_to_prompts_by_exact_instruction(project):
    prompts_import(
        project=project,
        set_name="alpaca",
        raw=MISTRAL_OUTPUTS.read_bytes(),
        file=MISTRAL_OUTPUTS.name,
    )

    for path in (MISTRAL_OUTPUTS, GPT4_OUTPUTS):
        summary = responses_import(
            project=project, set_name="alpaca", raw=path.read_bytes(), file=path.name
        )
        assert summary.created == 805

    gpt4 = {r["instruction"]: r["output"] for r in json.loads(GPT4_OUTPUTS.read_text())}
    stored = Response.objects.filter(model__name="gpt4_1106_preview").values_list(
        "prompt__text", "text"
    )
    assert dict(stored) == gpt4
    assert sorted(LanguageModel.objects.values_list("name", flat=True)) == [
        "Mistral-7B-Instruct-v0.2",
        "gpt4_1106_preview",
    ]


@pytest.mark.django_db
def test_it_imports_responses_beside_generated_ones_as_before(project):
    prompts_import(
        project=project, set_name="s", raw=jsonl({"id": "a", "prompt": "Hi?"}), file="p.jsonl"
    )
    prompt = Prompt.objects.get()
    model = LanguageModel.objects.create(project=project, name="m", backend="openai")
    Response.objects.create(prompt=prompt, model=model, text="Generated.", settings_key="k1")
    raw = jsonl({"prompt_id": "a", "output": "Imported.", "model": "m"})

    first = responses_import(project=project, set_name="s", raw=raw, file="r.jsonl")
    again = responses_import(project=project, set_name="s", raw=raw, file="r.jsonl")
    with pytest.raises(ImportFailed, match="already has a different response"):
        responses_import(
            project=project,
            set_name="s",
            raw=jsonl({"prompt_id": "a", "output": "Other.", "model": "m"}),
            file="r2.jsonl",
        )

    assert (first.created, again.created, again.skipped) == (1, 0, 1)
    stored = Response.objects.order_by("settings_key").values_list("settings_key", "text")
    assert list(stored) == [("", "Imported."), ("k1", "Generated.")]


@pytest.mark.django_db
def test_it_names_the_text_field_of_the_line_whose_prompt_is_unknown(project):
    prompts_import(project=project, set_name="s", raw=jsonl({"prompt": "Hi?"}), file="p.jsonl")
    raw = jsonl(
        {"prompt": "Hi?", "output": "Hello.", "model": "m"},
        {"instruction": "Bye?", "output": "Bye.", "model": "m"},
    )

    with pytest.raises(ImportFailed) as error:
        responses_import(project=project, set_name="s", raw=raw, file="r.jsonl")

    assert (error.value.line, error.value.field) == (2, "instruction")


def test_it_does_not_split_a_json_line_on_unicode_line_separators():
    raw = '{"prompt": "one\u2028two\x85three"}\n{"prompt": "four"}\n'.encode()

    records = read_records(raw, "p.jsonl")

    assert [(r.line, r.data["prompt"]) for r in records] == [
        (1, "one\u2028two\x85three"),
        (2, "four"),
    ]


@pytest.mark.django_db
def test_it_refuses_a_preference_that_is_not_a_number(project):
    record = json.loads(ANNOTATIONS.read_text())[0]
    record["preference"] = [1]

    with pytest.raises(ImportFailed) as error:
        alpaca_eval_import(
            project=project,
            raw=jsonl(record),
            file="a.jsonl",
            candidate_name="Mistral-7B-Instruct-v0.2",
        )

    assert (error.value.line, error.value.field) == (1, "preference")


@pytest.mark.django_db
def test_it_imports_alpaca_eval_verdicts_as_judge_annotations_with_the_published_win_rate(
    project,
):
    summary = alpaca_eval_import(
        project=project,
        raw=ANNOTATIONS.read_bytes(),
        file=ANNOTATIONS.name,
        candidate_name="Mistral-7B-Instruct-v0.2",
    )

    round_ = summary.round
    assert round_.candidate.name == "Mistral-7B-Instruct-v0.2"
    assert [b.name for b in round_.baselines.all()] == ["gpt4_1106_preview"]
    assert round_.items.count() == 805
    judge = Annotator.objects.get()
    assert (judge.kind, judge.name) == (Annotator.Kind.JUDGE, "alpaca_eval_cot_gpt4_turbo_fn")
    counts = Counter(Annotation.objects.filter(item__round=round_).values_list("choice", flat=True))
    assert counts == {Annotation.Choice.CANDIDATE: 125, Annotation.Choice.BASELINE: 680}
    n = sum(counts.values())
    win_rate = (counts[Annotation.Choice.CANDIDATE] + counts[Annotation.Choice.TIE] / 2) / n * 100
    assert win_rate == pytest.approx(15.527950310559005, abs=1e-9)
    # output_1 is always the baseline in this file, so the candidate was shown second.
    assert not Annotation.objects.filter(candidate_first=True).exists()
    assert not Item.objects.exclude(taken=0, completed=0).exists()


@pytest.mark.django_db
def test_it_adds_items_for_new_prompts_when_a_later_alpaca_eval_file_extends_the_round(project):
    records = json.loads(ANNOTATIONS.read_text())
    first = alpaca_eval_import(
        project=project,
        raw=json.dumps(records[:10]).encode(),
        file="part1.json",
        candidate_name="Mistral-7B-Instruct-v0.2",
    )

    second = alpaca_eval_import(
        project=project,
        raw=json.dumps(records[:20]).encode(),
        file="part2.json",
        candidate_name="Mistral-7B-Instruct-v0.2",
    )

    assert second.round == first.round
    assert (second.created, second.skipped) == (10, 10)
    assert first.round.items.count() == 20
    assert Annotation.objects.count() == 20
    assert PromptSet.objects.get().prompts.count() == 20
