"""Dawid-Skene annotator competence, on a seeded synthetic crowd and against crowd-kit."""

import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from annotation.reports.competence import dawid_skene

CLASSES = ("candidate", "baseline", "tie")
PRIORS = (0.45, 0.35, 0.2)
GOOD_ACCURACY = 0.85
GOOD, SPAMMER, ALWAYS_CANDIDATE = "good", "spammer", "always-candidate"
KINDS = [GOOD] * 15 + [SPAMMER] * 3 + [ALWAYS_CANDIDATE] * 2


@dataclass(frozen=True)
class Crowd:
    truth: dict[str, str]
    kind: dict[str, str]
    triples: list[tuple[str, str, str]]

    def empirical_accuracy(self, worker: str) -> float:
        """The share of the worker's labels that are the true ones."""
        given = [(item, label) for item, w, label in self.triples if w == worker]
        return float(np.mean([self.truth[item] == label for item, label in given]))

    def majority_vote(self) -> dict[str, str]:
        """The most frequent label per item, ties to the first in CLASSES."""
        votes: dict[str, np.ndarray] = {}
        for item, _, label in self.triples:
            votes.setdefault(item, np.zeros(len(CLASSES)))[CLASSES.index(label)] += 1
        return {item: CLASSES[int(np.argmax(v))] for item, v in votes.items()}

    def share_correct(self, labels: dict[str, str]) -> float:
        return float(np.mean([labels[item] == truth for item, truth in self.truth.items()]))


