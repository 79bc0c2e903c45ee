"""Loaders that map public behavior logs onto the canonical event table.

Three public data sets are supported; none is downloaded here, each loader reads files that the
reader has already fetched:

* **Taobao UserBehavior** (Tianchi): :func:`load_taobao`, :func:`iter_taobao`,
  :func:`write_taobao`.
* **RetailRocket** (Kaggle): :func:`load_retailrocket`.
* **REES46** "eCommerce behavior data from multi category store" (Kaggle): :func:`load_rees46`.

Every loader validates what it reads and keeps one contract: it returns a table that passes the
schema check (:func:`interest_lib.data.schema.as_canonical`), or raises
:class:`DataFormatError` whose message names the file, the column, the first bad line (1-based,
as a text editor counts lines) and what was expected there; a missing file raises
:class:`DataFileNotFoundError`. Nothing is dropped silently: every loaded table carries
``attrs["rows_in_file"]`` (data lines read) and ``attrs["loader_dropped"]`` (rows the loader
dropped, by reason), so that ``rows_in_file == len(table) + sum(loader_dropped.values())``.
What loads and what raises (encodings, compression, units of time) is listed in
:mod:`interest_lib.data.csv_files`. Columns a loader does not use (for example REES46 ``price``)
are not validated.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from interest_lib.data.csv_files import (
    Column,
    DataFileNotFoundError,
    DataFormatError,
    Layout,
    PathLike,
    Source,
    open_source,
    utc_seconds,
)
from interest_lib.data.csv_reading import (
    check_times,
    label_codes,
    read_table,
    typed_batches,
)
from interest_lib.data.schema import (
    BEHAVIOR_DTYPE,
    BEHAVIOR_TYPES,
    EVENT_COLUMNS,
    TAOBAO_END,
    TAOBAO_START,
    as_canonical,
)

__all__ = [
    "DataFileNotFoundError",
    "DataFormatError",
    "LAYOUTS",
    "iter_taobao",
    "load_rees46",
    "load_retailrocket",
    "load_taobao",
    "write_taobao",
]

# --------------------------------------------------------------------------------------------
# File layouts
# --------------------------------------------------------------------------------------------

TAOBAO_LAYOUT = Layout(
    title="Taobao UserBehavior",
    header=False,
    columns=(
        Column("user_id", "id", "user id"),
        Column("item_id", "id", "item id"),
        Column("category_id", "id", "category id"),
        Column("behavior_type", "label", "behavior", BEHAVIOR_TYPES),
        Column("timestamp", "int", "Unix time in seconds"),
    ),
    time_column="timestamp",
    time_unit="seconds",
    period=(TAOBAO_START, TAOBAO_END),
    period_text="2017-11-25 .. 2017-12-03, UTC+8",
    loader="load_taobao (--format taobao)",
)

RETAILROCKET_EVENT_LABELS: dict[str, str] = {"view": "pv", "addtocart": "cart", "transaction": "buy"}
"""RetailRocket ``event`` values and the canonical behavior each maps to."""

RETAILROCKET_EVENTS_LAYOUT = Layout(
    title="RetailRocket events",
    header=True,
    columns=(
        Column("timestamp", "int", "Unix time in milliseconds"),
        Column("visitorid", "id", "visitor id"),
        Column("event", "label", "event", tuple(RETAILROCKET_EVENT_LABELS)),
        Column("itemid", "id", "item id"),
        Column("transactionid", "text"),
    ),
    used=("timestamp", "visitorid", "event", "itemid"),
    time_column="timestamp",
    time_unit="milliseconds",
    loader="load_retailrocket (--format retailrocket)",
)

RETAILROCKET_PROPERTIES_LAYOUT = Layout(
    title="RetailRocket item properties",
    header=True,
    columns=(
        Column("timestamp", "int", "Unix time in milliseconds"),
        Column("itemid", "id", "item id"),
        Column("property", "text"),
        Column("value", "text"),
    ),
    time_column="timestamp",
    time_unit="milliseconds",
    loader="load_retailrocket's item_properties_paths",
)

REES46_EVENT_LABELS: dict[str, str | None] = {
    "view": "pv",
    "cart": "cart",
    "remove_from_cart": None,
    "purchase": "buy",
}
"""REES46 ``event_type`` values and the canonical behavior each maps to (``None``: dropped)."""

REES46_LAYOUT = Layout(
    title="REES46",
    header=True,
    columns=(
        Column("event_time", "utc_time", "event time"),
        Column("event_type", "label", "event type", tuple(REES46_EVENT_LABELS)),
        Column("product_id", "id", "product id"),
        Column("category_id", "id", "category id"),
        Column("category_code", "text"),
        Column("brand", "text"),
        Column("price", "text"),
        Column("user_id", "id", "user id"),
        Column("user_session", "text"),
    ),
    used=("event_time", "event_type", "product_id", "category_id", "user_id"),
    time_column="event_time",
    time_unit="seconds",
    loader="load_rees46 (--format rees46)",
)

LAYOUTS: tuple[Layout, ...] = (
    TAOBAO_LAYOUT,
    RETAILROCKET_EVENTS_LAYOUT,
    RETAILROCKET_PROPERTIES_LAYOUT,
    REES46_LAYOUT,
)
"""Every file layout the loaders read (a file of one given to another's loader is named)."""


def _check_nrows(nrows: int | None) -> None:
    if nrows is not None and nrows < 1:
        raise ValueError(f"nrows must be a positive number of lines, got {nrows}")


def _canonical_frame(
    user_id: np.ndarray,
    item_id: np.ndarray,
    category_id: np.ndarray,
    behavior_codes: np.ndarray,
    timestamp: np.ndarray,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": user_id.astype(np.int64, copy=False),
            "item_id": item_id.astype(np.int64, copy=False),
            "category_id": category_id.astype(np.int64, copy=False),
            "behavior_type": pd.Categorical.from_codes(behavior_codes, dtype=BEHAVIOR_DTYPE),
            "timestamp": timestamp.astype(np.int64, copy=False),
        },
        copy=False,
    )


