"""A round's report, and a project's leaderboard: every number the page, the API and the CLI
show, computed from one data frame by the pure functions of this package (`selectors` reads
the frames from the database)."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from annotation.reports.agreement import AgreementCell, agreement_table
from annotation.reports.bradley_terry import Rating, battle_counts, ratings
from annotation.reports.counts import HUMAN_GROUPS, LabelCounts, label_counts, ordered_groups
from annotation.reports.judges import JudgeDiagnostics, judge_diagnostics
from annotation.reports.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Mode, Outcome, outcomes


@dataclass(frozen=True)
class RoundReport:
    round_id: int
    candidate: str
    frame: pd.DataFrame
    label_counts: LabelCounts
    per_annotation: dict[str, dict[str, Outcome]]
    per_item: dict[str, dict[str, Outcome]]
    agreement: list[AgreementCell]
    judges: list[JudgeDiagnostics]
    # (worker id, reason) of the workers whose annotations the figures leave out, and whether
    # these figures include them anyway.
    exclusions: tuple[tuple[str, str], ...] = ()
    includes_excluded: bool = False

    @property
    def human_groups(self) -> list[str]:
        return [g for g in self.per_annotation if g in HUMAN_GROUPS]

    @property
    def judge_groups(self) -> list[str]:
        return [g for g in self.per_annotation if g not in HUMAN_GROUPS]

    def outcomes(self, mode: Mode) -> dict[str, dict[str, Outcome]]:
        return self.per_annotation if mode == "annotation" else self.per_item

    def summary(self) -> dict:
        """The summary.json document (also the API's answer)."""
        return {
            "round": self.round_id,
            # Per annotation (every vote), and per item (majority vote, split votes as ties);
            # win_or_tie is the paper's "equivalent or preferred" headline.
            "groups": {
                group: {baseline: outcome.as_json() for baseline, outcome in cells.items()}
                for group, cells in self.per_annotation.items()
            },
            "groups_per_item": {
                group: {baseline: outcome.as_json() for baseline, outcome in cells.items()}
                for group, cells in self.per_item.items()
            },
            "agreement": [cell.as_json() for cell in self.agreement],
            "excluded_workers": [
                {"worker_id": worker, "reason": reason} for worker, reason in self.exclusions
            ],
            "includes_excluded_workers": self.includes_excluded,
            "alpaca_eval": {
                judge.judge: asdict(judge.alpaca_eval)
                for judge in self.judges
                if judge.alpaca_eval is not None
            },
        }


def build_report(
    frame: pd.DataFrame,
    *,
    round_id: int,
    candidate: str,
    baselines: Sequence[str] = (),
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    order_votes: pd.DataFrame | None = None,
) -> RoundReport:
    """The report of one round's annotation frame (see counts.annotation_frame)."""
    counts = label_counts(frame, baselines)
    return RoundReport(
        round_id=round_id,
        candidate=candidate,
        frame=frame,
        label_counts=counts,
        per_annotation=outcomes(counts, mode="annotation", resamples=resamples, seed=seed),
        per_item=outcomes(counts, mode="item", resamples=resamples, seed=seed),
        agreement=agreement_table(frame, counts, resamples=resamples, seed=seed),
        judges=judge_diagnostics(frame, counts, order_votes),
    )


def leaderboard(
    battles: pd.DataFrame,
    group: str,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[Rating]:
    """Bradley-Terry ratings of every model in `battles` (see frames.project_battles), from
    one group's verdicts. A verdict's label codes are the battle outcomes with the candidate
    first."""
    chosen = battles.loc[battles["group"] == group, ["candidate", "baseline", "label"]]
    if chosen.empty:
        return []
    names = sorted({*pd.unique(chosen["candidate"]), *pd.unique(chosen["baseline"])})
    first, second = (
        pd.Categorical(chosen[side], categories=names).codes for side in ("candidate", "baseline")
    )
    counts = battle_counts(first, second, chosen["label"].to_numpy(), len(names))
    return ratings(counts, names, resamples=resamples, seed=seed)


def battle_groups(battles: pd.DataFrame) -> list[str]:
    return ordered_groups(pd.unique(battles["group"]))
