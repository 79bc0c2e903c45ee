"""Claims of chapter 3 (the MLP interest formula), checked with the chapter's own calls.

The chapter's parameters are used unchanged (seed 0, 5,000 simulated users, hidden 128, dropout
0.1, at most 30 epochs), on the CPU, so these are the numbers the book prints when built without
a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from torch import nn

import interest_lib as il
from interest_lib import baselines, features, interest_mlp, metrics, training, windows
from interest_lib.data.split import VALID_END, split_by_time

SEED = 0
N_USERS = 5000
HIDDEN = 128
DROPOUT = 0.1
EPOCHS = 30


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
    """The chapter's data preparation and MLP training, step by step."""
    torch.set_num_threads(1)
    with threadpool_limits(1):
        sim = il.simulate(n_users=N_USERS, seed=SEED)
        events = sim.events
        split = split_by_time(events)
        vocab = features.CategoryVocabulary.fit(split.train)
        users = features.UserVocabulary.fit(split.train)

        # the weighting that forecasts the validation day better (as in the chapter)
        valid_target = features.next_window_targets(
            split.history("test"), vocab, users, split.train_end, split.valid_end
        )
        score = {}
        for name, w in [("all ones", features.UNIT_WEIGHTS), ("funnel", features.BEHAVIOR_WEIGHTS)]:
            rows = features.behavior_matrix(split.train, vocab, users, weights=w).normalize_rows("l1")
            score[name] = metrics.ndcg_at_k(rows.toarray(), valid_target, 10)
        input_weights = (
            features.UNIT_WEIGHTS if score["all ones"] >= score["funnel"] else features.BEHAVIOR_WEIGHTS
        )

        ends = windows.window_ends(split.train_end, n_windows=6)
        train_ex = windows.next_window_examples(
            split.train, vocab, users, ends, weights=input_weights
        )
        valid_ex = windows.next_window_examples(
            split.history("test"), vocab, users, [split.train_end], weights=input_weights
        )
        test_ex = windows.next_window_examples(
            events, vocab, users, [split.valid_end], weights=input_weights
        )
        fit_ex = train_ex.subset(train_ex.active)
        scaler = StandardScaler().fit(fit_ex.inputs)
        x_fit, x_valid, x_test = (
            scaler.transform(ex.inputs).astype(np.float32) for ex in (fit_ex, valid_ex, test_ex)
        )

        def loss_fn(model, batch):
            inputs, target = batch
            return interest_mlp.soft_cross_entropy(model(inputs), target)

        x_valid_t = torch.tensor(x_valid)

        def valid_ndcg(model):
            return metrics.ndcg_at_k(model(x_valid_t).numpy(), valid_ex.targets, 10)

        training.set_seed(SEED)
        mlp = interest_mlp.InterestMLP(len(vocab), hidden=HIDDEN, dropout=DROPOUT)
        history = training.fit(
            mlp, (torch.tensor(x_fit), torch.tensor(fit_ex.targets)), loss_fn=loss_fn,
            valid_fn=valid_ndcg, epochs=EPOCHS, lr=3e-3, weight_decay=1e-2, patience=5,
            device="cpu", seed=SEED, progress=False,
        )  # fmt: skip
        with torch.no_grad():
            mlp_scores = mlp(torch.tensor(x_test)).numpy()
    pop = baselines.popularity_distribution(split.train, vocab.ids, test_ex.user_ids)
    hist = baselines.user_history_distribution(
        events, vocab.ids, test_ex.user_ids, end=split.valid_end
    )
    return {
        "sim": sim,
        "vocab": vocab,
        "mlp": mlp,
        "history": history,
        "test_ex": test_ex,
        "ndcg": {
            name: metrics.ndcg_at_k(scores, test_ex.targets, 10, per_user=True)
            for name, scores in [("MLP", mlp_scores), ("popularity", pop), ("own history", hist)]
        },
    }


def test_training_uses_only_the_training_days(chapter):
    ex = chapter["test_ex"]
    assert np.all(ex.window_end == VALID_END)
    assert chapter["history"].best_epoch is not None
    assert chapter["history"].epochs <= EPOCHS


@pytest.mark.parametrize("baseline", ["popularity", "own history"])
def test_mlp_beats_baseline_on_the_test_day(chapter, baseline):
    ndcg = chapter["ndcg"]
    diff = metrics.bootstrap_diff_ci(ndcg["MLP"], ndcg[baseline], seed=SEED)
    assert diff.low > 0, f"MLP - {baseline}: {diff}"


def test_first_layer_columns_recover_the_segments(chapter):
    truth = chapter["sim"].truth
    profile = truth.emission[:, truth.category_index(chapter["vocab"].ids)].T
    embedding = chapter["mlp"].hidden_layer.weight.detach().numpy().T
    agreement = windows.similarity_agreement(
        windows.cosine_similarity_matrix(embedding),
        windows.cosine_similarity_matrix(profile),
    )
    assert agreement > 0.5


def test_chapter_7_leaderboard_uses_this_very_model(chapter):
    """next_window.train_interest_mlp (chapter 7's MLP entry) repeats this chapter's training."""
    from interest_lib import next_window, protocol

    setup = protocol.book_setup(chapter["sim"])
    with threadpool_limits(1):
        out = next_window.train_interest_mlp(setup, seed=SEED, device="cpu", store=False,
                                             hidden=HIDDEN, dropout=DROPOUT, epochs=EPOCHS)
    test_ex = chapter["test_ex"]
    np.testing.assert_array_equal(out["user_ids"], test_ex.user_ids)
    assert out["history"].best_epoch == chapter["history"].best_epoch
    ndcg = metrics.ndcg_at_k(out["scores"], test_ex.targets, 10, per_user=True)
    np.testing.assert_allclose(ndcg, chapter["ndcg"]["MLP"], atol=1e-6)
