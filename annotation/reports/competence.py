"""Annotator competence by Dawid & Skene (1979): each worker's confusion matrix and each item's
true label, estimated together by expectation-maximisation.

Pure numpy over (item, worker, label) triples. Every step works on flat arrays with one entry
per label, summed per item or per worker with `np.bincount`, so the cost of an iteration grows
with the number of labels, never with items times workers.
"""

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Competence:
    """What the crowd's labels say about the workers and the items.

    `confusion[worker][true, given]` is the probability that the worker gives label `given` to an
    item whose true label is `true`, both indexed as in `classes`; each row sums to 1.
    `accuracy[worker]` is the probability that their label is the true one: the diagonal of
    their confusion matrix weighted by the estimated class priors.
    """

    workers: list[str]
    accuracy: dict[str, float]
    confusion: dict[str, FloatArray]
    item_labels: dict[Hashable, str]
    item_posteriors: dict[Hashable, FloatArray]
    iterations: int
    converged: bool


@dataclass(frozen=True)
class _Labels:
    items: list[Hashable]
    workers: list[str]
    item: IndexArray
    worker: IndexArray
    label: IndexArray
    # Flat index into counts[worker, true, given] of every (label, true class) pair, label-major;
    # one bincount over it is several times faster than np.add.at.
    confusion_cell: IndexArray


def dawid_skene(
    labels: Iterable[tuple[Hashable, str, str]],
    classes: Sequence[str],
    *,
    max_iterations: int = 100,
    tolerance: float = 1e-6,
    smoothing: float = 0.01,
) -> Competence:
    """Fit Dawid-Skene to (item, worker, label) triples over the label set `classes`.

    Starts from the majority vote's shares and stops when no item's posterior moves by
    `tolerance` or more. `smoothing` is added to every cell of the class and confusion counts,
    so a worker who never saw a class gets a near-uniform row for it. Items that only one
    worker labelled say nothing about that worker: their labels stay the item labels, but the
    smoothing pulls their estimated accuracy towards chance a little with every iteration.
    """
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be non-empty and distinct, got {list(classes)!r}")
    if smoothing <= 0:
        raise ValueError(f"smoothing must be positive, got {smoothing!r}")
    data = _index(labels, classes)
    if not data.items:
        # Nothing to estimate, so nothing left to converge.
        return Competence([], {}, {}, {}, {}, iterations=0, converged=True)

    n_items, n_workers, n_classes = len(data.items), len(data.workers), len(classes)
    posteriors = _majority_vote_shares(data, n_items, n_classes)
    iterations, converged = 0, False
    while iterations < max_iterations and not converged:
        priors, confusion = _maximise(data, posteriors, n_workers, smoothing)
        updated = _expect(data, priors, confusion, n_items)
        converged = bool(np.max(np.abs(updated - posteriors)) < tolerance)
        posteriors = updated
        iterations += 1
    # Report the parameters that the final posteriors imply, as the last M-step would.
    priors, confusion = _maximise(data, posteriors, n_workers, smoothing)

    accuracy = np.einsum("k,wkk->w", priors, confusion)
    best = np.argmax(posteriors, axis=1)
    posteriors.flags.writeable = False
    confusion.flags.writeable = False
    return Competence(
        workers=data.workers,
        accuracy={w: float(a) for w, a in zip(data.workers, accuracy, strict=True)},
        confusion=dict(zip(data.workers, confusion, strict=True)),
        item_labels={item: classes[k] for item, k in zip(data.items, best, strict=True)},
        item_posteriors=dict(zip(data.items, posteriors, strict=True)),
        iterations=iterations,
        converged=converged,
    )


def _index(labels: Iterable[tuple[Hashable, str, str]], classes: Sequence[str]) -> _Labels:
    """Number items and workers in order of first appearance, and labels as in `classes`."""
    class_index = {label: k for k, label in enumerate(classes)}
    item_index: dict[Hashable, int] = {}
    worker_index: dict[str, int] = {}
    item_codes, worker_codes, label_codes = [], [], []
    for item, worker, label in labels:
        code = class_index.get(label)
        if code is None:
            raise ValueError(
                f"worker {worker!r} gave item {item!r} the label {label!r}, "
                f"which is not one of {list(classes)!r}"
            )
        item_codes.append(item_index.setdefault(item, len(item_index)))
        worker_codes.append(worker_index.setdefault(worker, len(worker_index)))
        label_codes.append(code)
    worker_code = np.asarray(worker_codes, dtype=np.intp)
    label_code = np.asarray(label_codes, dtype=np.intp)
    n_classes = len(classes)
    true = np.arange(n_classes)
    return _Labels(
        items=list(item_index),
        workers=list(worker_index),
        item=np.asarray(item_codes, dtype=np.intp),
        worker=worker_code,
        label=label_code,
        confusion_cell=(
            (worker_code[:, None] * n_classes + true) * n_classes + label_code[:, None]
        ).ravel(),
    )


def _majority_vote_shares(data: _Labels, n_items: int, n_classes: int) -> FloatArray:
    votes = np.bincount(data.item * n_classes + data.label, minlength=n_items * n_classes).reshape(
        n_items, n_classes
    )
    shares: FloatArray = votes / votes.sum(axis=1, keepdims=True)
    return shares


def _maximise(
    data: _Labels, posteriors: FloatArray, n_workers: int, smoothing: float
) -> tuple[FloatArray, FloatArray]:
    """Class priors (K,) and row-stochastic confusion matrices (workers, K, K) from posteriors."""
    n_classes = posteriors.shape[1]
    class_counts = posteriors.sum(axis=0) + smoothing
    priors: FloatArray = class_counts / class_counts.sum()
    # counts[w, true, given]: each of w's labels adds its item's posterior over the true class.
    counts = (
        np.bincount(
            data.confusion_cell,
            weights=posteriors[data.item].ravel(),
            minlength=n_workers * n_classes**2,
        ).reshape(n_workers, n_classes, n_classes)
        + smoothing
    )
    confusion: FloatArray = counts / counts.sum(axis=2, keepdims=True)
    return priors, confusion


def _expect(data: _Labels, priors: FloatArray, confusion: FloatArray, n_items: int) -> FloatArray:
    """Item posteriors (items, K), summed in log space so hundreds of labels do not underflow."""
    # log_given[n, true]: log-probability of label n's value under each true class.
    log_given = np.log(confusion)[data.worker, :, data.label]
    log_joint = np.log(priors) + np.stack(
        [
            np.bincount(data.item, weights=log_given[:, true], minlength=n_items)
            for true in range(len(priors))
        ],
        axis=1,
    )
    log_joint -= log_joint.max(axis=1, keepdims=True)
    joint = np.exp(log_joint)
    posteriors: FloatArray = joint / joint.sum(axis=1, keepdims=True)
    return posteriors
