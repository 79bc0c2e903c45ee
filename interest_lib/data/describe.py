"""Descriptive statistics of an event log, and the real Taobao figures they are compared with."""

from __future__ import annotations

import numpy as np
import pandas as pd

from interest_lib.data.schema import SESSION_GAP_S, UTC8_OFFSET_S

TAOBAO_REFERENCE: dict[str, dict[str, float | tuple[float, float]]] = {
    "share_pv": {"real": 0.895, "target": (0.880, 0.910)},
    "share_cart": {"real": 0.055, "target": (0.040, 0.070)},
    "share_fav": {"real": 0.029, "target": (0.014, 0.044)},
    "share_buy": {"real": 0.020, "target": (0.005, 0.035)},
    "same_category_next": {"real": 0.44, "target": (0.35, 0.50)},
    "events_per_user_mean": {"real": 100.0, "target": (60.0, 120.0)},
    "events_per_user_median": {"real": 84.0, "target": (0.0, float("inf"))},
    "session_length_median": {"real": 3.0, "target": (2.0, 5.0)},
    "top_category_share_median": {"real": 0.25, "target": (0.15, 0.40)},
}
"""Statistics of the real Taobao UserBehavior log and the range the default simulator must hit.

``same_category_next`` is 0.44 on a user-complete head of the file and 0.37 on a time slice."""


def session_ids(events: pd.DataFrame, gap_s: int = SESSION_GAP_S) -> np.ndarray:
    """Number the sessions of a log sorted by user then time.

    Returns
    -------
    numpy.ndarray
        (n_events,) int64 session number, starting at 0, increasing along the table. A new session
        starts at a user's first event and after any gap longer than ``gap_s`` seconds.
    """
    user = events["user_id"].to_numpy()
    ts = events["timestamp"].to_numpy()
    if len(user) == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.r_[True, (user[1:] != user[:-1]) | (np.diff(ts) > gap_s)]
    return np.cumsum(new) - 1


def log_statistics(events: pd.DataFrame) -> dict[str, float]:
    """The realism statistics of the simulator (CONTRIBUTING.md, "The simulator") for a log sorted by user then time.

    Returns a dict with ``share_pv``/``cart``/``fav``/``buy`` (behaviour mix, fractions),
    ``same_category_next`` (share of a user's consecutive event pairs in the same category),
    ``events_per_user_mean``/``median``/``max``, ``session_length_median`` (events, 30-minute
    gap) and ``top_category_share_median`` (median over users of the share of their events in
    their most frequent category).
    """
    user = events["user_id"].to_numpy()
    category = events["category_id"].to_numpy()
    mix = events["behavior_type"].value_counts(normalize=True)
    same_user = user[1:] == user[:-1]
    per_user = events.groupby("user_id", sort=False).size()
    top = events.groupby(["user_id", "category_id"], sort=False).size().groupby(level=0).max()
    sessions = np.bincount(session_ids(events))
    return {
        **{f"share_{b}": float(mix.get(b, 0.0)) for b in ("pv", "cart", "fav", "buy")},
        "same_category_next": float((category[1:] == category[:-1])[same_user].mean()),
        "events_per_user_mean": float(per_user.mean()),
        "events_per_user_median": float(per_user.median()),
        "events_per_user_max": float(per_user.max()),
        "session_length_median": float(np.median(sessions)),
        "top_category_share_median": float((top / per_user.reindex(top.index)).median()),
    }


PREDICTABILITY_REFERENCE: dict[str, dict[str, float | tuple[float, float]]] = {
    "hr10_popularity": {"real": 0.23, "real_slice": 0.30, "target": (0.20, 0.33)},
    "hr10_user_frequency": {"real": 0.49, "real_slice": 0.46, "target": (0.42, 0.55)},
    "accuracy_repeat_last": {"real": 0.42, "real_slice": 0.36, "target": (0.33, 0.45)},
    "accuracy_most_frequent": {"real": 0.19, "real_slice": 0.28, "target": (0.17, 0.30)},
    "hr10_popularity_no_repeats": {"real": 0.21, "real_slice": 0.31, "target": (0.0, 0.35)},
    "hr10_user_frequency_no_repeats": {"real": 0.40, "real_slice": 0.22, "target": (0.0, 0.45)},
}
"""How predictable the real Taobao UserBehavior log is, by :func:`predictability_statistics`,
and the range the default simulator must hit.

``real``: the user-complete head of the public file (its first 4,321 rows, 43 users);
``real_slice``: a two-hour slice of the same file (10,223 users). Both were measured outside the
book, since the real files are not shipped with it."""


