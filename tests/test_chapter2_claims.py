"""The claims chapter 2 (cleaning, loaders, time split) makes in its prose, checked on the results
of the chapter's library calls and its recipe (:mod:`interest_lib.recipes.audit`), with its
default parameters (seed 0, 5,000 users)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

import interest_lib as il
from interest_lib.recipes import audit

SEED = 0
N_USERS = 5000


@pytest.fixture(scope="module")
def chapter():
    sim = il.simulate(n_users=N_USERS, seed=SEED)
    noisy = il.add_noise(sim.events, seed=SEED)
    cleaned, report = il.clean(noisy.events)
    return sim, noisy, cleaned, report


def test_every_row_is_accounted_for_and_no_clean_row_is_dropped(chapter):
    _, noisy, _, report = chapter
    assert report.rows_in == len(noisy.events)
    assert report.rows_in == report.rows_out + sum(report.dropped.values())
    _, facts = audit.cleaner_scores(noisy.noise, report, noisy.label_recoverable)
    assert facts["clean_dropped"] == 0
    # every dropped row carries some dirt
    assert facts["dropped_dirty_share"] == 1.0


def test_precision_and_recall_per_kind(chapter):
    _, noisy, _, report = chapter
    scores, facts = audit.cleaner_scores(noisy.noise, report, noisy.label_recoverable)
    assert list(scores.index) == list(il.NOISE_KINDS)
    assert (scores["recall"] == 1.0).all()
    for kind in ("out_of_window", "bot", "bad_label", "missing_category"):
        assert scores.loc[kind, "precision"] == 1.0, kind
    # rows dropped as duplicates are injected copies or bot events that repeat one exactly
    crosstab = audit.truth_against_cleaner(noisy.noise, report)
    as_duplicate = crosstab["duplicate"]
    assert set(as_duplicate[as_duplicate > 0].index) <= {"duplicate", "bot"}
    assert crosstab.loc["bot", "duplicate"] == facts["duplicate_reason_bots"] > 0
    assert scores.loc["duplicate", "precision"] < 1.0
    # only the unrecoverable labels are dropped
    assert facts["unrecoverable_dropped"] == facts["unrecoverable_labels"]
    bad = np.asarray(noisy.noise, dtype=object) == "bad_label"
    np.testing.assert_array_equal(~report.kept[bad], ~noisy.label_recoverable[bad])


def test_bot_rule_separates_people_from_bots(chapter):
    _, noisy, _, report = chapter
    assert sorted(report.bot_user_ids) == sorted(noisy.bot_user_ids)
    per_user = audit.bot_evidence(noisy.events, report, noisy.bot_user_ids)
    _, facts = audit.bot_rule_facts(per_user, report)
    assert facts["person_max_per_minute"] < facts["rule_per_minute"] <= facts["bot_min_per_minute"]
    assert facts["bot_min_busy"] >= facts["rule_busy"]
    assert facts["bots_caught"] == len(noisy.bot_user_ids)
    assert facts["people_flagged"] == 0
    # the busiest real user of the whole dirty log stays below the rule, too
    per_minute = audit.events_per_minute(noisy.events)
    _, person = audit.bot_and_busiest_person(per_minute, noisy.bot_user_ids)
    assert per_minute.loc[person].max() < facts["rule_per_minute"]
    # exercise: lowering the threshold to 5 still flags no person
    _, lower = il.clean(noisy.events, bot_events_per_minute=5)
    assert sorted(lower.bot_user_ids) == sorted(noisy.bot_user_ids)


def test_item_fill_is_always_right_and_ffill_is_not(chapter):
    sim, noisy, cleaned, report = chapter
    fills = audit.fill_check(noisy.events, cleaned, report, sim.events, noisy.source_row)
    assert fills["n_fills"] > 0
    assert fills["fill_accuracy"] == 1.0
    assert fills["fills_from_later"] == 0  # the fill looks only backwards in time
    # the rows dropped for want of an earlier known category: most have a later known row of the
    # same item, the others none in the kept log; in the simulator no item has two categories
    assert fills["no_earlier_row"] == report.dropped["missing_category"] > 0
    assert fills["dropped_later_known"] > fills["no_earlier_row"] / 2
    assert fills["dropped_never_known"] > 0
    assert fills["dropped_ambiguous"] == 0
    assert (fills["dropped_later_known"] + fills["dropped_never_known"]
            == fills["no_earlier_row"])
    _, facts = audit.cleaner_scores(noisy.noise, report, noisy.label_recoverable)
    assert facts["missing_category_dropped"] == fills["no_earlier_row"]
    # the exercise's count (any known kept row of the item) finds the same rows
    known = report.kept & ~report.category_filled
    dropped = np.flatnonzero(np.asarray(report.reasons, dtype=object) == "missing_category")
    later = np.isin(noisy.events["item_id"].to_numpy()[dropped],
                    noisy.events.loc[known, "item_id"].unique())
    assert later.sum() == fills["dropped_later_known"]
    ffill = audit.forward_fill_check(noisy.events, noisy.noise, sim.events, noisy.source_row)
    assert ffill["ffill_right"] < 0.5
    assert ffill["ffill_crosses_n"] > 0


def test_fillna_method_argument_is_gone_in_installed_pandas():
    frame = pd.DataFrame({"user_id": [1, 2], "category_id": pd.array([7, pd.NA], dtype="Int64")})
    if int(pd.__version__.split(".")[0]) >= 3:
        with pytest.raises(TypeError):
            frame.fillna(method="ffill")
    assert frame.ffill()["category_id"].tolist() == [7, 7]  # copies user 1's category to user 2


def test_scaler_fitted_on_all_data_differs_and_is_caught(chapter):
    _, _, cleaned, _ = chapter
    split = il.split_by_time(cleaned)
    features = audit.user_day_features(cleaned)
    names = ["events", "categories", "buy_share"]
    train = features[features["timestamp"] < split.train_end]
    statistics = audit.scaler_statistics(StandardScaler().fit(features[names]),
                                         StandardScaler().fit(train[names]), names)
    assert (statistics["mean differs by"].abs() > 1e-3).any()
    assert statistics.loc["events", "mean differs by"] != pytest.approx(0.0, abs=1e-3)
    with pytest.raises(il.FutureLeakError):
        il.assert_fitted_on_train(features, split.train_end)
    il.assert_fitted_on_train(train, split.train_end)


def test_random_split_leaks_and_time_split_does_not(chapter):
    sim, noisy, cleaned, report = chapter
    split = il.split_by_time(cleaned)
    assert sum(len(p) for p in (split.train, split.valid, split.test)) == len(cleaned)
    parts = audit.random_split_parts(len(cleaned), len(split.train), len(split.valid), SEED)
    assert (parts == "train").sum() == len(split.train)
    assert (parts == "test").sum() == len(split.test)
    _, leaks = audit.split_leaks(cleaned, split, parts, sim.truth, noisy.source_row[report.kept])
    assert leaks["test_day_in_train"] > 0.7
    assert leaks["session_seen"] > 0.8
    assert leaks["time_split_session_seen"] < 0.01
    assert leaks["future_seen"] > 0.9
    assert split.train_end > sim.truth.shift_time  # the shift falls inside the training days
    assert (leaks["promoted_test_day"] > leaks["promoted_random_test"]
            > leaks["promoted_before"])


def test_september_row_is_dropped_by_clean_and_kept_by_an_unclean_split(tmp_path, chapter):
    _, _, cleaned, _ = chapter
    path = tmp_path / "UserBehavior.csv"
    september = audit.taobao_file_with_stray_row(cleaned, path)
    raw = il.load_taobao(path)
    assert len(raw) == 6 and raw["timestamp"].min() == september
    assert str(il.describe.local_time([september])[0].date()) == "2017-09-11"
    _, report = il.clean(raw)
    assert report.dropped["out_of_window"] == 1 and report.rows_out == 5
    assert il.split_by_time(raw).train["timestamp"].min() == september
