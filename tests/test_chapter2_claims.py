"""The claims chapter 2 (cleaning, loaders, time split) makes in its prose, checked with the
chapter's own library calls and its default parameters (seed 0, 5,000 users)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

import interest_lib as il
from interest_lib.data.schema import DAY_S, UTC8_OFFSET_S

SEED = 0
N_USERS = 5000


@pytest.fixture(scope="module")
def chapter():
    sim = il.simulate(n_users=N_USERS, seed=SEED)
    noisy = il.add_noise(sim.events, seed=SEED)
    cleaned, report = il.clean(noisy.events)
    return sim, noisy, cleaned, report


def test_every_row_is_accounted_for_and_no_clean_row_is_dropped(chapter):
    _, noisy, cleaned, report = chapter
    assert report.rows_in == len(noisy.events)
    assert report.rows_in == report.rows_out + sum(report.dropped.values())
    truth = np.asarray(noisy.noise, dtype=object)
    assert not ((truth == "") & ~report.kept).any()
    # every dropped row carries some dirt
    assert (truth[~report.kept] != "").all()


def test_precision_and_recall_per_kind(chapter):
    _, noisy, _, report = chapter
    truth = np.asarray(noisy.noise, dtype=object)
    reasons = np.asarray(report.reasons, dtype=object)
    handled = ~report.kept | report.category_filled | report.label_normalised
    for kind in il.NOISE_KINDS:
        assert handled[truth == kind].all(), kind
    for kind in ("out_of_window", "bot", "bad_label", "missing_category"):
        assert (truth[reasons == kind] == kind).all(), kind
    # rows dropped as duplicates are injected copies or bot events that repeat one exactly
    assert set(truth[reasons == "duplicate"]) <= {"duplicate", "bot"}
    # only the unrecoverable labels are dropped
    bad = truth == "bad_label"
    np.testing.assert_array_equal(~report.kept[bad], ~noisy.label_recoverable[bad])


def test_bot_rule_separates_people_from_bots(chapter):
    _, noisy, _, report = chapter
    assert sorted(report.bot_user_ids) == sorted(noisy.bot_user_ids)
    events = noisy.events
    seen = np.isin(np.asarray(report.reasons, dtype=object), ["", "bot", "missing_category"])
    rows = events.loc[seen, ["user_id", "timestamp"]]
    per_minute = rows.groupby(["user_id", rows["timestamp"] // 60]).size()
    busiest = per_minute.groupby(level="user_id").max()
    is_bot = busiest.index.isin(noisy.bot_user_ids)
    assert busiest[~is_bot].max() < report.rules["bot_events_per_minute"]
    assert busiest[is_bot].min() >= report.rules["bot_events_per_minute"]
    # exercise: lowering the threshold to 5 still flags no person
    _, lower = il.clean(events, bot_events_per_minute=5)
    assert sorted(lower.bot_user_ids) == sorted(noisy.bot_user_ids)


def test_item_fill_is_always_right_and_ffill_is_not(chapter):
    sim, noisy, cleaned, report = chapter
    truth = np.asarray(noisy.noise, dtype=object)
    kept = np.flatnonzero(report.kept)
    filled = report.category_filled[kept]
    true_category = sim.events["category_id"].to_numpy()[noisy.source_row[kept[filled]]]
    np.testing.assert_array_equal(cleaned["category_id"].to_numpy()[filled], true_category)

    missing = np.flatnonzero(truth == "missing_category")
    true_missing = sim.events["category_id"].to_numpy()[noisy.source_row[missing]]
    dirty = noisy.events
    ffilled = dirty["category_id"].ffill().to_numpy()[missing]
    assert np.mean(ffilled == true_missing) < 0.5
    crosses = dirty["user_id"].shift().to_numpy()[missing] != dirty["user_id"].to_numpy()[missing]
    assert crosses.sum() > 0


def test_fillna_method_argument_is_gone_in_installed_pandas():
    frame = pd.DataFrame({"user_id": [1, 2], "category_id": pd.array([7, pd.NA], dtype="Int64")})
    if int(pd.__version__.split(".")[0]) >= 3:
        with pytest.raises(TypeError):
            frame.fillna(method="ffill")
    assert frame.ffill()["category_id"].tolist() == [7, 7]  # copies user 1's category to user 2


def test_scaler_fitted_on_all_data_differs_and_is_caught(chapter):
    _, _, cleaned, _ = chapter
    split = il.split_by_time(cleaned)
    day = (cleaned["timestamp"] - il.TAOBAO_START) // DAY_S
    features = cleaned.assign(day=day).groupby(["user_id", "day"]).size().rename("events")
    features = features.reset_index()
    features["timestamp"] = il.TAOBAO_START + features["day"] * DAY_S
    train = features[features["timestamp"] < split.train_end]
    on_all = StandardScaler().fit(features[["events"]])
    on_train = StandardScaler().fit(train[["events"]])
    assert on_all.mean_[0] != pytest.approx(on_train.mean_[0], rel=1e-3)
    with pytest.raises(il.FutureLeakError):
        il.assert_fitted_on_train(features, split.train_end)
    il.assert_fitted_on_train(train, split.train_end)


def test_random_split_leaks_and_time_split_does_not(chapter):
    sim, noisy, cleaned, report = chapter
    split = il.split_by_time(cleaned)
    assert sum(len(p) for p in (split.train, split.valid, split.test)) == len(cleaned)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(cleaned))
    part = np.empty(len(cleaned), dtype=object)
    n_train, n_valid = len(split.train), len(split.valid)
    part[order[:n_train]] = "train"
    part[order[n_train:n_train + n_valid]] = "valid"
    part[order[n_train + n_valid:]] = "test"
    timestamp = cleaned["timestamp"].to_numpy()
    users = cleaned["user_id"].to_numpy()
    test_day = timestamp >= split.valid_end
    assert (part[test_day] == "train").mean() > 0.7
    session = sim.truth.event_session[noisy.source_row[report.kept]]
    assert np.isin(session[part == "test"], session[part == "train"]).mean() > 0.8
    assert np.isin(session[test_day], session[~test_day]).mean() < 0.01
    last_train = pd.Series(timestamp[part == "train"]).groupby(users[part == "train"]).max()
    later = last_train.reindex(users[part == "test"]).to_numpy() > timestamp[part == "test"]
    assert later.mean() > 0.9
    segment = sim.truth.event_segment[noisy.source_row[report.kept]]
    promoted = segment == sim.truth.promoted_segment
    shift = sim.truth.shift_time
    assert split.train_end > shift  # the shift falls inside the training days
    assert promoted[test_day].mean() > promoted[part == "test"].mean() > promoted[timestamp < shift].mean()


def test_september_row_is_dropped_by_clean_and_kept_by_an_unclean_split(tmp_path, chapter):
    _, _, cleaned, _ = chapter
    path = tmp_path / "UserBehavior.csv"
    sample = cleaned[cleaned["user_id"] == cleaned["user_id"].iloc[0]].head(5)
    il.write_taobao(sample, path)
    september = int(pd.Timestamp("2017-09-11 10:27:41").timestamp()) - UTC8_OFFSET_S
    with path.open("a") as file:
        file.write(f"{sample['user_id'].iloc[0]},{sample['item_id'].iloc[0]},"
                   f"{sample['category_id'].iloc[0]},pv,{september}\n")
    raw = il.load_taobao(path)
    assert len(raw) == 6 and raw["timestamp"].min() == september
    _, report = il.clean(raw)
    assert report.dropped["out_of_window"] == 1 and report.rows_out == 5
    assert il.split_by_time(raw).train["timestamp"].min() == september
