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
    # the article's W and b (000), its printed v, and the chapter's stand-in X (three users, four
    # behaviour columns)
    W = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    b = np.array([0.1, 0.2, 0.3])
    X = np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    printed = np.array([0.6, 0.9, 0.7])

    def relu(z):
        return np.maximum(0.0, z)

    # fault 1: a 3 x 3 matrix cannot multiply a four-column row
    with pytest.raises(ValueError, match="mismatch"):
        W @ X[0] + b
    # fault 2: v has one entry per row of W, three
    assert (W @ X[0, :3] + b).shape == (3,)
    # fault 3 and 4: the lines, each from another user, give 0.3, 1.2, 1.2 under ReLU, not the
    # printed numbers
    lines = np.array([W[i] @ X[i, :3] + b[i] for i in range(3)])
    np.testing.assert_allclose(relu(lines), [0.3, 1.2, 1.2], atol=1e-12)
    assert not np.allclose(relu(lines), printed, atol=0.05)
    # no x of one user gives the printed v: W has rank 2 and every z = Wx + b has z1 - 2 z2 + z3 = 0
    assert np.linalg.matrix_rank(W) == 2
    rng = np.random.default_rng(0)
    for x in rng.uniform(0, 5, size=(100, 3)):
        assert (W @ x + b) @ [1, -2, 1] == pytest.approx(0.0, abs=1e-12)
    assert abs(printed @ [1, -2, 1]) > 0.1  # positive entries: ReLU(z) = printed needs z = printed
    assert np.all(printed > 0)
    logit = np.log(printed / (1 - printed))  # nor does the sigmoid give it
    assert abs(logit @ [1, -2, 1]) > 0.1
    # the corrected example: one v per user, the article's lines are the diagonal
    V = relu(X[:, :3] @ W.T + b)
    np.testing.assert_allclose(np.diag(V), relu(lines))
    layer = nn.Linear(3, 3, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(W))
        layer.bias.copy_(torch.tensor(b))
        v = torch.relu(layer(torch.tensor(X[:, :3]))).numpy()
    np.testing.assert_allclose(v, V, atol=1e-12)


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


def test_hidden_size_exercise_finds_what_its_solution_says(chapter):
    """ex-mlp-hidden: the validation score rises with the hidden size, less from 32 to 256 units
    than from 8 to 32; the agreement with the true similarity dips at 32 and is highest at 256."""
    setup = chapter["setup"]
    truth = setup.sim.truth
    true_similarity = windows.cosine_similarity_matrix(
        truth.emission[:, truth.category_index(setup.category_ids)].T)
    best, readable = {}, {}
    with threadpool_limits(1):
        for size in (8, 32, 256):
            trial = next_window.train_interest_mlp(setup, seed=SEED, device="cpu", store=False,
                                                   hidden=size)
            columns = trial["model"].hidden_layer.weight.detach().numpy().T
            best[size] = trial["history"].best_valid
            readable[size] = windows.similarity_agreement(
                windows.cosine_similarity_matrix(columns), true_similarity)
    assert best[8] < best[32] < best[256]
    assert best[256] - best[32] < best[32] - best[8]
    assert readable[32] < readable[8] < readable[256]
