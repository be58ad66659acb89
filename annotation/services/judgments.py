"""The one way a model verdict is stored: a judge run's, or one imported from AlpacaEval."""

import logging
from collections.abc import Mapping, Sequence

from annotation.models import (
    Annotation,
    Annotator,
    Item,
    Round,
)

logger = logging.getLogger(__name__)


def annotations_record_judgments(
    *,
    annotator: Annotator,
    judgments: Sequence[tuple[Item, str, Mapping[bool, str]]],
    preferences: Mapping[int, float] | None = None,
    order_known: bool = True,
) -> None:
    """Record a model judge's verdicts in a few queries: (item, choice, votes) each, where
    votes maps each order shown (candidate_first) to the choice, in model terms, given then.

    A single vote is stored in the order the judge saw; a verdict combined from both orders
    is stored in the crowd's order, with every vote kept in `order_votes` for position-bias
    diagnostics. Idempotent: an item the judge already has a verdict on keeps it. Judges take
    no crowd slots: Item.taken and completed count crowd work only. The items must be of the
    judge's project.

    `preferences` gives, per item pk, the judge's probability that the candidate is better;
    `order_known=False` marks verdicts whose source did not record the order shown.
    """
    preferences = preferences or {}
    if annotator.kind != Annotator.Kind.JUDGE:
        raise ValueError(f"{annotator} is not a model judge.")
    rounds = {item.round_id for item, _, _ in judgments}
    if Round.objects.filter(pk__in=rounds).exclude(project_id=annotator.project_id).exists():
        raise ValueError(f"{annotator} belongs to another project than these items.")
    rows = []
    for item, choice, votes in judgments:
        for given in (choice, *votes.values()):
            if given not in Annotation.Choice.values:
                raise ValueError(f"Unknown choice {given!r}.")
        if len(votes) == 1:
            (candidate_first,) = votes
            order_votes = []
        else:
            candidate_first = item.candidate_first
            order_votes = [[order, vote] for order, vote in sorted(votes.items())]
        rows.append(
            Annotation(
                item=item,
                annotator=annotator,
                choice=choice,
                shown_choice=Annotation.shown_for(choice, candidate_first),
                candidate_first=candidate_first,
                order_votes=order_votes,
                order_known=order_known,
                preference=preferences.get(item.pk),
            )
        )
    Annotation.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
