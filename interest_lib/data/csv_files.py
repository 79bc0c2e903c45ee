"""Reading and checking the CSV files of the loaders in :mod:`interest_lib.data.loaders`.

This module holds what the three loaders share: the layout of each public file, the error the
loaders raise, and the checks made before a file is parsed (compression, encoding, header,
delimiter, number of fields); :mod:`interest_lib.data.csv_reading` parses it. Together they turn
any problem of a file into a :class:`DataFormatError` naming the file, the column and the first
bad line.

What loads and what raises:

* **Loads:** UTF-8 text with or without a byte-order mark, ``\\n`` or ``\\r\\n`` line ends, a last
  line with or without its line end, and gzip or bz2 compression. Compression is recognised by
  the file's first bytes, not by its name, so ``UserBehavior.csv.gz`` and a gzip file named
  ``UserBehavior.csv`` both load, and a plain file named ``.gz`` loads too.
* **Raises** :class:`DataFormatError`: a ZIP, xz, zstd or 7z archive (unpack it first); text in
  UTF-16, UTF-32, Latin-1 or any other encoding than UTF-8; fields separated by anything but a
  comma; a line with too few or too many fields; a value that is not what its column holds (a
  negative or non-integer id, an unknown label, an impossible date such as ``2019-02-30`` or
  ``23:59:60``); timestamps in another unit than the format's (milliseconds in a Taobao file,
  seconds in a RetailRocket file); a last line cut inside its timestamp.
* **Warns** (:class:`UserWarning`): most times fall outside any plausible period in every unit,
  or outside the documented period of the data set.

Files are parsed with the multi-threaded pyarrow CSV reader and explicit column types; only when
that fails is the file read a second time, single-threaded, to find the first bad line. Every
reader is closed before an error leaves this module, so no pyarrow task outlives the error (a
reader left running on pyarrow's thread pool can abort the interpreter at exit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PathLike = str | os.PathLike


class DataFormatError(ValueError):
    """A data file does not have the layout its loader expects.

    Attributes
    ----------
    path
        The file, as given to the loader.
    column
        The column at fault, or ``None`` when the problem is not one column's (an empty file, an
        archive, a file in another encoding).
    line
        1-based line number of the first bad line in the file (as a text editor counts lines,
        after decompression), or ``None``.
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

_UINT63_MAX_DIGITS = "9223372036854775807"
UTC_TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"

PLAUSIBLE_SECONDS: tuple[int, int] = (946_684_800, 2_524_608_000)
"""2000-01-01 .. 2050-01-01 (UTC) in Unix seconds: the times an e-commerce log can hold."""