def synthetic_crowd(seed: int = 0, n_items: int = 500, labels_per_item: int = 5) -> Crowd:
    """Good workers right with probability 0.85 (else one of the other two labels at random),
    spammers uniformly random, and two who always answer "candidate"; each item is labelled by
    `labels_per_item` distinct workers drawn at random."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(CLASSES), size=n_items, p=PRIORS)
    workers = np.argsort(rng.random((n_items, len(KINDS))), axis=1)[:, :labels_per_item]
    true = np.repeat(truth[:, None], labels_per_item, axis=1)
    wrong = (true + rng.integers(1, len(CLASSES), size=true.shape)) % len(CLASSES)
    good = np.where(rng.random(true.shape) < GOOD_ACCURACY, true, wrong)
    spam = rng.integers(len(CLASSES), size=true.shape)
    kind = np.array(KINDS)[workers]
    given = np.select([kind == GOOD, kind == SPAMMER], [good, spam], default=0)
    names = [f"worker-{w:02d}" for w in range(len(KINDS))]
    return Crowd(
        truth={f"item-{i}": CLASSES[t] for i, t in enumerate(truth)},
        kind=dict(zip(names, KINDS, strict=True)),
        triples=[
            (f"item-{i}", names[workers[i, j]], CLASSES[given[i, j]])
            for i in range(n_items)
            for j in range(labels_per_item)
        ],
    )


def agreement(first: dict[str, str], second: dict[str, str]) -> float:
    assert first.keys() == second.keys()
    return float(np.mean([first[item] == second[item] for item in first]))


@pytest.fixture(scope="module")
def crowd() -> Crowd:
    return synthetic_crowd()


def test_it_ranks_good_workers_above_spammers_and_a_worker_who_always_says_candidate(crowd):
    competence = dawid_skene(crowd.triples, CLASSES)

    good = [competence.accuracy[w] for w, kind in crowd.kind.items() if kind == GOOD]
    others = [competence.accuracy[w] for w, kind in crowd.kind.items() if kind != GOOD]
    # Measured with seed 0: good 0.80-0.94, spammers 0.26-0.31, always-"candidate" 0.40.
    assert min(good) > max(others) + 0.3


def test_it_estimates_each_good_workers_accuracy_within_a_few_points(crowd):
    competence = dawid_skene(crowd.triples, CLASSES)

    for worker, kind in crowd.kind.items():
        if kind == GOOD:
            # Measured with seed 0: at most 0.042 from the share of their labels that are right.
            assert competence.accuracy[worker] == pytest.approx(
                crowd.empirical_accuracy(worker), abs=0.05
            ), worker


def test_it_learns_that_a_worker_who_always_says_candidate_says_it_whatever_the_truth(crowd):
    competence = dawid_skene(crowd.triples, CLASSES)

    for worker, kind in crowd.kind.items():
        if kind == ALWAYS_CANDIDATE:
            confusion = competence.confusion[worker]
            np.testing.assert_allclose(confusion[:, CLASSES.index("candidate")], 1, atol=0.01)


def test_its_confusion_rows_are_probability_distributions(crowd):
    competence = dawid_skene(crowd.triples, CLASSES)

    for worker in competence.workers:
        confusion = competence.confusion[worker]
        assert confusion.shape == (3, 3)
        np.testing.assert_allclose(confusion.sum(axis=1), 1)
    for posterior in competence.item_posteriors.values():
        assert posterior.sum() == pytest.approx(1)


def test_it_labels_items_more_accurately_than_majority_vote(crowd):
    competence = dawid_skene(crowd.triples, CLASSES)

    estimated = crowd.share_correct(competence.item_labels)
    majority = crowd.share_correct(crowd.majority_vote())
    # Measured with seed 0: 0.948 against 0.902.
    assert estimated >= majority + 0.03
    assert estimated > 0.93
    assert competence.converged


def test_it_is_deterministic(crowd):
    first, second = dawid_skene(crowd.triples, CLASSES), dawid_skene(crowd.triples, CLASSES)

    assert first.accuracy == second.accuracy
    assert first.item_labels == second.item_labels
    assert first.iterations == second.iterations


def test_it_lists_workers_and_items_in_order_of_first_appearance():
    triples = [("b", "zoe", "tie"), ("a", "adam", "tie"), ("b", "adam", "tie"), ("c", "mia", "tie")]

    competence = dawid_skene(triples, CLASSES)

    assert competence.workers == ["zoe", "adam", "mia"]
    assert list(competence.item_labels) == ["b", "a", "c"]
    assert list(competence.accuracy) == ["zoe", "adam", "mia"]


def crowd_kit_fit(crowd: Crowd, **kwargs):
    crowdkit = pytest.importorskip("crowdkit.aggregation")
    pd = pytest.importorskip("pandas")

    frame = pd.DataFrame(crowd.triples, columns=["task", "worker", "label"])
    with warnings.catch_warnings():
        # crowd-kit 1.4 still passes inplace= and copy=, which pandas 3 deprecates.
        warnings.simplefilter("ignore")
        model = crowdkit.DawidSkene(**kwargs).fit(frame)
    # crowd-kit's errors_ holds P(observed | true) indexed (worker, observed), one column per
    # true label, and leaves out labels a worker never gave; ours is [true, given].
    confusion = {
        worker: model.errors_.loc[worker]
        .reindex(index=list(CLASSES), columns=list(CLASSES), fill_value=0.0)
        .to_numpy()
        .T
        for worker in crowd.kind
    }
    posteriors = model.probas_.reindex(columns=list(CLASSES))
    return model.labels_.to_dict(), confusion, posteriors


def test_it_agrees_with_crowd_kits_dawid_skene(crowd):
    labels, confusion, _ = crowd_kit_fit(crowd, n_iter=100)

    competence = dawid_skene(crowd.triples, CLASSES)

    # Measured with seed 0: 99.6 % of items agree and the diagonals differ by at most 0.021.
    # Most of that is crowd-kit stopping early: its tolerance is on the change of the evidence
    # lower bound per label (1e-5), which it meets here after 4 iterations.
    assert agreement(labels, competence.item_labels) >= 0.99
    for worker in competence.workers:
        np.testing.assert_allclose(
            np.diag(competence.confusion[worker]), np.diag(confusion[worker]), atol=0.03
        )


def test_it_differs_from_crowd_kit_run_to_convergence_only_by_its_smoothing(crowd):
    labels, confusion, _ = crowd_kit_fit(crowd, n_iter=100, tol=-np.inf)

    competence = dawid_skene(crowd.triples, CLASSES)

    # Measured with seed 0: every item agrees, and no confusion cell differs by more than 0.0014.
    assert agreement(labels, competence.item_labels) == 1
    for worker in competence.workers:
        np.testing.assert_allclose(competence.confusion[worker], confusion[worker], atol=0.005)


def test_it_reproduces_crowd_kit_when_run_for_the_same_iterations_without_smoothing(crowd):
    # crowd-kit never stops early with tol=-inf and clips its counts at 1e-10 instead of
    # smoothing them; both start from the majority vote's shares.
    labels, confusion, posteriors = crowd_kit_fit(crowd, n_iter=100, tol=-np.inf)

    competence = dawid_skene(
        crowd.triples, CLASSES, max_iterations=100, tolerance=0.0, smoothing=1e-10
    )

    assert competence.iterations == 100
    assert competence.item_labels == labels
    for worker in competence.workers:
        np.testing.assert_allclose(competence.confusion[worker], confusion[worker], atol=1e-6)
    for item, posterior in competence.item_posteriors.items():
        np.testing.assert_allclose(posterior, posteriors.loc[item].to_numpy(), atol=1e-6)


def test_it_returns_nothing_for_no_labels():
    competence = dawid_skene([], CLASSES)

    assert competence.workers == []
    assert competence.accuracy == {}
    assert competence.confusion == {}
    assert competence.item_labels == {}
    assert competence.item_posteriors == {}


def test_it_takes_a_single_workers_labels_as_the_truth():
    triples = [(i, "solo", CLASSES[i % 3]) for i in range(30)]

    competence = dawid_skene(triples, CLASSES)

    assert competence.workers == ["solo"]
    assert competence.item_labels == {i: CLASSES[i % 3] for i in range(30)}
    # With nobody to compare against, the labels say nothing about the worker's accuracy: the
    # smoothing pulls it towards chance a little with every iteration (0.83 after 100 here).
    assert 1 / 3 < competence.accuracy["solo"] < 1


def test_it_rejects_a_label_outside_the_classes_naming_worker_item_and_label():
    triples = [("item-1", "ann", "tie"), ("item-2", "bob", "both bad")]

    with pytest.raises(ValueError, match=r"'bob'.*'item-2'.*'both bad'"):
        dawid_skene(triples, CLASSES)


def test_it_gives_workers_who_all_agree_an_accuracy_near_one():
    rng = np.random.default_rng(1)
    truth = rng.choice(3, size=200, p=PRIORS)
    triples = [(i, f"w{w}", CLASSES[t]) for i, t in enumerate(truth) for w in range(4)]

    competence = dawid_skene(triples, CLASSES)

    assert all(accuracy > 0.99 for accuracy in competence.accuracy.values())
    assert competence.item_labels == {i: CLASSES[t] for i, t in enumerate(truth)}


def test_it_gives_a_worker_a_uniform_row_for_a_class_they_never_saw():
    triples = [(i, w, "candidate") for i in range(10) for w in ("ann", "bob")]

    competence = dawid_skene(triples, CLASSES)

    # Only the smoothing and the posteriors' small doubts about "candidate" fill these rows.
    np.testing.assert_allclose(competence.confusion["ann"][1:], 1 / 3, atol=0.05)


def test_it_does_not_underflow_with_a_thousand_labels_per_item():
    # A thousand labels 60 % right put every class's likelihood far below 1e-308.
    rng = np.random.default_rng(2)
    truth = rng.choice(3, size=60)
    triples = [
        (i, f"w{w}", CLASSES[t if rng.random() < 0.6 else rng.integers(3)])
        for i, t in enumerate(truth)
        for w in range(1000)
    ]

    competence = dawid_skene(triples, CLASSES)

    posteriors = np.array(list(competence.item_posteriors.values()))
    assert np.all(np.isfinite(posteriors))
    np.testing.assert_allclose(posteriors.sum(axis=1), 1)
    assert competence.item_labels == {i: CLASSES[t] for i, t in enumerate(truth)}


def test_it_credits_a_worker_who_always_says_candidate_with_the_share_of_candidate_items():
    truth = ["candidate"] * 60 + ["baseline"] * 30 + ["tie"] * 10
    triples = [(i, w, t) for i, t in enumerate(truth) for w in ("ann", "bob", "cy")]
    triples += [(i, "dan", "candidate") for i in range(len(truth))]

    competence = dawid_skene(triples, CLASSES)

    assert competence.accuracy["dan"] == pytest.approx(0.6, abs=0.01)
    assert competence.accuracy["ann"] == pytest.approx(1, abs=0.01)
