r"""Features built from the event table: vocabularies, user × category matrices and targets.

Fit vocabularies on **training events only** (CONTRIBUTING.md, "Evaluation protocol"). A category that first appears after the
training period has no column in any matrix built here: ``behavior_matrix`` and
``next_window_targets`` drop such events by default (``unknown="drop"``) or raise
(``unknown="raise"``); :meth:`Vocabulary.index` maps it to ``-1`` or raises, as asked.

All matrices are ``scipy.sparse.csr_matrix`` with users as rows and categories as columns. They are
built in one vectorised pass (a COO triplet summed into CSR), so a million users by ten thousand
categories with tens of millions of events fits comfortably in memory.

Time windows are half-open, ``start <= timestamp < end``, in Unix seconds; ``None`` leaves a side
open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Literal, TypeVar, overload

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize

from interest_lib.data.schema import BEHAVIOR_TYPES, behavior_codes

BEHAVIOR_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"pv": 1.0, "fav": 2.0, "cart": 3.0, "buy": 4.0}
)
"""Default behavior weights: a stronger signal of interest counts more (pv < fav < cart < buy)."""

UNIT_WEIGHTS: Mapping[str, float] = MappingProxyType({b: 1.0 for b in BEHAVIOR_TYPES})
"""Every behavior counts 1: plain event counts, the alternative to compare against."""

UnknownPolicy = Literal["raise", "minus_one"]
DropPolicy = Literal["drop", "raise"]
V = TypeVar("V", bound="Vocabulary")


# --------------------------------------------------------------------------------------------
# vocabularies
# --------------------------------------------------------------------------------------------


def _as_ids(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as ``int64``, with a clear message for missing or fractional ids."""
    array = np.asarray(values)
    if array.dtype.kind == "f":
        if np.isnan(array).any():
            raise ValueError(f"{name} contain missing values (NaN); clean the events first")
        if np.any(array != np.round(array)):
            raise ValueError(f"{name} must be integers, got fractional values")
    try:
        return array.astype(np.int64, copy=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be integers: {error}") from None


@dataclass(frozen=True, repr=False, eq=False)
class Vocabulary:
    """A fixed list of ids and their positions (row or column indices).

    Parameters
    ----------
    ids
        Unique integer ids, shape ``(n,)``. Their order is the index order: ``ids[i]`` has index
        ``i``. :meth:`fit` gives them in increasing order.
    """

    ids: np.ndarray
    column: ClassVar[str] = ""
    _lookup: pd.Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, dtype=np.int64).ravel()
        lookup = pd.Index(ids)  # a hash table: far faster than a binary search for big lookups
        if not lookup.is_unique:
            duplicate = ids[lookup.duplicated()][0]
            raise ValueError(f"{type(self).__name__} ids must be unique; {duplicate} repeats")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def fit(cls: type[V], events: pd.DataFrame | ArrayLike) -> V:
        """The sorted distinct ids found in ``events``.

        Parameters
        ----------
        events
            The (training) event table, whose :attr:`column` is read, or an array of ids.
        """
        if isinstance(events, pd.DataFrame):
            if cls.column not in events.columns:
                raise ValueError(f"event table has no column {cls.column!r}")
            values = events[cls.column].to_numpy()
        else:
            values = np.asarray(events)
        return cls(np.sort(pd.unique(_as_ids(values, cls.column or "ids").ravel())))

    @classmethod
    def of(cls: type[V], vocabulary: Vocabulary | ArrayLike) -> V:
        """``vocabulary`` itself, or a vocabulary of the ids in the array ``vocabulary``.

        Every function of the package that takes a vocabulary accepts either form; the ids'
        order is the column order.
        """
        if isinstance(vocabulary, cls):
            return vocabulary
        return cls(np.asarray(vocabulary))

    def __len__(self) -> int:
        return int(self.ids.size)

    def __array__(self, dtype: object = None, copy: bool | None = None) -> np.ndarray:
        """The ids: ``np.asarray(vocabulary)`` is ``vocabulary.ids``."""
        return self.ids if dtype is None else self.ids.astype(dtype)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and np.array_equal(self.ids, other.ids)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} ids)"

    def contains(self, ids: ArrayLike) -> np.ndarray:
        """Boolean mask, same shape as ``ids``: which ids are in the vocabulary."""
        return self.index(ids, unknown="minus_one") >= 0

    def index(self, ids: ArrayLike, *, unknown: UnknownPolicy = "raise") -> np.ndarray:
        """Positions of ``ids`` in the vocabulary.

        Parameters
        ----------
        ids
            Integer ids, any shape.
        unknown
            ``"raise"`` (default): an id outside the vocabulary raises ``ValueError``.
            ``"minus_one"``: such an id maps to ``-1``.

        Returns
        -------
        numpy.ndarray
            ``int64`` indices, same shape as ``ids``.
        """
        ids = _as_ids(ids, "ids")
        out = self._lookup.get_indexer(ids.ravel()).astype(np.int64).reshape(ids.shape)
        found = out >= 0
        if unknown == "raise":
            if not found.all():
                missing = ids[~found]
                raise ValueError(
                    f"{missing.size} id(s) not in the {type(self).__name__}, "
                    f"first {int(missing.ravel()[0])}; pass unknown='minus_one' to map them to -1"
                )
        elif unknown != "minus_one":
            raise ValueError(f"unknown must be 'raise' or 'minus_one', got {unknown!r}")
        return out


