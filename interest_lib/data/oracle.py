"""The Bayes-optimal next-category predictor for simulated data: the book's ceiling.

The simulator is a hidden Markov model whose latent state is the user's interest segment. Given the
true parameters (:class:`~interest_lib.data.simulation.SimulationTruth`) the exact posterior over the
segment follows from *forward filtering*, and with it the exact predictive distribution of the next
event's category. No model that sees the same history can do better on average.

The prediction for an event uses every earlier event of the same user and the *request context* of
the event itself: its time (so whether it opens a new session, and whether the promotion shift is in
force) and its platform. A recommender knows both when the request arrives.

For event :math:`t` of a user with filtered segment posterior :math:`\\alpha` after event
:math:`t-1`:

* same session as event :math:`t-1`:
  :math:`P(c_t = c) = \\kappa\\,[c = c_{t-1}] + (1-\\kappa)\\sum_s \\alpha_s E_p[s, c]`;
* new session: :math:`\\alpha' = (1-\\beta)\\,\\alpha G + \\beta\\,\\pi_u` (with
  :math:`\\pi_u` tilted towards the promoted segment after the shift) and
  :math:`P(c_t = c) = \\sum_s \\alpha'_s E_p[s, c]`,

where :math:`E_p` is the emission matrix of the event's platform, :math:`\\kappa` the repeat
probability, :math:`G` the global transition matrix in force at event :math:`t-1` and
:math:`\\pi_u` the user's preference. The first event of a user uses :math:`\\alpha' = \\pi_u`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interest_lib.data.simulation import Simulation


def _positions_within_user(user_index: np.ndarray) -> np.ndarray:
    starts = np.r_[True, user_index[1:] != user_index[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(user_index)), 0))
    return np.arange(len(user_index)) - first


def _filter_inputs(simulation: Simulation) -> tuple[np.ndarray, ...]:
    """What the filter reads of each event, ``(n_events,)`` arrays: the user index, the category
    index, the platform (1 web), the position within the user, whether the event opens a session
    and whether the previous event lies at or after the promotion shift."""
    events, truth = simulation.events, simulation.truth
    n = len(events)
    user_index = np.searchsorted(truth.user_ids, events["user_id"].to_numpy())
    timestamps = events["timestamp"].to_numpy()
    if np.any(np.diff(user_index) < 0) or np.any(
        (np.diff(user_index) == 0) & (np.diff(timestamps) < 0)
    ):
        raise ValueError("events must be sorted by user and time, as simulate() returns them")
    category = truth.category_index(events["category_id"].to_numpy())
    platform = (events["platform"] == "web").to_numpy().astype(np.int64)
    position = _positions_within_user(user_index)
    prev = np.maximum(np.arange(n) - 1, 0)
    new_session = (position == 0) | (timestamps - timestamps[prev] > truth.session_gap_s)
    after_shift = timestamps[prev] >= truth.shift_time
    return user_index, category, platform, position, new_session, after_shift


def oracle_next_category(
    simulation: Simulation, rows: np.ndarray | pd.Series | None = None
) -> np.ndarray:
    """Bayes-optimal predictive distribution of each event's category.

    Parameters
    ----------
    simulation
        The output of :func:`~interest_lib.data.simulation.simulate`, with its events unchanged (the
        filter must see every event of every user).
    rows
        Which event rows to return predictions for: a boolean mask (n_events,) or integer row
        positions. Default: all rows.

    Returns
    -------
    numpy.ndarray
        (n_rows, C) float32; row ``i`` is ``P(category | earlier events, time, platform)`` of the
        ``i``-th selected event, columns in the order of ``simulation.truth.category_ids``.
    """
    truth = simulation.truth
    user_index, category, platform, position, new_session, after_shift = _filter_inputs(simulation)
    n = len(user_index)
    if rows is None:
        wanted = np.arange(n)
    else:
        rows = np.asarray(rows)
        wanted = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
    out_row = np.full(n, -1, dtype=np.int64)
    out_row[wanted] = np.arange(len(wanted))
    out = np.zeros((len(wanted), len(truth.category_ids)), dtype=np.float32)

    kappa, beta = truth.repeat_prob, truth.preference_weight
    pref = truth.user_preference
    alpha = np.zeros_like(pref)
    emission, taste = truth.emission_by_platform, truth.user_taste  # (P, S, C), (U, C)
    # P(c | s, platform, user) = emission[p, s, c] * taste[u, c] / norm[u, p, s]; no (m, S, C) array
    norm = np.einsum("uc,psc->ups", taste, emission)

    by_position = np.argsort(position, kind="stable")
    bounds = np.searchsorted(position[by_position], np.arange(position.max() + 2))
    for k in range(position.max() + 1):
        idx = by_position[bounds[k] : bounds[k + 1]]
        u, plat = user_index[idx], platform[idx]
        user_norm = norm[u, plat]  # (m, S)
        if k == 0:
            prior = pref[u]
            ns = np.ones(len(idx), dtype=bool)
        else:
            a = alpha[u]
            moved = np.where(
                after_shift[idx, None],
                a @ truth.transition_after,
                a @ truth.transition_before,
            )
            ns = new_session[idx]
            back_to_preference = truth.shifted_preference(u, after_shift[idx])
            prior = np.where(ns[:, None], (1 - beta) * moved + beta * back_to_preference, a)
        weights = prior / user_norm
        mixture = np.empty((len(idx), emission.shape[2]))
        for p in (0, 1):
            on = plat == p  # einsum, not @: a row must not depend on the other rows of its batch
            mixture[on] = np.einsum("ms,sc->mc", weights[on], emission[p])
        mixture *= taste[u]
        c = category[idx]
        lik = emission[plat, :, c] * (taste[u, c][:, None] / user_norm)  # (m, S)
        if k > 0:
            repeat = (~ns) & (category[idx - 1] == c)
            lik = np.where(ns[:, None], lik, (1 - kappa) * lik + kappa * repeat[:, None])
            pred = np.where(ns[:, None], mixture, (1 - kappa) * mixture)
            same = np.flatnonzero(~ns)
            pred[same, category[idx[same] - 1]] += kappa
        else:
            pred = mixture
        post = prior * lik
        alpha[u] = post / post.sum(axis=1, keepdims=True)
        sel = out_row[idx] >= 0
        out[out_row[idx[sel]]] = pred[sel]
    return out
