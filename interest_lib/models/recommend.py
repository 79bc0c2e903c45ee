r"""From predicted interests to items: top-N item recommendations and their evaluation.

Every model of the book predicts *categories*. A shop shows *items*. This module turns a user's
category scores into a ranked list of items with one explicit model,

.. math::

    \mathrm{score}_u(i) \;=\; s_u(c_i)\;
    \frac{n_{ui} + \lambda\, q_i}{n_{u c_i} + \lambda},
    \qquad q_i = \frac{m_i}{\sum_{j:\, c_j = c_i} m_j},

where :math:`s_u` is the user's predicted category distribution, :math:`c_i` the category of item
:math:`i`, :math:`m_i` the item's count in the training events (its popularity), :math:`q_i` its
share within its category, :math:`n_{ui}` how often the user interacted with the item before and
:math:`n_{uc}` how often with any item of category :math:`c`. Read it as
:math:`P(\text{category}) \times P(\text{item} \mid \text{category}, \text{user})`: within the
category the user's *own* items (people re-view items) come first, smoothed towards the popular
items of the category with :math:`\lambda` pseudo-events.

Two item-level baselines share the interface: :func:`recommend_popular` (the globally most
popular items, the same list for everyone) and :func:`recommend_reviewed` (the user's most
re-viewed items, popularity breaking ties and filling the list).

Lists are evaluated by :func:`list_report` against the items each user actually touched in the
target window. A list of length :math:`N` is the top of a ranking over the **whole** catalogue,
so HR@K and NDCG@K for :math:`K \le N` are full-ranking metrics, equal to those of
:mod:`interest_lib.evaluation.metrics` on a full score matrix; no sampled negatives are involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike

from interest_lib.data.tasks import category_index

__all__ = [
    "ItemPopularity",
    "item_scores",
    "list_report",
    "recommend_items",
    "recommend_popular",
    "recommend_reviewed",
    "reviewed_scores",
    "user_item_history",
]


# --------------------------------------------------------------------------------------------
# the catalogue and its popularity
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ItemPopularity:
    """The item catalogue seen in the fitting events, each item's category and popularity.

    Items are indexed ``0 .. I-1`` in increasing id order. Fit it on training events only
    (:meth:`fit`), like every popularity count of the book.

    Attributes
    ----------
    item_ids
        ``(I,)`` sorted item ids.
    item_category
        ``(I,)`` column index of each item's category in ``category_ids`` (``-1`` if its category
        is outside the vocabulary). An item whose category varies takes its first one.
    counts
        ``(I,)`` float64 number of fitting events per item, :math:`m_i`.
    category_ids
        ``(C,)`` the category vocabulary, column order of every category score matrix.
    """

    item_ids: np.ndarray
    item_category: np.ndarray
    counts: np.ndarray
    category_ids: np.ndarray

    @classmethod
    def fit(cls, events: pd.DataFrame, category_ids: ArrayLike) -> ItemPopularity:
        """Count the events of every item in ``events`` (all behaviour types count 1).

        Parameters
        ----------
        events
            Training events with ``item_id`` and ``category_id``.
        category_ids
            ``(C,)`` category vocabulary fitted on the same training events.
        """
        category_ids = np.asarray(category_ids, dtype=np.int64)
        item = events["item_id"].to_numpy().astype(np.int64)
        item_ids, first, inverse = np.unique(item, return_index=True, return_inverse=True)
        counts = np.bincount(inverse, minlength=item_ids.size).astype(np.float64)
        category = category_index(events["category_id"].to_numpy()[first], category_ids)
        return cls(item_ids, category.astype(np.int64), counts, category_ids)

    def __len__(self) -> int:
        return int(self.item_ids.size)

    def __repr__(self) -> str:
        return f"ItemPopularity({len(self):,} items, {self.category_ids.size} categories)"

    @property
    def n_categories(self) -> int:
        """Number of categories ``C``."""
        return int(self.category_ids.size)

    def index(self, item_ids: ArrayLike) -> np.ndarray:
        """Positions of ``item_ids`` in the catalogue; ``-1`` for an item never seen in fitting."""
        item_ids = np.asarray(item_ids, dtype=np.int64)
        if len(self) == 0:
            return np.full(item_ids.shape, -1, dtype=np.int64)
        position = np.minimum(np.searchsorted(self.item_ids, item_ids), len(self) - 1)
        return np.where(self.item_ids[position] == item_ids, position, -1).astype(np.int64)

    def share_in_category(self) -> np.ndarray:
        r""":math:`q_i`: each item's share of its category's events, ``(I,)`` (0 if unknown)."""
        known = self.item_category >= 0
        totals = np.bincount(
            self.item_category[known], weights=self.counts[known], minlength=self.n_categories
        )
        out = np.zeros(len(self))
        out[known] = self.counts[known] / np.maximum(totals[self.item_category[known]], 1e-300)
        return out

    def ranking(self) -> np.ndarray:
        """All item positions, most popular first (ties: lower item id first)."""
        return np.lexsort((np.arange(len(self)), -self.counts))

    def top_by_category(self, n: int) -> np.ndarray:
        """The ``n`` most popular items of every category.

        Returns
        -------
        numpy.ndarray
            ``(C, n)`` item positions, most popular first, ``-1`` where a category has fewer
            than ``n`` items.
        """
        order = self.ranking()
        category = self.item_category[order]
        keep = category >= 0
        order, category = order[keep], category[keep]
        by_category = np.argsort(category, kind="stable")  # popularity order kept within a category
        order, category = order[by_category], category[by_category]
        start = np.searchsorted(category, np.arange(self.n_categories))
        rank = np.arange(order.size) - start[category]
        out = np.full((self.n_categories, n), -1, dtype=np.int64)
        take = rank < n
        out[category[take], rank[take]] = order[take]
        return out


def user_item_history(
    events: pd.DataFrame,
    items: ItemPopularity,
    user_ids: ArrayLike,
    *,
    end: int | None,
    start: int | None = None,
) -> sp.csr_matrix:
    r"""How often each user interacted with each catalogue item in ``[start, end)``: :math:`n_{ui}`.

    Parameters
    ----------
    events
        Canonical event table.
    items
        The catalogue; events on items outside it are ignored.
    user_ids
        ``(n_users,)`` row order.
    end
        End of the history, Unix s (exclusive), e.g. the start of the test day. Required, so a
        history never reaches into the future by accident; ``None`` uses every event.
    start
        Start of the history (``None``: from the beginning).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_users, I)`` float64 counts.
    """
    user_ids = np.asarray(user_ids, dtype=np.int64)
    time = events["timestamp"].to_numpy()
    keep = np.ones(len(events), dtype=bool)
    if start is not None:
        keep &= time >= start
    if end is not None:
        keep &= time < end
    user = events["user_id"].to_numpy()[keep]
    item = items.index(events["item_id"].to_numpy()[keep])
    order = np.argsort(user_ids, kind="stable")
    sorted_users = user_ids[order]
    if user_ids.size == 0:
        return sp.csr_matrix((0, len(items)))
    row = np.minimum(np.searchsorted(sorted_users, user), user_ids.size - 1)
    ok = (item >= 0) & (sorted_users[row] == user)
    matrix = sp.csr_matrix(
        (np.ones(int(ok.sum())), (order[row[ok]], item[ok])), shape=(user_ids.size, len(items))
    )
    matrix.sum_duplicates()
    return matrix


# --------------------------------------------------------------------------------------------
# scores and top-N lists
# --------------------------------------------------------------------------------------------


def _check_category_scores(category_scores: ArrayLike, items: ItemPopularity) -> np.ndarray:
    scores = np.asarray(category_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != items.n_categories:
        raise ValueError(
            f"category_scores must have shape (n_users, {items.n_categories}), got {scores.shape}"
        )
    if np.any(scores < 0) or not np.all(np.isfinite(scores)):
        raise ValueError("category_scores must be finite and non-negative (e.g. probabilities)")
    total = scores.sum(axis=1, keepdims=True)
    return np.divide(scores, total, out=np.zeros_like(scores), where=total > 0)


def _check_history(user_history: sp.spmatrix | None, n_users: int, items: ItemPopularity):
    if user_history is None:
        return sp.csr_matrix((n_users, len(items)))
    history = sp.csr_matrix(user_history, dtype=np.float64)
    if history.shape != (n_users, len(items)):
        raise ValueError(
            f"user_history has shape {history.shape}, expected {(n_users, len(items))}"
        )
    return history


def _history_by_category(history: sp.csr_matrix, items: ItemPopularity) -> np.ndarray:
    """:math:`n_{uc}`, ``(n_users, C)``: the user's history counts summed per category."""
    known = items.item_category >= 0
    to_category = sp.csr_matrix(
        (np.ones(int(known.sum())), (np.flatnonzero(known), items.item_category[known])),
        shape=(len(items), items.n_categories),
    )
    return np.asarray((history @ to_category).todense())


