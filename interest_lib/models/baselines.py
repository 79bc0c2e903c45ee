r"""The baselines every learned model faces (CONTRIBUTING.md, "Evaluation protocol"), and the oracle on simulated data.

Every next-category baseline has the same interface,

``scores = baseline(task, train, ...)``  →  ``(len(task), C)`` float64,

for a :class:`~interest_lib.data.tasks.NextCategoryTask`, so one piece of metric code ranks all
of them. What each one may look at:

==========================  =========================================================================
baseline                    uses
==========================  =========================================================================
global popularity           category counts of ``train``
recent popularity           counts of the last ``days`` days before the task window (any user)
user frequency              the user's own earlier events (all of them, also inside the window)
repeat last                 the user's previous event, then as user frequency
Markov chain                transitions between consecutive events of a user in ``train``, and the
                            user's previous event
session-aware               repeat last inside a session, user frequency when a session opens
session Markov chain        two chains (within a session, across a session boundary) and whether
                            the predicted event opens a session
oracle                      the simulator's true parameters and the user's earlier events
==========================  =========================================================================

No baseline looks at any event at or after the point it predicts. Where a score has a fallback it
is written as additive smoothing towards the training popularity :math:`\pi` with one
pseudo-count,

.. math:: s_c = \frac{n_c + \lambda \pi_c}{N + \lambda}, \qquad \lambda = 1,

so with counts :math:`n_c` (summing to :math:`N`) the popularity only breaks ties, and with no
counts at all the score *is* the popularity. For a "next changed category" task every score is
passed through :func:`~interest_lib.data.tasks.condition_on_change`.

The next-window forms :func:`popularity_distribution` and :func:`user_history_distribution`
predict a user's interest distribution over a future window (chapters 3 and 5).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike

from interest_lib.data.schema import DAY_S
from interest_lib.data.tasks import (
    NextCategoryTask,
    _user_time_order,
    category_index,
    condition_on_change,
)

if TYPE_CHECKING:
    from interest_lib.data.simulation import Simulation

_BLOCK_CELLS = 1 << 22  # user x category counts built at once in user_history_counts

# --------------------------------------------------------------------------------------------
# popularity
# --------------------------------------------------------------------------------------------


def category_counts(events: pd.DataFrame, category_ids: ArrayLike) -> np.ndarray:
    """Number of events of each category; events outside the vocabulary are ignored.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64 counts in the order of ``category_ids``.
    """
    index = category_index(events["category_id"].to_numpy(), category_ids)
    return np.bincount(index[index >= 0], minlength=len(category_ids)).astype(np.float64)


def popularity(train: pd.DataFrame, category_ids: ArrayLike) -> np.ndarray:
    r"""Training popularity :math:`\pi_c = n_c / N`, the share of training events per category.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64 summing to 1 (uniform if ``train`` has no known category).
    """
    counts = category_counts(train, category_ids)
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))


def _smoothed(counts: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """Rows ``(counts + strength * prior) / (row total + strength)``."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    out = counts + strength * np.asarray(prior, dtype=np.float64)  # a new array: counts stay as given
    out /= total + strength
    return out


def _check_task(task: NextCategoryTask, train: pd.DataFrame) -> None:
    if task.start is not None and len(train):
        late = train["timestamp"].to_numpy() >= task.start
        if late.any():
            raise ValueError(
                f"train holds {int(late.sum())} event(s) at or after the task window start "
                f"{task.start}; fit baselines on training events only"
            )


def global_popularity_scores(task: NextCategoryTask, train: pd.DataFrame) -> np.ndarray:
    r"""Every point gets the training popularity :math:`\pi`.

    Parameters
    ----------
    task
        The prediction points.
    train
        Training events (before the task window).

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)``; each row is :math:`\pi`.
    """
    _check_task(task, train)
    pop = popularity(train, task.category_ids)
    return condition_on_change(np.tile(pop, (len(task), 1)), task)


def recent_popularity_scores(
    task: NextCategoryTask, train: pd.DataFrame, days: float = 1.0
) -> np.ndarray:
    r"""Popularity over the last ``days`` days before the task window, all users together.

    .. math:: s_c = \frac{r_c + \pi_c}{R + 1},

    with :math:`r_c` the events of category :math:`c` in ``[start - days, start)`` (taken from
    ``task.events``, so for the test day this is the validation day) and :math:`\pi` the training
    popularity, which breaks ties and is the whole answer when the recent window is empty.

    Parameters
    ----------
    task
        The prediction points; needs a window ``start``.
    train
        Training events, for :math:`\pi`.
    days
        Length of the recent window in days.
    """
    _check_task(task, train)
    pop = popularity(train, task.category_ids)
    recent = np.zeros(task.n_categories)
    if task.start is not None:
        time = task.events["timestamp"].to_numpy()
        window = (time >= task.start - days * DAY_S) & (time < task.start)
        recent = category_counts(task.events.loc[window], task.category_ids)
    scores = np.tile(_smoothed(recent, pop, 1.0), (len(task), 1))
    return condition_on_change(scores, task)


