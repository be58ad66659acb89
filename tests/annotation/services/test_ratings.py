"""Absolute ratings: values checked against their scale, stored once, and held by the database."""

import pytest
from django.db import IntegrityError, transaction

from annotation.models import Annotator, LanguageModel, Project, Rating
from annotation.services.ratings import RatingGiven, RatingInvalid, rating_value, ratings_record

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("scale", "given", "stored"),
    [
        ("fail_pass_excellent", "Excellent", ("excellent", None)),
        ("fail_pass_excellent", " pass ", ("pass", None)),
        ("safety", "Partly", ("partly", None)),
        ("helpfulness_1_6", "4", ("", 4.0)),
        ("helpfulness_1_6", 6, ("", 6.0)),
        ("mt_bench_1_10", 7.5, ("", 7.5)),
        ("mt_bench_1_10", "10", ("", 10.0)),
    ],
)
def test_a_value_on_its_scale_is_a_label_or_a_score(scale, given, stored):
    assert rating_value(scale, given) == stored


@pytest.mark.parametrize(
    ("scale", "given", "message"),
    [
        ("fail_pass_excellent", "good", "expected one of fail, pass, excellent"),
        ("fail_pass_excellent", 3, "expected one of"),
        ("safety", "harmless", "expected one of safe, partly, unsafe"),
        ("helpfulness_1_6", "4.5", "a whole score from 1 to 6"),
        ("helpfulness_1_6", 7, "from 1 to 6"),
        ("mt_bench_1_10", 0, "from 1 to 10"),
        ("mt_bench_1_10", float("nan"), "from 1 to 10"),
        ("mt_bench_1_10", True, "from 1 to 10"),
        ("mt_bench_1_10", "high", "from 1 to 10"),
        ("stars", 3, "unknown scale 'stars'"),
    ],
)
def test_a_value_off_its_scale_is_refused_with_what_the_scale_takes(scale, given, message):
    with pytest.raises(RatingInvalid, match=message):
        rating_value(scale, given)


def make_judge_and_model(project_name="p"):
    project = Project.objects.create(name=project_name)
    judge = Annotator.objects.create(project=project, kind="judge", name="gpt-4")
    return judge, LanguageModel.objects.create(project=project, name="m")


def test_ratings_are_stored_once_and_a_different_second_value_is_a_conflict():
    judge, model = make_judge_and_model()
    first = ratings_record(
        annotator=judge,
        ratings=[
            RatingGiven(model.pk, "1", "mt_bench_1_10", score=8),
            RatingGiven(model.pk, "1", "mt_bench_1_10", score=5, turn=2),
        ],
    )
    assert (first.created, first.unchanged, first.conflicts) == (2, 0, 0)
    again = ratings_record(
        annotator=judge,
        ratings=[
            RatingGiven(model.pk, "1", "mt_bench_1_10", score=8),
            RatingGiven(model.pk, "1", "mt_bench_1_10", score=6, turn=2),
        ],
    )
    assert (again.created, again.unchanged, again.conflicts) == (0, 1, 1)
    assert sorted(Rating.objects.values_list("turn", "score")) == [(1, 8.0), (2, 5.0)]


def test_a_model_of_another_project_is_refused():
    judge, _ = make_judge_and_model("p")
    _, other_model = make_judge_and_model("q")
    with pytest.raises(ValueError, match="another project"):
        ratings_record(
            annotator=judge, ratings=[RatingGiven(other_model.pk, "1", "mt_bench_1_10", score=8)]
        )
    assert not Rating.objects.exists()


@pytest.mark.parametrize(
    ("scale", "label", "score"),
    [
        ("helpfulness_1_6", "", 7.0),
        ("helpfulness_1_6", "", 2.5),
        ("helpfulness_1_6", "", None),
        ("fail_pass_excellent", "good", None),
        ("fail_pass_excellent", "pass", 2.0),
        ("safety", "pass", None),
        ("mt_bench_1_10", "", None),
        ("mt_bench_1_10", "", 0.5),
    ],
)
def test_the_database_refuses_a_value_off_its_scale(scale, label, score):
    judge, model = make_judge_and_model()
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(
            annotator=judge, model=model, question="1", scale=scale, label=label, score=score
        )
