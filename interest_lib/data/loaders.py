"""Loaders that map public behavior logs onto the canonical event table.

Three public data sets are supported; none is downloaded here, each loader reads files that the
reader has already fetched:

* **Taobao UserBehavior** (Tianchi): :func:`load_taobao`, :func:`iter_taobao`,
  :func:`write_taobao`.
* **RetailRocket** (Kaggle): :func:`load_retailrocket`.
* **REES46** "eCommerce behavior data from multi category store" (Kaggle): :func:`load_rees46`.

Every loader validates what it reads. A file that does not have the documented layout raises
:class:`DataFormatError` whose message names the file, the column, the first bad line (1-based, as
a text editor counts lines) and what was expected there; a missing file raises
:class:`DataFileNotFoundError`. Files are parsed with the multi-threaded pyarrow CSV reader and
explicit column types; only when that fails is the file read a second time, as plain text, to find
the first bad line. Columns a loader does not use (for example REES46 ``price``) are not validated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from interest_lib.data.schema import BEHAVIOR_DTYPE, BEHAVIOR_TYPES, EVENT_COLUMNS, as_canonical

PathLike = str | os.PathLike


class DataFormatError(ValueError):
    """A data file does not have the layout its loader expects.

    Attributes
    ----------
    path
        The file, as given to the loader.
    column
        The column at fault, or ``None`` when the problem is not one column's (an empty file).
    line
        1-based line number of the first bad line in the file, or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: PathLike | None = None,
        column: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.column = column
        self.line = line


class DataFileNotFoundError(DataFormatError, FileNotFoundError):
    """A loader was given a path where there is no file; it is also a :class:`FileNotFoundError`."""


# --------------------------------------------------------------------------------------------
# File layouts
# --------------------------------------------------------------------------------------------

_INT64_MAX_DIGITS = "9223372036854775807"
_UTC_TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


