"""Transfer to cold-start users: chunked cosine top-k, kNN, centroids, Hungarian matching."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from interest_lib.models.clusters import match_clusters
from interest_lib.models.transfer import (
    align_centroids,
    centroid_transfer,
    cosine_similarity_topk,
    fine_tune,
    knn_transfer,
)


def dense_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return (a / np.where(na > 0, na, 1)) @ (b / np.where(nb > 0, nb, 1)).T


def dense_topk(sim: np.ndarray, k: int, min_similarity: float = 0.0) -> np.ndarray:
    out = np.zeros_like(sim)
    for i, row in enumerate(sim):
        top = np.argsort(-row, kind="stable")[:k]
        top = top[row[top] > min_similarity]
        out[i, top] = row[top]
    return out


@pytest.mark.parametrize(("k", "chunk_size"), [(1, 1), (3, 4), (5, None), (40, 7), (100, 3)])
def test_cosine_topk_equals_dense_reference(k, chunk_size):
    rng = np.random.default_rng(k)
    query = sp.random(23, 15, density=0.3, random_state=rng, format="csr")
    reference = sp.random(31, 15, density=0.3, random_state=rng, format="csr")
    empty = np.ones(23)
    empty[3] = 0
    query = sp.diags(empty) @ query  # row 3 is empty: it has no neighbours
    got = cosine_similarity_topk(query, reference, k, chunk_size=chunk_size)
    assert sp.isspmatrix_csr(got) and got.shape == (23, 31)
    expected = dense_topk(dense_cosine(query.toarray(), reference.toarray()), k)
    np.testing.assert_allclose(got.toarray(), expected, atol=1e-6)
    assert np.all(np.diff(got.indptr) <= k)
    assert got[3].nnz == 0


def test_cosine_topk_accepts_dense_input_and_excludes_self():
    rng = np.random.default_rng(0)
    x = rng.random((12, 6))
    got = cosine_similarity_topk(x, x, k=3, exclude_self=True)
    sim = dense_cosine(x, x)
    np.fill_diagonal(sim, -1)
    np.testing.assert_allclose(got.toarray(), dense_topk(sim, 3), atol=1e-6)
    assert got.diagonal().sum() == 0


def test_cosine_topk_never_builds_the_full_matrix():
    """12,000 x 12,000 users: the dense similarity would take 576 MB (float32)."""
    rng = np.random.default_rng(0)
    n, c = 12_000, 2_000
    rows = np.repeat(np.arange(n), 3)
    cols = rng.integers(0, c, size=rows.size)
    x = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, c))
    tracemalloc.start()
    got = cosine_similarity_topk(x, x, k=5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MB"
    assert got.shape == (n, n) and np.all(np.diff(got.indptr) <= 5)
    # every user is its own best neighbour
    assert np.allclose(got.max(axis=1).toarray().ravel(), 1.0)


def test_knn_transfer_on_a_toy_with_a_known_answer():
    # reference users: two like category 0, one likes category 2
    reference = sp.csr_matrix(np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]]))
    targets = np.array([[0.8, 0.2, 0.0], [0.6, 0.4, 0.0], [0.0, 0.0, 1.0]])
    query = sp.csr_matrix(np.array([[3.0, 0, 0], [1.0, 0, 1.0], [0, 1.0, 0], [0, 0, 0]]))
    pred, has = knn_transfer(query, reference, targets, k=2, return_has_neighbour=True)
    np.testing.assert_allclose(pred[0], [0.7, 0.3, 0.0])  # both category-0 users, equal weight
    # query 1 is equally close (cos = 1/sqrt 2) to all three; k=2 keeps two of them
    assert pred[1].sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(has, [True, True, False, False])
    np.testing.assert_allclose(pred[2], targets.mean(axis=0))  # no shared category: fallback
    pred = knn_transfer(query, reference, sp.csr_matrix(targets), k=3, fallback=[1.0, 0, 0])
    np.testing.assert_allclose(pred[1], (targets[0] + targets[1] + targets[2]) / 3)
    np.testing.assert_allclose(pred[3], [1.0, 0, 0])


def test_knn_transfer_weights_by_similarity():
    reference = np.array([[1.0, 0.0], [1.0, 1.0]])
    targets = np.array([[1.0, 0.0], [0.0, 1.0]])
    query = np.array([[1.0, 0.0]])
    pred = knn_transfer(query, reference, targets, k=2)
    w = np.array([1.0, 1 / np.sqrt(2)])
    np.testing.assert_allclose(pred[0], w / w.sum())


def test_match_clusters_expresses_one_clustering_in_the_labels_of_another():
    """Two clusterings (e.g. of the two platforms): clusters.match_clusters(b, a) names b's by a's."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, size=500)
    perm = rng.permutation(6)
    b = perm[a]
    b[:20] = rng.integers(0, 6, size=20)  # some disagreement
    mapping = match_clusters(b, a)
    np.testing.assert_array_equal(mapping[perm], np.arange(6))
    assert (mapping[b] == a).mean() > 0.9
    # more clusters in b than in a: the extra one stays unmatched
    mapping = match_clusters(np.array([2, 2, 0, 1]), np.array([0, 0, 1, 1]))
    np.testing.assert_array_equal(mapping[2], 0)
    assert sorted(mapping.tolist()) == [-1, 0, 1]