def item_scores(
    category_scores: ArrayLike,
    items: ItemPopularity,
    user_history: sp.spmatrix | None,
    candidates: ArrayLike,
    strength: float = 1.0,
) -> np.ndarray:
    r"""The module's item score :math:`s_u(c_i)\,(n_{ui} + \lambda q_i)/(n_{uc_i} + \lambda)`.

    Parameters
    ----------
    category_scores
        ``(n_users, C)`` non-negative category scores (rows are normalised to sum to 1).
    items
        The catalogue.
    user_history
        ``(n_users, I)`` counts :math:`n_{ui}` (:func:`user_item_history`), or ``None``.
    candidates
        ``(n_users, m)`` item positions to score; ``-1`` entries score ``-inf``.
    strength
        :math:`\lambda > 0`, pseudo-events drawn from the category's popular items.

    Returns
    -------
    numpy.ndarray
        ``(n_users, m)`` float64.
    """
    if strength <= 0:
        raise ValueError(f"strength must be positive, got {strength}")
    scores = _check_category_scores(category_scores, items)
    n_users = scores.shape[0]
    history = _check_history(user_history, n_users, items)
    candidates = np.asarray(candidates, dtype=np.int64)
    if candidates.ndim != 2 or candidates.shape[0] != n_users:
        raise ValueError(f"candidates must have shape ({n_users}, m), got {candidates.shape}")
    valid = candidates >= 0
    item = np.where(valid, candidates, 0)
    category = items.item_category[item]
    known = valid & (category >= 0)
    category = np.where(known, category, 0)
    rows = np.arange(n_users)[:, None]
    n_ui = _gather(history, rows, item)
    n_uc = _history_by_category(history, items)[rows, category]
    q = items.share_in_category()[item]
    out = scores[rows, category] * (n_ui + strength * q) / (n_uc + strength)
    out = np.where(known, out, 0.0)
    return np.where(valid, out, -np.inf)


