r"""Static interest models: from a user's behaviour vector to their next-window interest.

Chapter 3 maps each user's user × category behaviour vector up to a time :math:`t` onto the
distribution of their attention in the window :math:`[t, t + h)` that follows. This module builds
those (input, target) pairs for several cut-offs :math:`t` inside the training period, and holds
the small helpers that let scikit-learn and PyTorch models be compared on the very same data:

- :func:`behavior_features` — the behaviour vector of every user up to a cut-off, scaled;
- :func:`next_window_examples` — stacked examples for many cut-offs (:class:`WindowExamples`);
- :func:`expand_soft_targets` — a soft-target data set as weighted hard-label rows, so that a
  multinomial logistic regression minimises exactly the soft cross-entropy of the MLP;
- :func:`class_scores` — a classifier's ``predict_log_proba`` spread over the full category set;
- :func:`cosine_similarity_matrix`, :func:`similarity_agreement` — compare learned category
  embeddings with the planted structure.

Every function takes the vocabularies as arguments: fit them on training events only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike

from interest_lib.data.features import (
    BEHAVIOR_WEIGHTS,
    UNIT_WEIGHTS,
    CategoryVocabulary,
    UserVocabulary,
    behavior_matrix,
    next_window_targets,
    purchase_labels,
)
from interest_lib.data.schema import DAY_S

Transform = Literal["log1p", "none", "l1"]

__all__ = [
    "WindowExamples",
    "behavior_features",
    "class_scores",
    "cosine_similarity_matrix",
    "expand_soft_targets",
    "next_window_examples",
    "similarity_agreement",
    "window_ends",
]


def window_ends(train_end: int, n_windows: int, horizon: int = DAY_S) -> np.ndarray:
    """Cut-offs for training examples that lie wholly inside the training period.

    The last example's target window ends at ``train_end``; the ones before it step back by
    ``horizon``, so target windows do not overlap and never reach past the training period.

    Parameters
    ----------
    train_end
        End of the training period, Unix s (exclusive).
    n_windows
        Number of cut-offs.
    horizon
        Length of each target window in seconds (default one day).

    Returns
    -------
    numpy.ndarray
        ``int64`` cut-offs, increasing: ``train_end - n_windows * horizon, ..., train_end - horizon``.
    """
    if n_windows < 1:
        raise ValueError(f"n_windows must be positive, got {n_windows}")
    if horizon <= 0:
        raise ValueError(f"horizon must be positive, got {horizon}")
    return int(train_end) - int(horizon) * np.arange(n_windows, 0, -1, dtype=np.int64)


def behavior_features(
    events: pd.DataFrame,
    categories: CategoryVocabulary,
    users: UserVocabulary | ArrayLike,
    end: int,
    *,
    start: int | None = None,
    weights: Mapping[str, float] = BEHAVIOR_WEIGHTS,
    transform: Transform = "log1p",
) -> np.ndarray:
    r"""Each user's behaviour vector over ``[start, end)``, as a dense ``float32`` array.

    .. math:: x_{uc} = f\Big(\sum_{e:\ u_e = u,\ c_e = c,\ t_e < \mathrm{end}} w(b_e)\Big)

    with :math:`f` = ``log1p`` (default; it tames heavy users), the identity (``"none"``), or
    each row divided by its sum (``"l1"``: the user's own category distribution).

    Parameters
    ----------
    events
        Canonical event table.
    categories
        Column vocabulary, fitted on training events.
    users
        Row order.
    end
        Cut-off, Unix s (exclusive): nothing at or after it is read.
    start
        Start of the history (``None``: from the first event).
    weights
        Behaviour weights (default :data:`~interest_lib.data.features.BEHAVIOR_WEIGHTS`).
    transform
        ``"log1p"``, ``"none"`` or ``"l1"``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_users, n_categories)``.
    """
    if transform not in ("log1p", "none", "l1"):
        raise ValueError(f"transform must be 'log1p', 'none' or 'l1', got {transform!r}")
    counts = behavior_matrix(events, categories, users, weights=weights, start=start, end=end)
    if transform == "log1p":
        counts = counts.log1p()
    elif transform == "l1":
        counts = counts.normalize_rows("l1")
    return counts.toarray(np.float32)


@dataclass(frozen=True, eq=False)
class WindowExamples:
    """Stacked (behaviour vector → next window) examples, one row per user and cut-off.

    Attributes
    ----------
    inputs
        ``float32`` behaviour vectors, shape ``(n, C)`` (:func:`behavior_features`).
    targets
        ``float32`` next-window interest distributions, shape ``(n, C)``; a row is all zero when
        the user did nothing (in a known category) in the window.
    bought
        ``int64`` 0/1, shape ``(n,)``: did the user buy anything in the window?
    behavior_totals
        ``float32``, shape ``(n, 4)``: ``log1p`` of the user's number of pv, cart, fav and buy
        events before the cut-off (schema order).
    user_ids
        ``int64``, shape ``(n,)``.
    window_end
        ``int64``, shape ``(n,)``: the cut-off of each row.
    """

    inputs: np.ndarray
    targets: np.ndarray
    bought: np.ndarray
    behavior_totals: np.ndarray
    user_ids: np.ndarray
    window_end: np.ndarray

    def __len__(self) -> int:
        return int(self.user_ids.size)

    @property
    def active(self) -> np.ndarray:
        """Boolean mask, shape ``(n,)``: rows with a non-empty target distribution."""
        return self.targets.sum(axis=1) > 0

    def subset(self, mask: ArrayLike) -> WindowExamples:
        """The rows selected by a boolean mask or an index array."""
        mask = np.asarray(mask)
        return WindowExamples(
            self.inputs[mask],
            self.targets[mask],
            self.bought[mask],
            self.behavior_totals[mask],
            self.user_ids[mask],
            self.window_end[mask],
        )


def next_window_examples(
    events: pd.DataFrame,
    categories: CategoryVocabulary,
    users: UserVocabulary | ArrayLike,
    ends: Sequence[int] | np.ndarray,
    *,
    horizon: int = DAY_S,
    weights: Mapping[str, float] = BEHAVIOR_WEIGHTS,
    target_weights: Mapping[str, float] = UNIT_WEIGHTS,
    transform: Transform = "log1p",
    require_history: bool = True,
) -> WindowExamples:
    r"""Examples for one or more cut-offs :math:`t`: the history before :math:`t` → the window after.

    For every cut-off :math:`t` in ``ends`` and every user, the input is the behaviour vector
    over everything before :math:`t` and the target is the user's interest distribution over
    :math:`[t, t + \mathrm{horizon})` (:func:`~interest_lib.data.features.next_window_targets`).

    Parameters
    ----------
    events
        Canonical event table. To build *training* examples pass cut-offs whose windows end by
        the end of training (:func:`window_ends`); events after the last window are never read.
    categories
        Vocabulary fitted on training events.
    users
        The users to consider (row order within each cut-off).
    ends
        Cut-offs, Unix s.
    horizon
        Length of the target window, seconds.
    weights
        Behaviour weights of the inputs.
    target_weights
        Behaviour weights of the targets (default: every event counts 1).
    transform
        Input scaling, see :func:`behavior_features`.
    require_history
        Keep only rows whose input is not all zero (the user did something before :math:`t`).

    Returns
    -------
    WindowExamples
        Rows ordered by cut-off, then by user.
    """
    user_vocab = users if isinstance(users, UserVocabulary) else UserVocabulary(np.asarray(users))
    parts: list[WindowExamples] = []
    for end in np.asarray(ends, dtype=np.int64).ravel():
        end = int(end)
        inputs = behavior_features(
            events, categories, user_vocab, end, weights=weights, transform=transform
        )
        targets = next_window_targets(
            events, categories, user_vocab, end, end + horizon, weights=target_weights
        ).toarray().astype(np.float32)
        bought = purchase_labels(events, user_vocab, end, end + horizon)
        totals = np.column_stack(
            [
                behavior_matrix(events, categories, user_vocab, weights=one_hot, end=end)
                .matrix.sum(axis=1)
                .A1
                for one_hot in _one_hot_weights()
            ]
        )
        part = WindowExamples(
            inputs,
            targets,
            bought,
            np.log1p(totals).astype(np.float32),
            user_vocab.ids.copy(),
            np.full(len(user_vocab), end, dtype=np.int64),
        )
        if require_history:
            part = part.subset(inputs.any(axis=1))
        parts.append(part)
    if not parts:
        raise ValueError("no cut-offs given")
    return WindowExamples(
        *(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS)
    )


_FIELDS = ("inputs", "targets", "bought", "behavior_totals", "user_ids", "window_end")


def _one_hot_weights() -> list[dict[str, float]]:
    from interest_lib.data.schema import BEHAVIOR_TYPES

    return [{b: float(b == kind) for b in BEHAVIOR_TYPES} for kind in BEHAVIOR_TYPES]


def expand_soft_targets(
    inputs: ArrayLike, targets: ArrayLike | sp.spmatrix
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Soft targets as weighted hard-label rows, for classifiers that take ``sample_weight``.

    A row :math:`x` with target distribution :math:`y` becomes one row :math:`(x, c)` with weight
    :math:`y_c` for every category :math:`c` with :math:`y_c > 0`. The weighted log-loss of the
    expanded data is then exactly the soft cross-entropy of the original,

    .. math:: \sum_c y_c \,(-\log p_c(x)) ,

    so a multinomial logistic regression fitted on it optimises the same objective as the MLP.

    Parameters
    ----------
    inputs
        Shape ``(n, d)``.
    targets
        Non-negative, shape ``(n, C)``, dense or sparse.

    Returns
    -------
    (rows, labels, sample_weight)
        ``rows`` of shape ``(m, d)``, ``labels`` (``int64``) and ``sample_weight`` (``float64``)
        of shape ``(m,)``, with ``m`` the number of positive target entries.
    """
    inputs = np.asarray(inputs)
    coo = sp.coo_matrix(targets)
    if coo.shape[0] != inputs.shape[0]:
        raise ValueError(f"inputs have {inputs.shape[0]} rows, targets {coo.shape[0]}")
    if np.any(coo.data < 0):
        raise ValueError("targets must be non-negative")
    keep = coo.data > 0
    order = np.lexsort((coo.col[keep], coo.row[keep]))  # by row, then category
    row = coo.row[keep][order]
    return inputs[row], coo.col[keep][order].astype(np.int64), coo.data[keep][order].astype(np.float64)


