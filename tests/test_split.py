"""split_by_time: a global split in time and its guard against fitting on the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from interest_lib.data.schema import DAY_S, TAOBAO_START
from interest_lib.data.split import (
    TEST_END,
    TRAIN_END,
    VALID_END,
    FutureLeakError,
    TimeSplit,
    assert_fitted_on_train,
    split_by_time,
)


def events_over_days(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    user = np.sort(rng.integers(1, 50, n))
    timestamp = rng.integers(TAOBAO_START - DAY_S, TAOBAO_START + 10 * DAY_S, n)
    order = np.lexsort((timestamp, user))
    frame = pd.DataFrame({"user_id": user[order], "timestamp": timestamp[order]})
    frame.index = frame.index * 10 + 3  # a non-default index that the split must keep
    return frame


def test_default_cut_offs_are_the_taobao_days():
    assert TRAIN_END == TAOBAO_START + 7 * DAY_S  # 2017-12-02 00:00 UTC+8
    assert VALID_END == TAOBAO_START + 8 * DAY_S
    assert TEST_END == TAOBAO_START + 9 * DAY_S
    split = split_by_time(events_over_days())
    assert (split.train_end, split.valid_end, split.test_end) == (TRAIN_END, VALID_END, TEST_END)
    assert pd.Timestamp(TRAIN_END, unit="s").tz_localize("UTC").tz_convert("Asia/Shanghai") == (
        pd.Timestamp("2017-12-02 00:00", tz="Asia/Shanghai")
    )


def test_parts_partition_the_events_by_time():
    events = events_over_days()
    split = split_by_time(events)
    assert (split.train["timestamp"] < TRAIN_END).all()
    assert split.valid["timestamp"].between(TRAIN_END, VALID_END - 1).all()
    assert split.test["timestamp"].between(VALID_END, TEST_END - 1).all()
    late = int((events["timestamp"] >= TEST_END).sum())
    assert split.dropped_after_test_end == late
    assert len(split.train) + len(split.valid) + len(split.test) + late == len(events)
    # order and index labels are kept
    for part in (split.train, split.valid, split.test):
        assert part.index.is_monotonic_increasing
        pd.testing.assert_frame_equal(part, events.loc[part.index])


def test_boundaries_belong_to_the_later_part():
    events = pd.DataFrame(
        {"user_id": [1, 1, 1, 1], "timestamp": [TRAIN_END - 1, TRAIN_END, VALID_END, TEST_END]}
    )
    split = split_by_time(events)
    assert split.train["timestamp"].tolist() == [TRAIN_END - 1]
    assert split.valid["timestamp"].tolist() == [TRAIN_END]
    assert split.test["timestamp"].tolist() == [VALID_END]
    assert split.dropped_after_test_end == 1


def test_guard_rejects_the_future():
    split = split_by_time(events_over_days())
    split.check_no_future(split.train)
    assert_fitted_on_train(split.history("valid"), split.train_end)
    with pytest.raises(FutureLeakError, match="end of training"):
        split.check_no_future(split.history("test"), name="history")
    with pytest.raises(FutureLeakError, match="popularity"):
        assert_fitted_on_train(split.test, split.train_end, name="popularity counts")
    assert issubclass(FutureLeakError, ValueError)


def test_history_is_train_and_valid_in_input_order():
    events = events_over_days()
    split = split_by_time(events)
    history = split.history("test")
    pd.testing.assert_frame_equal(history, events.loc[events["timestamp"] < VALID_END])
    assert len(history) == len(split.train) + len(split.valid)
    assert split.history("valid") is split.train
    with pytest.raises(ValueError, match="until"):
        split.history("train")


def test_custom_cut_offs_and_validation():
    events = events_over_days()
    split = split_by_time(events, TAOBAO_START + DAY_S, TAOBAO_START + 2 * DAY_S, TEST_END)
    assert len(split.test) > len(split.valid)
    with pytest.raises(ValueError, match="increase"):
        split_by_time(events, VALID_END, TRAIN_END, TEST_END)


def test_summary_and_repr():
    split = split_by_time(events_over_days())
    sizes = split.sizes()
    assert list(sizes.index) == ["train", "valid", "test"]
    assert sizes["rows"].tolist() == [len(split.train), len(split.valid), len(split.test)]
    assert "2017-12-02 00:00 UTC+8" in repr(split)
    assert "<table" in split._repr_html_()
    assert isinstance(split, TimeSplit)


def test_sizes_show_the_zone_of_the_data():
    events = events_over_days()
    taobao = split_by_time(events).sizes()
    assert taobao["until (excl.)"].tolist()[-1] == "2017-12-04 00:00 UTC+8"
    utc = split_by_time(events, TRAIN_END, VALID_END, TEST_END, utc_offset_s=0)
    assert utc.sizes()["until (excl.)"].tolist()[-1] == "2017-12-03 16:00 UTC"
    assert "UTC+8" not in repr(utc) and "UTC" in repr(utc)
    west = split_by_time(events, utc_offset_s=-5 * 3600 - 1800).sizes()
    assert west["until (excl.)"].tolist()[-1] == "2017-12-03 10:30 UTC-5:30"
