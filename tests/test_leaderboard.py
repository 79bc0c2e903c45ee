"""The one leaderboard: averages, intervals that resample users, the tie rule, the gap closed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from event_tables import cluster_interval_by_loop

from interest_lib import leaderboard, metrics
from interest_lib.data.schema import DAY_S
from interest_lib.data.simulation import simulate
from interest_lib.data.tasks import next_category_task
from interest_lib.recipes.protocol import point_report


@pytest.fixture(scope="module")
def task():
    sim = simulate(n_users=150, seed=3)
    categories = np.unique(sim.events["category_id"])
    return next_category_task(sim.events, categories, sim.truth.end - DAY_S, sim.truth.end)


def test_points_average_and_paired_reference(task):
    rng = np.random.default_rng(0)
    good = np.eye(task.n_categories)[task.target] + rng.random((len(task), task.n_categories))
    noise = rng.random((len(task), task.n_categories))
    reports = {"good": point_report(good, task), "noise": point_report(noise, task)}
    table = leaderboard.leaderboard(reports, task.user_id, average="points", reference="good",
                                    ceiling=(), sort=False, n_boot=200)
    assert list(table.index) == ["good", "noise"]
    assert table.loc["noise", "NDCG@10"] == pytest.approx(metrics.ndcg_at_k(noise, task.target, 10))
    assert table.loc["noise", "HR@10"] == pytest.approx(
        metrics.hit_rate_at_k(noise, task.target, 10))
    assert table.loc["noise", "MRR"] == pytest.approx(metrics.mrr(noise, task.target))
    for name in ("HR@1", "NDCG@10", "HR@10", "MRR"):
        assert (table[f"{name} low"] <= table[name]).all()
        assert (table[name] <= table[f"{name} high"]).all()
    assert table.loc["good", ["ΔNDCG@10", "ΔNDCG@10 low", "ΔNDCG@10 high"]].abs().max() == 0
    assert table.loc["noise", "ΔNDCG@10 high"] < 0
    difference = reports["noise"]["NDCG@10"] - reports["good"]["NDCG@10"]
    assert table.loc["noise", "ΔNDCG@10"] == pytest.approx(difference.mean())
    np.testing.assert_allclose(table.loc["noise", ["ΔNDCG@10 low", "ΔNDCG@10 high"]],
                               cluster_interval_by_loop(difference.to_numpy(), task.user_id, 200, 0))
    again = leaderboard.leaderboard(reports, task.user_id, average="points", reference="good",
                                    ceiling=(), sort=False, n_boot=200)
    pd.testing.assert_frame_equal(table, again)  # seeded
    with pytest.raises(ValueError, match="reference"):
        leaderboard.leaderboard(reports, task.user_id, average="points", reference="oracle")


def test_paired_difference_of_one_pair(task):
    rng = np.random.default_rng(0)
    good = np.eye(task.n_categories)[task.target] + rng.random((len(task), task.n_categories))
    noise = rng.random((len(task), task.n_categories))
    reports = {"good": point_report(good, task), "noise": point_report(noise, task)}
    worse = leaderboard.paired_difference(reports, "noise", "good", task.user_id, n_boot=200)
    difference = (reports["noise"]["NDCG@10"] - reports["good"]["NDCG@10"]).to_numpy()
    assert worse.estimate == pytest.approx(difference.mean())
    np.testing.assert_allclose((worse.low, worse.high),
                               cluster_interval_by_loop(difference, task.user_id, 200, 0))
    assert worse.side() == -1
    better = leaderboard.paired_difference(reports, "good", "noise", task.user_id, n_boot=200)
    assert better.estimate == pytest.approx(-worse.estimate) and better.side() == 1
    assert leaderboard.position(better) == "above" and leaderboard.position(worse) == "below"
    assert leaderboard.position(metrics.ConfidenceInterval(0.01, -0.01, 0.03)) == "level with"


def test_intervals_resample_users_not_points():
    rng = np.random.default_rng(1)
    user = np.repeat(np.arange(50), 20)
    values = np.repeat(rng.random(50), 20)  # strongly clustered: a user's points are all equal
    frame = pd.DataFrame({"NDCG@10": values})
    board = leaderboard.leaderboard({"m": frame}, user, average="points", columns=(), n_boot=500)
    naive = metrics.bootstrap_ci(values, n_boot=500, seed=0)
    low, high = board.loc["m", ["NDCG@10 low", "NDCG@10 high"]]
    assert board.loc["m", "NDCG@10"] == pytest.approx(values.mean())
    assert low < values.mean() < high
    assert (high - low) > 2 * (naive.high - naive.low)
    np.testing.assert_allclose([low, high], cluster_interval_by_loop(values, user, 500, 0))
    # one point per user: the ordinary bootstrap of the mean
    single = leaderboard.leaderboard({"m": frame[:50]}, np.arange(50), average="points",
                                     columns=(), n_boot=300, seed=4)
    plain = metrics.bootstrap_ci(values[:50], n_boot=300, seed=4)
    columns = ["NDCG@10", "NDCG@10 low", "NDCG@10 high"]
    assert tuple(single.loc["m", columns]) == pytest.approx(plain)
    # an undefined value is left out
    with_nan = leaderboard.leaderboard({"m": pd.DataFrame({"NDCG@10": np.r_[values, np.nan]})},
                                       np.r_[user, 99], average="points", columns=())
    assert with_nan.loc["m", "NDCG@10"] == pytest.approx(values.mean())


def test_users_average_gives_every_user_one_vote():
    rng = np.random.default_rng(5)
    user = rng.integers(0, 60, 900)
    frame = pd.DataFrame({"NDCG@10": rng.random(900), "HR@1": (rng.random(900) < 0.3) * 1.0})
    board = leaderboard.leaderboard({"m": frame}, user, average="users", columns=("HR@1",),
                                    n_boot=300, seed=2)
    per_user = frame.groupby(user).mean()
    ci = metrics.bootstrap_ci(per_user["NDCG@10"].to_numpy(), n_boot=300, seed=2)
    assert tuple(board.loc["m", ["NDCG@10", "NDCG@10 low", "NDCG@10 high"]]) == pytest.approx(ci)
    assert board.loc["m", "HR@1"] == pytest.approx(per_user["HR@1"].mean())
    by_points = leaderboard.leaderboard({"m": frame}, user, average="points", columns=("HR@1",),
                                        n_boot=300, seed=2)
    assert by_points.loc["m", "NDCG@10"] == pytest.approx(frame["NDCG@10"].mean())
    assert by_points.loc["m", "HR@1"] == pytest.approx(frame["HR@1"].mean())
    assert by_points.loc["m", "NDCG@10"] != pytest.approx(board.loc["m", "NDCG@10"])
    with pytest.raises(ValueError, match="average"):
        leaderboard.leaderboard({"m": frame}, user, average="events")
    with pytest.raises(TypeError):
        leaderboard.leaderboard({"m": frame}, user)  # the average must be named


def test_tie_rule_order_and_gap_closed():
    user = np.arange(200) % 40
    reports = {
        "weak": pd.DataFrame({"NDCG@10": np.full(200, 0.50), "HR@1": 0.1}),
        "best": pd.DataFrame({"NDCG@10": np.full(200, 0.80), "HR@1": 0.3}),
        "close": pd.DataFrame({"NDCG@10": np.full(200, 0.78), "HR@1": 0.3}),
        "oracle": pd.DataFrame({"NDCG@10": np.full(200, 0.95), "HR@1": 0.5}),
    }
    board = leaderboard.leaderboard(reports, user, average="points", columns=("HR@1",), n_boot=50,
                                    baselines=("weak",))
    assert list(board.index) == ["oracle", "best", "close", "weak"]
    assert board.loc["best", "vs best"] == 0.0 and board.loc["best", "ties best"]
    assert board.loc["close", "ties best"] and not board.loc["weak", "ties best"]
    assert not board.loc["oracle", "ties best"]  # a ceiling, not a competitor
    assert board.loc["close", "vs best"] == pytest.approx(metrics.relative_difference(0.78, 0.80))
    assert board.loc["weak", "NDCG@10 low"] == pytest.approx(0.5)
    assert board.loc["best", "gap closed"] == pytest.approx((0.80 - 0.50) / (0.95 - 0.50))
    assert board.loc["oracle", "gap closed"] == pytest.approx(1.0)
    assert board.loc["weak", "gap closed"] == 0.0


def test_no_intervals_with_zero_replicates():
    frame = pd.DataFrame({"NDCG@10": [0.2, 0.4, 0.9]})
    board = leaderboard.leaderboard({"m": frame}, [1, 1, 2], average="points", columns=(),
                                    n_boot=0)
    assert board.loc["m", "NDCG@10"] == pytest.approx(0.5)
    assert np.isnan(board.loc["m", "NDCG@10 low"]) and np.isnan(board.loc["m", "NDCG@10 high"])


def test_gap_closed():
    assert leaderboard.gap_closed(0.7, 0.6, 0.7) == pytest.approx(1.0)
    assert leaderboard.gap_closed(0.6, 0.6, 0.7) == 0.0
    assert leaderboard.gap_closed(0.5, 0.6, 0.7) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="no gap"):
        leaderboard.gap_closed(0.5, 0.7, 0.6)
