"""Parsing the CSV files of the loaders: typed reads, the first bad line, plausible times.

The counterpart of :mod:`interest_lib.data.csv_files`, which opens and checks a file before it
is parsed; this module parses it with pyarrow and, when that fails, reads it again to describe
its first bad line. See :mod:`interest_lib.data.csv_files` for what loads and what raises.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from interest_lib.data.csv_files import (
    PLAUSIBLE_SECONDS,
    Column,
    DataFormatError,
    Layout,
    PathLike,
    Source,
    check_fields,
    empty_file_error,
    non_utf8_error,
    not_utf8,
    utc_seconds,
)

_UNITS: dict[str, float] = {"seconds": 1.0, "milliseconds": 1e3, "microseconds": 1e6,
                            "nanoseconds": 1e9}  # fmt: skip

# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_BLOCK_SIZE = 16 << 20  # bytes per parsing block: large blocks keep the thread pool busy


def _read_options(layout: Layout, *, use_threads: bool = True) -> pacsv.ReadOptions:
    return pacsv.ReadOptions(
        column_names=layout.names,
        skip_rows=layout.header_lines,
        use_threads=use_threads,
        block_size=_BLOCK_SIZE,
    )


def _convert_options(layout: Layout, *, as_bytes: bool = False) -> pacsv.ConvertOptions:
    names = layout.used_names
    types = {c.name: (pa.binary() if as_bytes else c.arrow_type) for c in layout.columns}
    return pacsv.ConvertOptions(
        column_types={n: types[n] for n in names},
        include_columns=names,
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


def _parse_options(invalid_row_handler=None) -> pacsv.ParseOptions:
    # Empty lines are rows too, so that row i is always line i (+1 for a header).
    return pacsv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=invalid_row_handler)


def read_table(source: Source, layout: Layout) -> pa.Table:
    """Parse a whole file with explicit column types and check every used column.

    Any problem becomes a :class:`DataFormatError` naming the first bad line.
    """
    failure = None
    with source.open() as stream:
        try:
            table = pacsv.read_csv(
                stream,
                read_options=_read_options(layout),
                parse_options=_parse_options(),
                convert_options=_convert_options(layout),
            )
        except pa.ArrowInvalid as error:
            failure = error
    if failure is not None:
        raise diagnose(source, layout, failure) from None
    if table.num_rows == 0:
        raise DataFormatError(
            f"{os.fspath(source.path)}: the file has a header but no data lines; expected "
            f"{layout.title} events below line 1",
            path=source.path,
            line=2,
        )
    check_values(source, layout, table)
    return table


def typed_batches(source: Source, layout: Layout) -> Iterator[pa.RecordBatch]:
    """Stream a file in checked record batches with explicit column types, in file order.

    The reader reads ahead on pyarrow's thread pool only while batches are wanted; it is closed
    before any error is raised. Any problem becomes a :class:`DataFormatError`.
    """
    try:
        reader = pacsv.open_csv(
            source.open(),
            read_options=_read_options(layout, use_threads=False),
            parse_options=_parse_options(),
            convert_options=_convert_options(layout),
        )
    except pa.ArrowInvalid as error:
        raise diagnose(source, layout, error) from None
    failure: pa.ArrowInvalid | None = None
    with reader:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as error:
                failure = error
                break
            check_values(source, layout, pa.Table.from_batches([batch]))
            yield batch
    raise diagnose(source, layout, failure) from None


def check_values(source: Source, layout: Layout, table: pa.Table) -> None:
    """What the typed parse does not check: negative ids and impossible dates."""
    for column in layout.columns:
        if column.name not in table.column_names:
            continue
        values = table.column(column.name)
        if column.kind == "id" and len(values):
            bad = pc.less(pc.min(values), 0).as_py()
        elif column.kind == "utc_time":
            bad = utc_seconds(values).null_count > 0
        else:
            bad = False
        if bad:
            raise diagnose(source, layout, None)


def label_codes(
    source: Source, layout: Layout, column: pa.ChunkedArray, mapping: Mapping[str, int]
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
        raise diagnose(source, layout, None)
    return codes


# --------------------------------------------------------------------------------------------
# Finding the first bad line
# --------------------------------------------------------------------------------------------


def diagnose(source: Source, layout: Layout, error: Exception | None) -> DataFormatError:
    """Read a file again, single-threaded and in order, and describe its first bad line.

    The file is first read by pyarrow with every used column as raw bytes (fast); if pyarrow
    cannot even split it into fields, line by line in Python. Always returns an error.
    """
    path = source.path
    if error is not None and "Empty CSV file" in str(error):
        return empty_file_error(path, layout)
    ignored: list[object] = []
    hook, sys.unraisablehook = sys.unraisablehook, ignored.append  # a line pyarrow cannot decode
    try:
        found = _diagnose_arrow(source, layout)
    except pa.ArrowException:
        found = None
    finally:
        sys.unraisablehook = hook
    if found is None:
        found = _diagnose_lines(source, layout)
    if found is None:
        found = DataFormatError(
            f"{os.fspath(path)}: cannot be read as a {layout.title} file: {error}", path=path
        )
    return found


def _first_bad_value(column: Column, values: pa.Array) -> tuple[int, bool] | None:
    """Index of the first value a column rejects in a binary array, and whether it is not UTF-8."""
    strings = values.view(pa.string())
    limit = len(values)
    try:
        strings.validate(full=True)
    except pa.ArrowInvalid:
        limit = next(i for i, v in enumerate(values.to_pylist()) if not_utf8(v))
    bad = np.flatnonzero(column.invalid(strings[:limit])) if limit else np.empty(0, np.int64)
    if len(bad):
        return int(bad[0]), False
    return (limit, True) if limit < len(values) else None


def _diagnose_arrow(source: Source, layout: Layout) -> DataFormatError | None:
    first_invalid: list[tuple[int | None, int, str]] = []

    def on_invalid_row(row) -> str:
        if not first_invalid:
            first_invalid.append((row.number, row.actual_columns, row.text))
        return "skip"

    checked = [layout.column(n) for n in layout.used_names]
    reader = pacsv.open_csv(
        source.open(),
        read_options=_read_options(layout, use_threads=False),
        parse_options=_parse_options(on_invalid_row),
        convert_options=_convert_options(layout, as_bytes=True),
    )
    rows_before = 0
    with reader:
        for batch in reader:
            first_bad: tuple[int, Column, bool] | None = None
            for column in checked:
                found = _first_bad_value(column, batch.column(column.name))
                if found is not None and (first_bad is None or found[0] < first_bad[0]):
                    first_bad = (found[0], column, found[1])
            bad_line = None
            if first_bad is not None:
                bad_line = layout.header_lines + rows_before + first_bad[0] + 1
            if first_invalid:
                # rows after a skipped row are shifted; only a bad value before it is reported
                number, _, text = first_invalid[0]
                if number is None:
                    return None
                if bad_line is None or bad_line >= number:
                    check_fields(source.path, layout, number, text)
            if first_bad is not None:
                index, column, not_utf8 = first_bad
                row = {n: batch.column(n)[index].as_py() for n in layout.used_names}
                if not_utf8:
                    raw = b",".join(row.get(n, b"") for n in layout.names)
                    return non_utf8_error(source.path, layout, bad_line, raw)
                text_row = {n: v.decode("utf-8", errors="replace") for n, v in row.items()}
                return _bad_value_error(source.path, layout, column, bad_line, text_row)
            rows_before += batch.num_rows
    return None


def _lines(source: Source) -> Iterator[bytes]:
    """The lines of a (decompressed) file as bytes, without their line ends."""
    rest = b""
    with source.open() as stream:
        while block := stream.read(1 << 20):
            pieces = (rest + block).split(b"\n")
            rest = pieces.pop()
            for piece in pieces:
                yield piece.rstrip(b"\r")
    if rest:
        yield rest.rstrip(b"\r")


def _diagnose_lines(source: Source, layout: Layout) -> DataFormatError | None:
    """The slow path: every line checked in Python, for files pyarrow cannot split."""
    checked = [layout.column(n) for n in layout.used_names]
    for number, raw in enumerate(_lines(source), start=1):
        if number <= layout.header_lines:
            continue
        if not_utf8(raw):
            return non_utf8_error(source.path, layout, number, raw)
        line = raw.decode("utf-8").lstrip("\ufeff")
        try:
            check_fields(source.path, layout, number, line)
        except DataFormatError as error:
            return error
        fields = next(csv.reader([line]))
        if len(fields) != len(layout.names):
            continue  # quotes the parser reads across lines: no verdict on this line alone
        row = dict(zip(layout.names, fields, strict=True))
        for column in checked:
            if column.invalid(pa.array([row[column.name]], pa.string()))[0]:
                return _bad_value_error(source.path, layout, column, number, row)
    return None


def _bad_value_error(
    path: PathLike, layout: Layout, column: Column, line: int, row: Mapping[str, str]
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


# --------------------------------------------------------------------------------------------
# Are the times plausible?
# --------------------------------------------------------------------------------------------


def _day(seconds: float) -> str:
    return np.datetime64(int(seconds), "s").astype("datetime64[D]").astype(str)


def check_times(
    path: PathLike, layout: Layout, values: np.ndarray, *, rows_before: int = 0, at_end: bool = True
) -> None:
    """Check the time column of a file, as written in it (rows in file order).

    ``values`` are the times of the data lines after the first ``rows_before``; ``at_end`` says
    whether they reach the end of the file.

    Raises :class:`DataFormatError` when most times only make sense in another unit than the
    format's (the message names both units), or when the last line's time is implausible while
    most are not (a file cut inside its last line). Warns when most times are implausible in
    every unit, or fall outside the data set's documented period.
    """
    if len(values) == 0:
        return
    factor = _UNITS[layout.time_unit]
    low, high = PLAUSIBLE_SECONDS
    span = f"{_day(low)} .. {_day(high)}"
    outside = (values < low * factor) | (values >= high * factor)
    column = layout.time_column
    first = int(np.argmax(outside))
    line = layout.header_lines + rows_before + first + 1
    if outside.mean() > 0.5:
        fits = [u for u, f in _UNITS.items()
                if u != layout.time_unit and np.mean((values >= low * f) & (values < high * f)) > 0.5]  # fmt: skip
        if fits:
            raise DataFormatError(
                f"{os.fspath(path)}, line {line}, column {column!r}: {outside.mean():.0%} of the "
                f"times fall outside {span} when read as Unix {layout.time_unit}, but inside "
                f"it when read as {fits[0]}: the file holds {fits[0]}; expected Unix "
                f"{layout.time_unit} ({layout.title})",
                path=path,
                column=column,
                line=line,
            )
        warnings.warn(
            f"{os.fspath(path)}: {outside.mean():.0%} of the times (column {column!r}, Unix "
            f"{layout.time_unit}) fall outside {span} in every unit; check the file",
            UserWarning,
            stacklevel=3,
        )
        return
    if outside[-1] and at_end:
        last = layout.header_lines + rows_before + len(values)
        raise DataFormatError(
            f"{os.fspath(path)}, line {last}, column {column!r}: found {int(values[-1])}, not a "
            f"time in {span} as Unix {layout.time_unit} while the lines before are: the last "
            "line looks cut off; remove it or fetch the file again",
            path=path,
            column=column,
            line=last,
        )
    if layout.period is not None:
        start, end = layout.period
        away = np.mean((values < start * factor) | (values >= end * factor))
        if away > 0.5:
            warnings.warn(
                f"{os.fspath(path)}: {away:.0%} of the times fall outside the documented period "
                f"of the {layout.title} data set ({layout.period_text}); cleaning with that "
                "window would drop them (pass window=None to keep them)",
                UserWarning,
                stacklevel=3,
            )