def leave_last_out(events: pd.DataFrame, min_events: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Split a log into histories and one target per user: the protocol of the realism statistics.

    Parameters
    ----------
    events
        Log sorted by user then time, with ``user_id`` and ``category_id``.
    min_events
        Users with fewer events give no target; all their events are history.

    Returns
    -------
    (history, target_rows)
        ``history``: the rows that are not a target; ``target_rows``: (n_users_evaluated,) int64
        positions of each evaluated user's last event.
    """
    user = events["user_id"].to_numpy()
    if len(user) == 0:
        return events.iloc[:0], np.zeros(0, dtype=np.int64)
    last = np.r_[user[1:] != user[:-1], True]
    size = events.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    target_rows = np.flatnonzero(last & (size >= min_events))
    keep = np.ones(len(user), dtype=bool)
    keep[target_rows] = False
    return events.iloc[np.flatnonzero(keep)], target_rows


def _predictability(events: pd.DataFrame, k: int) -> dict[str, float]:
    """The four statistics of :func:`predictability_statistics` for one log."""
    history, target_rows = leave_last_out(events)
    n = len(target_rows)
    if n == 0:
        nan = float("nan")
        return dict.fromkeys(("hr10_popularity", "hr10_user_frequency", "accuracy_repeat_last",
                              "accuracy_most_frequent"), nan) | {"n_users": 0.0}
    target_user = events["user_id"].to_numpy()[target_rows]
    target = events["category_id"].to_numpy()[target_rows]
    previous = events["category_id"].to_numpy()[target_rows - 1]
    popularity = history["category_id"].value_counts()
    top_k = set(popularity.index[:k])
    counts = history.groupby(["user_id", "category_id"], sort=False).size().rename("count").reset_index()
    counts["popularity"] = popularity.reindex(counts["category_id"]).to_numpy()
    counts = counts.sort_values(["user_id", "count", "popularity"], ascending=[True, False, False])
    counts["rank"] = counts.groupby("user_id", sort=False).cumcount()
    rank = counts.set_index(["user_id", "category_id"])["rank"]
    target_rank = rank.reindex(pd.MultiIndex.from_arrays([target_user, target])).to_numpy()
    return {
        "hr10_popularity": float(np.mean([c in top_k for c in target])),
        "hr10_user_frequency": float(np.mean(target_rank < k)),
        "accuracy_repeat_last": float(np.mean(previous == target)),
        "accuracy_most_frequent": float(np.mean(target_rank == 0)),
        "n_users": float(n),
    }


def without_consecutive_repeats(events: pd.DataFrame) -> pd.DataFrame:
    """The log without events whose category repeats the same user's previous event's."""
    user = events["user_id"].to_numpy()
    category = events["category_id"].to_numpy()
    repeat = np.r_[False, (user[1:] == user[:-1]) & (category[1:] == category[:-1])]
    return events.iloc[np.flatnonzero(~repeat)]


def predictability_statistics(events: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """How predictable a log's next category is to four simple rules, leave-last-out.

    Protocol: for every user with at least 3 events, the last event is the target and the earlier
    events its history (:func:`leave_last_out`); popularity is counted over every event that is
    not a target; categories are ranked over the full set.

    Returns
    -------
    dict
        ``hr10_popularity``: share of targets among the ``k`` most popular categories;
        ``hr10_user_frequency``: share of targets among the ``k`` categories the user viewed most
        (ties broken by popularity; a category the user never viewed is a miss);
        ``accuracy_repeat_last``: share of targets equal to the user's previous category;
        ``accuracy_most_frequent``: share equal to the user's most frequent category;
        ``hr10_popularity_no_repeats`` and ``hr10_user_frequency_no_repeats``: the two hit rates
        after :func:`without_consecutive_repeats`; ``n_users``: targets evaluated.
    """
    stats = _predictability(events, k)
    no_repeats = _predictability(without_consecutive_repeats(events), k)
    stats["hr10_popularity_no_repeats"] = no_repeats["hr10_popularity"]
    stats["hr10_user_frequency_no_repeats"] = no_repeats["hr10_user_frequency"]
    return stats


def session_order_lift(events: pd.DataFrame, gap_s: int = SESSION_GAP_S) -> dict[str, float]:
    """How much the previous session tells about the next one, beyond older sessions.

    For every session that has at least two earlier sessions of the same user, take the category
    of its first event and ask whether the previous session viewed it, and whether the session
    before that did. If the order of a user's sessions carried no information (sessions
    exchangeable given the user), both hit rates would be equal; their ratio measures memory.

    Parameters
    ----------
    events
        Log sorted by user then time.
    gap_s
        Session gap, s.

    Returns
    -------
    dict
        ``hit_previous``, ``hit_two_back`` (shares of session openings), ``lift`` (their ratio)
        and ``n_sessions`` (openings counted).
    """
    session = session_ids(events)
    user = events["user_id"].to_numpy()
    category = events["category_id"].to_numpy()
    opens = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    open_user = user[opens]
    first_of_user = np.r_[True, open_user[1:] != open_user[:-1]]
    rank = np.arange(len(opens)) - np.maximum.accumulate(np.where(first_of_user, np.arange(len(opens)), 0))
    seen = pd.MultiIndex.from_arrays([session, category]).unique()
    wanted = np.flatnonzero(rank >= 2)
    first_category = category[opens[wanted]]
    sess = session[opens[wanted]]
    previous = pd.MultiIndex.from_arrays([sess - 1, first_category]).isin(seen)
    two_back = pd.MultiIndex.from_arrays([sess - 2, first_category]).isin(seen)
    hit_previous = float(previous.mean()) if len(wanted) else float("nan")
    hit_two_back = float(two_back.mean()) if len(wanted) else float("nan")
    return {
        "hit_previous": hit_previous,
        "hit_two_back": hit_two_back,
        "lift": hit_previous / hit_two_back if hit_two_back > 0 else float("nan"),
        "n_sessions": float(len(wanted)),
    }


MEMORY_REFERENCE: dict[str, dict[str, float | tuple[float, float]]] = {
    "session_order_lift": {"real": 1.18, "interval": (1.02, 1.40), "target": (1.05, 1.35)},
}
"""How much the order of a user's sessions tells (:func:`session_order_lift`) on the real
user-complete Taobao head (636 session openings; ``interval``: the 95 % user-bootstrap interval), and
the range the default simulator must hit; it fixes the simulator's ``memory``."""


