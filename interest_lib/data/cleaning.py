"""Clean a behavior log and account for every row.

:func:`clean` takes a canonical event table, or the dirty table of
:func:`interest_lib.data.noise.add_noise`, and returns the rows worth keeping together with a
:class:`CleaningReport` that says what happened to each input row. :func:`grade_cleaning` compares
that report with the truth recorded by ``add_noise``.
"""

from __future__ import annotations

import datetime
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interest_lib.data.schema import (
    BEHAVIOR_DTYPE,
    BEHAVIOR_TYPES,
    EVENT_COLUMNS,
    TAOBAO_END,
    TAOBAO_START,
    as_canonical,
)

DROP_REASONS: tuple[str, ...] = (
    "duplicate",
    "missing_value",
    "bad_label",
    "out_of_window",
    "bot",
    "missing_category",
)
"""Why :func:`clean` drops a row, in the order the checks run; a row gets the first that applies."""

REASON_DTYPE = pd.CategoricalDtype(["", *DROP_REASONS])

REPAIRS: tuple[str, ...] = ("category_filled", "label_normalised")
"""How :func:`clean` repairs a row it keeps."""

_REASON_TEXT = {
    "duplicate": "exact copy of an earlier row",
    "missing_value": "user, item or time missing",
    "bad_label": "behavior label not pv/cart/fav/buy",
    "out_of_window": "time outside the data's window",
    "bot": "all events of a bot user",
    "missing_category": "category missing, item's category unknown or ambiguous",
    "category_filled": "category taken from the item's only known category",
    "label_normalised": "label repaired by stripping spaces and lower-casing",
}


@dataclass(repr=False)
class CleaningReport:
    """What :func:`clean` did to each input row.

    Every input row is either kept or dropped for exactly one reason, so
    ``rows_in == rows_out + sum(dropped.values())``.

    Attributes
    ----------
    rows_in, rows_out
        Number of rows before and after cleaning.
    dropped
        Rows dropped per reason of :data:`DROP_REASONS` (zeros included).
    repaired
        Kept rows repaired per kind of :data:`REPAIRS`.
    reasons
        Shape ``(rows_in,)``, categorical aligned with the input rows: ``''`` for a kept row,
        else its reason. The kept rows, in input order, are the rows of the cleaned table.
    category_filled, label_normalised
        Shape ``(rows_in,)``, bool: kept rows whose category was filled / label repaired.
    bot_user_ids
        The users judged to be bots.
    rules
        The parameters the checks used (window, bot thresholds).
    """

    rows_in: int
    rows_out: int
    dropped: dict[str, int]
    repaired: dict[str, int]
    reasons: pd.Categorical
    category_filled: np.ndarray
    label_normalised: np.ndarray
    bot_user_ids: np.ndarray
    rules: dict[str, object] = field(default_factory=dict)

    @property
    def kept(self) -> np.ndarray:
        """Shape ``(rows_in,)``, bool: ``True`` for the input rows that were kept."""
        return np.asarray(self.reasons == "")

    def table(self) -> pd.DataFrame:
        """One line per step: rows in, rows dropped per reason, rows out, rows repaired.

        Returns
        -------
        pandas.DataFrame
            Columns ``step``, ``rows``, ``share of input`` and ``meaning``.
        """
        lines = [("rows in", self.rows_in, "")]
        lines += [(f"dropped: {r}", n, _REASON_TEXT[r]) for r, n in self.dropped.items()]
        lines.append(("rows out", self.rows_out, ""))
        lines += [(f"repaired: {r}", n, _REASON_TEXT[r]) for r, n in self.repaired.items()]
        table = pd.DataFrame(lines, columns=["step", "rows", "meaning"])
        table.insert(2, "share of input", table["rows"] / max(self.rows_in, 1))
        return table

    def __str__(self) -> str:
        table = self.table()
        width = max(len(s) for s in table["step"])
        out = [f"Cleaning report: {self.rows_in:,} rows in, {self.rows_out:,} rows out"]
        for step, rows, share, meaning in table.itertuples(index=False):
            note = f"  {meaning}" if meaning else ""
            out.append(f"  {step:<{width}}  {rows:>12,}  {share:8.3%}{note}")
        if len(self.bot_user_ids):
            out.append(f"  bot users: {len(self.bot_user_ids):,}")
        return "\n".join(out)

    def __repr__(self) -> str:
        dropped = sum(self.dropped.values())
        return (
            f"CleaningReport(rows_in={self.rows_in:,}, rows_out={self.rows_out:,}, "
            f"dropped={dropped:,}, repaired={sum(self.repaired.values()):,})"
        )

    def _repr_html_(self) -> str:
        styled = self.table().style.format({"rows": "{:,}", "share of input": "{:.3%}"})
        return styled.hide(axis="index").to_html()


