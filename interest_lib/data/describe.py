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


def compare_with_taobao(events: pd.DataFrame) -> pd.DataFrame:
    """A table of :func:`log_statistics` beside the real Taobao figures and the target ranges."""
    stats = log_statistics(events)
    rows = []
    for name, ref in TAOBAO_REFERENCE.items():
        low, high = ref["target"]
        rows.append(
            {
                "statistic": name,
                "this log": stats[name],
                "real Taobao": ref["real"],
                "target range": f"{low:g} – {high:g}" if np.isfinite(high) else "—",
                "in range": bool(low <= stats[name] <= high),
            }
        )
    return pd.DataFrame(rows).set_index("statistic")


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