def test_align_centroids_recovers_a_permutation():
    rng = np.random.default_rng(1)
    a = rng.random((5, 8))
    perm = rng.permutation(5)
    b = a[perm] * 3.0 + rng.normal(0, 0.01, size=(5, 8))  # cosine ignores the scale
    order = align_centroids(a, b)
    np.testing.assert_allclose(b[order] / 3.0, a, atol=0.05)
    np.testing.assert_array_equal(align_centroids(a, a[perm], metric="euclidean"), np.argsort(perm))


def planted_clusters(rng, n_per_cluster=60, c=12, k=3):
    """Users of cluster j view mostly categories 4j .. 4j+3."""
    labels = np.repeat(np.arange(k), n_per_cluster)
    x = rng.random((labels.size, c)) * 0.1
    for j in range(k):
        x[labels == j, 4 * j : 4 * j + 4] += rng.random((n_per_cluster, 4)) + 0.5
    return sp.csr_matrix(x), labels


def test_centroid_transfer_assigns_targets_to_the_planted_cluster():
    rng = np.random.default_rng(0)
    reference, truth = planted_clusters(rng)
    targets = np.eye(3)[truth]  # the interest of a reference user is its cluster
    query = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0, 0, 0],  # one event, cluster 2
                                    [0, 2.0, 1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # cluster 0
                                    [0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0, 0],  # cluster 1
                                    [0] * 12]))  # fmt: skip
    result = centroid_transfer(query, reference, n_clusters=3, seed=0, reference_targets=targets)
    mapping = match_clusters(result.reference_labels, truth)
    assert (mapping[result.reference_labels] == truth).all()
    np.testing.assert_array_equal(mapping[result.query_labels[:3]], [2, 0, 1])
    np.testing.assert_allclose(result.scores[:3], np.eye(3)[[2, 0, 1]])
    assert result.query_labels[3] == -1
    np.testing.assert_allclose(result.scores[3], targets.mean(axis=0))
    np.testing.assert_allclose(np.linalg.norm(result.centroids, axis=1), 1.0)
    # without targets the interest is the centroid itself, a distribution over the columns
    plain = centroid_transfer(query, reference, n_clusters=3, seed=0)
    np.testing.assert_allclose(plain.scores.sum(axis=1), 1.0)
    assert plain.scores[0, 8:12].sum() > 0.8


def test_fine_tune_copies_and_can_freeze_the_first_layer():
    from interest_lib.models.interest_mlp import InterestMLP, soft_cross_entropy

    torch.manual_seed(0)
    x = torch.rand(64, 10)
    y = torch.softmax(torch.randn(64, 10), dim=1)
    pretrained = InterestMLP(10, hidden=8)
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}

    def loss_fn(model, batch):
        inputs, targets = batch
        return soft_cross_entropy(model(inputs), targets)

    tuned, history = fine_tune(pretrained, (x, y), loss_fn=loss_fn, freeze_first_layer=True,
                               lr=1e-2, epochs=3, batch_size=16, device="cpu", progress=False)  # fmt: skip
    assert tuned is not pretrained and history.epochs == 3
    for key, value in pretrained.state_dict().items():
        assert torch.equal(value, before[key]), f"the pretrained model changed: {key}"
    assert torch.equal(tuned.hidden_layer.weight, before["hidden_layer.weight"])
    assert not torch.equal(tuned.output_layer.weight, before["output_layer.weight"])


# --------------------------------------------------------------------------------------------
# domain shift, shrinkage, per-event scores, the truth
# --------------------------------------------------------------------------------------------


