"""Property: a corrupted file either loads into a table that passes the schema check, or raises
DataFormatError naming the file. Nothing else escapes a loader (no pyarrow error, no crash)."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interest_lib.data.loaders import DataFormatError, load_rees46, load_taobao
from interest_lib.data.schema import EVENT_COLUMNS, TAOBAO_START, as_canonical

TAOBAO = "".join(
    f"{u},{1000 + 7 * u},{u % 5},{('pv', 'cart', 'fav', 'buy')[u % 4]},{TAOBAO_START + 977 * u}\n"
    for u in range(1, 25)
).encode()
REES46 = (
    b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
    + b"".join(
        b"2019-10-%02d %02d:%02d:00 UTC,%s,%d,%d,a.b,brand,1.5,%d,s-%d\n"
        % (1 + u % 28, u % 24, u % 60, (b"view", b"cart", b"remove_from_cart", b"purchase")[u % 4],
           100 + u, 7 + u % 3, 50 + u % 6, u)  # fmt: skip
        for u in range(1, 25)
    )
)

PIECES = [b",", b"\n", b"\r\n", b"-", b"\xe9", b"\x00", b'"', b" ", b"9", b"pv", b"x", b";",
          b"\xef\xbb\xbf", b"\xff\xfe", b"\x1f\x8b", b"PK\x03\x04", b"99999999999999999999",
          b"2019-02-30", b"UTC", b"view"]  # fmt: skip

edit = st.one_of(
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(PIECES) | st.binary(min_size=1, max_size=6)),
    st.tuples(st.just("replace"), st.floats(0, 1), st.sampled_from(PIECES) | st.binary(min_size=1, max_size=3)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("repeat"), st.floats(0, 1), st.integers(1, 30)),
)


def corrupt(data: bytes, edits: list[tuple]) -> bytes:
    for kind, where, what in edits:
        at = int(where * len(data))
        if kind == "delete":
            data = data[:at] + data[at + what :]
        elif kind == "insert":
            data = data[:at] + what + data[at:]
        elif kind == "replace":
            data = data[:at] + what + data[at + len(what) :]
        elif kind == "truncate":
            data = data[:at]
        else:  # repeat a stretch of the file
            data = data[:at] + data[at : at + what] + data[at:]
    return data


def check_contract(load, name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                events = load(path)
        except DataFormatError as error:
            assert error.path == path and path.name in str(error)
            return
    assert list(events.columns) == list(EVENT_COLUMNS)
    pd.testing.assert_frame_equal(events, as_canonical(events))
    for column in ("user_id", "item_id", "category_id"):
        assert (events[column].to_numpy() >= 0).all()
    assert np.isfinite(events["timestamp"].to_numpy()).all()
    dropped = sum(events.attrs["loader_dropped"].values())
    assert events.attrs["rows_in_file"] == len(events) + dropped


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(edit, min_size=1, max_size=3))
def test_corrupted_taobao_file_loads_or_raises(edits):
    check_contract(load_taobao, "UserBehavior.csv", corrupt(TAOBAO, edits))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(edit, min_size=1, max_size=3))
def test_corrupted_rees46_file_loads_or_raises(edits):
    check_contract(load_rees46, "2019-Oct.csv", corrupt(REES46, edits))


def test_the_uncorrupted_files_load():
    check_contract(load_taobao, "UserBehavior.csv", TAOBAO)
    check_contract(load_rees46, "2019-Oct.csv", REES46)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "2019-Oct.csv"
        path.write_bytes(REES46)
        assert len(load_rees46(path)) == 18  # 6 of the 24 rows are remove_from_cart