def _int_column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


_CANONICAL_CODE = {label: code for code, label in enumerate(BEHAVIOR_TYPES)}


# --------------------------------------------------------------------------------------------
# Taobao UserBehavior
# --------------------------------------------------------------------------------------------


def _taobao_frame(source: Source, table: pa.Table) -> pd.DataFrame:
    codes = label_codes(source, TAOBAO_LAYOUT, table.column("behavior_type"), _CANONICAL_CODE)
    return _canonical_frame(
        _int_column(table, "user_id"),
        _int_column(table, "item_id"),
        _int_column(table, "category_id"),
        codes,
        _int_column(table, "timestamp"),
    )


def load_taobao(path: PathLike, nrows: int | None = None) -> pd.DataFrame:
    """Load the Taobao UserBehavior file ``UserBehavior.csv``.

    The file has no header and five columns ``user_id,item_id,category_id,behavior_type,
    timestamp`` (Unix seconds). Rows are returned in file order (the published file groups the
    rows by user, each user's rows in time order) and nothing is dropped: rows outside the window
    2017-11-25..2017-12-03 (UTC+8) are kept for :func:`interest_lib.data.cleaning.clean` to handle.

    The file is parsed by the multi-threaded pyarrow CSV reader with explicit column types
    (int64 ids and timestamps, a dictionary-encoded behavior column that becomes a pandas
    categorical); the result takes 33 bytes per row and the peak memory while loading is about
    two to three times that.

    Parameters
    ----------
    path
        The CSV file; gzip and bz2 files are decompressed on the fly (recognised by content).
    nrows
        Read only the first ``nrows`` lines. Only that part of the file is read and parsed.

    Returns
    -------
    pandas.DataFrame
        The canonical event table (see :mod:`interest_lib.data.schema`), shape ``(n_rows, 5)``,
        without ``platform``; ``attrs`` holds ``rows_in_file`` and ``loader_dropped`` (empty).

    Raises
    ------
    DataFileNotFoundError
        There is no file at ``path``.
    DataFormatError
        The file is empty, not UTF-8 text, or a line does not have the documented layout (a
        header line, a missing or extra field, a negative or non-integer id, a non-integer
        timestamp, a behavior other than ``pv``, ``cart``, ``fav``, ``buy``), the timestamps are
        not Unix seconds (milliseconds, say), or the last line is cut off. The message names the
        file, the column and the line.

    Warns
    -----
    UserWarning
        Most timestamps fall outside the documented period 2017-11-25 .. 2017-12-03 (UTC+8).
    """
    _check_nrows(nrows)
    source = open_source(path, TAOBAO_LAYOUT, nrows)
    table = read_table(source, TAOBAO_LAYOUT)
    check_times(path, TAOBAO_LAYOUT, _int_column(table, "timestamp"), at_end=nrows is None)
    out = _taobao_frame(source, table)
    out.attrs.update(rows_in_file=len(out), loader_dropped={})
    return out


