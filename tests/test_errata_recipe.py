"""Unit tests of the errata appendix's recipe (:mod:`interest_lib.recipes.errata`)."""

from __future__ import annotations

import numpy as np

import interest_lib as il
from interest_lib.recipes import errata


def test_sampled_hit_rates_of_a_perfect_and_a_useless_score():
    target = np.arange(10) % 5
    perfect = np.eye(5)[target]
    rng = np.random.default_rng(0)
    assert errata.sampled_hit_rates(perfect, target, 3, rng) == (1.0, 1.0)
    worst = 1.0 - perfect
    hr1, hr10 = errata.sampled_hit_rates(worst, target, 3, np.random.default_rng(0))
    assert hr1 == 0.0 and hr10 == 1.0  # fewer than ten negatives: always in the top ten


def test_protocol_comparison_reports_four_hit_rates():
    rng = np.random.default_rng(0)
    scores = rng.random((50, 30))
    target = rng.integers(0, 30, size=50)
    table = errata.protocol_comparison(scores, target, 5, np.random.default_rng(1))
    assert len(table) == 4 and table.between(0, 1).all()
    assert table.iloc[0] <= table.iloc[1]  # HR@1 <= HR@10 on the full ranking


def test_popular_items_keeps_the_most_viewed_per_category():
    import pandas as pd

    events = pd.DataFrame({"category_id": [1, 1, 1, 2, 2, 3], "item_id": [7, 7, 8, 9, 9, 4]})
    top = errata.popular_items(events, [1, 2], per_category=1)
    assert top[["category_id", "item_id", "views"]].values.tolist() == [[1, 7, 2], [2, 9, 2]]


def test_pairs_and_a_tiny_model_learn_the_next_category():
    sim = il.simulate(n_users=200, seed=2)
    split = il.split_by_time(sim.events)
    vocab = il.features.CategoryVocabulary.fit(split.train)
    x_tr, y_tr, x_te, y_te = errata.category_pairs(sim.events, vocab, split,
                                                   np.random.default_rng(0), max_train=2000)
    assert len(x_tr) == len(y_tr) <= 2000 and len(x_te) == len(y_te) > 0
    C = len(vocab.ids)
    loss_copy, _ = errata.train_pair_model(x_tr, x_tr, x_te, y_te, C, seed=0, epochs=40)
    loss_next, _ = errata.train_pair_model(x_tr, y_tr, x_te, y_te, C, seed=0, epochs=40)
    assert loss_copy < loss_next  # copying the input is the easier task
    X_fit, y_fit, X_test, y_test = errata.purchase_halves(split, vocab, np.unique(split.train["user_id"]))
    assert X_fit.shape[1] == X_test.shape[1] == C and len(y_fit) == len(X_fit)


def test_copy_check_puts_the_copier_beside_the_repeat_last_rule():
    sim = il.simulate(n_users=200, seed=2)
    split = il.split_by_time(sim.events)
    vocab = il.features.CategoryVocabulary.fit(split.train)
    x_tr, y_tr, x_te, y_te = errata.category_pairs(sim.events, vocab, split,
                                                   np.random.default_rng(0), max_train=2000)
    table = errata.copy_check(x_tr, y_tr, x_te, y_te, len(vocab.ids), seed=0)
    loss, top_is_input, ndcg = (table.iloc[:, j].to_numpy() for j in range(3))
    assert loss[0] < loss[2]  # copying is easier than predicting
    assert top_is_input[1] == 1.0  # the rule always puts the input first
    assert top_is_input[0] > top_is_input[2]  # the copier puts it first more often
    assert np.isnan(loss[1]) and np.isfinite(ndcg).all()
    _, ndcg_next = errata.train_pair_model(x_tr, y_tr, x_te, y_te, len(vocab.ids), seed=0)
    assert ndcg[2] == ndcg_next  # the same fit as train_pair_model


def test_confusion_scores_agree_with_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    tp, fp, fn, tn = 10, 30, 10, 950
    y_true = np.array([1] * tp + [0] * fp + [1] * fn + [0] * tn)
    y_pred = np.array([1] * tp + [1] * fp + [0] * fn + [0] * tn)
    scores = errata.confusion_scores(tp, fp, fn, tn)
    assert np.isclose(scores["accuracy"], accuracy_score(y_true, y_pred))
    assert np.isclose(scores["precision"], precision_score(y_true, y_pred))
    assert np.isclose(scores["recall"], recall_score(y_true, y_pred))
    assert np.isclose(scores["F1 (precision, recall)"], f1_score(y_true, y_pred))
    # with rare positives accuracy exceeds precision, and the article's "F1" overstates F1
    assert scores['"F1" (accuracy, recall)'] > scores["F1 (precision, recall)"]


def test_choosing_the_epoch_on_the_test_set_reports_more_than_chance():
    result = errata.early_stopping_leak(repeats=20, seed=1)
    on_valid = result["test, epoch chosen on validation"]
    on_test = result["test, epoch chosen on the test set"]
    assert on_test > on_valid and on_test > 0.5  # labels are coin flips: 0.5 is the truth
    assert result["training rows"] > on_test  # the training rows overstate it most
