r"""Interest segments by clustering, graded against a known answer.

The pieces of chapter 4, reusable on any event table:

- :func:`dominant_segment` — the answer key on simulated data: the segment that produced most of
  each user's events;
- :func:`fit_kmeans`, :func:`choose_k`, :func:`elbow_k` — seeded KMeans and the choice of ``k``
  (inertia, silhouette and, when an answer key is given, ARI / NMI for every ``k``);
- :func:`match_clusters`, :func:`contingency`, :func:`centroids` — name clusters after the segments
  they overlap most (the Hungarian algorithm), count the overlap, turn labels into centroids;
- :func:`supervised_reference` — how much of the answer key a classifier trained on it recovers
  from a set of features;
- :func:`session_matrix`, :func:`category_embedding`, :func:`session_vectors`,
  :func:`user_profiles` — cluster *sessions* instead of users: a session has one interest, a user
  has several;
- :func:`category_shares`, :func:`category_groups`, :func:`group_shares`, :func:`segment_rules` —
  readable per-user features (shares of events per category or per group of categories) and a
  shallow decision tree that explains the segments as rules.

KMeans and the other fits here run on one thread: on the few thousand rows of a chapter that is as
fast as several threads, and it avoids OpenMP / BLAS threads competing with other processes for the
cores, which can slow a fit down by an order of magnitude. Mostly-zero dense input (TF-IDF user
vectors over hundreds of categories) is fitted as a sparse copy (:func:`kmeans_input`): the same
algorithm on the same numbers, several times faster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.preprocessing import normalize
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from interest_lib.data.describe import session_ids
from interest_lib.data.features import CategoryVocabulary
from interest_lib.data.schema import BEHAVIOR_TYPES, SESSION_GAP_S

# --------------------------------------------------------------------------------------------
# the answer key
# --------------------------------------------------------------------------------------------


def dominant_segment(
    events: pd.DataFrame,
    segment: ArrayLike,
    users: ArrayLike | None = None,
    n_segments: int | None = None,
) -> pd.DataFrame:
    """Each user's dominant segment: the one behind most of the user's events.

    Parameters
    ----------
    events
        Event table with a ``user_id`` column, ``n`` rows (e.g. the training part of a split).
    segment
        ``(n,)`` integer segment of every row of ``events``, e.g.
        ``sim.truth.event_segment[train.index]`` for a simulated log with its default index.
    users
        Row order of the result (user ids). ``None``: the sorted users of ``events``. A listed
        user without events gets segment ``-1``, share ``nan`` and 0 events.
    n_segments
        Number of segments (default: ``max(segment) + 1``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``user_id``: ``segment`` (int, the dominant segment; ties go to the lowest
        segment number), ``share`` (its share of the user's events), ``n_events``.
    """
    segment = np.asarray(segment)
    if segment.shape != (len(events),):
        raise ValueError(f"segment has shape {segment.shape}, expected ({len(events)},)")
    if len(segment) and segment.min() < 0:
        raise ValueError("segments must be non-negative integers")
    user_ids = events["user_id"].to_numpy()
    users = np.unique(user_ids) if users is None else np.asarray(users, dtype=np.int64)
    n_seg = int(segment.max()) + 1 if n_segments is None else int(n_segments)
    if len(segment) and segment.max() >= n_seg:
        raise ValueError(f"segment {int(segment.max())} is not below n_segments={n_seg}")
    rows = pd.Index(users).get_indexer(user_ids)
    keep = rows >= 0
    counts = np.zeros((len(users), n_seg), dtype=np.int64)
    np.add.at(counts, (rows[keep], segment[keep].astype(np.int64)), 1)
    n = counts.sum(axis=1)
    dominant = np.where(n > 0, counts.argmax(axis=1), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, counts.max(axis=1) / n, np.nan)
    return pd.DataFrame(
        {"segment": dominant, "share": share, "n_events": n},
        index=pd.Index(users, name="user_id"),
    )


# --------------------------------------------------------------------------------------------
# KMeans and the choice of k
# --------------------------------------------------------------------------------------------


SPARSE_BELOW: float = 0.25
"""Dense input with a smaller share of nonzero entries is clustered as a sparse CSR copy."""


def kmeans_input(X: ArrayLike | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """``X`` as KMeans gets it here: a CSR copy when it is dense and mostly zeros
    (fewer than :data:`SPARSE_BELOW` nonzero entries), else unchanged.

    scikit-learn's KMeans runs the same Lloyd iterations on sparse input, touching only the
    nonzero entries: on TF-IDF user vectors over 500 categories that is several times faster. The
    result equals the dense fit up to floating-point rounding.
    """
    if sp.issparse(X):
        return X
    X = np.asarray(X)
    if X.ndim == 2 and X.size and np.count_nonzero(X) < SPARSE_BELOW * X.size:
        return sp.csr_matrix(X)
    return X


def fit_kmeans(
    X: ArrayLike | sp.spmatrix,
    n_clusters: int,
    seed: int = 0,
    n_init: int = 10,
    init: str | np.ndarray = "k-means++",
    max_iter: int = 300,
) -> KMeans:
    """A fitted, seeded ``sklearn.cluster.KMeans`` (Lloyd's algorithm, one thread).

    Parameters
    ----------
    X
        Data, shape ``(n_samples, n_features)``.
    n_clusters
        ``k``.
    seed
        ``random_state`` of KMeans.
    n_init
        Number of restarts; the best (lowest inertia) is kept. Pass ``1`` with an array ``init``.
    init
        ``"k-means++"``, ``"random"``, or initial *centroids*, an array of shape
        ``(n_clusters, n_features)`` — not labels.
    max_iter
        Iterations per restart.

    Mostly-zero dense ``X`` is fitted as a sparse copy (:func:`kmeans_input`).
    """
    model = KMeans(
        n_clusters=n_clusters, init=init, n_init=n_init, max_iter=max_iter, random_state=seed
    )
    with threadpool_limits(limits=1):
        return model.fit(kmeans_input(X))


def choose_k(
    X: ArrayLike | sp.spmatrix,
    ks: Iterable[int],
    seed: int = 0,
    truth: ArrayLike | None = None,
    n_init: int = 10,
    silhouette_sample: int | None = 3000,
    return_labels: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Fit KMeans for every ``k`` and score each fit.

    Parameters
    ----------
    X
        Data, shape ``(n, n_features)``.
    ks
        The values of ``k`` to try (each at least 2).
    seed
        Seed of every fit and of the silhouette subsample.
    truth
        Optional ``(n,)`` reference labels; adds the columns ``ari`` and ``nmi``.
    n_init
        Restarts per fit.
    silhouette_sample
        The silhouette needs all pairwise distances (quadratic in ``n``), so it is computed on a
        seeded random subsample of this many rows (the same rows for every ``k``); ``None`` uses
        all rows.
    return_labels
        Also return the labels of every fit.

    Returns
    -------
    pandas.DataFrame, or (DataFrame, labels)
        Indexed by ``k``: ``inertia`` (within-cluster sum of squares, lower is tighter),
        ``silhouette`` (mean silhouette in [-1, 1], higher is better separated) and, with
        ``truth``, ``ari`` and ``nmi`` against it. With ``return_labels``, also a dict
        ``{k: (n,) labels}``.
    """
    X = kmeans_input(X)  # mostly-zero dense input: a sparse copy, for the fits and the silhouette
    n = X.shape[0]
    rng = np.random.default_rng(seed)
    sample = (
        np.arange(n)
        if silhouette_sample is None or silhouette_sample >= n
        else np.sort(rng.choice(n, size=silhouette_sample, replace=False))
    )
    truth = None if truth is None else np.asarray(truth)
    rows, labels_by_k = [], {}
    for k in ks:
        if k < 2:
            raise ValueError(f"k must be at least 2, got {k}")
        model = fit_kmeans(X, k, seed=seed, n_init=n_init)
        labels = model.labels_
        labels_by_k[int(k)] = labels
        row = {"k": int(k), "inertia": float(model.inertia_)}
        sub = labels[sample]
        with threadpool_limits(limits=1):
            row["silhouette"] = (
                float(silhouette_score(X[sample], sub)) if len(np.unique(sub)) > 1 else np.nan
            )
        if truth is not None:
            row["ari"] = float(adjusted_rand_score(truth, labels))
            row["nmi"] = float(normalized_mutual_info_score(truth, labels))
        rows.append(row)
    result = pd.DataFrame(rows).set_index("k")
    return (result, labels_by_k) if return_labels else result


def elbow_k(ks: ArrayLike, inertia: ArrayLike) -> int:
    """The "elbow" of an inertia curve, by a stated rule.

    Both axes are scaled to [0, 1]; the elbow is the ``k`` whose point lies farthest below the
    straight line from the first to the last point (the "kneedle" idea). For a curve without a
    bend every point is near the line and the answer is arbitrary — look at the plot too.

    Parameters
    ----------
    ks
        Increasing values of ``k``.
    inertia
        Inertia at each ``k`` (decreasing in ``k``).
    """
    ks = np.asarray(ks, dtype=float)
    y = np.asarray(inertia, dtype=float)
    if len(ks) < 3:
        raise ValueError("need at least three values of k")
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    span = y[0] - y[-1]
    yn = (y - y[-1]) / span if span > 0 else np.zeros_like(y)
    gap = (1.0 - x) - yn  # the chord runs from (0, 1) to (1, 0)
    return int(ks[int(np.argmax(gap))])


# --------------------------------------------------------------------------------------------
# clusters versus segments
# --------------------------------------------------------------------------------------------


def contingency(
    labels: ArrayLike, truth: ArrayLike, n_clusters: int | None = None, n_truth: int | None = None
) -> np.ndarray:
    """Counts ``table[c, s]`` of items in cluster ``c`` and true class ``s``.

    Labels must be integers ``0..n-1``; the sizes default to ``max + 1``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    truth = np.asarray(truth, dtype=np.int64)
    if labels.shape != truth.shape:
        raise ValueError(f"labels {labels.shape} and truth {truth.shape} differ in shape")
    if len(labels) and (labels.min() < 0 or truth.min() < 0):
        raise ValueError("labels and truth must be non-negative integers")
    k = int(labels.max()) + 1 if n_clusters is None else int(n_clusters)
    s = int(truth.max()) + 1 if n_truth is None else int(n_truth)
    table = np.zeros((k, s), dtype=np.int64)
    np.add.at(table, (labels, truth), 1)
    return table


def match_clusters(
    labels: ArrayLike, truth: ArrayLike, n_clusters: int | None = None, n_truth: int | None = None
) -> np.ndarray:
    """Name every cluster after a true class: the one-to-one matching of largest overlap.

    The Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) pairs clusters with classes
    so that the total number of items in matched pairs is as large as possible. With more clusters
    than classes, the unmatched clusters get ``-1``; with fewer, some classes stay unmatched.

    Returns
    -------
    numpy.ndarray
        ``(n_clusters,)`` int: ``mapping[c]`` is the class matched to cluster ``c``, or ``-1``.
    """
    table = contingency(labels, truth, n_clusters, n_truth)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = np.full(table.shape[0], -1, dtype=np.int64)
    mapping[rows] = cols
    return mapping


def matched_accuracy(labels: ArrayLike, truth: ArrayLike, mapping: ArrayLike | None = None) -> float:
    """Share of items whose cluster is matched to their true class (by :func:`match_clusters`)."""
    labels = np.asarray(labels, dtype=np.int64)
    truth = np.asarray(truth, dtype=np.int64)
    mapping = match_clusters(labels, truth) if mapping is None else np.asarray(mapping)
    return float(np.mean(mapping[labels] == truth))


def supervised_reference(
    X: ArrayLike | sp.spmatrix, truth: ArrayLike, seed: int = 0, folds: int = 5
) -> tuple[float, np.ndarray]:
    """How much of the answer key a classifier recovers from a set of features: its ARI.

    A multinomial logistic regression is trained on the true classes and scored by
    ``folds``-fold cross-validation (every row is predicted by a model that did not see it). A
    clustering of the same features never sees the classes, so the result is a demanding
    reference for it. It is no bound: a different classifier could score higher, and a method
    that uses more information than ``X`` holds (the order of the events, their sessions) can
    exceed it.

    Parameters
    ----------
    X
        Features, ``(n, n_features)``.
    truth
        ``(n,)`` true classes.
    seed
        Seed of the shuffled, stratified folds.
    folds
        Number of cross-validation folds.

    Returns
    -------
    (ari, predictions)
        The ARI between ``truth`` and the cross-validated predictions, and the ``(n,)``
        predictions.
    """
    truth = np.asarray(truth)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1):
        predictions = cross_val_predict(LogisticRegression(max_iter=2000), X, truth, cv=cv)
    return float(adjusted_rand_score(truth, predictions)), predictions


def centroids(X: ArrayLike | sp.spmatrix, labels: ArrayLike, n_clusters: int | None = None) -> np.ndarray:
    """The mean row of every cluster: what ``KMeans(init=...)`` expects.

    Parameters
    ----------
    X
        Data, shape ``(n, n_features)``, dense or sparse.
    labels
        ``(n,)`` cluster of every row, integers ``0..n_clusters-1``.
    n_clusters
        Number of clusters (default ``max(labels) + 1``).

    Returns
    -------
    numpy.ndarray
        ``(n_clusters, n_features)`` float64; an empty cluster's row is all zero.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1 if n_clusters is None else int(n_clusters)
    if labels.shape != (X.shape[0],):
        raise ValueError(f"labels has shape {labels.shape}, expected ({X.shape[0]},)")
    member = sp.csr_matrix(
        (np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(k, len(labels))
    )
    sums = member @ X
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    sums = sums.astype(np.float64)
    sizes = np.asarray(member.sum(axis=1)).ravel()
    return sums / np.maximum(sizes, 1)[:, None]


# --------------------------------------------------------------------------------------------
# sessions: one interest each
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionMatrix:
    """Sessions × categories counts and who each session belongs to.

    Attributes
    ----------
    matrix
        CSR ``(n_sessions, n_categories)``: events of each category in each session.
    user_ids
        ``(n_sessions,)`` int64 owner of each session.
    lengths
        ``(n_sessions,)`` int64 events per session (those of known categories).
    first_row
        ``(n_sessions,)`` int64 position in the event table of each session's first event.
    category_ids
        ``(n_categories,)`` int64 category id of each column.
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    lengths: np.ndarray
    first_row: np.ndarray
    category_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.matrix.shape[0])


def session_matrix(
    events: pd.DataFrame, categories: CategoryVocabulary, gap_s: int = SESSION_GAP_S
) -> SessionMatrix:
    """Count the categories of every session (30-minute gaps, :func:`interest_lib.session_ids`).

    Parameters
    ----------
    events
        Event table sorted by user then time.
    categories
        Column vocabulary (fitted on training events). Events of other categories are not counted.
    gap_s
        A gap longer than this many seconds starts a new session.
    """
    sid = session_ids(events, gap_s)
    n_sessions = int(sid.max()) + 1 if len(sid) else 0
    cols = categories.index(events["category_id"].to_numpy(), unknown="minus_one")
    keep = cols >= 0
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum())), (sid[keep], cols[keep])), shape=(n_sessions, len(categories))
    )
    first = np.r_[0, np.flatnonzero(np.diff(sid)) + 1] if len(sid) else np.zeros(0, np.int64)
    return SessionMatrix(
        matrix=matrix,
        user_ids=events["user_id"].to_numpy()[first].astype(np.int64),
        lengths=np.asarray(matrix.sum(axis=1)).ravel().astype(np.int64),
        first_row=first.astype(np.int64),
        category_ids=categories.ids,
    )


def category_embedding(
    sessions: SessionMatrix | sp.spmatrix, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Coordinates of categories from how often they share a session (PPMI + SVD).

    With :math:`n_{ij}` the number of sessions containing both categories :math:`i \ne j`,

    .. math::

        \mathrm{PPMI}_{ij} = \max\!\Big(0,\ \log \frac{n_{ij}\, n}{n_{i\cdot}\, n_{\cdot j}}\Big),

    where :math:`n = \sum_{ij} n_{ij}` and :math:`n_{i\cdot}` are row sums: how much more often two
    categories meet than chance. The PPMI matrix is factorised,
    :math:`\mathrm{PPMI} = U \Sigma U^\top`, and category :math:`i` gets the coordinates
    :math:`U_{i,:d}\,\Sigma_{:d}^{1/2}` (word embeddings by matrix factorisation, Levy & Goldberg
    2014).

    Parameters
    ----------
    sessions
        Sessions × categories counts (only whether a category occurs in a session is used).
    dim
        Number of coordinates; ``None`` chooses it from the data: the ``d`` with the largest
        ratio between consecutive singular values, :math:`\sigma_d / \sigma_{d+1}` (the spectral
        gap), among the first half of them.

    Returns
    -------
    (embedding, singular_values)
        ``(n_categories, dim)`` coordinates and all singular values of the PPMI matrix.
    """
    matrix = sessions.matrix if isinstance(sessions, SessionMatrix) else sp.csr_matrix(sessions)
    present = (matrix > 0).astype(np.float64)
    co = np.asarray((present.T @ present).todense())
    np.fill_diagonal(co, 0.0)
    total = co.sum()
    margin = co.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(co * total / np.outer(margin, margin))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    u, s, _ = np.linalg.svd(ppmi)  # singular values in decreasing order
    if dim is None:
        half = max(2, len(s) // 2)
        ratio = s[: half - 1] / np.maximum(s[1:half], 1e-12)
        dim = int(np.argmax(ratio)) + 1
    if not 1 <= dim <= len(s):
        raise ValueError(f"dim must be between 1 and {len(s)}, got {dim}")
    return u[:, :dim] * np.sqrt(s[:dim]), s


def session_vectors(sessions: SessionMatrix | sp.spmatrix, embedding: np.ndarray) -> np.ndarray:
    """Each session as the mean coordinates of its distinct categories, scaled to unit length.

    Returns
    -------
    numpy.ndarray
        ``(n_sessions, dim)``; a session whose categories all lack coordinates is all zero.
    """
    matrix = sessions.matrix if isinstance(sessions, SessionMatrix) else sp.csr_matrix(sessions)
    present = normalize((matrix > 0).astype(np.float64), norm="l1")
    return normalize(np.asarray(present @ embedding), norm="l2")


def user_profiles(
    session_labels: ArrayLike,
    session_users: ArrayLike,
    weights: ArrayLike,
    users: ArrayLike,
    n_clusters: int,
) -> np.ndarray:
    """Each user's share of (weighted) sessions in every session cluster.

    Parameters
    ----------
    session_labels
        ``(n_sessions,)`` cluster of every session.
    session_users
        ``(n_sessions,)`` owner of every session.
    weights
        ``(n_sessions,)`` weight of every session, e.g. its number of events (then the profile is
        the user's share of *events* per session cluster).
    users
        Row order of the result (user ids); a user without sessions gets a zero row.
    n_clusters
        Number of session clusters.

    Returns
    -------
    numpy.ndarray
        ``(n_users, n_clusters)``, rows sum to 1 (or 0).
    """
    rows = pd.Index(np.asarray(users)).get_indexer(np.asarray(session_users))
    keep = rows >= 0
    profile = np.zeros((len(users), n_clusters))
    np.add.at(
        profile,
        (rows[keep], np.asarray(session_labels)[keep]),
        np.asarray(weights, dtype=np.float64)[keep],
    )
    return normalize(profile, norm="l1")


# --------------------------------------------------------------------------------------------
# readable profiles: rules from a shallow tree
# --------------------------------------------------------------------------------------------


def category_shares(
    events: pd.DataFrame, categories: CategoryVocabulary, users: ArrayLike
) -> pd.DataFrame:
    """Readable per-user features: the share of events in every category, activity, buy rate.

    Columns are named ``"cat <id> share"`` (one per category of ``categories``), ``"events"``
    (number of events) and ``"buy rate"`` (share of the user's events that are purchases).
    Rows follow ``users``; a user without events has zeros.
    """
    users = np.asarray(users, dtype=np.int64)
    rows = pd.Index(users).get_indexer(events["user_id"].to_numpy())
    cols = categories.index(events["category_id"].to_numpy(), unknown="minus_one")
    keep = (rows >= 0) & (cols >= 0)
    counts = np.zeros((len(users), len(categories)))
    np.add.at(counts, (rows[keep], cols[keep]), 1.0)
    n = counts.sum(axis=1)
    buys = np.zeros(len(users))
    is_buy = (events["behavior_type"].astype(str) == BEHAVIOR_TYPES[3]).to_numpy()
    np.add.at(buys, rows[keep], is_buy[keep].astype(float))
    frame = pd.DataFrame(
        normalize(counts, norm="l1"),
        index=pd.Index(users, name="user_id"),
        columns=[f"cat {c} share" for c in categories.ids],
    )
    frame["events"] = n
    frame["buy rate"] = np.divide(buys, n, out=np.zeros_like(buys), where=n > 0)
    return frame



def category_groups(centres: ArrayLike) -> np.ndarray:
    """Give every category to the cluster whose centroid weights it most.

    Parameters
    ----------
    centres
        ``(n_clusters, n_categories)`` cluster centroids over category columns (e.g.
        :func:`centroids` of TF-IDF user vectors).

    Returns
    -------
    numpy.ndarray
        ``(n_categories,)`` int64: the cluster of every category (ties go to the lowest cluster).
    """
    centres = np.asarray(centres, dtype=np.float64)
    if centres.ndim != 2 or centres.shape[0] == 0:
        raise ValueError(f"centres must be a non-empty 2-D array, got shape {centres.shape}")
    return centres.argmax(axis=0).astype(np.int64)


def group_shares(
    shares: pd.DataFrame, groups: ArrayLike, group_names: list[str] | None = None
) -> pd.DataFrame:
    """Sum the per-category share columns of :func:`category_shares` over groups of categories.

    Parameters
    ----------
    shares
        Output of :func:`category_shares`: one ``"cat <id> share"`` column per category, in
        vocabulary order, then ``"events"`` and ``"buy rate"``.
    groups
        ``(n_categories,)`` group of every category column, integers ``0..n_groups-1`` (e.g.
        :func:`category_groups`).
    group_names
        A name per group; the columns are called ``"share in <name> categories"``. Default: the
        group numbers.

    Returns
    -------
    pandas.DataFrame
        Same index; one column per group (the user's share of events in that group's categories;
        a row sums to 1, or 0 for a user without events), then ``"events"`` and ``"buy rate"``.
    """
    category_columns = [c for c in shares.columns if c.startswith("cat ") and c.endswith(" share")]
    groups = np.asarray(groups, dtype=np.int64)
    if groups.shape != (len(category_columns),):
        raise ValueError(
            f"groups has shape {groups.shape}, expected ({len(category_columns)},): one group per "
            "category column"
        )
    if len(groups) and groups.min() < 0:
        raise ValueError("groups must be non-negative integers")
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    names = [str(g) for g in range(n_groups)] if group_names is None else list(group_names)
    if len(names) != n_groups:
        raise ValueError(f"{len(names)} group names for {n_groups} groups")
    member = sp.csr_matrix(
        (np.ones(len(groups)), (np.arange(len(groups)), groups)), shape=(len(groups), n_groups)
    )
    summed = np.asarray(shares[category_columns].to_numpy(np.float64) @ member)
    frame = pd.DataFrame(
        summed, index=shares.index, columns=[f"share in {name} categories" for name in names]
    )
    for column in ("events", "buy rate"):
        if column in shares.columns:
            frame[column] = shares[column].to_numpy()
    return frame


def segment_rules(
    X: pd.DataFrame | ArrayLike,
    labels: ArrayLike,
    feature_names: list[str] | None = None,
    max_depth: int = 3,
    seed: int = 0,
    test_size: float = 0.3,
    min_samples_leaf: int = 20,
) -> tuple[DecisionTreeClassifier, float]:
    """A shallow decision tree that predicts the cluster from readable features.

    The tree is fitted on a seeded, stratified ``1 - test_size`` share of the rows; its *fidelity*
    is its accuracy against the cluster labels on the held-out rows — how faithfully the readable
    rules reproduce the clustering.

    Parameters
    ----------
    X
        Features, ``(n, n_features)``; a DataFrame's column names are used as feature names.
    labels
        ``(n,)`` cluster of every row.
    feature_names
        Names for ``sklearn.tree.export_text`` / ``plot_tree`` (default: the DataFrame columns).
    max_depth
        Depth of the tree (3–4 stays readable: at most 8–16 leaves).
    seed
        Seed of the split and of the tree.
    test_size
        Share of rows held out to measure fidelity.
    min_samples_leaf
        Smallest leaf, so that no rule describes a handful of users.

    Returns
    -------
    (tree, fidelity)
        The fitted ``DecisionTreeClassifier`` (``tree.feature_names_in_`` set when ``X`` is a
        DataFrame) and its held-out accuracy against ``labels``.
    """
    labels = np.asarray(labels)
    if feature_names is not None and isinstance(X, pd.DataFrame):
        X = X.set_axis(feature_names, axis=1)
    elif feature_names is not None:
        X = pd.DataFrame(np.asarray(X), columns=feature_names)
    X_fit, X_held, y_fit, y_held = train_test_split(
        X, labels, test_size=test_size, random_state=seed, stratify=labels
    )
    tree = DecisionTreeClassifier(
        max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=seed
    ).fit(X_fit, y_fit)
    fidelity = float(np.mean(tree.predict(X_held) == y_held))
    return tree, fidelity
