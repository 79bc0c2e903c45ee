"""Tests of interest_lib.data.features on small hand-built event tables."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from event_tables import make_events

from interest_lib.data.features import (
    BEHAVIOR_WEIGHTS,
    UNIT_WEIGHTS,
    CategoryVocabulary,
    UserCategoryMatrix,
    UserVocabulary,
    behavior_matrix,
    next_window_targets,
    normalize_rows,
    purchase_labels,
    tfidf,
)
from interest_lib.data.schema import BEHAVIOR_DTYPE


@pytest.fixture
def events() -> pd.DataFrame:
    return make_events(
        [
            (10, 100, "pv", 0),
            (10, 100, "buy", 10),
            (10, 200, "fav", 20),
            (20, 300, "cart", 30),
            (20, 999, "pv", 40),  # category unknown to the vocabulary
            (30, 200, "pv", 100),  # exactly at the end of the window [0, 100)
        ]
    )


@pytest.fixture
def categories() -> CategoryVocabulary:
    return CategoryVocabulary(np.array([100, 200, 300]))


# --------------------------------------------------------------------------------------------
# vocabularies
# --------------------------------------------------------------------------------------------


def test_vocabulary_fit_and_index(events):
    vocab = CategoryVocabulary.fit(events)
    assert vocab.ids.tolist() == [100, 200, 300, 999]
    assert len(vocab) == 4
    assert vocab.index([300, 100]).tolist() == [2, 0]
    assert vocab.index(np.array([[999], [200]])).tolist() == [[3], [1]]
    assert UserVocabulary.fit(events).ids.tolist() == [10, 20, 30]
    assert UserVocabulary.fit(np.array([5, 1, 5])).ids.tolist() == [1, 5]
    assert repr(vocab) == "CategoryVocabulary(4 ids)"


def test_vocabulary_unknown_ids_are_explicit(categories):
    with pytest.raises(ValueError, match="first 999"):
        categories.index([100, 999])
    assert categories.index([100, 999], unknown="minus_one").tolist() == [0, -1]
    assert categories.contains([100, 999]).tolist() == [True, False]
    with pytest.raises(ValueError, match="unknown must be"):
        categories.index([100], unknown="drop")


def test_vocabulary_keeps_given_order_and_rejects_duplicates():
    users = UserVocabulary(np.array([30, 10, 20]))
    assert users.index([10, 20, 30]).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="unique"):
        UserVocabulary(np.array([1, 2, 1]))
    assert UserVocabulary(np.array([1, 2])) == UserVocabulary(np.array([1, 2]))
    assert UserVocabulary(np.array([1, 2])) != CategoryVocabulary(np.array([1, 2]))
    empty = CategoryVocabulary(np.array([], dtype=np.int64))
    assert empty.index([5], unknown="minus_one").tolist() == [-1]


def test_vocabulary_rejects_missing_ids():
    with pytest.raises(ValueError, match="category_id contain missing values"):
        CategoryVocabulary.fit(pd.DataFrame({"category_id": [1.0, np.nan]}))
    with pytest.raises(ValueError, match="missing values"):
        CategoryVocabulary(np.array([1, 2])).index(np.array([1.0, np.nan]))
    assert CategoryVocabulary.fit(np.array([2.0, 1.0])).ids.tolist() == [1, 2]


# --------------------------------------------------------------------------------------------
# behavior matrix
# --------------------------------------------------------------------------------------------


def test_behavior_matrix_by_hand(events, categories):
    result = behavior_matrix(events, categories, users=[10, 20, 30], start=0, end=100)
    assert isinstance(result, UserCategoryMatrix)
    assert isinstance(result.matrix, sp.csr_matrix)
    assert result.matrix.dtype == np.float32
    assert result.matrix.indices.dtype == np.int32
    assert result.shape == (3, 3)
    # user 10: pv 1 + buy 4 in category 100, fav 2 in 200; user 20: cart 3 in 300 (999 dropped);
    # user 30's only event lies at t = end, outside the half-open window
    expected = [[5, 2, 0], [0, 0, 3], [0, 0, 0]]
    np.testing.assert_array_equal(result.toarray(), expected)
    assert result.user_ids.tolist() == [10, 20, 30]
    assert result.category_ids.tolist() == [100, 200, 300]


def test_behavior_weights(events, categories):
    assert BEHAVIOR_WEIGHTS["pv"] < BEHAVIOR_WEIGHTS["fav"]
    assert BEHAVIOR_WEIGHTS["cart"] < BEHAVIOR_WEIGHTS["buy"]
    counts = behavior_matrix(events, categories, users=[10, 20], weights=UNIT_WEIGHTS)
    np.testing.assert_array_equal(counts.toarray(), [[2, 1, 0], [0, 0, 1]])
    custom = {"pv": 0.0, "cart": 0.0, "fav": 0.0, "buy": 1.0}
    buys = behavior_matrix(events, categories, users=[10, 20], weights=custom)
    np.testing.assert_array_equal(buys.toarray(), [[1, 0, 0], [0, 0, 0]])
    assert buys.matrix.nnz == 1  # zero-weight events store nothing
    with pytest.raises(ValueError, match="missing"):
        behavior_matrix(events, categories, weights={"pv": 1.0})


def test_window_is_half_open(events, categories):
    users = [10, 20, 30]
    inclusive_end = behavior_matrix(events, categories, users, start=0, end=101)
    assert inclusive_end.toarray()[2].tolist() == [0, 1, 0]
    late_start = behavior_matrix(events, categories, users, start=10, end=100)
    # the pv at t = 0 falls out, the buy at t = start stays
    assert late_start.toarray()[0].tolist() == [4, 2, 0]
    open_ended = behavior_matrix(events, categories, users)
    assert open_ended.toarray().sum() == 5 + 2 + 3 + 1
    with pytest.raises(ValueError, match="empty window"):
        behavior_matrix(events, categories, users, start=5, end=5)


def test_users_fix_the_rows(events, categories):
    reordered = behavior_matrix(events, categories, users=[30, 40, 10], end=100)
    # user 40 has no events (zero row); user 20 is not listed (ignored)
    np.testing.assert_array_equal(reordered.toarray(), [[0, 0, 0], [0, 0, 0], [5, 2, 0]])
    automatic = behavior_matrix(events, categories, start=0, end=100)
    assert automatic.user_ids.tolist() == [10, 20]  # users with events in the window
    vocab_rows = behavior_matrix(events, categories, users=UserVocabulary(np.array([20])))
    np.testing.assert_array_equal(vocab_rows.toarray(), [[0, 0, 3]])


def test_unknown_categories_drop_or_raise(events, categories):
    with pytest.raises(ValueError, match="999"):
        behavior_matrix(events, categories, users=[10, 20], unknown="raise")
    fine = behavior_matrix(events.iloc[:4], categories, users=[10, 20], unknown="raise")
    assert fine.toarray().sum() == 10


def test_bad_behavior_label_names_the_row(categories):
    frame = pd.DataFrame(
        {
            "user_id": [1, 1],
            "item_id": [1, 2],
            "category_id": [100, 100],
            "behavior_type": ["pv", "click"],
            "timestamp": [0, 1],
        }
    )
    with pytest.raises(ValueError, match="'click' at row 1"):
        behavior_matrix(frame, categories)
    with pytest.raises(ValueError, match="lacks"):
        behavior_matrix(frame.drop(columns="timestamp"), categories)
    # a categorical column with its own category order is read by label, not by code
    frame["behavior_type"] = pd.Categorical(["buy", "pv"], categories=["pv", "buy"][::-1])
    counts = behavior_matrix(frame, categories, users=[1])
    assert counts.toarray().tolist() == [[5.0, 0.0, 0.0]]


def test_matrix_helpers(events, categories):
    counts = behavior_matrix(events, categories, users=[10, 20, 30], end=100)
    np.testing.assert_allclose(counts.log1p().toarray(), np.log1p(counts.toarray()))
    shares = counts.normalize_rows().toarray()
    np.testing.assert_allclose(shares, [[5 / 7, 2 / 7, 0], [0, 0, 1], [0, 0, 0]], rtol=1e-6)
    dense = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]), "l2")
    np.testing.assert_allclose(dense, [[0.6, 0.8], [0.0, 0.0]])


# --------------------------------------------------------------------------------------------
# TF-IDF
# --------------------------------------------------------------------------------------------


def test_tfidf_formula():
    counts = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))
    weighted, transformer = tfidf(counts)
    n = 3
    df = np.array([3, 1, 1])
    idf = np.log((1 + n) / (1 + df)) + 1
    expected = counts.toarray() * idf
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(weighted.toarray(), expected)
    np.testing.assert_allclose(transformer.idf_, idf)
    assert isinstance(weighted, sp.csr_matrix)


def test_tfidf_reuses_the_training_idf(events, categories):
    train = behavior_matrix(events, categories, users=[10, 20], end=50)
    later = behavior_matrix(events, categories, users=[30], start=50)
    train_weighted, transformer = tfidf(train)
    assert isinstance(train_weighted, UserCategoryMatrix)
    assert train_weighted.user_ids.tolist() == [10, 20]
    later_weighted, same = tfidf(later, transformer)
    assert same is transformer
    np.testing.assert_allclose(transformer.idf_, np.log(3 / np.array([2, 2, 2])) + 1)
    np.testing.assert_allclose(later_weighted.toarray(), [[0, 1, 0]])
    norms = np.linalg.norm(train_weighted.toarray(), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# targets and labels
# --------------------------------------------------------------------------------------------


def test_next_window_targets(events, categories):
    targets = next_window_targets(events, categories, [10, 20, 30], 0, 100)
    assert isinstance(targets, sp.csr_matrix)
    assert targets.dtype == np.float64
    # plain counts by default: user 10 has two events in 100 and one in 200
    np.testing.assert_allclose(targets.toarray(), [[2 / 3, 1 / 3, 0], [0, 0, 1], [0, 0, 0]])
    weighted = next_window_targets(events, categories, [10], 0, 100, weights=BEHAVIOR_WEIGHTS)
    np.testing.assert_allclose(weighted.toarray(), [[5 / 7, 2 / 7, 0]])
    sums = np.asarray(targets.sum(axis=1)).ravel()
    assert sums.tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_purchase_labels(events):
    assert purchase_labels(events, [10, 20, 30], 0, 100).tolist() == [1, 0, 0]
    assert purchase_labels(events, [10, 20, 30], 11, 100).tolist() == [0, 0, 0]
    assert purchase_labels(events, [30, 10], None, None).tolist() == [0, 1]
    assert purchase_labels(events, [10], 0, 100).dtype == np.int64


# --------------------------------------------------------------------------------------------
# scale
# --------------------------------------------------------------------------------------------


def test_large_sparse_matrix_is_fast_and_sparse():
    rng = np.random.default_rng(0)
    n_events, n_users, n_categories = 2_000_000, 200_000, 10_000
    events = pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n_events) * 7 + 3,
            "item_id": np.zeros(n_events, dtype=np.int64),
            "category_id": rng.integers(0, n_categories, n_events) + 50_000,
            "behavior_type": pd.Categorical.from_codes(
                rng.integers(0, 4, n_events), dtype=BEHAVIOR_DTYPE
            ),
            "timestamp": rng.integers(0, 1000, n_events),
        }
    )
    started = time.perf_counter()
    categories = CategoryVocabulary.fit(events)
    users = UserVocabulary.fit(events)
    result = behavior_matrix(events, categories, users)
    elapsed = time.perf_counter() - started
    assert result.shape == (len(users), n_categories)
    assert result.matrix.nnz <= n_events
    assert result.matrix.sum() == pytest.approx(
        np.array([1, 3, 2, 4])[events["behavior_type"].cat.codes].sum()
    )
    stored = result.matrix.data.nbytes + result.matrix.indices.nbytes + result.matrix.indptr.nbytes
    assert stored < 20 * n_events  # a dense float32 matrix would take 8 GB
    assert elapsed < 10.0  # about 0.5 s on a laptop; a loop over users would take minutes


def test_a_vocabulary_and_its_ids_are_interchangeable():
    from interest_lib.data.features import CategoryVocabulary, behavior_matrix

    events = pd.DataFrame({
        "user_id": [1, 1, 2], "item_id": [10, 11, 12], "category_id": [7, 5, 7],
        "behavior_type": pd.Categorical(["pv", "buy", "pv"], categories=["pv", "cart", "fav", "buy"]),
        "timestamp": [0, 1, 2],
    })
    vocab = CategoryVocabulary.fit(events)
    np.testing.assert_array_equal(np.asarray(vocab), [5, 7])
    assert CategoryVocabulary.of(vocab) is vocab
    assert CategoryVocabulary.of([5, 7]) == vocab
    by_object = behavior_matrix(events, vocab).matrix.toarray()
    by_ids = behavior_matrix(events, vocab.ids).matrix.toarray()
    np.testing.assert_array_equal(by_object, by_ids)
