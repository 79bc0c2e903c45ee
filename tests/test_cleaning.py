"""clean: what it keeps, what it drops, and that the report accounts for every row."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from event_tables import synthetic_events
from hypothesis import given, settings
from hypothesis import strategies as st

from interest_lib.data.cleaning import DROP_REASONS, CleaningReport, clean, grade_cleaning
from interest_lib.data.noise import add_noise
from interest_lib.data.schema import BEHAVIOR_DTYPE, TAOBAO_END, TAOBAO_START, as_canonical

T = TAOBAO_START + 3600


def dirty_frame(rows: list[tuple]) -> pd.DataFrame:
    """A dirty table from (user, item, category or None, label, timestamp) tuples."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "category_id", "behavior_type", "ts"])
    return pd.DataFrame(
        {
            "user_id": frame["user_id"].astype("int64"),
            "item_id": frame["item_id"].astype("int64"),
            "category_id": pd.array(frame["category_id"].tolist(), dtype="Int64"),
            "behavior_type": pd.Series(frame["behavior_type"].tolist(), dtype=object),
            "timestamp": frame["ts"].astype("int64"),
        }
    )


def check_invariants(events: pd.DataFrame, cleaned: pd.DataFrame, report: CleaningReport):
    n = len(events)
    assert report.rows_in == n
    assert report.rows_in == report.rows_out + sum(report.dropped.values())
    assert list(report.dropped) == list(DROP_REASONS)
    assert len(report.reasons) == len(report.category_filled) == len(report.label_normalised) == n
    assert len(cleaned) == report.rows_out == int(report.kept.sum())
    for reason, count in report.dropped.items():
        assert count == int((report.reasons == reason).sum())
    assert report.repaired["category_filled"] == int(report.category_filled.sum())
    assert report.repaired["label_normalised"] == int(report.label_normalised.sum())
    assert not (report.category_filled & ~report.kept).any()

    # canonical output
    canonical = as_canonical(cleaned.head(0))
    assert list(cleaned.columns) == list(canonical.columns)
    assert cleaned.dtypes.equals(canonical.dtypes)
    assert isinstance(cleaned.index, pd.RangeIndex)
    assert ("platform" in cleaned) == ("platform" in events)

    # the kept rows are the input rows, in input order, repaired only where reported
    source = events.iloc[np.flatnonzero(report.kept)].reset_index(drop=True)
    for column in ("user_id", "item_id", "timestamp"):
        np.testing.assert_array_equal(cleaned[column].to_numpy(), source[column].to_numpy())
    if "platform" in events:
        np.testing.assert_array_equal(cleaned["platform"], source["platform"])
    filled = report.category_filled[report.kept]
    np.testing.assert_array_equal(
        cleaned["category_id"].to_numpy()[~filled],
        source["category_id"].to_numpy()[~filled].astype(np.int64),
    )
    assert source["category_id"][filled].isna().all()
    written = source["behavior_type"].astype(object).to_numpy()
    normalised = report.label_normalised[report.kept]
    labels = cleaned["behavior_type"].astype(object).to_numpy()
    np.testing.assert_array_equal(labels[~normalised], written[~normalised])
    np.testing.assert_array_equal(
        labels[normalised], [v.strip().lower() for v in written[normalised]]
    )


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_users=st.integers(1, 40),
    rates=st.tuples(*[st.sampled_from([0.0, 0.02, 0.1])] * 4),
    bot_user_rate=st.sampled_from([0.0, 0.1]),
    platform=st.booleans(),
)
def test_clean_keeps_an_ordered_subsequence_and_accounts_for_every_row(
    seed, n_users, rates, bot_user_rate, platform
):
    events = synthetic_events(n_users, seed, platform)
    noisy = add_noise(
        events,
        duplicate_rate=rates[0],
        missing_category_rate=rates[1],
        out_of_window_rate=rates[2],
        bad_label_rate=rates[3],
        bot_user_rate=bot_user_rate,
        seed=seed,
    )
    cleaned, report = clean(noisy.events)
    check_invariants(noisy.events, cleaned, report)
    # cleaning twice changes nothing
    again, second = clean(cleaned)
    pd.testing.assert_frame_equal(again, cleaned)
    assert second.rows_out == second.rows_in


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n_users=st.integers(1, 40))
def test_clean_canonical_input_unchanged(seed, n_users):
    events = synthetic_events(n_users, seed)
    events = events.drop_duplicates(ignore_index=True)
    cleaned, report = clean(events)
    pd.testing.assert_frame_equal(cleaned, as_canonical(events))
    assert report.rows_out == len(events)


def test_duplicates_keep_the_first():
    rows = [(1, 10, 5, "pv", T), (1, 10, 5, "pv", T), (1, 10, 5, "pv", T + 1), (2, 10, 5, "pv", T)]
    cleaned, report = clean(dirty_frame(rows))
    assert list(np.asarray(report.reasons)) == ["", "duplicate", "", ""]
    assert len(cleaned) == 3