def _normalise_labels(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Canonical label codes (``-1``: unknown) and whether the written label had to change."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        uniques = list(values.cat.categories)
    else:
        codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
        uniques = list(uniques)
    target = np.full(len(uniques) + 1, -1, dtype=np.int8)  # last slot: missing (code -1)
    changed = np.zeros(len(uniques) + 1, dtype=bool)
    for position, label in enumerate(uniques):
        if isinstance(label, str):
            normal = label.strip().lower()
            if normal in BEHAVIOR_TYPES:
                target[position] = BEHAVIOR_TYPES.index(normal)
                changed[position] = normal != label
    return target[codes], changed[codes]


def _bot_users(
    user_id: np.ndarray,
    timestamp: np.ndarray,
    is_pv: np.ndarray,
    events_per_minute: int,
    busy_minutes: int,
    min_pv_share: float,
) -> np.ndarray:
    """Ids of the users that match the bot rule of :func:`clean` (arrays are the rows checked)."""
    if len(user_id) == 0:
        return np.empty(0, dtype=np.int64)
    if (np.diff(user_id) >= 0).all():  # the usual order of a log: no hashing needed
        starts = np.flatnonzero(np.r_[True, user_id[1:] != user_id[:-1]])
        users = user_id[starts]
        user_code = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(user_id)]))
    else:
        user_code, users = pd.factorize(user_id)
    minute = timestamp // 60
    minute = minute - minute.min()
    span = int(minute.max()) + 1
    if span * len(users) < 2**62:
        key = user_code.astype(np.int64) * span + minute
        # a stable sort is nearly linear on a log already ordered by user and time
        key = key[np.argsort(key, kind="stable")]
        run_start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        run_length = np.diff(np.r_[run_start, len(key)])
        busy_user = key[run_start[run_length >= events_per_minute]] // span
    else:
        frame = pd.DataFrame({"user": user_code, "minute": minute})
        per_minute = frame.groupby(["user", "minute"], sort=False).size()
        busy_user = per_minute.index.get_level_values("user").to_numpy()[
            per_minute.to_numpy() >= events_per_minute
        ]
    busy = np.bincount(busy_user, minlength=len(users))
    events = np.bincount(user_code, minlength=len(users))
    pv_share = np.bincount(user_code, weights=is_pv, minlength=len(users)) / events
    return np.asarray(users)[(busy >= busy_minutes) & (pv_share >= min_pv_share)]


