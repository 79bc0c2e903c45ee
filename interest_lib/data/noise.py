"""Inject realistic dirt into a clean event table, and record exactly what was done.

Real behavior logs are dirty: rows are logged twice, a category id is lost, a clock is wrong by
months, crawlers hammer popular items, a label arrives as ``'PV'`` or ``' buy'``. :func:`add_noise`
puts these problems into a clean table (usually the simulator's) and returns, for every row of the
dirty table, which problem it carries, so that a cleaner can be graded against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from interest_lib.data.schema import (
    BEHAVIOR_TYPES,
    PLATFORM_DTYPE,
    PLATFORMS,
    TAOBAO_END,
    TAOBAO_START,
    as_canonical,
)

NOISE_KINDS: tuple[str, ...] = ("duplicate", "missing_category", "out_of_window", "bot", "bad_label")
"""The kinds of dirt :func:`add_noise` injects; ``''`` marks a clean row."""

NOISE_DTYPE = pd.CategoricalDtype(["", *NOISE_KINDS])

RECOVERABLE_LABEL_FORMS: tuple[str, ...] = ("upper", "leading_space", "trailing_space", "title_tab")
"""How a recoverable bad label is written: ``'PV'``, ``' buy'``, ``'cart '``, ``'\\tFav '``.

Each form normalises (strip, lower-case) back to the original label."""

UNRECOVERABLE_LABELS: tuple[str | None, ...] = ("click", "", "null", "-", None)
"""Bad labels that say nothing about the behavior; a cleaner can only drop them."""

_DAY = 86400


@dataclass(repr=False)
class NoisyEvents:
    """A dirty event table together with the truth about its dirt.

    Attributes
    ----------
    events
        The dirty table, ``N`` rows: canonical columns (plus ``platform`` if the input had it), but
        ``category_id`` is a nullable ``Int64`` column and ``behavior_type`` holds plain strings
        (dtype ``object``, possibly ``None``). Rows are ordered by user, then as the input was: a
        duplicate directly follows its original; bot users sit where their id sorts among the
        users when the input is sorted by ``user_id``, at the end otherwise.
    noise
        Shape ``(N,)``, categorical: ``''`` for a clean row, else the kind from
        :data:`NOISE_KINDS`. Each row carries at most one kind; a row marked ``'duplicate'`` is
        the injected copy (its original stays clean).
    source_row
        Shape ``(N,)``, int64: the position of the row in the input table, ``-1`` for injected
        rows (duplicate copies, bot events).
    label_recoverable
        Shape ``(N,)``, bool: ``True`` where a ``'bad_label'`` row normalises (strip, lower-case)
        back to its original label.
    bot_user_ids
        Shape ``(B,)``: the user ids given to the injected bots.
    counts
        Number of rows per kind of :data:`NOISE_KINDS`.
    """

    events: pd.DataFrame
    noise: pd.Categorical
    source_row: np.ndarray
    label_recoverable: np.ndarray
    bot_user_ids: np.ndarray
    counts: dict[str, int]

    def summary(self) -> pd.DataFrame:
        """Rows per kind of dirt and their share of the dirty table, one row per kind."""
        rows = pd.Series(self.counts, name="rows").reindex(list(NOISE_KINDS), fill_value=0)
        table = rows.to_frame()
        table["share"] = table["rows"] / max(len(self.events), 1)
        table.loc["clean"] = [int((self.noise == "").sum()), (self.noise == "").mean()]
        table["rows"] = table["rows"].astype(int)
        table.index.name = "kind"
        return table

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v:,}" for k, v in self.counts.items())
        return f"NoisyEvents({len(self.events):,} rows; {parts}; {len(self.bot_user_ids)} bot users)"

    def _repr_html_(self) -> str:
        return f"<p>{self!r}</p>" + self.summary().to_html(float_format="{:.2%}".format)


def _split_counts(n: int, rates: dict[str, float]) -> dict[str, int]:
    counts = {kind: int(round(rate * n)) for kind, rate in rates.items()}
    for kind, rate in rates.items():
        if not 0 <= rate <= 1:
            raise ValueError(f"{kind} rate must lie in [0, 1], got {rate}")
    if sum(counts.values()) > n:
        raise ValueError(f"the rates {rates} add up to more rows than the {n} rows of the input")
    return counts


def _out_of_window_times(rng: np.random.Generator, n: int, window: tuple[int, int]) -> np.ndarray:
    """Timestamps outside ``window``: 60 % one day to four months before it, 30 % up to a month
    after it, 10 % wildly wrong clocks (1970-01-01 or 2037)."""
    start, end = window
    kind = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    before = start - rng.integers(_DAY, 120 * _DAY, size=n)
    after = end + rng.integers(0, 30 * _DAY, size=n)
    wild = np.where(
        rng.random(n) < 0.5,
        rng.integers(0, _DAY, size=n),
        rng.integers(2_114_380_800, 2_114_380_800 + 365 * _DAY, size=n),
    )
    return np.select([kind == 0, kind == 1], [before, after], wild).astype(np.int64)


def _bad_labels(
    rng: np.random.Generator, codes: np.ndarray, unrecoverable_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Malformed labels for rows whose canonical label codes are ``codes``.

    Returns the labels (object array) and whether each one normalises back to its original.
    """
    forms = {
        "upper": [label.upper() for label in BEHAVIOR_TYPES],
        "leading_space": [" " + label for label in BEHAVIOR_TYPES],
        "trailing_space": [label + " " for label in BEHAVIOR_TYPES],
        "title_tab": ["\t" + label.title() + " " for label in BEHAVIOR_TYPES],
    }
    table = np.array([forms[f] for f in RECOVERABLE_LABEL_FORMS], dtype=object)  # (forms, 4)
    form = rng.integers(0, len(RECOVERABLE_LABEL_FORMS), size=len(codes))
    labels = table[form, codes]
    recoverable = rng.random(len(codes)) >= unrecoverable_share
    junk = np.array(UNRECOVERABLE_LABELS, dtype=object)
    labels[~recoverable] = junk[rng.integers(0, len(junk), size=int((~recoverable).sum()))]
    return labels, recoverable