def _gather(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows, cols]`` for broadcastable index arrays, as a dense float array.

    A binary search over the sorted ``row * n_cols + col`` keys of the stored entries: much faster
    than SciPy's fancy indexing for millions of look-ups.
    """
    rows, cols = np.broadcast_arrays(rows, cols)
    if matrix.nnz == 0:
        return np.zeros(rows.shape)
    coo = matrix.tocoo()
    keys = coo.row.astype(np.int64) * matrix.shape[1] + coo.col
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], coo.data[order].astype(np.float64)
    wanted = rows.astype(np.int64) * matrix.shape[1] + cols
    position = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    return np.where(keys[position] == wanted, values[position], 0.0)


def reviewed_scores(
    items: ItemPopularity, user_history: sp.spmatrix, candidates: ArrayLike
) -> np.ndarray:
    r"""The re-viewed-items baseline: :math:`n_{ui} + m_i / (1 + \sum_j m_j)`.

    The user's own count comes first; the popularity term is below 1, so it only breaks ties and
    ranks the items the user never touched. ``-1`` candidates score ``-inf``.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    history = _check_history(user_history, candidates.shape[0], items)
    valid = candidates >= 0
    item = np.where(valid, candidates, 0)
    n_ui = _gather(history, np.arange(candidates.shape[0])[:, None], item)
    out = n_ui + items.counts[item] / (1.0 + items.counts.sum())
    return np.where(valid, out, -np.inf)