def realism_statistics(events: pd.DataFrame) -> dict[str, float]:
    """Every statistic the simulator is calibrated on, for a log sorted by user then time.

    The union of :func:`log_statistics`, :func:`predictability_statistics` and
    ``session_order_lift`` (the ``lift`` of :func:`session_order_lift`).
    """
    return {
        **log_statistics(events),
        **predictability_statistics(events),
        "session_order_lift": session_order_lift(events)["lift"],
    }


def compare_with_taobao(events: pd.DataFrame) -> pd.DataFrame:
    """A table of :func:`realism_statistics` beside the real Taobao figures and the target ranges.

    Rows: what a log looks like (behaviour mix, same category next, activity, sessions), how
    predictable it is (:data:`PREDICTABILITY_REFERENCE`) and how much session order tells
    (:data:`MEMORY_REFERENCE`). Columns: ``this log``, ``real Taobao`` (the user-complete head of
    the public file, or the whole file for the log statistics), ``real, 2-hour slice`` (where
    measured), ``target range`` and ``in range``.
    """
    stats = realism_statistics(events)
    rows = []
    references = {**TAOBAO_REFERENCE, **PREDICTABILITY_REFERENCE, **MEMORY_REFERENCE}
    for name, ref in references.items():
        low, high = ref["target"]
        rows.append(
            {
                "statistic": name,
                "this log": stats[name],
                "real Taobao": ref["real"],
                "real, 2-hour slice": ref.get("real_slice", float("nan")),
                "target range": _range_text(low, high),
                "in range": bool(low <= stats[name] <= high),
            }
        )
    return pd.DataFrame(rows).set_index("statistic")


def _range_text(low: float, high: float) -> str:
    """A target range as the table shows it: ``0.2 – 0.33``, ``≤ 0.35`` or ``—`` (no target)."""
    if not np.isfinite(high):
        return "—"
    return f"≤ {high:g}" if low == 0 else f"{low:g} – {high:g}"


def local_hour(timestamps: np.ndarray | pd.Series) -> np.ndarray:
    """Hour of the day (0–23) in UTC+8, the time zone of the Taobao log."""
    return ((np.asarray(timestamps) + UTC8_OFFSET_S) // 3600) % 24


def local_time(timestamps: np.ndarray | pd.Series | list[int]) -> pd.DatetimeIndex:
    """Unix seconds as readable times in UTC+8, the time zone of the Taobao days.

    Parameters
    ----------
    timestamps
        ``(n,)`` Unix seconds.

    Returns
    -------
    pandas.DatetimeIndex
        ``(n,)`` naive datetimes that read as the local time in UTC+8.
    """
    return pd.to_datetime(np.asarray(timestamps) + UTC8_OFFSET_S, unit="s")
