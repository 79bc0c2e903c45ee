r"""Ranking and classification metrics for the evaluation protocol of the book.

Every ranking metric ranks the **full** candidate set (all items or all categories); there are no
sampled negatives. Inputs share one layout:

``scores``
    array of shape ``(n_users, n_items)``, higher means ranked earlier. Must be finite.
``targets``
    either an integer array of shape ``(n_users,)`` holding the index of the single relevant item
    of each user, or a relevance matrix of shape ``(n_users, n_items)`` (binary or graded, for
    example a next-window interest distribution), dense or ``scipy.sparse``.

Conventions used throughout:

* **Ranks are 0-based**: the top item has rank 0.
* **Ties** in ``scores`` are broken by item index: among equal scores the lower item index ranks
  first. The rule is deterministic but not neutral: a constant score matrix degenerates to index
  order, which flatters whatever sits at low indices. Give models continuous scores, or add a tiny
  tie-breaker of your own, when ties matter.
* **A negative single target** (for instance ``-1`` for a category outside the training vocabulary)
  means the relevant item is not among the candidates: it counts as a miss (rank ``n_items``,
  hit 0, reciprocal rank 0, NDCG 0). Users stay in the average.
* **A relevance row without any positive entry** (a user with no activity in the target window)
  has no defined ranking metric: its per-user value is ``NaN`` and averages leave it out.
* Any positive relevance counts as relevant for the hit rate and the reciprocal rank; the NDCG
  uses the graded value as gain.

Every ranking metric returns the mean over users, or with ``per_user=True`` the array of per-user
values (``NaN`` where undefined) for :func:`bootstrap_ci` and :func:`bootstrap_diff_ci`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike

TIE_TOLERANCE: float = 0.05
"""Relative difference under which two results count as a tie (5 %)."""

_BLOCK_ELEMENTS = 1 << 22  # about 4 M cells per block keeps temporaries near 100 MB at most


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _check_scores(scores: ArrayLike) -> np.ndarray:
    scores = np.asarray(scores)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)  # float32 stays float32: no copy of a large matrix
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (n_users, n_items), got shape {scores.shape}")
    if scores.shape[1] == 0:
        raise ValueError("scores has no items to rank")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values")
    return scores


def _is_index_targets(targets: object) -> bool:
    if sp.issparse(targets):
        return False
    return np.asarray(targets).ndim == 1


def _check_index_targets(targets: ArrayLike, scores: np.ndarray) -> np.ndarray:
    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"single targets must be integer item indices, got dtype {targets.dtype}")
    if targets.shape != (scores.shape[0],):
        raise ValueError(
            f"targets has shape {targets.shape}, expected ({scores.shape[0]},) to match scores"
        )
    if np.any(targets >= scores.shape[1]):
        raise ValueError(f"a target index is >= n_items = {scores.shape[1]}")
    return targets.astype(np.int64)


def _check_relevance(relevance: object, scores: np.ndarray) -> np.ndarray | sp.csr_matrix:
    if sp.issparse(relevance):
        relevance = sp.csr_matrix(relevance, dtype=np.float64)
        values = relevance.data
    else:
        relevance = np.asarray(relevance, dtype=np.float64)
        values = relevance
    if relevance.shape != scores.shape:
        raise ValueError(
            f"relevance has shape {relevance.shape}, expected {scores.shape} to match scores"
        )
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise ValueError("relevance must be finite and non-negative")
    return relevance


def _row_blocks(n_rows: int, n_cols: int) -> list[slice]:
    size = max(1, _BLOCK_ELEMENTS // max(n_cols, 1))
    return [slice(i, min(i + size, n_rows)) for i in range(0, n_rows, size)]


def _check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


# --------------------------------------------------------------------------------------------
# the core: one pass that yields the first relevant rank and the NDCG at several cut-offs
# --------------------------------------------------------------------------------------------


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(n, dtype=np.float64) + 2.0)


def _single_target_rank(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank of each single target; ``n_items`` for a negative (out-of-set) target."""
    n_users, n_items = scores.shape
    ranks = np.full(n_users, n_items, dtype=np.int64)
    item_index = np.arange(n_items)
    for rows in _row_blocks(n_users, n_items):
        block = scores[rows]
        target = targets[rows]
        known = target >= 0
        target_score = block[np.arange(block.shape[0]), np.where(known, target, 0)][:, None]
        ahead = (block > target_score) | (
            (block == target_score) & (item_index[None, :] < target[:, None])
        )
        ranks[rows] = np.where(known, ahead.sum(axis=1), n_items)
    return ranks


