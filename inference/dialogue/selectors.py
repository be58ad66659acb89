"""Reads for the dialogue pages: the dialogues a researcher may see, each answer's label, the
pairs of two models' dialogues that open alike, and the reports over a project's labels and
comparisons."""

import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import Count, QuerySet
from django.urls import reverse

from annotation.models import Annotator, LanguageModel, Rating, Response
from annotation.reports.ratings import RatingTable, rating_rows, rating_tables
from annotation.reports.stats import DEFAULT_RESAMPLES, Outcome, bootstrap_ratio, rng_for
from annotation.selectors import Viewer, visible_to
from annotation.services.completion import signed_code
from inference.dialogue.models import Dialogue, DialogueComparison, DialogueStudy, DialogueTurn

SCALE = Rating.Scale.FAIL_PASS_EXCELLENT
QUESTION_PREFIX = "dialogue-"


def dialogues_for_user(user: Viewer) -> QuerySet[Dialogue]:
    return visible_to(user, Dialogue.objects.all()).select_related("project", "model", "annotator")


def study_link(study: DialogueStudy) -> str:
    """The link crowd workers open (PUBLIC_BASE_URL, as for a round's crowd link)."""
    return settings.PUBLIC_BASE_URL + reverse("dialogue-study", args=[study.token])


def studies_for_user(user: Viewer) -> QuerySet[DialogueStudy]:
    return (
        visible_to(user, DialogueStudy.objects.all())
        .select_related("project")
        .prefetch_related("language_models")
        .annotate(workers=Count("dialogues"))
    )


def author_of(dialogue: Dialogue, user: Viewer) -> Annotator | None:
    """The viewer as an author of the dialogue's project, if they have labelled or spoken."""
    if not user.is_authenticated:
        return None
    return Annotator.objects.filter(
        project_id=dialogue.project_id, kind=Annotator.Kind.AUTHOR, name=user.get_username()
    ).first()


def dialogue_labels(dialogue: Dialogue, annotator: Annotator | None) -> dict[int, str]:
    """The labeller's label of each answer, by its number."""
    if annotator is None:
        return {}
    return dict(
        Rating.objects.filter(
            annotator=annotator,
            model=dialogue.model,
            question=dialogue.question,
            scale=SCALE,
        ).values_list("turn", "label")
    )


def dialogue_rows(project_id: int) -> pd.DataFrame:
    """Every label of an answer in the project's dialogues, one row each (rating_rows' columns):
    the authors' on the dialogue pages (question "dialogue-ID", turn = the answer's number)
    and those given in rounds over dialogue turns (dialogue_round_create), filed the same way."""
    rows = rating_rows(project_id, scale=SCALE)
    in_rounds = dict(
        Response.objects.filter(model__project_id=project_id, prompt__extra__has_key="dialogue")
        .filter(generation__has_key="dialogue")
        .values_list("pk", "prompt__extra")
    )
    if in_rounds:
        turns = rows["response"].map(in_rounds)
        found = turns.notna()
        rows.loc[found, "question"] = [f"{QUESTION_PREFIX}{t['dialogue']}" for t in turns[found]]
        rows.loc[found, "turn"] = [int(t["turn"]) for t in turns[found]]
    return rows[rows["question"].str.fullmatch(rf"{QUESTION_PREFIX}\d+")].reset_index(drop=True)


@dataclass(frozen=True)
class DialogueModelRow:
    """A model's labelled answers in dialogues: the paper's Section 6 figures."""

    model: str
    dialogues: int
    answers: int
    fails: int
    shares: dict[str, float]
    # 95 % interval of the pass-or-excellent share, resampling dialogues.
    ci95: tuple[float, float] | None
    # Per answer number (1 = the answer to the opening message): labels given, fails among them.
    by_turn: dict[int, tuple[int, int]]

    def as_json(self) -> dict:
        return {
            "model": self.model,
            "dialogues": self.dialogues,
            "answers": self.answers,
            "fails": self.fails,
            "shares": self.shares,
            "ci95": list(self.ci95) if self.ci95 else None,
            "by_turn": {
                str(turn): {"answers": answers, "fails": fails}
                for turn, (answers, fails) in self.by_turn.items()
            },
        }


