"""Chapter 6's claims on the default simulator (seed 0, 5,000 users), with the chapter's calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import interest_lib as il
from interest_lib import baselines, experiments, metrics


@pytest.fixture(scope="module")
def board():
    sim = il.simulate(seed=0)
    setup = experiments.book_setup(sim)
    task = setup.task("test")
    scores = baselines.baseline_scores(task, setup.split.train)
    scores["oracle"] = baselines.oracle_scores(sim, task)
    for cell in ("lstm", "gru"):
        scores[cell] = experiments.sequence_model_result(setup, cell, device="cpu")["scores"]
    rows = {}
    for name, s in scores.items():
        per_user = pd.Series(metrics.ndcg_at_k(s, task.target, k=10, per_user=True))
        ci = metrics.bootstrap_ci(per_user.groupby(task.user_id).mean().to_numpy(), seed=0)
        rows[name] = {"ndcg": ci.estimate, "low": ci.low, "high": ci.high}
    return pd.DataFrame(rows).T


def test_the_data_need_memory_oracle_10_percent_above_markov(board):
    assert board.loc["oracle", "ndcg"] >= 1.10 * board.loc["Markov chain", "ndcg"]


def test_no_method_beats_the_oracle_beyond_its_interval(board):
    others = board.drop(index="oracle")
    assert (others["ndcg"] <= board.loc["oracle", "high"]).all()


def test_recurrent_models_beat_the_markov_chain(board):
    for cell in ("lstm", "gru"):
        assert board.loc[cell, "low"] > board.loc["Markov chain", "high"], cell


@pytest.mark.xfail(
    strict=True,
    reason="Not reached: with the training budget of a laptop CPU (2 epochs on the last 3 "
    "training days) the LSTM closes about a fifth of the gap between the best baseline "
    "(repeat-last) and the oracle, not 70 %. Kept as a target.",
)
def test_lstm_closes_70_percent_of_the_gap(board):
    base = board.drop(index=["lstm", "gru", "oracle"])["ndcg"].max()
    share = (board.loc["lstm", "ndcg"] - base) / (board.loc["oracle", "ndcg"] - base)
    assert share >= 0.7, share


def test_same_seed_same_scores():
    sim = il.simulate(n_users=300, seed=1)
    setup = experiments.book_setup(sim)
    a = experiments.train_sequence_model(setup, "gru", device="cpu", epochs=1, hidden=16)[2]
    b = experiments.train_sequence_model(setup, "gru", device="cpu", epochs=1, hidden=16)[2]
    np.testing.assert_allclose(a, b)
