"""A round's verdicts in the formats other tools read: AlpacaEval's annotations.json and
model_outputs.json, and preference pairs for preference tuning (TRL's DPOTrainer reads
`prompt`, `chosen`, `rejected`).

Works on the frame of frames.round_verdict_rows; no database access here.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from annotation.reports.counts import BASELINE, CANDIDATE, LABELS, TIE

# A label as the candidate's share of a win: what AlpacaEval's preference - 1 means.
CANDIDATE_SHARE = {CANDIDATE: 1.0, TIE: 0.5, BASELINE: 0.0}


def _candidate_share(rows: pd.DataFrame) -> pd.Series:
    """Each verdict's preference for the candidate: the judge's own when it gave one."""
    share = rows["label"].map(CANDIDATE_SHARE).astype(float)
    return rows["preference"].where(rows["preference"].notna(), share)


def alpaca_eval_annotations(rows: pd.DataFrame, group: str) -> list[dict]:
    """One AlpacaEval record per item for an annotator group: the baseline as output_1, the
    candidate as output_2 (AlpacaEval's evaluated model), and `preference` = 1 + the group's
    mean preference for the candidate (a single judge's own, or the share of its annotators)."""
    chosen = rows[rows["group"] == group].assign(share=lambda df: _candidate_share(df))
    records = []
    for _, item in chosen.groupby("item", sort=False):
        first = item.iloc[0]
        records.append(
            {
                "instruction": first["instruction"],
                "output_1": first["baseline_output"],
                "generator_1": first["baseline"],
                "output_2": first["candidate_output"],
                "generator_2": first["candidate"],
                "annotator": group,
                "preference": 1 + float(item["share"].mean()),
            }
        )
    return records


def alpaca_eval_model_outputs(rows: pd.DataFrame) -> dict[str, list[dict]]:
    """Per model of the round, AlpacaEval's model_outputs.json records, one per prompt."""
    outputs: dict[str, list[dict]] = {}
    seen: set[tuple[str, str]] = set()
    for item in rows.drop_duplicates("item").itertuples():
        for model, text in (
            (item.candidate, item.candidate_output),
            (item.baseline, item.baseline_output),
        ):
            if (model, item.instruction) not in seen:
                seen.add((model, item.instruction))
                record = {"instruction": item.instruction, "output": text, "generator": model}
                outputs.setdefault(model, []).append(record)
    return outputs


@dataclass(frozen=True)
class PairRules:
    groups: tuple[str, ...] = ()  # empty: every group
    min_agreement: float = 0.0  # share of the item's votes that went to the chosen answer
    ties: str = "drop"  # drop, or keep: tied items are returned apart


def preference_pairs(
    rows: pd.DataFrame, rules: PairRules = PairRules()
) -> tuple[list[dict], list[dict]]:
    """(pairs, ties): per item, the answer most votes preferred as `chosen`, the other as
    `rejected`, with the vote counts and the margin (chosen minus rejected votes, over all)."""
    if rules.ties not in ("drop", "keep"):
        raise ValueError(f"ties must be 'drop' or 'keep', not {rules.ties!r}")
    chosen_rows = rows if not rules.groups else rows[rows["group"].isin(rules.groups)]
    pairs, ties = [], []
    for _, item in chosen_rows.groupby("item", sort=False):
        votes = np.bincount(item["label"].to_numpy(dtype=int), minlength=3)
        total = int(votes.sum())
        first = item.iloc[0]
        answers = {
            CANDIDATE: (first["candidate_output"], first["candidate"]),
            BASELINE: (first["baseline_output"], first["baseline"]),
        }
        common = {
            "prompt": first["instruction"],
            "prompt_id": first["prompt_id"],
            "annotators": total,
            "candidate_votes": int(votes[CANDIDATE]),
            "tie_votes": int(votes[TIE]),
            "baseline_votes": int(votes[BASELINE]),
            "groups": sorted(set(item["group"])),
        }
        if votes[CANDIDATE] == votes[BASELINE]:
            if rules.ties == "keep":
                ties.append(
                    {
                        **common,
                        "response_a": answers[CANDIDATE][0],
                        "response_b": answers[BASELINE][0],
                        "model_a": answers[CANDIDATE][1],
                        "model_b": answers[BASELINE][1],
                    }
                )
            continue
        winner, loser = (
            (CANDIDATE, BASELINE) if votes[CANDIDATE] > votes[BASELINE] else (BASELINE, CANDIDATE)
        )
        agreement = votes[winner] / total
        if agreement < rules.min_agreement:
            continue
        pairs.append(
            {
                **common,
                "chosen": answers[winner][0],
                "rejected": answers[loser][0],
                "chosen_model": answers[winner][1],
                "rejected_model": answers[loser][1],
                "margin": float((votes[winner] - votes[loser]) / total),
                "agreement": float(agreement),
            }
        )
    return pairs, ties


ARENA_WINNERS = {CANDIDATE: "model_a", TIE: "tie", BASELINE: "model_b"}


def arena_battles(battles: pd.DataFrame) -> list[dict]:
    """A project's verdicts (frames.project_battles) as FastChat clean_battle records: the
    round's candidate as model_a, the baseline as model_b, the group as the judge."""
    return [
        {
            "model_a": row.candidate,
            "model_b": row.baseline,
            "winner": ARENA_WINNERS[int(row.label)],
            "judge": row.group,
        }
        for row in battles.itertuples()
    ]


MT_BENCH_WINNERS = {"candidate": "model_1", "tie": "tie", "baseline": "model_2"}


def mt_bench_pairwise(rows: pd.DataFrame, group: str) -> list[dict]:
    """A judge's verdicts as FastChat llm_judge pairwise judgments: the candidate as model_1,
    g1 the order with the candidate shown first, g2 the swapped one ("error" for an order the
    judge was not asked; one it was asked but whose order is unknown is left out)."""
    records = []
    for row in rows[rows["group"] == group].itertuples():
        votes = {bool(first): choice for first, choice in row.order_votes}
        if not votes:
            if not row.order_known:
                continue
            votes = {bool(row.candidate_first): LABELS[int(row.label)]}
        records.append(
            {
                "question_id": row.prompt_id,
                "model_1": row.candidate,
                "model_2": row.baseline,
                "g1_winner": MT_BENCH_WINNERS[votes[True]] if True in votes else "error",
                "g2_winner": MT_BENCH_WINNERS[votes[False]] if False in votes else "error",
                "judge": [group, "evalplatform-pairwise"],
                "turn": 1,
            }
        )
    return records


MT_BENCH_NUMERIC = {"helpfulness_1_6", "mt_bench_1_10"}


def mt_bench_single(rows: pd.DataFrame, group: str, scale: str) -> list[dict]:
    """A judge's ratings on one numeric scale (ratings.rating_rows) as FastChat llm_judge
    single-answer judgments: question_id (a number when the id is one), model, score, turn, and
    the judge as [name, "evalplatform-<scale>"]; the judge's reply is not part of a rating.
    One file holds one scale: FastChat averages every score of a file."""
    chosen = rows[(rows["annotator"] == group) & (rows["scale"] == scale)]
    return [
        {
            "question_id": int(row.question) if row.question.isdecimal() else row.question,
            "model": row.model,
            "judge": [group, f"evalplatform-{row.scale}"],
            "score": float(row.score),
            "turn": int(row.turn),
        }
        for row in chosen.sort_values(["model", "question", "turn"]).itertuples()
    ]


def mt_bench_clash(records: list[dict]) -> tuple | None:
    """A (model, question, turn) that two records share (two prompt sets with the same ids),
    which MT-Bench's format cannot tell apart; None if there is none."""
    seen = set()
    for record in records:
        key = (record["model"], str(record["question_id"]), record["turn"])
        if key in seen:
            return key
        seen.add(key)
    return None


def file_part(name: str) -> str:
    """A name (a model's, a judge's, a group's) as part of a file name: path separators and the
    like replaced, and then a short hash of the name, so that two names never share a file."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    if safe == name:
        return name
    return f"{safe or 'unnamed'}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
