"""Importing an AlpacaEval `annotations.json`: prompts, both models' responses, a round, and
each verdict as the named judge's annotation."""

import math
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction

from annotation.imports.records import (
    BATCH_SIZE,
    ImportFailed,
    ImportSummary,
    Progress,
    Record,
    checked_name,
    no_progress,
    read_records,
    required_name,
    required_text,
    shown,
)
from annotation.imports.responses import models_by_name, prompt_lookup
from annotation.models import (
    Annotation,
    Annotator,
    Item,
    Project,
    Prompt,
    PromptSet,
    Response,
    Round,
)
from annotation.services.judgments import annotations_record_judgments
from annotation.services.rounds import round_add_missing_items, round_create
from annotation.validators import MAX_NAME_LENGTH

# AlpacaEval's own rules (alpaca_eval/metrics/helpers.py): a preference is 1 + the judge's
# probability that output_2 is better, in [1, 2]; 0 is AlpacaEval 1's old code for a draw;
# a missing preference (null) or one outside [1, 2] is not a preference and is dropped. The
# discrete verdict rounds it, exactly 1.5 being a draw.
DRAW = 1.5
OLD_DRAW = 0
DROPPED_NULL = "no preference (null), which AlpacaEval drops"
DROPPED_RANGE = "a preference outside AlpacaEval's [1, 2], which AlpacaEval drops"
DROPPED_SELF = "a model compared with itself (AlpacaEval's 50 % reference row)"


@dataclass(frozen=True)
class ParsedJudgment:
    line: int
    instruction: str
    outputs: dict[str, str]  # generator name -> output
    first_generator: str
    second_generator: str
    annotator: str
    verdict: str  # "output_1", "output_2" or "tie"
    second_preferred: float  # the judge's probability that output_2 is better


def parse_judgment(record: Record, file: str) -> ParsedJudgment | str:
    """The record's judgment, or why AlpacaEval's rules drop it."""
    instruction = required_text(record, "instruction", file)
    generator_1 = required_name(record, "generator_1", file)
    generator_2 = required_name(record, "generator_2", file)
    outputs = {
        generator: required_text(record, name, file, empty=True)
        for name, generator in (("output_1", generator_1), ("output_2", generator_2))
    }
    annotator = required_name(record, "annotator", file)
    preference = record.data.get("preference")
    if generator_1 == generator_2:
        return DROPPED_SELF
    if preference is None or (isinstance(preference, float) and math.isnan(preference)):
        return DROPPED_NULL
    if isinstance(preference, bool) or not isinstance(preference, int | float):
        raise ImportFailed(
            file,
            f"expected a number from 1 to 2 (or 0 for a draw), found {shown(preference)}",
            line=record.line,
            field="preference",
        )
    value = DRAW if preference == OLD_DRAW else float(preference)
    if not 1 <= value <= 2:
        return DROPPED_RANGE
    rounded = "output_2" if round(value) == 2 else "output_1"
    verdict = "tie" if value == DRAW else rounded
    return ParsedJudgment(
        record.line,
        instruction,
        outputs,
        generator_1,
        generator_2,
        annotator,
        verdict,
        value - 1,
    )


@dataclass
class AlpacaEvalSummary(ImportSummary):
    dropped: Counter[str] = field(default_factory=Counter)
    # Verdicts already stored for the same item and judge that differ from the file's.
    conflicts: int = 0
    # Kept verdicts on an empty output: AlpacaEval counts them (a model that answered nothing).
    empty_outputs: int = 0
    candidate: str = ""
    baseline: str = ""


