"""Annotations as labels: the report frame and each item's label counts per group.

Pure functions over arrays and data frames; `frames` fills them from the database.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

# A label is the choice in model terms; its code is the index here.
LABELS = ("candidate", "tie", "baseline")
CANDIDATE, TIE, BASELINE = range(3)
HUMAN_GROUPS = ("crowd", "author")

FRAME_COLUMNS = [
    "annotation",
    "item",
    "prompt",
    "baseline",
    "annotator",
    "group",
    "label",
    "candidate_first",
    "seconds",
    "created_at",
    "candidate_chars",
    "baseline_chars",
    # Whether the order shown was recorded, and a judge's probability for the candidate.
    "order_known",
    "preference",
]


def ordered_groups(names: Iterable[str]) -> list[str]:
    """Humans first (crowd, then authors), then judges by name."""
    present = set(names)
    humans = [g for g in HUMAN_GROUPS if g in present]
    return humans + sorted(present - set(HUMAN_GROUPS))


def annotation_frame(**columns) -> pd.DataFrame:
    """The report frame from its columns (see FRAME_COLUMNS), with compact dtypes.

    `group` and `baseline` become categoricals (groups in report order); `label` is a code
    into LABELS.
    """
    columns.setdefault("order_known", True)
    columns.setdefault("preference", np.nan)
    frame = pd.DataFrame({name: columns[name] for name in FRAME_COLUMNS})
    groups = ordered_groups(pd.unique(frame["group"]))
    frame["group"] = pd.Categorical(frame["group"], categories=groups)
    frame["baseline"] = frame["baseline"].astype("category")
    frame["label"] = frame["label"].astype(np.int8)
    frame["candidate_first"] = frame["candidate_first"].astype(bool)
    frame["seconds"] = frame["seconds"].astype(float)
    frame["order_known"] = frame["order_known"].astype(bool)
    frame["preference"] = frame["preference"].astype(float)
    return frame


@dataclass(frozen=True)
class LabelCounts:
    """How many annotators of each group gave each label, per item.

    counts[i, g, label] for item `items[i]` (its baseline is `baselines[item_baseline[i]]`)
    and group `groups[g]`.
    """

    items: np.ndarray
    item_baseline: np.ndarray
    baselines: list[str]
    groups: list[str]
    counts: np.ndarray

    def group(self, name: str) -> np.ndarray:
        return self.counts[:, self.groups.index(name), :]


def label_counts(frame: pd.DataFrame, baselines: Sequence[str] | None = None) -> LabelCounts:
    """Per-item label counts per group. `baselines` fixes their order (default: as found)."""
    item_codes, items = pd.factorize(frame["item"].to_numpy(), sort=True)
    groups = list(frame["group"].cat.categories)
    group_codes = frame["group"].cat.codes.to_numpy().astype(np.int64)
    found = list(frame["baseline"].cat.categories)
    order = list(baselines) if baselines is not None else found
    order += [b for b in found if b not in order]
    remap = np.array([order.index(b) for b in found], dtype=np.int64)
    baseline_codes = remap[frame["baseline"].cat.codes.to_numpy()] if found else np.zeros(0)

    n_items, n_groups = len(items), len(groups)
    flat = (item_codes.astype(np.int64) * n_groups + group_codes) * 3 + frame["label"].to_numpy()
    counts = np.bincount(flat, minlength=n_items * n_groups * 3).reshape(n_items, n_groups, 3)
    item_baseline = np.zeros(n_items, dtype=np.int64)
    item_baseline[item_codes] = baseline_codes
    return LabelCounts(np.asarray(items), item_baseline, order, groups, counts)