def _top_n(scores: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` best distinct candidates per row (ties: lower item position first), -1 padded."""
    candidates = np.where(np.isfinite(scores), candidates, -1)
    key = np.where(candidates >= 0, scores, -np.inf)
    # sort by score (decreasing), then item position (increasing): an item listed twice (in the
    # history and among the popular items) gets the same score twice, so its copies are adjacent
    order = np.lexsort((candidates, -key), axis=1)
    ranked = np.take_along_axis(candidates, order, axis=1)
    duplicate = np.zeros(ranked.shape, dtype=bool)
    duplicate[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
    ranked = np.where(duplicate | (ranked < 0), -1, ranked)
    # move the -1 entries to the end, keeping the order of the others
    ranked = np.take_along_axis(ranked, np.argsort(ranked < 0, axis=1, kind="stable"), axis=1)
    out = np.full((ranked.shape[0], n), -1, dtype=np.int64)
    width = min(n, ranked.shape[1])
    out[:, :width] = ranked[:, :width]
    return out


def _history_candidates(history: sp.csr_matrix) -> np.ndarray:
    """Each user's history items as a ``-1``-padded ``(n_users, max_items)`` array."""
    history = history.tocsr()
    history.eliminate_zeros()
    lengths = np.diff(history.indptr)
    width = int(lengths.max(initial=0))
    out = np.full((history.shape[0], width), -1, dtype=np.int64)
    row = np.repeat(np.arange(history.shape[0]), lengths)
    col = np.arange(history.nnz) - np.repeat(history.indptr[:-1], lengths)
    out[row, col] = history.indices
    return out


def recommend_items(
    category_scores: ArrayLike,
    category_ids: ArrayLike,
    item_popularity: ItemPopularity,
    user_history: sp.spmatrix | None,
    n: int = 10,
    *,
    strength: float = 1.0,
) -> np.ndarray:
    r"""Top-``n`` items per user from predicted category scores (the module's item score).

    The list is the exact top ``n`` of :func:`item_scores` over the *whole* catalogue: within a
    category an item the user never touched scores :math:`s_u(c)\,\lambda q_i / (n_{uc} + \lambda)`,
    which grows with its popularity, so the user's own items plus the ``n`` most popular items of
    every category contain the top ``n``. Only those candidates are scored.

    Parameters
    ----------
    category_scores
        ``(n_users, C)`` non-negative scores over the categories (a model's predicted next
        category distribution), columns in the order of ``category_ids``.
    category_ids
        ``(C,)`` the vocabulary of the scores; must equal ``item_popularity.category_ids``.
    item_popularity
        The catalogue with training popularity (:meth:`ItemPopularity.fit`).
    user_history
        ``(n_users, I)`` counts of the user's earlier interactions with each item
        (:func:`user_item_history`), ``None`` for no history.
    n
        Length of each list.
    strength
        :math:`\lambda > 0` of :func:`item_scores`.

    Returns
    -------
    numpy.ndarray
        ``(n_users, n)`` **item ids**, best first (``-1`` if the catalogue has fewer items).

    Examples
    --------
    >>> items = ItemPopularity.fit(split.train, vocab.ids)
    >>> history = user_item_history(events, items, users, end=split.valid_end)
    >>> recommend_items(scores, vocab.ids, items, history, n=10)  # doctest: +SKIP
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    items = item_popularity
    if not np.array_equal(np.asarray(category_ids, dtype=np.int64), items.category_ids):
        raise ValueError("category_ids differ from the catalogue's category vocabulary")
    if strength <= 0:
        raise ValueError(f"strength must be positive, got {strength}")
    scores = _check_category_scores(category_scores, items)
    history = _check_history(user_history, scores.shape[0], items)
    popular = items.top_by_category(n)  # (C, n) item positions, -1 padded
    best_share = np.where(popular[:, 0] >= 0, items.share_in_category()[np.maximum(popular[:, 0], 0)], 0.0)
    n_uc = _history_by_category(history, items)
    # an untouched item of category c scores at most s_c * lambda * q_top(c) / (n_uc + lambda):
    # the categories with the n highest such bounds hold every untouched item of the top n
    bound = scores * strength * best_share / (n_uc + strength)
    top_categories = np.argsort(-bound, axis=1, kind="stable")[:, : min(n, items.n_categories)]
    out = np.full((scores.shape[0], n), -1, dtype=np.int64)
    lengths = np.diff(history.indptr)
    by_length = np.argsort(lengths, kind="stable")  # similar history lengths pad little
    for lo in range(0, by_length.size, _BLOCK_USERS):
        rows = by_length[lo : lo + _BLOCK_USERS]
        own = _history_candidates(history[rows])
        fresh = popular[top_categories[rows]].reshape(rows.size, -1)
        fresh = np.where(_gather(history[rows], np.arange(rows.size)[:, None], np.maximum(fresh, 0)) > 0,
                         -1, fresh)  # already among the user's own items
        candidates = np.hstack([own, fresh])
        values = item_scores(scores[rows], items, history[rows], candidates, strength)
        out[rows] = _top_n(values, candidates, n)
    return np.where(out >= 0, items.item_ids[np.maximum(out, 0)], -1)


_BLOCK_USERS = 512


def recommend_popular(item_popularity: ItemPopularity, n_users: int, n: int = 10) -> np.ndarray:
    """The global item-popularity baseline: the same ``n`` most popular item ids for every user.

    Returns
    -------
    numpy.ndarray
        ``(n_users, n)`` item ids (``-1`` padded if the catalogue is smaller).
    """
    top = item_popularity.ranking()[:n]
    ids = np.full(n, -1, dtype=np.int64)
    ids[: top.size] = item_popularity.item_ids[top]
    return np.tile(ids, (n_users, 1))


def recommend_reviewed(
    item_popularity: ItemPopularity, user_history: sp.spmatrix, n: int = 10
) -> np.ndarray:
    """The re-viewed-items baseline: each user's most frequent items, then popular items.

    Scores are :func:`reviewed_scores`; the list is exact over the whole catalogue.

    Returns
    -------
    numpy.ndarray
        ``(n_users, n)`` item ids.
    """
    history = _check_history(user_history, user_history.shape[0], item_popularity)
    own = _history_candidates(history)
    popular = item_popularity.ranking()[:n]
    candidates = np.hstack([own, np.tile(popular, (history.shape[0], 1))])
    top = _top_n(reviewed_scores(item_popularity, history, candidates), candidates, n)
    return np.where(top >= 0, item_popularity.item_ids[np.maximum(top, 0)], -1)


# --------------------------------------------------------------------------------------------
# evaluating lists
# --------------------------------------------------------------------------------------------


def list_report(
    recommended: ArrayLike,
    relevant: Sequence[ArrayLike] | ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
) -> pd.DataFrame:
    r"""Per-user HR@K, NDCG@K (binary relevance) and reciprocal rank of top-N lists.

    For user :math:`u` with relevant set :math:`R_u` and list :math:`L_u`,

    .. math::

        \mathrm{HR@K}_u = \mathbb{1}\big[L_u[0{:}K] \cap R_u \ne \emptyset\big],\qquad
        \mathrm{NDCG@K}_u = \frac{\sum_{r < K} [L_u[r] \in R_u] / \log_2(r + 2)}
                                 {\sum_{r < \min(K, |R_u|)} 1 / \log_2(r + 2)},

    and the reciprocal rank is :math:`1/(r + 1)` for the first relevant item at rank :math:`r`
    of the list, 0 if none is in the list. A list of length :math:`N` is the top of a full
    ranking, so for :math:`K \le N` these equal :func:`interest_lib.evaluation.metrics.hit_rate_at_k` and
    :func:`~interest_lib.evaluation.metrics.ndcg_at_k` with a binary relevance matrix.

    Parameters
    ----------
    recommended
        ``(n_users, N)`` item ids, best first; ``-1`` entries are empty places.
    relevant
        Per user, the item ids that count as hits: a sequence of arrays, or one array of single
        targets ``(n_users,)``. A user with no relevant item gets ``NaN``.
    ks
        Cut-offs, each at most ``N``.

    Returns
    -------
    pandas.DataFrame
        One row per user; columns ``HR@K``, ``NDCG@K`` for each K, then ``MRR@N``.
    """
    recommended = np.asarray(recommended, dtype=np.int64)
    if recommended.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, N), got shape {recommended.shape}")
    n_users, width = recommended.shape
    for k in ks:
        if int(k) != k or not 1 <= k <= width:
            raise ValueError(f"every k must lie in 1 .. N = {width}, got {k}")
    if isinstance(relevant, np.ndarray) and relevant.ndim == 1 and relevant.dtype != object:
        relevant = [relevant[i : i + 1] for i in range(relevant.size)]
    if len(relevant) != n_users:
        raise ValueError(f"relevant has {len(relevant)} users, recommended {n_users}")
    # one key per (user, item) pair, so membership is a single vectorised look-up
    lengths = np.array([np.asarray(r).size for r in relevant], dtype=np.int64)
    flat = (np.concatenate([np.asarray(r, dtype=np.int64).ravel() for r in relevant])
            if n_users else np.zeros(0, dtype=np.int64))
    owner = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    low = min(int(flat.min(initial=0)), int(recommended.min(initial=0)))
    span = max(int(flat.max(initial=0)), int(recommended.max(initial=0))) - low + 1
    relevant_keys = np.unique(owner * span + (flat - low))
    sizes = np.bincount(relevant_keys // span, minlength=n_users)
    listed = np.arange(n_users, dtype=np.int64)[:, None] * span + (recommended - low)
    hit = np.isin(listed, relevant_keys) & (recommended >= 0)
    discount = 1.0 / np.log2(np.arange(width) + 2.0)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])
    columns: dict[str, np.ndarray] = {}
    has = sizes > 0
    for k in ks:
        dcg = (hit[:, :k] * discount[:k]).sum(axis=1)
        idcg = ideal[np.minimum(sizes, k)]
        columns[f"HR@{k}"] = np.where(has, hit[:, :k].any(axis=1), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[f"NDCG@{k}"] = np.where(has, dcg / idcg, np.nan)
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), width)
    columns[f"MRR@{width}"] = np.where(has, np.where(first < width, 1.0 / (first + 1.0), 0.0), np.nan)
    return pd.DataFrame(columns)
