"""Bad files: each loader loads correctly or raises DataFormatError naming file, column and line.

Every test writes its file itself. What loads: UTF-8 with or without a byte-order mark, CRLF line
ends, gzip and bz2 recognised by content. What raises: other encodings, archives, other
delimiters, wrong field counts, negative ids, impossible dates, times in the wrong unit, a last
line cut inside its time.
"""

from __future__ import annotations

import bz2
import gzip
import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interest_lib.data.loaders import (
    DataFormatError,
    iter_taobao,
    load_rees46,
    load_retailrocket,
    load_taobao,
)
from interest_lib.data.schema import TAOBAO_START, as_canonical

GOOD_ROWS = [(u, 100 + u, 7 + u % 3, "pv" if u % 4 else "buy", TAOBAO_START + 3600 * u)
             for u in range(1, 31)]  # fmt: skip
GOOD = "".join(f"{u},{i},{c},{b},{t}\n" for u, i, c, b, t in GOOD_ROWS).encode()
REES46_HEADER = (
    b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
)
REES46_GOOD = REES46_HEADER + (
    b"2019-10-01 00:00:00 UTC,view,1,7,,b,1.0,5,s\n"
    b"2019-10-01 00:00:05 UTC,remove_from_cart,1,7,,b,1.0,5,s\n"
    b"2019-10-02 10:00:00 UTC,purchase,1,7,,b,1.0,5,s\n"
)
RR_HEADER = b"timestamp,visitorid,event,itemid,transactionid\n"
T0_MS = 1_431_000_000_000  # 2015-05-07 in milliseconds


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def expect_error(load, path: Path, column: str | None, line: int | None, *words: str):
    with pytest.raises(DataFormatError) as caught:
        load(path)
    error = caught.value
    message = str(error)
    assert path.name in message and error.path == path
    assert error.column == column and error.line == line, message
    if column is not None:
        assert repr(column) in message
    if line is not None:
        assert f"line {line}" in message
    for word in words:
        assert word in message, message
    return error


def properties(tmp_path: Path) -> Path:
    return write(tmp_path, "item_properties_part1.csv",
                 b"timestamp,itemid,property,value\n%d,100,categoryid,42\n" % T0_MS)  # fmt: skip


# ---- what loads ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        pytest.param("UserBehavior.csv", b"\xef\xbb\xbf" + GOOD, id="utf8-bom"),
        pytest.param("UserBehavior.csv", GOOD.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param("UserBehavior.csv", GOOD.rstrip(b"\n"), id="no-final-newline"),
        pytest.param("UserBehavior.csv", gzip.compress(GOOD), id="gzip-named-csv"),
        pytest.param("UserBehavior.csv.gz", gzip.compress(GOOD), id="gzip"),
        pytest.param("UserBehavior.csv", bz2.compress(GOOD), id="bz2-named-csv"),
        pytest.param("UserBehavior.csv.bz2", bz2.compress(GOOD), id="bz2"),
        pytest.param("UserBehavior.csv.gz", GOOD, id="plain-named-gz"),
    ],
)
def test_good_taobao_files_load(tmp_path, name, data):
    events = load_taobao(write(tmp_path, name, data))
    expected = pd.DataFrame(GOOD_ROWS, columns=list(events.columns))
    pd.testing.assert_frame_equal(events, as_canonical(expected))
    assert events.attrs["rows_in_file"] == len(GOOD_ROWS) and events.attrs["loader_dropped"] == {}


def test_gzip_rees46_by_content_with_nrows(tmp_path):
    path = write(tmp_path, "2019-Oct.csv", gzip.compress(REES46_GOOD))
    assert len(load_rees46(path)) == 2
    assert len(load_rees46(path, nrows=1)) == 1


# ---- 1. non-UTF-8 bytes, archives ----------------------------------------------------------


def test_non_utf8_label_is_named(tmp_path):
    path = write(tmp_path, "UserBehavior.csv", GOOD.replace(b",pv,", b",p\xe9v,", 1))
    expect_error(load_taobao, path, "behavior_type", 1, "not UTF-8")


def test_non_utf8_bytes_far_into_the_file(tmp_path):
    # beyond the first 64 KiB that are checked before parsing: found by the parse and diagnosis
    body = GOOD * 120
    lines = body.count(b"\n")
    path = write(tmp_path, "UserBehavior.csv", body + b"1,2,3,p\xe9v,1511544070\n" + GOOD)
    expect_error(load_taobao, path, "behavior_type", lines + 1, "not UTF-8")
    path = write(tmp_path, "ids.csv", body + b"1,2\xe9,3,pv,1511544070\n")
    expect_error(load_taobao, path, "item_id", lines + 1, "not UTF-8")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_files(tmp_path, encoding):
    path = write(tmp_path, "UserBehavior.csv", GOOD.decode().encode(encoding))
    expect_error(load_taobao, path, None, 1, encoding.upper(), "UTF-8")


