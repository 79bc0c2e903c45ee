"""The pipeline on a data file: loading by format, the cut-off rule, sampling, block-wise scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from interest_lib import real_data
from interest_lib.data.loaders import write_taobao
from interest_lib.data.schema import DAY_S, UTC8_OFFSET_S
from interest_lib.data.simulation import simulate
from interest_lib.data.split import TEST_END, TRAIN_END, VALID_END, split_by_time
from interest_lib.data.tasks import next_category_task
from interest_lib.evaluation.metrics import ranking_report
from interest_lib.models.baselines import BASELINE_NAMES, baseline_scores

OCT_1 = 1_569_888_000  # 2019-10-01 00:00:00 UTC


@pytest.fixture(scope="module")
def small_log() -> pd.DataFrame:
    return simulate(n_users=300, seed=3).events


@pytest.fixture(scope="module")
def test_task(small_log):
    split = split_by_time(small_log)
    ids = np.unique(split.train["category_id"])
    return split, next_category_task(small_log, ids, split.valid_end, split.test_end)


# ---- the cut-off rule ------------------------------------------------------------------------


def test_day_cutoffs_give_the_taobao_cutoffs(small_log):
    assert real_data.day_cutoffs(small_log, utc_offset_s=UTC8_OFFSET_S) == (
        TRAIN_END, VALID_END, TEST_END
    )


def test_day_cutoffs_in_utc_for_a_month():
    october = OCT_1 + np.arange(0, 31 * DAY_S, 3600)
    train_end, valid_end, test_end = real_data.day_cutoffs(october)
    assert test_end == OCT_1 + 31 * DAY_S  # 2019-11-01 00:00 UTC
    assert valid_end == OCT_1 + 30 * DAY_S  # the test day is 10-31
    assert train_end == OCT_1 + 29 * DAY_S  # validation is 10-30
    longer = real_data.day_cutoffs(october, valid_days=2, test_days=3)
    assert longer == (OCT_1 + 26 * DAY_S, OCT_1 + 28 * DAY_S, OCT_1 + 31 * DAY_S)


def test_day_cutoffs_last_event_at_midnight_starts_a_new_day():
    times = np.array([OCT_1, OCT_1 + 3 * DAY_S])  # the last event opens 10-04
    assert real_data.day_cutoffs(times)[2] == OCT_1 + 4 * DAY_S


def test_day_cutoffs_need_a_training_day():
    with pytest.raises(ValueError, match="less than 3 days"):
        real_data.day_cutoffs(OCT_1 + np.arange(0, 2 * DAY_S, 3600))
    with pytest.raises(ValueError, match="no events"):
        real_data.day_cutoffs(np.array([], dtype=np.int64))


def test_protocol_by_format(small_log):
    taobao = real_data.protocol("taobao")
    assert taobao["cutoffs"] == (TRAIN_END, VALID_END, TEST_END)
    assert taobao["window"] is not None
    rees = real_data.protocol("rees46")
    assert rees["window"] is None and rees["cutoffs"] is None
    assert real_data.protocol("rees46", small_log)["cutoffs"] == real_data.day_cutoffs(small_log)
    with pytest.raises(ValueError, match="data_format"):
        real_data.protocol("movielens")


# ---- sampling --------------------------------------------------------------------------------


def test_sample_users_keeps_whole_users(small_log):
    sample = real_data.sample_users(small_log, 40, seed=1)
    users = np.unique(sample["user_id"])
    assert users.size == 40
    whole = small_log[small_log["user_id"].isin(users)].reset_index(drop=True)
    pd.testing.assert_frame_equal(sample, whole)
    again = real_data.sample_users(small_log, 40, seed=1)
    pd.testing.assert_frame_equal(sample, again)
    assert real_data.sample_users(small_log, None) is small_log
    assert real_data.sample_users(small_log, 10**6) is small_log
    with pytest.raises(ValueError):
        real_data.sample_users(small_log, 0)


# ---- block-wise evaluation -------------------------------------------------------------------


def test_evaluate_in_blocks_equals_one_ranking_report(test_task):
    split, task = test_task
    whole = baseline_scores(task, split.train)
    # blocks of 333 points: users straddle blocks, and results must not change
    table = real_data.evaluate_baselines(task, split.train, max_cells=333 * task.n_categories,
                                        n_boot=0)  # fmt: skip
    assert len(task) > 3 * 333
    assert list(table.index) == list(BASELINE_NAMES)
    for name, scores in whole.items():
        expected = ranking_report(scores, task.target, ks=(10,))
        for column in ("NDCG@10", "HR@10", "MRR"):
            assert table.loc[name, column] == pytest.approx(expected[column], abs=1e-12)
    assert (table["points"] == len(task)).all()
    assert table["NDCG@10 low"].isna().all()


def test_evaluate_interval_holds_the_estimate(test_task):
    split, task = test_task
    table = real_data.evaluate_baselines(task, split.train, n_boot=200, seed=0)
    assert (table["NDCG@10 low"] <= table["NDCG@10"]).all()
    assert (table["NDCG@10"] <= table["NDCG@10 high"]).all()
    assert (table["NDCG@10 high"] - table["NDCG@10 low"] > 0).all()
    again = real_data.evaluate_baselines(task, split.train, n_boot=200, seed=0)
    pd.testing.assert_frame_equal(table, again)


def test_evaluate_scorer_sees_subsets_of_the_task(test_task):
    _, task = test_task
    seen = []

    def scorer(block):
        assert block.events is task.events
        assert np.array_equal(block.category_ids, task.category_ids)
        seen.append(block.rows)
        one_hot = np.zeros((len(block), block.n_categories))
        one_hot[np.arange(len(block)), block.target] = 1.0
        return {"perfect": one_hot}

    table = real_data.evaluate(task, scorer, max_cells=50 * task.n_categories, n_boot=0)
    np.testing.assert_array_equal(np.concatenate(seen), task.rows)
    assert len(seen) == -(-len(task) // 50)
    assert table.loc["perfect", "NDCG@10"] == 1.0 and table.loc["perfect", "MRR"] == 1.0


def test_evaluate_empty_task(test_task):
    _, task = test_task
    empty = task.subset(np.zeros(len(task), dtype=bool))
    table = real_data.evaluate(empty, lambda block: {"x": np.zeros((0, block.n_categories))})
    assert table.empty and "NDCG@10" in table.columns


# ---- loading and the whole pipeline ----------------------------------------------------------


def test_run_pipeline_on_a_taobao_file(tmp_path, small_log):
    path = tmp_path / "UserBehavior.csv"
    write_taobao(small_log, path)
    result = real_data.run_pipeline(path, max_users=150, n_boot=50)
    assert result.report.rows_in == len(small_log)
    assert result.users_in_log == small_log["user_id"].nunique()
    assert result.split.train["user_id"].nunique() <= 150
    assert list(result.table.index) == list(BASELINE_NAMES)
    assert result.table["NDCG@10"].between(0, 1).all()
    text = str(result)
    assert "Cleaning report" in text and "repeat last" in text


def test_cli_prints_the_table(tmp_path, small_log, capsys):
    path = tmp_path / "UserBehavior.csv"
    write_taobao(small_log.head(5000), path)
    real_data.main([str(path), "--users", "30"])
    out = capsys.readouterr().out
    assert "Markov chain" in out and "rows in" in out


def test_load_events_by_format(tmp_path):
    rees = tmp_path / "2019-Oct.csv"
    rees.write_text(
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,"
        "user_session\n"
        "2019-10-01 00:00:00 UTC,view,1,7,,b,1.0,5,s\n"
        "2019-10-02 00:00:00 UTC,purchase,1,7,,b,1.0,5,s\n"
    )
    events = real_data.load_events(rees, "rees46")
    assert events["behavior_type"].tolist() == ["pv", "buy"]
    assert events["timestamp"].tolist() == [OCT_1, OCT_1 + DAY_S]

    folder = tmp_path / "rr"
    folder.mkdir()
    (folder / "events.csv").write_text(
        "timestamp,visitorid,event,itemid,transactionid\n"
        f"{OCT_1 * 1000},9,view,100,\n{(OCT_1 + 60) * 1000},9,transaction,100,1\n"
    )
    (folder / "item_properties_part1.csv").write_text(
        f"timestamp,itemid,property,value\n{OCT_1 * 1000},100,categoryid,42\n"
    )
    (folder / "item_properties_part2.csv").write_text("timestamp,itemid,property,value\n"
                                                      f"{OCT_1 * 1000},100,available,1\n")
    events = real_data.load_events(folder / "events.csv", "retailrocket")
    assert events["category_id"].tolist() == [42, 42]
    assert events["behavior_type"].tolist() == ["pv", "buy"]
    with pytest.raises(ValueError, match="nrows"):
        real_data.load_events(folder / "events.csv", "retailrocket", nrows=1)

    lonely = tmp_path / "alone" / "events.csv"
    lonely.parent.mkdir()
    lonely.write_text("timestamp,visitorid,event,itemid,transactionid\n")
    with pytest.raises(FileNotFoundError, match="item_properties"):
        real_data.load_events(lonely, "retailrocket")
    with pytest.raises(ValueError, match="data_format"):
        real_data.load_events(rees, "csv")


def test_release_memory_runs():
    real_data.release_memory()
