"""The claims of the section "When does memory matter?" (chapter 6), with the section's call:
the memory sweep at its five settings, 1,500 users per log, seed 0.

Each test quotes the sentence it checks; the numbers themselves are glued in the section.
"""

from __future__ import annotations

import pytest
from toc_notebooks import parameters_cell

from interest_lib import describe, memory_sweep, trajectories
from interest_lib.evaluation.metrics import ConfidenceInterval

PARAMETERS = parameters_cell("06_when_memory_matters")  # the section's parameters cell
SEED, MEMORIES, N_USERS = PARAMETERS["seed"], PARAMETERS["memories"], PARAMETERS["n_users"]


@pytest.fixture(scope="module")
def sweep():
    return memory_sweep.memory_sweep(MEMORIES, n_users=N_USERS, seed=SEED, device="cpu",
                                     n_boot=PARAMETERS["n_boot"])


@pytest.fixture(scope="module")
def openings(sweep):
    return sweep.xs("session openings", level="points")


def _adds(row) -> ConfidenceInterval:
    return ConfidenceInterval(row["recurrence adds"], row["low"], row["high"])


def test_the_section_sweeps_the_library_settings(sweep):
    assert tuple(MEMORIES) == memory_sweep.MEMORY_SETTINGS
    assert min(MEMORIES) == 0.0 and max(MEMORIES) == 1.0  # the prose reads the two ends
    assert sorted(sweep.index.get_level_values("memory").unique()) == list(MEMORIES)
    assert (sweep["low"] <= sweep["recurrence adds"]).all()
    assert (sweep["recurrence adds"] <= sweep["high"]).all()


def test_the_knob_moves_the_session_order_lift(openings):
    """'The memory knob does what it says: the session-order lift ... goes from ... to ...'"""
    lift = openings["session-order lift"]
    assert lift.loc[0.0] == pytest.approx(1.0, abs=0.05)
    assert lift.loc[1.0] > lift.loc[0.0] + 0.1
    real = describe.MEMORY_REFERENCE["session_order_lift"]["real"]
    assert lift.loc[0.0] < real < lift.loc[1.0]


def test_order_is_worth_more_to_the_oracle_as_memory_grows(openings):
    """'At session openings the oracle's lead over the best order-free baseline ... grows'"""
    tells = openings["order tells the oracle"]
    assert tells.loc[1.0] > tells.loc[0.0]
    assert (tells > 0).all()


def test_what_the_state_adds_grows_with_what_order_tells(openings):
    """'What the recurrent state adds at session openings grows with it'; 'The state does pick
    up order when the data have it.'"""
    adds = openings["recurrence adds"]
    assert adds.loc[1.0] > adds.loc[0.0]
    assert openings["order tells the oracle"].corr(adds, method="spearman") > 0
    assert trajectories.part_verdict(_adds(openings.loc[1.0])) == "helps"


def test_the_state_takes_a_small_part_of_what_order_tells(openings):
    """'it picks up a small part of it'; 'this budget leaves most of what order tells on the
    table'"""
    row = openings.loc[1.0]
    assert row["recurrence adds"] < 0.25 * row["order tells the oracle"]


def test_over_all_points_the_effect_is_smaller(sweep, openings):
    """'Over all test points the effect is smaller still'"""
    everywhere = sweep.xs("all points", level="points")
    assert everywhere.loc[1.0, "recurrence adds"] < openings.loc[1.0, "recurrence adds"]


def test_at_openings_the_lstm_needs_memory_to_pass_the_counts(openings):
    """'at session openings the LSTM is below the best order-free baseline at memory 0 and above
    it at memory 1'"""
    assert openings.loc[0.0, "LSTM"] < openings.loc[0.0, "best order-free baseline"]
    assert openings.loc[1.0, "LSTM"] > openings.loc[1.0, "best order-free baseline"]


def test_over_all_points_the_zeroed_model_is_far_above_the_order_free_baselines(sweep):
    """Question 3: 'over all test points it is far above the order-free baselines'"""
    everywhere = sweep.xs("all points", level="points")
    assert (everywhere["LSTM, recurrent state zeroed"]
            > 1.2 * everywhere["best order-free baseline"]).all()
