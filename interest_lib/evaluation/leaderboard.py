r"""Tables of many methods on one task: means, intervals over users, the gap to a ceiling.

:func:`evaluate_methods` (mean over prediction points, intervals resampling users),
:func:`user_means` and :func:`leaderboard` (mean over users), :func:`gap_closed`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.data.tasks import NextCategoryTask
from interest_lib.evaluation import metrics

# --------------------------------------------------------------------------------------------
# one table for many methods
# --------------------------------------------------------------------------------------------


def evaluate_methods(
    scores: dict[str, np.ndarray],
    task: NextCategoryTask,
    k: int = 10,
    *,
    reference: str | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """NDCG@k, HR@k and MRR of several methods on one task, with bootstrap intervals over users.

    Each metric is the mean over the task's prediction points (as
    :func:`interest_lib.evaluation.metrics.ndcg_at_k` returns it). Its interval comes from a *cluster*
    bootstrap over users (CONTRIBUTING.md, "Evaluation protocol"): every replicate draws users with replacement and averages
    all points of the drawn users, so the points of one user, which are not independent, stay
    together. All methods and metrics share the same replicates.

    Parameters
    ----------
    scores
        Method name → ``(len(task), C)`` scores for the task's points.
    task
        The prediction points.
    k
        Cut-off of NDCG and HR.
    reference
        A method of ``scores`` (e.g. ``"oracle"``): adds the paired interval of each method's
        NDCG@k minus the reference's, from the same replicates.
    n_boot, alpha, seed
        Bootstrap replicates, 1 - coverage, seed.

    Returns
    -------
    pandas.DataFrame
        One row per method (in the order given); columns ``NDCG@k``, ``NDCG@k low``,
        ``NDCG@k high`` and the same for ``HR@k`` and ``MRR``; with a reference also
        ``ΔNDCG@k``, ``ΔNDCG@k low``, ``ΔNDCG@k high``.
    """
    from interest_lib.evaluation.metrics import ranking_report

    if reference is not None and reference not in scores:
        raise ValueError(f"reference {reference!r} is not one of the methods")
    if n_boot < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need n_boot >= 1 and 0 < alpha < 1, got {n_boot}, {alpha}")
    names = (f"NDCG@{k}", f"HR@{k}", "MRR")
    users, inverse = np.unique(task.user_id, return_inverse=True)
    counts = np.bincount(inverse, minlength=users.size).astype(np.float64)
    rng = np.random.default_rng(seed)
    # how often each user is drawn in each replicate, (n_boot, n_users)
    draws = np.stack(
        [np.bincount(rng.integers(0, users.size, users.size), minlength=users.size)
         for _ in range(n_boot)]
    ).astype(np.float64)  # fmt: skip
    weight = draws @ counts  # number of points in each replicate
    quantiles = [alpha / 2.0, 1.0 - alpha / 2.0]
    sums: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    for method, values in scores.items():
        points = ranking_report(values, task.target, ks=(k,), per_user=True)
        sums[method] = {}
        row: dict[str, float] = {}
        for name in names:
            per_point = points[name].to_numpy()
            sums[method][name] = np.bincount(inverse, weights=per_point, minlength=users.size)
            low, high = np.quantile((draws @ sums[method][name]) / weight, quantiles)
            row[name] = float(per_point.mean())
            row[f"{name} low"], row[f"{name} high"] = float(low), float(high)
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(list(scores), name="method"))
    if reference is not None:
        ndcg = names[0]
        deltas = []
        for method in scores:
            difference = sums[method][ndcg] - sums[reference][ndcg]
            low, high = np.quantile((draws @ difference) / weight, quantiles)
            deltas.append((float(difference.sum() / counts.sum()), float(low), float(high)))
        table[f"Δ{ndcg}"] = [d[0] for d in deltas]
        table[f"Δ{ndcg} low"] = [d[1] for d in deltas]
        table[f"Δ{ndcg} high"] = [d[2] for d in deltas]
    return table


def gap_closed(value: float, baseline: float, ceiling: float) -> float:
    r"""Share of the baseline-to-ceiling gap a method closes, :math:`(v - b) / (o - b)`.

    1 means the method reaches the ceiling (the oracle), 0 that it is no better than the
    baseline, a negative value that it is worse.

    Raises
    ------
    ValueError
        If the ceiling does not exceed the baseline (there is no gap to close).
    """
    if not ceiling > baseline:
        raise ValueError(f"no gap: ceiling {ceiling} must exceed baseline {baseline}")
    return float((value - baseline) / (ceiling - baseline))


# --------------------------------------------------------------------------------------------
# leaderboards
# --------------------------------------------------------------------------------------------


def user_bootstrap(
    values: ArrayLike,
    user_id: ArrayLike,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> metrics.ConfidenceInterval:
    """Bootstrap interval of a mean over points that resamples **users** (a cluster bootstrap).

    The estimate is the mean over all points. Each replicate draws users with replacement and
    takes the mean over all points of the drawn users, so a user's points stay together: points
    of one user are not independent, and resampling points would give intervals that are too
    narrow.

    Parameters
    ----------
    values
        ``(n,)`` per-point values (``NaN`` is left out).
    user_id
        ``(n,)`` the user of each point.
    n_boot, alpha, seed
        As in :func:`interest_lib.evaluation.metrics.bootstrap_ci`.
    """
    values = np.asarray(values, dtype=np.float64)
    user_id = np.asarray(user_id)
    keep = ~np.isnan(values)
    users, inverse = np.unique(user_id[keep], return_inverse=True)
    if users.size == 0:
        raise ValueError("no values to bootstrap")
    sums = np.bincount(inverse, weights=values[keep], minlength=users.size)
    counts = np.bincount(inverse, minlength=users.size).astype(np.float64)
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot)
    block = max(1, (1 << 22) // users.size)
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        index = rng.integers(0, users.size, size=(stop - start, users.size))
        replicates[start:stop] = sums[index].sum(axis=1) / counts[index].sum(axis=1)
    low, high = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return metrics.ConfidenceInterval(float(values[keep].mean()), float(low), float(high))


def user_means(report: pd.DataFrame | ArrayLike, user_id: ArrayLike) -> pd.DataFrame | np.ndarray:
    """Average per-point values over each user's points, users in increasing id order.

    The book's convention (chapters 3, 5 and 6): a user's score is the mean over their
    prediction points, and a method's score the mean over users, so every user counts once
    whatever their activity. ``NaN`` values are left out of a user's mean.

    Parameters
    ----------
    report
        A per-point frame (:func:`point_report`) or one ``(n,)`` array.
    user_id
        ``(n,)`` the user of each point.

    Returns
    -------
    pandas.DataFrame or numpy.ndarray
        One row (or value) per user.
    """
    user_id = np.asarray(user_id)
    if isinstance(report, pd.DataFrame):
        return report.groupby(user_id).mean()
    return pd.Series(np.asarray(report, dtype=np.float64)).groupby(user_id).mean().to_numpy()


def leaderboard(
    reports: Mapping[str, pd.DataFrame],
    user_id: ArrayLike,
    *,
    metric: str = "NDCG@10",
    columns: Sequence[str] = ("HR@1", "HR@10", "NDCG@10", "MRR"),
    ceiling: Sequence[str] = ("oracle",),
    n_boot: int = 1000,
    seed: int = 0,
    average: str = "users",
) -> pd.DataFrame:
    """One row per method: mean metrics, a 95 % interval of ``metric`` and the 5 % tie rule.

    With ``average="users"`` (the default) every value is a mean over users of the user's mean
    over their points (:func:`user_means`), and the interval is
    :func:`interest_lib.evaluation.metrics.bootstrap_ci` of the users' means. With ``average="points"`` every
    value is the mean over all points and the interval a cluster bootstrap of that mean
    (:func:`user_bootstrap`). Either way users are resampled with all their points.

    Parameters
    ----------
    reports
        Method → per-point frame (:func:`point_report`), all on the same points.
    user_id
        ``(n,)`` user of each point.
    metric
        The metric that ranks the methods and gets an interval.
    columns
        Metrics shown.
    ceiling
        Methods that are references, not competitors (the oracle): they are listed but never
        "the best".
    n_boot, seed
        Bootstrap replicates and seed (the same resamples for every method).
    average
        ``"users"`` or ``"points"``, see above.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``metric``; columns ``columns``, ``low``, ``high`` (the interval of ``metric``),
        ``vs best`` (relative difference to the best non-ceiling method,
        :func:`~interest_lib.evaluation.metrics.relative_difference`) and ``ties best``
        (:func:`~interest_lib.evaluation.metrics.is_tie`; the best method ties with itself).
    """
    if average not in ("users", "points"):
        raise ValueError(f"average must be 'users' or 'points', got {average!r}")
    rows = {}
    for name, frame in reports.items():
        shown = frame[list(dict.fromkeys([*columns, metric]))]
        if average == "users":
            means = user_means(shown, user_id)
            ci = metrics.bootstrap_ci(means[metric].to_numpy(), n_boot=n_boot, seed=seed)
        else:
            means = shown
            ci = user_bootstrap(shown[metric].to_numpy(), user_id, n_boot=n_boot, seed=seed)
        row = {c: float(means[c].mean()) for c in columns}
        row.update({metric: ci.estimate, "low": ci.low, "high": ci.high})
        rows[name] = row
    table = pd.DataFrame(rows).T
    table = table[[*dict.fromkeys([*columns, metric]), "low", "high"]]
    competitors = table.drop(index=[c for c in ceiling if c in table.index])
    best = competitors[metric].max()
    table["vs best"] = [metrics.relative_difference(v, best) for v in table[metric]]
    table["ties best"] = [
        name not in ceiling and metrics.is_tie(v, best) for name, v in table[metric].items()
    ]
    return table.sort_values(metric, ascending=False)