@dataclass(frozen=True, repr=False, eq=False)
class CategoryVocabulary(Vocabulary):
    """Category ids ↔ column indices. Fit on training events: ``CategoryVocabulary.fit(train)``."""

    column: ClassVar[str] = "category_id"


@dataclass(frozen=True, repr=False, eq=False)
class UserVocabulary(Vocabulary):
    """User ids ↔ row indices. ``UserVocabulary.fit(events)`` or ``UserVocabulary(ids)``."""

    column: ClassVar[str] = "user_id"


# --------------------------------------------------------------------------------------------
# user × category matrices
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class UserCategoryMatrix:
    """A sparse user × category matrix with the ids of its rows and columns.

    Attributes
    ----------
    matrix
        ``scipy.sparse.csr_matrix`` of shape ``(n_users, n_categories)``.
    user_ids
        ``int64`` user id of each row, shape ``(n_users,)``.
    category_ids
        ``int64`` category id of each column, shape ``(n_categories,)``.
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    category_ids: np.ndarray

    def __post_init__(self) -> None:
        expected = (len(self.user_ids), len(self.category_ids))
        if self.matrix.shape != expected:
            raise ValueError(f"matrix shape {self.matrix.shape} does not match ids {expected}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_users, n_categories)``."""
        return self.matrix.shape

    def toarray(self, dtype: type = np.float32) -> np.ndarray:
        """Dense copy, shape ``(n_users, n_categories)``; only for small matrices."""
        return self.matrix.toarray().astype(dtype, copy=False)

    def log1p(self) -> UserCategoryMatrix:
        r"""Element-wise :math:`\log(1 + x)`, which tames heavy users; zeros stay zero."""
        return UserCategoryMatrix(self.matrix.log1p(), self.user_ids, self.category_ids)

    def normalize_rows(self, norm: Literal["l1", "l2", "max"] = "l1") -> UserCategoryMatrix:
        """Rows scaled to unit ``norm`` (see :func:`normalize_rows`)."""
        return UserCategoryMatrix(
            normalize_rows(self.matrix, norm), self.user_ids, self.category_ids
        )


def _window_mask(timestamps: np.ndarray, start: int | None, end: int | None) -> np.ndarray:
    if start is not None and end is not None and start >= end:
        raise ValueError(f"empty window: start={start} must be < end={end}")
    mask = np.ones(timestamps.shape, dtype=bool)
    if start is not None:
        mask &= timestamps >= start
    if end is not None:
        mask &= timestamps < end
    return mask


def _weight_vector(weights: Mapping[str, float]) -> np.ndarray:
    missing = [b for b in BEHAVIOR_TYPES if b not in weights]
    extra = [b for b in weights if b not in BEHAVIOR_TYPES]
    if missing or extra:
        raise ValueError(
            f"weights must give exactly the behaviors {list(BEHAVIOR_TYPES)}; "
            f"missing {missing}, unexpected {extra}"
        )
    return np.array([weights[b] for b in BEHAVIOR_TYPES], dtype=np.float64)


def _as_users(users: UserVocabulary | ArrayLike) -> UserVocabulary:
    return users if isinstance(users, UserVocabulary) else UserVocabulary(np.asarray(users))


def _check_columns(events: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in events.columns]
    if missing:
        raise ValueError(f"event table lacks the column(s) {missing}")