def _column_key(values: pd.Series) -> np.ndarray:
    """An int64 stand-in for a column: equal values get equal keys (unequal ones may collide)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy().astype(np.int64)
    if values.dtype.kind in "iub" and not values.hasnans:
        return values.to_numpy().astype(np.int64, copy=False)
    if pd.api.types.is_integer_dtype(values.dtype):  # nullable integers: missing -> a sentinel
        return values.to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).min)
    return pd.factorize(values.to_numpy(dtype=object))[0].astype(np.int64)


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: scrambles 64-bit integers (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _duplicated(frame: pd.DataFrame) -> np.ndarray:
    """``frame.duplicated(keep="first")``, fast on millions of rows.

    Rows are hashed first; only the rows whose hash occurs more than once (the true duplicates
    and rare collisions) are compared exactly.
    """
    hashes = np.zeros(len(frame), dtype=np.uint64)
    for column in frame.columns:
        hashes *= np.uint64(0x9E3779B97F4A7C15)  # a large odd multiplier: h = h * P + key
        hashes += _column_key(frame[column]).view(np.uint64)
    hashes = _mix(hashes)
    ordered = np.sort(hashes)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    out = np.zeros(len(frame), dtype=bool)
    if len(repeated):
        slot = np.searchsorted(repeated, hashes).clip(max=len(repeated) - 1)
        shared = np.flatnonzero(repeated[slot] == hashes)
        out[shared] = frame.iloc[shared].duplicated(keep="first").to_numpy()
    return out


def _isna(values: pd.Series) -> np.ndarray:
    return np.asarray(values.isna().to_numpy(), dtype=bool)


def _int_values(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Values as int64 (missing ones as 0) and the mask of missing values."""
    missing = _isna(values)
    return values.to_numpy(dtype=np.int64, na_value=0), missing