def _new_user_ids(rng: np.random.Generator, existing: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct user ids that do not occur in ``existing``, spread over its id range."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    low = int(existing.min()) if len(existing) else 1
    high = (int(existing.max()) if len(existing) else 1) + 1 + n
    found = np.empty(0, dtype=np.int64)
    while len(found) < n:
        draw = rng.integers(low, high, size=4 * n + 16)
        draw = draw[~np.isin(draw, existing) & ~np.isin(draw, found)]
        draw = pd.unique(draw)
        found = np.concatenate([found, draw[: n - len(found)]])
        high += 4 * n + 16  # a dense id range leaves little room: widen it
    return found.astype(np.int64)


def _bot_events(
    rng: np.random.Generator,
    base: pd.DataFrame,
    n_bots: int,
    events_per_minute: tuple[float, float],
    burst_minutes: tuple[float, float],
    bursts: tuple[int, int],
    window: tuple[int, int],
) -> tuple[pd.DataFrame, np.ndarray]:
    """Page-view bursts of ``n_bots`` new users on the most popular items, sorted by user, time."""
    bot_ids = np.sort(_new_user_ids(rng, base["user_id"].unique(), n_bots))
    if n_bots == 0:
        empty = np.empty(0, dtype=np.int64)
        bots = pd.DataFrame({c: empty for c in ("user_id", "item_id", "category_id", "timestamp")})
        if "platform" in base.columns:
            bots["platform"] = pd.Categorical([], dtype=PLATFORM_DTYPE)
        return bots, bot_ids
    bursts_per_bot = rng.integers(bursts[0], bursts[1] + 1, size=n_bots)
    burst_bot = np.repeat(np.arange(n_bots), bursts_per_bot)
    n_bursts = len(burst_bot)
    minutes = rng.uniform(*burst_minutes, size=n_bursts)
    rate = rng.uniform(*events_per_minute, size=n_bursts)
    n_events = np.maximum(1, np.round(minutes * rate)).astype(np.int64)
    latest_start = np.maximum(window[0], window[1] - minutes * 60 - 1)
    start = window[0] + rng.random(n_bursts) * (latest_start - window[0])
    event_burst = np.repeat(np.arange(n_bursts), n_events)
    timestamp = (
        start[event_burst] + rng.random(len(event_burst)) * minutes[event_burst] * 60
    ).astype(np.int64)
    user_id = bot_ids[burst_bot[event_burst]]

    # popular items: the top 1 % of items (at least 50), drawn in proportion to their events
    popularity = base["item_id"].value_counts()
    top = popularity.iloc[: max(50, int(np.ceil(0.01 * len(popularity))))]
    item_id = rng.choice(top.index.to_numpy(), size=len(user_id), p=top.to_numpy() / top.sum())
    category_of_item = base.drop_duplicates("item_id").set_index("item_id")["category_id"]
    category_id = category_of_item.reindex(item_id).to_numpy()

    order = np.lexsort((timestamp, user_id))
    bots = pd.DataFrame(
        {
            "user_id": user_id[order],
            "item_id": item_id[order].astype(np.int64),
            "category_id": category_id[order].astype(np.int64),
            "timestamp": timestamp[order],
        }
    )
    if "platform" in base.columns:
        platform_of_bot = rng.integers(0, len(PLATFORMS), size=n_bots)
        codes = platform_of_bot[np.searchsorted(bot_ids, bots["user_id"].to_numpy())]
        bots["platform"] = pd.Categorical.from_codes(codes, dtype=PLATFORM_DTYPE)
    return bots, bot_ids


def add_noise(
    events: pd.DataFrame,
    *,
    duplicate_rate: float = 0.01,
    missing_category_rate: float = 0.005,
    out_of_window_rate: float = 0.002,
    bot_user_rate: float = 0.005,
    bad_label_rate: float = 0.005,
    unrecoverable_label_share: float = 0.3,
    bot_events_per_minute: tuple[float, float] = (10.0, 30.0),
    bot_burst_minutes: tuple[float, float] = (20.0, 60.0),
    bot_bursts: tuple[int, int] = (1, 3),
    window: tuple[int, int] = (TAOBAO_START, TAOBAO_END),
    seed: int = 0,
) -> NoisyEvents:
    """Return a dirty copy of ``events`` and a per-row record of the dirt.

    Five kinds of dirt are injected; the input rows that receive dirt are drawn without
    replacement, so each row carries at most one kind. (Long only through this documentation:
    each kind is a helper, called in a fixed order on one random generator.)

    * ``duplicate``: ``duplicate_rate * n`` rows are logged twice; the copy directly follows
      its original.
    * ``missing_category``: ``category_id`` becomes missing (``<NA>``) on
      ``missing_category_rate * n`` rows.
    * ``out_of_window``: ``out_of_window_rate * n`` rows get a timestamp outside ``window``:
      mostly one day to four months before it (like the real Taobao row dated 2017-09-11), some
      up to a month after it, a few from clocks reset to 1970 or set to 2037.
    * ``bot``: ``round(bot_user_rate * n_users)`` new users that only view, in one to three
      bursts of 20 to 60 minutes at 10 to 30 events per minute, on the most popular items. With
      the defaults a bot logs a few hundred to a few thousand events: far more, and far faster,
      than any real user (real Taobao users peak below 10 events in a minute).
    * ``bad_label``: ``bad_label_rate * n`` labels are malformed. ``1 -
      unrecoverable_label_share`` of them only differ in case or surrounding white space
      (``'PV'``, ``' buy'``, ``'cart '``, ``'\\tFav '``); the rest say nothing (``'click'``,
      ``''``, ``'null'``, ``'-'``, missing).

    Parameters
    ----------
    events
        A clean canonical event table (``platform`` is kept), ``n`` rows, typically sorted by user
        then time.
    duplicate_rate, missing_category_rate, out_of_window_rate, bad_label_rate
        Shares of the ``n`` input rows that receive each kind of dirt.
    bot_user_rate
        Number of bot users as a share of the input's distinct users.
    unrecoverable_label_share
        Share of the bad labels that cannot be repaired.
    bot_events_per_minute, bot_burst_minutes, bot_bursts
        Ranges (low, high) of a bot burst's rate, its length and the number of bursts per bot.
    window
        ``(start, end)`` Unix seconds: the period of the data; out-of-window times avoid it and
        bot bursts stay inside it.
    seed
        Seed of the random generator; the result is a deterministic function of the arguments.

    Returns
    -------
    NoisyEvents
        The dirty table and, aligned with its rows, ``noise``, ``source_row`` and
        ``label_recoverable``; ``counts`` per kind.
    """
    base = as_canonical(events)
    n = len(base)
    rng = np.random.default_rng(seed)
    rates = {"duplicate": duplicate_rate, "missing_category": missing_category_rate,
             "out_of_window": out_of_window_rate, "bad_label": bad_label_rate}  # fmt: skip
    picked = _pick_rows(rng, n, rates)  # in this order: the order fixes the rows each kind gets
    category_missing = np.zeros(n, dtype=bool)
    category_missing[picked["missing_category"]] = True
    timestamp = _move_out_of_window(rng, base["timestamp"], picked["out_of_window"], window)
    behavior, recoverable = _spoil_labels(
        rng, base["behavior_type"], picked["bad_label"], unrecoverable_label_share
    )
    n_bots = int(round(bot_user_rate * base["user_id"].nunique())) if n else 0
    bots, bot_ids = _bot_events(
        rng, base, n_bots, bot_events_per_minute, bot_burst_minutes, bot_bursts, window
    )

    dup_rows = np.sort(picked["duplicate"])
    order = _dirty_order(base["user_id"].to_numpy(), dup_rows, bots["user_id"].to_numpy())
    dirty = _dirty_table(base, order, dup_rows, category_missing, behavior, timestamp, bots)
    noise, source_row, label_recoverable = _dirt_record(
        order, _kind_codes(n, picked), dup_rows, len(bots), recoverable
    )
    counts = {kind: int(len(picked.get(kind, ()))) for kind in NOISE_KINDS}
    counts["bot"] = len(bots)
    return NoisyEvents(
        events=dirty,
        noise=noise,
        source_row=source_row,
        label_recoverable=label_recoverable,
        bot_user_ids=bot_ids,
        counts=counts,
    )


def _pick_rows(rng: np.random.Generator, n: int, rates: dict[str, float]) -> dict[str, np.ndarray]:
    """Disjoint random input rows for each kind of dirt, ``round(rate * n)`` of each."""
    wanted = _split_counts(n, rates)
    chosen = rng.choice(n, size=sum(wanted.values()), replace=False)
    return dict(zip(wanted, np.split(chosen, np.cumsum(list(wanted.values()))[:-1]), strict=True))


def _kind_codes(n: int, picked: dict[str, np.ndarray]) -> np.ndarray:
    """``(n,)`` int8 code in :data:`NOISE_DTYPE` of the dirt each input row carries.

    The original of a duplicate stays clean; its copy carries the mark.
    """
    kind_code = np.zeros(n, dtype=np.int8)
    for kind, rows in picked.items():
        kind_code[rows] = NOISE_DTYPE.categories.get_loc(kind)
    kind_code[picked["duplicate"]] = 0
    return kind_code


def _move_out_of_window(
    rng: np.random.Generator, timestamp: pd.Series, rows: np.ndarray, window: tuple[int, int]
) -> np.ndarray:
    """The timestamps (Unix s) as an array, with ``rows`` moved outside ``window``."""
    timestamp = timestamp.to_numpy().copy()
    timestamp[rows] = _out_of_window_times(rng, len(rows), window)
    return timestamp


def _spoil_labels(
    rng: np.random.Generator, behavior_type: pd.Series, rows: np.ndarray, unrecoverable_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """The labels as plain strings, malformed on ``rows``, and where they can be repaired.

    Returns
    -------
    (behavior, recoverable)
        ``(n,)`` object array of labels and ``(n,)`` bool.
    """
    codes = behavior_type.cat.codes.to_numpy()
    behavior = np.array(BEHAVIOR_TYPES, dtype=object)[codes]
    recoverable = np.zeros(len(codes), dtype=bool)
    bad_rows = np.sort(rows)
    behavior[bad_rows], recoverable[bad_rows] = _bad_labels(
        rng, codes[bad_rows], unrecoverable_share
    )
    return behavior, recoverable


def _dirty_order(users: np.ndarray, dup_rows: np.ndarray, bot_users: np.ndarray) -> np.ndarray:
    """The order of the stacked rows (input rows, duplicate copies, bot events) in the dirty table.

    Input rows stay in place, each copy comes right after its original, and bot users sit where
    their id sorts among the users when ``users`` is sorted, at the end otherwise.
    """
    n, n_bot_rows = len(users), len(bot_users)
    sorted_by_user = bool(n == 0 or (np.diff(users) >= 0).all())
    bot_position = (
        np.searchsorted(users, bot_users, side="left")
        if sorted_by_user
        else np.full(n_bot_rows, n)
    )
    primary = np.concatenate([np.arange(n), dup_rows, bot_position - 0.5])
    secondary = np.concatenate(
        [np.zeros(n, np.int64), np.ones(len(dup_rows), np.int64), np.arange(n_bot_rows)]
    )
    return np.lexsort((secondary, primary))


def _stack(
    order: np.ndarray, rows: np.ndarray, copies: np.ndarray, bot_rows: np.ndarray
) -> np.ndarray:
    """One column of the dirty table from its input rows, duplicate copies and bot events."""
    return np.concatenate([rows, copies, bot_rows])[order]


def _dirty_table(
    base: pd.DataFrame,
    order: np.ndarray,
    dup_rows: np.ndarray,
    category_missing: np.ndarray,
    behavior: np.ndarray,
    timestamp: np.ndarray,
    bots: pd.DataFrame,
) -> pd.DataFrame:
    """The dirty event table: the changed input rows, their duplicate copies and the bot events."""
    n_bot_rows = len(bots)
    users = base["user_id"].to_numpy()
    items = base["item_id"].to_numpy()
    category = base["category_id"].to_numpy().copy()
    dirty = pd.DataFrame(
        {
            "user_id": _stack(order, users, users[dup_rows], bots["user_id"].to_numpy()),
            "item_id": _stack(order, items, items[dup_rows], bots["item_id"].to_numpy()),
            "category_id": pd.arrays.IntegerArray(
                _stack(order, category, category[dup_rows], bots["category_id"].to_numpy()),
                _stack(order, category_missing, category_missing[dup_rows],
                       np.zeros(n_bot_rows, bool)),
            ),
            "behavior_type": pd.Series(
                _stack(order, behavior, behavior[dup_rows],
                       np.full(n_bot_rows, "pv", dtype=object)),
                dtype=object,
            ),
            "timestamp": _stack(order, timestamp, timestamp[dup_rows],
                                bots["timestamp"].to_numpy()),
        }
    )  # fmt: skip
    if "platform" in base.columns:
        platform_codes = base["platform"].cat.codes.to_numpy()
        dirty["platform"] = pd.Categorical.from_codes(
            _stack(order, platform_codes, platform_codes[dup_rows],
                   bots["platform"].cat.codes.to_numpy()),
            dtype=PLATFORM_DTYPE,
        )  # fmt: skip
    return dirty


def _dirt_record(
    order: np.ndarray,
    kind_code: np.ndarray,
    dup_rows: np.ndarray,
    n_bot_rows: int,
    recoverable: np.ndarray,
) -> tuple[pd.Categorical, np.ndarray, np.ndarray]:
    """``noise``, ``source_row`` and ``label_recoverable`` aligned with the dirty table."""
    n, n_dup = len(kind_code), len(dup_rows)
    noise = pd.Categorical.from_codes(
        _stack(
            order,
            kind_code,
            np.full(n_dup, NOISE_DTYPE.categories.get_loc("duplicate"), np.int8),
            np.full(n_bot_rows, NOISE_DTYPE.categories.get_loc("bot"), np.int8),
        ),
        dtype=NOISE_DTYPE,
    )
    source_row = _stack(
        order,
        np.arange(n, dtype=np.int64),
        np.full(n_dup, -1, np.int64),
        np.full(n_bot_rows, -1, np.int64),
    )
    label_recoverable = _stack(order, recoverable, np.zeros(n_dup, bool), np.zeros(n_bot_rows, bool))
    return noise, source_row, label_recoverable
