r"""The book's protocol in one object: a simulated log, its time split, vocabulary and tasks.

Chapters 3–7 evaluate many methods on one protocol (CONTRIBUTING.md, "Evaluation protocol"): the
global time split of :func:`~interest_lib.data.split.split_by_time`, a category vocabulary fitted
on the training days, and the prediction points of
:func:`~interest_lib.data.tasks.next_category_task` on the last day. :func:`book_setup` applies
it; :func:`baseline_reports` and :func:`cached_oracle_scores` score every baseline and the oracle once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.data.features import CategoryVocabulary
from interest_lib.data.split import TimeSplit, split_by_time
from interest_lib.data.tasks import NextCategoryTask, condition_on_change, next_category_task
from interest_lib.evaluation import metrics
from interest_lib.models import baselines
from interest_lib.recipes.cache import cached, code_version, fingerprint

if TYPE_CHECKING:
    from interest_lib.data.simulation import Simulation



_PROTOCOL_MODULES = ("simulation", "split", "features", "tasks", "sequences", "metrics")
"""Modules behind every result: the log's truth, the split, the vocabulary, tasks and metrics."""

KS: tuple[int, ...] = (1, 5, 10, 20)
"""The cut-offs of the protocol (CONTRIBUTING.md, "Evaluation protocol"); accuracy is HR@1."""
# --------------------------------------------------------------------------------------------
# the protocol in one object
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class BookSetup:
    """A simulated log with the book's protocol applied: split, vocabulary, tasks.

    Attributes
    ----------
    sim
        The simulation (events sorted by user and time, and the truth).
    split
        The global time split (7 training days, 1 validation day, 1 test day).
    category_ids
        ``(C,)`` the category vocabulary, fitted on the training days.
    key
        :func:`fingerprint` of the events: what every cached result of this log is keyed by.
    """

    sim: Simulation
    split: TimeSplit
    category_ids: np.ndarray
    key: str
    _tasks: dict[tuple[str, bool], NextCategoryTask] = field(default_factory=dict, repr=False)

    @property
    def events(self) -> pd.DataFrame:
        """The whole event table."""
        return self.sim.events

    @property
    def n_categories(self) -> int:
        """``C``."""
        return int(self.category_ids.size)

    def window(self, part: str) -> tuple[int | None, int]:
        """``(start, end)`` of ``"train"``, ``"valid"`` or ``"test"``."""
        bounds = {
            "train": (None, self.split.train_end),
            "valid": (self.split.train_end, self.split.valid_end),
            "test": (self.split.valid_end, self.split.test_end),
        }
        if part not in bounds:
            raise ValueError(f"part must be 'train', 'valid' or 'test', got {part!r}")
        return bounds[part]

    def task(self, part: str = "test", changed: bool = False) -> NextCategoryTask:
        """The next-category (or next changed category) task of a part, built once."""
        if (part, changed) not in self._tasks:
            start, end = self.window(part)
            self._tasks[part, changed] = next_category_task(
                self.events, self.category_ids, start, end, changed=changed
            )
        return self._tasks[part, changed]

    def changed_positions(self, part: str = "test") -> np.ndarray:
        """Positions of the changed-category points among the points of the plain task.

        ``scores[setup.changed_positions()]`` turns scores of the next-category task into scores
        of the same predictions at the "next changed category" points (then apply
        :func:`~interest_lib.data.tasks.condition_on_change`).
        """
        plain, changed = self.task(part), self.task(part, changed=True)
        order = np.argsort(plain.rows, kind="stable")
        position = order[np.searchsorted(plain.rows[order], changed.rows)]
        if not np.array_equal(plain.rows[position], changed.rows):
            raise RuntimeError("the changed task's points are not points of the plain task")
        return position

    def first_positions(self, part: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """``(user_ids, positions)``: each user's first point of the plain task of ``part``."""
        return np.unique(self.task(part).user_id, return_index=True)


def book_setup(sim: Simulation) -> BookSetup:
    """Apply the book's protocol to a simulation.

    Parameters
    ----------
    sim
        From :func:`interest_lib.simulate`.

    Returns
    -------
    BookSetup
        The split (:func:`~interest_lib.data.split.split_by_time` defaults), the training-day
        vocabulary and lazily built tasks.
    """
    split = split_by_time(sim.events)
    vocabulary = CategoryVocabulary.fit(split.train)
    return BookSetup(sim, split, vocabulary.ids, fingerprint(sim.events))


# --------------------------------------------------------------------------------------------
# per-point reports
# --------------------------------------------------------------------------------------------


def point_report(scores: ArrayLike, task: NextCategoryTask, ks: Sequence[int] = KS) -> pd.DataFrame:
    """Per-point HR@K, NDCG@K and reciprocal rank of a score matrix (full ranking).

    :func:`interest_lib.evaluation.metrics.ranking_report` with ``per_user=True`` against ``task.target``.
    """
    return metrics.ranking_report(scores, task.target, ks, per_user=True)


def _frame_to_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {str(c): frame[c].to_numpy() for c in frame.columns}


def _arrays_to_frame(arrays: Mapping[str, np.ndarray], prefix: str) -> pd.DataFrame:
    columns = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    return pd.DataFrame(columns)


def baseline_reports(
    setup: BookSetup,
    changed: bool = False,
    part: str = "test",
    *,
    ks: Sequence[int] = KS,
    recent_days: float = 1.0,
    markov_smoothing: float = 1.0,
    oracle: bool = True,
) -> dict[str, pd.DataFrame]:
    """Per-point metrics of every baseline of the evaluation protocol (CONTRIBUTING.md) (and the oracle) on one task.

    The baselines are fitted on ``setup.split.train`` (:func:`~interest_lib.models.baselines.baseline_scores`).

    Returns
    -------
    dict
        Method name → per-point frame (:func:`point_report`), in the order of
        :data:`~interest_lib.models.baselines.BASELINE_NAMES`, then ``"oracle"``.
    """
    task = setup.task(part, changed)
    params = {"data": setup.key, "part": part, "changed": changed, "ks": list(ks),
              "recent_days": recent_days, "markov_smoothing": markov_smoothing, "oracle": oracle}

    def compute() -> dict[str, np.ndarray]:
        scores = baselines.baseline_scores(
            task, setup.split.train, recent_days=recent_days, markov_smoothing=markov_smoothing,
        )
        if oracle:
            scores["oracle"] = cached_oracle_scores(setup, part, changed)
        out: dict[str, np.ndarray] = {}
        for i, (name, matrix) in enumerate(scores.items()):
            for column, values in _frame_to_arrays(point_report(matrix, task, ks)).items():
                out[f"{i:02d}|{name}|{column}"] = values
        return out

    code = code_version(_PROTOCOL_MODULES + ("baselines", "oracle"),
                        (baseline_reports, point_report, cached_oracle_scores))
    stored = cached("baseline_reports", params, compute, code=code)
    names = sorted({k.rsplit("|", 1)[0] for k in stored})
    return {n.split("|", 1)[1]: _arrays_to_frame(stored, f"{n}|") for n in names}


def cached_oracle_scores(
    setup: BookSetup, part: str = "test", changed: bool = False
) -> np.ndarray:
    """The oracle's scores for a task (:func:`~interest_lib.models.baselines.oracle_scores`), cached.

    The forward filter over every event costs a few seconds; it runs once per log and part. The
    "next changed category" scores are derived from the plain task's (:func:`per_changed`),
    which is exactly what :func:`~interest_lib.models.baselines.oracle_scores` computes for that task.

    Returns
    -------
    numpy.ndarray
        ``(len(setup.task(part, changed)), C)`` float64.
    """
    params = {"data": setup.key, "part": part}

    def compute() -> dict[str, np.ndarray]:
        return {"scores": baselines.oracle_scores(setup.sim, setup.task(part))}

    code = code_version(_PROTOCOL_MODULES + ("baselines", "oracle"), (cached_oracle_scores,))
    scores = cached("oracle_scores", params, compute, code=code)["scores"]
    return per_changed(scores, setup, part) if changed else scores


def per_changed(scores: np.ndarray, setup: BookSetup, part: str = "test") -> np.ndarray:
    """Scores of the plain task turned into scores of the "next changed category" task.

    The prediction at a changed point is the prediction at the same event of the plain task,
    with the previous category ruled out (:func:`~interest_lib.data.tasks.condition_on_change`).
    """
    return condition_on_change(
        np.asarray(scores)[setup.changed_positions(part)], setup.task(part, changed=True)
    )


