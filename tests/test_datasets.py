"""Loaders: mapping onto the canonical table, round trips, and clear errors on bad files."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interest_lib.data.loaders import (
    DataFileNotFoundError,
    DataFormatError,
    iter_taobao,
    load_rees46,
    load_retailrocket,
    load_taobao,
    write_taobao,
)
from interest_lib.data.schema import (
    BEHAVIOR_DTYPE,
    EVENT_COLUMNS,
    PLATFORM_DTYPE,
    TAOBAO_END,
    TAOBAO_START,
    as_canonical,
)

TAOBAO_GOOD = "1,2268318,2520377,pv,1511544070\n1,2333346,2520771,cart,1511561733\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def assert_names(error: DataFormatError, path: Path, column: str | None, line: int) -> None:
    message = str(error)
    assert path.name in message
    if column is not None:
        assert repr(column) in message
        assert error.column == column
    assert f"line {line}" in message
    assert error.line == line


# ---- Taobao --------------------------------------------------------------------------------


def test_taobao_loads_canonical_frame(tmp_path):
    events = load_taobao(write(tmp_path / "UserBehavior.csv", TAOBAO_GOOD))
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events["behavior_type"].dtype == BEHAVIOR_DTYPE
    for column in ("user_id", "item_id", "category_id", "timestamp"):
        assert events[column].dtype == np.int64
    assert events["behavior_type"].tolist() == ["pv", "cart"]
    assert events["timestamp"].tolist() == [1511544070, 1511561733]


def test_taobao_nrows_reads_only_the_head(tmp_path):
    path = write(tmp_path / "UserBehavior.csv", TAOBAO_GOOD * 3 + "oops\n")
    assert len(load_taobao(path, nrows=4)) == 4
    assert len(load_taobao(path, nrows=6)) == 6
    with pytest.raises(DataFormatError) as caught:
        load_taobao(path, nrows=7)
    assert_names(caught.value, path, "item_id", 7)


def test_taobao_iter_gives_the_same_rows(tmp_path):
    path = write(tmp_path / "UserBehavior.csv", TAOBAO_GOOD * 50)
    pieces = list(iter_taobao(path, chunk_rows=30))
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), load_taobao(path))


def test_taobao_reads_gzip(tmp_path):
    path = tmp_path / "UserBehavior.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(TAOBAO_GOOD)
    assert len(load_taobao(path)) == 2


@pytest.mark.parametrize(
    ("text", "column", "line"),
    [
        pytest.param(
            "user_id,item_id,category_id,behavior_type,timestamp\n" + TAOBAO_GOOD,
            "user_id",
            1,
            id="header",
        ),
        pytest.param(TAOBAO_GOOD + "1,2,3,pv,1511544070,9\n", "timestamp", 3, id="extra-column"),
        pytest.param(TAOBAO_GOOD + "1,2,3,pv\n", "timestamp", 3, id="missing-column"),
        pytest.param(TAOBAO_GOOD + "1,x2,3,pv,1511544070\n", "item_id", 3, id="non-numeric-id"),
        pytest.param(TAOBAO_GOOD + "1,2,3.5,pv,1511544070\n", "category_id", 3, id="float-id"),
        pytest.param(TAOBAO_GOOD + "1,2,3,click,1511544070\n", "behavior_type", 3, id="label"),
        pytest.param(TAOBAO_GOOD + "1,2,3,PV,1511544070\n", "behavior_type", 3, id="label-case"),
        pytest.param(TAOBAO_GOOD + "1,2,3,pv,2017-11-25 10:00\n", "timestamp", 3, id="time"),
        pytest.param(TAOBAO_GOOD + "1,2,,pv,1511544070\n", "category_id", 3, id="empty-value"),
        pytest.param("1,2,3,pv,1511544070\n\n" + TAOBAO_GOOD, "user_id", 2, id="empty-line"),
        pytest.param(
            TAOBAO_GOOD + "1,99999999999999999999,3,pv,1511544070\n", "item_id", 3, id="overflow"
        ),
    ],
)
def test_taobao_bad_line_is_named(tmp_path, text, column, line):
    path = write(tmp_path / "UserBehavior.csv", text)
    with pytest.raises(DataFormatError) as caught:
        load_taobao(path)
    assert_names(caught.value, path, column, line)


def test_taobao_header_is_called_a_header(tmp_path):
    path = write(tmp_path / "UserBehavior.csv", "user_id,item_id,category_id,behavior_type,ts\n")
    with pytest.raises(DataFormatError, match="header"):
        load_taobao(path)


def test_taobao_bad_line_found_in_iter(tmp_path):
    path = write(tmp_path / "UserBehavior.csv", TAOBAO_GOOD * 5 + "1,2,3,pv\n")
    with pytest.raises(DataFormatError) as caught:
        list(iter_taobao(path, chunk_rows=2))
    assert_names(caught.value, path, "timestamp", 11)


def test_taobao_empty_file(tmp_path):
    path = write(tmp_path / "UserBehavior.csv", "")
    with pytest.raises(DataFormatError, match="empty") as caught:
        load_taobao(path)
    assert path.name in str(caught.value)


def test_taobao_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "UserBehavior.csv"
    with pytest.raises(FileNotFoundError) as caught:
        load_taobao(path)
    assert isinstance(caught.value, DataFileNotFoundError)
    assert isinstance(caught.value, DataFormatError)
    assert str(path) in str(caught.value)


def test_taobao_nrows_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="nrows"):
        load_taobao(write(tmp_path / "UserBehavior.csv", TAOBAO_GOOD), nrows=0)


def random_events(rng: np.random.Generator, n: int, platform: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": np.sort(rng.integers(0, 2**40, n)),
            "item_id": rng.integers(0, 2**62, n),
            "category_id": rng.integers(0, 2**63 - 1, n),
            "behavior_type": pd.Categorical.from_codes(rng.integers(0, 4, n), dtype=BEHAVIOR_DTYPE),
            "timestamp": rng.integers(TAOBAO_START, TAOBAO_END, n),  # a Taobao file's times
        }
    )
    if platform:
        frame["platform"] = pd.Categorical.from_codes(rng.integers(0, 2, n), dtype=PLATFORM_DTYPE)
    return frame


def test_taobao_round_trip_drops_platform(tmp_path):
    events = random_events(np.random.default_rng(1), 500, platform=True)
    write_taobao(events, tmp_path / "UserBehavior.csv")
    back = load_taobao(tmp_path / "UserBehavior.csv")
    pd.testing.assert_frame_equal(back, as_canonical(events).drop(columns="platform"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60))
def test_taobao_round_trip_property(seed, n):
    events = random_events(np.random.default_rng(seed), n)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "UserBehavior.csv"
        write_taobao(events, path)
        pd.testing.assert_frame_equal(load_taobao(path), events)


def test_write_taobao_rejects_unknown_labels(tmp_path):
    events = random_events(np.random.default_rng(2), 5)
    events["behavior_type"] = events["behavior_type"].astype(object)
    events.loc[3, "behavior_type"] = "click"
    with pytest.raises(ValueError, match="row 3"):
        write_taobao(events, tmp_path / "UserBehavior.csv")


# ---- RetailRocket --------------------------------------------------------------------------

DAY_MS = 86_400_000
T0 = 1_431_000_000_000  # 2015-05-07, ms

RR_EVENTS = "timestamp,visitorid,event,itemid,transactionid\n" + "".join(
    f"{t},{v},{e},{i},{x}\n"
    for t, v, e, i, x in [
        (T0 + 0 * DAY_MS + 1500, 7, "view", 100, ""),  # before item 100's first snapshot
        (T0 + 3 * DAY_MS, 7, "addtocart", 100, ""),  # first category of item 100
        (T0 + 9 * DAY_MS, 7, "transaction", 100, 4000),  # after the category changed
        (T0 + 9 * DAY_MS, 5, "view", 200, ""),  # item 200: category at exactly this time
        (T0 + 4 * DAY_MS, 5, "view", 300, ""),  # item 300 never has a categoryid
        (T0 + 2 * DAY_MS, 5, "view", 200, ""),
    ]
)
RR_PART1 = "timestamp,itemid,property,value\n" + "".join(
    f"{t},{i},{p},{v}\n"
    for t, i, p, v in [
        (T0 + 8 * DAY_MS, 100, "categoryid", 11),  # part 1 holds the later snapshot
        (T0 + 1 * DAY_MS, 100, "available", 1),
        (T0 + 1 * DAY_MS, 300, "888", "1116459 n372.000 424566"),
    ]
)
RR_PART2 = "timestamp,itemid,property,value\n" + "".join(
    f"{t},{i},{p},{v}\n"
    for t, i, p, v in [
        (T0 + 1 * DAY_MS, 100, "categoryid", 10),
        (T0 + 1 * DAY_MS, 200, "categoryid", 20),
        (T0 + 9 * DAY_MS, 200, "categoryid", 21),
    ]
)


def retailrocket_files(tmp_path, events=RR_EVENTS, part1=RR_PART1, part2=RR_PART2):
    return (
        write(tmp_path / "events.csv", events),
        [
            write(tmp_path / "item_properties_part1.csv", part1),
            write(tmp_path / "item_properties_part2.csv", part2),
        ],
    )


def test_retailrocket_category_valid_at_event_time(tmp_path):
    events = load_retailrocket(*retailrocket_files(tmp_path))
    assert list(events.columns) == list(EVENT_COLUMNS)
    expected = pd.DataFrame(
        {
            "user_id": [5, 5, 7, 7, 7],
            "item_id": [200, 200, 100, 100, 100],
            "category_id": [20, 21, 10, 10, 11],
            "behavior_type": pd.Categorical(["pv", "pv", "pv", "cart", "buy"], dtype=BEHAVIOR_DTYPE),
            "timestamp": [
                (T0 + 2 * DAY_MS) // 1000,
                (T0 + 9 * DAY_MS) // 1000,
                (T0 + 1500) // 1000,
                (T0 + 3 * DAY_MS) // 1000,
                (T0 + 9 * DAY_MS) // 1000,
            ],
        }
    )
    pd.testing.assert_frame_equal(events, expected)
    assert events.attrs["category_from_first_snapshot"] == 1
    assert events.attrs["dropped_no_category"] == 1
    assert events.attrs["rows_in_file"] == 6


def test_retailrocket_unknown_event(tmp_path):
    bad = RR_EVENTS.replace("addtocart", "click")
    path, parts = retailrocket_files(tmp_path, events=bad)
    with pytest.raises(DataFormatError) as caught:
        load_retailrocket(path, parts)
    assert_names(caught.value, path, "event", 3)


def test_retailrocket_missing_column(tmp_path):
    bad = RR_EVENTS.replace("timestamp,visitorid,event,itemid,transactionid", "timestamp,event")
    path, parts = retailrocket_files(tmp_path, events=bad)
    with pytest.raises(DataFormatError) as caught:
        load_retailrocket(path, parts)
    assert_names(caught.value, path, "visitorid", 1)


def test_retailrocket_non_numeric_visitor(tmp_path):
    bad = RR_EVENTS.replace(",5,view,300,", ",anon,view,300,")
    path, parts = retailrocket_files(tmp_path, events=bad)
    with pytest.raises(DataFormatError) as caught:
        load_retailrocket(path, parts)
    assert_names(caught.value, path, "visitorid", 6)


def test_retailrocket_bad_category_value(tmp_path):
    bad = RR_PART2.replace(",categoryid,21", ",categoryid,n21.000")
    path, parts = retailrocket_files(tmp_path, part2=bad)
    with pytest.raises(DataFormatError) as caught:
        load_retailrocket(path, parts)
    assert_names(caught.value, parts[1], "value", 4)


def test_retailrocket_missing_properties_file(tmp_path):
    path, parts = retailrocket_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="item_properties_part3"):
        load_retailrocket(path, [*parts, tmp_path / "item_properties_part3.csv"])


def test_retailrocket_empty_events(tmp_path):
    path, parts = retailrocket_files(tmp_path, events="")
    with pytest.raises(DataFormatError, match="empty"):
        load_retailrocket(path, parts)


# ---- REES46 --------------------------------------------------------------------------------

REES46_HEADER = (
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
)
REES46_ROWS = [
    "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,"
    "72d76fde-8bb3-4e00-8c23-a032dfed738c",
    "2019-10-01 00:00:05 UTC,cart,3900821,2053013552326770905,appliances.environment.water_heater,"
    "aqua,33.20,554748717,9333dfbd-b87a-4708-9857-6336556b0fcc",
    "2019-10-01 00:00:07 UTC,remove_from_cart,3900821,2053013552326770905,,aqua,33.20,554748717,"
    "9333dfbd-b87a-4708-9857-6336556b0fcc",
    "2019-10-01 00:01:00 UTC,purchase,3900821,2053013552326770905,,aqua,33.20,554748717,",
    "2019-10-01 00:00:01 UTC,view,17200506,2053013559792632471,furniture.living_room.sofa,,"
    "543.10,519107250,566511c2-e2e3-422b-b695-cf8e6e792ca8",
]
OCT_1 = 1_569_888_000  # 2019-10-01 00:00:00 UTC


def rees46_file(tmp_path, rows=REES46_ROWS):
    return write(tmp_path / "2019-Oct.csv", REES46_HEADER + "\n".join(rows) + "\n")


def test_rees46_mapping(tmp_path):
    events = load_rees46(rees46_file(tmp_path))
    expected = pd.DataFrame(
        {
            "user_id": [519107250, 541312140, 554748717, 554748717],
            "item_id": [17200506, 44600062, 3900821, 3900821],
            "category_id": [
                2053013559792632471,
                2103807459595387724,
                2053013552326770905,
                2053013552326770905,
            ],
            "behavior_type": pd.Categorical(["pv", "pv", "cart", "buy"], dtype=BEHAVIOR_DTYPE),
            "timestamp": [OCT_1 + 1, OCT_1, OCT_1 + 5, OCT_1 + 60],
        }
    )
    pd.testing.assert_frame_equal(events, expected)
    assert events.attrs["dropped_remove_from_cart"] == 1
    assert events.attrs["rows_in_file"] == 5


def test_rees46_nrows(tmp_path):
    events = load_rees46(rees46_file(tmp_path), nrows=2)
    assert len(events) == 2


def test_rees46_bad_time(tmp_path):
    rows = list(REES46_ROWS)
    rows[3] = rows[3].replace("2019-10-01 00:01:00 UTC", "2019-10-01T00:01:00Z")
    path = rees46_file(tmp_path, rows)
    with pytest.raises(DataFormatError) as caught:
        load_rees46(path)
    assert_names(caught.value, path, "event_time", 5)


def test_rees46_unknown_event_type(tmp_path):
    rows = list(REES46_ROWS)
    rows[1] = rows[1].replace(",cart,", ",wishlist,")
    path = rees46_file(tmp_path, rows)
    with pytest.raises(DataFormatError) as caught:
        load_rees46(path)
    assert_names(caught.value, path, "event_type", 3)


def test_rees46_extra_header_column(tmp_path):
    path = write(
        tmp_path / "2019-Oct.csv",
        REES46_HEADER.replace("user_session", "user_session,country") + REES46_ROWS[0] + ",fr\n",
    )
    with pytest.raises(DataFormatError) as caught:
        load_rees46(path)
    assert_names(caught.value, path, "country", 1)


def test_rees46_header_only(tmp_path):
    path = write(tmp_path / "2019-Oct.csv", REES46_HEADER)
    with pytest.raises(DataFormatError, match="no data lines"):
        load_rees46(path)


def test_rees46_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="2019-Nov.csv"):
        load_rees46(tmp_path / "2019-Nov.csv")