def dialogue_report(project_id: int) -> tuple[list[DialogueModelRow], list[RatingTable]]:
    """Per model: dialogues, answers labelled, how many failed, the share of each label; and the
    tables the ratings figure draws (one per group of annotators)."""
    rows = dialogue_rows(project_id)
    tables = rating_tables(rows)
    per_model: dict[str, DialogueModelRow] = {}
    for table in tables:
        for row in table.rows:
            of_model = rows[(rows["model"] == row.model) & (rows["group"] == table.group)]
            failed = of_model["label"] == "fail"
            by_turn = {
                int(turn): (len(of_turn), int(failed[of_turn.index].sum()))
                for turn, of_turn in of_model.groupby("turn", sort=True)
            }
            per_model[f"{table.group}\0{row.model}"] = DialogueModelRow(
                model=row.model if table.group == "author" else f"{row.model} ({table.group})",
                dialogues=of_model["question"].nunique(),
                answers=row.n,
                fails=int(failed.sum()),
                shares=row.shares,
                ci95=row.ci95,
                by_turn=by_turn,
            )
    return list(per_model.values()), tables


def opening(dialogue: Dialogue) -> str:
    """The person's first message."""
    first = dialogue.turns.filter(index=0).values_list("text", flat=True).first()
    return first or ""


@dataclass(frozen=True)
class DialoguePair:
    """Two models' finished dialogues that open with the same message; `first` has the lower id."""

    first: Dialogue
    second: Dialogue

    @property
    def key(self) -> tuple[int, int]:
        return (self.first.pk, self.second.pk)

    def first_on_left(self, annotator_name: str) -> bool:
        """Where the first dialogue is shown to this labeller: drawn once per labeller and pair,
        so a reload shows the same sides."""
        return random.Random(f"{annotator_name}\0{self.first.pk}\0{self.second.pk}").random() < 0.5


def dialogue_pairs(
    project_id: int, model_a: LanguageModel, model_b: LanguageModel
) -> list[DialoguePair]:
    """The two models' finished dialogues paired by opening message (the i-th of one model with
    the i-th of the other when an opening was used more than once), in the order of the
    openings' first dialogue."""
    openings: dict[int, dict[str, list[Dialogue]]] = {
        model_a.pk: defaultdict(list),
        model_b.pk: defaultdict(list),
    }
    finished = (
        Dialogue.objects.filter(
            project_id=project_id, model__in=[model_a, model_b], status=Dialogue.Status.DONE
        )
        .select_related("model")
        .order_by("pk")
    )
    first_messages = dict(
        DialogueTurn.objects.filter(dialogue__in=finished, index=0).values_list(
            "dialogue_id", "text"
        )
    )
    for dialogue in finished:
        text = first_messages.get(dialogue.pk, "").strip()
        if text:
            openings[dialogue.model_id][text].append(dialogue)
    pairs = []
    for text, of_a in openings[model_a.pk].items():
        for one, other in zip(of_a, openings[model_b.pk].get(text, []), strict=False):
            first, second = sorted((one, other), key=lambda dialogue: dialogue.pk)
            pairs.append(DialoguePair(first, second))
    return sorted(pairs, key=lambda pair: pair.first.pk)


@dataclass(frozen=True)
class ComparisonRow:
    """How often a model's dialogues were judged better than another's on the same openings:
    `outcome.wins` counts verdicts for `model`, with the tie-discounted win rate's 95 %
    interval resampling the pairs of dialogues."""

    model: str
    other: str
    pairs: int
    outcome: Outcome

    def as_json(self) -> dict:
        return {
            "model": self.model,
            "other": self.other,
            "pairs": self.pairs,
            **self.outcome.as_json(),
        }


