r"""Padded per-user event sequences for recurrent models, aligned with a prediction task.

:func:`user_sequences` turns the events into flat (ragged) arrays, padded on request, with a mask
that picks exactly the points of a :class:`~interest_lib.data.tasks.NextCategoryTask`, in the
task's order. Position ``t`` holds event ``t`` as input and the category of event ``t + 1`` as
target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike

from interest_lib.data.schema import DAY_S, SESSION_GAP_S, behavior_codes
from interest_lib.data.tasks import (
    DAYS_SCALE,
    N_REQUEST_FEATURES,
    N_TIME_FEATURES,
    NextCategoryTask,
    _check_events,
    _user_time_order,
    category_index,
)

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
            :func:`interest_lib.models.recurrent.sequence_cross_entropy` skips them.

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

        Ready for :func:`interest_lib.models.training.fit`, with targets outside ``mask`` set to ``-1``.
        Build training sequences with ``max_len`` so the padded width stays small. With
        ``history=True`` the tuple ends with :meth:`history_tensor` as a sixth tensor, the input of
        :class:`interest_lib.models.trajectory.TrajectoryModel`.
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
        end, users = _task_defaults(task, events, category_ids, end, users)
    if origin is None:
        origin = int(events["timestamp"].min()) if len(events) else 0
    positions, fresh, web = _event_positions(
        events, category_ids, task, end, users, origin, request_context
    )
    return _sequences(
        positions, fresh, web, int(category_ids.size), context, max_len, stride, request_context
    )


def _event_positions(
    events: pd.DataFrame,
    category_ids: np.ndarray,
    task: NextCategoryTask | None,
    end: int | None,
    users: ArrayLike | None,
    origin: int,
    request_context: bool,
) -> tuple[_Positions, np.ndarray, np.ndarray]:
    """Every event used as one position, by user then time: input, target, time features, mask.

    Returns
    -------
    (positions, fresh, web)
        The positions, and whether each event is a fresh category choice and on the web (``(n,)``
        bool, all ``False`` without ``request_context``).
    """
    order, user, time = _rows_in_order(events, end, users)
    category_id = events["category_id"].to_numpy()[order]
    category = category_index(category_id, category_ids)
    n = order.size
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = user[1:] == user[:-1]
    next_position = np.minimum(np.arange(n) + 1, max(n - 1, 0))
    time_features, fresh, web = _time_features(
        events, order, time, category_id, same_next, next_position, origin, request_context
    )
    target, target_row, mask = _targets(task, len(events), order, category, same_next,
                                        next_position)  # fmt: skip
    positions = _Positions(
        order=order,
        user=user,
        category=category,
        behavior=behavior_codes(events["behavior_type"].to_numpy()[order]),
        time_features=time_features,
        target=target,
        target_row=target_row,
        mask=mask,
        position=np.arange(n),
    )
    return positions, fresh, web


def _sequences(
    positions: _Positions,
    fresh: np.ndarray,
    web: np.ndarray,
    n_categories: int,
    context: int | None,
    max_len: int | None,
    stride: int | None,
    request_context: bool,
) -> UserSequences:
    """One sequence per user (or windows of ``max_len``), cut to ``context``, from positions."""
    n, user = positions.order.size, positions.user
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if n else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, n]).astype(np.int64)
    user_start = np.repeat(starts, lengths)  # each event's user's first position
    category = positions.category  # all positions: the history counts look before a cut
    if context is not None and n:
        positions, starts, lengths = _keep_context(positions, starts, lengths, context)
    seq_user = positions.user[starts]
    if max_len is not None:
        flat, mask, owner, lengths = _windows(starts, lengths, positions.mask, max_len, stride)
        seq_user = seq_user[owner]
    else:
        flat = np.arange(positions.order.size)
        mask = positions.mask[flat]
    history_counts = None
    if request_context:
        first_slot = flat[np.r_[0, np.cumsum(lengths)[:-1]]] if lengths.size else flat[:0]
        first = positions.position[first_slot]
        history_counts = _fresh_counts_before(
            first, user_start[first], category, fresh, web, n_categories
        )
    return UserSequences(
        user_id=seq_user,
        lengths=lengths,
        category=positions.category[flat],
        behavior=positions.behavior[flat],
        time_features=positions.time_features[flat],
        target=positions.target[flat],
        mask=mask,
        event_row=positions.order[flat],
        target_row=positions.target_row[flat],
        n_categories=n_categories,
        history_counts=history_counts,
    )


def _task_defaults(
    task: NextCategoryTask,
    events: pd.DataFrame,
    category_ids: np.ndarray,
    end: int | None,
    users: ArrayLike | None,
) -> tuple[int | None, ArrayLike | None]:
    """Check that ``task`` fits ``events`` and ``category_ids``; ``end`` and ``users`` default to
    the task's end and users."""
    if len(task.events) != len(events):
        raise ValueError("task was built on another event table than `events`")
    if not np.array_equal(task.category_ids, category_ids):
        raise ValueError("task and sequences must share the same category_ids")
    if end is None:
        end = task.end
    if users is None:
        users = np.unique(task.user_id)
    return end, users


