"""Claims of chapter 3 (the MLP interest formula), checked with the chapter's own library calls.

The chapter's parameters are used unchanged (seed 0, 5,000 simulated users,
``next_window.MLP_DEFAULTS``), on the CPU, so these are the numbers the book prints when built
without a GPU. The chapter and these tests train the MLP with the same call,
``next_window.train_interest_mlp``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    """The chapter's set-up, MLP and linear model, trained by the chapter's calls."""
    with pytest.MonkeyPatch.context() as patch, threadpool_limits(1):
        patch.setenv("INTEREST_LIB_CACHE", "off")
        setup = protocol.book_setup(il.simulate(n_users=N_USERS, seed=SEED))
        run = next_window.train_interest_mlp(setup, seed=SEED, device="cpu")
        linear, linear_history = next_window.fit_softmax_regression(
            run["inputs"], setup.n_categories, seed=SEED, device="cpu")
        others = {"logistic regression": next_window.mlp_logits(linear, run["inputs"].x_test, "cpu")}
        scores = next_window.next_day_scores(setup, run, "test", others=others)
    test_ex = run["inputs"].test_ex
    ndcg = {name: metrics.ndcg_at_k(matrix, test_ex.targets, 10, per_user=True)
            for name, matrix in scores.items()}
    return {"setup": setup, "run": run, "ndcg": ndcg, "linear_history": linear_history}


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


def test_mlp_beats_popularity_on_the_test_day(chapter):
    ndcg = chapter["ndcg"]
    diff = metrics.bootstrap_diff_ci(ndcg["MLP"], ndcg["global popularity"], seed=SEED)
    assert diff.low > 0, f"MLP - popularity: {diff}"
    assert not metrics.is_tie(np.nanmean(ndcg["MLP"]), np.nanmean(ndcg["global popularity"]))


def test_mlp_beats_logistic_regression_on_the_same_inputs(chapter):
    ndcg = chapter["ndcg"]
    diff = metrics.bootstrap_diff_ci(ndcg["MLP"], ndcg["logistic regression"], seed=SEED)
    assert diff.low > 0, f"MLP - logistic regression: {diff}"
    # trained like the MLP: early stopping on the validation day kept one of the epochs run
    history = chapter["linear_history"]
    assert 1 <= history.best_epoch <= history.epochs <= next_window.MLP_DEFAULTS["epochs"]


def test_own_history_is_the_best_predictor_of_the_test_day(chapter):
    """The MLP and logistic regression lose to the own history; people are loyal to categories."""
    ndcg = chapter["ndcg"]
    for method in ("MLP", "logistic regression"):
        diff = metrics.bootstrap_diff_ci(ndcg[method], ndcg["own history"], seed=SEED)
        assert diff.high < 0, f"{method} - own history: {diff}"
    means = {name: float(np.nanmean(values)) for name, values in ndcg.items()}
    assert max(means, key=means.get) == "own history"
    # loyalty: a user's test day falls in categories they had visited before far more than the
    # crowd's popularity of those categories would give
    test_ex = chapter["run"]["inputs"].test_ex
    assert (next_window.repeat_share(test_ex)
            > 2 * next_window.seen_popularity_share(chapter["setup"], test_ex))


def test_light_users_exercise_finds_what_its_solution_says(chapter):
    """ex-mlp-light-users: the MLP loses to the own history in every third of the users by
    activity, least for the light users and most for the heavy ones."""
    ndcg, test_ex = chapter["ndcg"], chapter["run"]["inputs"].test_ex
    activity = np.expm1(test_ex.behavior_totals).sum(axis=1)
    third = pd.qcut(activity, 3, labels=["light", "medium", "heavy"])
    diffs = {}
    for name in ("light", "medium", "heavy"):
        mask = np.asarray(third == name)
        diffs[name] = metrics.bootstrap_diff_ci(ndcg["MLP"][mask], ndcg["own history"][mask],
                                                seed=SEED)
        assert diffs[name].high < 0, (name, diffs[name])
    assert diffs["light"].estimate > diffs["medium"].estimate > diffs["heavy"].estimate


def test_first_layer_columns_recover_the_segments_where_data_suffice(chapter):
    setup, run = chapter["setup"], chapter["run"]
    embedding = run["model"].hidden_layer.weight.detach().numpy().T
    everywhere = next_window.truth_agreement(embedding, setup)
    frequent = next_window.truth_agreement(embedding, setup, top=100)
    # the chapter's all-pairs number, computed its way
    truth = setup.sim.truth
    profile = truth.emission[:, truth.category_index(setup.category_ids)].T
    assert everywhere == pytest.approx(windows.similarity_agreement(
        windows.cosine_similarity_matrix(embedding), windows.cosine_similarity_matrix(profile)))
    # positive over all pairs ("only"), higher among the frequent categories ("rises to")
    assert 0 < everywhere < frequent
    # popularity is steep: the 100 most frequent categories carry most of the training events
    counts = setup.split.train["category_id"].value_counts()
    assert counts.iloc[:100].sum() / counts.sum() > 0.5


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


def test_scaling_exercise_finds_what_its_solution_says(chapter):
    """ex-mlp-scaling: raw counts, log1p and standardised log1p inputs tie on the validation day
    by the book's rule; raw counts saturate the largest share of the interest vector."""
    import dataclasses

    setup, inputs = chapter["setup"], chapter["run"]["inputs"]
    split = setup.split
    vocab = il.features.CategoryVocabulary(setup.category_ids)
    users = il.features.UserVocabulary.fit(split.train)

    def saturated(model, x):
        with torch.no_grad():
            v = model.interest(torch.tensor(x)).numpy()
        return float(((v < 0.01) | (v > 0.99)).mean())

    best = {"scaled": chapter["run"]["history"].best_valid}
    share = {"scaled": saturated(chapter["run"]["model"], inputs.x_valid)}
    with threadpool_limits(1):
        for transform in ("none", "log1p"):
            tr = windows.next_window_examples(split.train, vocab, users, inputs.ends,
                                              weights=inputs.weights, transform=transform)
            va = windows.next_window_examples(split.history("test"), vocab, users,
                                              [split.train_end], weights=inputs.weights,
                                              transform=transform)
            unscaled = dataclasses.replace(inputs, x_fit=tr.subset(tr.active).inputs,
                                           x_valid=va.inputs)
            model, history = next_window.fit_interest_mlp(unscaled, setup.n_categories,
                                                          seed=SEED, device="cpu")
            best[transform], share[transform] = history.best_valid, saturated(model, va.inputs)
    top = max(best.values())
    assert all(metrics.is_tie(value, top) for value in best.values()), best
    assert max(share, key=share.get) == "none", share
