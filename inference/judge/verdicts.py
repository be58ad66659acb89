"""Combining a judge's votes on the two orders of an item: pure functions, no database."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from annotation.models import Annotation

TIE = Annotation.Choice.TIE


@dataclass(frozen=True)
class Combined:
    # candidate / baseline / tie; None: the item gets no verdict from this judge.
    choice: str | None
    # Whether both orders agree in model terms; None when only one order was asked.
    consistent: bool | None


def combine_orders(votes: Mapping[bool, str], *, inconsistent_as_tie: bool = True) -> Combined:
    """The judge's verdict on an item from its vote per order (keyed by candidate_first).

    Two orders that agree give their common verdict. Two that disagree (including one tie
    against one win) count as a tie, as FastChat's MT-Bench judge does, or, when
    `inconsistent_as_tie` is off, leave the item without a verdict.
    """
    choices = {order: Annotation.model_choice(shown, order) for order, shown in votes.items()}
    if len(choices) == 1:
        return Combined(next(iter(choices.values())), None)
    if len(choices) != 2:
        raise ValueError(f"expected one or two orders, got {len(choices)}")
    first, second = choices[True], choices[False]
    if first == second:
        return Combined(first, True)
    return Combined(TIE if inconsistent_as_tie else None, False)


def position_consistency(combined: Iterable[Combined]) -> tuple[int, int]:
    """(consistent, judged in both orders): how often the order shown did not change the mind."""
    both = [c.consistent for c in combined if c.consistent is not None]
    return sum(both), len(both)
