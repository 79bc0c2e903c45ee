"""Chapter 6's claims on the default simulator (seed 0, 5,000 users), with the chapter's calls.

The chapter's LSTM is trained once (about 20 s on a laptop CPU) through the chapter's own call,
``trajectories.sequence_model_scores``, whose cache the chapters then reuse. The GRU is left out to
keep the test fast: it is trained the same way and asserted nowhere else. NDCG@10 is the mean over
the task's prediction points, as in the chapter; the per-user mean is checked separately.
"""

from __future__ import annotations

import pandas as pd
import pytest

import interest_lib as il
from interest_lib import baselines, leaderboard, metrics, protocol, tasks, trajectories


@pytest.fixture(scope="module")
def boards():
    setup = protocol.book_setup(il.simulate(seed=0))
    test_task, changed_task = setup.task("test"), setup.task("test", changed=True)
    changed_at = setup.changed_positions()
    # the chapter's call: trained once (one CPU thread), cached, and reused by the chapters
    lstm = trajectories.sequence_model_scores(setup, "lstm", seed=0, device="cpu")
    oracle = protocol.oracle_scores(setup)
    next_scores = baselines.baseline_scores(test_task, setup.split.train)
    changed_scores = baselines.baseline_scores(changed_task, setup.split.train)
    next_scores["LSTM"] = lstm
    changed_scores["LSTM"] = tasks.condition_on_change(lstm[changed_at], changed_task)
    next_scores["oracle"] = oracle
    changed_scores["oracle"] = tasks.condition_on_change(oracle[changed_at], changed_task)
    per_user = {m: leaderboard.user_means(metrics.ndcg_at_k(s, test_task.target, 10, per_user=True),
                                          test_task.user_id).mean()
                for m, s in next_scores.items()}
    return {
        "next": leaderboard.evaluate_methods(next_scores, test_task, reference="oracle", seed=0),
        "changed": leaderboard.evaluate_methods(changed_scores, changed_task,
                                              reference="oracle", seed=0),  # fmt: skip
        "next, per user": pd.Series(per_user),
    }


def test_the_data_need_memory_oracle_10_percent_above_markov(boards):
    board = boards["next"]
    assert board.loc["oracle", "NDCG@10"] >= 1.10 * board.loc["Markov chain", "NDCG@10"]


def test_lstm_closes_70_percent_of_the_gap(boards):
    board = boards["next"]
    best = board.loc[list(baselines.BASELINE_NAMES), "NDCG@10"].max()
    share = leaderboard.gap_closed(board.loc["LSTM", "NDCG@10"], best, board.loc["oracle", "NDCG@10"])
    assert share >= 0.7, share


@pytest.mark.xfail(
    strict=True,
    reason="Averaged per user first (every user counts once) the LSTM closes about 68 % of the "
    "gap, not 70 %: the rest lies with light users, whose preference the oracle knows. The chapter "
    "reports both averages.",
)
def test_lstm_closes_70_percent_of_the_gap_when_every_user_counts_once(boards):
    means = boards["next, per user"]
    best = means[list(baselines.BASELINE_NAMES)].max()
    assert leaderboard.gap_closed(means["LSTM"], best, means["oracle"]) >= 0.7


@pytest.mark.parametrize("target", ["next", "changed"])
def test_no_method_beats_the_oracle_beyond_its_interval(boards, target):
    board = boards[target]
    for method in board.index.drop("oracle"):
        below_ceiling = board.loc[method, "NDCG@10"] <= board.loc["oracle", "NDCG@10 high"]
        paired_not_above = board.loc[method, "ΔNDCG@10 low"] <= 0
        assert below_ceiling or paired_not_above, method


@pytest.mark.parametrize("target", ["next", "changed"])
def test_lstm_beats_every_baseline_beyond_the_intervals(boards, target):
    board = boards[target]
    best = board.loc[list(baselines.BASELINE_NAMES), "NDCG@10 high"].max()
    assert board.loc["LSTM", "NDCG@10 low"] > best
