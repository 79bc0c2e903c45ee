r"""Moving interest from a source platform to cold-start users of a target platform.

A cold-start user of the target platform (web) has a handful of events there, too few to know
their interest. Users of the source platform (app) have long histories. Three ways to transfer:

* **cosine kNN** (:func:`knn_transfer`): find the source users whose behaviour vectors point the
  same way as the cold-start user's few events and average *their* interest, weighted by the
  cosine similarity

  .. math:: \operatorname{sim}(q, r) = \frac{q \cdot r}{\lVert q \rVert\,\lVert r \rVert};

* **centroids** (:func:`centroid_transfer`): cluster the source users with KMeans and give every
  cold-start user the interest of the nearest cluster;
* **fine-tuning** (:func:`fine_tune`): pretrain a model on source users, then continue training it
  on the few target users with a smaller learning rate.

Similarities are computed sparsely, in chunks of query rows, keeping only the top ``k``
neighbours per row (:func:`cosine_similarity_topk`): a 100,000 × 100,000 similarity matrix is
never built. :func:`align_centroids` aligns the centroids of two clusterings (e.g. of the two
platforms) with the Hungarian algorithm; to name the clusters of one labelling after another,
use :func:`interest_lib.models.clusters.match_clusters`.

The two platforms show categories differently (a *domain shift*): what a source user's history
predicts must be moved to the target platform. :func:`exposure_ratio` estimates, per category,
the ratio of target to source popularity (on training events only) and
:func:`correct_exposure` re-weights a predicted distribution with it. :func:`shrink` combines a
person's own few counts with a prior (popularity, neighbours), :func:`event_report` scores a
prediction against every event of a user's target window, and :func:`truth_interest` gives the
simulator's true long-run interest of a person, the reference no method can know.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.preprocessing import normalize
from torch import nn

if TYPE_CHECKING:
    from interest_lib.data.simulation import SimulationTruth

MAX_CHUNK_CELLS: int = 1 << 21
"""Upper bound on ``rows × n_reference`` of one dense similarity chunk (about 8 MB in float32)."""

Matrix = sp.spmatrix | np.ndarray


def _as_csr(matrix: Matrix | Any) -> sp.csr_matrix:
    if hasattr(matrix, "matrix") and sp.issparse(matrix.matrix):  # a UserCategoryMatrix
        matrix = matrix.matrix
    return sp.csr_matrix(matrix, dtype=np.float64)


def _chunk_rows(n_reference: int, chunk_size: int | None) -> int:
    if chunk_size is None:
        return max(1, MAX_CHUNK_CELLS // max(n_reference, 1))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return int(chunk_size)


def cosine_similarity_topk(
    query: Matrix,
    reference: Matrix,
    k: int = 50,
    *,
    chunk_size: int | None = None,
    min_similarity: float = 0.0,
    exclude_self: bool = False,
) -> sp.csr_matrix:
    r"""The ``k`` most cosine-similar reference rows of every query row, as a sparse matrix.

    Rows are L2-normalised, then :math:`S = \hat Q \hat R^\top` is computed for ``chunk_size``
    query rows at a time; of each row only the ``k`` largest similarities above
    ``min_similarity`` are kept. Memory stays at one chunk (``chunk_size × n_reference`` cells)
    plus the result (at most ``k`` entries per query row), whatever the number of users.

    Parameters
    ----------
    query
        ``(n_query, C)`` behaviour vectors (scipy.sparse, dense, or a ``UserCategoryMatrix``).
    reference
        ``(n_reference, C)`` behaviour vectors over the same columns.
    k
        Neighbours kept per query row.
    chunk_size
        Query rows per chunk; default: as many as keep a chunk under :data:`MAX_CHUNK_CELLS`.
    min_similarity
        Only similarities strictly above it are kept (default 0: rows sharing no category are
        never neighbours). An all-zero row has no neighbours.
    exclude_self
        Drop the pair (i, i); for ``query`` and ``reference`` holding the same users
        (leave-one-out).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_query, n_reference)`` float64 similarities. Among equal similarities at the k-th
        place, which neighbours are kept is unspecified.
    """
    q = normalize(_as_csr(query), norm="l2", axis=1)
    r = normalize(_as_csr(reference), norm="l2", axis=1)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query has {q.shape[1]} columns, reference {r.shape[1]}")
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    n_query, n_ref = q.shape[0], r.shape[0]
    if exclude_self and n_query != n_ref:
        raise ValueError("exclude_self needs query and reference with the same rows")
    r_t = r.T.tocsr()
    step = _chunk_rows(n_ref, chunk_size)
    kk = min(k, n_ref)
    rows, cols, values = [], [], []
    for lo in range(0, n_query, step):
        hi = min(lo + step, n_query)
        chunk = (q[lo:hi] @ r_t).toarray().astype(np.float32, copy=False)
        if exclude_self:
            chunk[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf
        if kk < n_ref:
            top = np.argpartition(-chunk, kk - 1, axis=1)[:, :kk]
        else:
            top = np.broadcast_to(np.arange(n_ref), (hi - lo, n_ref))
        sims = np.take_along_axis(chunk, top, axis=1)
        keep = sims > min_similarity
        rows.append(np.repeat(np.arange(lo, hi), keep.sum(axis=1)))
        cols.append(top[keep])
        values.append(sims[keep].astype(np.float64))
    if not rows:
        return sp.csr_matrix((n_query, n_ref))
    result = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_query, n_ref),
    )
    result.sort_indices()
    return result


def knn_transfer(
    query: Matrix,
    reference: Matrix,
    reference_targets: Matrix,
    k: int = 50,
    *,
    fallback: ArrayLike | None = None,
    similarity: sp.csr_matrix | None = None,
    chunk_size: int | None = None,
    return_has_neighbour: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    r"""Interest of each query user as the similarity-weighted interest of its neighbours.

    .. math:: \hat y_q = \frac{\sum_{r \in N_k(q)} \operatorname{sim}(q, r)\, y_r}
                              {\sum_{r \in N_k(q)} \operatorname{sim}(q, r)}

    with :math:`N_k(q)` the ``k`` most cosine-similar reference users
    (:func:`cosine_similarity_topk`) and :math:`y_r` their interest distributions. A query with
    no similar neighbour (no shared category, or no events at all) gets ``fallback``.

    Parameters
    ----------
    query
        ``(n_query, C)`` behaviour vectors of the users to predict for.
    reference
        ``(n_reference, C)`` behaviour vectors of the source users.
    reference_targets
        ``(n_reference, C')`` interest of the source users (rows normally distributions, e.g.
        next-window targets), sparse or dense.
    k
        Neighbours per query.
    fallback
        ``(C',)`` prediction for queries without neighbours; default the mean row of
        ``reference_targets``.
    similarity
        A precomputed ``(n_query, n_reference)`` sparse similarity (skips the computation).
    chunk_size
        Passed to :func:`cosine_similarity_topk`.
    return_has_neighbour
        Also return the ``(n_query,)`` boolean mask of queries that had a neighbour.

    Returns
    -------
    numpy.ndarray
        ``(n_query, C')`` float64 predicted interest (and the mask, if asked).
    """
    targets = _as_csr(reference_targets)
    if similarity is None:
        similarity = cosine_similarity_topk(query, reference, k, chunk_size=chunk_size)
    similarity = sp.csr_matrix(similarity)
    if similarity.shape[1] != targets.shape[0]:
        raise ValueError(
            f"{similarity.shape[1]} reference users in the similarity, "
            f"{targets.shape[0]} rows in reference_targets"
        )
    weight = np.asarray(similarity.sum(axis=1)).ravel()
    prediction = np.asarray((similarity @ targets).todense())
    has_neighbour = weight > 0
    prediction[has_neighbour] /= weight[has_neighbour, None]
    if fallback is None:
        fallback = np.asarray(targets.mean(axis=0)).ravel()
    prediction[~has_neighbour] = np.asarray(fallback, dtype=np.float64)
    return (prediction, has_neighbour) if return_has_neighbour else prediction


# --------------------------------------------------------------------------------------------
# centroids
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class CentroidTransfer:
    """The result of :func:`centroid_transfer`.

    Attributes
    ----------
    scores
        ``(n_query, C')`` predicted interest of every query user.
    query_labels
        ``(n_query,)`` cluster of each query user; ``-1`` for an all-zero query (it gets the
        average interest of all reference users).
    reference_labels
        ``(n_reference,)`` KMeans cluster of each reference user.
    centroids
        ``(n_clusters, C)`` unit-length centroids in the space of the normalised vectors.
    cluster_interest
        ``(n_clusters, C')`` interest predicted for each cluster.
    kmeans
        The fitted ``sklearn.cluster.KMeans``.
    """

    scores: np.ndarray
    query_labels: np.ndarray
    reference_labels: np.ndarray
    centroids: np.ndarray
    cluster_interest: np.ndarray
    kmeans: KMeans


def centroid_transfer(
    query: Matrix,
    reference: Matrix,
    n_clusters: int,
    seed: int = 0,
    *,
    reference_targets: Matrix | None = None,
    n_init: int = 10,
) -> CentroidTransfer:
    r"""Cluster the source users, then give each query user the interest of its nearest cluster.

    KMeans (``n_init`` restarts, ``random_state=seed``) runs on the L2-normalised reference
    rows, so squared Euclidean distance there is :math:`2 - 2\cos`. Each query user goes to the
    centroid with the highest cosine similarity, :math:`\arg\max_j \hat q \cdot \hat\mu_j`, and
    gets that cluster's interest: the mean of its members' ``reference_targets``, or, without
    targets, the centroid itself rescaled to sum to 1.

    Parameters
    ----------
    query
        ``(n_query, C)`` behaviour vectors of the target users.
    reference
        ``(n_reference, C)`` behaviour vectors of the source users.
    n_clusters
        Number of clusters ``k``.
    seed
        ``random_state`` of KMeans.
    reference_targets
        ``(n_reference, C')`` interest of the source users; default: the behaviour vectors.
    n_init
        KMeans restarts; the run with the lowest inertia is kept.

    Returns
    -------
    CentroidTransfer
    """
    q = normalize(_as_csr(query), norm="l2", axis=1)
    r = normalize(_as_csr(reference), norm="l2", axis=1)
    kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(r)
    labels = kmeans.labels_.astype(np.int64)
    centroids = normalize(np.asarray(kmeans.cluster_centers_), norm="l2", axis=1)
    if reference_targets is None:
        cluster_interest = normalize(np.clip(centroids, 0.0, None), norm="l1", axis=1)
        overall = np.clip(np.asarray(r.mean(axis=0)).ravel(), 0.0, None)
        overall /= max(overall.sum(), np.finfo(float).tiny)
    else:
        targets = _as_csr(reference_targets)
        members = sp.csr_matrix(
            (np.ones(labels.size), (labels, np.arange(labels.size))),
            shape=(n_clusters, labels.size),
        )
        sizes = np.asarray(members.sum(axis=1)).ravel()
        cluster_interest = np.asarray((members @ targets).todense()) / np.maximum(sizes, 1)[:, None]
        overall = np.asarray(targets.mean(axis=0)).ravel()
    similarity = np.asarray(q @ centroids.T)
    query_labels = similarity.argmax(axis=1).astype(np.int64)
    empty = np.asarray(abs(q).sum(axis=1)).ravel() == 0
    query_labels[empty] = -1
    scores = np.where(empty[:, None], overall, cluster_interest[np.maximum(query_labels, 0)])
    return CentroidTransfer(scores, query_labels, labels, centroids, cluster_interest, kmeans)


def align_centroids(a: ArrayLike, b: ArrayLike, metric: str = "cosine") -> np.ndarray:
    """Match every centroid of ``a`` with a distinct centroid of ``b`` (Hungarian algorithm).

    Parameters
    ----------
    a, b
        ``(k_a, C)`` and ``(k_b, C)`` centroids over the same columns.
    metric
        ``"cosine"`` (cost :math:`1 - \\cos`) or ``"euclidean"``.

    Returns
    -------
    numpy.ndarray
        ``order`` of length ``k_a``: ``b[order[i]]`` is matched to ``a[i]`` (``-1`` where ``a``
        has more centroids than ``b``); with ``k_a == k_b``, ``b[order]`` lines up with ``a``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"centroids must be 2-D with equal widths, got {a.shape}, {b.shape}")
    if metric == "cosine":
        cost = 1.0 - normalize(a) @ normalize(b).T
    elif metric == "euclidean":
        cost = np.sqrt(np.maximum(
            (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0
        ))
    else:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    rows, cols = linear_sum_assignment(cost)
    order = np.full(a.shape[0], -1, dtype=np.int64)
    order[rows] = cols
    return order


# --------------------------------------------------------------------------------------------
# fine-tuning
# --------------------------------------------------------------------------------------------


def _first_layer(model: nn.Module) -> nn.Module:
    for module in model.children():
        if any(True for _ in module.parameters()):
            return module
    raise ValueError("the model has no layer with parameters to freeze")


def fine_tune(
    model: nn.Module,
    train_data: Any,
    *,
    loss_fn: Callable[[nn.Module, tuple], Any],
    lr: float = 1e-4,
    freeze_first_layer: bool = False,
    **fit_kwargs: Any,
):
    """Copy a pretrained model and continue training the copy on target-platform data.

    The copy starts from the source-trained weights and learns with a smaller learning rate
    (default ``1e-4``, a tenth of :func:`interest_lib.models.training.fit`'s default), so a few target
    users adjust the source knowledge rather than overwrite it. With ``freeze_first_layer`` the
    first layer (for :class:`~interest_lib.models.interest_mlp.InterestMLP` the interest layer
    :math:`v = \\sigma(Wx + b)`) stays as pretrained and only the layers above it learn. The
    original model is left untouched.

    Parameters
    ----------
    model
        The pretrained model.
    train_data
        Target-platform training data in any form :func:`interest_lib.models.training.fit` accepts.
    loss_fn
        ``loss_fn(model, batch) -> scalar tensor``, as for ``fit``.
    lr
        Learning rate of the fine-tuning.
    freeze_first_layer
        Keep the parameters of the first child module with parameters fixed.
    **fit_kwargs
        Passed to :func:`interest_lib.models.training.fit` (``epochs``, ``valid_fn``, ``batch_size``,
        ``seed``, ``device``, ``progress``, ...).

    Returns
    -------
    (model, history)
        The fine-tuned copy and its :class:`~interest_lib.models.training.TrainingHistory`.
    """
    from interest_lib.models.training import fit

    tuned = copy.deepcopy(model)
    if freeze_first_layer:
        for parameter in _first_layer(tuned).parameters():
            parameter.requires_grad_(False)
    history = fit(tuned, train_data, loss_fn=loss_fn, lr=lr, **fit_kwargs)
    return tuned, history


# --------------------------------------------------------------------------------------------
# domain shift, shrinkage, scoring per event and the simulator's truth
# --------------------------------------------------------------------------------------------


def exposure_ratio(
    source_popularity: ArrayLike, target_popularity: ArrayLike, *, smoothing: float = 1e-4
) -> np.ndarray:
    r"""Per-category exposure of the target platform relative to the source platform.

    .. math:: r_c = \frac{\pi^{T}_c + \epsilon}{\pi^{S}_c + \epsilon}

    with :math:`\pi^{S}, \pi^{T}` the category shares of the two platforms' **training** events
    (e.g. :func:`interest_lib.models.baselines.popularity`) and :math:`\epsilon` = ``smoothing``, which
    keeps a category unseen on one platform finite. If people had the same interests on both
    platforms, :math:`r` would be exactly the platforms' relative exposure; with different
    audiences it also absorbs their difference in taste.

    Parameters
    ----------
    source_popularity, target_popularity
        ``(C,)`` non-negative category shares (or counts, each scaled to sum to 1 first).
    smoothing
        :math:`\epsilon > 0`, added to both shares.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64 ratios, positive.
    """
    source = np.asarray(source_popularity, dtype=np.float64)
    target = np.asarray(target_popularity, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 1:
        raise ValueError(f"popularities must be two (C,) arrays, got {source.shape}, {target.shape}")
    if np.any(source < 0) or np.any(target < 0) or source.sum() <= 0 or target.sum() <= 0:
        raise ValueError("popularities must be non-negative with a positive total")
    if smoothing <= 0:
        raise ValueError(f"smoothing must be positive, got {smoothing}")
    return (target / target.sum() + smoothing) / (source / source.sum() + smoothing)


def correct_exposure(scores: ArrayLike, ratio: ArrayLike) -> np.ndarray:
    r"""Move predicted interest from the source to the target platform.

    .. math:: \hat y^{T}_{uc} = \frac{\hat y^{S}_{uc}\, r_c}{\sum_{c'} \hat y^{S}_{uc'}\, r_{c'}}

    Each row is re-weighted by the exposure ratio :math:`r` (:func:`exposure_ratio`) and
    rescaled to sum to 1. An all-zero row stays zero.

    Parameters
    ----------
    scores
        ``(n_users, C)`` non-negative predicted interest on the source platform.
    ratio
        ``(C,)`` positive exposure ratios.

    Returns
    -------
    numpy.ndarray
        ``(n_users, C)`` float64 rows summing to 1 (or 0).
    """
    scores = np.asarray(scores, dtype=np.float64)
    ratio = np.asarray(ratio, dtype=np.float64)
    if scores.ndim != 2 or ratio.shape != (scores.shape[1],):
        raise ValueError(f"scores {scores.shape} and ratio {ratio.shape} do not fit")
    if np.any(ratio <= 0):
        raise ValueError("exposure ratios must be positive")
    weighted = scores * ratio
    total = weighted.sum(axis=1, keepdims=True)
    return np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 0)


def shrink(counts: Matrix, prior: ArrayLike, strength: float) -> np.ndarray:
    r"""A person's own counts shrunk towards a prior distribution.

    .. math:: \hat y_{uc} = \frac{n_{uc} + \lambda\, p_{uc}}{N_u + \lambda}

    with :math:`n_{uc}` the person's counts, :math:`N_u` their total and :math:`p_u` the prior
    (popularity, or the interest of the person's neighbours). With few events the prior
    dominates; with :math:`N_u \gg \lambda` the person's own history does. A user without events
    gets the prior.

    Parameters
    ----------
    counts
        ``(n_users, C)`` non-negative counts (sparse or dense).
    prior
        ``(C,)`` one prior for everyone, or ``(n_users, C)`` one per user; rows sum to 1.
    strength
        :math:`\lambda \ge 0`, the weight of the prior in pseudo-events.

    Returns
    -------
    numpy.ndarray
        ``(n_users, C)`` float64 rows summing to 1.
    """
    n = _as_csr(counts).toarray()
    p = np.broadcast_to(np.asarray(prior, dtype=np.float64), n.shape)
    if strength < 0:
        raise ValueError(f"strength must be non-negative, got {strength}")
    total = n.sum(axis=1, keepdims=True)
    if strength == 0 and np.any(total == 0):
        return np.where(total > 0, n / np.maximum(total, 1e-300), p)
    return (n + strength * p) / (total + strength)


def event_report(
    scores: ArrayLike,
    event_user: ArrayLike,
    event_target: ArrayLike,
    ks: tuple[int, ...] = (10,),
) -> pd.DataFrame:
    """Score one prediction per user against every event of the user's target window.

    Each event is a single-target ranking over all categories (HR@K, NDCG@K and MRR of
    :func:`interest_lib.evaluation.metrics.ranking_report`); a user's value is the mean over their events,
    so heavy users do not dominate. Pass the result's columns to
    :func:`interest_lib.evaluation.metrics.bootstrap_ci` for intervals over users.

    Parameters
    ----------
    scores
        ``(n_users, C)`` predicted interest, one row per user.
    event_user
        ``(n_events,)`` row of ``scores`` that each target event belongs to.
    event_target
        ``(n_events,)`` category index of each event (``-1`` for a category outside the
        vocabulary: a miss).
    ks
        Cut-offs.

    Returns
    -------
    pandas.DataFrame
        One row per user with at least one event, indexed by the row of ``scores``, with the
        columns of ``ranking_report`` and ``n_events``.
    """
    from interest_lib.evaluation.metrics import ranking_report

    scores = np.asarray(scores)
    rows = np.asarray(event_user, dtype=np.int64)
    target = np.asarray(event_target, dtype=np.int64)
    if rows.shape != target.shape or rows.ndim != 1:
        raise ValueError(f"event_user {rows.shape} and event_target {target.shape} must match")
    if rows.size and (rows.min() < 0 or rows.max() >= scores.shape[0]):
        raise ValueError("event_user holds a row outside the score matrix")
    per_event = ranking_report(scores[rows], target, ks=ks, per_user=True)
    grouped = per_event.groupby(rows)
    report = grouped.mean()
    report["n_events"] = grouped.size()
    report.index.name = "row"
    return report


def truth_interest(
    truth: SimulationTruth,
    user_ids: ArrayLike,
    category_ids: ArrayLike,
    platform: int = 1,
    *,
    after_shift: bool = True,
    with_taste: bool = True,
    steps: int = 50,
) -> np.ndarray:
    r"""The simulator's true long-run interest of each person on a platform (a reference).

    The segment mix :math:`\alpha_u` is the stationary distribution of the person's transition
    matrix :math:`A_u = (1-\beta)\,G + \beta\,\mathbf 1 \pi_u^\top` (after the promotion shift
    by default, with the preference as the simulator tilts it then), found by iterating
    :math:`\alpha \leftarrow \alpha A_u` from :math:`\pi_u`; the interest is

    .. math:: y_{uc} \propto \sum_s \alpha_{us}\, E_p[s, c]\; \tau_{uc}

    with :math:`E_p` the platform's emission matrix and :math:`\tau_u` the person's category
    taste. It uses hidden parameters, so no method can compute it from a log; it shows how much
    a perfect estimate of a person's long-run interest would gain.

    Parameters
    ----------
    truth
        ``simulation.truth``.
    user_ids
        ``(n_users,)`` simulated user ids.
    category_ids
        ``(C,)`` columns wanted (e.g. the training vocabulary).
    platform
        0 app, 1 web.
    after_shift
        Use the transition matrix after (default) or before the promotion shift.
    with_taste
        Include the personal taste :math:`\tau_u` (``False``: segment level only).
    steps
        Power iterations for :math:`\alpha_u`.

    Returns
    -------
    numpy.ndarray
        ``(n_users, C)`` float64 rows summing to 1.
    """
    users = np.searchsorted(truth.user_ids, np.asarray(user_ids, dtype=np.int64))
    columns = truth.category_index(np.asarray(category_ids, dtype=np.int64))
    g = truth.transition_after if after_shift else truth.transition_before
    beta = truth.preference_weight
    if hasattr(truth, "shifted_preference"):  # the promotion's pull on the preference
        preference = truth.shifted_preference(users, np.full(users.size, after_shift))
    else:
        preference = truth.user_preference[users]
    alpha = preference.copy()
    for _ in range(steps):
        alpha = (1.0 - beta) * alpha @ g + beta * preference
    interest = alpha @ truth.emission_by_platform[platform][:, columns]
    if with_taste:
        interest = interest * truth.user_taste[users][:, columns]
    return interest / interest.sum(axis=1, keepdims=True)


def with_output_bias(model: nn.Module, shift: ArrayLike) -> nn.Module:
    r"""A copy of ``model`` with ``shift`` added to the bias of its output layer.

    For a model that ends in logits :math:`z` over categories, adding :math:`\log r` to the
    output bias is exactly the exposure correction of :func:`correct_exposure`:

    .. math:: \operatorname{softmax}(z + \log r)_c
              = \frac{\operatorname{softmax}(z)_c\, r_c}{\sum_{c'} \operatorname{softmax}(z)_{c'}\, r_{c'}} .

    So a network pretrained on the source platform becomes a target-platform network without a
    single target example, and fine-tuning can start from it.

    Parameters
    ----------
    model
        A model with an ``output_layer`` attribute (as :class:`~interest_lib.models.interest_mlp.InterestMLP`)
        or whose last ``nn.Linear`` module produces the logits.
    shift
        ``(C,)`` values to add, e.g. ``np.log(exposure_ratio(...))``.

    Returns
    -------
    torch.nn.Module
        The shifted copy; ``model`` is left untouched.
    """
    import torch

    shifted = copy.deepcopy(model)
    layer = getattr(shifted, "output_layer", None)
    if layer is None:
        linear = [m for m in shifted.modules() if isinstance(m, nn.Linear)]
        if not linear:
            raise ValueError("the model has no nn.Linear output layer")
        layer = linear[-1]
    if layer.bias is None:
        raise ValueError("the output layer has no bias to shift")
    values = torch.as_tensor(np.asarray(shift, dtype=np.float64), dtype=layer.bias.dtype,
                             device=layer.bias.device)
    if values.shape != layer.bias.shape:
        raise ValueError(f"shift has shape {tuple(values.shape)}, the bias {tuple(layer.bias.shape)}")
    with torch.no_grad():
        layer.bias += values
    return shifted
