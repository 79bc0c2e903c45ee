import numpy as np
import pandas as pd

from interest_lib.data.describe import compare_with_taobao, local_hour, log_statistics, session_ids


def _log():
    return pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2, 2],
            "item_id": [10, 11, 12, 13, 14, 15],
            "category_id": [5, 5, 6, 5, 7, 7],
            "behavior_type": pd.Categorical(["pv", "pv", "buy", "pv", "cart", "pv"]),
            "timestamp": [0, 60, 4000, 4100, 0, 10],
        }
    )


def test_session_ids_split_on_user_and_gap():
    np.testing.assert_array_equal(session_ids(_log()), [0, 0, 1, 1, 2, 2])


def test_log_statistics_by_hand():
    s = log_statistics(_log())
    assert s["share_pv"] == 4 / 6 and s["share_buy"] == 1 / 6
    # pairs within users: (5,5) (5,6) (6,5) | (7,7) -> 2 of 4 the same
    assert s["same_category_next"] == 0.5
    assert s["events_per_user_mean"] == 3 and s["events_per_user_max"] == 4
    assert s["session_length_median"] == 2
    # user 1: 3 of 4 in category 5; user 2: 2 of 2 -> median 0.875
    assert s["top_category_share_median"] == 0.875


def test_compare_table_flags_out_of_range():
    table = compare_with_taobao(_log())
    assert not table.loc["share_pv", "in range"]
    assert table.loc["session_length_median", "in range"]


def test_local_hour_is_utc_plus_8():
    assert local_hour(np.array([0]))[0] == 8
    assert local_hour(np.array([16 * 3600]))[0] == 0


def test_local_time_reads_the_taobao_days_in_utc8():
    from interest_lib.data.describe import local_time
    from interest_lib.data.schema import TAOBAO_START

    first = local_time([TAOBAO_START])[0]
    assert str(first) == "2017-11-25 00:00:00"
    assert local_time(np.array([TAOBAO_START + 3600]))[0].hour == 1
