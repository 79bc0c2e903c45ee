"""The pipeline on a data file: loading by format, the cut-off rule, sampling, block-wise scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from interest_lib import real_data
from interest_lib.data.cleaning import clean
from interest_lib.data.loaders import write_taobao
from interest_lib.data.schema import DAY_S, UTC8_OFFSET_S
from interest_lib.data.simulation import simulate
from interest_lib.data.split import TEST_END, TRAIN_END, VALID_END, split_by_time
from interest_lib.data.tasks import next_category_task
from interest_lib.evaluation.metrics import ranking_report
from interest_lib.models.baselines import BASELINE_NAMES, baseline_scores
from interest_lib.models.recurrent import SequenceModel
from interest_lib.models.trajectory import TrajectoryModel

OCT_1 = 1_569_888_000  # 2019-10-01 00:00:00 UTC


@pytest.fixture(scope="module")
def small_log() -> pd.DataFrame:
    return simulate(n_users=300, seed=3).events


@pytest.fixture(scope="module")
def small_task(small_log):
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


def test_evaluate_in_blocks_equals_one_ranking_report(small_task):
    split, task = small_task
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


def test_evaluate_interval_holds_the_estimate(small_task):
    split, task = small_task
    table = real_data.evaluate_baselines(task, split.train, n_boot=200, seed=0)
    assert (table["NDCG@10 low"] <= table["NDCG@10"]).all()
    assert (table["NDCG@10"] <= table["NDCG@10 high"]).all()
    assert (table["NDCG@10 high"] - table["NDCG@10 low"] > 0).all()
    again = real_data.evaluate_baselines(task, split.train, n_boot=200, seed=0)
    pd.testing.assert_frame_equal(table, again)


def test_evaluate_scorer_sees_subsets_of_the_task(small_task):
    _, task = small_task
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


def test_evaluate_empty_task(small_task):
    _, task = small_task
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
    assert real_data.main([str(path), "--users", "30"]) == 0
    out = capsys.readouterr().out
    assert "Markov chain" in out and "rows in" in out
    assert "Row account" in out and "fixed Taobao days" in out


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


def test_release_memory_frees_tables_held_in_reference_cycles():
    import gc

    import pyarrow as pa

    class Holder:
        pass

    gc.collect()
    gc.disable()  # so that only release_memory collects the cycle
    try:
        before = pa.total_allocated_bytes()
        holder = Holder()
        holder.itself = holder
        holder.buffer = pa.allocate_buffer(16 << 20)  # from pyarrow's memory pool
        del holder
        held = pa.total_allocated_bytes()
        assert held >= before + (16 << 20)  # the cycle still holds the table
        real_data.release_memory()
        assert pa.total_allocated_bytes() <= held - (16 << 20)
    finally:
        gc.enable()


# ---- cut-offs for a log of any length, the row account ---------------------------------------


def test_choose_cutoffs_by_the_length_of_the_log(small_log):
    taobao = real_data.choose_cutoffs("taobao", small_log)
    assert tuple(taobao) == (TRAIN_END, VALID_END, TEST_END) and "fixed Taobao" in taobao.rule
    rees = real_data.choose_cutoffs("rees46", small_log)
    assert tuple(rees) == real_data.day_cutoffs(small_log) and "day rule" in rees.rule
    # two hours of 12-02: the fixed days leave no test events, the day rule no training day
    start = VALID_END - 12 * 3600
    hours = small_log[(small_log["timestamp"] >= start) & (small_log["timestamp"] < start + 7200)]
    short = real_data.choose_cutoffs("taobao", hours)
    times = hours["timestamp"].to_numpy()
    assert times.min() < short.train_end < short.valid_end < short.test_end == times.max() + 1
    assert "2.0 hours" in short.rule and "70 %" in short.rule
    assert tuple(short) == real_data.short_log_cutoffs(times)
    assert (short.train_end - times.min()) % 60 == 0
    with pytest.raises(real_data.NothingToEvaluateError, match="no events"):
        real_data.choose_cutoffs("taobao", hours.iloc[:0])
    with pytest.raises(real_data.NothingToEvaluateError, match="too short"):
        real_data.short_log_cutoffs(np.array([start, start + 100]))


def test_cutoff_table_names_the_rule_or_says_na(small_log):
    table = real_data.cutoff_table(real_data.choose_cutoffs("taobao", small_log), small_log)
    assert (table["the rule (day_cutoffs)"] == table["used"]).all()
    few = small_log[small_log["timestamp"] >= VALID_END]
    table = real_data.cutoff_table(real_data.choose_cutoffs("taobao", few), few)
    assert (table["the rule (day_cutoffs)"] == "n/a").all()


def test_row_account_adds_up_from_the_file(tmp_path):
    rees = tmp_path / "2019-Oct.csv"
    rees.write_text(
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,"
        "user_session\n"
        "2019-10-01 00:00:00 UTC,view,1,7,,b,1.0,5,s\n"
        "2019-10-01 00:00:00 UTC,view,1,7,,b,1.0,5,s\n"
        "2019-10-01 00:00:09 UTC,remove_from_cart,1,7,,b,1.0,5,s\n"
        "2019-10-02 00:00:00 UTC,purchase,1,7,,b,1.0,5,s\n"
    )
    raw = real_data.load_events(rees, "rees46")
    cleaned, report = clean(raw, window=None)
    account = real_data.row_account(raw, report)
    assert (account.rows_read, account.rows_loaded, account.rows_after_cleaning) == (4, 3, 2)
    assert account.loader_dropped == {"remove_from_cart": 1}
    assert account.cleaning_dropped["duplicate"] == 1
    assert account.rows_read == account.rows_loaded + sum(account.loader_dropped.values())
    assert account.rows_loaded == account.rows_after_cleaning + sum(account.cleaning_dropped.values())
    text = str(account)
    assert "remove_from_cart" in text and "duplicate" in text and "rows read from the file" in text
    raw.attrs["rows_in_file"] = 9  # a row lost without a reason
    with pytest.raises(ValueError, match="do not add up"):
        real_data.row_account(raw, report)


def test_split_shows_times_in_the_zone_of_the_data(small_log):
    utc = split_by_time(small_log, *real_data.day_cutoffs(small_log), utc_offset_s=0)
    assert utc.sizes()["until (excl.)"].str.endswith(" UTC").all()
    assert split_by_time(small_log).sizes()["until (excl.)"].str.endswith("UTC+8").all()


# ---- the command line on short logs and bad files --------------------------------------------


def test_cli_on_a_two_hour_slice(tmp_path, small_log, capsys):
    start = VALID_END - 12 * 3600
    hours = small_log[(small_log["timestamp"] >= start) & (small_log["timestamp"] < start + 7200)]
    path = tmp_path / "UserBehavior.csv"
    write_taobao(hours, path)
    assert real_data.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "chosen from the data: the log spans 2.0 hours" in out
    assert f"rows read from the file  {len(hours):>14,}" in out
    board = out[out.index("method"):]
    for name in BASELINE_NAMES:
        assert name in board
    result = real_data.run_pipeline(path, n_boot=0)
    assert len(result.task) > 0 and result.table["points"].gt(0).all()


def test_cli_says_why_nothing_can_be_evaluated(tmp_path, small_log, capsys):
    path = tmp_path / "UserBehavior.csv"
    later = small_log.head(300).assign(timestamp=lambda f: f["timestamp"] + 700 * DAY_S)
    write_taobao(later, path)
    assert real_data.main([str(path)]) == real_data.EXIT_NOTHING_TO_EVALUATE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "dropped all 300 rows" in err[-1]
    assert "out_of_window 300" in err[-1]
    assert any(line.startswith("warning: ") and "window=None" in line for line in err)


UNPARSEABLE = {
    "semicolon.csv": b"1;2;3;pv;1511544070\n" * 50,
    "latin1.csv": "1,2,3,pv,1511544070\n1,2,3,pé,1511544070\n".encode("latin-1") * 50,
    "gzip-as-csv.csv": __import__("gzip").compress(b"event_time,event_type\n" * 50),
}


def test_cli_exits_2_with_one_line_on_unparseable_files(tmp_path):
    """Ten runs in subprocesses, as a user runs the command: never an abort (status 134)."""
    import subprocess
    import sys

    names = [*UNPARSEABLE] * 4
    procs = []
    for k, name in enumerate(names[:10]):
        path = tmp_path / f"{k}-{name}"
        path.write_bytes(UNPARSEABLE[name])
        command = [sys.executable, "-m", "interest_lib.recipes.real_data", str(path)]
        procs.append((path, subprocess.Popen(command, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)))  # fmt: skip
    for path, proc in procs:
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 2, (path.name, proc.returncode, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), err
        assert ", line " in lines[0] and out == ""


def test_task_of_an_empty_log_is_empty(small_log):
    empty = small_log.iloc[:0]
    for changed in (False, True):
        task = next_category_task(empty, np.array([1, 2]), VALID_END, TEST_END, changed)
        assert len(task) == 0 and task.n_users == 0 and task.n_unknown_target == 0
    one = next_category_task(small_log.iloc[:1], np.array([1, 2]), None, None)
    assert len(one) == 0


# ---- chapter 6's models on a log of a few hours ----------------------------------------------


def test_chapter_6s_models_run_on_a_log_of_a_few_hours():
    """On a two-hour slice the cut-offs come from the data, both of chapter 6's models train with
    the chapter's code and are evaluated on a test period that has points."""
    log = simulate(n_users=2000, seed=4).events
    start = VALID_END - 12 * 3600
    hours = log[(log["timestamp"] >= start) & (log["timestamp"] < start + 7200)]
    cutoffs = real_data.choose_cutoffs("taobao", hours)
    assert "2.0 hours" in cutoffs.rule
    split = split_by_time(hours, *cutoffs)
    ids = np.unique(split.train["category_id"])
    train_task = next_category_task(hours, ids, None, split.train_end)
    valid_task = next_category_task(hours, ids, split.train_end, split.valid_end)
    test_task = next_category_task(hours, ids, split.valid_end, split.test_end)
    assert len(train_task) > 0 and len(valid_task) > 0 and len(test_task) > 0
    trained = real_data.train_sequence_models(hours, ids, train_task, valid_task, device="cpu",
                                              epochs=1, hidden=8, embedding_dim=4,
                                              n_components=2, train_share=1.0)
    assert list(trained) == list(real_data.SEQUENCE_MODELS)
    plain = [name for name, kind in real_data.SEQUENCE_MODELS.items() if kind == real_data.PLAIN]
    assert len(plain) == 1 and isinstance(trained[plain[0]][0], SequenceModel)
    assert all(isinstance(trained[name][0], TrajectoryModel) for name in trained if name not in plain)
    scorer = real_data.sequence_scorer(trained, hours, ids, context=64, device="cpu")
    table = real_data.evaluate(test_task, scorer, n_boot=0)
    assert list(table.index) == list(real_data.SEQUENCE_MODELS)
    assert (table["points"] == len(test_task)).all() and len(test_task) > 0
    assert table["NDCG@10"].between(0, 1).all()
    # no validation points: the last epoch is kept; no training points: a clear error
    no_valid = valid_task.subset(np.zeros(len(valid_task), bool))
    kept = real_data.train_sequence_models(hours, ids, train_task, no_valid, device="cpu",
                                           epochs=1, hidden=8, embedding_dim=4, n_components=2)
    assert all(history.epochs == 1 for _, history in kept.values())
    with pytest.raises(TypeError, match="hyper-parameter"):
        real_data.train_sequence_models(hours, ids, train_task, valid_task, hiden=8)
    with pytest.raises(real_data.NothingToEvaluateError, match="no prediction points"):
        real_data.train_sequence_models(hours, ids, train_task.subset(np.zeros(len(train_task),
                                                                               bool)),
                                        valid_task, device="cpu")
