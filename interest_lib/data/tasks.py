r"""The next-category prediction task, shared by every method.

A **prediction point** is an event in a time window ``[start, end)`` whose user has at least one
earlier event. The question asked at that point is "which category will this event be in?", and
the history available to answer it is *every* earlier event of the same user, including events
before the window. The request context of the event itself (its time, hence whether it opens a new
session, and its platform) is known too, as it is when a recommender receives a request.

Two targets (CONTRIBUTING.md, "Evaluation protocol"):

* **next category**: every prediction point;
* **next changed category** (``changed=True``): only points whose category differs from the user's
  previous event — a *migration*. Every method then knows that the category changes, so the
  previous category is ruled out (:func:`condition_on_change`).

:func:`next_category_task` builds the points once; every baseline and every model returns a score
matrix of shape ``(len(task), C)`` for them, so one piece of metric code evaluates all methods.

Events are ordered by user and time; events of one user with the same timestamp keep their order
in the table. ``rows`` are *positions* in the event table (``events.iloc[rows]``), not index
labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.data.features import CategoryVocabulary
from interest_lib.data.schema import SESSION_GAP_S

N_TIME_FEATURES: int = 2
"""Time features per event in :class:`UserSequences`: log1p minutes since the previous event and
log1p minutes to the event being predicted."""

REQUEST_FEATURE_NAMES: tuple[str, ...] = (
    "log_minutes_since_previous",
    "log_minutes_to_next",
    "next_opens_session",
    "next_on_web",
    "this_on_web",
    "days_to_next",
    "this_is_fresh",
)
"""Columns of ``time_features`` with ``user_sequences(..., request_context=True)``.

