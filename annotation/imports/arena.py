"""Chatbot Arena battle logs (FastChat's clean_battle JSON or JSON Lines): records with
`model_a`, `model_b` and `winner` (model_a, model_b, tie, "tie (bothbad)"); conversations and
other fields are ignored. The battles feed the project's Bradley-Terry leaderboard."""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction

from annotation.imports.records import (
    BATCH_SIZE,
    ImportFailed,
    ImportSummary,
    Record,
    checked_name,
    checked_text,
    optional_id,
    read_records,
    required_name,
    shown,
)
from annotation.imports.responses import models_by_name
from annotation.models import Battle, Project
from annotation.validators import MAX_NAME_LENGTH


@dataclass
class ArenaSummary(ImportSummary):
    winners: dict[str, int] = field(default_factory=dict)


def arena_import(*, project: Project, raw: bytes, file: str, group: str = "arena") -> ArenaSummary:
    """Import every battle of the file, all or nothing; battles already there are skipped."""
    group = checked_name(group, file, "the group of the battles").strip()
    parsed = []
    seen: dict[str, int] = {}
    copies: Counter[str] = Counter()
    for record in read_records(raw, file):
        model_a = required_name(record, "model_a", file)
        model_b = required_name(record, "model_b", file)
        if model_a == model_b:
            raise ImportFailed(
                file, f"both sides are {model_a!r}", line=record.line, field="model_b"
            )
        winner = record.data.get("winner")
        if not isinstance(winner, str) or winner not in Battle.Winner.values:
            raise ImportFailed(
                file,
                f"expected one of {', '.join(Battle.Winner.values)}, found {shown(winner)}",
                line=record.line,
                field="winner",
            )
        question_id = optional_id(record, "question_id", file)
        if question_id is not None:
            if question_id in seen:
                raise ImportFailed(
                    file,
                    f"the same question_id as line {seen[question_id]}",
                    line=record.line,
                    field="question_id",
                )
            seen[question_id] = record.line
            key = question_id
        else:
            # Without an id, identical records are distinct battles: the k-th copy of a record
            # gets its own key, so that importing the same file again skips exactly these.
            digest = hashlib.sha256(json.dumps(record.data, sort_keys=True).encode()).hexdigest()
            copies[digest] += 1
            key = f"{digest[:48]}:{copies[digest]}"
        parsed.append((record.line, model_a, model_b, winner, key))
    summary = ArenaSummary()
    with transaction.atomic():
        models = models_by_name(project, {p[1] for p in parsed} | {p[2] for p in parsed}, summary)
        existing = set(
            Battle.objects.filter(project=project, group=group).values_list("key", flat=True)
        )
        new = [
            Battle(
                project=project,
                model_a=models[a],
                model_b=models[b],
                winner=winner,
                group=group,
                key=key,
                source=file[:300],
            )
            for _, a, b, winner, key in parsed
            if key not in existing
        ]
        Battle.objects.bulk_create(new, batch_size=BATCH_SIZE)
    summary.created, summary.skipped = len(new), len(parsed) - len(new)
    for battle in new:
        summary.winners[battle.winner] = summary.winners.get(battle.winner, 0) + 1
    return summary


# FastChat llm_judge pairwise judgments: g1 shows model_1 first, g2 shows it second.
MT_BENCH_WINNERS = {"model_1", "model_2", "tie"}
DROPPED_ERROR = "a judgment that failed in either order (winner 'error'), which FastChat drops"


@dataclass
class MtBenchSummary(ArenaSummary):
    dropped: Counter[str] = field(default_factory=Counter)
    inconsistent: int = 0


def mt_bench_pairwise_import(
    *, project: Project, raw: bytes, file: str, group: str | None = None
) -> MtBenchSummary:
    """MT-Bench pairwise judgments (FastChat llm_judge `model_judgment/*_pair.jsonl`) as
    battles: a verdict both orders agree on wins; orders that disagree are a tie, as FastChat
    counts them. The group is the judge's name unless given."""
    if group is not None:
        group = checked_name(group, file, "the group of the battles").strip()
    battles: dict[str, list[dict]] = {}
    seen: dict[str, int] = {}
    summary = MtBenchSummary()
    for record in read_records(raw, file):
        model_1 = required_name(record, "model_1", file)
        model_2 = required_name(record, "model_2", file)
        if model_1 == model_2:
            raise ImportFailed(
                file, f"both sides are {model_1!r}", line=record.line, field="model_2"
            )
        winners = []
        for name in ("g1_winner", "g2_winner"):
            value = record.data.get(name)
            if not isinstance(value, str) or (value != "error" and value not in MT_BENCH_WINNERS):
                raise ImportFailed(
                    file,
                    f"expected model_1, model_2, tie or error, found {shown(value)}",
                    line=record.line,
                    field=name,
                )
            winners.append(value)
        if "error" in winners:
            summary.dropped[DROPPED_ERROR] += 1
            continue
        judge = judge_name(record, file)
        if winners[0] == winners[1]:
            verdict = {"model_1": "model_a", "model_2": "model_b", "tie": "tie"}[winners[0]]
        else:
            verdict = "tie"
            summary.inconsistent += 1
        question = optional_id(record, "question_id", file) or str(record.line)
        turn = record.data.get("turn", 1)
        judged = f"{question}\0{turn}\0{model_1}\0{model_2}\0{judge}"
        key = "mt-bench:" + hashlib.sha256(judged.encode()).hexdigest()[:48]
        if key in seen:
            raise ImportFailed(
                file,
                f"the same question, turn, models and judge as line {seen[key]}",
                line=record.line,
                field="question_id",
            )
        seen[key] = record.line
        battle = {"question_id": key, "model_a": model_1, "model_b": model_2, "winner": verdict}
        battles.setdefault(group or judge, []).append(battle)
    with transaction.atomic():
        for name, group_battles in battles.items():
            lines = "\n".join(json.dumps(battle) for battle in group_battles)
            part = arena_import(project=project, raw=lines.encode(), file=file, group=name)
            summary.created += part.created
            summary.skipped += part.skipped
            summary.models_created += part.models_created
            for winner, count in part.winners.items():
                summary.winners[winner] = summary.winners.get(winner, 0) + count
    return summary


def judge_name(record: Record, file: str) -> str:
    """FastChat's `judge` is [model, prompt name]; a plain name is taken too, none is "judge"."""
    judge = record.data.get("judge")
    name = judge[0] if isinstance(judge, list) and judge else judge
    if name is None or name == [] or name == "":
        return "judge"
    if not isinstance(name, str):
        raise ImportFailed(
            file,
            f"expected the judge's name or [name, prompt], found {shown(judge)}",
            line=record.line,
            field="judge",
        )
    checked_text(name, file, line=record.line, field="judge", limit=MAX_NAME_LENGTH)
    return name.strip() or "judge"