def test_utf16_without_bom(tmp_path):
    path = write(tmp_path, "UserBehavior.csv", GOOD.decode().encode("utf-16-le"))
    expect_error(load_taobao, path, None, 1, "NUL")


def test_latin1_rees46_file(tmp_path):
    data = REES46_GOOD.replace(b"purchase", "purchasé".encode("latin-1"))
    path = write(tmp_path, "2019-Oct.csv", data)
    expect_error(load_rees46, path, "event_type", 4, "not UTF-8")


def test_latin1_in_an_unused_column_loads(tmp_path):
    path = write(tmp_path, "2019-Oct.csv", REES46_GOOD.replace(b",b,", b",caf\xe9,"))
    assert len(load_rees46(path)) == 2


def test_zip_archive(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("UserBehavior.csv", GOOD)
    path = write(tmp_path, "UserBehavior.zip", buffer.getvalue())
    expect_error(load_taobao, path, None, None, "ZIP archive", "unpack")


def test_broken_gzip(tmp_path):
    path = write(tmp_path, "UserBehavior.csv", gzip.compress(GOOD)[:40])
    expect_error(load_taobao, path, None, None, "gzip")


# ---- 9. errors on every line: delimiter, field count, another format -----------------------


@pytest.mark.parametrize("delimiter", [b";", b"\t", b"|"])
def test_other_delimiter(tmp_path, delimiter):
    path = write(tmp_path, "UserBehavior.csv", GOOD.replace(b",", delimiter))
    error = expect_error(load_taobao, path, "user_id", 1, repr(delimiter.decode()), "Taobao")
    assert "the line reads" in str(error)


def test_extra_column_on_every_line(tmp_path):
    path = write(tmp_path, "UserBehavior.csv", GOOD.replace(b"\n", b",x\n"))
    expect_error(load_taobao, path, "timestamp", 1, "6 fields", "expected 5", "the line reads")


def test_rees46_file_given_to_load_taobao(tmp_path):
    path = write(tmp_path, "2019-Oct.csv", REES46_GOOD)
    expect_error(load_taobao, path, "timestamp", 1, "REES46", "load_rees46")


def test_taobao_file_given_to_load_rees46(tmp_path):
    path = write(tmp_path, "UserBehavior.csv", GOOD)
    expect_error(load_rees46, path, "event_time", 1, "header", "REES46")


def test_semicolon_header(tmp_path):
    path = write(tmp_path, "2019-Oct.csv", REES46_GOOD.replace(b",", b";"))
    expect_error(load_rees46, path, "event_time", 1, "';'")


def test_bad_field_count_far_into_the_file(tmp_path):
    body = GOOD * 120
    path = write(tmp_path, "UserBehavior.csv", body + b"1,2,3,pv,1511544070,9\n")
    expect_error(load_taobao, path, "timestamp", body.count(b"\n") + 1, "6 fields")


# ---- 4. timestamps in the wrong unit; 8. a cut last line -----------------------------------


def test_taobao_in_milliseconds(tmp_path):
    rows = [(u, i, c, b, t * 1000) for u, i, c, b, t in GOOD_ROWS]
    data = "".join(f"{u},{i},{c},{b},{t}\n" for u, i, c, b, t in rows).encode()
    path = write(tmp_path, "UserBehavior.csv", data)
    expect_error(load_taobao, path, "timestamp", 1, "milliseconds", "expected Unix seconds")


def test_retailrocket_in_seconds(tmp_path):
    data = RR_HEADER + b"".join(b"%d,1,view,100,\n" % (T0_MS // 1000 + 60 * k) for k in range(5))
    path = write(tmp_path, "events.csv", data)
    error = expect_error(lambda p: load_retailrocket(p, [properties(tmp_path)]), path,
                         "timestamp", 2, "holds seconds", "expected Unix milliseconds")  # fmt: skip
    assert "1970" not in str(error)


def test_cut_last_line(tmp_path):
    path = write(tmp_path, "UserBehavior.csv", GOOD + b"1,2,3,pv,151166")
    expect_error(load_taobao, path, "timestamp", len(GOOD_ROWS) + 1, "cut off")
    with pytest.raises(DataFormatError, match="cut off"):
        list(iter_taobao(path, chunk_rows=7))


def test_implausible_times_in_every_unit_warn(tmp_path):
    data = b"".join(b"%d,2,3,pv,%d\n" % (u, 1000 + u) for u in range(1, 20))
    path = write(tmp_path, "UserBehavior.csv", data)
    with pytest.warns(UserWarning, match="in every unit"):
        assert len(load_taobao(path)) == 19


def test_taobao_of_other_dates_warns(tmp_path):
    data = GOOD.replace(b"15115", b"15700")  # about 2019-10
    path = write(tmp_path, "UserBehavior.csv", data)
    with pytest.warns(UserWarning, match="documented period"):
        assert len(load_taobao(path)) == len(GOOD_ROWS)


# ---- 7. impossible dates -------------------------------------------------------------------


@pytest.mark.parametrize("time", ["2019-02-30 00:00:00 UTC", "2019-10-01 23:59:60 UTC",
                                  "2019-13-01 00:00:00 UTC", "2019-10-01 24:00:00 UTC"])  # fmt: skip
def test_impossible_rees46_dates(tmp_path, time):
    data = REES46_GOOD.replace(b"2019-10-02 10:00:00 UTC", time.encode())
    path = write(tmp_path, "2019-Oct.csv", data)
    expect_error(load_rees46, path, "event_time", 4, repr(time))


def test_rees46_cut_inside_the_time(tmp_path):
    path = write(tmp_path, "2019-Oct.csv", REES46_GOOD + b"2019-10-03 1")
    expect_error(load_rees46, path, "event_type", 5, "no field for column 'event_type'")
    path = write(tmp_path, "2019-Nov.csv", REES46_GOOD + b"2019-10-03 1,view,1,7,,b,1.0,5,s")
    expect_error(load_rees46, path, "event_time", 5, "'2019-10-03 1'")


# ---- 10. negative ids, an empty properties list --------------------------------------------


@pytest.mark.parametrize(("column", "position"), [("user_id", 0), ("item_id", 1),
                                                  ("category_id", 2)])  # fmt: skip
def test_negative_ids(tmp_path, column, position):
    fields = ["1", "2", "3", "pv", str(TAOBAO_START)]
    fields[position] = "-" + fields[position]
    path = write(tmp_path, "UserBehavior.csv", GOOD + (",".join(fields) + "\n").encode())
    expect_error(load_taobao, path, column, len(GOOD_ROWS) + 1, "non-negative")


def test_negative_rees46_category(tmp_path):
    path = write(tmp_path, "2019-Oct.csv", REES46_GOOD.replace(b",1,7,", b",1,-7,", 1))
    expect_error(load_rees46, path, "category_id", 2, "non-negative")


def test_retailrocket_without_properties_files(tmp_path):
    path = write(tmp_path, "events.csv", RR_HEADER + b"%d,1,view,100,\n" % T0_MS)
    with pytest.raises(ValueError, match="item_properties_paths is empty"):
        load_retailrocket(path, [])


# ---- 6. rows a loader drops are counted ----------------------------------------------------


def test_loader_drops_are_counted(tmp_path):
    rees = load_rees46(write(tmp_path, "2019-Oct.csv", REES46_GOOD))
    assert rees.attrs["rows_in_file"] == len(rees) + sum(rees.attrs["loader_dropped"].values())
    assert rees.attrs["loader_dropped"] == {"remove_from_cart": 1}
    data = RR_HEADER + b"%d,1,view,100,\n%d,1,view,999,\n%d,2,view,999,\n" % (T0_MS, T0_MS, T0_MS)
    rr = load_retailrocket(write(tmp_path, "events.csv", data), [properties(tmp_path)])
    assert rr.attrs["loader_dropped"] == {"no_category": 2}
    assert rr.attrs["rows_in_file"] == 3 and len(rr) == 1


def test_no_unraisable_noise_on_bad_bytes(tmp_path, capfd):
    body = GOOD * 120
    path = write(tmp_path, "UserBehavior.csv", body + b"1,2\xe9,3,pv,1511544070,extra\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataFormatError):
            load_taobao(path)
    assert "Exception ignored" not in capfd.readouterr().err


def test_every_row_of_a_good_file_loads_once(tmp_path):
    rng = np.random.default_rng(0)
    lines = GOOD.splitlines(keepends=True)
    shuffled = b"".join(lines[i] for i in rng.permutation(len(lines)))
    events = load_taobao(write(tmp_path, "UserBehavior.csv", shuffled))
    assert sorted(events["user_id"]) == [u for u, *_ in GOOD_ROWS]
