"""add_noise: the record of what was injected matches what changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from event_tables import synthetic_events
from hypothesis import given, settings
from hypothesis import strategies as st

from interest_lib.data.noise import NOISE_KINDS, NoisyEvents, add_noise
from interest_lib.data.schema import BEHAVIOR_TYPES, EVENT_COLUMNS, TAOBAO_END, TAOBAO_START


def check_record(events: pd.DataFrame, noisy: NoisyEvents, window=(TAOBAO_START, TAOBAO_END)):
    dirty = noisy.events
    noise = np.asarray(noisy.noise, dtype=object)
    source = noisy.source_row
    assert len(noise) == len(source) == len(noisy.label_recoverable) == len(dirty)
    assert list(dirty.columns[:5]) == list(EVENT_COLUMNS)
    assert dirty["category_id"].dtype == "Int64"
    assert dirty["behavior_type"].dtype == object

    # every input row appears exactly once, in order
    from_input = source >= 0
    np.testing.assert_array_equal(source[from_input], np.arange(len(events)))
    injected = np.isin(noise, ["duplicate", "bot"])
    np.testing.assert_array_equal(~from_input, injected)

    # counts match the per-row record
    for kind in NOISE_KINDS:
        assert noisy.counts[kind] == int((noise == kind).sum())

    original = events.iloc[source[from_input]].reset_index(drop=True)
    kept = dirty.loc[from_input].reset_index(drop=True)
    kinds = noise[from_input]
    labels = np.asarray(original["behavior_type"].astype(object))
    same = {
        "user_id": kept["user_id"].to_numpy() == original["user_id"].to_numpy(),
        "item_id": kept["item_id"].to_numpy() == original["item_id"].to_numpy(),
        "category_id": (kept["category_id"] == original["category_id"]).fillna(False).to_numpy(),
        "behavior_type": kept["behavior_type"].to_numpy() == labels,
        "timestamp": kept["timestamp"].to_numpy() == original["timestamp"].to_numpy(),
    }
    if "platform" in events:
        same["platform"] = (kept["platform"] == original["platform"]).to_numpy()
        assert (dirty.loc[~from_input, "platform"].notna()).all()
    changed_column = {
        "missing_category": "category_id",
        "out_of_window": "timestamp",
        "bad_label": "behavior_type",
    }
    for column, equal in same.items():
        # clean rows equal the original; a corrupted row differs only in its column
        should_differ = np.array([changed_column.get(k) == column for k in kinds])
        np.testing.assert_array_equal(equal, ~should_differ, err_msg=column)

    assert kept.loc[kinds == "missing_category", "category_id"].isna().all()
    assert kept.loc[kinds != "missing_category", "category_id"].notna().all()
    late = kept.loc[kinds == "out_of_window", "timestamp"].to_numpy()
    assert ((late < window[0]) | (late >= window[1])).all()

    recoverable = noisy.label_recoverable[from_input]
    assert not recoverable[kinds != "bad_label"].any()
    normal = np.array(
        [v.strip().lower() if isinstance(v, str) else None for v in kept["behavior_type"]],
        dtype=object,
    )
    np.testing.assert_array_equal(normal[recoverable], labels[recoverable])
    assert not np.isin(normal[(kinds == "bad_label") & ~recoverable], BEHAVIOR_TYPES).any()

    # a duplicate equals the row right before it
    rows = np.flatnonzero(noise == "duplicate")
    if len(rows):
        assert (rows > 0).all()
        pd.testing.assert_frame_equal(
            dirty.iloc[rows].reset_index(drop=True), dirty.iloc[rows - 1].reset_index(drop=True)
        )
        assert (noise[rows - 1] == "").all()

    # bots: new users, page views only, inside the window, never otherwise corrupted
    bot_rows = noise == "bot"
    bot_users = dirty.loc[bot_rows, "user_id"].unique()
    assert set(bot_users) == set(noisy.bot_user_ids)
    assert not np.isin(bot_users, events["user_id"].unique()).any()
    np.testing.assert_array_equal(np.isin(dirty["user_id"], noisy.bot_user_ids), bot_rows)
    assert (dirty.loc[bot_rows, "behavior_type"] == "pv").all()
    bot_times = dirty.loc[bot_rows, "timestamp"]
    assert ((bot_times >= window[0]) & (bot_times < window[1])).all()

    # rows stay ordered by user when the input was
    if (np.diff(events["user_id"].to_numpy()) >= 0).all():
        assert (np.diff(dirty["user_id"].to_numpy()) >= 0).all()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_users=st.integers(1, 40),
    rates=st.tuples(*[st.sampled_from([0.0, 0.01, 0.05, 0.2])] * 4),
    bot_user_rate=st.sampled_from([0.0, 0.05, 0.3]),
    platform=st.booleans(),
)
def test_record_matches_changes(seed, n_users, rates, bot_user_rate, platform):
    events = synthetic_events(n_users, seed, platform)
    noisy = add_noise(
        events,
        duplicate_rate=rates[0],
        missing_category_rate=rates[1],
        out_of_window_rate=rates[2],
        bad_label_rate=rates[3],
        bot_user_rate=bot_user_rate,
        bot_burst_minutes=(2.0, 5.0),
        seed=seed,
    )
    check_record(events, noisy)


def test_default_rates_are_small_and_realistic():
    events = synthetic_events(2000, seed=3)
    noisy = add_noise(events, seed=3)
    check_record(events, noisy)
    n = len(events)
    assert noisy.counts["duplicate"] == round(0.01 * n)
    assert noisy.counts["missing_category"] == round(0.005 * n)
    assert noisy.counts["out_of_window"] == round(0.002 * n)
    assert noisy.counts["bad_label"] == round(0.005 * n)
    assert len(noisy.bot_user_ids) == 10
    per_bot = noisy.counts["bot"] / len(noisy.bot_user_ids)
    assert per_bot > 10 * n / 2000  # many more events than an average user
    # some out-of-window times lie months before the window, some after it
    times = noisy.events.loc[np.asarray(noisy.noise == "out_of_window"), "timestamp"]
    assert (times < TAOBAO_START - 30 * 86400).any() and (times >= TAOBAO_END).any()
    # a bot clicks at least 10 times in several minutes
    bots = noisy.events.loc[np.asarray(noisy.noise == "bot")]
    per_minute = bots.groupby(["user_id", bots["timestamp"] // 60]).size()
    assert ((per_minute >= 10).groupby(level=0).sum() >= 5).all()
    summary = noisy.summary()
    assert summary.loc["clean", "rows"] + summary["rows"].drop("clean").sum() == len(noisy.events)
    assert "bot users" in repr(noisy) and "<table" in noisy._repr_html_()


def test_deterministic_for_a_seed():
    events = synthetic_events(100, seed=1)
    first, again, other = (add_noise(events, seed=s) for s in (5, 5, 6))
    pd.testing.assert_frame_equal(first.events, again.events)
    np.testing.assert_array_equal(first.noise, again.noise)
    assert not first.events.equals(other.events)


def test_input_is_not_modified():
    events = synthetic_events(50, seed=2)
    copy = events.copy()
    add_noise(events, duplicate_rate=0.2, missing_category_rate=0.2, bad_label_rate=0.2)
    pd.testing.assert_frame_equal(events, copy)


def test_unsorted_input_keeps_input_order():
    events = synthetic_events(50, seed=4).sample(frac=1.0, random_state=0)
    noisy = add_noise(events, bot_user_rate=0.1, seed=1)
    check_record(events.reset_index(drop=True), noisy)
    assert (np.asarray(noisy.noise)[-noisy.counts["bot"] :] == "bot").all()


def test_rates_must_fit():
    events = synthetic_events(10, seed=0)
    with pytest.raises(ValueError, match="rate"):
        add_noise(events, duplicate_rate=0.6, missing_category_rate=0.6)
    with pytest.raises(ValueError, match="rate"):
        add_noise(events, bad_label_rate=-0.1)