def _category_known_before(
    item_id: np.ndarray,
    timestamp: np.ndarray,
    category: np.ndarray,
    known: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray:
    """For each row in ``rows``, a row of the same item with a known category at or before its
    time, provided every known category of the item up to that time is the same; else -1.

    Returns
    -------
    numpy.ndarray
        (len(rows),) int64 row positions to copy the category from, or -1.
    """
    known_rows = np.flatnonzero(known)
    items, codes = np.unique(np.concatenate([item_id[known_rows], item_id[rows]]),
                             return_inverse=True)
    del items
    t0 = min(timestamp[known_rows].min(initial=0), timestamp[rows].min(initial=0))
    key = codes.astype(np.int64) << np.int64(34)
    key += np.concatenate([timestamp[known_rows], timestamp[rows]]) - t0
    known_key, row_key = key[: len(known_rows)], key[len(known_rows):]
    item_code = codes[: len(known_rows)]

    order = np.argsort(known_key, kind="stable")
    known_rows, known_key, item_code = known_rows[order], known_key[order], item_code[order]
    k_cat = category[known_rows]
    first_of_item = np.r_[True, item_code[1:] != item_code[:-1]]
    item_start = np.maximum.accumulate(np.where(first_of_item, np.arange(len(known_rows)), 0))
    # known rows whose category differs from the item's first one, counted along the item's time
    disagree = np.cumsum(k_cat != k_cat[item_start])
    disagree_so_far = disagree - disagree[item_start]

    pos = np.searchsorted(known_key, row_key, side="right") - 1  # last known row at or before
    out = np.full(len(rows), -1, dtype=np.int64)
    valid = pos >= 0
    valid[valid] &= item_code[pos[valid]] == codes[len(known_rows):][valid]
    valid[valid] &= disagree_so_far[pos[valid]] == 0
    out[valid] = known_rows[item_start[pos[valid]]]
    return out


WindowBound = int | float | str | pd.Timestamp | datetime.datetime | np.datetime64
"""A bound of the cleaning window: Unix seconds, or a time (a naive time is read as UTC)."""


def _window_seconds(
    window: tuple[WindowBound, WindowBound] | None,
) -> tuple[int, int] | None:
    """``window`` as two Unix seconds; times and ISO strings are converted, naive ones as UTC."""
    if window is None:
        return None
    try:
        start, end = window
    except (TypeError, ValueError):
        raise TypeError(
            f"window must be None or a pair (start, end), got {window!r}"
        ) from None
    bounds = []
    for bound in (start, end):
        if isinstance(bound, bool):
            bound = None  # never a time
        if isinstance(bound, int | np.integer | float | np.floating):
            bounds.append(int(bound))
            continue
        try:
            stamp = pd.Timestamp(bound)
        except (TypeError, ValueError):
            stamp = pd.NaT
        if pd.isna(stamp):
            raise TypeError(
                f"window bounds must be Unix seconds, pandas Timestamps, datetimes or ISO "
                f"strings such as '2017-11-25 00:00+08:00', got {bound!r}"
            )
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        bounds.append(int(stamp.timestamp()))
    return bounds[0], bounds[1]


@dataclass
class _Checked:
    """The per-row results of the checks of :func:`clean`, aligned with the input rows."""

    reason: np.ndarray  # int8 codes of REASON_DTYPE, 0: kept
    codes: np.ndarray  # canonical label codes, -1: unknown
    label_changed: np.ndarray
    user_id: np.ndarray
    item_id: np.ndarray
    timestamp: np.ndarray
    category: np.ndarray
    filled: np.ndarray
    bots: np.ndarray

    def drop(self, mask: np.ndarray, why: str) -> None:
        self.reason[(self.reason == 0) & mask] = REASON_DTYPE.categories.get_loc(why)


def _check_rows(frame: pd.DataFrame, window: tuple[int, int] | None) -> _Checked:
    """Steps 1-4 of :func:`clean`: duplicates, missing values, labels, the window."""
    codes, label_changed = _normalise_labels(frame["behavior_type"])
    user_id, _ = _int_values(frame["user_id"])
    item_id, _ = _int_values(frame["item_id"])
    timestamp, _ = _int_values(frame["timestamp"])
    category, _ = _int_values(frame["category_id"])
    n = len(frame)
    checked = _Checked(np.zeros(n, dtype=np.int8), codes, label_changed, user_id, item_id,
                       timestamp, category, np.zeros(n, dtype=bool), np.empty(0, np.int64))  # fmt: skip
    checked.drop(_duplicated(frame), "duplicate")
    checked.drop(
        _isna(frame["user_id"]) | _isna(frame["item_id"]) | _isna(frame["timestamp"]),
        "missing_value",
    )
    checked.drop(codes < 0, "bad_label")
    if window is not None:
        checked.drop((timestamp < window[0]) | (timestamp >= window[1]), "out_of_window")
    return checked


def _drop_bots(checked: _Checked, events_per_minute: int, busy_minutes: int,
               min_pv_share: float) -> None:  # fmt: skip
    """Step 5 of :func:`clean`: every row of a bot user."""
    alive = checked.reason == 0
    checked.bots = _bot_users(
        checked.user_id[alive],
        checked.timestamp[alive],
        (checked.codes[alive] == 0).astype(np.float64),
        events_per_minute,
        busy_minutes,
        min_pv_share,
    )
    checked.drop(np.isin(checked.user_id, checked.bots) & (checked.reason == 0), "bot")


def _fill_categories(checked: _Checked, category_missing: np.ndarray, fill: bool) -> None:
    """Step 6 of :func:`clean`: fill a missing category from the item's past, or drop the row."""
    needs_fill = (checked.reason == 0) & category_missing
    if fill and needs_fill.any():
        rows = np.flatnonzero(needs_fill)
        source = _category_known_before(
            checked.item_id,
            checked.timestamp,
            checked.category,
            (checked.reason == 0) & ~category_missing,
            rows,
        )
        ok = source >= 0
        checked.category[rows[ok]] = checked.category[source[ok]]
        checked.filled[rows[ok]] = True
    checked.drop(category_missing & ~checked.filled, "missing_category")


def _warn_if_window_drops_most(checked: _Checked, window: tuple[int, int] | None) -> None:
    """Warn when the window drops most rows that passed steps 1-3 (a log of other dates)."""
    if window is None:
        return
    out = int((checked.reason == REASON_DTYPE.categories.get_loc("out_of_window")).sum())
    considered = int(np.isin(checked.reason, [0, REASON_DTYPE.categories.get_loc("out_of_window")]).sum())
    if considered and out > considered / 2:
        first, last = (pd.Timestamp(w, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
                       for w in window)  # fmt: skip
        warnings.warn(
            f"clean: {out:,} of {considered:,} rows ({out / considered:.0%}) fall outside the "
            f"window {first} .. {last} and are dropped; the default window is the Taobao "
            "period: for a log of other dates pass window=None or its own window",
            UserWarning,
            stacklevel=3,
        )


def _cleaned_table(frame: pd.DataFrame, checked: _Checked) -> pd.DataFrame:
    kept = checked.reason == 0
    columns_out = {
        "user_id": checked.user_id[kept],
        "item_id": checked.item_id[kept],
        "category_id": checked.category[kept],
        "behavior_type": pd.Categorical.from_codes(checked.codes[kept], dtype=BEHAVIOR_DTYPE),
        "timestamp": checked.timestamp[kept],
    }
    if "platform" in frame.columns:
        columns_out["platform"] = frame["platform"].array[kept]
    return as_canonical(pd.DataFrame(columns_out, copy=False))


def _report(checked: _Checked, rules: dict[str, object]) -> CleaningReport:
    kept = checked.reason == 0
    label_normalised = kept & checked.label_changed
    category_filled = kept & checked.filled
    counts = np.bincount(checked.reason, minlength=len(REASON_DTYPE.categories))
    return CleaningReport(
        rows_in=len(kept),
        rows_out=int(kept.sum()),
        dropped={r: int(counts[i + 1]) for i, r in enumerate(DROP_REASONS)},
        repaired={
            "category_filled": int(category_filled.sum()),
            "label_normalised": int(label_normalised.sum()),
        },
        reasons=pd.Categorical.from_codes(checked.reason, dtype=REASON_DTYPE),
        category_filled=category_filled,
        label_normalised=label_normalised,
        bot_user_ids=np.sort(checked.bots),
        rules=rules,
    )


def clean(
    events: pd.DataFrame,
    window: tuple[WindowBound, WindowBound] | None = (TAOBAO_START, TAOBAO_END),
    *,
    bot_events_per_minute: int = 10,
    bot_busy_minutes: int = 5,
    bot_min_pv_share: float = 0.9,
    fill_category: bool = True,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop or repair the dirty rows of an event table and report what was done to every row.

    The checks run in this order; a dropped row is counted under the first reason that applies.

    1. ``duplicate``: a row identical in every column to an earlier row (the first is kept).
    2. ``missing_value``: ``user_id``, ``item_id`` or ``timestamp`` missing.
    3. ``bad_label``: the behavior label, after stripping white space and lower-casing, is not
       ``pv``, ``cart``, ``fav`` or ``buy``. Labels that become one of them are kept and counted
       as ``label_normalised``.
    4. ``out_of_window``: ``timestamp`` outside ``[window[0], window[1])``.
    5. ``bot``: every row of a bot user. A user is a bot when, among the rows left after steps
       1-4, at least ``bot_busy_minutes`` distinct clock minutes each hold at least
       ``bot_events_per_minute`` events, and at least ``bot_min_pv_share`` of the user's events
       are page views. The rule rests on data: in a 4,321-row head of the real Taobao log no user
       ever logs more than 7 events in one minute, and the simulator's users stay at or below 6.
       A person clicks fast now and then, but does not keep up 10 views a minute, minute after
       minute; crawlers do, and they only view.
    6. ``missing_category``: a missing ``category_id`` is filled when the item has exactly one
       known category among the rows kept by steps 1-5 *at or before the row's time* (counted as
       ``category_filled``); otherwise (no earlier known category, or several) the row is
       dropped. A category is an attribute of the item, the same for every user, so filling it
       from another row borrows no one's behavior; it is never taken from the future, and
       nothing is ever forward-filled from neighbouring rows.

    The kept rows are a subsequence of the input rows in input order; nothing is invented.

    Parameters
    ----------
    events
        ``n`` rows with the canonical columns (``platform`` is kept if present): a clean
        canonical table, or the dirty table of :func:`interest_lib.data.noise.add_noise`
        (``category_id`` nullable, ``behavior_type`` free strings).
    window
        ``(start, end)``: Unix seconds, pandas Timestamps, datetimes or ISO strings (a time
        without a time zone is read as UTC). The default is the documented Taobao period,
        2017-11-25 .. 2017-12-03 in UTC+8; ``None`` keeps every time. When the window drops most
        rows, a :class:`UserWarning` says so (a log of other dates needs ``window=None``).
    bot_events_per_minute, bot_busy_minutes, bot_min_pv_share
        Thresholds of the bot rule (step 5).
    fill_category
        If ``False``, every row with a missing category is dropped.

    Returns
    -------
    cleaned : pandas.DataFrame
        Canonical event table of the kept rows, shape ``(rows_out, 5 or 6)``, fresh index.
    report : CleaningReport
        Per-row reasons and counts; ``report.kept`` marks the input rows that make up
        ``cleaned``. ``report.rules["window"]`` holds the window in Unix seconds.
    """
    missing_columns = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing_columns:
        raise ValueError(
            f"event table lacks the column(s) {missing_columns}; expected {list(EVENT_COLUMNS)}"
        )
    seconds = _window_seconds(window)
    columns = list(EVENT_COLUMNS) + (["platform"] if "platform" in events.columns else [])
    frame = events.loc[:, columns].reset_index(drop=True)
    checked = _check_rows(frame, seconds)
    _drop_bots(checked, bot_events_per_minute, bot_busy_minutes, bot_min_pv_share)
    _fill_categories(checked, _isna(frame["category_id"]), fill_category)
    _warn_if_window_drops_most(checked, seconds)
    rules = {
        "window": seconds,
        "bot_events_per_minute": bot_events_per_minute,
        "bot_busy_minutes": bot_busy_minutes,
        "bot_min_pv_share": bot_min_pv_share,
        "fill_category": fill_category,
    }
    return _cleaned_table(frame, checked), _report(checked, rules)


def grade_cleaning(report: CleaningReport, noise: pd.Categorical | np.ndarray) -> pd.DataFrame:
    """Compare what :func:`clean` did with the truth recorded by ``add_noise``.

    Parameters
    ----------
    report
        The report of ``clean(noisy.events)``.
    noise
        ``noisy.noise``: per dirty row, ``''`` or the kind of dirt, shape ``(rows_in,)``.

    Returns
    -------
    pandas.DataFrame
        One row per kind of dirt plus ``clean``; columns ``rows`` (as injected), ``dropped``,
        ``repaired`` (kept with a repair), ``kept as is`` and ``share dropped``. A good cleaner
        drops nearly all duplicates, out-of-window rows and bot events, repairs what it can of
        the rest, and keeps nearly every clean row as is.
    """
    truth = np.asarray(noise, dtype=object)
    if len(truth) != report.rows_in:
        raise ValueError(f"noise has {len(truth)} rows but the report {report.rows_in}")
    kept = report.kept
    repaired = report.category_filled | report.label_normalised
    lines = []
    for kind in ["duplicate", "missing_category", "out_of_window", "bot", "bad_label", ""]:
        rows = truth == kind
        lines.append(
            {
                "kind": kind or "clean",
                "rows": int(rows.sum()),
                "dropped": int((rows & ~kept).sum()),
                "repaired": int((rows & kept & repaired).sum()),
                "kept as is": int((rows & kept & ~repaired).sum()),
            }
        )
    table = pd.DataFrame(lines).set_index("kind")
    table["share dropped"] = table["dropped"] / table["rows"].clip(lower=1)
    return table
