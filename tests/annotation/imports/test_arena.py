"""Chatbot Arena battle logs in and out; the leaderboard from them equals FastChat's
compute_mle_elo (a logistic regression without intercept or penalty, ties as half a win each)
on the same battles."""

import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from sklearn.linear_model import LogisticRegression

from annotation.imports.arena import arena_import
from annotation.imports.records import ImportFailed
from annotation.models import Battle, LanguageModel, Project
from annotation.reports.build import leaderboard
from annotation.reports.frames import project_battles

pytestmark = pytest.mark.django_db

STRENGTHS = {"gpt-4": 1.2, "claude-v1": 0.9, "lima-65b": 0.6, "alpaca-65b": 0.0, "vicuna-13b": 0.3}


def battle_log(count: int = 4000, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    names = list(STRENGTHS)
    battles = []
    for number in range(count):
        a, b = rng.choice(len(names), size=2, replace=False)
        p_a = 1 / (1 + 10 ** (STRENGTHS[names[b]] - STRENGTHS[names[a]]))
        draw = rng.random()
        if draw < 0.15:
            winner = "tie" if draw < 0.1 else "tie (bothbad)"
        else:
            winner = "model_a" if rng.random() < p_a else "model_b"
        battles.append(
            {
                "question_id": f"q{number}",
                "model_a": names[a],
                "model_b": names[b],
                "winner": winner,
                "anony": True,
                "language": "English",
            }
        )
    return battles


def fastchat_mle_elo(battles: list[dict], scale=400, base=10, init=1000) -> dict[str, float]:
    """FastChat's compute_mle_elo: wins doubled, a tie once for each side, then logistic
    regression with +log(base) for model_a and -log(base) for model_b."""
    models = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    for b in battles:
        i, j = index[b["model_a"]], index[b["model_b"]]
        if b["winner"] == "model_a":
            wins[i, j] += 2
        elif b["winner"] == "model_b":
            wins[j, i] += 2
        else:
            wins[i, j] += 1
            wins[j, i] += 1
    rows, labels, weights = [], [], []
    for i in range(len(models)):
        for j in range(len(models)):
            if i == j or wins[i, j] + wins[j, i] == 0:
                continue
            x = np.zeros(len(models))
            x[i], x[j] = np.log(base), -np.log(base)
            for y, w in ((1, wins[i, j]), (0, wins[j, i])):
                rows.append(x)
                labels.append(y)
                weights.append(w)
    model = LogisticRegression(fit_intercept=False, penalty=None, tol=1e-6)
    model.fit(np.array(rows), np.array(labels), sample_weight=np.array(weights))
    return {m: scale * model.coef_[0][index[m]] + init for m in models}


def test_the_leaderboard_from_arena_battles_equals_fastchats_to_a_tenth_of_a_point():
    project = Project.objects.create(name="arena")
    battles = battle_log()
    summary = arena_import(project=project, raw=json.dumps(battles).encode(), file="clean.json")
    assert summary.created == 4000 and set(summary.winners) == set(Battle.Winner.values)
    ours = {
        r.model: r.rating for r in leaderboard(project_battles(project.pk), "arena", resamples=20)
    }
    theirs = fastchat_mle_elo(battles)
    # FastChat's ratings are unconstrained up to a shift (it anchors them to a model when it
    # can); both here come out centred, so compare after removing the mean.
    centre = np.mean(list(theirs.values())) - np.mean(list(ours.values()))
    for model, rating in theirs.items():
        assert ours[model] == pytest.approx(rating - centre, abs=0.1)
    assert max(ours, key=ours.get) == "gpt-4"


def test_a_reimport_skips_the_battles_already_there_and_a_bad_record_names_its_line():
    project = Project.objects.create(name="arena")
    battles = battle_log(10)
    arena_import(project=project, raw=json.dumps(battles).encode(), file="a.json")
    again = arena_import(project=project, raw=json.dumps(battles).encode(), file="a.json")
    assert (again.created, again.skipped) == (0, 10)
    bad = [*battles[:3], {**battles[3], "question_id": "new", "winner": "both"}]
    lines = "\n".join(json.dumps(b) for b in bad).encode()
    with pytest.raises(ImportFailed) as error:
        arena_import(project=project, raw=lines, file="b.jsonl")
    assert (error.value.line, error.value.field) == (4, "winner")
    twice = "\n".join(json.dumps(b) for b in [battles[0], battles[0]]).encode()
    with pytest.raises(ImportFailed, match="the same question_id as line 1"):
        arena_import(project=project, raw=twice, file="c.jsonl")
    same = [{"model_a": "x", "model_b": "x", "winner": "tie"}]
    with pytest.raises(ImportFailed, match="both sides are 'x'"):
        arena_import(project=project, raw=json.dumps(same).encode(), file="c.json")
    assert Battle.objects.count() == 10 and not LanguageModel.objects.filter(name="x").exists()


def test_a_projects_verdicts_export_as_battles_that_import_back_to_the_same_leaderboard(tmp_path):
    project = Project.objects.create(name="arena")
    arena_import(project=project, raw=json.dumps(battle_log(600)).encode(), file="a.json")
    out = tmp_path / "battles.json"
    call_command("export_battles", "--project", "arena", "--out", str(out), stdout=io.StringIO())
    exported = json.loads(out.read_text())
    assert len(exported) == 600 and set(exported[0]) == {"model_a", "model_b", "winner", "judge"}
    copy = Project.objects.create(name="copy")
    arena_import(project=copy, raw=out.read_bytes(), file=out.name)
    again = arena_import(project=copy, raw=out.read_bytes(), file=out.name)
    assert (again.created, again.skipped) == (0, 600)  # Identical records are kept apart.
    first = leaderboard(project_battles(project.pk), "arena", resamples=10)
    second = leaderboard(project_battles(copy.pk), "arena", resamples=10)
    assert [(r.model, round(r.rating, 6)) for r in first] == [
        (r.model, round(r.rating, 6)) for r in second
    ]