@dataclass(frozen=True)
class _Column:
    """One column of a file layout: how it is parsed and what a valid value looks like.

    ``kind`` is ``"int"`` (a 64-bit integer), ``"label"`` (one of ``labels``), ``"utc_time"``
    (``2019-10-01 00:00:00 UTC``) or ``"text"`` (anything; not validated).
    """

    name: str
    kind: str
    meaning: str = ""
    labels: tuple[str, ...] = ()

    @property
    def arrow_type(self) -> pa.DataType:
        if self.kind == "int":
            return pa.int64()
        if self.kind == "label":
            return pa.dictionary(pa.int32(), pa.string())
        if self.kind == "utc_time":
            return pa.timestamp("s")
        return pa.string()

    @property
    def expected(self) -> str:
        if self.kind == "int":
            what = "an integer"
        elif self.kind == "label":
            what = "one of " + ", ".join(repr(v) for v in self.labels)
        elif self.kind == "utc_time":
            what = "a time like '2019-10-01 00:00:00 UTC'"
        else:
            what = "text"
        return f"{what} ({self.meaning})" if self.meaning else what

    def invalid(self, values: pa.Array) -> np.ndarray:
        """Boolean mask of the entries of a string array that this column would reject."""
        if self.kind == "int":
            digits = pc.utf8_ltrim(values, characters="-")
            ok = pc.match_substring_regex(values, r"^-?[0-9]{1,19}$")
            length = pc.utf8_length(digits)
            fits = pc.or_(
                pc.less(length, 19),
                pc.less_equal(digits, pa.scalar(_INT64_MAX_DIGITS)),
            )
            ok = pc.and_(ok, fits)
        elif self.kind == "label":
            ok = pc.is_in(values, value_set=pa.array(self.labels, pa.string()))
        elif self.kind == "utc_time":
            parsed = pc.strptime(values, format=_UTC_TIME_FORMAT, unit="s", error_is_null=True)
            ok = pc.and_(
                pc.match_substring_regex(values, r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$"),
                pc.is_valid(parsed),
            )
        else:
            return np.zeros(len(values), dtype=bool)
        return ~np.asarray(ok.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


@dataclass(frozen=True)
class _Layout:
    """The layout of one kind of CSV file."""

    title: str
    columns: tuple[_Column, ...]
    header: bool
    used: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def used_names(self) -> list[str]:
        return list(self.used) if self.used else self.names

    def column(self, name: str) -> _Column:
        return next(c for c in self.columns if c.name == name)


TAOBAO_LAYOUT = _Layout(
    title="Taobao UserBehavior",
    header=False,
    columns=(
        _Column("user_id", "int", "user id"),
        _Column("item_id", "int", "item id"),
        _Column("category_id", "int", "category id"),
        _Column("behavior_type", "label", "behavior", BEHAVIOR_TYPES),
        _Column("timestamp", "int", "Unix time in seconds"),
    ),
)

RETAILROCKET_EVENT_LABELS: dict[str, str] = {"view": "pv", "addtocart": "cart", "transaction": "buy"}
"""RetailRocket ``event`` values and the canonical behavior each maps to."""

RETAILROCKET_EVENTS_LAYOUT = _Layout(
    title="RetailRocket events",
    header=True,
    columns=(
        _Column("timestamp", "int", "Unix time in milliseconds"),
        _Column("visitorid", "int", "visitor id"),
        _Column("event", "label", "event", tuple(RETAILROCKET_EVENT_LABELS)),
        _Column("itemid", "int", "item id"),
        _Column("transactionid", "text"),
    ),
    used=("timestamp", "visitorid", "event", "itemid"),
)

RETAILROCKET_PROPERTIES_LAYOUT = _Layout(
    title="RetailRocket item properties",
    header=True,
    columns=(
        _Column("timestamp", "int", "Unix time in milliseconds"),
        _Column("itemid", "int", "item id"),
        _Column("property", "text"),
        _Column("value", "text"),
    ),
)

REES46_EVENT_LABELS: dict[str, str | None] = {
    "view": "pv",
    "cart": "cart",
    "remove_from_cart": None,
    "purchase": "buy",
}
"""REES46 ``event_type`` values and the canonical behavior each maps to (``None``: dropped)."""

REES46_LAYOUT = _Layout(
    title="REES46",
    header=True,
    columns=(
        _Column("event_time", "utc_time", "event time"),
        _Column("event_type", "label", "event type", tuple(REES46_EVENT_LABELS)),
        _Column("product_id", "int", "product id"),
        _Column("category_id", "int", "category id"),
        _Column("category_code", "text"),
        _Column("brand", "text"),
        _Column("price", "text"),
        _Column("user_id", "int", "user id"),
        _Column("user_session", "text"),
    ),
    used=("event_time", "event_type", "product_id", "category_id", "user_id"),
)

_BLOCK_SIZE = 16 << 20  # bytes per parsing block: large blocks keep the thread pool busy


# --------------------------------------------------------------------------------------------
# Reading and diagnosing CSV files
# --------------------------------------------------------------------------------------------


def _require_file(path: PathLike, layout: _Layout) -> None:
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise DataFileNotFoundError(
            f"{os.fspath(path)}: the file {what}; expected a {layout.title} CSV file",
            path=path,
        )


def _empty_file_error(path: PathLike, layout: _Layout) -> DataFormatError:
    first = "a header line" if layout.header else "one event per line"
    return DataFormatError(
        f"{os.fspath(path)}: the file is empty; expected a {layout.title} CSV file with {first} "
        f"and the columns {','.join(layout.names)}",
        path=path,
        line=1,
    )


def _open_stream(source: PathLike | bytes) -> pa.NativeFile:
    if isinstance(source, bytes):
        return pa.BufferReader(source)
    return pa.input_stream(os.fspath(source))  # decompresses .gz / .bz2 by extension


def _first_line(source: PathLike | bytes) -> str | None:
    """The first line of a file without its line ending, or ``None`` for an empty file."""
    with _open_stream(source) as stream:
        chunk = b""
        while b"\n" not in chunk:
            block = stream.read(1 << 16)
            if not block:
                break
            chunk += block
    if not chunk:
        return None
    line = chunk.split(b"\n", 1)[0].rstrip(b"\r")
    return line.decode("utf-8", errors="replace").lstrip("\ufeff")


def _head_bytes(path: PathLike, n_lines: int) -> bytes:
    """The first ``n_lines`` lines of a file (fewer if the file is shorter), as raw bytes."""
    parts: list[bytes] = []
    found = 0
    with _open_stream(path) as stream:
        while True:
            block = stream.read(8 << 20)
            if not block:
                break
            newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
            if found + len(newlines) >= n_lines:
                cut = int(newlines[n_lines - found - 1]) + 1
                parts.append(block[:cut])
                break
            found += len(newlines)
            parts.append(block)
    return b"".join(parts)


def _check_header(path: PathLike, source: PathLike | bytes, layout: _Layout) -> None:
    line = _first_line(source)
    if line is None or not line.strip():
        raise _empty_file_error(path, layout)
    found = [name.strip().strip('"') for name in line.split(",")]
    if found == layout.names:
        return
    missing = [n for n in layout.names if n not in found]
    extra = [n for n in found if n not in layout.names]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing column(s) {missing}")
        if extra:
            problems.append(f"unexpected column(s) {extra}")
        column = (missing or extra)[0]
    else:
        problems = [f"columns in the order {found}"]
        column = next(a for a, b in zip(found, layout.names, strict=True) if a != b)
    raise DataFormatError(
        f"{os.fspath(path)}, line 1 (header), column {column!r}: {'; '.join(problems)}; "
        f"expected the {layout.title} header {','.join(layout.names)}",
        path=path,
        column=column,
        line=1,
    )


def _read_options(layout: _Layout, *, use_threads: bool = True) -> pacsv.ReadOptions:
    return pacsv.ReadOptions(
        column_names=layout.names,
        skip_rows=1 if layout.header else 0,
        use_threads=use_threads,
        block_size=_BLOCK_SIZE,
    )


def _convert_options(layout: _Layout, *, as_text: bool = False) -> pacsv.ConvertOptions:
    names = layout.used_names
    types = {c.name: (pa.string() if as_text else c.arrow_type) for c in layout.columns}
    return pacsv.ConvertOptions(
        column_types={n: types[n] for n in names},
        include_columns=names,
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        timestamp_parsers=[_UTC_TIME_FORMAT],
    )


def _parse_options(invalid_row_handler=None) -> pacsv.ParseOptions:
    # Empty lines are rows too, so that row i is always line i (+1 for a header).
    return pacsv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=invalid_row_handler)


def _bad_value_error(
    path: PathLike, layout: _Layout, column: _Column, line: int, row: Mapping[str, str]
) -> DataFormatError:
    value = row[column.name]
    hint = ""
    if all(v == "" for v in row.values()):
        hint = " (the line is empty)"
    elif line == 1 and not layout.header:
        looks_like_header = sum(v.strip().lower() in layout.names for v in row.values()) >= 2
        if looks_like_header or not re.fullmatch(r"-?\d+", row[layout.columns[0].name]):
            hint = f" (the line looks like a header, but {layout.title} files have no header line)"
    return DataFormatError(
        f"{os.fspath(path)}, line {line}, column {column.name!r}: found {value!r}, "
        f"expected {column.expected}{hint}",
        path=path,
        column=column.name,
        line=line,
    )


def _field_count_error(path: PathLike, layout: _Layout, invalid) -> DataFormatError:
    names = layout.names
    if invalid.actual_columns > len(names):
        column = names[-1]
        problem = f"an extra field after column {column!r}"
    else:
        column = names[invalid.actual_columns]
        problem = f"no field for column {column!r}"
    return DataFormatError(
        f"{os.fspath(path)}, line {invalid.number}, column {column!r}: found "
        f"{invalid.actual_columns} comma-separated fields ({problem}), expected "
        f"{invalid.expected_columns}: {','.join(names)}; the line reads {invalid.text!r}",
        path=path,
        column=column,
        line=invalid.number,
    )


def _diagnose(path: PathLike, source: PathLike | bytes, layout: _Layout) -> DataFormatError | None:
    """Read a file again as text, line by line in order, and describe its first bad line."""
    first_invalid_row: list = []

    def on_invalid_row(row) -> str:
        if not first_invalid_row:
            first_invalid_row.append(row)
        return "skip"

    header_lines = 1 if layout.header else 0
    checked = [layout.column(n) for n in layout.used_names]
    try:
        reader = pacsv.open_csv(
            _open_stream(source),
            read_options=_read_options(layout, use_threads=False),
            parse_options=_parse_options(on_invalid_row),
            convert_options=_convert_options(layout, as_text=True),
        )
    except pa.ArrowInvalid as error:
        if "Empty CSV file" in str(error):
            return _empty_file_error(path, layout)
        raise
    rows_before = 0
    with reader:
        for batch in reader:
            first_bad: tuple[int, _Column] | None = None
            for column in checked:
                bad = np.flatnonzero(column.invalid(batch.column(column.name)))
                if len(bad) and (first_bad is None or bad[0] < first_bad[0]):
                    first_bad = (int(bad[0]), column)
            bad_line = None if first_bad is None else header_lines + rows_before + first_bad[0] + 1
            if first_invalid_row and first_invalid_row[0].number is not None:
                # rows after a skipped row are shifted; only a bad value before it is reported
                invalid = first_invalid_row[0]
                if bad_line is None or bad_line >= invalid.number:
                    return _field_count_error(path, layout, invalid)
            if first_bad is not None:
                index, column = first_bad
                row = {name: batch.column(name)[index].as_py() for name in layout.used_names}
                return _bad_value_error(path, layout, column, bad_line, row)
            rows_before += batch.num_rows
    return None


def _typed_batches(path: PathLike, layout: _Layout) -> Iterator[pa.RecordBatch]:
    """Stream a file in record batches with explicit column types, in file order.

    Any problem of the file becomes a :class:`DataFormatError` naming its first bad line.
    """

    def failure(error: pa.ArrowInvalid) -> DataFormatError:
        if "Empty CSV file" in str(error):
            return _empty_file_error(path, layout)
        found = _diagnose(path, path, layout)
        return found or DataFormatError(f"{os.fspath(path)}: {error}", path=path)

    try:
        reader = pacsv.open_csv(
            _open_stream(path),
            read_options=_read_options(layout),
            parse_options=_parse_options(),
            convert_options=_convert_options(layout),
        )
    except pa.ArrowInvalid as error:
        raise failure(error) from None
    with reader:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as error:
                raise failure(error) from None
            yield batch


def _read_table(path: PathLike, source: PathLike | bytes, layout: _Layout) -> pa.Table:
    """Parse a whole file with explicit column types; any problem becomes a DataFormatError."""
    if layout.header:
        _check_header(path, source, layout)
    try:
        table = pacsv.read_csv(
            _open_stream(source),
            read_options=_read_options(layout),
            parse_options=_parse_options(),
            convert_options=_convert_options(layout),
        )
    except pa.ArrowInvalid as error:
        if "Empty CSV file" in str(error):
            raise _empty_file_error(path, layout) from None
        found = _diagnose(path, source, layout)
        if found is not None:
            raise found from None
        raise DataFormatError(
            f"{os.fspath(path)}: cannot be read as a {layout.title} file: {error}", path=path
        ) from None
    if table.num_rows == 0:
        raise DataFormatError(
            f"{os.fspath(path)}: the file has a header but no data lines; expected "
            f"{layout.title} events below line 1",
            path=path,
            line=2,
        )
    return table


def _label_codes(
    path: PathLike,
    source: PathLike | bytes,
    layout: _Layout,
    column: pa.ChunkedArray,
    mapping: Mapping[str, int],
) -> np.ndarray:
    """Map a dictionary-encoded label column to int8 codes through ``mapping``.

    Labels outside ``mapping`` raise a :class:`DataFormatError` naming their first line.
    """
    codes = np.empty(len(column), dtype=np.int8)
    position = 0
    for chunk in column.chunks:
        lookup = np.array([mapping.get(v, -128) for v in chunk.dictionary.to_pylist()], np.int8)
        indices = chunk.indices.to_numpy(zero_copy_only=False)
        codes[position : position + len(chunk)] = lookup[indices] if len(lookup) else -128
        position += len(chunk)
    if (codes == -128).any():
        found = _diagnose(path, source, layout)
        raise found if found is not None else DataFormatError(
            f"{os.fspath(path)}: unknown labels", path=path
        )
    return codes


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


def _taobao_frame(path: PathLike, source: PathLike | bytes, table: pa.Table) -> pd.DataFrame:
    codes = _label_codes(path, source, TAOBAO_LAYOUT, table.column("behavior_type"), _CANONICAL_CODE)
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
        The CSV file; ``.gz`` and ``.bz2`` files are decompressed on the fly.
    nrows
        Read only the first ``nrows`` lines. Only that part of the file is read and parsed.

    Returns
    -------
    pandas.DataFrame
        The canonical event table (see :mod:`interest_lib.data.schema`), shape ``(n_rows, 5)``,
        without ``platform``.

    Raises
    ------
    DataFileNotFoundError
        There is no file at ``path``.
    DataFormatError
        The file is empty or a line does not have the documented layout (a header line, a
        missing or extra field, a non-integer id or timestamp, a behavior other than
        ``pv``, ``cart``, ``fav``, ``buy``). The message names the file, the column and the line.
    """
    _require_file(path, TAOBAO_LAYOUT)
    if nrows is not None and nrows < 1:
        raise ValueError(f"nrows must be a positive number of lines, got {nrows}")
    source: PathLike | bytes = path if nrows is None else _head_bytes(path, nrows)
    table = _read_table(path, source, TAOBAO_LAYOUT)
    return _taobao_frame(path, source, table)


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
    """
    _require_file(path, TAOBAO_LAYOUT)
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in _typed_batches(path, TAOBAO_LAYOUT):
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= chunk_rows:
            yield _taobao_frame(path, path, pa.Table.from_batches(pending))
            pending, pending_rows = [], 0
    if pending_rows:
        yield _taobao_frame(path, path, pa.Table.from_batches(pending))


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
    _require_file(path, layout)
    _check_header(path, path, layout)
    parts: list[pd.DataFrame] = []
    rows_before = 0
    for batch in _typed_batches(path, layout):
        keep = pc.equal(batch.column("property"), "categoryid")
        values = pc.filter(batch.column("value"), keep)
        bad = np.flatnonzero(layout.column("itemid").invalid(values))
        if len(bad):
            row = int(np.flatnonzero(keep.to_numpy(zero_copy_only=False))[bad[0]])
            line = 1 + rows_before + row + 1
            raise DataFormatError(
                f"{os.fspath(path)}, line {line}, column 'value': found "
                f"{values[int(bad[0])].as_py()!r}, expected an integer category id "
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


def load_retailrocket(
    events_path: PathLike, item_properties_paths: PathLike | list[PathLike] | tuple[PathLike, ...]
) -> pd.DataFrame:
    """Load the RetailRocket data set onto the canonical event table.

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
    dropped and counted in ``attrs["dropped_no_category"]``.

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
        ``dropped_no_category`` and ``rows_in_file``.

    Raises
    ------
    DataFileNotFoundError, DataFormatError
        As :func:`load_taobao`, for any of the files.
    """
    layout = RETAILROCKET_EVENTS_LAYOUT
    _require_file(events_path, layout)
    if isinstance(item_properties_paths, str | os.PathLike):
        item_properties_paths = [item_properties_paths]
    table = _read_table(events_path, events_path, layout)
    mapping = {k: _CANONICAL_CODE[v] for k, v in RETAILROCKET_EVENT_LABELS.items()}
    events = pd.DataFrame(
        {
            "user_id": _int_column(table, "visitorid"),
            "item_id": _int_column(table, "itemid"),
            "code": _label_codes(events_path, events_path, layout, table.column("event"), mapping),
            "timestamp_ms": _int_column(table, "timestamp"),
        }
    )
    del table
    rows_in_file = len(events)
    categories = pd.concat(
        [_retailrocket_categories(p) for p in item_properties_paths], ignore_index=True
    ).sort_values("timestamp_ms", kind="stable", ignore_index=True)

    events["row"] = np.arange(len(events))
    events = events.sort_values("timestamp_ms", kind="stable", ignore_index=True)
    merged = pd.merge_asof(
        events, categories, on="timestamp_ms", by="item_id", direction="backward"
    )
    missing = merged["category_id"].isna().to_numpy()
    first_known = categories.drop_duplicates("item_id", keep="first").set_index("item_id")
    filled = merged.loc[missing, "item_id"].map(first_known["category_id"])
    merged.loc[missing, "category_id"] = filled
    from_first_snapshot = int(filled.notna().sum())
    no_category = merged["category_id"].isna().to_numpy()
    merged = merged.loc[~no_category].sort_values(["user_id", "timestamp_ms", "row"])

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
    ``attrs["dropped_remove_from_cart"]``. ``product_id`` becomes ``item_id``.

    Parameters
    ----------
    path
        The monthly CSV file, e.g. ``2019-Oct.csv`` (``.gz`` is decompressed on the fly).
    nrows
        Read only the first ``nrows`` data lines.

    Returns
    -------
    pandas.DataFrame
        The canonical event table, shape ``(n_rows, 5)``, sorted by ``user_id`` then
        ``timestamp`` (file order among ties). ``attrs`` holds ``dropped_remove_from_cart`` and
        ``rows_in_file``.

    Raises
    ------
    DataFileNotFoundError, DataFormatError
        As :func:`load_taobao`.
    """
    layout = REES46_LAYOUT
    _require_file(path, layout)
    if nrows is not None and nrows < 1:
        raise ValueError(f"nrows must be a positive number of lines, got {nrows}")
    source: PathLike | bytes = path if nrows is None else _head_bytes(path, nrows + 1)
    table = _read_table(path, source, layout)
    mapping = {
        k: (_CANONICAL_CODE[v] if v is not None else -1) for k, v in REES46_EVENT_LABELS.items()
    }
    codes = _label_codes(path, source, layout, table.column("event_type"), mapping)
    keep = codes >= 0
    timestamp = pc.cast(table.column("event_time"), pa.int64()).to_numpy()
    frame = _canonical_frame(
        _int_column(table, "user_id")[keep],
        _int_column(table, "product_id")[keep],
        _int_column(table, "category_id")[keep],
        codes[keep],
        timestamp[keep],
    )
    order = np.lexsort((frame["timestamp"].to_numpy(), frame["user_id"].to_numpy()))
    out = frame.take(order).reset_index(drop=True)
    out.attrs.update(rows_in_file=len(codes), dropped_remove_from_cart=int((~keep).sum()))
    return out
