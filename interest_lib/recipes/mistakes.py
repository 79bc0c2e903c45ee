r"""Chapter 7's classic evaluation mistakes, measured: a random split and sampled negatives.

:func:`random_split_comparison`, :func:`sampled_ranks`, :func:`sampled_item_ranks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.data.tasks import NextCategoryTask, condition_on_change, next_category_task
from interest_lib.models import baselines
from interest_lib.recipes.cache import cached, code_version
from interest_lib.recipes.protocol import (
    _PROTOCOL_MODULES,
    KS,
    BookSetup,
    _arrays_to_frame,
    _frame_to_arrays,
    point_report,
)

# --------------------------------------------------------------------------------------------
# mistakes: a random split, sampled negatives
# --------------------------------------------------------------------------------------------


def random_split(events: pd.DataFrame, test_share: float = 0.2, seed: int = 0) -> np.ndarray:
    """The mistake: a boolean mask that puts each event in the test part at random.

    Returns
    -------
    numpy.ndarray
        ``(len(events),)`` ``True`` for the random test events.
    """
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must lie in (0, 1), got {test_share}")
    return np.random.default_rng(seed).random(len(events)) < test_share


def user_profile_scores(task: NextCategoryTask, fitted_on: pd.DataFrame) -> np.ndarray:
    r"""A static user profile: the user's category distribution in ``fitted_on``.

    :func:`~interest_lib.models.baselines.user_history_distribution` over *every* event of the user in
    the fitting frame, smoothed towards its popularity. Fitted on the training days it is a
    legitimate baseline; fitted on a random share of all events it contains the user's future.

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)``.
    """
    users, inverse = np.unique(task.user_id, return_inverse=True)
    profile = baselines.user_history_distribution(fitted_on, task.category_ids, users, end=None)
    return condition_on_change(profile[inverse], task)


RANDOM_SPLIT_METHODS: tuple[str, ...] = (
    "global popularity", "user frequency", "user profile", "Markov chain",
)  # fmt: skip
"""Methods compared under a random and a time split by :func:`random_split_comparison`."""


def _method_scores(name: str, task: NextCategoryTask, fitted_on: pd.DataFrame) -> np.ndarray:
    if name == "global popularity":
        return condition_on_change(
            np.tile(baselines.popularity(fitted_on, task.category_ids), (len(task), 1)), task
        )
    if name == "user frequency":
        pop = baselines.popularity(fitted_on, task.category_ids)
        counts = baselines.user_history_counts(task)
        return condition_on_change((counts + pop) / (counts.sum(axis=1, keepdims=True) + 1), task)
    if name == "user profile":
        return user_profile_scores(task, fitted_on)
    if name == "Markov chain":
        chain = baselines.MarkovChain.fit(fitted_on, task.category_ids)
        return condition_on_change(chain.predict(task.prev_category), task)
    raise ValueError(f"unknown method {name!r}; choose from {RANDOM_SPLIT_METHODS}")


def random_split_comparison(
    setup: BookSetup,
    *,
    test_share: float = 0.2,
    seed: int = 0,
    methods: Sequence[str] = RANDOM_SPLIT_METHODS,
    changed: bool = False,
    ks: Sequence[int] = KS,
) -> dict[str, Any]:
    """The same methods evaluated after a random split and after the book's time split.

    Random split: every event goes to the test part with probability ``test_share``; each method
    is fitted on the other events (of all nine days) and predicts the test events that have an
    earlier event of their user. Time split: fitted on the training days, evaluated on the test
    day (the points of ``setup.task("test")``). Histories are every earlier event in both cases;
    the methods are those of :func:`~interest_lib.models.baselines.baseline_scores` with the fitting
    frame as their training data, plus :func:`user_profile_scores`.

    Returns
    -------
    dict
        ``"random"`` and ``"time"``: method → per-point frame (:func:`point_report`);
        ``"random user_id"`` and ``"time user_id"``: the user of each point, for
        :func:`user_bootstrap`.
    """
    params = {"data": setup.key, "test_share": test_share, "seed": seed, "methods": list(methods),
              "changed": changed, "ks": list(ks)}
    events = setup.events

    def compute() -> dict[str, np.ndarray]:
        in_test = random_split(events, test_share, seed)
        every = next_category_task(events, setup.category_ids, None, setup.split.test_end,
                                   changed=changed)
        random_task = every.subset(in_test[every.rows])
        fitted = events.loc[~in_test]
        time_task = setup.task("test", changed)
        out: dict[str, np.ndarray] = {"random|user_id": random_task.user_id,
                                      "time|user_id": time_task.user_id}
        for protocol, task, frame in (("random", random_task, fitted),
                                      ("time", time_task, setup.split.train)):
            for i, name in enumerate(methods):
                report = point_report(_method_scores(name, task, frame), task, ks)
                for column, values in _frame_to_arrays(report).items():
                    out[f"{protocol}|{i:02d}|{name}|{column}"] = values
        return out

    code = code_version(_PROTOCOL_MODULES + ("baselines",),
                        (random_split_comparison, random_split, _method_scores,
                         user_profile_scores, point_report))
    stored = cached("random_split", params, compute, code=code)
    result: dict[str, Any] = {}
    for protocol in ("random", "time"):
        names = sorted({k.rsplit("|", 1)[0] for k in stored if k.startswith(f"{protocol}|")
                        and k.count("|") == 3})
        result[protocol] = {n.split("|")[2]: _arrays_to_frame(stored, f"{n}|") for n in names}
        result[f"{protocol} user_id"] = stored[f"{protocol}|user_id"]
    return result


def sampled_ranks(
    scores: ArrayLike, targets: ArrayLike, n_negatives: int, seed: int = 0
) -> np.ndarray:
    """The mistake: the target's rank among ``n_negatives`` randomly sampled other items.

    For each row, ``n_negatives`` distinct items other than the target are drawn uniformly, and
    the rank is the number of them that score above the target (ties: lower index first, as in
    :mod:`interest_lib.evaluation.metrics`). ``rank < K`` is then the "sampled HR@K" that papers report
    with 100 negatives (HR@10 out of 101 candidates) or with 1 negative (an AUC per point).

    Parameters
    ----------
    scores
        ``(n, N)`` scores over the full item set.
    targets
        ``(n,)`` target indices.
    n_negatives
        Negatives per row, at most ``N - 1``.
    seed
        Seed of the sampling.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 ranks in ``0 .. n_negatives``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    n, n_items = scores.shape
    _check_negatives(n_negatives, n_items)
    rng = np.random.default_rng(seed)
    ranks = np.empty(n, dtype=np.int64)
    block = max(1, (1 << 22) // n_items)
    for lo in range(0, n, block):
        rows = slice(lo, min(lo + block, n))
        target = targets[rows]
        keys = rng.random((target.size, n_items))
        keys[np.arange(target.size), target] = 2.0  # the target is never drawn
        negatives = np.argpartition(keys, n_negatives - 1, axis=1)[:, :n_negatives]
        block_scores = scores[rows]
        own = block_scores[np.arange(target.size), target][:, None]
        other = np.take_along_axis(block_scores, negatives, axis=1)
        ranks[rows] = _rank_among_negatives(own, other, negatives, target)
    return ranks


def _check_negatives(n_negatives: int, n_items: int) -> None:
    if not 1 <= n_negatives <= n_items - 1:
        raise ValueError(f"n_negatives must lie in 1 .. {n_items - 1}, got {n_negatives}")


def _rank_among_negatives(own: np.ndarray, other: np.ndarray, negatives: np.ndarray,
                          targets: np.ndarray) -> np.ndarray:
    """``(n,)`` how many negatives score above the target (``own`` ``(n, 1)``, ``other``
    ``(n, m)``); a tie counts against the target when the negative has the lower index."""
    ahead = (other > own) | ((other == own) & (negatives < targets[:, None]))
    return ahead.sum(axis=1).astype(np.int64)


def rank_report(ranks: ArrayLike, ks: Sequence[int] = (1, 10)) -> dict[str, float]:
    """Mean HR@K, NDCG@K (single target) and MRR computed from 0-based ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        out[f"HR@{k}"] = float((ranks < k).mean())
        out[f"NDCG@{k}"] = float(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
    out["MRR"] = float((1.0 / (ranks + 1.0)).mean())
    return out


def sampled_item_ranks(
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    rows: ArrayLike,
    targets: ArrayLike,
    n_items: int,
    n_negatives: int,
    seed: int = 0,
) -> np.ndarray:
    """:func:`sampled_ranks` for a catalogue too large for a full score matrix.

    Only the target and its sampled negatives are scored: ``score(rows, candidates)`` must return
    the scores of the item positions ``candidates`` (``(n, 1 + n_negatives)``, the target first)
    for the users ``rows``. Negatives are distinct items other than the target, drawn uniformly.

    Parameters
    ----------
    score
        Scoring function, e.g. ``lambda rows, c: recommend.item_scores(s[rows], items,
        history[rows], c)``.
    rows
        ``(n,)`` the users (row positions passed on to ``score``).
    targets
        ``(n,)`` item position of each user's target, ``0 .. n_items - 1``.
    n_items
        Catalogue size.
    n_negatives
        Negatives per user, at most ``n_items - 1``.
    seed
        Seed of the sampling.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 ranks in ``0 .. n_negatives``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    _check_negatives(n_negatives, n_items)
    if np.any((targets < 0) | (targets >= n_items)):
        raise ValueError("targets must be item positions in 0 .. n_items - 1")
    rng = np.random.default_rng(seed)
    # distinct draws from n_items - 1 values, then skip over the target: never the target
    negatives = np.empty((rows.size, n_negatives), dtype=np.int64)
    for i in range(rows.size):
        negatives[i] = rng.choice(n_items - 1, size=n_negatives, replace=False)
    negatives += negatives >= targets[:, None]
    candidates = np.hstack([targets[:, None], negatives])
    values = np.asarray(score(rows, candidates), dtype=np.float64)
    return _rank_among_negatives(values[:, :1], values[:, 1:], negatives, targets)


