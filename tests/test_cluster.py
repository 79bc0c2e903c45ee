"""Tests of interest_lib.models.clusters on small hand-built data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans

from interest_lib import clusters
from interest_lib.data.features import CategoryVocabulary
from interest_lib.data.schema import as_canonical


def make_events(rows: list[tuple[int, int, str, int]]) -> pd.DataFrame:
    """Events from (user_id, category_id, behavior_type, timestamp) tuples."""
    frame = pd.DataFrame(rows, columns=["user_id", "category_id", "behavior_type", "timestamp"])
    frame["item_id"] = frame["category_id"] * 10
    return as_canonical(frame)


def blobs(seed: int = 0, n: int = 60, k: int = 3, spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """``k`` tight, well-separated groups of ``n`` points in 4 dimensions, and their labels."""
    rng = np.random.default_rng(seed)
    centres = np.eye(4)[:k] * 5.0
    truth = np.repeat(np.arange(k), n)
    return centres[truth] + rng.normal(0.0, spread, size=(n * k, 4)), truth


# --------------------------------------------------------------------------------------------
# dominant_segment
# --------------------------------------------------------------------------------------------


def test_dominant_segment_counts_ties_and_missing_users():
    events = make_events([(1, 5, "pv", 0), (1, 5, "pv", 1), (1, 6, "pv", 2), (2, 5, "pv", 0),
                          (2, 6, "buy", 1)])
    segment = np.array([2, 2, 0, 1, 0])
    key = clusters.dominant_segment(events, segment, users=[1, 2, 3], n_segments=3)
    assert key.index.tolist() == [1, 2, 3]
    assert key["segment"].tolist() == [2, 0, -1]  # user 2: a tie between 0 and 1 goes to 0
    assert key["share"].iloc[0] == pytest.approx(2 / 3)
    assert key["share"].iloc[1] == pytest.approx(0.5)
    assert np.isnan(key["share"].iloc[2])
    assert key["n_events"].tolist() == [3, 2, 0]


def test_dominant_segment_defaults_and_errors():
    events = make_events([(7, 5, "pv", 0), (3, 5, "pv", 1)])
    key = clusters.dominant_segment(events, [1, 0])
    assert key.index.tolist() == [3, 7]
    assert key["segment"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="shape"):
        clusters.dominant_segment(events, [1])
    with pytest.raises(ValueError, match="n_segments"):
        clusters.dominant_segment(events, [1, 2], n_segments=2)


# --------------------------------------------------------------------------------------------
# KMeans and the choice of k
# --------------------------------------------------------------------------------------------


def test_fit_kmeans_is_seeded_and_takes_centroids_not_labels():
    X, truth = blobs()
    a = clusters.fit_kmeans(X, 3, seed=1)
    b = clusters.fit_kmeans(X, 3, seed=1)
    assert np.array_equal(a.labels_, b.labels_)
    centres = clusters.centroids(X, truth, 3)
    warm = clusters.fit_kmeans(X, 3, init=centres, n_init=1)
    assert np.array_equal(warm.labels_, truth)  # started at the true centres, numbers are kept
    with pytest.raises(ValueError):
        KMeans(n_clusters=3, init=truth, n_init=1).fit(X)  # labels are not centroids


def test_mostly_zero_dense_input_is_fitted_as_a_sparse_copy_with_the_same_result():
    X, _ = blobs()
    assert not sp.issparse(clusters.kmeans_input(X))  # dense blobs stay dense
    wide = np.zeros((len(X), 40))
    wide[:, [0, 7, 19, 33]] = X  # 10 % nonzero: a sparse copy
    copy = clusters.kmeans_input(wide)
    assert sp.issparse(copy) and np.array_equal(copy.toarray(), wide)
    fitted = clusters.fit_kmeans(wide, 3, seed=2, n_init=3)
    dense = KMeans(n_clusters=3, n_init=3, random_state=2).fit(wide)
    assert np.array_equal(fitted.labels_, dense.labels_)
    np.testing.assert_allclose(fitted.cluster_centers_, dense.cluster_centers_, atol=1e-10)


def test_choose_k_finds_the_true_k_and_scores_it():
    X, truth = blobs(k=4)
    scores, labels = clusters.choose_k(X, range(2, 7), seed=0, truth=truth, n_init=4,
                                      silhouette_sample=100, return_labels=True)
    assert list(scores.columns) == ["inertia", "silhouette", "ari", "nmi"]
    assert scores.index.tolist() == [2, 3, 4, 5, 6]
    assert int(scores["silhouette"].idxmax()) == 4
    assert scores.loc[4, "ari"] == pytest.approx(1.0)
    assert scores["inertia"].is_monotonic_decreasing
    assert set(labels) == {2, 3, 4, 5, 6} and labels[4].shape == truth.shape
    plain = clusters.choose_k(X, [3], seed=0, n_init=2)
    assert list(plain.columns) == ["inertia", "silhouette"]
    with pytest.raises(ValueError, match="at least 2"):
        clusters.choose_k(X, [1])


def test_elbow_k():
    ks = np.arange(1, 9)
    inertia = np.array([100.0, 50.0, 10.0, 8.0, 7.0, 6.0, 5.0, 4.0])
    assert clusters.elbow_k(ks, inertia) == 3
    assert clusters.elbow_k(ks, np.full(8, 3.0)) in set(ks)  # flat curve: any k, no crash
    with pytest.raises(ValueError):
        clusters.elbow_k([1, 2], [2.0, 1.0])


# --------------------------------------------------------------------------------------------
# clusters versus segments
# --------------------------------------------------------------------------------------------


def test_contingency_and_match_clusters_undo_a_permutation():
    truth = np.array([0, 0, 1, 1, 2, 2, 2])
    labels = np.array([2, 2, 0, 0, 1, 1, 0])
    table = clusters.contingency(labels, truth)
    assert table.tolist() == [[0, 2, 1], [0, 0, 2], [2, 0, 0]]
    mapping = clusters.match_clusters(labels, truth)
    assert mapping.tolist() == [1, 2, 0]
    assert clusters.matched_accuracy(labels, truth) == pytest.approx(6 / 7)


def test_match_clusters_with_more_clusters_than_classes():
    truth = np.array([0, 0, 0, 1, 1, 1])
    labels = np.array([0, 0, 2, 1, 1, 1])
    mapping = clusters.match_clusters(labels, truth, n_clusters=4)
    assert mapping.tolist() == [0, 1, -1, -1]
    assert clusters.matched_accuracy(labels, truth, mapping) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="non-negative"):
        clusters.contingency(np.array([-1]), np.array([0]))


def test_centroids_dense_sparse_and_empty_cluster():
    X = np.array([[0.0, 2.0], [2.0, 0.0], [4.0, 4.0]])
    labels = np.array([0, 0, 2])
    expected = np.array([[1.0, 1.0], [0.0, 0.0], [4.0, 4.0]])
    assert np.allclose(clusters.centroids(X, labels, 3), expected)
    assert np.allclose(clusters.centroids(sp.csr_matrix(X), labels, 3), expected)
    with pytest.raises(ValueError, match="shape"):
        clusters.centroids(X, np.array([0, 1]))


def test_supervised_reference_on_separable_data():
    X, truth = blobs()
    ari, predictions = clusters.supervised_reference(X, truth, seed=0, folds=3)
    assert ari == pytest.approx(1.0)
    assert predictions.shape == truth.shape


# --------------------------------------------------------------------------------------------
# sessions
# --------------------------------------------------------------------------------------------


@pytest.fixture
def session_events() -> pd.DataFrame:
    # user 1: a session {10, 10, 20}, a gap of an hour, then a session {30}; user 2: {20, 99}
    return make_events([(1, 10, "pv", 0), (1, 10, "pv", 60), (1, 20, "buy", 120),
                        (1, 30, "pv", 4000), (2, 20, "pv", 0), (2, 99, "pv", 10)])


def test_session_matrix(session_events):
    vocab = CategoryVocabulary(np.array([10, 20, 30]))
    sessions = clusters.session_matrix(session_events, vocab)
    assert len(sessions) == 3
    assert sessions.matrix.toarray().tolist() == [[2, 1, 0], [0, 0, 1], [0, 1, 0]]
    assert sessions.user_ids.tolist() == [1, 1, 2]
    assert sessions.lengths.tolist() == [3, 1, 1]  # category 99 is unknown, so not counted
    assert sessions.first_row.tolist() == [0, 3, 4]
    assert sessions.category_ids.tolist() == [10, 20, 30]


def two_group_sessions(seed: int = 0, n: int = 400) -> sp.csr_matrix:
    """Sessions that mix categories 0-2 or categories 3-5, never both groups."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        group = np.arange(3) + 3 * (s % 2)
        rows.append(np.bincount(rng.choice(group, size=3), minlength=6))
    return sp.csr_matrix(np.array(rows, dtype=float))