@dataclass(frozen=True)
class Column:
    """One column of a file layout: how it is parsed and what a valid value looks like.

    ``kind`` is ``"id"`` (a non-negative 64-bit integer), ``"int"`` (a 64-bit integer),
    ``"label"`` (one of ``labels``), ``"utc_time"`` (``2019-10-01 00:00:00 UTC``, a real date
    and time) or ``"text"`` (anything; not validated).
    """

    name: str
    kind: str
    meaning: str = ""
    labels: tuple[str, ...] = ()

    @property
    def arrow_type(self) -> pa.DataType:
        if self.kind in ("id", "int"):
            return pa.int64()
        if self.kind == "label":
            return pa.dictionary(pa.int32(), pa.string())
        return pa.string()

    @property
    def expected(self) -> str:
        if self.kind == "id":
            what = "a non-negative integer"
        elif self.kind == "int":
            what = "an integer"
        elif self.kind == "label":
            what = "one of " + ", ".join(repr(v) for v in self.labels)
        elif self.kind == "utc_time":
            what = "a real date and time like '2019-10-01 00:00:00 UTC'"
        else:
            what = "text"
        return f"{what} ({self.meaning})" if self.meaning else what

    def invalid(self, values: pa.Array) -> np.ndarray:
        """Boolean mask of the entries of a (valid UTF-8) string array this column rejects."""
        if self.kind in ("id", "int"):
            sign = "" if self.kind == "id" else "-?"
            digits = pc.utf8_ltrim(values, characters="-")
            ok = pc.match_substring_regex(values, rf"^{sign}[0-9]{{1,19}}$")
            fits = pc.or_(
                pc.less(pc.utf8_length(digits), 19),
                pc.less_equal(digits, pa.scalar(_UINT63_MAX_DIGITS)),
            )
            ok = pc.and_(ok, fits)
        elif self.kind == "label":
            ok = pc.is_in(values, value_set=pa.array(self.labels, pa.string()))
        elif self.kind == "utc_time":
            ok = pc.is_valid(utc_seconds(values, strict=False))
        else:
            return np.zeros(len(values), dtype=bool)
        return ~np.asarray(ok.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


@dataclass(frozen=True)
class Layout:
    """The layout of one kind of CSV file.

    ``time_column`` holds times in ``time_unit`` (``"seconds"``, ``"milliseconds"`` or, for a
    ``utc_time`` column, text); ``period`` is the documented period of the data set in Unix
    seconds, if it has one, and ``period_text`` says it in words.
    """

    title: str
    columns: tuple[Column, ...]
    header: bool
    used: tuple[str, ...] = field(default=())
    time_column: str = ""
    time_unit: str = "seconds"
    period: tuple[int, int] | None = None
    period_text: str = ""
    loader: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def used_names(self) -> list[str]:
        return list(self.used) if self.used else self.names

    @property
    def header_lines(self) -> int:
        return 1 if self.header else 0

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def utc_seconds(values: pa.Array | pa.ChunkedArray, *, strict: bool = True) -> pa.Array:
    """Unix seconds of texts like ``2019-10-01 00:00:00 UTC``; impossible dates are null.

    ``pyarrow.compute.strptime`` rolls ``2019-02-30`` over to March 2 and ``23:59:60`` to the next
    day; a time is only kept when writing it back gives the same text. With ``strict=True`` the
    result is int64 seconds (nulls included); else a timestamp array.
    """
    parsed = pc.strptime(values, format=UTC_TIME_FORMAT, unit="s", error_is_null=True)
    same = pc.equal(pc.strftime(parsed, format=UTC_TIME_FORMAT), values)
    parsed = pc.if_else(same, parsed, pa.scalar(None, pa.timestamp("s")))
    return pc.cast(parsed, pa.int64()) if strict else parsed


# --------------------------------------------------------------------------------------------
# Opening a file: compression and encoding by content
# --------------------------------------------------------------------------------------------

_ARCHIVES = {
    b"PK\x03\x04": "a ZIP archive",
    b"PK\x05\x06": "an empty ZIP archive",
    b"\xfd7zXZ\x00": "an xz archive",
    b"\x28\xb5\x2f\xfd": "a zstd archive",
    b"7z\xbc\xaf\x27\x1c": "a 7z archive",
}
_TEXT_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


@dataclass(frozen=True)
class Source:
    """What a loader reads: the file as named (for messages), its compression found from its
    first bytes, or the head of the file as bytes (``nrows``)."""

    path: PathLike
    compression: str | None = None
    data: bytes | None = None

    def open(self) -> pa.NativeFile:
        if self.data is not None:
            return pa.BufferReader(self.data)
        return pa.input_stream(os.fspath(self.path), compression=self.compression)


def require_file(path: PathLike, layout: Layout) -> None:
    """Raise :class:`DataFileNotFoundError` unless ``path`` is a file."""
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise DataFileNotFoundError(
            f"{os.fspath(path)}: the file {what}; expected a {layout.title} CSV file",
            path=path,
        )


def empty_file_error(path: PathLike, layout: Layout) -> DataFormatError:
    """The error for a file without any data (or only white space)."""
    first = "a header line" if layout.header else "one event per line"
    return DataFormatError(
        f"{os.fspath(path)}: the file is empty; expected a {layout.title} CSV file with {first} "
        f"and the columns {','.join(layout.names)}",
        path=path,
        line=1,
    )


def open_source(path: PathLike, layout: Layout, nrows: int | None = None) -> Source:
    """Check that ``path`` is a readable text file of the layout and say how to read it.

    Compression (gzip, bz2) is taken from the first bytes; the first 64 KiB of text are checked
    for the encoding and the first data line for its delimiter and number of fields. With
    ``nrows``, the first ``nrows`` data lines are read into memory.
    """
    require_file(path, layout)
    with open(path, "rb") as handle:
        magic = handle.read(8)
    compression = None
    if magic.startswith(b"\x1f\x8b"):
        compression = "gzip"
    elif magic.startswith(b"BZh"):
        compression = "bz2"
    for prefix, what in _ARCHIVES.items():
        if magic.startswith(prefix):
            raise DataFormatError(
                f"{os.fspath(path)}: the file is {what}, not a CSV file; unpack it first "
                f"(gzip and bz2 files load as they are); expected a {layout.title} CSV file",
                path=path,
            )
    source = Source(path, compression)
    try:
        head = _read_head(source, 1 << 16)
    except (OSError, pa.ArrowException) as error:
        raise DataFormatError(
            f"{os.fspath(path)}: cannot be decompressed as {compression}: {error}", path=path
        ) from None
    _check_head(path, layout, head)
    if nrows is not None:
        source = Source(path, compression, head_bytes(source, nrows + layout.header_lines))
    return source


def _read_head(source: Source, n_bytes: int) -> bytes:
    with source.open() as stream:
        return stream.read(n_bytes)


def head_bytes(source: Source, n_lines: int) -> bytes:
    """The first ``n_lines`` lines of a file (fewer if the file is shorter), as raw bytes."""
    parts: list[bytes] = []
    found = 0
    with source.open() as stream:
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


def _check_head(path: PathLike, layout: Layout, head: bytes) -> None:
    """The encoding of the first bytes, the header and the fields of the first data line."""
    if not head.strip(b"\xef\xbb\xbf\r\n\t "):
        raise empty_file_error(path, layout)
    for bom, encoding in _TEXT_BOMS.items():
        if head.startswith(bom):
            raise DataFormatError(
                f"{os.fspath(path)}, line 1: the file is {encoding} text; expected UTF-8 "
                f"(save it again as UTF-8): a {layout.title} CSV file",
                path=path,
                line=1,
            )
    lines = head.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last piece may be a line cut by the 64 KiB limit
    for number, raw in enumerate(lines, start=1):
        if b"\x00" in raw:
            raise DataFormatError(
                f"{os.fspath(path)}, line {number}: the line holds NUL bytes (binary data or "
                f"UTF-16 text without a byte-order mark); expected a UTF-8 {layout.title} CSV file",
                path=path,
                line=number,
            )
        if not_utf8(raw):
            error = non_utf8_error(path, layout, number, raw)
            if error.column is None or error.column in layout.used_names:
                raise error  # an unused column (REES46 brand, say) is not validated
    text = [raw.rstrip(b"\r").decode("utf-8", errors="replace") for raw in lines]
    if layout.header:
        check_header(path, layout, text[0])
    data_line = layout.header_lines
    if len(text) > data_line and text[data_line].strip():
        check_fields(path, layout, data_line + 1, text[data_line])


def non_utf8_error(path: PathLike, layout: Layout, number: int, raw: bytes) -> DataFormatError:
    """The error for a line that is not valid UTF-8, naming the first such field."""
    fields = raw.rstrip(b"\r\n").split(b",")
    column = None
    for name, value in zip(layout.names, fields, strict=False):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            column = name
            break
    where = f", column {column!r}" if column else ""
    found = next((v for v in fields if not_utf8(v)), raw)
    return DataFormatError(
        f"{os.fspath(path)}, line {number}{where}: found the bytes {found!r}, which are not "
        f"UTF-8 text (a Latin-1 or other encoding?); expected a UTF-8 {layout.title} CSV file",
        path=path,
        column=column,
        line=number,
    )


def not_utf8(value: bytes) -> bool:
    """Whether ``value`` is not valid UTF-8."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def check_header(path: PathLike, layout: Layout, line: str) -> None:
    """Raise unless ``line`` is the header of ``layout``."""
    found = [name.strip().strip('"') for name in line.split(",")]
    if found == layout.names:
        return
    missing = [n for n in layout.names if n not in found]
    extra = [n for n in found if n not in layout.names]
    if len(found) == 1 and (delimiter := _other_delimiter(line, len(layout.names))):
        problems = [f"names separated by {delimiter!r}, not by commas"]
        column = layout.names[0]
    elif missing or extra:
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
        f"expected the {layout.title} header {','.join(layout.names)}{_looks_like(layout, found)}",
        path=path,
        column=column,
        line=1,
    )


def _other_delimiter(line: str, n_fields: int) -> str | None:
    for delimiter in (";", "\t", "|"):
        if line.count(delimiter) == n_fields - 1:
            return delimiter
    return None


def _looks_like(layout: Layout, fields: list[str]) -> str:
    """A hint naming the public format whose header or field count the line matches."""
    from interest_lib.data.loaders import LAYOUTS

    names = [n.strip().lower() for n in fields]
    for other in LAYOUTS:
        if other is layout:
            continue
        if names == other.names or (not layout.header and len(names) == len(other.names)):
            return f" (the line looks like a {other.title} file: read it with {other.loader})"
    return ""


def check_fields(path: PathLike, layout: Layout, number: int, line: str) -> None:
    """Raise unless the data line ``line`` has one comma-separated field per column."""
    fields = line.split(",")
    n = len(layout.names)
    if len(fields) == n or ('"' in line and len(fields) > n):
        return  # a quoted field may hold commas: the parser counts those fields
    delimiter = _other_delimiter(line, n) if len(fields) == 1 else None
    if delimiter:
        problem = f"fields separated by {delimiter!r}; expected {n} comma-separated fields"
        column = layout.names[0]
    elif len(fields) > n:
        column = layout.names[-1]
        problem = f"{len(fields)} fields (more after column {column!r}); expected {n}"
    else:
        column = layout.names[len(fields)]
        problem = f"{len(fields)} fields (no field for column {column!r}); expected {n}"
    raise DataFormatError(
        f"{os.fspath(path)}, line {number}, column {column!r}: found {problem} "
        f"({','.join(layout.names)}) of a {layout.title} file{_looks_like(layout, fields)}; "
        f"the line reads {line[:200]!r}",
        path=path,
        column=column,
        line=number,
    )

