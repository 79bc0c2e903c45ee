"""The claims of the section "What each part of the trajectory model adds" (chapter 6), with the
section's calls on the default simulator (seed 0, 5,000 users).

The section's prose glues every number and every verdict; these tests check that each verdict
reads its interval, and assert the sentences it writes in words: the head, not the recurrence,
carries the full model's gain over the linear-head network.
"""

from __future__ import annotations

import numpy as np
import pytest
from toc_notebooks import parameters_cell

import interest_lib as il
from interest_lib import protocol, trajectories, trajectory
from interest_lib.evaluation.metrics import ConfidenceInterval

PARAMETERS = parameters_cell("06_what_each_part_adds")  # the section's parameters cell
SEED = PARAMETERS["seed"]
ZEROED = "full model, recurrent state zeroed"


@pytest.fixture(scope="module")
def setup():
    return protocol.book_setup(il.simulate(n_users=PARAMETERS["n_users"], seed=SEED))


@pytest.fixture(scope="module")
def variants(setup):
    return trajectories.ablation_scores(setup, "lstm", seed=SEED, device="cpu")


@pytest.fixture(scope="module")
def ablation(setup, variants):
    return trajectories.ablation_table(setup, variants, n_boot=PARAMETERS["n_boot"], seed=SEED)


def test_the_full_model_is_chapter_6s_lstm(setup, variants):
    """Same call, same cache: the section's full model is the chapter's LSTM."""
    chapter6 = parameters_cell("06_lstm_trajectories")
    hyper = {name: chapter6[name] for name in trajectory.TRAJECTORY_DEFAULTS if name in chapter6}
    assert {"hidden", "train_share"} <= set(hyper)
    chapter = trajectories.sequence_model_scores(setup, "lstm", seed=SEED, device="cpu", **hyper)
    np.testing.assert_array_equal(variants[trajectories.FULL_MODEL], chapter)


@pytest.mark.parametrize("target", trajectories.TARGETS)
def test_every_verdict_reads_its_paired_interval(ablation, target):
    table = ablation[target]
    assert list(table.index) == list(trajectories.ABLATION)
    measured = table[table["part"] != ""]
    assert len(measured) == len(trajectories.ABLATION_COMPARISONS)
    for row, values in measured.iterrows():
        interval = ConfidenceInterval(*values[["ΔNDCG@10", "ΔNDCG@10 low", "ΔNDCG@10 high"]])
        assert interval.low <= interval.estimate <= interval.high, row
        assert values["verdict"] == trajectories.part_verdict(interval)
    # an added part's difference is the difference of the rows' NDCG@10
    rows = list(trajectories.ABLATION)
    for above, row in zip(rows[:3], rows[1:4]):
        assert table.loc[row, "ΔNDCG@10"] == pytest.approx(
            table.loc[row, "NDCG@10"] - table.loc[above, "NDCG@10"], abs=1e-9)
    assert table.loc[ZEROED, "ΔNDCG@10"] == pytest.approx(
        table.loc[trajectories.FULL_MODEL, "NDCG@10"] - table.loc[ZEROED, "NDCG@10"], abs=1e-9)


def test_the_head_not_the_recurrence_carries_the_gain_over_the_linear_head_network(ablation):
    """'So the score of chapter 6's model comes from its head, not from its recurrence.'"""
    table = ablation["next category"]
    gain = (table.loc[trajectories.FULL_MODEL, "NDCG@10"]
            - table.loc["recurrent network, linear head", "NDCG@10"])
    assert gain > 0
    assert table.loc[ZEROED, "ΔNDCG@10"] < 0.5 * gain
    changed = ablation["next changed category"]
    changed_gain = (changed.loc[trajectories.FULL_MODEL, "NDCG@10"]
                    - changed.loc["recurrent network, linear head", "NDCG@10"])
    assert changed.loc[ZEROED, "ΔNDCG@10"] < 0.5 * changed_gain


def test_the_recurrent_state_adds_little(ablation):
    """'What the recurrent network adds on its own ... small': less than a tenth of what the
    head adds over the linear-head network, on both targets."""
    for table in ablation.values():
        gain = (table.loc[trajectories.FULL_MODEL, "NDCG@10"]
                - table.loc["recurrent network, linear head", "NDCG@10"])
        assert abs(table.loc[ZEROED, "ΔNDCG@10"]) < 0.1 * gain
