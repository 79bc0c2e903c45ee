r"""Baselines that know whether the predicted event opens a session, as a sequence model does.

A sequence model with the request context (:data:`~interest_lib.data.tasks.REQUEST_FEATURE_NAMES`)
knows, when it predicts an event, whether that event opens a new session: whether its time gap to
the user's previous event exceeds :data:`~interest_lib.data.schema.SESSION_GAP_S`
(``task.new_session``). The baselines of :mod:`interest_lib.models.baselines` ignore it. The two
here use it, so a sequence model can be compared with baselines that have the *same* information
at prediction time:

==========================  =========================================================================
baseline                    uses
==========================  =========================================================================
session-aware               inside a session: repeat last
                            (:func:`~interest_lib.models.baselines.repeat_last_scores`);
                            when a session opens: user frequency
                            (:func:`~interest_lib.models.baselines.user_frequency_scores`)
session Markov chain        two transition matrices of ``train``, within sessions and across
                            session boundaries, and the user's previous event
==========================  =========================================================================

Both have the interface of every baseline, ``scores = baseline(task, train)`` → ``(len(task), C)``
float64, look at no event at or after the point they predict (only its request context, the time
gap), smooth towards the training popularity :math:`\pi` as the other baselines do, and pass a
"next changed category" task through :func:`~interest_lib.data.tasks.condition_on_change`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike

from interest_lib.data.schema import SESSION_GAP_S
from interest_lib.data.tasks import NextCategoryTask, condition_on_change
from interest_lib.models.baselines import (
    MarkovChain,
    _check_task,
    frequency_with_repeat,
    popularity,
    transition_counts,
    transition_pairs,
)

SESSION_BASELINE_NAMES: tuple[str, ...] = ("session-aware", "session Markov chain")
"""The baselines of this module, in the order :func:`session_baseline_scores` returns them."""


# --------------------------------------------------------------------------------------------
# repeat inside a session, the user's favourites when a session opens
# --------------------------------------------------------------------------------------------


def session_aware_scores(task: NextCategoryTask, train: pd.DataFrame) -> np.ndarray:
    r"""Repeat the last category inside a session; the user's own frequencies when one opens.

    For a point that continues a session (``task.new_session`` false) the scores are
    :func:`~interest_lib.models.baselines.repeat_last_scores`: the previous category
    :math:`c'` first (score 2), then the user's frequencies smoothed towards popularity; for a
    point that opens a session they are
    :func:`~interest_lib.models.baselines.user_frequency_scores`,

    .. math::

        s_c = \begin{cases}
            2 & \text{in session and } c = c', \\
            \dfrac{n_{uc} + \pi_c}{N_u + 1} & \text{otherwise,}
        \end{cases}

    with :math:`n_{uc}` the user's earlier events in category :math:`c` (:math:`N_u` in all) and
    :math:`\pi` the training popularity. Rows of the two kinds have different scales; only the
    ranking within a row matters. For a "next changed category" task :math:`c'` is ruled out, so
    this baseline then equals the user frequency.

    Parameters
    ----------
    task
        The prediction points; ``task.new_session`` selects the rule.
    train
        Training events (before the task window), for :math:`\pi`.

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)`` float64.
    """
    _check_task(task, train)
    return frequency_with_repeat(task, train, ~np.asarray(task.new_session, dtype=bool))


# --------------------------------------------------------------------------------------------
# a Markov chain that knows whether a session opens
# --------------------------------------------------------------------------------------------


def session_transition_counts(
    train: pd.DataFrame, category_ids: ArrayLike, gap_s: int = SESSION_GAP_S
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    r"""Transition counts between consecutive events of a user, split by the session boundary.

    A pair of consecutive events of one user, both in the vocabulary, counts as *within* a session
    when the second follows the first by at most ``gap_s`` seconds and as *across* a boundary
    otherwise (the rule of ``task.new_session``). The two matrices add up to
    :attr:`MarkovChain.counts <interest_lib.models.baselines.MarkovChain>` of ``train``.

    Parameters
    ----------
    train
        Training events, any row order.
    category_ids
        ``(C,)`` the vocabulary.
    gap_s
        The session gap in seconds.

    Returns
    -------
    (within, across)
        ``(C, C)`` CSR counts :math:`n^{\text{in}}_{ij}` and :math:`n^{\text{new}}_{ij}`.
    """
    category_ids = np.asarray(category_ids, dtype=np.int64)
    previous, following, gap = transition_pairs(train, category_ids)
    opens = gap > gap_s
    n_categories = category_ids.size
    within = transition_counts(previous[~opens], following[~opens], n_categories)
    across = transition_counts(previous[opens], following[opens], n_categories)
    return within, across


@dataclass(frozen=True, eq=False)
class SessionMarkovChain:
    r"""Two first-order Markov chains: one for the next event inside a session, one for a new session.

    .. math::

        P(c_{t+1} = j \mid c_t = i, \text{session}) =
        \frac{n^{s}_{ij} + \lambda \pi_j}{n^{s}_i + \lambda},
        \qquad s \in \{\text{in}, \text{new}\},

    with :math:`n^{\text{in}}_{ij}` the training transitions from :math:`i` to :math:`j` between
    consecutive events of a user at most :data:`~interest_lib.data.schema.SESSION_GAP_S` apart,
    :math:`n^{\text{new}}_{ij}` those further apart (:func:`session_transition_counts`),
    :math:`n^{s}_i = \sum_j n^{s}_{ij}` and :math:`\pi` the training popularity. Each is a
    :class:`~interest_lib.models.baselines.MarkovChain` with the smoothing of that class: a
    previous category never left in that kind of step (:math:`n^{s}_i = 0`) or outside the
    vocabulary falls back to :math:`\pi`.

    Attributes
    ----------
    within
        The chain of steps inside a session.
    across
        The chain of steps that open a session.
    """

    within: MarkovChain
    across: MarkovChain

    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        category_ids: ArrayLike,
        smoothing: float = 1.0,
        gap_s: int = SESSION_GAP_S,
    ) -> SessionMarkovChain:
        """Count the two kinds of transitions of ``train``; ``smoothing`` is :math:`\\lambda` of both."""
        if smoothing < 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing}")
        within, across = session_transition_counts(train, category_ids, gap_s)
        pop = popularity(train, np.asarray(category_ids, dtype=np.int64))
        return cls(MarkovChain(within, pop, float(smoothing)), MarkovChain(across, pop, float(smoothing)))

    def with_smoothing(self, within: float, across: float | None = None) -> SessionMarkovChain:
        """The same counts with other :math:`\\lambda` (``across`` defaults to ``within``)."""
        return SessionMarkovChain(
            self.within.with_smoothing(within),
            self.across.with_smoothing(within if across is None else across),
        )

    def predict(self, previous: ArrayLike, new_session: ArrayLike) -> np.ndarray:
        """Next-category distributions given previous category indices and whether a session opens.

        Parameters
        ----------
        previous
            ``(n,)`` previous category indices (``-1``: unknown).
        new_session
            ``(n,)`` bool: whether the predicted event opens a session.

        Returns
        -------
        numpy.ndarray
            ``(n, C)`` float64, rows summing to 1.
        """
        previous = np.asarray(previous, dtype=np.int64)
        opens = np.asarray(new_session, dtype=bool)
        if opens.shape != previous.shape:
            raise ValueError(f"new_session has shape {opens.shape}, previous {previous.shape}")
        out = np.empty((previous.size, self.within.popularity.size))
        for mask, chain in ((~opens, self.within), (opens, self.across)):
            if mask.any():
                out[mask] = chain.predict(previous[mask])
        return out


def session_markov_scores(
    task: NextCategoryTask,
    train: pd.DataFrame,
    smoothing: float = 1.0,
    chain: SessionMarkovChain | None = None,
) -> np.ndarray:
    r"""A Markov chain that knows whether a session opens (:class:`SessionMarkovChain`).

    The score of category :math:`j` at a point with previous category :math:`i` is
    :math:`P(j \mid i, \text{in})` when the point continues a session and
    :math:`P(j \mid i, \text{new})` when it opens one (``task.new_session``).

    Parameters
    ----------
    task
        The prediction points; ``task.prev_category`` is the state.
    train
        Training events to count transitions in (ignored when ``chain`` is given).
    smoothing
        :math:`\lambda` of the smoothing towards popularity, for both matrices.
    chain
        An already fitted chain.

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)`` float64.
    """
    if chain is None:
        _check_task(task, train)
        chain = SessionMarkovChain.fit(train, task.category_ids, smoothing)
    return condition_on_change(chain.predict(task.prev_category, task.new_session), task)


def session_baseline_scores(
    task: NextCategoryTask, train: pd.DataFrame, *, markov_smoothing: float = 1.0
) -> dict[str, np.ndarray]:
    """Scores of both session baselines, keyed by :data:`SESSION_BASELINE_NAMES`."""
    return {
        "session-aware": session_aware_scores(task, train),
        "session Markov chain": session_markov_scores(task, train, markov_smoothing),
    }
