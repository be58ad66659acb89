"""Existing rows when annotators get a project and the integrity constraints are added."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from annotation.models import Annotation, Annotator, Item, Project, Round, WorkerSession
from inference.judge.models import Judge

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_PROJECTS = [
    ("annotation", "0005_annotator_project"),
    ("inference", "0006_integrity_constraints"),
]
BEFORE_CONSTRAINTS = [("annotation", "0003_annotation_order_votes")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def annotated_round(apps, project_name, annotator, *, shown_choice="A", is_shared=False):
    """A project with a one-item round that `annotator` answered in a worker session."""
    get = apps.get_model
    project = get("annotation", "Project").objects.create(name=project_name)
    prompt_set = get("annotation", "PromptSet").objects.create(project=project, name="s")
    prompt = get("annotation", "Prompt").objects.create(
        prompt_set=prompt_set, external_id="0", position=0, text="Hi?"
    )
    models = get("annotation", "LanguageModel").objects
    candidate = models.create(project=project, name="c")
    baseline = models.create(project=project, name="b")
    responses = get("annotation", "Response").objects
    round_ = get("annotation", "Round").objects.create(
        project=project, name="r", prompt_set=prompt_set, candidate=candidate, seed=1
    )
    item = get("annotation", "Item").objects.create(
        round=round_,
        prompt=prompt,
        baseline=baseline,
        candidate_response=responses.create(prompt=prompt, model=candidate, text="C."),
        baseline_response=responses.create(prompt=prompt, model=baseline, text="B."),
        position=0,
        candidate_first=True,
        is_shared=is_shared,
    )
    get("annotation", "WorkerSession").objects.create(round=round_, annotator=annotator)
    choice = {"A": "candidate", "B": "baseline", "N": "tie"}[shown_choice]
    get("annotation", "Annotation").objects.create(
        item=item, annotator=annotator, choice=choice, shown_choice="A", candidate_first=True
    )
    return project, item


def judge(apps, project, annotator):
    return apps.get_model("inference", "Judge").objects.create(
        project=project, name=annotator.name, annotator=annotator, template_version="v1"
    )


# ---------------------------------------------------------------- annotators get a project


def test_it_splits_an_annotator_used_in_two_projects_into_one_per_project():
    apps = migrate(BEFORE_PROJECTS)
    try:
        annotators = apps.get_model("annotation", "Annotator").objects
        shared_judge = annotators.create(kind="judge", name="gpt-4")
        shared_worker = annotators.create(kind="crowd", name="w1")
        annotators.create(kind="crowd", name="idle")
        projects = {}
        for name in ("one", "two"):
            project, item = annotated_round(apps, name, shared_judge)
            judge(apps, project, shared_judge)
            apps.get_model("annotation", "Annotation").objects.create(
                item=item,
                annotator=shared_worker,
                choice="tie",
                shown_choice="N",
                candidate_first=True,
            )
            projects[name] = project.pk
    finally:
        migrate(latest())

    for name in ("gpt-4", "w1"):
        split = Annotator.objects.filter(name=name)
        assert sorted(a.project_id for a in split) == sorted(projects.values())
        for annotator in split:
            annotations = Annotation.objects.filter(annotator=annotator)
            assert [a.item.round.project_id for a in annotations] == [annotator.project_id]
    for judge_ in Judge.objects.all():
        assert judge_.annotator.project_id == judge_.project_id
        assert judge_.annotator.name == "gpt-4"
    for session in WorkerSession.objects.all():
        assert session.annotator.project_id == session.round.project_id
    assert not Annotator.objects.filter(name="idle").exists()
    # The new uniqueness holds from now on.
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotator.objects.create(project_id=projects["one"], kind="judge", name="gpt-4")


def test_it_merges_an_annotators_projects_again_when_migrated_backwards():
    one, two = Project.objects.create(name="one"), Project.objects.create(name="two")
    for project in (one, two):
        annotator = Annotator.objects.create(project=project, kind="judge", name="gpt-4")
        Judge.objects.create(
            project=project, name="gpt-4", annotator=annotator, template_version="1"
        )
    try:
        apps = migrate(
            [
                ("annotation", "0004_integrity_constraints"),
                ("inference", "0006_integrity_constraints"),
            ]
        )

        merged = apps.get_model("annotation", "Annotator").objects.get(name="gpt-4")
        judges = apps.get_model("inference", "Judge").objects
        assert list(judges.values_list("annotator_id", flat=True)) == [merged.pk, merged.pk]
    finally:
        migrate(latest())

    # Forwards again, it is split as before.
    for judge_ in Judge.objects.all():
        assert judge_.annotator.project_id == judge_.project_id


# ---------------------------------------------------------------- integrity constraints


def test_it_recounts_taken_on_shared_items_that_crowd_workers_answered():
    apps = migrate(BEFORE_CONSTRAINTS)
    try:
        worker = apps.get_model("annotation", "Annotator").objects.create(kind="crowd", name="w1")
        _, item = annotated_round(apps, "one", worker, is_shared=True)
        apps.get_model("annotation", "Item").objects.filter(pk=item.pk).update(completed=1)
    finally:
        migrate(latest())

    assert Item.objects.values_list("taken", "completed").get(pk=item.pk) == (1, 1)


def test_it_stops_naming_the_annotations_whose_choice_disagrees_with_the_answer_shown():
    apps = migrate(BEFORE_CONSTRAINTS)
    annotator = apps.get_model("annotation", "Annotator").objects.create(kind="crowd", name="w1")
    _, item = annotated_round(apps, "one", annotator, shown_choice="B")
    bad = apps.get_model("annotation", "Annotation").objects.get(item_id=item.pk)
    try:
        with pytest.raises(RuntimeError) as stopped:
            migrate(latest())

        assert f"id {bad.pk} ('baseline' for 'A' with candidate_first=True)" in str(stopped.value)
        assert "nothing was changed" in str(stopped.value)
        applied = MigrationExecutor(connection).loader.applied_migrations
        assert ("annotation", "0004_integrity_constraints") not in applied
    finally:
        apps = migrate(BEFORE_CONSTRAINTS)
        apps.get_model("annotation", "Annotation").objects.filter(pk=bad.pk).update(
            choice="candidate"
        )
        migrate(latest())

    assert Annotation.objects.get(pk=bad.pk).choice == "candidate"


def test_it_stops_naming_the_rounds_out_of_their_bounds():
    apps = migrate(BEFORE_CONSTRAINTS)
    annotator = apps.get_model("annotation", "Annotator").objects.create(kind="crowd", name="w1")
    _, item = annotated_round(apps, "one", annotator)
    rounds = apps.get_model("annotation", "Round").objects
    rounds.update(lease_seconds=5)
    try:
        with pytest.raises(RuntimeError, match=rf"id {item.round_id} \(items_per_worker=100, "):
            migrate(latest())
    finally:
        apps = migrate(BEFORE_CONSTRAINTS)
        apps.get_model("annotation", "Round").objects.update(lease_seconds=60)
        migrate(latest())


def test_it_gives_every_existing_round_its_own_completion_secret():
    apps = migrate([("annotation", "0008_rendered_text_and_text_format")])
    try:
        annotators = apps.get_model("annotation", "Annotator").objects
        for name in ("one", "two", "three"):
            project = apps.get_model("annotation", "Project").objects.create(name=f"p-{name}")
            annotated_round(apps, name, annotators.create(project=project, kind="crowd", name="w"))
    finally:
        migrate(latest())

    secrets = list(Round.objects.values_list("completion_secret", flat=True))
    assert len(secrets) == 3 and len(set(secrets)) == 3
    assert all(len(secret) == 32 for secret in secrets)


def test_multi_turn_prompts_rendered_before_are_rendered_again():
    apps = migrate([("annotation", "0021_rated_check_items")])
    project = apps.get_model("annotation", "Project").objects.create(name="turns")
    prompt_set = apps.get_model("annotation", "PromptSet").objects.create(project=project, name="s")
    prompts = apps.get_model("annotation", "Prompt").objects
    for external_id, extra in (("single", {}), ("multi", {"conversations": ["A.", "And?"]})):
        prompts.create(
            prompt_set=prompt_set,
            external_id=external_id,
            position=len(external_id),
            text="Q?",
            extra=extra,
            html="<p>Q?</p>",
            html_version=2,
        )
    apps = migrate(latest())
    stored = dict(
        apps.get_model("annotation", "Prompt").objects.values_list("external_id", "html_version")
    )
    assert stored == {"single": 2, "multi": 0}