def test_labels_are_normalised_or_dropped():
    labels = ["PV", " buy", "Cart ", "FAV", "\tFav ", "click", "", None, "pv"]
    rows = [(1, 10 + i, 5, label, T + i) for i, label in enumerate(labels)]
    cleaned, report = clean(dirty_frame(rows))
    assert cleaned["behavior_type"].tolist() == ["pv", "buy", "cart", "fav", "fav", "pv"]
    assert report.dropped["bad_label"] == 3
    assert report.repaired["label_normalised"] == 5
    assert cleaned["behavior_type"].dtype == BEHAVIOR_DTYPE


def test_window_is_half_open():
    rows = [
        (1, 10, 5, "pv", TAOBAO_START - 1),
        (1, 10, 5, "pv", TAOBAO_START),
        (1, 10, 5, "pv", TAOBAO_END - 1),
        (1, 10, 5, "pv", TAOBAO_END),
        (1, 10, 5, "pv", 1_505_117_799),  # the real Taobao row of 2017-09-11
    ]
    with pytest.warns(UserWarning, match="3 of 5 rows"):  # most rows lie outside the window
        cleaned, report = clean(dirty_frame(rows))
    assert cleaned["timestamp"].tolist() == [TAOBAO_START, TAOBAO_END - 1]
    assert report.dropped["out_of_window"] == 3
    assert clean(dirty_frame(rows), window=None)[1].rows_out == 5


def test_category_filled_from_the_item_only_when_unambiguous():
    rows = [
        (1, 100, 7, "pv", T),
        (2, 200, 8, "pv", T + 1),  # the next row belongs to another user and another item
        (3, 100, None, "pv", T + 2),  # item 100 has one known category: filled with 7
        (3, 300, 9, "pv", T + 3),
        (3, 300, 6, "pv", T + 4),
        (4, 300, None, "pv", T + 5),  # item 300 is ambiguous: dropped
        (4, 400, None, "pv", T + 6),  # item 400 is never seen with a category: dropped
    ]
    cleaned, report = clean(dirty_frame(rows))
    assert cleaned["category_id"].tolist() == [7, 8, 7, 9, 6]
    assert list(np.asarray(report.reasons)) == [""] * 5 + ["missing_category"] * 2
    assert report.category_filled.tolist() == [False, False, True, False, False, False, False]
    dropped_all = clean(dirty_frame(rows), fill_category=False)[1]
    assert dropped_all.dropped["missing_category"] == 3


def test_category_never_taken_from_dropped_rows():
    rows = [(1, 100, 7, "click", T), (2, 100, None, "pv", T + 1)]
    _, report = clean(dirty_frame(rows))
    assert list(np.asarray(report.reasons)) == ["bad_label", "missing_category"]