def test_exposure_ratio_and_correction_recover_a_known_exposure():
    from interest_lib.models.transfer import correct_exposure, exposure_ratio

    source = np.array([0.5, 0.3, 0.2])
    exposure = np.array([1.0, 2.0, 0.5])
    target = source * exposure / (source * exposure).sum()
    ratio = exposure_ratio(source, target, smoothing=1e-12)
    np.testing.assert_allclose(ratio / ratio[0], exposure)
    # counts work as well as shares: each side is scaled to sum to 1
    np.testing.assert_allclose(exposure_ratio(source * 10, target * 7, smoothing=1e-12), ratio)
    # a person's source interest moved to the target platform
    person = np.array([[0.2, 0.2, 0.6], [0.0, 0.0, 0.0]])
    moved = correct_exposure(person, ratio)
    expected = person[0] * exposure / (person[0] * exposure).sum()
    np.testing.assert_allclose(moved[0], expected)
    np.testing.assert_array_equal(moved[1], 0.0)  # an empty row stays empty
    # correcting popularity itself gives the target popularity
    np.testing.assert_allclose(correct_exposure(source[None, :], ratio)[0], target)
    # a category never seen on one platform stays finite
    assert np.isfinite(exposure_ratio(np.array([1.0, 0.0]), np.array([0.5, 0.5]))).all()
    with pytest.raises(ValueError):
        exposure_ratio(source, target[:2])
    with pytest.raises(ValueError):
        correct_exposure(person, -ratio)


def test_shrink_is_additive_smoothing_towards_the_prior():
    from interest_lib.models.transfer import shrink

    counts = sp.csr_matrix(np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    prior = np.array([0.2, 0.3, 0.5])
    got = shrink(counts, prior, strength=2.0)
    np.testing.assert_allclose(got[0], (np.array([3.0, 1.0, 0.0]) + 2.0 * prior) / 6.0)
    np.testing.assert_allclose(got[1], prior)  # no events: the prior
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    # a prior per user, and strength 0 = the person's own shares
    per_user = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(shrink(counts, per_user, 4.0)[0], [7 / 8, 1 / 8, 0.0])
    np.testing.assert_allclose(shrink(counts, prior, 0.0), [[0.75, 0.25, 0.0], prior])
    with pytest.raises(ValueError):
        shrink(counts, prior, -1.0)


def test_event_report_averages_events_per_user():
    from interest_lib.models.transfer import event_report

    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    # user 0: categories 0 (rank 0) and 2 (rank 2); user 1: category 2 (rank 0), three times
    rows = np.array([0, 0, 1, 1, 1])
    targets = np.array([0, 2, 2, 2, 2])
    report = event_report(scores, rows, targets, ks=(1, 2))
    assert list(report.index) == [0, 1]
    np.testing.assert_allclose(report["HR@1"], [0.5, 1.0])
    np.testing.assert_allclose(report["HR@2"], [0.5, 1.0])
    np.testing.assert_allclose(report["MRR"], [(1 + 1 / 3) / 2, 1.0])
    np.testing.assert_array_equal(report["n_events"], [2, 3])
    # a user without events is absent; an out-of-vocabulary event (-1) is a miss
    report = event_report(scores, np.array([1, 1]), np.array([2, -1]), ks=(2,))
    assert list(report.index) == [1] and report["HR@2"].iloc[0] == 0.5
    with pytest.raises(ValueError):
        event_report(scores, np.array([2]), np.array([0]))


def test_truth_interest_is_the_simulators_distribution():
    import interest_lib as il
    from interest_lib.models.transfer import truth_interest

    sim = il.simulate(n_users=300, seed=1)
    truth = sim.truth
    users = truth.user_ids[:5]
    categories = np.sort(truth.category_ids)
    got = truth_interest(truth, users, categories)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    # the segment mix is the stationary distribution of the user's transition matrix
    a = truth.user_transition(0, after_shift=True)
    values, vectors = np.linalg.eig(a.T)
    alpha = np.real(vectors[:, np.argmin(abs(values - 1))])
    alpha /= alpha.sum()
    columns = truth.category_index(categories)
    expected = alpha @ truth.emission_by_platform[1][:, columns] * truth.user_taste[0, columns]
    np.testing.assert_allclose(got[0], expected / expected.sum(), rtol=1e-6)
    plain = truth_interest(truth, users, categories, platform=0, with_taste=False)
    expected = alpha @ truth.emission_by_platform[0][:, columns]
    np.testing.assert_allclose(plain[0], expected / expected.sum(), rtol=1e-6)


def test_with_output_bias_is_the_exposure_correction():
    from interest_lib.models.interest_mlp import InterestMLP
    from interest_lib.models.transfer import correct_exposure, with_output_bias

    torch.manual_seed(0)
    model = InterestMLP(6, hidden=4).eval()
    ratio = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 0.25])
    shifted = with_output_bias(model, np.log(ratio)).eval()
    x = torch.rand(5, 6)
    with torch.no_grad():
        before = torch.softmax(model(x), dim=1).numpy()
        after = torch.softmax(shifted(x), dim=1).numpy()
    np.testing.assert_allclose(after, correct_exposure(before, ratio), rtol=1e-5)
    assert shifted is not model  # the original is untouched
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(model(x), dim=1).numpy(), before)
    with pytest.raises(ValueError):
        with_output_bias(model, np.zeros(3))
