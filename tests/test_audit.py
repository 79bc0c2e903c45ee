"""Unit tests of chapter 2's recipe (:mod:`interest_lib.recipes.audit`) on small inputs; the
chapter's claims are in test_chapter2_claims.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

import interest_lib as il
from interest_lib.data.schema import DAY_S, TAOBAO_START
from interest_lib.recipes import audit


def _small():
    sim = il.simulate(n_users=150, seed=3)
    noisy = il.add_noise(sim.events, seed=3)
    cleaned, report = il.clean(noisy.events)
    return sim, noisy, cleaned, report


def test_random_split_parts_have_the_sizes_and_depend_on_the_seed():
    parts = audit.random_split_parts(10, 6, 2, seed=0)
    assert (parts == "train").sum() == 6 and (parts == "valid").sum() == 2
    assert (parts == "test").sum() == 2
    assert not np.array_equal(parts, audit.random_split_parts(10, 6, 2, seed=1))


def test_user_day_features_count_per_user_and_day():
    events = pd.DataFrame({
        "user_id": [1, 1, 1, 2],
        "item_id": [10, 11, 12, 13],
        "category_id": [5, 6, 5, 7],
        "behavior_type": ["pv", "buy", "pv", "pv"],
        "timestamp": [TAOBAO_START + 10, TAOBAO_START + 20, TAOBAO_START + DAY_S + 5,
                      TAOBAO_START + 30],
    })
    features = audit.user_day_features(events)
    first = features[(features["user_id"] == 1) & (features["day"] == 0)].iloc[0]
    assert first["events"] == 2 and first["categories"] == 2 and first["buy_share"] == 0.5
    assert first["timestamp"] == TAOBAO_START
    assert len(features) == 3


def test_show_rows_adds_time_and_truth():
    _, noisy, _, _ = _small()
    rows = audit.show_rows(noisy.events.head(3), noisy.noise)
    assert list(rows.columns)[5] == "time (UTC+8)"
    assert rows["noise (truth)"].tolist() == list(np.asarray(noisy.noise, dtype=object)[:3])


def test_cleaner_scores_and_crosstab_account_for_every_row():
    _, noisy, _, report = _small()
    scores, facts = audit.cleaner_scores(noisy.noise, report, noisy.label_recoverable)
    crosstab = audit.truth_against_cleaner(noisy.noise, report)
    assert crosstab.to_numpy().sum() == report.rows_in
    for kind in il.NOISE_KINDS:
        assert scores.loc[kind, "rows"] == int(np.sum(np.asarray(noisy.noise) == kind))
    assert 0.0 <= facts["dropped_dirty_share"] <= 1.0


def test_bot_evidence_marks_the_injected_bots():
    _, noisy, _, report = _small()
    per_user = audit.bot_evidence(noisy.events, report, noisy.bot_user_ids)
    assert set(per_user.index[per_user["kind"] == "bot"]) == set(noisy.bot_user_ids)
    table, facts = audit.bot_rule_facts(per_user, report)
    assert table.loc["bot", "users"] == len(noisy.bot_user_ids)
    assert facts["rule_per_minute"] == report.rules["bot_events_per_minute"]


def test_forward_fill_and_item_fill_checks_are_shares():
    sim, noisy, cleaned, report = _small()
    ffill = audit.forward_fill_check(noisy.events, noisy.noise, sim.events, noisy.source_row)
    assert ffill["n_missing"] == len(ffill["missing"]) == len(ffill["true_missing"])
    assert 0.0 <= ffill["ffill_right"] <= 1.0
    fills = audit.fill_check(noisy.events, cleaned, report, sim.events, noisy.source_row)
    assert fills["n_fills"] == report.repaired["category_filled"]
    assert fills["no_earlier_row"] == (fills["dropped_later_known"] + fills["dropped_never_known"]
                                       + fills["dropped_ambiguous"])


def test_fill_check_sorts_the_dropped_rows_by_what_is_known_of_their_item():
    # item 1: known only later (then filled); item 2: never known; item 3: known before, with two
    # categories
    dirty = pd.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 2, 3],
        "item_id": [1, 1, 1, 2, 3, 3, 3],
        "category_id": pd.array([pd.NA, 7, pd.NA, pd.NA, 5, 6, pd.NA], dtype="Int64"),
        "behavior_type": ["pv"] * 7,
        "timestamp": TAOBAO_START + np.array([10, 20, 25, 30, 40, 50, 60]),
    })
    cleaned, report = il.clean(dirty)
    assert report.dropped["missing_category"] == 3
    clean_log = dirty.assign(category_id=[7, 7, 7, 9, 5, 6, 6])
    fills = audit.fill_check(dirty, cleaned, report, clean_log, np.arange(len(dirty)))
    assert fills["n_fills"] == 1 and fills["fill_accuracy"] == 1.0
    assert (fills["dropped_later_known"], fills["dropped_never_known"],
            fills["dropped_ambiguous"]) == (1, 1, 1)


def test_categories_from_later_snapshots_are_dropped(tmp_path):
    t0, day = 1_431_000_000_000, 86_400_000
    (tmp_path / "events.csv").write_text(
        "timestamp,visitorid,event,itemid,transactionid\n"
        f"{t0},1,view,10,\n"  # before item 10's first snapshot
        f"{t0 + 2 * day},1,view,10,\n"
        f"{t0 + 3 * day},2,view,20,\n"
    )
    (tmp_path / "props.csv").write_text(
        "timestamp,itemid,property,value\n"
        f"{t0 + day},10,categoryid,5\n"
        f"{t0 + 3 * day},20,categoryid,6\n"  # the very time of the event: not later
        f"{t0},20,available,1\n"
    )
    loaded = il.load_retailrocket(tmp_path / "events.csv", tmp_path / "props.csv")
    properties = pd.read_csv(tmp_path / "props.csv")
    kept, dropped = audit.drop_categories_from_later_snapshots(loaded, properties)
    assert dropped == loaded.attrs["category_from_first_snapshot"] == 1
    assert len(kept) == 2 and kept.attrs == loaded.attrs
    assert kept["timestamp"].min() == (t0 + 2 * day) // 1000


def test_taobao_file_with_stray_row_loads(tmp_path):
    _, _, cleaned, _ = _small()
    path = tmp_path / "UserBehavior.csv"
    september = audit.taobao_file_with_stray_row(cleaned, path)
    raw = il.load_taobao(path)
    assert len(raw) == 6 and raw["timestamp"].min() == september < TAOBAO_START