def test_category_embedding_separates_groups_and_finds_the_gap():
    matrix = two_group_sessions()
    embedding, singular = clusters.category_embedding(matrix)
    assert singular.shape == (6,) and np.all(np.diff(singular) <= 1e-9)
    assert embedding.shape == (6, 2)  # two groups: the gap is after two components
    unit = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    cosine = unit @ unit.T
    assert cosine[0, 1] > 0.9 and cosine[3, 4] > 0.9
    assert cosine[0, 3] < 0.1
    assert clusters.category_embedding(matrix, dim=3)[0].shape == (6, 3)
    with pytest.raises(ValueError, match="dim"):
        clusters.category_embedding(matrix, dim=0)


def test_session_vectors_and_user_profiles():
    matrix = sp.csr_matrix(np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    embedding = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    Z = clusters.session_vectors(matrix, embedding)
    assert np.allclose(Z[0], [np.sqrt(0.5), np.sqrt(0.5)])  # distinct categories, equal weight
    assert np.allclose(Z[1:], 0.0)  # no coordinates, no vector
    profiles = clusters.user_profiles([0, 1, 1], [7, 7, 8], [3, 1, 2], users=[7, 8, 9],
                                     n_clusters=2)
    assert np.allclose(profiles, [[0.75, 0.25], [0.0, 1.0], [0.0, 0.0]])


# --------------------------------------------------------------------------------------------
# readable rules
# --------------------------------------------------------------------------------------------


def test_category_shares(session_events):
    vocab = CategoryVocabulary(np.array([10, 20, 30]))
    shares = clusters.category_shares(session_events, vocab, users=[1, 2, 3])
    assert list(shares.columns) == ["cat 10 share", "cat 20 share", "cat 30 share", "events",
                                    "buy rate"]
    assert shares.loc[1, "cat 10 share"] == pytest.approx(0.5)
    assert shares.loc[1, "buy rate"] == pytest.approx(0.25)
    assert shares.loc[2, "cat 20 share"] == pytest.approx(1.0)  # the unknown category is left out
    assert shares.loc[3].tolist() == [0.0] * 5


def test_segment_rules_recovers_a_one_feature_rule():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"cat 1 share": rng.random(400), "noise": rng.random(400)})
    labels = np.where(X["cat 1 share"] > 0.5, "baby", "home")
    tree, fidelity = clusters.segment_rules(X, labels, max_depth=3, seed=0)
    assert fidelity > 0.97
    assert tree.get_depth() <= 3
    assert list(tree.feature_names_in_) == ["cat 1 share", "noise"]
    assert tree.tree_.feature[0] == 0  # the root splits on the informative feature
    renamed, _ = clusters.segment_rules(X.to_numpy(), labels, feature_names=["a", "b"])
    assert list(renamed.feature_names_in_) == ["a", "b"]


