"""Tests of interest_lib.evaluation.metrics: hand-computed cases, agreement with scikit-learn, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import (
    f1_score,
    label_ranking_average_precision_score,
    ndcg_score,
    roc_auc_score,
    top_k_accuracy_score,
)

from interest_lib import metrics
from interest_lib.evaluation.metrics import (
    ConfidenceInterval,
    accuracy,
    auc,
    bootstrap_ci,
    bootstrap_diff_ci,
    hit_rate_at_k,
    is_tie,
    macro_f1,
    mrr,
    ndcg_at_k,
    ranking_report,
    relative_difference,
    target_rank,
)

# --------------------------------------------------------------------------------------------
# hand-computed examples
# --------------------------------------------------------------------------------------------

# one user, four items; the ranking is item 1, item 2, item 3, item 0
SCORES = np.array([[0.1, 0.4, 0.3, 0.2]])


def test_target_rank_by_hand():
    assert target_rank(SCORES, np.array([1])).tolist() == [0]
    assert target_rank(SCORES, np.array([2])).tolist() == [1]
    assert target_rank(SCORES, np.array([0])).tolist() == [3]


def test_ties_rank_lower_index_first():
    constant = np.full((3, 4), 0.5)
    # a constant score matrix degenerates to index order
    assert target_rank(constant, np.array([0, 2, 3])).tolist() == [0, 2, 3]
    scores = np.array([[0.2, 0.9, 0.9, 0.1]])
    assert target_rank(scores, np.array([1])).tolist() == [0]
    assert target_rank(scores, np.array([2])).tolist() == [1]
    # the same rule holds for relevance matrices
    relevance = np.array([[0.0, 0.0, 1.0, 0.0]])
    assert target_rank(scores, relevance).tolist() == [1.0]


def test_single_target_metrics_by_hand():
    targets = np.array([2])  # rank 1
    assert hit_rate_at_k(SCORES, targets, k=1) == 0.0
    assert hit_rate_at_k(SCORES, targets, k=2) == 1.0
    assert accuracy(SCORES, targets) == 0.0
    assert accuracy(SCORES, np.array([1])) == 1.0
    assert ndcg_at_k(SCORES, targets, k=10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(SCORES, targets, k=1) == 0.0
    assert mrr(SCORES, targets) == pytest.approx(0.5)


def test_several_users_average():
    scores = np.array([[0.1, 0.4, 0.3, 0.2], [0.9, 0.1, 0.2, 0.3]])
    targets = np.array([0, 0])  # ranks 3 and 0
    assert mrr(scores, targets) == pytest.approx((1 / 4 + 1) / 2)
    assert hit_rate_at_k(scores, targets, k=3) == pytest.approx(0.5)
    assert hit_rate_at_k(scores, targets, k=3, per_user=True).tolist() == [0.0, 1.0]


def test_graded_ndcg_by_hand():
    scores = np.array([[3.0, 2.0, 1.0]])
    relevance = np.array([[0.0, 1.0, 2.0]])
    dcg = 0 + 1 / math.log2(3) + 2 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(scores, relevance, k=3) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(scores, relevance, k=1) == 0.0
    assert mrr(scores, relevance) == pytest.approx(0.5)
    assert hit_rate_at_k(scores, relevance, k=1) == 0.0
    assert hit_rate_at_k(scores, relevance, k=2) == 1.0


def test_out_of_set_target_is_a_miss():
    targets = np.array([-1, 1])
    assert target_rank(SCORES.repeat(2, axis=0), targets).tolist() == [4, 0]
    per_user = ranking_report(SCORES.repeat(2, axis=0), targets, ks=(1, 4), per_user=True)
    assert per_user.iloc[0].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]
    assert per_user.iloc[1].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]


def test_users_without_relevant_items_are_left_out():
    scores = np.array([[0.1, 0.4, 0.3], [0.3, 0.2, 0.1]])
    relevance = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert np.isnan(ndcg_at_k(scores, relevance, per_user=True)[1])
    assert ndcg_at_k(scores, relevance) == 1.0
    assert hit_rate_at_k(scores, relevance, k=1) == 1.0
    assert mrr(scores, relevance) == 1.0
    assert math.isnan(mrr(scores[1:], relevance[1:]))


def test_ranking_report_keys_and_agreement():
    rng = np.random.default_rng(3)
    scores = rng.random((40, 12))
    targets = rng.integers(0, 12, size=40)
    report = ranking_report(scores, targets)
    assert list(report) == [
        "HR@1",
        "NDCG@1",
        "HR@5",
        "NDCG@5",
        "HR@10",
        "NDCG@10",
        "HR@20",
        "NDCG@20",
        "MRR",
    ]
    assert report["HR@5"] == pytest.approx(hit_rate_at_k(scores, targets, k=5))
    assert report["NDCG@10"] == pytest.approx(ndcg_at_k(scores, targets, k=10))
    assert report["MRR"] == pytest.approx(mrr(scores, targets))
    assert report["HR@20"] == 1.0  # k beyond the 12 items covers everything
    frame = ranking_report(scores, targets, per_user=True)
    assert frame.shape == (40, 9)


def test_input_errors():
    with pytest.raises(ValueError, match="NaN"):
        hit_rate_at_k(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="n_items"):
        hit_rate_at_k(SCORES, np.array([4]))
    with pytest.raises(ValueError, match="shape"):
        hit_rate_at_k(SCORES, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        hit_rate_at_k(SCORES, np.array([0.0]))
    with pytest.raises(ValueError, match="k must"):
        hit_rate_at_k(SCORES, np.array([0]), k=0)
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k(SCORES, np.array([[0.0, -1.0, 0.0, 0.0]]))


def test_macro_f1_by_hand():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    # class 0: 2*1/(2+1+1) = 0.5; class 1: 4/5; class 2: 0
    assert macro_f1(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    # a fixed label set adds class 3, never seen nor predicted, which scores 0
    assert macro_f1(y_true, y_pred, n_classes=4) == pytest.approx((0.5 + 0.8) / 4)
    with pytest.raises(ValueError, match="outside"):
        macro_f1(y_true, y_pred, n_classes=2)


def test_auc_by_hand():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert auc(y, s) == pytest.approx(3 / 4)
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5  # a tie counts one half
    with pytest.raises(ValueError, match="positive and one negative"):
        auc(np.array([1, 1]), np.array([0.1, 0.2]))


# --------------------------------------------------------------------------------------------
# agreement with scikit-learn on continuous (tie-free) scores
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_ndcg_matches_sklearn_graded(k):
    rng = np.random.default_rng(k)
    scores = rng.normal(size=(200, 50))
    relevance = rng.random((200, 50)) * (rng.random((200, 50)) < 0.1)
    relevance[relevance.sum(axis=1) == 0, 0] = 1.0  # scikit-learn scores empty rows 0; we skip them
    assert ndcg_at_k(scores, relevance, k=k) == pytest.approx(
        ndcg_score(relevance, scores, k=k), abs=1e-9
    )


@pytest.mark.parametrize("k", [1, 5, 20])
def test_single_target_matches_sklearn(k):
    rng = np.random.default_rng(10 + k)
    n_users, n_items = 300, 40
    scores = rng.normal(size=(n_users, n_items))
    targets = rng.integers(0, n_items, size=n_users)
    one_hot = np.eye(n_items)[targets]
    assert ndcg_at_k(scores, targets, k=k) == pytest.approx(
        ndcg_score(one_hot, scores, k=k), abs=1e-9
    )
    assert ndcg_at_k(scores, one_hot, k=k) == pytest.approx(
        ndcg_score(one_hot, scores, k=k), abs=1e-9
    )
    assert hit_rate_at_k(scores, targets, k=k) == pytest.approx(
        top_k_accuracy_score(targets, scores, k=k, labels=np.arange(n_items)), abs=1e-9
    )
    # with one relevant label, label-ranking average precision is the reciprocal rank
    assert mrr(scores, targets) == pytest.approx(
        label_ranking_average_precision_score(one_hot, scores), abs=1e-9
    )


def test_auc_matches_sklearn():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=500)
    s = rng.normal(size=500) + y
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-9)
    rounded = np.round(s)  # many ties: both count them one half
    assert auc(y, rounded) == pytest.approx(roc_auc_score(y, rounded), abs=1e-9)


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 6, size=400)
    y_pred = np.where(rng.random(400) < 0.5, y_true, rng.integers(0, 7, size=400))
    assert macro_f1(y_true, y_pred) == pytest.approx(
        f1_score(y_true, y_pred, average="macro"), abs=1e-9
    )
    assert macro_f1(y_true, y_pred, n_classes=9) == pytest.approx(
        f1_score(y_true, y_pred, average="macro", labels=np.arange(9), zero_division=0), abs=1e-9
    )


# --------------------------------------------------------------------------------------------
# sparse input, blocking
# --------------------------------------------------------------------------------------------


def test_sparse_relevance_equals_dense():
    rng = np.random.default_rng(6)
    scores = rng.normal(size=(60, 25))
    dense = rng.random((60, 25)) * (rng.random((60, 25)) < 0.15)
    sparse = sp.csr_matrix(dense)
    assert ranking_report(scores, sparse) == ranking_report(scores, dense)
    np.testing.assert_array_equal(
        ndcg_at_k(scores, sp.coo_matrix(dense), per_user=True),
        ndcg_at_k(scores, dense, per_user=True),
    )


def test_row_blocks_do_not_change_results(monkeypatch):
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(50, 20))
    relevance = rng.random((50, 20)) * (rng.random((50, 20)) < 0.2)
    targets = rng.integers(-1, 20, size=50)
    whole = ranking_report(scores, relevance, per_user=True), target_rank(scores, targets)
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 60)  # three users per block
    blocked = ranking_report(scores, relevance, per_user=True), target_rank(scores, targets)
    assert whole[0].equals(blocked[0])
    np.testing.assert_array_equal(whole[1], blocked[1])


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------


@st.composite
def scores_and_targets(draw):
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 8))
    # few distinct values so that ties occur often
    scores = draw(arrays(np.float64, (n_users, n_items), elements=st.integers(-3, 3).map(float)))
    targets = draw(arrays(np.int64, (n_users,), elements=st.integers(-1, n_items - 1)))
    return scores, targets


@st.composite
def scores_and_relevance(draw):
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 8))
    scores = draw(arrays(np.float64, (n_users, n_items), elements=st.integers(-3, 3).map(float)))
    relevance = draw(
        arrays(np.float64, (n_users, n_items), elements=st.sampled_from([0.0, 0.5, 1.0, 3.0]))
    )
    return scores, relevance


@settings(max_examples=40, deadline=None)
@given(scores_and_targets())
def test_hit_rate_is_monotone_and_bounded(case):
    scores, targets = case
    previous = np.zeros(len(targets))
    for k in range(1, scores.shape[1] + 2):
        current = hit_rate_at_k(scores, targets, k=k, per_user=True)
        assert np.all(current >= previous)
        previous = current
    report = ranking_report(scores, targets, ks=(1, 2, 5))
    assert all(0.0 <= value <= 1.0 for value in report.values())
    # HR@K with K >= n_items is 1 for every target inside the candidate set
    assert hit_rate_at_k(scores, targets, k=scores.shape[1]) == pytest.approx(np.mean(targets >= 0))


@settings(max_examples=40, deadline=None)
@given(scores_and_relevance())
def test_graded_metrics_bounded_and_sparse_agrees(case):
    scores, relevance = case
    report = ranking_report(scores, relevance, ks=(1, 3))
    for value in report.values():
        assert math.isnan(value) or 0.0 <= value <= 1.0 + 1e-12
    sparse_report = ranking_report(scores, sp.csr_matrix(relevance), ks=(1, 3))
    assert sparse_report == pytest.approx(report, nan_ok=True)


@settings(max_examples=40, deadline=None)
@given(scores_and_relevance())
def test_perfect_ranking_scores_one(case):
    _, relevance = case
    if not (relevance > 0).any(axis=1).all():
        relevance = relevance.copy()
        relevance[:, 0] += 1.0
    # scoring items by their relevance is an ideal ranking, whatever the tie order
    report = ranking_report(relevance, relevance, ks=(1, 2, 5))
    assert report == pytest.approx(dict.fromkeys(report, 1.0))
    targets = np.argmax(relevance, axis=1)
    one_hot = np.eye(relevance.shape[1])[targets]
    single = ranking_report(one_hot, targets, ks=(1, 3))
    assert single == pytest.approx(dict.fromkeys(single, 1.0))


def reference_report(scores, relevance, ks):
    """Plain per-user loops: sort items by (-score, index), then apply the textbook formulas."""
    rows = []
    for user_scores, user_rel in zip(scores, relevance, strict=True):
        if not (user_rel > 0).any():
            rows.append(None)
            continue
        ranking = sorted(range(len(user_scores)), key=lambda i: (-user_scores[i], i))
        gains = [user_rel[i] for i in ranking]
        ideal = sorted(user_rel, reverse=True)
        first = next(r for r, i in enumerate(ranking) if user_rel[i] > 0)
        row = {}
        for k in ks:
            dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains[:k]))
            idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal[:k]))
            row[f"HR@{k}"] = float(first < k)
            row[f"NDCG@{k}"] = dcg / idcg
        row["MRR"] = 1 / (first + 1)
        rows.append(row)
    return rows


@settings(max_examples=40, deadline=None)
@given(scores_and_relevance())
def test_agrees_with_a_plain_loop_even_with_ties(case):
    scores, relevance = case
    ks = (1, 2, 4)
    frame = ranking_report(scores, relevance, ks=ks, per_user=True)
    for user, expected in enumerate(reference_report(scores, relevance, ks)):
        if expected is None:
            assert frame.iloc[user].isna().all()
        else:
            assert frame.iloc[user].to_dict() == pytest.approx(expected)


def test_many_ties_at_the_cut_off():
    rng = np.random.default_rng(11)
    scores = rng.integers(0, 3, size=(30, 40)).astype(float)  # heavy ties around every cut-off
    relevance = rng.random((30, 40)) * (rng.random((30, 40)) < 0.3)
    frame = ranking_report(scores, relevance, ks=(1, 5, 10), per_user=True)
    for user, expected in enumerate(reference_report(scores, relevance, (1, 5, 10))):
        if expected is not None:
            assert frame.iloc[user].to_dict() == pytest.approx(expected)


# --------------------------------------------------------------------------------------------
# bootstrap and ties
# --------------------------------------------------------------------------------------------


def test_bootstrap_ci_basic():
    rng = np.random.default_rng(8)
    values = rng.normal(loc=0.3, scale=1.0, size=2000)
    ci = bootstrap_ci(values, n_boot=500, seed=1)
    assert isinstance(ci, ConfidenceInterval)
    estimate, low, high = ci
    assert estimate == pytest.approx(values.mean())
    assert low < estimate < high
    # the half-width is close to 1.96 standard errors
    assert (high - low) / 2 == pytest.approx(1.96 / math.sqrt(2000), rel=0.2)
    assert bootstrap_ci(values, n_boot=500, seed=1) == ci
    assert bootstrap_ci(values, n_boot=500, seed=2) != ci
    assert "[" in str(ci)


def test_bootstrap_ci_drops_nan_and_constant():
    ci = bootstrap_ci(np.array([1.0, 1.0, np.nan, 1.0]), n_boot=50)
    assert ci == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="no values"):
        bootstrap_ci(np.array([np.nan]))
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(np.ones(3), alpha=1.5)


def test_bootstrap_ci_with_statistic():
    rng = np.random.default_rng(9)
    y_true = rng.integers(0, 3, size=300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 3, size=300))
    ci = bootstrap_ci((y_true, y_pred), n_boot=100, statistic=macro_f1)
    assert ci.estimate == pytest.approx(macro_f1(y_true, y_pred))
    assert ci.low <= ci.estimate <= ci.high


def test_paired_difference():
    rng = np.random.default_rng(10)
    b = rng.random(500)
    a = b + 0.1
    assert bootstrap_diff_ci(a, b, n_boot=200) == pytest.approx((0.1, 0.1, 0.1))
    noisy = b + rng.normal(0.05, 0.01, size=500)
    diff = bootstrap_diff_ci(noisy, b, n_boot=200)
    assert 0.0 < diff.low < diff.estimate < diff.high
    # NaN on either side drops the pair
    a_nan = a.copy()
    a_nan[0] = np.nan
    assert bootstrap_diff_ci(a_nan, b, n_boot=20).estimate == pytest.approx(0.1)
    with pytest.raises(ValueError, match="equal shapes"):
        bootstrap_diff_ci(a, b[:3])


def test_relative_difference_and_tie_rule():
    assert relative_difference(0.50, 0.40) == pytest.approx(0.2)
    assert relative_difference(0.40, 0.50) == pytest.approx(-0.2)
    assert relative_difference(0.0, 0.0) == 0.0
    assert is_tie(0.500, 0.480)  # 4 % apart
    assert not is_tie(0.500, 0.470)  # 6 % apart
    assert is_tie(0.2, 0.3, tolerance=0.5)


def test_unknown_target_is_a_miss_even_when_k_covers_every_item():
    from interest_lib.evaluation.metrics import hit_rate_at_k

    assert hit_rate_at_k(np.array([[0.1, 0.2, 0.7]]), np.array([-1]), k=10) == 0.0
    assert hit_rate_at_k(np.array([[0.1, 0.2, 0.7]]), np.array([0]), k=10) == 1.0


def test_confidence_interval_side_reads_where_zero_lies():
    from interest_lib.evaluation.metrics import ConfidenceInterval

    assert ConfidenceInterval(0.2, 0.1, 0.3).side() == 1
    assert ConfidenceInterval(-0.2, -0.3, -0.1).side() == -1
    assert ConfidenceInterval(0.05, -0.1, 0.2).side() == 0
    assert ConfidenceInterval(0.0, 0.0, 0.1).side() == 0  # touching 0 is not above it
