"""Claims of chapter 3 (the MLP interest formula), checked with the chapter's own library calls.

The chapter's parameters are used unchanged (seed 0, 5,000 simulated users,
``next_window.MLP_DEFAULTS``), on the CPU, so these are the numbers the book prints when built
without a GPU. The chapter and these tests train the MLP with the same call,
``next_window.train_interest_mlp``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits
from torch import nn

import interest_lib as il
from interest_lib import metrics, next_window, protocol, windows
from interest_lib.data.split import VALID_END

SEED = 0
N_USERS = 5000


def test_worked_example_is_wrong_and_the_correction_agrees_with_torch():
    W = np.array([[0.1, 0.4, 0.1], [0.5, 0.3, 0.5], [0.4, 0.2, 0.5]])
    b = np.array([0.1, 0.2, 0.3])
    x_article = np.array([1.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="mismatch"):
        W @ x_article + b  # the article's shapes: (3, 3) @ (4,)
    z = W @ x_article[:3] + b
    np.testing.assert_allclose(np.maximum(0.0, z), [0.3, 1.2, 1.2], atol=1e-12)
    sigmoid = 1.0 / (1.0 + np.exp(-z))
    for printed_vector in ([0.6, 0.9, 0.7],):
        assert not np.allclose(np.maximum(0.0, z), printed_vector, atol=0.05)
        assert not np.allclose(sigmoid, printed_vector, atol=0.05)
    layer = nn.Linear(3, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(W))
        layer.bias.copy_(torch.tensor(b))
        v = torch.sigmoid(layer(torch.tensor(x_article[:3], dtype=torch.float32))).numpy()
    np.testing.assert_allclose(v, sigmoid, atol=1e-6)


@pytest.fixture(scope="module")
def chapter():
    """The chapter's set-up and MLP, trained by the chapter's call."""
    with pytest.MonkeyPatch.context() as patch, threadpool_limits(1):
        patch.setenv("INTEREST_LIB_CACHE", "off")
        setup = protocol.book_setup(il.simulate(n_users=N_USERS, seed=SEED))
        run = next_window.train_interest_mlp(setup, seed=SEED, device="cpu")
        scores = next_window.next_day_scores(setup, run, "test")
    test_ex = run["inputs"].test_ex
    ndcg = {name: metrics.ndcg_at_k(matrix, test_ex.targets, 10, per_user=True)
            for name, matrix in scores.items()}
    return {"setup": setup, "run": run, "ndcg": ndcg}


def test_the_network_gets_the_weighting_that_forecasts_the_validation_day_better(chapter):
    forecasts = chapter["run"]["forecasts"]
    means = {name: float(np.nanmean(values)) for name, values in forecasts.items()}
    winner = max(means, key=means.get)
    assert chapter["run"]["weights"] == dict(next_window.WEIGHTINGS[winner])
    assert next_window.better_weighting(forecasts) == winner


def test_training_uses_only_the_training_days(chapter):
    setup, run = chapter["setup"], chapter["run"]
    inputs = run["inputs"]
    # every training target window ends by the end of training, the test predicts the test day
    assert np.all(inputs.train_ex.window_end + il.schema.DAY_S <= setup.split.train_end)
    assert np.all(inputs.valid_ex.window_end == setup.split.train_end)
    assert np.all(inputs.test_ex.window_end == VALID_END)
    assert len(inputs.ends) == next_window.MLP_DEFAULTS["n_windows"]
    # the standardiser is fitted on the training examples only
    np.testing.assert_allclose(inputs.scaler.mean_,
                               inputs.fit_ex.inputs.astype(np.float64).mean(axis=0), rtol=1e-9)
    assert inputs.scaler.n_samples_seen_ == len(inputs.fit_ex)
    assert run["history"].best_epoch is not None
    assert run["history"].epochs <= next_window.MLP_DEFAULTS["epochs"]


@pytest.mark.parametrize("baseline", ["global popularity", "own history"])
def test_mlp_beats_baseline_on_the_test_day(chapter, baseline):
    ndcg = chapter["ndcg"]
    diff = metrics.bootstrap_diff_ci(ndcg["MLP"], ndcg[baseline], seed=SEED)
    assert diff.low > 0, f"MLP - {baseline}: {diff}"


def test_first_layer_columns_recover_the_segments(chapter):
    truth = chapter["setup"].sim.truth
    profile = truth.emission[:, truth.category_index(chapter["setup"].category_ids)].T
    embedding = chapter["run"]["model"].hidden_layer.weight.detach().numpy().T
    agreement = windows.similarity_agreement(
        windows.cosine_similarity_matrix(embedding),
        windows.cosine_similarity_matrix(profile),
    )
    assert agreement > 0.5


def test_the_mlp_scores_are_a_distribution_per_user(chapter):
    run = chapter["run"]
    np.testing.assert_array_equal(run["user_ids"], run["inputs"].test_ex.user_ids)
    np.testing.assert_allclose(run["scores"].sum(axis=1), 1.0, rtol=1e-5)
    # the softmax keeps the logits' ranking: the same NDCG@10
    ndcg = metrics.ndcg_at_k(run["scores"], run["inputs"].test_ex.targets, 10)
    assert ndcg == pytest.approx(float(np.nanmean(chapter["ndcg"]["MLP"])), abs=1e-9)
