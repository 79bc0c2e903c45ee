r"""The next-category prediction task, shared by every method, and sequence tensors for RNNs.

A **prediction point** is an event in a time window ``[start, end)`` whose user has at least one
earlier event. The question asked at that point is "which category will this event be in?", and
the history available to answer it is *every* earlier event of the same user, including events
before the window. The request context of the event itself (its time, hence whether it opens a new
session, and its platform) is known too, as it is when a recommender receives a request.

Two targets (DESIGN §6):

* **next category**: every prediction point;
* **next changed category** (``changed=True``): only points whose category differs from the user's
  previous event — a *migration*. Every method then knows that the category changes, so the
  previous category is ruled out (:func:`condition_on_change`).

:func:`next_category_task` builds the points once; every baseline and every model returns a score
matrix of shape ``(len(task), C)`` for them, so one piece of metric code evaluates all methods.
:func:`user_sequences` turns the same events into padded tensors for an LSTM or GRU, with a mask
that picks exactly the task's points, in the task's order.

Events are ordered by user and time; events of one user with the same timestamp keep their order
in the table. ``rows`` are *positions* in the event table (``events.iloc[rows]``), not index
labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike
from torch import nn

from interest_lib.features import CategoryVocabulary
from interest_lib.schema import BEHAVIOR_TYPES, DAY_S

SESSION_GAP_S: int = 1800
"""A gap of more than this many seconds since the user's previous event starts a new session."""

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


