"""The canonical event table shared by every loader, the simulator and every chapter.

One row is one user action on one item. Column names follow the Taobao UserBehavior data set.

======================  ==========================================  =============================
column                  dtype                                       meaning
======================  ==========================================  =============================
``user_id``             int64                                       user (one person)
``item_id``             int64                                       item
``category_id``         int64                                       the item's category
``behavior_type``       category ``pv``, ``cart``, ``fav``, ``buy``  view, add to cart, favourite,
                                                                    purchase
``timestamp``           int64                                       Unix seconds (UTC)
``platform``            category ``app``, ``web`` (optional)        where the action happened
======================  ==========================================  =============================
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

BEHAVIOR_TYPES: tuple[str, ...] = ("pv", "cart", "fav", "buy")
"""The four behavior labels, in funnel order."""

PLATFORMS: tuple[str, ...] = ("app", "web")
"""Platforms of simulated data: ``app`` is the source platform, ``web`` the target."""

EVENT_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")
"""Required columns of the canonical event table, in order."""

BEHAVIOR_DTYPE = pd.CategoricalDtype(list(BEHAVIOR_TYPES))
PLATFORM_DTYPE = pd.CategoricalDtype(list(PLATFORMS))

UTC8_OFFSET_S: int = 8 * 3600
"""Offset of China Standard Time (UTC+8) from UTC, in seconds; Taobao days are UTC+8 days."""

TAOBAO_START: int = 1511539200
"""2017-11-25 00:00:00 UTC+8, start of the documented Taobao UserBehavior window (Unix s)."""

TAOBAO_END: int = 1512316800
"""2017-12-04 00:00:00 UTC+8, end (exclusive) of the documented Taobao window (Unix s)."""

DAY_S: int = 86400
"""Seconds in a day."""

SESSION_GAP_S: int = 1800
"""A gap of more than this many seconds since the user's previous event starts a new session."""


def as_canonical(events: pd.DataFrame) -> pd.DataFrame:
    """Return ``events`` with the canonical column order and dtypes.

    Parameters
    ----------
    events
        A table holding at least the columns of :data:`EVENT_COLUMNS`; ``platform`` is kept when
        present. ``behavior_type`` must already use the canonical labels.

    Returns
    -------
    pandas.DataFrame
        A new frame with a fresh ``RangeIndex``.
    """
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"event table lacks the column(s) {missing}; expected {list(EVENT_COLUMNS)}")
    columns = list(EVENT_COLUMNS) + (["platform"] if "platform" in events.columns else [])
    out = events.loc[:, columns].reset_index(drop=True)
    for column in ("user_id", "item_id", "category_id", "timestamp"):
        out[column] = out[column].astype("int64")
    for column, dtype in (("behavior_type", BEHAVIOR_DTYPE), ("platform", PLATFORM_DTYPE)):
        if column not in out.columns:
            continue
        values = out[column]
        known = values.isin(list(dtype.categories))
        if not known.all():
            row = int(np.flatnonzero(~known.to_numpy())[0])
            raise ValueError(
                f"column {column!r}: row {row} holds {values.iloc[row]!r}; "
                f"expected one of {list(dtype.categories)}"
            )
        out[column] = values.astype(dtype)
    return out


def behavior_codes(behavior_type: ArrayLike | pd.Series) -> np.ndarray:
    """Codes ``0..3`` of behavior labels in the order of :data:`BEHAVIOR_TYPES`.

    Parameters
    ----------
    behavior_type
        ``(n,)`` labels: a Series (categorical or of strings) or an array.

    Returns
    -------
    numpy.ndarray
        ``int64 (n,)``: 0 for ``pv``, 1 ``cart``, 2 ``fav``, 3 ``buy``.

    Raises
    ------
    ValueError
        If a label is not one of ``pv, cart, fav, buy``; the message names the first bad label and
        its row (the Series' index label).
    """
    column = behavior_type if isinstance(behavior_type, pd.Series) else pd.Series(
        np.asarray(behavior_type))
    labels = pd.Index(BEHAVIOR_TYPES)
    if isinstance(column.dtype, pd.CategoricalDtype):
        # translate the column's own codes; the appended -1 serves missing values (code -1)
        translate = np.append(labels.get_indexer(column.cat.categories), -1)
        codes = translate[column.cat.codes.to_numpy()]
    else:
        codes = labels.get_indexer(column.to_numpy())
    if np.any(codes < 0):
        row = int(np.flatnonzero(codes < 0)[0])
        raise ValueError(
            f"behavior_type {column.iloc[row]!r} at row {column.index[row]!r} is not one of "
            f"{list(BEHAVIOR_TYPES)}"
        )
    return np.asarray(codes, dtype=np.int64)