def behavior_matrix(
    events: pd.DataFrame,
    categories: CategoryVocabulary | ArrayLike,
    users: UserVocabulary | ArrayLike | None = None,
    weights: Mapping[str, float] = BEHAVIOR_WEIGHTS,
    start: int | None = None,
    end: int | None = None,
    *,
    unknown: DropPolicy = "drop",
) -> UserCategoryMatrix:
    r"""Weighted behavior counts per user and category over a time window.

    .. math:: X_{uc} = \sum_{e:\ u_e = u,\ c_e = c,\ \mathrm{start} \le t_e < \mathrm{end}} w(b_e)

    with :math:`w` the behavior weights (default :data:`BEHAVIOR_WEIGHTS`: pv 1, fav 2, cart 3,
    buy 4; :data:`UNIT_WEIGHTS` gives plain counts).

    Parameters
    ----------
    events
        Canonical event table (``user_id``, ``category_id``, ``behavior_type``, ``timestamp``).
    categories
        Column vocabulary, fitted on training events (a :class:`CategoryVocabulary` or its ids).
    users
        Row order: a :class:`UserVocabulary` or an array of user ids. Users without events in the
        window get zero rows; events of users not listed are ignored. ``None`` uses the sorted
        users that have events in the window.
    weights
        Weight of each behavior, a mapping with exactly the keys ``pv, cart, fav, buy``.
    start, end
        Half-open window ``[start, end)`` in Unix seconds; ``None`` leaves a side open.
    unknown
        Events whose category is not in ``categories``: ``"drop"`` (default) ignores them,
        ``"raise"`` raises ``ValueError``.

    Returns
    -------
    UserCategoryMatrix
        ``float32`` CSR matrix of shape ``(n_users, n_categories)`` with ``int32`` indices.
    """
    _check_columns(events, ("user_id", "category_id", "behavior_type", "timestamp"))
    weight_of = _weight_vector(weights)
    in_window = _window_mask(events["timestamp"].to_numpy(), start, end)
    window = events.loc[in_window] if not in_window.all() else events
    user_vocab = UserVocabulary.fit(window) if users is None else _as_users(users)

    unknown_policy: UnknownPolicy = "raise" if unknown == "raise" else "minus_one"
    if unknown not in ("drop", "raise"):
        raise ValueError(f"unknown must be 'drop' or 'raise', got {unknown!r}")
    categories = CategoryVocabulary.of(categories)
    columns = categories.index(window["category_id"].to_numpy(), unknown=unknown_policy)
    rows = user_vocab.index(window["user_id"].to_numpy(), unknown="minus_one")
    values = weight_of[behavior_codes(window["behavior_type"])]
    keep = (rows >= 0) & (columns >= 0) & (values != 0)

    shape = (len(user_vocab), len(categories))
    matrix = sp.coo_matrix(
        (
            values[keep].astype(np.float32),
            (rows[keep].astype(np.int32), columns[keep].astype(np.int32)),
        ),
        shape=shape,
    ).tocsr()  # duplicates are summed here
    matrix.sum_duplicates()
    return UserCategoryMatrix(matrix, user_vocab.ids, categories.ids)


SparseOrDense = TypeVar("SparseOrDense", sp.csr_matrix, np.ndarray)


def normalize_rows(matrix: SparseOrDense, norm: Literal["l1", "l2", "max"] = "l1") -> SparseOrDense:
    r"""Scale each row to unit norm; all-zero rows stay zero.

    With ``"l1"`` and non-negative entries each non-empty row becomes a distribution,
    :math:`\tilde x_{uc} = x_{uc} / \sum_{c'} x_{uc'}`.

    Parameters
    ----------
    matrix
        Sparse or dense array, shape ``(n_rows, n_cols)``.
    norm
        ``"l1"``, ``"l2"`` or ``"max"``.

    Returns
    -------
    Same kind as ``matrix`` (CSR for any sparse input), a new object.
    """
    return normalize(matrix, norm=norm, axis=1, copy=True)


@overload
def tfidf(
    counts: UserCategoryMatrix, transformer: TfidfTransformer | None = None
) -> tuple[UserCategoryMatrix, TfidfTransformer]: ...


@overload
def tfidf(
    counts: sp.spmatrix | np.ndarray, transformer: TfidfTransformer | None = None
) -> tuple[sp.csr_matrix, TfidfTransformer]: ...