def _pair(
    judgments: list[ParsedJudgment], candidate_generator: str | None, file: str
) -> tuple[str, str]:
    """(candidate generator, baseline generator): the one asked for, or AlpacaEval's evaluated
    model (generator_2) against the other."""
    candidate = candidate_generator or judgments[0].second_generator
    baselines: set[str] = set()
    for judgment in judgments:
        if candidate not in judgment.outputs:
            raise ImportFailed(
                file,
                f"candidate {candidate!r} is not one of this record's generators "
                f"({', '.join(sorted(judgment.outputs))}); name it with --candidate-generator",
                line=judgment.line,
                field="generator_2",
            )
        baselines.update(set(judgment.outputs) - {candidate})
    if len(baselines) != 1:
        raise ImportFailed(
            file, f"expected one baseline against {candidate!r}, found {sorted(baselines)}"
        )
    return candidate, baselines.pop()


def alpaca_eval_import(
    *,
    project: Project,
    raw: bytes,
    file: str,
    candidate_generator: str | None = None,
    candidate_name: str | None = None,
    baseline_name: str | None = None,
    set_name: str = "alpaca_eval",
    progress: Progress = no_progress,
) -> AlpacaEvalSummary:
    """Import an AlpacaEval annotations.json: prompts, both models' responses, a round, and
    each verdict as an annotation by the model judge named in the record's `annotator`.

    AlpacaEval's own rules decide what counts: the summary says how many records they drop
    and why. A weighted verdict keeps its probability beside the rounded label, and no verdict
    claims an order shown, since AlpacaEval does not record the order its judge saw.
    `candidate_name` and `baseline_name` name the platform's models for the file's two
    generators (by default the generators' own names).
    """
    set_name = checked_name(set_name, file, "the prompt set's name")
    for given, what in (
        (candidate_name, "the candidate's name"),
        (baseline_name, "the baseline's name"),
    ):
        if given is not None:
            checked_name(given, file, what)
    summary = AlpacaEvalSummary()
    judgments = []
    for record in read_records(raw, file):
        parsed = parse_judgment(record, file)
        if isinstance(parsed, str):
            summary.dropped[parsed] += 1
        else:
            judgments.append(parsed)
    if not judgments:
        return summary  # Nothing left to compare; the summary says why.
    if candidate_generator is None and candidate_name and candidate_name in judgments[0].outputs:
        candidate_generator = candidate_name
    candidate_generator, baseline_generator = _pair(judgments, candidate_generator, file)
    names = {
        candidate_generator: candidate_name or candidate_generator,
        baseline_generator: baseline_name or baseline_generator,
    }
    if names[candidate_generator] == names[baseline_generator]:
        raise ImportFailed(
            file, f"the candidate and the baseline are both {names[candidate_generator]!r}"
        )
    summary.candidate, summary.baseline = names[candidate_generator], names[baseline_generator]
    round_name = f"{summary.candidate} vs {summary.baseline} (AlpacaEval)"
    if len(round_name) > MAX_NAME_LENGTH:
        raise ImportFailed(
            file,
            f"the round's name {shown(round_name)} would be longer than {MAX_NAME_LENGTH} "
            "characters: give the models shorter names (--candidate, --baseline)",
        )
    summary.empty_outputs = sum(
        1 for judgment in judgments if not all(o.strip() for o in judgment.outputs.values())
    )
    first_line: dict[str, int] = {}
    for judgment in judgments:
        seen = first_line.setdefault(judgment.instruction, judgment.line)
        if seen != judgment.line:
            raise ImportFailed(
                file,
                f"the same instruction as line {seen}; a round compares each prompt once",
                line=judgment.line,
                field="instruction",
            )

    with transaction.atomic():
        prompt_set, _ = PromptSet.objects.get_or_create(project=project, name=set_name)
        _, by_text = prompt_lookup(prompt_set)
        next_position = prompt_set.prompts.count()
        new_prompts: dict[str, Prompt] = {}
        for judgment in judgments:
            text = judgment.instruction
            if text not in by_text and text not in new_prompts:
                position = next_position + len(new_prompts)
                new_prompts[text] = Prompt(
                    prompt_set=prompt_set, external_id=str(position), position=position, text=text
                )
        Prompt.objects.bulk_create(new_prompts.values(), batch_size=BATCH_SIZE)
        _, by_text = prompt_lookup(prompt_set)

        by_name = models_by_name(project, set(names.values()), summary)
        models = {generator: by_name[name] for generator, name in names.items()}
        existing = {
            (prompt_pk, model_pk): text
            for prompt_pk, model_pk, text in Response.objects.filter(
                prompt__prompt_set=prompt_set, model__in=models.values(), settings_key=""
            ).values_list("prompt_id", "model_id", "text")
        }
        to_create = []
        for judgment in judgments:
            prompt_pk = by_text[judgment.instruction]
            for generator, output in judgment.outputs.items():
                key = (prompt_pk, models[generator].pk)
                if key in existing:
                    if existing[key] != output:
                        raise ImportFailed(
                            file,
                            f"{names[generator]!r} already has a different response to this prompt",
                            line=judgment.line,
                            field="output_1"
                            if generator == judgment.first_generator
                            else "output_2",
                        )
                    continue
                existing[key] = output
                to_create.append(
                    Response(prompt_id=prompt_pk, model=models[generator], text=output)
                )
        Response.objects.bulk_create(to_create, batch_size=BATCH_SIZE)

        candidate, baseline = models[candidate_generator], models[baseline_generator]
        round_ = Round.objects.filter(
            project=project, name=round_name, prompt_set=prompt_set, candidate=candidate
        ).first()
        if round_ is not None:
            # A later file may bring prompts the round has no items for yet.
            round_add_missing_items(round_=round_)
        else:
            round_ = round_create(
                project=project,
                name=round_name,
                prompt_set=prompt_set,
                candidate=candidate,
                baselines=[baseline],
                shared_items=0,
            )
        items = {item.prompt_id: item for item in Item.objects.filter(round=round_)}
        judges = {
            name: Annotator.objects.get_or_create(
                project=project, kind=Annotator.Kind.JUDGE, name=name
            )[0]
            for name in {j.annotator for j in judgments}
        }
        stored = {
            (item_pk, judge_pk): (choice, preference)
            for item_pk, judge_pk, choice, preference in Annotation.objects.filter(
                item__round=round_, annotator__in=judges.values()
            ).values_list("item_id", "annotator_id", "choice", "preference")
        }
        judgments_by_judge: dict[Annotator, list[tuple[Item, str, dict[bool, str]]]] = {
            judge: [] for judge in judges.values()
        }
        preferences: dict[int, float] = {}
        for judgment in judgments:
            item = items[by_text[judgment.instruction]]
            judge = judges[judgment.annotator]
            candidate_second = judgment.second_generator == candidate_generator
            preferred = (
                judgment.second_preferred if candidate_second else 1 - judgment.second_preferred
            )
            if judgment.verdict == "tie":
                choice = Annotation.Choice.TIE
            else:
                second_won = judgment.verdict == "output_2"
                choice = (
                    Annotation.Choice.CANDIDATE
                    if second_won == candidate_second
                    else Annotation.Choice.BASELINE
                )
            if (item.pk, judge.pk) in stored:
                old_choice, old_preference = stored[(item.pk, judge.pk)]
                same = old_choice == choice and (
                    old_preference is None or math.isclose(old_preference, preferred)
                )
                if same:
                    summary.skipped += 1
                else:
                    summary.conflicts += 1
                continue
            stored[(item.pk, judge.pk)] = (choice, preferred)
            preferences[item.pk] = preferred
            # The file's order; AlpacaEval shuffles what its judge sees and does not say how.
            candidate_first = not candidate_second
            judgments_by_judge[judge].append((item, choice, {candidate_first: choice}))
        total = sum(len(rows) for rows in judgments_by_judge.values())
        done = 0
        for judge, rows in judgments_by_judge.items():
            for start in range(0, len(rows), BATCH_SIZE):
                batch = rows[start : start + BATCH_SIZE]
                annotations_record_judgments(
                    annotator=judge,
                    judgments=batch,
                    preferences={item.pk: preferences[item.pk] for item, _, _ in batch},
                    order_known=False,
                )
                done += len(batch)
                progress(done, total)
        summary.created = total
        summary.round = round_
    return summary