def _rows_in_order(
    events: pd.DataFrame, end: int | None, users: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Table positions, user ids and timestamps (Unix s) of the events used, ``(n,)`` each, by
    user then time: those before ``end`` of the given ``users`` (``None``: no restriction)."""
    order = _user_time_order(events)
    user = events["user_id"].to_numpy()[order]
    time = events["timestamp"].to_numpy()[order]
    keep = np.ones(order.size, dtype=bool)
    if end is not None:
        keep &= time < end
    if users is not None:
        keep &= np.isin(user, np.asarray(users))
    return order[keep], user[keep], time[keep]


def _time_features(
    events: pd.DataFrame,
    order: np.ndarray,
    time: np.ndarray,
    category_id: np.ndarray,
    same_next: np.ndarray,
    next_position: np.ndarray,
    origin: int,
    request_context: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The time features of every position, and the request flags behind the history counts.

    Returns
    -------
    (time_features, fresh, web)
        ``(n, F)`` float32 with ``F`` = :data:`N_TIME_FEATURES` (the gaps, log minutes), or
        :data:`N_REQUEST_FEATURES` with ``request_context`` (new session next, next on the web,
        on the web, days from ``origin`` to the next event, fresh choice); ``(n,)`` bool: the
        event is a fresh category choice (opens a session or changes category), it is on the
        web. Both flags are all ``False`` without ``request_context``.
    """
    n = order.size
    gap = np.zeros(n, dtype=np.float64)
    gap[:-1] = np.where(same_next[:-1], time[1:] - time[:-1], 0)
    n_features = N_REQUEST_FEATURES if request_context else N_TIME_FEATURES
    time_features = np.zeros((n, n_features), dtype=np.float32)
    time_features[1:, 0] = np.log1p(gap[:-1] / 60.0)
    time_features[:, 1] = np.log1p(gap / 60.0)
    fresh = web = np.zeros(n, dtype=bool)
    if not request_context:
        return time_features, fresh, web
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
    return time_features, fresh, web


def _targets(
    task: NextCategoryTask | None,
    n_events: int,
    order: np.ndarray,
    category: np.ndarray,
    same_next: np.ndarray,
    next_position: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Category index and table position of the next event of the same user (``-1`` if none),
    and the mask of prediction points: the task's points, or every position with a target."""
    n = order.size
    target = np.where(same_next, category[next_position], -1) if n else category
    target_row = np.where(same_next, order[next_position], -1) if n else order
    if task is not None:
        is_point = np.zeros(n_events, dtype=bool)
        is_point[task.rows] = True
        mask = same_next & is_point[target_row]
    else:
        mask = target >= 0
    return target, target_row, mask


@dataclass
class _Positions:
    """Per-position arrays, ``(n,)``, of the events used, by user then time."""

    order: np.ndarray  # position of the event in the event table
    user: np.ndarray  # user id
    category: np.ndarray  # category index, -1 outside the vocabulary
    behavior: np.ndarray  # behavior code
    time_features: np.ndarray  # (n, F)
    target: np.ndarray  # category index of the next event, -1 if none
    target_row: np.ndarray  # table position of the next event, -1 if none
    mask: np.ndarray  # prediction point
    position: np.ndarray  # position among all events used, before any trimming

    def take(self, kept: np.ndarray) -> _Positions:
        """The positions selected by ``kept`` (a mask or indices)."""
        return _Positions(*(getattr(self, f.name)[kept] for f in fields(self)))


def _keep_context(
    positions: _Positions, starts: np.ndarray, lengths: np.ndarray, context: int
) -> tuple[_Positions, np.ndarray, np.ndarray]:
    """Drop each user's events more than ``context`` before the input of their first masked
    position (their last position if none); returns the kept positions, starts and lengths."""
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    n, mask = positions.order.size, positions.mask
    owner = np.repeat(np.arange(starts.size), lengths)
    first_masked = np.full(starts.size, n, dtype=np.int64)
    np.minimum.at(first_masked, owner[mask], np.flatnonzero(mask))
    first_masked = np.minimum(first_masked, starts + lengths - 1)
    new_starts = np.maximum(starts, first_masked - context)
    kept = np.arange(n) >= new_starts[owner]
    lengths = lengths - (new_starts - starts)
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    return positions.take(kept), starts, lengths


def _windows(
    starts: np.ndarray, lengths: np.ndarray, mask: np.ndarray, max_len: int, stride: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut each user's positions into windows of at most ``max_len``, ends ``stride`` apart.

    A window masks only its last ``stride`` positions (a user's first window all of its own).

    Returns
    -------
    (flat, mask, owner, lengths)
        Position of every window slot and whether it is masked, ``(N,)``; the user (index into
        ``starts``) and the length of every window, ``(B,)``. A user's windows run earliest first.
    """
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
    return flat, mask, owner, win_lengths


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