def _rank_statistics(
    scores: np.ndarray, targets: object, ks: Sequence[int]
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Return the rank of the first relevant item (float, NaN if none) and NDCG@k per k."""
    n_users, n_items = scores.shape
    ks = [_check_k(k) for k in ks]
    if _is_index_targets(targets):
        index_targets = _check_index_targets(targets, scores)
        ranks = _single_target_rank(scores, index_targets).astype(np.float64)
        gain = np.where(index_targets >= 0, 1.0 / np.log2(ranks + 2.0), 0.0)
        ndcg = {k: np.where(ranks < k, gain, 0.0) for k in ks}
        return ranks, ndcg

    relevance = _check_relevance(targets, scores)
    depth = min(max(ks), n_items) if ks else 0
    discount = _discounts(depth)
    first_rank = np.full(n_users, np.nan)
    ndcg = {k: np.full(n_users, np.nan) for k in ks}
    item_index = np.arange(n_items)
    for rows in _row_blocks(n_users, n_items):
        block = scores[rows]
        rel = relevance[rows]
        rel = rel.toarray() if sp.issparse(rel) else rel
        relevant = rel > 0
        has_relevant = relevant.any(axis=1)
        # the best-ranked relevant item: highest score, then lowest index; its rank is then
        # computed like a single target's, in O(n_items) per user without sorting
        best_score = np.where(relevant, block, -np.inf).max(axis=1, keepdims=True)
        best_item = (relevant & (block == best_score)).argmax(axis=1)
        ahead = (block > best_score) | ((block == best_score) & (item_index < best_item[:, None]))
        first_rank[rows] = np.where(has_relevant, ahead.sum(axis=1), np.nan)
        if not ks:
            continue
        ranked_rel = np.take_along_axis(rel, _top_items(block, depth), axis=1)
        ideal = _top_values(rel, depth)
        # cumulative row-wise sums (not a matrix product): a user's value never depends on the
        # block, and NDCG@k for every k <= depth comes from one ranked prefix
        dcg = np.cumsum(ranked_rel * discount, axis=1)
        idcg = np.cumsum(ideal * discount, axis=1)
        for k in ks:
            kk = min(k, n_items) - 1
            with np.errstate(invalid="ignore", divide="ignore"):
                ndcg[k][rows] = np.where(idcg[:, kk] > 0, dcg[:, kk] / idcg[:, kk], np.nan)
    return first_rank, ndcg


def _top_items(block: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the ``depth`` best items per row, best first, lower index first among ties.

    Shape ``(n_rows, depth)``. Runs in ``O(n_items)`` per row plus a sort of ``depth`` values,
    instead of sorting every row.
    """
    n_rows, n_items = block.shape
    if depth >= n_items:
        return np.argsort(-block, axis=1, kind="stable")  # stable: lower index first
    # the depth-th highest score of each row; everything above it is in, ties on it fill up the
    # remaining places by increasing index
    threshold = np.partition(block, n_items - depth, axis=1)[:, n_items - depth, None]
    above = block > threshold
    chosen = block >= threshold
    places_left = depth - above.sum(axis=1)
    crowded = np.flatnonzero(chosen.sum(axis=1) > depth)  # more ties than places: rare
    if crowded.size:
        on_threshold = chosen[crowded] & ~above[crowded]
        in_time = np.cumsum(on_threshold, axis=1) <= places_left[crowded, None]
        chosen[crowded] = above[crowded] | (on_threshold & in_time)
    items = np.nonzero(chosen)[1].reshape(n_rows, depth)  # increasing index within each row
    order = np.argsort(-np.take_along_axis(block, items, axis=1), axis=1, kind="stable")
    return np.take_along_axis(items, order, axis=1)


def _top_values(values: np.ndarray, depth: int) -> np.ndarray:
    """The ``depth`` largest values of each non-negative row, decreasing, zero-padded.

    Shape ``(n_rows, depth)``. Only the non-zero entries are sorted: relevance rows are sparse.
    """
    rows, cols = np.nonzero(values)
    nonzero = values[rows, cols]
    order = np.lexsort((-nonzero, rows))
    rows, nonzero = rows[order], nonzero[order]
    position = np.arange(rows.size) - np.searchsorted(rows, rows)  # place within its row
    keep = position < depth
    top = np.zeros((values.shape[0], depth), dtype=np.float64)
    top[rows[keep], position[keep]] = nonzero[keep]
    return top


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _reciprocal(ranks: np.ndarray, n_items: int) -> np.ndarray:
    out = 1.0 / (ranks + 1.0)
    return np.where(ranks >= n_items, 0.0, out)  # an out-of-set target is never retrieved


# --------------------------------------------------------------------------------------------
# public ranking metrics
# --------------------------------------------------------------------------------------------


def target_rank(scores: ArrayLike, targets: ArrayLike | sp.spmatrix) -> np.ndarray:
    r"""0-based rank of each user's target in the full ranking.

    For a single target :math:`t_u`,

    .. math:: r_u = \#\{i : s_{ui} > s_{ut_u}\} + \#\{i < t_u : s_{ui} = s_{ut_u}\},

    so among equal scores the lower item index ranks first (a constant score matrix degenerates
    to index order). For a relevance matrix the rank is that of the best-ranked relevant item.

    Parameters
    ----------
    scores
        Shape ``(n_users, n_items)``; higher is better.
    targets
        Integer indices, shape ``(n_users,)``, or a relevance matrix ``(n_users, n_items)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_users,)``. For single targets an ``int64`` array, with ``n_items`` for a
        negative (out-of-set) target. For a relevance matrix a ``float64`` array, ``NaN`` for a
        user without any relevant item.
    """
    scores = _check_scores(scores)
    if _is_index_targets(targets):
        return _single_target_rank(scores, _check_index_targets(targets, scores))
    first_rank, _ = _rank_statistics(scores, targets, ks=[1])
    return first_rank


def hit_rate_at_k(
    scores: ArrayLike, targets: ArrayLike | sp.spmatrix, k: int = 10, *, per_user: bool = False
) -> float | np.ndarray:
    r"""Hit rate at K: the share of users with a relevant item among their top K.

    .. math:: \mathrm{HR@K} = \frac{1}{|U|} \sum_{u \in U} \mathbb{1}[r_u < K],

    where :math:`r_u` is the 0-based rank of the first relevant item (:func:`target_rank`).
    With a single target this is also called recall at K.

    Parameters
    ----------
    scores
        Shape ``(n_users, n_items)``; higher is better.
    targets
        Integer indices ``(n_users,)`` or relevance matrix ``(n_users, n_items)``.
    k
        Cut-off, at least 1. A ``k`` larger than ``n_items`` behaves like ``n_items``.
    per_user
        Return the per-user values (0, 1 or ``NaN``) instead of their mean.

    Returns
    -------
    float or numpy.ndarray
        Mean over users with a relevant item, in [0, 1]; or per-user values, shape ``(n_users,)``.
    """
    scores = _check_scores(scores)
    k = _check_k(k)
    ranks, _ = _rank_statistics(scores, targets, ks=[])
    # rank n_items marks a target outside the ranked set (-1): a miss for every k
    hit = (ranks < k) & (ranks < scores.shape[1])
    values = np.where(np.isnan(ranks), np.nan, hit.astype(np.float64))
    return values if per_user else _mean(values)


def accuracy(
    scores: ArrayLike, targets: ArrayLike | sp.spmatrix, *, per_user: bool = False
) -> float | np.ndarray:
    r"""Top-1 accuracy, :math:`\mathrm{HR@1}`: is the highest-scored item relevant?

    See :func:`hit_rate_at_k` for the parameters; ties follow the module's lower-index rule.
    """
    return hit_rate_at_k(scores, targets, k=1, per_user=per_user)


def ndcg_at_k(
    scores: ArrayLike, targets: ArrayLike | sp.spmatrix, k: int = 10, *, per_user: bool = False
) -> float | np.ndarray:
    r"""Normalised discounted cumulative gain at K, with graded relevance.

    .. math::

        \mathrm{DCG@K}_u = \sum_{r=0}^{K-1} \frac{\mathrm{rel}_{u,\pi_u(r)}}{\log_2(r + 2)},
        \qquad
        \mathrm{NDCG@K}_u = \frac{\mathrm{DCG@K}_u}{\mathrm{IDCG@K}_u},

    where :math:`\pi_u(r)` is the item at rank :math:`r` and :math:`\mathrm{IDCG@K}_u` is the DCG
    of the relevances sorted in decreasing order. The gain is the relevance itself (linear gain,
    as in :func:`sklearn.metrics.ndcg_score`). For a single target the value is
    :math:`1/\log_2(r_u + 2)` when :math:`r_u < K`, else 0.

    Users without any relevant item get ``NaN`` and are left out of the mean (scikit-learn instead
    scores them 0). Ties follow the lower-index rule, whereas scikit-learn averages over tied
    items; both agree when scores have no ties.

    Parameters
    ----------
    scores
        Shape ``(n_users, n_items)``; higher is better.
    targets
        Integer indices ``(n_users,)`` or relevance matrix ``(n_users, n_items)``, non-negative.
    k
        Cut-off, at least 1.
    per_user
        Return the per-user values instead of their mean.

    Returns
    -------
    float or numpy.ndarray
        Mean NDCG@K in [0, 1], or per-user values of shape ``(n_users,)``.
    """
    scores = _check_scores(scores)
    k = _check_k(k)
    _, ndcg = _rank_statistics(scores, targets, ks=[k])
    return ndcg[k] if per_user else _mean(ndcg[k])


def mrr(
    scores: ArrayLike, targets: ArrayLike | sp.spmatrix, *, per_user: bool = False
) -> float | np.ndarray:
    r"""Mean reciprocal rank of the first relevant item over the full list.

    .. math:: \mathrm{MRR} = \frac{1}{|U|} \sum_{u \in U} \frac{1}{r_u + 1},

    with :math:`r_u` the 0-based rank of the first relevant item. An out-of-set single target
    (negative index) contributes 0; a user without relevant items is left out (``NaN``).

    Parameters
    ----------
    scores
        Shape ``(n_users, n_items)``; higher is better.
    targets
        Integer indices ``(n_users,)`` or relevance matrix ``(n_users, n_items)``.
    per_user
        Return the per-user reciprocal ranks instead of their mean.

    Returns
    -------
    float or numpy.ndarray
        Mean reciprocal rank in (0, 1], or per-user values of shape ``(n_users,)``.
    """
    scores = _check_scores(scores)
    ranks, _ = _rank_statistics(scores, targets, ks=[])
    values = _reciprocal(ranks, scores.shape[1])
    return values if per_user else _mean(values)


def ranking_report(
    scores: ArrayLike,
    targets: ArrayLike | sp.spmatrix,
    ks: Sequence[int] = (1, 5, 10, 20),
    *,
    per_user: bool = False,
) -> dict[str, float] | pd.DataFrame:
    """HR@K and NDCG@K for every K, and MRR, from a single ranking pass.

    Parameters
    ----------
    scores
        Shape ``(n_users, n_items)``; higher is better.
    targets
        Integer indices ``(n_users,)`` or relevance matrix ``(n_users, n_items)``.
    ks
        Cut-offs, each at least 1.
    per_user
        Return a frame of per-user values (one row per user) instead of the means.

    Returns
    -------
    dict or pandas.DataFrame
        Keys (or columns) ``HR@1, NDCG@1, HR@5, ..., MRR``. A list of such dicts makes a
        leaderboard: ``pd.DataFrame([report_a, report_b], index=["a", "b"])``.
    """
    scores = _check_scores(scores)
    ks = [_check_k(k) for k in ks]
    ranks, ndcg = _rank_statistics(scores, targets, ks=ks)
    columns: dict[str, np.ndarray] = {}
    for k in ks:
        columns[f"HR@{k}"] = np.where(np.isnan(ranks), np.nan, (ranks < k).astype(np.float64))
        columns[f"NDCG@{k}"] = ndcg[k]
    columns["MRR"] = _reciprocal(ranks, scores.shape[1])
    if per_user:
        return pd.DataFrame(columns)
    return {name: _mean(values) for name, values in columns.items()}


# --------------------------------------------------------------------------------------------
# classification metrics
# --------------------------------------------------------------------------------------------


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None) -> float:
    r"""Macro-averaged F1 score of class labels.

    Per class :math:`c`, :math:`F_1(c) = \frac{2\,TP_c}{2\,TP_c + FP_c + FN_c}`, and the macro
    average is the unweighted mean over classes, so rare classes weigh as much as common ones.

    Parameters
    ----------
    y_true, y_pred
        Integer class labels, shape ``(n,)``.
    n_classes
        ``None`` averages over the classes that occur in ``y_true`` or ``y_pred`` (as
        :func:`sklearn.metrics.f1_score` with ``average="macro"``). An integer fixes the classes to
        ``0 .. n_classes - 1``; a class that neither occurs nor is predicted then scores 0 (as
        scikit-learn with ``labels=range(n_classes), zero_division=0``).

    Returns
    -------
    float
        Macro F1 in [0, 1].
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-D shapes"
        )
    if y_true.size == 0:
        raise ValueError("macro_f1 of an empty set is undefined")
    if n_classes is None:
        classes, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
        true_codes, pred_codes = codes[: y_true.size], codes[y_true.size :]
        n = classes.size
    else:
        for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
            if np.any((labels < 0) | (labels >= n_classes)):
                raise ValueError(f"{name} holds a label outside 0 .. {n_classes - 1}")
        true_codes, pred_codes, n = y_true.astype(np.int64), y_pred.astype(np.int64), n_classes
    true_positive = np.bincount(true_codes[true_codes == pred_codes], minlength=n)
    support = np.bincount(true_codes, minlength=n)
    predicted = np.bincount(pred_codes, minlength=n)
    denominator = support + predicted  # = 2 TP + FP + FN
    f1 = np.divide(
        2.0 * true_positive, denominator, out=np.zeros(n, dtype=np.float64), where=denominator > 0
    )
    return float(f1.mean())


def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    r"""Area under the ROC curve of a binary task (Mann–Whitney form).

    .. math::

        \mathrm{AUC} = \frac{1}{n_+ n_-} \sum_{i: y_i = 1} \sum_{j: y_j = 0}
        \left(\mathbb{1}[s_i > s_j] + \tfrac12 \mathbb{1}[s_i = s_j]\right),

    the probability that a random positive outscores a random negative, ties counted one half.
    Computed from average ranks in :math:`O(n \log n)`.

    Parameters
    ----------
    y_true
        Binary labels (0/1 or booleans), shape ``(n,)``; both classes must occur.
    y_score
        Scores, shape ``(n,)``; higher means more likely positive.

    Returns
    -------
    float
        AUC in [0, 1]; 0.5 is chance.
    """
    from scipy.stats import rankdata

    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true {y_true.shape} and y_score {y_score.shape} must be equal 1-D shapes"
        )
    if not np.isin(y_true, [0, 1]).all():
        raise ValueError("auc is for binary labels 0/1")
    positive = y_true.astype(bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("auc needs at least one positive and one negative example")
    ranks = rankdata(y_score)  # average ranks: a tie contributes one half
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# --------------------------------------------------------------------------------------------
# uncertainty and comparison
# --------------------------------------------------------------------------------------------


class ConfidenceInterval(NamedTuple):
    """A point estimate with a two-sided bootstrap interval; unpacks as ``(estimate, low, high)``."""

    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:.4f} [{self.low:.4f}, {self.high:.4f}]"

    def side(self) -> int:
        """Where the interval lies with respect to 0: ``1`` above it, ``-1`` below it, ``0`` when
        it holds 0. For the interval of a difference, ``1`` is a difference the data show."""
        if self.low > 0:
            return 1
        return -1 if self.high < 0 else 0


def _bootstrap_statistics(
    columns: tuple[np.ndarray, ...],
    statistic: Callable[..., float] | None,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    n = columns[0].shape[0]
    rng = np.random.default_rng(seed)
    if statistic is None:  # the mean, vectorised over blocks of replicates
        values = columns[0]
        out = np.empty(n_boot)
        block = max(1, _BLOCK_ELEMENTS // n)
        for start in range(0, n_boot, block):
            stop = min(start + block, n_boot)
            index = rng.integers(0, n, size=(stop - start, n))
            out[start:stop] = values[index].mean(axis=1)
        return out
    out = np.empty(n_boot)
    for b in range(n_boot):
        index = rng.integers(0, n, size=n)
        out[b] = statistic(*(column[index] for column in columns))
    return out


def _interval(estimate: float, replicates: np.ndarray, alpha: float) -> ConfidenceInterval:
    low, high = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return ConfidenceInterval(float(estimate), float(low), float(high))


def _check_alpha(alpha: float, n_boot: int) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")


def bootstrap_ci(
    values: ArrayLike | tuple[ArrayLike, ...],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    *,
    statistic: Callable[..., float] | None = None,
) -> ConfidenceInterval:
    r"""Percentile bootstrap confidence interval over users.

    Users are resampled with replacement ``n_boot`` times; the interval is the
    :math:`\alpha/2` and :math:`1 - \alpha/2` quantiles of the statistic over the replicates,
    and the estimate is the statistic on the original sample.

    Parameters
    ----------
    values
        Per-user values, shape ``(n_users,)``, e.g. ``hit_rate_at_k(..., per_user=True)``.
        ``NaN`` entries (users where the metric is undefined) are dropped first. With a
        ``statistic``, a tuple of equally long arrays may be given; they are resampled together
        and passed positionally, e.g. ``bootstrap_ci((y_true, y_pred), statistic=macro_f1)``.
    n_boot
        Number of bootstrap replicates.
    alpha
        One minus the coverage: 0.05 gives a 95 % interval.
    seed
        Seed of the resampling; the same seed gives the same interval.
    statistic
        Function of the resampled arrays; ``None`` means the mean (vectorised, fast).

    Returns
    -------
    ConfidenceInterval
        ``(estimate, low, high)``.
    """
    _check_alpha(alpha, n_boot)
    if statistic is None:
        column = np.asarray(values, dtype=np.float64).ravel()
        columns: tuple[np.ndarray, ...] = (column[~np.isnan(column)],)
    elif isinstance(values, tuple):
        columns = tuple(np.asarray(v) for v in values)
    else:
        columns = (np.asarray(values),)
    lengths = {c.shape[0] for c in columns}
    if len(lengths) != 1:
        raise ValueError(f"arrays to resample together differ in length: {sorted(lengths)}")
    if columns[0].shape[0] == 0:
        raise ValueError("no values to bootstrap")
    estimate = float(np.mean(columns[0])) if statistic is None else float(statistic(*columns))
    replicates = _bootstrap_statistics(columns, statistic, n_boot, seed)
    return _interval(estimate, replicates, alpha)


def bootstrap_diff_ci(
    a: ArrayLike, b: ArrayLike, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> ConfidenceInterval:
    r"""Paired bootstrap interval for the difference of two methods' means on the same users.

    The estimate is :math:`\bar a - \bar b = \overline{a - b}`; each replicate resamples users and
    keeps the pairing, so the interval is much narrower than comparing two separate intervals.
    An interval that excludes 0 means the difference is unlikely to be resampling noise.

    Parameters
    ----------
    a, b
        Per-user values of two methods, shape ``(n_users,)``, in the same user order. Users where
        either is ``NaN`` are dropped.
    n_boot, alpha, seed
        As in :func:`bootstrap_ci`.

    Returns
    -------
    ConfidenceInterval
        ``(estimate, low, high)`` of ``mean(a) - mean(b)``.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values must have equal shapes, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    return bootstrap_ci(a[keep] - b[keep], n_boot=n_boot, alpha=alpha, seed=seed)


def relative_difference(a: float, b: float) -> float:
    r"""Signed relative difference of two results, relative to the larger magnitude.

    .. math:: d(a, b) = \frac{a - b}{\max(|a|, |b|)}, \qquad d(0, 0) = 0.

    It is antisymmetric, :math:`d(a, b) = -d(b, a)`, so the tie rule does not depend on which
    method is named first.
    """
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else (a - b) / scale


def is_tie(a: float, b: float, tolerance: float = TIE_TOLERANCE) -> bool:
    """The book's tie rule: two results tie when their relative difference is under 5 %.

    Parameters
    ----------
    a, b
        Two values of the same metric (for instance two mean HR@10).
    tolerance
        Relative difference below which the results tie; default :data:`TIE_TOLERANCE`.
    """
    return abs(relative_difference(a, b)) < tolerance