_HISTORY_COUNTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def user_history_counts(task: NextCategoryTask) -> np.ndarray:
    """How often each point's user visited each category before the point.

    Counts every earlier event of the user in ``task.events`` (before and inside the window);
    events outside the vocabulary are not counted. Several baselines read the counts of one
    task: they are computed once per task object and returned read-only.

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)`` float64 counts (read-only).
    """
    if task not in _HISTORY_COUNTS:
        counts = _history_counts(task)
        counts.setflags(write=False)
        _HISTORY_COUNTS[task] = counts
    return _HISTORY_COUNTS[task]


def _history_counts(task: NextCategoryTask) -> np.ndarray:
    events = task.events
    n_cat = task.n_categories
    order = _user_time_order(events)
    user = events["user_id"].to_numpy()[order]
    time = events["timestamp"].to_numpy()[order]
    category = category_index(events["category_id"].to_numpy()[order], task.category_ids)
    task_users = np.unique(task.user_id)
    of_task_user = np.isin(user, task_users)

    # before the window: one sparse row per task user
    before = of_task_user & (category >= 0)
    if task.start is not None:
        before &= time < task.start
        row = np.searchsorted(task_users, user[before])
        prior = sp.csr_matrix(
            (np.ones(row.size), (row, category[before])), shape=(task_users.size, n_cat)
        )
        counts = prior[np.searchsorted(task_users, task.user_id)].toarray()
    else:
        counts = np.zeros((len(task), n_cat))

    # inside the window: running counts over the user's window events, exclusive of the event
    inside = of_task_user & ((time >= task.start) if task.start is not None else True)
    if task.end is not None:
        inside &= time < task.end
    position = np.flatnonzero(inside)
    if position.size == 0 or len(task) == 0:
        return counts
    # task points are window events of task users; locate each in the window list
    sorted_position = np.empty(len(events), dtype=np.int64)
    sorted_position[order] = np.arange(len(events))
    point_in_window = np.searchsorted(position, sorted_position[task.rows])
    w_user, w_cat = user[position], category[position]
    user_start = np.flatnonzero(np.r_[True, w_user[1:] != w_user[:-1]])
    # whole users per block, about _BLOCK_CELLS counts at a time
    block_rows = max(1, _BLOCK_CELLS // n_cat)
    every = np.arange(0, position.size, block_rows)
    cuts = np.unique(user_start[np.searchsorted(user_start, every, side="right") - 1])
    for lo, hi in zip(cuts, np.r_[cuts[1:], position.size], strict=True):
        one_hot = np.zeros((hi - lo, n_cat), dtype=np.int32)
        known = np.flatnonzero(w_cat[lo:hi] >= 0)
        one_hot[known, w_cat[lo:hi][known]] = 1
        running = np.cumsum(one_hot, axis=0, dtype=np.int32)
        running -= one_hot
        starts = user_start[(user_start >= lo) & (user_start < hi)] - lo
        owner_start = starts[np.searchsorted(starts, np.arange(hi - lo), side="right") - 1]
        running -= running[owner_start]
        first, last = np.searchsorted(point_in_window, [lo, hi])
        counts[first:last] += running[point_in_window[first:last] - lo]
    return counts


def user_frequency_scores(task: NextCategoryTask, train: pd.DataFrame) -> np.ndarray:
    r"""The user's most frequent category so far, popularity as tie-break and fallback.

    .. math:: s_c = \frac{n_{uc} + \pi_c}{N_u + 1}

    with :math:`n_{uc}` the user's earlier events in category :math:`c` (:func:`user_history_counts`).

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)``, rows summing to 1.
    """
    _check_task(task, train)
    pop = popularity(train, task.category_ids)
    return condition_on_change(_smoothed(user_history_counts(task), pop, 1.0), task)


def repeat_last_scores(task: NextCategoryTask, train: pd.DataFrame) -> np.ndarray:
    """The previous event's category first, then the user's frequency, then popularity.

    Scores are :func:`user_frequency_scores` with the previous category raised above every
    other (to 2; the others are at most 1). For a "next changed category" task the previous
    category is ruled out, so this baseline then equals the user frequency.

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)``.
    """
    _check_task(task, train)
    return frequency_with_repeat(task, train, np.ones(len(task), dtype=bool))


def frequency_with_repeat(
    task: NextCategoryTask, train: pd.DataFrame, repeat: np.ndarray
) -> np.ndarray:
    """:func:`user_frequency_scores` with the previous category raised to 2 on the rows ``repeat``.

    ``repeat`` is ``(len(task),)`` bool: all rows give :func:`repeat_last_scores`, none the user
    frequency, ``~task.new_session`` the session-aware baseline. One pass over the history.
    """
    pop = popularity(train, task.category_ids)
    scores = _smoothed(user_history_counts(task), pop, 1.0)
    rows = np.flatnonzero(np.asarray(repeat, dtype=bool) & (task.prev_category >= 0))
    scores[rows, task.prev_category[rows]] = 2.0
    return condition_on_change(scores, task)


# --------------------------------------------------------------------------------------------
# the first-order Markov chain
# --------------------------------------------------------------------------------------------


def transition_pairs(
    train: pd.DataFrame, category_ids: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consecutive events of one user, both in the vocabulary: the pairs a Markov chain counts.

    Returns
    -------
    (previous, following, gap_s)
        ``(n_pairs,)`` category indices of the first and second event, and the seconds between them.
    """
    order = _user_time_order(train)
    user = train["user_id"].to_numpy()[order]
    time = train["timestamp"].to_numpy()[order]
    category = category_index(train["category_id"].to_numpy()[order], category_ids)
    pair = (user[1:] == user[:-1]) & (category[1:] >= 0) & (category[:-1] >= 0)
    return category[:-1][pair], category[1:][pair], np.diff(time)[pair]


def transition_counts(previous: np.ndarray, following: np.ndarray, n_categories: int) -> sp.csr_matrix:
    """``(C, C)`` CSR counts :math:`n_{ij}` of the pairs ``previous[k] = i``, ``following[k] = j``."""
    counts = sp.csr_matrix(
        (np.ones(len(previous)), (previous, following)), shape=(n_categories, n_categories)
    )
    counts.sum_duplicates()
    return counts


@dataclass(frozen=True, eq=False)
class MarkovChain:
    r"""First-order Markov chain over categories with smoothing towards popularity.

    .. math:: P(c_{t+1} = j \mid c_t = i) = \frac{n_{ij} + \lambda \pi_j}{n_i + \lambda}

    with :math:`n_{ij}` the training transitions from :math:`i` to :math:`j` between consecutive
    events of the same user, :math:`n_i = \sum_j n_{ij}` and :math:`\pi` the training
    popularity. A previous category never seen in training (:math:`n_i = 0`) or outside the
    vocabulary falls back to :math:`\pi`. Counts are kept sparse, so a large vocabulary costs
    only the transitions actually observed.

    Attributes
    ----------
    counts
        ``(C, C)`` CSR transition counts :math:`n_{ij}`.
    popularity
        ``(C,)`` :math:`\pi`.
    smoothing
        :math:`\lambda \ge 0`.
    """

    counts: sp.csr_matrix
    popularity: np.ndarray
    smoothing: float = 1.0

    @classmethod
    def fit(
        cls, train: pd.DataFrame, category_ids: ArrayLike, smoothing: float = 1.0
    ) -> MarkovChain:
        """Count the transitions of ``train`` (consecutive events of a user, both known)."""
        if smoothing < 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing}")
        category_ids = np.asarray(category_ids, dtype=np.int64)
        previous, following, _ = transition_pairs(train, category_ids)
        counts = transition_counts(previous, following, category_ids.size)
        return cls(counts, popularity(train, category_ids), float(smoothing))

    def with_smoothing(self, smoothing: float) -> MarkovChain:
        """The same counts with another :math:`\\lambda`."""
        return MarkovChain(self.counts, self.popularity, float(smoothing))

    def predict(self, previous: ArrayLike) -> np.ndarray:
        """Next-category distributions given previous category indices (``-1``: unknown).

        Returns
        -------
        numpy.ndarray
            ``(len(previous), C)`` float64, rows summing to 1.
        """
        previous = np.asarray(previous, dtype=np.int64)
        known = previous >= 0
        rows = self.counts[np.where(known, previous, 0)].toarray()
        rows[~known] = 0.0
        totals = rows.sum(axis=1, keepdims=True)
        lam = self.smoothing
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (rows + lam * self.popularity) / (totals + lam)
        out[totals[:, 0] == 0] = self.popularity  # unseen previous category (also when lambda = 0)
        return out

    def transition_matrix(self) -> np.ndarray:
        """The dense ``(C, C)`` smoothed matrix (for plots and small vocabularies)."""
        return self.predict(np.arange(self.counts.shape[0]))


def markov_scores(
    task: NextCategoryTask,
    train: pd.DataFrame,
    smoothing: float = 1.0,
    chain: MarkovChain | None = None,
) -> np.ndarray:
    """First-order Markov chain :math:`P(\\text{next} \\mid \\text{previous})` (:class:`MarkovChain`).

    Parameters
    ----------
    task
        The prediction points; ``task.prev_category`` is the state.
    train
        Training events to count transitions in (ignored when ``chain`` is given).
    smoothing
        :math:`\\lambda` of the smoothing towards popularity; see :func:`choose_markov_smoothing`.
    chain
        An already fitted chain.

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)``.
    """
    if chain is None:
        _check_task(task, train)
        chain = MarkovChain.fit(train, task.category_ids, smoothing)
    return condition_on_change(chain.predict(task.prev_category), task)


def choose_markov_smoothing(
    train: pd.DataFrame,
    valid_task: NextCategoryTask,
    grid: Sequence[float] = (0.0, 0.1, 1.0, 10.0, 100.0, 1000.0),
    k: int = 10,
) -> tuple[float, dict[float, float]]:
    """Pick the smoothing :math:`\\lambda` with the best validation NDCG@k.

    Returns
    -------
    (best, ndcg)
        The best :math:`\\lambda` (the smallest among ties) and NDCG@k of every grid value.
    """
    from interest_lib.evaluation.metrics import ndcg_at_k

    chain = MarkovChain.fit(train, valid_task.category_ids)
    ndcg = {
        float(lam): float(ndcg_at_k(markov_scores(valid_task, train, chain=chain.with_smoothing(lam)),
                                    valid_task.target, k))
        for lam in grid
    }
    best = max(ndcg, key=lambda lam: (ndcg[lam], -lam))
    return best, ndcg


# --------------------------------------------------------------------------------------------
# the oracle and a leaderboard of everything
# --------------------------------------------------------------------------------------------


def oracle_scores(simulation: Simulation, task: NextCategoryTask) -> np.ndarray:
    """The Bayes-optimal next-category distribution of simulated data, for the task's points.

    Wraps :func:`interest_lib.data.oracle.oracle_next_category` and reorders its columns (the
    simulator's category order) into the task's ``category_ids``; a simulated category missing
    from the task's vocabulary (never seen in training) is dropped, as every method must drop it.
    For a "next changed category" task the previous category is ruled out
    (:func:`~interest_lib.data.tasks.condition_on_change`), which is again Bayes-optimal.

    Parameters
    ----------
    simulation
        The :class:`~interest_lib.data.simulation.Simulation` whose ``events`` the task was built on.
    task
        The prediction points.

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)`` float64.
    """
    from interest_lib.data.oracle import oracle_next_category

    events = simulation.events
    if len(events) != len(task.events) or not np.array_equal(
        events["timestamp"].to_numpy()[task.rows], task.time
    ):
        raise ValueError("task was not built on simulation.events")
    columns = oracle_column_map(simulation.truth.category_ids, task.category_ids)
    probabilities = oracle_next_category(simulation, task.rows).astype(np.float64)
    return condition_on_change(probabilities[:, columns], task)


def oracle_column_map(simulated_ids: ArrayLike, category_ids: ArrayLike) -> np.ndarray:
    """Columns of the oracle's output that give the categories ``category_ids``, in order.

    ``oracle_output[:, oracle_column_map(truth.category_ids, ids)]`` has the columns of ``ids``.

    Raises
    ------
    ValueError
        If an id of ``category_ids`` is not a simulated category.
    """
    columns = category_index(category_ids, simulated_ids)
    if np.any(columns < 0):
        raise ValueError(f"category id {np.asarray(category_ids)[columns < 0][0]} is not simulated")
    return columns


BASELINE_NAMES: tuple[str, ...] = (
    "global popularity",
    "recent popularity",
    "user frequency",
    "repeat last",
    "Markov chain",
    "session-aware",
    "session Markov chain",
)
"""The baselines of the evaluation protocol (CONTRIBUTING.md), in the order :func:`baseline_scores`
returns them; the last two (:mod:`interest_lib.models.session_baselines`) also read whether the
predicted event opens a session, as the sequence models do."""


def baseline_scores(
    task: NextCategoryTask,
    train: pd.DataFrame,
    *,
    simulation: Simulation | None = None,
    recent_days: float = 1.0,
    markov_smoothing: float = 1.0,
) -> dict[str, np.ndarray]:
    """Scores of every baseline (and the oracle, given a simulation) for one task.

    Returns
    -------
    dict
        Name → ``(len(task), C)`` scores, in the order of :data:`BASELINE_NAMES`, then
        ``"oracle"``. Feed each to :func:`interest_lib.evaluation.metrics.ranking_report`.
    """
    from interest_lib.models import session_baselines  # it builds on this module

    out = {
        "global popularity": global_popularity_scores(task, train),
        "recent popularity": recent_popularity_scores(task, train, recent_days),
        "user frequency": user_frequency_scores(task, train),
        "repeat last": repeat_last_scores(task, train),
        "Markov chain": markov_scores(task, train, markov_smoothing),
        **session_baselines.session_baseline_scores(task, train, markov_smoothing=markov_smoothing),
    }
    if simulation is not None:
        out["oracle"] = oracle_scores(simulation, task)
    return out


# --------------------------------------------------------------------------------------------
# next-window (per-user) forms
# --------------------------------------------------------------------------------------------


def popularity_distribution(
    train: pd.DataFrame, category_ids: ArrayLike, user_ids: ArrayLike
) -> np.ndarray:
    r"""The training popularity :math:`\pi` as every user's next-window interest.

    Parameters
    ----------
    train
        Training events.
    category_ids
        ``(C,)`` vocabulary.
    user_ids
        The users to predict for, ``(n_users,)``.

    Returns
    -------
    numpy.ndarray
        ``(n_users, C)`` float64, every row :math:`\pi`.
    """
    return np.tile(popularity(train, category_ids), (len(np.asarray(user_ids)), 1))


def user_history_distribution(
    events: pd.DataFrame,
    category_ids: ArrayLike,
    user_ids: ArrayLike,
    *,
    end: int | None,
    start: int | None = None,
    smoothing: float = 1.0,
    prior: ArrayLike | None = None,
) -> np.ndarray:
    r"""Each user's past category distribution as their next-window interest.

    .. math:: \hat y_{uc} = \frac{n_{uc} + \lambda \pi_c}{N_u + \lambda}

    with :math:`n_{uc}` the user's events of category :math:`c` in ``[start, end)``. A user
    without history gets :math:`\pi`.

    Parameters
    ----------
    events
        Canonical event table.
    category_ids
        ``(C,)`` vocabulary.
    user_ids
        ``(n_users,)`` distinct users, in the row order wanted.
    end
        End of the history, Unix s (exclusive): the start of the target window. Required, so a
        history never reaches into the future by accident; ``None`` uses every event.
    start
        Start of the history (``None``: from the beginning).
    smoothing
        :math:`\lambda \ge 0`, pseudo-events drawn from the prior.
    prior
        :math:`\pi`, ``(C,)``; default the popularity of ``events`` in ``[start, end)``.

    Returns
    -------
    numpy.ndarray
        ``(n_users, C)`` float64, rows summing to 1.
    """
    category_ids = np.asarray(category_ids, dtype=np.int64)
    user_ids = np.asarray(user_ids, dtype=np.int64)
    time = events["timestamp"].to_numpy()
    window = np.ones(len(events), dtype=bool)
    if start is not None:
        window &= time >= start
    if end is not None:
        window &= time < end
    history = events.loc[window]
    pi = popularity(history, category_ids) if prior is None else np.asarray(prior, np.float64)
    n_users, n_cat = user_ids.size, category_ids.size
    if n_users == 0:
        return np.zeros((0, n_cat))
    user_order = np.argsort(user_ids, kind="stable")
    sorted_users = user_ids[user_order]
    history_user = history["user_id"].to_numpy()
    owner = np.minimum(np.searchsorted(sorted_users, history_user), n_users - 1)
    column = category_index(history["category_id"].to_numpy(), category_ids)
    keep = (column >= 0) & (sorted_users[owner] == history_user)
    row = user_order[owner[keep]]
    counts = sp.csr_matrix((np.ones(row.size), (row, column[keep])), shape=(n_users, n_cat))
    counts = counts.toarray()
    totals = counts.sum(axis=1, keepdims=True)
    out = np.tile(pi, (n_users, 1))
    has = totals[:, 0] > 0
    out[has] = (counts[has] + smoothing * pi) / (totals[has] + smoothing)
    return out