The first two are the time features of :data:`N_TIME_FEATURES`. The others describe the *request*
of the event being predicted, known when the request arrives (as the oracle knows it): whether it
opens a session (gap over :data:`SESSION_GAP_S`), whether it comes from the web platform; then the
platform of the input event, the time of the request in days since ``origin`` divided by
:data:`DAYS_SCALE`, and whether the input event is a *fresh choice* (it opens a session or changes
category, rather than repeating the previous category inside a session)."""

N_REQUEST_FEATURES: int = len(REQUEST_FEATURE_NAMES)
"""Number of :data:`REQUEST_FEATURE_NAMES`."""

DAYS_SCALE: float = 10.0
"""``days_to_next`` is measured in units of this many days, so it stays near the unit range."""


# --------------------------------------------------------------------------------------------
# ordering helpers
# --------------------------------------------------------------------------------------------


def _user_time_order(events: pd.DataFrame) -> np.ndarray:
    """Positions that sort ``events`` by user, then time (stable: ties keep table order)."""
    user = events["user_id"].to_numpy()
    time = events["timestamp"].to_numpy()
    if len(user) < 2:
        return np.arange(len(user))
    du, dt = np.diff(user), np.diff(time)
    if np.all((du > 0) | ((du == 0) & (dt >= 0))):
        return np.arange(len(user))
    return np.lexsort((time, user))


def _check_events(events: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in events.columns]
    if missing:
        raise ValueError(f"event table lacks the column(s) {missing}")


def category_index(category_id: ArrayLike, category_ids: ArrayLike) -> np.ndarray:
    """Column index of each category id in ``category_ids``; ``-1`` for an unknown id.

    Parameters
    ----------
    category_id
        Category ids, any shape.
    category_ids
        The vocabulary, shape ``(C,)``; index ``i`` is column ``i`` of every score matrix.

    Returns
    -------
    numpy.ndarray
        ``int64``, same shape as ``category_id``.
    """
    return CategoryVocabulary(np.asarray(category_ids)).index(category_id, unknown="minus_one")


# --------------------------------------------------------------------------------------------
# the task
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NextCategoryTask:
    """The prediction points of a time window and their targets.

    Shapes use ``n`` prediction points and ``C`` categories. Points are ordered by user, then
    time.

    Attributes
    ----------
    events
        The event table the task was built from (a reference, not a copy); ``rows`` index it.
    category_ids
        ``(C,)`` category id of each score column.
    start, end
        The window ``[start, end)`` in Unix seconds (``None``: open).
    changed
        Whether only changes of category are prediction points.
    rows
        ``(n,)`` positions of the predicted events in ``events``.
    user_id
        ``(n,)`` user of each point.
    target
        ``(n,)`` ``int64`` column index of the true category, ``0..C-1``.
    prev_category
        ``(n,)`` column index of the user's previous event's category, ``-1`` if outside the
        vocabulary.
    prev_time, time
        ``(n,)`` Unix seconds of the previous event and of the predicted event.
    platform
        ``(n,)`` platform of the predicted event (``None`` when the table has no platform).
    new_session
        ``(n,)`` whether the point opens a session: ``time - prev_time > 1800`` s.
    n_unknown_target
        Points dropped because their category is not in ``category_ids`` (a category first seen
        after training cannot be ranked).
    """

    events: pd.DataFrame = field(repr=False)
    category_ids: np.ndarray = field(repr=False)
    start: int | None
    end: int | None
    changed: bool
    rows: np.ndarray = field(repr=False)
    user_id: np.ndarray = field(repr=False)
    target: np.ndarray = field(repr=False)
    prev_category: np.ndarray = field(repr=False)
    prev_time: np.ndarray = field(repr=False)
    time: np.ndarray = field(repr=False)
    platform: np.ndarray | None = field(repr=False)
    new_session: np.ndarray = field(repr=False)
    n_unknown_target: int = 0

    def __len__(self) -> int:
        return int(self.rows.size)

    @property
    def n_categories(self) -> int:
        """Number of score columns ``C``."""
        return int(self.category_ids.size)

    @property
    def n_users(self) -> int:
        """Number of distinct users with at least one prediction point."""
        return int(np.unique(self.user_id).size)

    def subset(self, keep: ArrayLike) -> NextCategoryTask:
        """The task restricted to some points, e.g. web events or cold-start users.

        Parameters
        ----------
        keep
            Boolean mask ``(n,)`` or integer positions into the points (kept in increasing
            order so the user-then-time order holds).
        """
        keep = np.asarray(keep)
        index = np.flatnonzero(keep) if keep.dtype == bool else np.sort(keep.astype(np.int64))
        per_point = ("rows", "user_id", "target", "prev_category", "prev_time", "time",
                     "new_session")  # fmt: skip
        changes = {name: getattr(self, name)[index] for name in per_point}
        changes["platform"] = None if self.platform is None else self.platform[index]
        return replace(self, **changes)

    def __repr__(self) -> str:
        kind = "next changed category" if self.changed else "next category"
        return (
            f"NextCategoryTask({kind}, {len(self):,} points, {self.n_users:,} users, "
            f"C={self.n_categories}, window=[{self.start}, {self.end}), "
            f"dropped {self.n_unknown_target} unknown targets)"
        )


def next_category_task(
    events: pd.DataFrame,
    category_ids: ArrayLike,
    start: int | None,
    end: int | None,
    changed: bool = False,
) -> NextCategoryTask:
    """The prediction points of the window ``[start, end)``.

    A point is an event with ``start <= timestamp < end`` whose user has an earlier event (the
    history may lie before ``start``). With ``changed=True`` only events whose category id
    differs from the user's previous event are points. Points whose own category is not in
    ``category_ids`` are dropped and counted in ``n_unknown_target``.

    Parameters
    ----------
    events
        Canonical event table with at least ``user_id``, ``category_id``, ``timestamp``; pass the
        *whole* log (not only the window), so histories are complete. Any row order.
    category_ids
        ``(C,)`` the vocabulary fitted on training events, e.g. ``np.unique(training.category_id)``
        or ``CategoryVocabulary.fit(train).ids``; its order is the column order of every score.
    start, end
        Window bounds in Unix seconds, ``None`` for an open side.
    changed
        Keep only changes of category (the "next changed category" target).

    Returns
    -------
    NextCategoryTask

    Examples
    --------
    >>> test = next_category_task(sim.events, vocabulary.ids, split.valid_end, split.test_end)
    """
    _check_events(events, ("user_id", "category_id", "timestamp"))
    category_ids = np.asarray(category_ids, dtype=np.int64)
    if start is not None and end is not None and start >= end:
        raise ValueError(f"empty window: start={start} must be < end={end}")
    order = _user_time_order(events)
    user = events["user_id"].to_numpy()[order]
    time = events["timestamp"].to_numpy()[order]
    cat_id = events["category_id"].to_numpy()[order]

    point = np.zeros(len(user), dtype=bool)  # an event with an earlier event of its user
    point[1:] = user[1:] == user[:-1]
    if start is not None:
        point &= time >= start
    if end is not None:
        point &= time < end
    position = np.flatnonzero(point)
    previous = position - 1
    if changed:
        moved = cat_id[position] != cat_id[previous]
        position, previous = position[moved], previous[moved]
    target = category_index(cat_id[position], category_ids)
    known = target >= 0
    n_unknown = int((~known).sum())
    position, previous, target = position[known], previous[known], target[known]

    platform = None
    if "platform" in events.columns:
        platform = np.asarray(events["platform"].to_numpy()[order][position], dtype=object)
    return NextCategoryTask(
        events=events,
        category_ids=category_ids,
        start=None if start is None else int(start),
        end=None if end is None else int(end),
        changed=bool(changed),
        rows=order[position].astype(np.int64),
        user_id=user[position],
        target=target,
        prev_category=category_index(cat_id[previous], category_ids),
        prev_time=time[previous],
        time=time[position],
        platform=platform,
        new_session=(time[position] - time[previous]) > SESSION_GAP_S,
        n_unknown_target=n_unknown,
    )


def condition_on_change(scores: np.ndarray, task: NextCategoryTask) -> np.ndarray:
    r"""Rule out the previous category when the task asks for a *changed* category.

    For a predictive distribution :math:`p` and previous category :math:`c'`,

    .. math:: p(c \mid c \ne c') = \frac{p(c)\,[c \ne c']}{1 - p(c')} ,

    i.e. the previous category's score becomes 0 and each row is renormalised to sum to 1
    (which keeps the ranking of the other categories). Non-negative scores of any scale are
    treated the same way. For a plain next-category task the scores are returned unchanged.

    Parameters
    ----------
    scores
        ``(n, C)`` non-negative scores for the points of ``task``.
    task
        The task the scores belong to.

    Returns
    -------
    numpy.ndarray
        ``(n, C)``; a new array when ``task.changed``, else ``scores`` itself.
    """
    if not task.changed:
        return scores
    scores = np.array(scores, dtype=np.float64)
    if scores.shape != (len(task), task.n_categories):
        raise ValueError(f"scores has shape {scores.shape}, expected {(len(task), task.n_categories)}")
    known = np.flatnonzero(task.prev_category >= 0)
    scores[known, task.prev_category[known]] = 0.0
    total = scores.sum(axis=1, keepdims=True)
    np.divide(scores, total, out=scores, where=total > 0)
    return scores