def iter_taobao(path: PathLike, chunk_rows: int = 5_000_000) -> Iterator[pd.DataFrame]:
    """Read a Taobao UserBehavior file piece by piece, for files that do not fit in memory.

    Parameters
    ----------
    path
        The CSV file (see :func:`load_taobao`).
    chunk_rows
        Approximate number of rows per piece; pieces follow the file order.

    Yields
    ------
    pandas.DataFrame
        Canonical event tables of about ``chunk_rows`` rows each, indexed from 0.

    Raises
    ------
    DataFileNotFoundError, DataFormatError
        As :func:`load_taobao`; a bad line is reported when the piece holding it is read.

    Notes
    -----
    The file is parsed single-threaded here: a streaming pyarrow reader that reads ahead on the
    thread pool cannot be stopped cleanly when a piece fails, and a task still running when
    Python exits aborts the process. :func:`load_taobao` parses with every core.
    """
    source = open_source(path, TAOBAO_LAYOUT)
    pending: list[pa.RecordBatch] = []
    pending_rows = rows_before = 0
    ready = None  # a full piece, held until it is known whether the file goes on after it
    for batch in typed_batches(source, TAOBAO_LAYOUT):
        if ready is not None:
            yield _taobao_piece(source, *ready, at_end=False)
            ready = None
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= chunk_rows:
            ready = (pending, rows_before)
            rows_before += pending_rows
            pending, pending_rows = [], 0
    if ready is not None:
        yield _taobao_piece(source, *ready, at_end=not pending_rows)
    if pending_rows:
        yield _taobao_piece(source, pending, rows_before, at_end=True)


def _taobao_piece(
    source: Source, batches: list[pa.RecordBatch], rows_before: int, *, at_end: bool
) -> pd.DataFrame:
    table = pa.Table.from_batches(batches)
    check_times(source.path, TAOBAO_LAYOUT, _int_column(table, "timestamp"),
                rows_before=rows_before, at_end=at_end)  # fmt: skip
    return _taobao_frame(source, table)


def write_taobao(events: pd.DataFrame, path: PathLike) -> None:
    """Write events in the Taobao UserBehavior format (no header, five columns).

    ``load_taobao(path)`` gives back exactly the canonical columns of ``events`` (``platform`` and
    any other column is not written).

    Parameters
    ----------
    events
        A canonical event table, shape ``(n_rows, >= 5)``; labels must be ``pv``, ``cart``,
        ``fav`` or ``buy`` and no value may be missing.
    path
        Where to write the CSV file; an existing file is replaced.
    """
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events lack the column(s) {missing}; expected {list(EVENT_COLUMNS)}")
    for column in EVENT_COLUMNS:
        if column == "behavior_type":
            bad = ~events[column].isin(BEHAVIOR_TYPES).to_numpy()
            expected = f"one of {BEHAVIOR_TYPES} (clean the events first)"
        else:
            bad = events[column].isna().to_numpy()
            expected = "a value (clean the events first)"
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{column} at row {row} is {events[column].iloc[row]!r}; expected {expected}"
            )
    frame = as_canonical(events.loc[:, list(EVENT_COLUMNS)])
    codes = frame["behavior_type"].cat.codes.to_numpy()
    labels = pc.take(pa.array(BEHAVIOR_TYPES, pa.string()), pa.array(codes))
    table = pa.table(
        {
            "user_id": frame["user_id"].to_numpy(),
            "item_id": frame["item_id"].to_numpy(),
            "category_id": frame["category_id"].to_numpy(),
            "behavior_type": labels,
            "timestamp": frame["timestamp"].to_numpy(),
        }
    )
    pacsv.write_csv(
        table,
        os.fspath(path),
        write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"),
    )


# --------------------------------------------------------------------------------------------
# RetailRocket
# --------------------------------------------------------------------------------------------


