"""The invariants of annotations, items and rounds as database constraints.

Existing rows are checked first: an item's `taken` is recounted (its definition leaves one right
value), anything else that breaks a constraint stops the migration, naming the rows, before any
constraint is added.
"""

from django.db import migrations, models
from django.db.models import Count, F, Q

CHOICE_AS_SHOWN = (
    Q(choice="tie", shown_choice="N")
    | Q(choice="candidate", shown_choice="A", candidate_first=True)
    | Q(choice="candidate", shown_choice="B", candidate_first=False)
    | Q(choice="baseline", shown_choice="B", candidate_first=True)
    | Q(choice="baseline", shown_choice="A", candidate_first=False)
)
SHOWN = 20


def _listed(rows: list, total: int) -> str:
    more = f" and {total - len(rows)} more" if total > len(rows) else ""
    return ", ".join(str(row) for row in rows) + more


def recount_taken(apps):
    """`taken` is crowd workers' live leases plus completed annotations. Crowd leases on shared
    items were not counted before, so shared items that a crowd worker answered had fewer
    taken than completed."""
    Item = apps.get_model("annotation", "Item")
    live_crowd_leases = Count(
        "assignments",
        filter=Q(assignments__status="leased", assignments__session__annotator__kind="crowd"),
    )
    drifted = (
        Item.objects.annotate(leased=live_crowd_leases)
        .exclude(taken=F("completed") + F("leased"))
        .values_list("pk", "completed", "leased")
    )
    for pk, completed, leased in list(drifted):
        Item.objects.filter(pk=pk).update(taken=completed + leased)


def check_existing_rows(apps, schema_editor):
    Annotation = apps.get_model("annotation", "Annotation")
    Round = apps.get_model("annotation", "Round")
    recount_taken(apps)
    problems = []
    bad = Annotation.objects.exclude(CHOICE_AS_SHOWN).order_by("pk")
    if bad.exists():
        rows = [
            f"id {pk} ({choice!r} for {shown!r} with candidate_first={first})"
            for pk, choice, shown, first in bad.values_list(
                "pk", "choice", "shown_choice", "candidate_first"
            )[:SHOWN]
        ]
        problems.append(
            "annotations whose choice disagrees with the answer shown and its order: "
            + _listed(rows, bad.count())
        )
    bad = Round.objects.filter(Q(items_per_worker__lt=1) | Q(lease_seconds__lt=10)).order_by("pk")
    if bad.exists():
        rows = [
            f"id {pk} (items_per_worker={items}, lease_seconds={lease})"
            for pk, items, lease in bad.values_list("pk", "items_per_worker", "lease_seconds")[
                :SHOWN
            ]
        ]
        problems.append(
            "rounds with items_per_worker < 1 or lease_seconds < 10: " + _listed(rows, bad.count())
        )
    if problems:
        raise RuntimeError(
            "Cannot add the annotation integrity constraints; fix these rows and migrate again "
            "(nothing was changed): " + "; ".join(problems)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0003_annotation_order_votes"),
    ]

    operations = [
        migrations.RunPython(check_existing_rows, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="annotation",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("choice", "tie"), ("shown_choice", "N")),
                    models.Q(
                        ("candidate_first", True), ("choice", "candidate"), ("shown_choice", "A")
                    ),
                    models.Q(
                        ("candidate_first", False), ("choice", "candidate"), ("shown_choice", "B")
                    ),
                    models.Q(
                        ("candidate_first", True), ("choice", "baseline"), ("shown_choice", "B")
                    ),
                    models.Q(
                        ("candidate_first", False), ("choice", "baseline"), ("shown_choice", "A")
                    ),
                    _connector="OR",
                ),
                name="annotation_choice_as_shown",
            ),
        ),
        migrations.AddConstraint(
            model_name="item",
            constraint=models.CheckConstraint(
                condition=models.Q(("completed__lte", models.F("taken"))),
                name="item_completed_within_taken",
            ),
        ),
        migrations.AddConstraint(
            model_name="round",
            constraint=models.CheckConstraint(
                condition=models.Q(("items_per_worker__gte", 1)),
                name="round_gives_each_worker_an_item",
            ),
        ),
        migrations.AddConstraint(
            model_name="round",
            constraint=models.CheckConstraint(
                condition=models.Q(("lease_seconds__gte", 10)),
                name="round_lease_at_least_10_seconds",
            ),
        ),
    ]
