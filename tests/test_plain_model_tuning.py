"""Chapter 6's plain model: its settings are the ones the validation grid chose, and the stored
comparison with GRU4Rec says what the chapter reads from it.

The grids run for half an hour (``benchmarks/tune_plain_model.py``); these tests read the files
the script wrote and check them against the library and the chapter, and run the script's
pieces on a small log.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from benchmark_scripts import load_benchmark
from toc_notebooks import parameters_cell

import interest_lib as il
from interest_lib import benchmark_files, leaderboard, metrics, protocol, recurrent, trajectories

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    return load_benchmark("tune_plain_model")


def _stored(name: str) -> dict:
    record = benchmark_files.read_benchmark(name, ROOT)
    assert record is not None, f"benchmarks/results/{name} is missing"
    return record


def _fastest_near_best(rows: list[dict], tolerance: float) -> dict:
    best = max(row["valid NDCG@10"] for row in rows)
    near = [row for row in rows if row["valid NDCG@10"] >= best - tolerance]
    return min(near, key=lambda row: row["best epoch"] * row["s / epoch"])


def test_the_plain_defaults_are_the_setting_the_validation_grid_chose():
    """``PLAIN_DEFAULTS``: 'the setting that trains fastest among those within 0.001 of the best
    validation NDCG@10; epochs is that setting's best epoch'."""
    grid = _stored("plain_model_grid.json")
    chosen = _fastest_near_best(grid["rows"], grid["tolerance"])
    assert chosen == grid["chosen"]
    for name in ("cell", "hidden", "lr", "batch_size"):
        assert recurrent.PLAIN_DEFAULTS[name] == chosen[name], name
    assert recurrent.PLAIN_DEFAULTS["epochs"] == chosen["best epoch"]
    assert len(grid["rows"]) == 16 and grid["seed"] == 0 and grid["n_users"] == 5000


def test_the_test_day_compares_the_chosen_settings():
    reference = _stored("plain_model_reference.json")
    assert _fastest_near_best(reference["rows"], reference["tolerance"]) == reference["chosen"]
    test = _stored(trajectories.PLAIN_TUNING_FILE)
    assert test["reference"] == {"hidden": reference["chosen"]["hidden"],
                                 "lr": reference["chosen"]["lr"]}
    assert test["plain_settings"] == recurrent.PLAIN_DEFAULTS
    assert test["chapter_epochs"] == parameters_cell("06_lstm_trajectories")["plain_epochs"]


def test_the_plain_model_is_above_the_tuned_gru4rec_on_the_test_day():
    """The chapter's sentence: the plain model, with its tuned settings and with the chapter's
    budget, is 'above' the tuned GRU4Rec (the word is the paired interval's)."""
    table = trajectories.gru4rec_comparison(_stored(trajectories.PLAIN_TUNING_FILE))
    *plain, reference = table.index
    assert len(plain) == 2
    for model in plain:
        row = table.loc[model]
        difference = metrics.ConfidenceInterval(row["Δ vs GRU4Rec"], row["Δ low"], row["Δ high"])
        assert leaderboard.position(difference) == "above", model
        assert row["Δ vs GRU4Rec"] == pytest.approx(
            row["test NDCG@10"] - table.loc[reference, "test NDCG@10"], abs=1e-9)
    assert table.loc[reference, ["Δ vs GRU4Rec", "Δ low", "Δ high"]].abs().max() == 0


def test_without_the_file_the_comparison_is_empty(tmp_path):
    assert benchmark_files.read_benchmark(trajectories.PLAIN_TUNING_FILE, tmp_path) is None
    assert trajectories.gru4rec_comparison(None).empty


def test_the_choice_rule_prefers_the_faster_of_two_near_ties(script):
    rows = [{"valid NDCG@10": 0.5000, "best epoch": 8, "s / epoch": 10.0},
            {"valid NDCG@10": 0.4995, "best epoch": 3, "s / epoch": 12.0},
            {"valid NDCG@10": 0.4800, "best epoch": 1, "s / epoch": 1.0}]
    assert script.choose(rows) is rows[1]
    assert script.choose(rows[:1] + rows[2:]) is rows[0]


def test_the_reference_gru4rec_trains_and_scores_on_a_small_log(script):
    setup = protocol.book_setup(il.simulate(n_users=80, seed=3))
    model, history = script.fit_reference(setup, epochs=1, hidden=8, embedding_dim=4)
    assert history.epochs == 1 and np.isfinite(history.train_loss).all()
    categories = torch.tensor([[0, 3, -1, 2]])
    logits = model(categories, torch.zeros_like(categories), torch.tensor([4]))
    assert logits.shape == (1, 4, setup.n_categories)
    assert torch.allclose(logits[0, 0], model(categories[:, :1], categories[:, :1] * 0,
                                              torch.tensor([1]))[0, 0], atol=1e-6)