def _retailrocket_categories(path: PathLike) -> pd.DataFrame:
    """The ``categoryid`` rows of one item-properties file: columns timestamp_ms, item_id,
    category_id."""
    layout = RETAILROCKET_PROPERTIES_LAYOUT
    source = open_source(path, layout)
    parts: list[pd.DataFrame] = []
    rows_before = 0
    for batch in typed_batches(source, layout):
        keep = pc.equal(batch.column("property"), "categoryid")
        values = pc.filter(batch.column("value"), keep)
        bad = np.flatnonzero(layout.column("itemid").invalid(values))
        if len(bad):
            row = int(np.flatnonzero(keep.to_numpy(zero_copy_only=False))[bad[0]])
            line = 1 + rows_before + row + 1
            raise DataFormatError(
                f"{os.fspath(path)}, line {line}, column 'value': found "
                f"{values[int(bad[0])].as_py()!r}, expected a non-negative integer category id "
                "(the value of a 'categoryid' property)",
                path=path,
                column="value",
                line=line,
            )
        parts.append(
            pd.DataFrame(
                {
                    "timestamp_ms": pc.filter(batch.column("timestamp"), keep).to_numpy(),
                    "item_id": pc.filter(batch.column("itemid"), keep).to_numpy(),
                    "category_id": pc.cast(values, pa.int64()).to_numpy(),
                }
            )
        )
        rows_before += batch.num_rows
    if rows_before == 0:
        raise DataFormatError(
            f"{os.fspath(path)}: the file has a header but no data lines", path=path, line=2
        )
    return pd.concat(parts, ignore_index=True)


def _categories_at_event_time(
    events: pd.DataFrame, categories: pd.DataFrame
) -> tuple[pd.DataFrame, int, np.ndarray]:
    """Each event with its item's category at the event's time (see :func:`load_retailrocket`).

    Returns the events that have a category, sorted by user, time and file order; the number of
    events that took their item's first snapshot; and the mask of events without a category.
    """
    events = events.assign(row=np.arange(len(events)))
    events = events.sort_values("timestamp_ms", kind="stable", ignore_index=True)
    merged = pd.merge_asof(
        events, categories, on="timestamp_ms", by="item_id", direction="backward"
    )
    missing = merged["category_id"].isna().to_numpy()
    first_known = categories.drop_duplicates("item_id", keep="first").set_index("item_id")
    filled = merged.loc[missing, "item_id"].map(first_known["category_id"])
    merged.loc[missing, "category_id"] = filled
    no_category = merged["category_id"].isna().to_numpy()
    merged = merged.loc[~no_category].sort_values(["user_id", "timestamp_ms", "row"])
    return merged, int(filled.notna().sum()), no_category


def load_retailrocket(
    events_path: PathLike, item_properties_paths: PathLike | list[PathLike] | tuple[PathLike, ...]
) -> pd.DataFrame:
    """Load the RetailRocket data set onto the canonical event table.

    Over 80 lines with its documentation; the body (read the events, read the property files,
    take each event's category valid at its time, map the labels, account for the dropped rows)
    is one sequence of steps that share the same tables.

    ``events.csv`` holds ``timestamp,visitorid,event,itemid,transactionid`` (timestamp in Unix
    milliseconds). Events map ``view`` → ``pv``, ``addtocart`` → ``cart``, ``transaction`` →
    ``buy``; ``visitorid`` becomes ``user_id`` and ``itemid`` becomes ``item_id``; timestamps are
    floored to seconds.

    The category of an item comes from the ``categoryid`` rows of ``item_properties_part1.csv``
    and ``item_properties_part2.csv`` (``timestamp,itemid,property,value``). The published
    properties are weekly snapshots and an item's category can change, so each event takes the
    value recorded most recently at or before the event's time (``pandas.merge_asof`` by item).
    The snapshots start about a week after the first events; an event older than the first
    snapshot of its item takes that first snapshot's value, on the reasoning that the category
    seen a few days later is the best available estimate. These events are counted in
    ``attrs["category_from_first_snapshot"]``. Events of items with no ``categoryid`` at all are
    dropped and counted in ``attrs["dropped_no_category"]`` and
    ``attrs["loader_dropped"]["no_category"]``.

    Parameters
    ----------
    events_path
        ``events.csv``.
    item_properties_paths
        One path or a list of paths: ``item_properties_part1.csv``, ``item_properties_part2.csv``.

    Returns
    -------
    pandas.DataFrame
        The canonical event table, shape ``(n_rows, 5)``, sorted by ``user_id`` then
        ``timestamp`` (file order among ties). ``attrs`` holds ``category_from_first_snapshot``,
        ``dropped_no_category``, ``rows_in_file`` and ``loader_dropped``.

    Raises
    ------
    ValueError
        ``item_properties_paths`` is empty.
    DataFileNotFoundError, DataFormatError
        As :func:`load_taobao`, for any of the files; the timestamps must be milliseconds.
    """
    layout = RETAILROCKET_EVENTS_LAYOUT
    if isinstance(item_properties_paths, str | os.PathLike):
        item_properties_paths = [item_properties_paths]
    if len(item_properties_paths) == 0:
        raise ValueError(
            "item_properties_paths is empty: RetailRocket categories come from "
            "item_properties_part1.csv and item_properties_part2.csv; pass both"
        )
    source = open_source(events_path, layout)
    table = read_table(source, layout)
    check_times(events_path, layout, _int_column(table, "timestamp"))
    mapping = {k: _CANONICAL_CODE[v] for k, v in RETAILROCKET_EVENT_LABELS.items()}
    events = pd.DataFrame(
        {
            "user_id": _int_column(table, "visitorid"),
            "item_id": _int_column(table, "itemid"),
            "code": label_codes(source, layout, table.column("event"), mapping),
            "timestamp_ms": _int_column(table, "timestamp"),
        }
    )
    del table
    rows_in_file = len(events)
    categories = pd.concat(
        [_retailrocket_categories(p) for p in item_properties_paths], ignore_index=True
    ).sort_values("timestamp_ms", kind="stable", ignore_index=True)
    merged, from_first_snapshot, no_category = _categories_at_event_time(events, categories)
    out = _canonical_frame(
        merged["user_id"].to_numpy(),
        merged["item_id"].to_numpy(),
        merged["category_id"].to_numpy(),
        merged["code"].to_numpy(),
        merged["timestamp_ms"].to_numpy() // 1000,
    )
    out.attrs.update(
        rows_in_file=rows_in_file,
        category_from_first_snapshot=from_first_snapshot,
        dropped_no_category=int(no_category.sum()),
        loader_dropped={"no_category": int(no_category.sum())},
    )
    return out