def class_scores(
    log_proba: ArrayLike, classes: ArrayLike, n_classes: int, fill: float = -1e9
) -> np.ndarray:
    """Spread a classifier's per-class scores over the full category set.

    A scikit-learn classifier only knows the classes it saw in training (``model.classes_``);
    the ranking metrics want one column per category. Unseen categories get ``fill`` (finite, so
    the metrics accept it, and lower than any real log-probability).

    Parameters
    ----------
    log_proba
        ``model.predict_log_proba(X)``, shape ``(n, len(classes))``.
    classes
        ``model.classes_``: category indices ``0 .. n_classes - 1``.
    n_classes
        Number of categories :math:`C`.
    fill
        Score of the categories never seen in training.

    Returns
    -------
    numpy.ndarray
        ``float64``, shape ``(n, n_classes)``.
    """
    log_proba = np.asarray(log_proba, dtype=np.float64)
    classes = np.asarray(classes, dtype=np.int64)
    if log_proba.ndim != 2 or log_proba.shape[1] != classes.size:
        raise ValueError(f"log_proba {log_proba.shape} does not match {classes.size} classes")
    if np.any((classes < 0) | (classes >= n_classes)):
        raise ValueError(f"classes must lie in 0 .. {n_classes - 1}")
    out = np.full((log_proba.shape[0], n_classes), fill, dtype=np.float64)
    out[:, classes] = np.maximum(log_proba, fill)  # -inf (probability 0) becomes fill
    return out