def behavior_codes(behavior_type: ArrayLike | pd.Series) -> np.ndarray:
    """Codes ``0..3`` of behavior labels in the order of :data:`~interest_lib.schema.BEHAVIOR_TYPES`.

    Raises
    ------
    ValueError
        If a label is not one of ``pv, cart, fav, buy``.
    """
    codes = pd.Categorical(np.asarray(behavior_type), categories=list(BEHAVIOR_TYPES)).codes
    if np.any(codes < 0):
        bad = np.asarray(behavior_type)[codes < 0][0]
        raise ValueError(f"behavior_type {bad!r} is not one of {list(BEHAVIOR_TYPES)}")
    return codes.astype(np.int64)


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

    def mean_per_user(self, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Average per-point values (e.g. ``ndcg_at_k(..., per_user=True)``) over each user.

        A bootstrap over *users* (DESIGN §6) resamples these per-user means, so heavy users do
        not dominate the interval. ``NaN`` values are left out of a user's mean.

        Parameters
        ----------
        values
            ``(n,)``, one value per prediction point.

        Returns
        -------
        (user_ids, means)
            Both of shape ``(n_users,)``, users in increasing id order; a user whose values are
            all ``NaN`` gets ``NaN``.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.shape != self.rows.shape:
            raise ValueError(f"values has shape {values.shape}, expected ({len(self)},)")
        users, inverse = np.unique(self.user_id, return_inverse=True)
        valid = ~np.isnan(values)
        sums = np.bincount(inverse[valid], weights=values[valid], minlength=users.size)
        counts = np.bincount(inverse[valid], minlength=users.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return users, np.where(counts > 0, sums / counts, np.nan)

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
        ``(C,)`` the vocabulary fitted on training events, e.g. ``np.unique(train.category_id)``
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

    has_prev = np.r_[False, user[1:] == user[:-1]]
    point = has_prev.copy()
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


# --------------------------------------------------------------------------------------------
# sequences for recurrent models
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class UserSequences:
    """Per-user event sequences, stored flat (ragged), padded on request.

    Position ``t`` of a sequence holds event ``t`` of its user as *input* and the category of the
    user's next event as *target*: a model's output at ``t`` predicts event ``t + 1``. ``N`` is
    the total number of positions, ``B`` the number of sequences.

    Attributes
    ----------
    user_id
        ``(B,)`` owner of each sequence; with windows (``max_len``) a user owns several.
    lengths
        ``(B,)`` number of positions of each sequence.
    category
        ``(N,)`` category index of the input event, ``-1`` outside the vocabulary.
    behavior
        ``(N,)`` behavior code ``0..3`` (pv, cart, fav, buy).
    time_features
        ``(N, 2)`` float32: :math:`\\log(1 + \\Delta_{prev}/60)` and
        :math:`\\log(1 + \\Delta_{next}/60)`, the gaps in minutes since the previous event and to
        the event being predicted (0 where there is none).
    target
        ``(N,)`` category index of the next event; ``-1`` if there is none (the user's last
        event before ``end``) or it is outside the vocabulary.
    mask
        ``(N,)`` positions whose output is a prediction point: the points of the task the
        sequences were built for, or every position with a target when built without a task.
        Each point is masked exactly once, also when windows overlap.
    event_row
        ``(N,)`` position of the input event in the event table.
    target_row
        ``(N,)`` position of the predicted event in the event table, ``-1`` if none.
    n_categories
        ``C``, the size of the vocabulary.
    history_counts
        ``(B, 2, C)`` float32 or ``None``: how often the owner chose each category *freshly*
        (opening a session or changing category) before the sequence's first event — over all
        platforms (``[:, 0]``) and on the web (``[:, 1]``). It carries the history that windows
        (``max_len``) and ``context`` cut off. Built with ``request_context=True`` only.
    """

    user_id: np.ndarray
    lengths: np.ndarray
    category: np.ndarray
    behavior: np.ndarray
    time_features: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    event_row: np.ndarray
    target_row: np.ndarray
    n_categories: int
    history_counts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.lengths.size)

    @property
    def n_time_features(self) -> int:
        """Columns of ``time_features``: 2, or :data:`N_REQUEST_FEATURES` with request context."""
        return int(self.time_features.shape[1])

    @property
    def offsets(self) -> np.ndarray:
        """``(B + 1,)`` start of each sequence in the flat arrays, then ``N``."""
        return np.concatenate([[0], np.cumsum(self.lengths)])

    @property
    def n_predictions(self) -> int:
        """Number of masked positions (prediction points)."""
        return int(self.mask.sum())

    @property
    def predicted_rows(self) -> np.ndarray:
        """``(n_predictions,)`` event-table positions of the predicted events, in mask order.

        Equals ``task.rows`` when the sequences were built for ``task`` with its users.
        """
        return self.target_row[self.mask]

    def padded(
        self, index: ArrayLike | None = None, *, masked_targets: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded tensors of some sequences, padded to the longest of them.

        Parameters
        ----------
        index
            Which sequences (integer positions); ``None``: all.
        masked_targets
            Set targets outside ``mask`` to ``-1`` so a loss such as
            :func:`interest_lib.models.sequence_cross_entropy` skips them.

        Returns
        -------
        (categories, behaviors, time_features, lengths, targets)
            ``int64 (b, T)``, ``int64 (b, T)``, ``float32 (b, T, F)`` (``F`` =
            :attr:`n_time_features`), ``int64 (b,)`` and ``int64 (b, T)``; padding is category 0,
            behavior 0, time 0 and target ``-1``. ``lengths`` can go straight to
            ``torch.nn.utils.rnn.pack_padded_sequence``.
        """
        index = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        flat = _ranges(self.offsets[index], lengths)
        b, width = index.size, int(lengths.max()) if index.size else 0
        row = np.repeat(np.arange(b), lengths)
        col = flat - np.repeat(self.offsets[index], lengths)

        def pad(values: np.ndarray, fill: float) -> np.ndarray:
            out = np.full((b, width, *values.shape[1:]), fill, dtype=values.dtype)
            out[row, col] = values[flat]
            return out

        target = np.where(self.mask, self.target, -1) if masked_targets else self.target
        return (
            torch.from_numpy(pad(self.category, 0)),
            torch.from_numpy(pad(self.behavior, 0)),
            torch.from_numpy(pad(self.time_features, 0.0)),
            torch.from_numpy(lengths.astype(np.int64)),
            torch.from_numpy(pad(target, -1)),
        )

    def history_tensor(self, index: ArrayLike | None = None) -> torch.Tensor:
        """``float32 (b, 2, C)`` :attr:`history_counts` of some sequences (``None``: all).

        Raises
        ------
        ValueError
            If the sequences were built without ``request_context=True``.
        """
        if self.history_counts is None:
            raise ValueError("no history counts: build the sequences with request_context=True")
        index = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        return torch.from_numpy(self.history_counts[index])

    def tensors(self, history: bool = False) -> tuple[torch.Tensor, ...]:
        """All sequences padded, ``(categories, behaviors, time_features, lengths, targets)``.

        Ready for :func:`interest_lib.train.fit`, with targets outside ``mask`` set to ``-1``.
        Build training sequences with ``max_len`` so the padded width stays small. With
        ``history=True`` the tuple ends with :meth:`history_tensor` as a sixth tensor, the input of
        :class:`interest_lib.models.TrajectoryModel`.
        """
        padded = self.padded()
        return (*padded, self.history_tensor()) if history else padded

    def batches(self, batch_size: int = 256) -> Iterator[np.ndarray]:
        """Sequence indices in batches of similar length (longest first), to pad little."""
        order = np.argsort(-self.lengths, kind="stable")
        for lo in range(0, order.size, batch_size):
            yield order[lo : lo + batch_size]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every start ``s`` and length ``l``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + np.arange(total) - first


def user_sequences(
    events: pd.DataFrame,
    category_ids: ArrayLike,
    task: NextCategoryTask | None = None,
    *,
    end: int | None = None,
    users: ArrayLike | None = None,
    max_len: int | None = None,
    stride: int | None = None,
    context: int | None = None,
    request_context: bool = False,
    origin: int | None = None,
) -> UserSequences:
    """Every user's events before ``end`` as one sequence (or as windows of ``max_len``).

    With a ``task`` (built on the same ``events``) the sequences hold the users with points,
    ``end`` defaults to ``task.end`` and ``mask`` marks exactly the task's points, so one run of a
    model over the full histories yields ``(len(task), C)`` scores in the order of
    ``task.rows`` (:func:`sequence_scores`). The history before the window is input, never a
    target of the task.

    Parameters
    ----------
    events
        Canonical event table (``user_id``, ``category_id``, ``behavior_type``, ``timestamp``).
    category_ids
        ``(C,)`` vocabulary fitted on training events.
    task
        Prediction points to mask; ``None`` masks every position that has a next event.
    end
        Only events with ``timestamp < end`` are used (default ``task.end``, else all).
    users
        Restrict to these user ids (default: the task's users, else everyone). A task point of a
        user left out is simply absent; ``predicted_rows`` says which points are present.
    max_len
        ``None`` (default): one sequence per user with the **full** history, what evaluation
        should use. Otherwise each user's sequence is cut into windows of at most ``max_len``
        events, truncated-BPTT style, for training on long histories with bounded memory.
    stride
        Distance between the ends of consecutive windows (default ``max_len``: no overlap). A
        window masks only its last ``stride`` positions (the first window masks all of its own),
        so each point is predicted once, with at least ``max_len - stride`` events of context
        inside its window; e.g. ``max_len=200, stride=100`` for a documented 100–199-event
        context.
    context
        Keep at most ``context`` events of each user before the input of their first masked
        position, and drop older history. Evaluation with ``context=200`` conditions every
        prediction on at least the last 200 events (or the whole history when shorter) and
        costs far less than the full history for heavy users. ``None`` keeps everything.
    request_context
        Add the request features of :data:`REQUEST_FEATURE_NAMES` to ``time_features`` (which
        then has :data:`N_REQUEST_FEATURES` columns) and fill ``history_counts``, the fresh
        category choices before each sequence (so windows and ``context`` lose no counts).
    origin
        Unix seconds from which ``days_to_next`` is counted (default: the earliest timestamp of
        ``events``); keep it the same for training and evaluation.

    Returns
    -------
    UserSequences
        Sequences ordered by user id, windows of a user in time order.
    """
    _check_events(events, ("user_id", "category_id", "behavior_type", "timestamp"))
    category_ids = np.asarray(category_ids, dtype=np.int64)
    if task is not None:
        if len(task.events) != len(events):
            raise ValueError("task was built on another event table than `events`")
        if not np.array_equal(task.category_ids, category_ids):
            raise ValueError("task and sequences must share the same category_ids")
        if end is None:
            end = task.end
        if users is None:
            users = np.unique(task.user_id)
    order = _user_time_order(events)
    user = events["user_id"].to_numpy()[order]
    time = events["timestamp"].to_numpy()[order]
    keep = np.ones(order.size, dtype=bool)
    if end is not None:
        keep &= time < end
    if users is not None:
        keep &= np.isin(user, np.asarray(users))
    if origin is None:
        origin = int(events["timestamp"].min()) if len(events) else 0
    order, user, time = order[keep], user[keep], time[keep]
    category_id = events["category_id"].to_numpy()[order]
    category = category_index(category_id, category_ids)
    behavior = behavior_codes(events["behavior_type"].to_numpy()[order])

    n = order.size
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = user[1:] == user[:-1]
    gap = np.zeros(n, dtype=np.float64)
    gap[:-1] = np.where(same_next[:-1], time[1:] - time[:-1], 0)
    n_features = N_REQUEST_FEATURES if request_context else N_TIME_FEATURES
    time_features = np.zeros((n, n_features), dtype=np.float32)
    time_features[1:, 0] = np.log1p(gap[:-1] / 60.0)
    time_features[:, 1] = np.log1p(gap / 60.0)
    next_position = np.minimum(np.arange(n) + 1, max(n - 1, 0))
    fresh = web = np.zeros(n, dtype=bool)
    if request_context:
        if "platform" in events.columns:
            web = np.asarray(events["platform"].to_numpy()[order] == "web", dtype=bool)
        same_prev = np.r_[False, same_next[:-1]] if n else np.zeros(0, dtype=bool)
        prev_gap = np.r_[0.0, gap[:-1]] if n else np.zeros(0)
        fresh = ~same_prev | (prev_gap > SESSION_GAP_S)
        fresh[1:] |= category_id[1:] != category_id[:-1]
        time_features[:, 2] = same_next & (gap > SESSION_GAP_S)
        time_features[:, 3] = same_next & web[next_position]
        time_features[:, 4] = web
        time_features[:, 5] = np.where(
            same_next, (time[next_position] - origin) / (DAY_S * DAYS_SCALE), 0.0
        )
        time_features[:, 6] = fresh
    target = np.where(same_next, category[next_position], -1) if n else category
    target_row = np.where(same_next, order[next_position], -1) if n else order
    if task is not None:
        is_point = np.zeros(len(events), dtype=bool)
        is_point[task.rows] = True
        mask = same_next & is_point[target_row]
    else:
        mask = target >= 0

    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if n else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, n]).astype(np.int64)
    # each event's position among its user's untrimmed events, for the history counts
    position = np.arange(n)
    user_start = np.repeat(starts, lengths)
    category_untrimmed = category
    if context is not None and n:
        if context < 0:
            raise ValueError(f"context must be >= 0, got {context}")
        # first masked position of each user (its end if none), then keep `context` events before it
        owner = np.repeat(np.arange(starts.size), lengths)
        first_masked = np.full(starts.size, n, dtype=np.int64)
        np.minimum.at(first_masked, owner[mask], np.flatnonzero(mask))
        first_masked = np.minimum(first_masked, starts + lengths - 1)
        new_starts = np.maximum(starts, first_masked - context)
        kept = np.arange(n) >= new_starts[owner]
        order, user, category, behavior = order[kept], user[kept], category[kept], behavior[kept]
        time_features, target, target_row, mask = (
            time_features[kept], target[kept], target_row[kept], mask[kept]
        )
        position = position[kept]
        lengths = lengths - (new_starts - starts)
        starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
        n = order.size
    seq_user = user[starts]
    flat = np.arange(n)
    if max_len is not None:
        stride = max_len if stride is None else stride
        if max_len < 1 or not 1 <= stride <= max_len:
            raise ValueError(f"need max_len >= 1 and 1 <= stride <= max_len, got {max_len}, {stride}")
        n_windows = 1 + np.maximum(0, -(-(lengths - max_len) // stride))
        owner = np.repeat(np.arange(lengths.size), n_windows)
        # windows of a user, earliest first: k counts down to 0, the window ending at the last event
        first_window = np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
        k = n_windows[owner] - 1 - (np.arange(owner.size) - first_window)
        window_end = lengths[owner] - k * stride
        window_start = np.maximum(0, window_end - max_len)
        fresh_from = np.where(k == n_windows[owner] - 1, 0, window_end - stride) - window_start
        win_lengths = window_end - window_start
        flat = _ranges(starts[owner] + window_start, win_lengths)
        local = flat - np.repeat(starts[owner] + window_start, win_lengths)
        mask = mask[flat] & (local >= np.repeat(fresh_from, win_lengths))
        seq_user, lengths = seq_user[owner], win_lengths
    else:
        mask = mask[flat]
    history_counts = None
    if request_context:
        first = position[flat[np.r_[0, np.cumsum(lengths)[:-1]]]] if lengths.size else flat[:0]
        history_counts = _fresh_counts_before(
            first, user_start[first], category_untrimmed, fresh, web, int(category_ids.size)
        )
    return UserSequences(
        user_id=seq_user,
        lengths=lengths,
        category=category[flat],
        behavior=behavior[flat],
        time_features=time_features[flat],
        target=target[flat],
        mask=mask,
        event_row=order[flat],
        target_row=target_row[flat],
        n_categories=int(category_ids.size),
        history_counts=history_counts,
    )


def _fresh_counts_before(
    first: np.ndarray,
    user_start: np.ndarray,
    category: np.ndarray,
    fresh: np.ndarray,
    web: np.ndarray,
    n_categories: int,
) -> np.ndarray:
    """``(B, 2, C)`` fresh choices of each category in ``[user_start, first)``, all and on the web.

    ``category``, ``fresh`` and ``web`` are indexed by untrimmed position; ``first`` and
    ``user_start`` give each sequence's first position and its owner's first position.
    """
    n_seq = first.size
    out = np.zeros((n_seq, 2, n_categories), dtype=np.float32)
    before = first - user_start
    if n_seq == 0 or before.sum() == 0:
        return out
    rows = _ranges(user_start, before)
    seq = np.repeat(np.arange(n_seq), before)
    cat = category[rows]
    take = fresh[rows] & (cat >= 0)
    for column, chosen in enumerate((take, take & web[rows])):
        flat_index = seq[chosen] * n_categories + cat[chosen]
        out[:, column] = np.bincount(flat_index, minlength=n_seq * n_categories).reshape(
            n_seq, n_categories
        )
    return out


def sequence_scores(
    model: nn.Module,
    sequences: UserSequences,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    softmax: bool = True,
) -> np.ndarray:
    """Run a sequence model over the sequences and keep the outputs at the masked positions.

    The model is called as ``model(categories, behaviors, lengths, time_features)`` and must
    return ``(b, T, C)`` next-category logits (as :class:`interest_lib.models.SequenceModel`
    does). A model with ``n_time_features`` of 0 or 1 gets no time features or only the first
    one. A model whose attribute ``uses_history_counts`` is true (such as
    :class:`interest_lib.models.TrajectoryModel`) also gets ``sequences.history_tensor(...)`` as
    a fifth argument. Batches hold sequences of similar length, padded per batch.

    Parameters
    ----------
    model
        The trained model; it is put in eval mode.
    sequences
        From :func:`user_sequences`.
    batch_size
        Sequences per forward pass.
    device
        Where to run; ``None`` uses :func:`interest_lib.train.device`.
    softmax
        Return probabilities (``True``) or raw logits.

    Returns
    -------
    numpy.ndarray
        ``float32 (n_predictions, C)`` in mask order (the order of ``task.rows``).
    """
    if device is None:
        from interest_lib.train import device as choose_device

        device = choose_device()
    n_time = int(getattr(model, "n_time_features", N_TIME_FEATURES))
    if n_time > sequences.n_time_features:
        raise ValueError(
            f"the model expects {n_time} time features, the sequences have "
            f"{sequences.n_time_features}; build them with request_context=True"
        )
    with_history = bool(getattr(model, "uses_history_counts", False))
    out_index = np.cumsum(sequences.mask) - 1
    out = np.zeros((sequences.n_predictions, sequences.n_categories), dtype=np.float32)
    model.eval()
    with torch.no_grad():
        for index in sequences.batches(batch_size):
            categories, behaviors, times, lengths, _ = sequences.padded(index)
            offsets = sequences.offsets[index]
            flat = _ranges(offsets, sequences.lengths[index])
            where = np.zeros(categories.shape, dtype=bool)
            rows = np.repeat(np.arange(index.size), sequences.lengths[index])
            cols = flat - np.repeat(offsets, sequences.lengths[index])
            selected = sequences.mask[flat]
            if not selected.any():
                continue
            where[rows[selected], cols[selected]] = True
            arguments = [
                categories.to(device),
                behaviors.to(device),
                lengths,
                times[..., :n_time].to(device) if n_time else None,
            ]
            if with_history:
                arguments.append(sequences.history_tensor(index).to(device))
            logits = model(*arguments)
            picked = logits[torch.from_numpy(where).to(logits.device)].float()
            if softmax:
                picked = torch.softmax(picked, dim=-1)
            # boolean indexing walks (row, col) in row-major order, the order of flat[selected]
            out[out_index[flat[selected]]] = picked.cpu().numpy()
    return out


# --------------------------------------------------------------------------------------------
# one table for many methods
# --------------------------------------------------------------------------------------------


def evaluate_methods(
    scores: dict[str, np.ndarray],
    task: NextCategoryTask,
    k: int = 10,
    *,
    reference: str | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """NDCG@k, HR@k and MRR of several methods on one task, with bootstrap intervals over users.

    Each metric is the mean over the task's prediction points (as
    :func:`interest_lib.metrics.ndcg_at_k` returns it). Its interval comes from a *cluster*
    bootstrap over users (DESIGN §6): every replicate draws users with replacement and averages
    all points of the drawn users, so the points of one user, which are not independent, stay
    together. All methods and metrics share the same replicates.

    Parameters
    ----------
    scores
        Method name → ``(len(task), C)`` scores for the task's points.
    task
        The prediction points.
    k
        Cut-off of NDCG and HR.
    reference
        A method of ``scores`` (e.g. ``"oracle"``): adds the paired interval of each method's
        NDCG@k minus the reference's, from the same replicates.
    n_boot, alpha, seed
        Bootstrap replicates, 1 - coverage, seed.

    Returns
    -------
    pandas.DataFrame
        One row per method (in the order given); columns ``NDCG@k``, ``NDCG@k low``,
        ``NDCG@k high`` and the same for ``HR@k`` and ``MRR``; with a reference also
        ``ΔNDCG@k``, ``ΔNDCG@k low``, ``ΔNDCG@k high``.
    """
    from interest_lib.metrics import ranking_report

    if reference is not None and reference not in scores:
        raise ValueError(f"reference {reference!r} is not one of the methods")
    if n_boot < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need n_boot >= 1 and 0 < alpha < 1, got {n_boot}, {alpha}")
    names = (f"NDCG@{k}", f"HR@{k}", "MRR")
    users, inverse = np.unique(task.user_id, return_inverse=True)
    counts = np.bincount(inverse, minlength=users.size).astype(np.float64)
    rng = np.random.default_rng(seed)
    # how often each user is drawn in each replicate, (n_boot, n_users)
    draws = np.stack(
        [np.bincount(rng.integers(0, users.size, users.size), minlength=users.size)
         for _ in range(n_boot)]
    ).astype(np.float64)  # fmt: skip
    weight = draws @ counts  # number of points in each replicate
    quantiles = [alpha / 2.0, 1.0 - alpha / 2.0]
    sums: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    for method, values in scores.items():
        points = ranking_report(values, task.target, ks=(k,), per_user=True)
        sums[method] = {}
        row: dict[str, float] = {}
        for name in names:
            per_point = points[name].to_numpy()
            sums[method][name] = np.bincount(inverse, weights=per_point, minlength=users.size)
            low, high = np.quantile((draws @ sums[method][name]) / weight, quantiles)
            row[name] = float(per_point.mean())
            row[f"{name} low"], row[f"{name} high"] = float(low), float(high)
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(list(scores), name="method"))
    if reference is not None:
        ndcg = names[0]
        deltas = []
        for method in scores:
            difference = sums[method][ndcg] - sums[reference][ndcg]
            low, high = np.quantile((draws @ difference) / weight, quantiles)
            deltas.append((float(difference.sum() / counts.sum()), float(low), float(high)))
        table[f"Δ{ndcg}"] = [d[0] for d in deltas]
        table[f"Δ{ndcg} low"] = [d[1] for d in deltas]
        table[f"Δ{ndcg} high"] = [d[2] for d in deltas]
    return table


def gap_closed(value: float, baseline: float, ceiling: float) -> float:
    r"""Share of the baseline-to-ceiling gap a method closes, :math:`(v - b) / (o - b)`.

    1 means the method reaches the ceiling (the oracle), 0 that it is no better than the
    baseline, a negative value that it is worse.

    Raises
    ------
    ValueError
        If the ceiling does not exceed the baseline (there is no gap to close).
    """
    if not ceiling > baseline:
        raise ValueError(f"no gap: ceiling {ceiling} must exceed baseline {baseline}")
    return float((value - baseline) / (ceiling - baseline))