def comparison_report(
    project_id: int, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> list[ComparisonRow]:
    """Every pair of models compared on dialogues, the model first in name order."""
    verdicts = DialogueComparison.objects.filter(project_id=project_id).values_list(
        "first_id", "second_id", "first__model__name", "second__model__name", "choice"
    )
    # {(model, other): {(first, second): [wins, ties, losses]}}, wins counted for `model`.
    cells: dict[tuple[str, str], dict[tuple[int, int], list[int]]] = defaultdict(dict)
    for first, second, first_model, second_model, choice in verdicts:
        flipped = second_model < first_model
        model, other = (second_model, first_model) if flipped else (first_model, second_model)
        tally = cells[(model, other)].setdefault((first, second), [0, 0, 0])
        if choice == DialogueComparison.Choice.NEITHER:
            tally[1] += 1
        else:
            won = (choice == DialogueComparison.Choice.FIRST) != flipped
            tally[0 if won else 2] += 1
    rows = []
    for (model, other), by_pair in sorted(cells.items()):
        counts = np.array(list(by_pair.values()), dtype=np.int64)
        wins, ties, losses = (int(x) for x in counts.sum(axis=0))
        interval = None
        if len(counts) >= 2 and resamples > 0:
            low, high = bootstrap_ratio(
                2 * counts[:, 0] + counts[:, 1],
                2 * counts.sum(axis=1),
                resamples=resamples,
                rng=rng_for(seed, "dialogue-comparison", model, other),
            )
            interval = (100 * low, 100 * high)
        rows.append(ComparisonRow(model, other, len(counts), Outcome(wins, ties, losses, interval)))
    return rows


@dataclass(frozen=True)
class StudyWorker:
    """A crowd worker of a dialogue study: their dialogue, how far it got, and the completion
    code they were shown (empty until they finished and labelled every answer)."""

    worker: str
    dialogue: int
    model: str
    status: str
    answers: int
    labelled: int
    completion_code: str


def study_workers(study: DialogueStudy) -> list[StudyWorker]:
    workers = []
    for dialogue in study.dialogues.select_related("annotator", "model", "study").order_by("pk"):
        assert dialogue.annotator is not None  # A study's dialogue is a worker's.
        answers, labelled = _answers_labelled(dialogue, dialogue.annotator)
        workers.append(
            StudyWorker(
                worker=dialogue.annotator.name,
                dialogue=dialogue.pk,
                model=dialogue.model.name,
                status=dialogue.status,
                answers=answers,
                labelled=labelled,
                completion_code=study_completion_code(dialogue) or "",
            )
        )
    return workers


def study_completion_code(dialogue: Dialogue) -> str | None:
    """The worker's code once their dialogue is finished and every answer labelled: an HMAC of
    their id under the study's secret, so the researcher can check any code handed in."""
    study = dialogue.study
    if study is None or dialogue.status != Dialogue.Status.DONE or dialogue.annotator is None:
        return None
    answers, labelled = _answers_labelled(dialogue, dialogue.annotator)
    if labelled < answers:
        return None
    return signed_code(
        study.completion_secret, f"dialogue-study-{study.pk}:{dialogue.annotator.name}"
    )


def _answers_labelled(dialogue: Dialogue, annotator: Annotator) -> tuple[int, int]:
    """How many answers the dialogue has, and how many of them the annotator labelled."""
    answers = dialogue.turns.filter(
        role=DialogueTurn.Role.ASSISTANT, status=DialogueTurn.Status.DONE
    ).count()
    labelled = Rating.objects.filter(
        annotator=annotator, question=dialogue.question, scale=SCALE
    ).count()
    return answers, labelled


def turns_with_labels(
    dialogue: Dialogue, annotator: Annotator | None
) -> tuple[list[tuple[DialogueTurn, str | None]], int]:
    """The dialogue's messages in order, each answer with the annotator's label (None for the
    person's messages and unlabelled answers), and how many answers there are."""
    labels = dialogue_labels(dialogue, annotator)
    turns = [
        (turn, labels.get(turn.number) if turn.role == DialogueTurn.Role.ASSISTANT else None)
        for turn in dialogue.turns.order_by("index")
    ]
    answers = sum(1 for turn, _ in turns if turn.role == DialogueTurn.Role.ASSISTANT)
    return turns, answers