def tfidf(
    counts: UserCategoryMatrix | sp.spmatrix | np.ndarray,
    transformer: TfidfTransformer | None = None,
) -> tuple[UserCategoryMatrix | sp.csr_matrix, TfidfTransformer]:
    r"""TF-IDF weighting of a user × category matrix (a user is a document, a category a term).

    .. math::

        \mathrm{idf}(c) = \ln\frac{1 + n}{1 + \mathrm{df}(c)} + 1, \qquad
        x_{uc} = \frac{\mathrm{tf}_{uc}\,\mathrm{idf}(c)}{\lVert \mathrm{tf}_u \odot \mathrm{idf} \rVert_2},

    where :math:`\mathrm{tf}_{uc}` is the (weighted) count, :math:`n` the number of users the idf
    was fitted on and :math:`\mathrm{df}(c)` how many of them touched category :math:`c` —
    scikit-learn's smoothed idf (``TfidfTransformer(smooth_idf=True, norm="l2")``). Categories
    that everyone visits are down-weighted; rows have unit length, ready for cosine similarity and
    KMeans.

    Parameters
    ----------
    counts
        Counts of shape ``(n_users, n_categories)``.
    transformer
        ``None`` fits a new transformer on ``counts`` — pass training counts. To weight
        validation or test users, pass the transformer returned for the training counts so that
        the idf comes from training data only.

    Returns
    -------
    (weighted, transformer)
        The weighted matrix (a :class:`UserCategoryMatrix` if one was given, else CSR) and the
        fitted transformer.
    """
    raw = counts.matrix if isinstance(counts, UserCategoryMatrix) else counts
    if transformer is None:
        transformer = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True).fit(raw)
    weighted = sp.csr_matrix(transformer.transform(raw))
    if isinstance(counts, UserCategoryMatrix):
        return UserCategoryMatrix(weighted, counts.user_ids, counts.category_ids), transformer
    return weighted, transformer


def next_window_targets(
    events: pd.DataFrame,
    categories: CategoryVocabulary | ArrayLike,
    users: UserVocabulary | ArrayLike,
    start: int | None,
    end: int | None,
    *,
    weights: Mapping[str, float] = UNIT_WEIGHTS,
    unknown: DropPolicy = "drop",
) -> sp.csr_matrix:
    r"""Each user's distribution of interest over categories in a future window.

    .. math:: y_{uc} = \frac{X_{uc}}{\sum_{c'} X_{uc'}}

    with :math:`X` the :func:`behavior_matrix` of the window (plain counts by default). Rows of
    users without events in the window are all zero; rank metrics leave those users out.
    Events of categories outside the vocabulary are dropped before normalising (default), so a
    row is a distribution over the known categories.

    Parameters
    ----------
    events
        Canonical event table.
    categories
        Column vocabulary, fitted on training events (a :class:`CategoryVocabulary` or its ids).
    users
        Row order (the same users, in the same order, as the model inputs).
    start, end
        Half-open target window ``[start, end)``, Unix seconds.
    weights
        Behavior weights; default :data:`UNIT_WEIGHTS`.
    unknown
        ``"drop"`` or ``"raise"`` for events of unknown categories.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``float64``, shape ``(n_users, n_categories)``; non-empty rows sum to 1.
    """
    counts = behavior_matrix(
        events, categories, users, weights=weights, start=start, end=end, unknown=unknown
    )
    return normalize_rows(counts.matrix.astype(np.float64), "l1")


def purchase_labels(
    events: pd.DataFrame, users: UserVocabulary | ArrayLike, start: int | None, end: int | None
) -> np.ndarray:
    """Whether each user buys anything in the window ``[start, end)``.

    Parameters
    ----------
    events
        Canonical event table.
    users
        Row order: a :class:`UserVocabulary` or an array of user ids.
    start, end
        Half-open window in Unix seconds; ``None`` leaves a side open.

    Returns
    -------
    numpy.ndarray
        ``int64`` array of 0/1, shape ``(n_users,)``.
    """
    _check_columns(events, ("user_id", "behavior_type", "timestamp"))
    user_vocab = _as_users(users)
    in_window = _window_mask(events["timestamp"].to_numpy(), start, end)
    is_buy = behavior_codes(events["behavior_type"]) == BEHAVIOR_TYPES.index("buy")
    buyers = events["user_id"].to_numpy()[in_window & is_buy]
    rows = user_vocab.index(buyers, unknown="minus_one")
    labels = np.zeros(len(user_vocab), dtype=np.int64)
    labels[rows[rows >= 0]] = 1
    return labels