def test_category_groups_and_group_shares(session_events):
    centres = np.array([[0.9, 0.1, 0.5], [0.1, 0.8, 0.5]])
    groups = clusters.category_groups(centres)
    assert groups.tolist() == [0, 1, 0]  # a tie goes to the lowest cluster
    with pytest.raises(ValueError, match="2-D"):
        clusters.category_groups(np.array([1.0, 2.0]))

    vocab = CategoryVocabulary(np.array([10, 20, 30]))
    shares = clusters.category_shares(session_events, vocab, users=[1, 2, 3])
    grouped = clusters.group_shares(shares, groups, ["baby", "home"])
    assert list(grouped.columns) == ["share in baby categories", "share in home categories",
                                     "events", "buy rate"]
    assert grouped.loc[1, "share in baby categories"] == pytest.approx(0.75)  # categories 10, 30
    assert grouped.loc[1, "share in home categories"] == pytest.approx(0.25)
    assert grouped.loc[2].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert grouped.loc[3].tolist() == [0.0] * 4
    assert list(clusters.group_shares(shares, groups).columns[:2]) == [
        "share in 0 categories", "share in 1 categories"]
    with pytest.raises(ValueError, match="one group per"):
        clusters.group_shares(shares, [0, 1])
    with pytest.raises(ValueError, match="group names"):
        clusters.group_shares(shares, groups, ["baby"])