# --------------------------------------------------------------------------------------------
# REES46
# --------------------------------------------------------------------------------------------


def load_rees46(path: PathLike, nrows: int | None = None) -> pd.DataFrame:
    """Load one month of the REES46 multi-category store log onto the canonical event table.

    The file has the header ``event_time,event_type,product_id,category_id,category_code,brand,
    price,user_id,user_session`` and times like ``2019-10-01 00:00:00 UTC``. Event types map
    ``view`` → ``pv``, ``cart`` → ``cart``, ``purchase`` → ``buy``. ``remove_from_cart`` has no
    canonical behavior: those rows are dropped and counted in
    ``attrs["dropped_remove_from_cart"]`` and ``attrs["loader_dropped"]["remove_from_cart"]``.
    ``product_id`` becomes ``item_id``. A time that does not exist (``2019-02-30``,
    ``23:59:60``) is an error, not rolled over to another day.

    Parameters
    ----------
    path
        The monthly CSV file, e.g. ``2019-Oct.csv`` (gzip and bz2 are decompressed on the fly).
    nrows
        Read only the first ``nrows`` data lines.

    Returns
    -------
    pandas.DataFrame
        The canonical event table, shape ``(n_rows, 5)``, sorted by ``user_id`` then
        ``timestamp`` (file order among ties). ``attrs`` holds ``dropped_remove_from_cart``,
        ``rows_in_file`` and ``loader_dropped``.

    Raises
    ------
    DataFileNotFoundError, DataFormatError
        As :func:`load_taobao`.
    """
    layout = REES46_LAYOUT
    _check_nrows(nrows)
    source = open_source(path, layout, nrows)
    table = read_table(source, layout)
    mapping = {
        k: (_CANONICAL_CODE[v] if v is not None else -1) for k, v in REES46_EVENT_LABELS.items()
    }
    codes = label_codes(source, layout, table.column("event_type"), mapping)
    keep = codes >= 0
    timestamp = utc_seconds(table.column("event_time")).to_numpy()
    check_times(path, layout, timestamp, at_end=nrows is None)
    frame = _canonical_frame(
        _int_column(table, "user_id")[keep],
        _int_column(table, "product_id")[keep],
        _int_column(table, "category_id")[keep],
        codes[keep],
        timestamp[keep],
    )
    order = np.lexsort((frame["timestamp"].to_numpy(), frame["user_id"].to_numpy()))
    out = frame.take(order).reset_index(drop=True)
    dropped = int((~keep).sum())
    out.attrs.update(rows_in_file=len(codes), dropped_remove_from_cart=dropped,
                     loader_dropped={"remove_from_cart": dropped})  # fmt: skip
    return out