def cosine_similarity_matrix(vectors: ArrayLike) -> np.ndarray:
    r"""Pairwise cosine similarity of the rows of ``vectors``.

    .. math:: S_{ij} = \frac{v_i \cdot v_j}{\lVert v_i \rVert \, \lVert v_j \rVert}

    A zero row has similarity 0 with everything (and 0 on the diagonal).

    Parameters
    ----------
    vectors
        Shape ``(n, d)``; e.g. ``W.T`` for the category embeddings of a layer with weight
        ``W`` of shape ``(hidden, C)``.

    Returns
    -------
    numpy.ndarray
        ``float64``, shape ``(n, n)``, symmetric, entries in ``[-1, 1]``.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be 2-D, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1)
    unit = np.divide(vectors, norms[:, None], out=np.zeros_like(vectors), where=norms[:, None] > 0)
    return np.clip(unit @ unit.T, -1.0, 1.0)


def similarity_agreement(
    a: ArrayLike, b: ArrayLike, method: Literal["pearson", "spearman"] = "pearson"
) -> float:
    """Correlation of two similarity matrices over their distinct pairs (upper triangle).

    Parameters
    ----------
    a, b
        Square matrices of the same shape, e.g. the cosine similarity of learned category
        embeddings and of the true emission columns.
    method
        ``"pearson"`` or ``"spearman"`` (rank correlation).

    Returns
    -------
    float
        In ``[-1, 1]``; 1 means the two orderings of pairs agree perfectly.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"need two square matrices of one shape, got {a.shape} and {b.shape}")
    if a.shape[0] < 3:
        raise ValueError("need at least 3 items (3 distinct pairs) to correlate")
    upper = np.triu_indices(a.shape[0], k=1)
    x, y = a[upper], b[upper]
    if method == "spearman":
        from scipy.stats import rankdata

        x, y = rankdata(x), rankdata(y)
    elif method != "pearson":
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    return float(np.corrcoef(x, y)[0, 1])