def test_bot_rule():
    rng = np.random.default_rng(0)
    human = [(1, 10 + i, 5, "pv", T + 8 * i) for i in range(2000)]  # one view every 8 s
    fast_human = [(2, 10 + i, 5, "pv", T + 60 * (i // 9)) for i in range(900)]  # 9 a minute
    buyer = [(3, 10 + i, 5, "buy" if i % 3 else "pv", T + 5 * i) for i in range(300)]  # 12 a min
    items = rng.integers(0, 100, 600)
    bot = [(4, 10 + int(item), 5, "pv", T + 2 * i) for i, item in enumerate(items)]  # 30 a min
    short_burst = [(5, 10, 5, "pv", T + i) for i in range(40)]  # 40 in one minute only
    events = dirty_frame(human + fast_human + buyer + bot + short_burst)
    _, report = clean(events)
    assert report.bot_user_ids.tolist() == [4]
    reasons = np.asarray(report.reasons)
    users = events["user_id"].to_numpy()
    assert (reasons[users == 4] == "bot").all()
    assert (reasons[users != 4] == "").all()
    strict = clean(events, bot_events_per_minute=9, bot_busy_minutes=2, bot_min_pv_share=0.0)[1]
    assert strict.bot_user_ids.tolist() == [2, 3, 4]


def test_report_prints():
    events = synthetic_events(50, seed=1)
    noisy = add_noise(events, duplicate_rate=0.05, bad_label_rate=0.05, seed=1)
    _, report = clean(noisy.events)
    table = report.table()
    assert list(table.columns) == ["step", "rows", "share of input", "meaning"]
    assert table["step"].iloc[0] == "rows in" and table["rows"].iloc[0] == len(noisy.events)
    text = str(report)
    assert "rows in" in text and "dropped: duplicate" in text and "repaired" in text
    assert "<table" in report._repr_html_()
    assert "CleaningReport(" in repr(report)


def test_missing_column_is_an_error():
    with pytest.raises(ValueError, match="timestamp"):
        clean(synthetic_events(5).drop(columns="timestamp"))


def test_grading_on_simulated_events():
    try:
        from interest_lib import simulate
    except ImportError:  # pragma: no cover - the simulator is part of the package
        pytest.skip("interest_lib.simulate is not available")
    events = simulate(n_users=2000, seed=0).events
    noisy = add_noise(events, seed=0)
    cleaned, report = clean(noisy.events)
    check_invariants(noisy.events, cleaned, report)
    grade = grade_cleaning(report, noisy.noise)
    assert grade.loc["duplicate", "share dropped"] >= 0.99
    assert grade.loc["out_of_window", "share dropped"] >= 0.99
    assert grade.loc["bot", "share dropped"] >= 0.90
    assert grade.loc["clean", "share dropped"] < 0.005
    # what can be repaired is repaired: every row whose category went missing and that no other
    # rule drops is filled exactly when a kept row of the same item knew its category at or before
    # its time (items never change category in the simulator), and the repairable ones are most
    ev = noisy.events.reset_index(drop=True)
    reasons = np.asarray(report.reasons).astype(str)
    lost = ev["category_id"].isna().to_numpy() & np.isin(reasons, ["", "missing_category"])
    known = report.kept & ~ev["category_id"].isna().to_numpy()
    first_known = ev[known].groupby("item_id")["timestamp"].min()
    since = first_known.reindex(ev.loc[lost, "item_id"]).to_numpy()
    repairable = int((since <= ev.loc[lost, "timestamp"].to_numpy()).sum())
    assert grade.loc["missing_category", "repaired"] == int(report.category_filled.sum()) == repairable
    assert repairable > 0.5 * grade.loc["missing_category", "rows"]
    recoverable = int(noisy.label_recoverable.sum())
    assert grade.loc["bad_label", "repaired"] == recoverable
    assert grade.loc["bad_label", "dropped"] == grade.loc["bad_label", "rows"] - recoverable
    assert grade["rows"].sum() == len(noisy.events)


def test_category_never_filled_from_the_future():
    frame = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "item_id": [7, 7, 7, 8],
            "category_id": pd.array([None, 5, None, None], dtype="Int64"),
            "behavior_type": ["pv", "pv", "pv", "pv"],
            "timestamp": [100, 200, 300, 50],
        }
    )
    cleaned, report = clean(frame, window=None)
    # row 0 happens before the item's category is known: dropped; row 2 comes after: filled
    assert report.kept.tolist() == [False, True, True, False]
    assert cleaned["category_id"].tolist() == [5, 5]
    assert report.category_filled.tolist() == [False, False, True, False]


def test_category_ambiguous_up_to_the_row_time_is_dropped():
    frame = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "item_id": [7, 7, 7, 7],
            "category_id": pd.array([5, None, 6, None], dtype="Int64"),
            "behavior_type": ["pv"] * 4,
            "timestamp": [100, 150, 200, 300],
        }
    )
    _, report = clean(frame, window=None)
    # at 150 only category 5 is known: filled; at 300 both 5 and 6 are known: dropped
    assert report.kept.tolist() == [True, True, True, False]


def test_window_accepts_times_and_iso_strings():
    rows = [
        (1, 10, 5, "pv", TAOBAO_START - 1),
        (1, 10, 5, "pv", TAOBAO_START),
        (1, 10, 5, "pv", TAOBAO_END - 1),
        (1, 10, 5, "pv", TAOBAO_END),
    ]
    expected = clean(dirty_frame(rows))[0]
    start = pd.Timestamp("2017-11-25 00:00", tz="Asia/Shanghai")
    end = pd.Timestamp("2017-12-04 00:00", tz="Asia/Shanghai")
    for window in [
        (start, end),
        (start.tz_convert("UTC").tz_localize(None), end.tz_convert("UTC").tz_localize(None)),
        (start.to_pydatetime(), end.to_pydatetime()),
        ("2017-11-25 00:00+08:00", "2017-12-04T00:00+08:00"),
        ("2017-11-24 16:00", "2017-12-03 16:00"),  # no zone: UTC
        (np.int64(TAOBAO_START), float(TAOBAO_END)),
    ]:
        cleaned, report = clean(dirty_frame(rows), window=window)
        pd.testing.assert_frame_equal(cleaned, expected)
        assert report.rules["window"] == (TAOBAO_START, TAOBAO_END)
    for bad in [("yesterday", "today"), (TAOBAO_START,), (None, TAOBAO_END)]:
        with pytest.raises(TypeError, match="window"):
            clean(dirty_frame(rows), window=bad)


def test_default_window_warns_when_it_drops_most_rows():
    october = 1_569_888_000  # 2019-10-01, a REES46 month
    rows = [(u, 10, 5, "pv", october + 60 * u) for u in range(1, 6)]
    with pytest.warns(UserWarning, match="5 of 5 rows .* window=None"):
        cleaned, report = clean(dirty_frame(rows))
    assert len(cleaned) == 0 and report.dropped["out_of_window"] == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(clean(dirty_frame(rows), window=None)[0]) == 5
