r"""Chapter 7's classic evaluation mistakes, measured: a random split and sampled negatives.

:func:`random_split_comparison`, :func:`sampled_ranks`, :func:`sampled_item_ranks`, and the
tables of the chapter: :func:`sampled_item_table`, :func:`sampled_summary`,
:func:`sampled_category_table`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
        :func:`~interest_lib.evaluation.leaderboard.leaderboard`.
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
    r"""Mean HR@K, NDCG@K (single target) and MRR computed from 0-based ranks :math:`r_u`.

    .. math::

        \mathrm{HR@K} = \overline{\mathbb{1}[r_u < K]}, \qquad
        \mathrm{NDCG@K} = \overline{\mathbb{1}[r_u < K] / \log_2(r_u + 2)}, \qquad
        \mathrm{MRR} = \overline{1 / (r_u + 1)},

    the bar being the mean over rows, as in :mod:`interest_lib.evaluation.metrics`.
    """
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




# --------------------------------------------------------------------------------------------
# sampled negatives: the tables of chapter 7
# --------------------------------------------------------------------------------------------


def sampled_item_table(
    score_functions: Mapping[str, Callable[[np.ndarray, np.ndarray], np.ndarray]],
    lists: Mapping[str, np.ndarray],
    first_item: ArrayLike,
    target_item: ArrayLike,
    n_items: int,
    seed: int = 0,
) -> pd.DataFrame:
    """The same item methods ranked against the whole catalogue, 100 and 1 sampled negatives.

    The target is each user's first item of the test day; users whose first item is not in the
    catalogue (``target_item < 0``) are left out. The full ranking is the method's top-N list
    (:func:`~interest_lib.models.recommend.list_report`); the sampled ones rank the target among
    uniformly drawn other items (:func:`sampled_item_ranks`, same ``seed`` for every method).

    Parameters
    ----------
    score_functions
        Method → ``score(rows, candidates)`` as :func:`sampled_item_ranks` takes it.
    lists
        Method → ``(n_users, N)`` its top-N item ids.
    first_item
        ``(n_users,)`` each user's first item id of the test day.
    target_item
        ``(n_users,)`` its position in the catalogue, ``-1`` if unknown.
    n_items
        Catalogue size.
    seed
        Seed of the sampling.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``full: HR@10``, ``full: NDCG@10``, ``rank (full)``, ``100 sampled:
        HR@10``, ``100 sampled: NDCG@10``, ``rank (100)``, ``1 sampled: HR@1 (AUC)``, ``rank (1)``
        (places, 1 = best).
    """
    from interest_lib.models.recommend import list_report

    first_item, target_item = np.asarray(first_item), np.asarray(target_item)
    known = target_item >= 0
    rows_known = np.flatnonzero(known)
    sampled_rows = {}
    for name, score_fn in score_functions.items():
        full = list_report(lists[name][known], first_item[known], ks=(1, 10))
        ranks = {m: sampled_item_ranks(score_fn, rows_known, target_item[known], n_items, m,
                                       seed=seed) for m in (100, 1)}  # fmt: skip
        sampled_rows[name] = {"full: HR@10": full["HR@10"].mean(),
                              "full: NDCG@10": full["NDCG@10"].mean(),
                              "100 sampled: HR@10": np.mean(ranks[100] < 10),
                              "100 sampled: NDCG@10": rank_report(ranks[100], ks=(10,))["NDCG@10"],
                              "1 sampled: HR@1 (AUC)": np.mean(ranks[1] < 1)}
    table = pd.DataFrame(sampled_rows).T
    places = _places(table)
    table.insert(2, "rank (full)", places["full: NDCG@10"].astype(int))
    table.insert(5, "rank (100)", places["100 sampled: NDCG@10"].astype(int))
    table["rank (1)"] = places["1 sampled: HR@1 (AUC)"].astype(int)
    return table


_RANKED = ("full: NDCG@10", "100 sampled: NDCG@10", "1 sampled: HR@1 (AUC)")


def _places(table: pd.DataFrame) -> dict[str, pd.Series]:
    """Place of every method (1 = best; ties share the mean place) under each protocol."""
    return {column: table[column].rank(ascending=False) for column in _RANKED}


def sampled_summary(table: pd.DataFrame, tolerance: float | None = None) -> dict[str, Any]:
    """What :func:`sampled_item_table` shows, in numbers, with the book's tie rule.

    A pair of methods is *separated* under a protocol when their relative difference
    (:func:`~interest_lib.evaluation.metrics.relative_difference`) is at least ``tolerance``
    (:func:`~interest_lib.evaluation.metrics.is_tie` says no tie). A method *changes place*
    beyond the tie rule when some other method is separated from it in the full ranking and in
    the sampled one, in opposite directions; places that move only among tied methods do not
    count.

    Parameters
    ----------
    table
        The output of :func:`sampled_item_table`.
    tolerance
        The tie rule's relative tolerance; ``None``: :data:`~interest_lib.evaluation.metrics.TIE_TOLERANCE`.

    Returns
    -------
    dict
        ``inflation`` (per method, 100-sampled HR@10 over full HR@10); ``spread`` (per protocol
        ``"full"``, ``"100"``, ``"1"``: the best method's value over the worst's); ``moved``
        (``"100"``, ``"1"``: methods that change place beyond the tie rule); ``raw_moved`` (the
        same keys: methods whose place differs at all, ties included); ``separated`` (pairs of
        methods separated in full NDCG@10); ``collapsed`` (``"100"``, ``"1"``: of those, the
        pairs that tie under the sampled protocol); ``reversal``: ``(gap, winner, loser, column,
        sampled_gap)``, the pair with the largest relative full-NDCG@10 gap whose order the
        sampled ``column`` turns round beyond the tie rule (``sampled_gap``, the loser's lead
        there as a relative difference, at least ``tolerance``); if no pair turns round that
        clearly, the same among the pairs turned round by any amount; ``None`` if none is.
    """
    from interest_lib.evaluation.metrics import TIE_TOLERANCE, relative_difference

    tolerance = TIE_TOLERANCE if tolerance is None else tolerance
    places = _places(table)
    full = table[_RANKED[0]]
    summary: dict[str, Any] = {
        "inflation": table["100 sampled: HR@10"] / table["full: HR@10"],
        "spread": {key: table[column].max() / table[column].min()
                   for key, column in zip(("full", "100", "1"), _RANKED)},
        "moved": {}, "raw_moved": {}, "collapsed": {},
    }  # fmt: skip
    gaps = {(a, b): relative_difference(full[a], full[b]) for a in table.index for b in table.index}
    separated = [(a, b) for (a, b), gap in gaps.items() if gap >= tolerance]  # a clearly ahead
    summary["separated"] = len(separated)
    reversals = []
    for key, column in (("100", _RANKED[1]), ("1", _RANKED[2])):
        sampled = table[column]
        lead = {pair: relative_difference(sampled[pair[1]], sampled[pair[0]]) for pair in gaps}
        turned = {pair for pair in separated if lead[pair] >= tolerance}
        summary["moved"][key] = len({method for pair in turned for method in pair})
        summary["raw_moved"][key] = int((places[_RANKED[0]] != places[column]).sum())
        summary["collapsed"][key] = int(sum(abs(lead[pair]) < tolerance for pair in separated))
        reversals += [(gaps[pair], *pair, column, lead[pair]) for pair in gaps
                      if gaps[pair] > 0 and lead[pair] > 0]
    clear = [reversal for reversal in reversals if reversal[4] >= tolerance]
    summary["reversal"] = max(clear or reversals) if reversals else None
    return summary


def sampled_category_table(
    scores: Mapping[str, np.ndarray],
    targets: ArrayLike,
    board: pd.DataFrame,
    seed: int = 0,
) -> pd.DataFrame:
    """Every method of a category leaderboard, ranked against one sampled negative category.

    Parameters
    ----------
    scores
        Method → ``(n, C)`` scores of the leaderboard's points.
    targets
        ``(n,)`` target categories.
    board
        The leaderboard (:func:`~interest_lib.evaluation.leaderboard.leaderboard`) with the
        full-ranking ``HR@1`` and ``NDCG@10`` of the methods.
    seed
        Seed of the sampling (:func:`sampled_ranks`), the same for every method.

    Returns
    -------
    pandas.DataFrame
        ``full: HR@1``, ``full: NDCG@10``, ``1 sampled: HR@1 (AUC)`` per method, sorted by the
        full NDCG@10.
    """
    rows = {}
    for name, matrix in scores.items():
        ranks = sampled_ranks(matrix, targets, 1, seed=seed)
        rows[name] = {"full: HR@1": board.loc[name, "HR@1"],
                      "full: NDCG@10": board.loc[name, "NDCG@10"],
                      "1 sampled: HR@1 (AUC)": float(np.mean(ranks < 1))}
    return pd.DataFrame(rows).T.sort_values("full: NDCG@10", ascending=False)
