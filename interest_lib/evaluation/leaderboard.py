r"""One leaderboard for many methods on the same prediction points: :func:`leaderboard`.

Every table of methods in the book comes from :func:`leaderboard`: the mean of each metric,
averaged either over prediction points or over users (an explicit argument), a bootstrap
interval that resamples **users** with all their points, the book's 5 % tie rule, optionally a
paired difference to a reference method (:func:`paired_difference` for one pair, read in words by
:func:`position`) and the share of the baseline-to-ceiling gap a method closes
(:func:`gap_closed`); :func:`formatted` prints it as the book does.

Two ways to average a per-point value :math:`x_{u,j}` (point :math:`j` of user :math:`u`,
user :math:`u` with :math:`n_u` points, :math:`U` users):

.. math::

    \bar x_{\text{points}} = \frac{\sum_u \sum_j x_{u,j}}{\sum_u n_u},
    \qquad
    \bar x_{\text{users}} = \frac{1}{U} \sum_u \frac{1}{n_u} \sum_j x_{u,j}.

The first counts every request once (the busiest users weigh most), the second every person once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.evaluation import metrics

AVERAGES: tuple[str, ...] = ("points", "users")
"""The two averages of :func:`leaderboard`."""

_BLOCK_ELEMENTS = 1 << 22  # resampled users per block of replicates: about 32 MB of indices


# --------------------------------------------------------------------------------------------
# the share of a gap
# --------------------------------------------------------------------------------------------


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
# per-user sums and the cluster bootstrap
# --------------------------------------------------------------------------------------------


def _per_user(values: np.ndarray, inverse: np.ndarray, n_users: int, average: str
              ) -> tuple[float, np.ndarray, np.ndarray]:
    """``(estimate, sums, counts)``: the mean and, per user, what a replicate adds up.

    A replicate's value is ``sums[drawn].sum() / counts[drawn].sum()``: with ``"points"`` the
    sums and numbers of a user's defined (non-``NaN``) points, with ``"users"`` the user's mean
    and 1 (0 for a user without a defined point).
    """
    defined = ~np.isnan(values)
    if average == "points":
        sums = np.bincount(inverse, weights=np.where(defined, values, 0.0), minlength=n_users)
        counts = np.bincount(inverse, weights=defined.astype(np.float64), minlength=n_users)
        return float(values[defined].mean()), sums, counts
    means = pd.Series(values).groupby(inverse).mean().reindex(range(n_users)).to_numpy()
    known = ~np.isnan(means)
    return float(means[known].mean()), np.where(known, means, 0.0), known.astype(np.float64)


def _user_replicates(parts: list[tuple[np.ndarray, np.ndarray]], n_boot: int, seed: int
                     ) -> list[np.ndarray]:
    """Bootstrap replicates of several per-user ``(sums, counts)``, all from the same draws.

    Each replicate draws the users with replacement (``rng.integers`` in blocks of replicates)
    and computes ``sums[drawn].sum() / counts[drawn].sum()`` for every part.
    """
    n_users = parts[0][0].size
    rng = np.random.default_rng(seed)
    out = [np.empty(n_boot) for _ in parts]
    block = max(1, _BLOCK_ELEMENTS // n_users)
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        index = rng.integers(0, n_users, size=(stop - start, n_users))
        for replicates, (sums, counts) in zip(out, parts):
            replicates[start:stop] = sums[index].sum(axis=1) / counts[index].sum(axis=1)
    return out


def _estimates(
    values: Mapping[tuple[str, str], np.ndarray],
    user_id: ArrayLike,
    average: str,
    n_boot: int,
    alpha: float,
    seed: int,
) -> dict[tuple[str, str], tuple[float, float, float]]:
    """``(estimate, low, high)`` of the mean of every ``(n,)`` per-point array, same draws."""
    users, inverse = np.unique(np.asarray(user_id), return_inverse=True)
    cells = {key: _per_user(v, inverse, users.size, average) for key, v in values.items()}
    keys = list(cells)
    intervals = {key: (np.nan, np.nan) for key in keys}
    if n_boot > 0 and users.size > 0:
        replicates = _user_replicates([cells[key][1:] for key in keys], n_boot, seed)
        for key, draws in zip(keys, replicates):
            low, high = np.quantile(draws, [alpha / 2.0, 1.0 - alpha / 2.0])
            intervals[key] = (float(low), float(high))
    return {key: (cells[key][0], *intervals[key]) for key in keys}


# --------------------------------------------------------------------------------------------
# the leaderboard
# --------------------------------------------------------------------------------------------


def leaderboard(
    reports: Mapping[str, pd.DataFrame],
    user_id: ArrayLike,
    *,
    average: str,
    metric: str = "NDCG@10",
    columns: Sequence[str] = ("HR@1", "HR@10", "NDCG@10", "MRR"),
    ceiling: Sequence[str] = ("oracle",),
    reference: str | None = None,
    baselines: Sequence[str] = (),
    sort: bool = True,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    r"""One row per method: mean metrics with 95 % intervals over users and the 5 % tie rule.

    Every value is a mean of per-point values, over points or over users (``average``, see the
    module's formulas). Its interval is a percentile bootstrap that resamples **users** with
    all their points (a cluster bootstrap): a replicate draws :math:`U` users with
    replacement, :math:`\mathcal{B}`, and takes :math:`\sum_{u \in \mathcal{B}} \sum_j x_{u,j}
    / \sum_{u \in \mathcal{B}} n_u` (points) or the mean of the drawn users' means (users).
    Points of one user are not independent, so resampling points would give intervals that are
    too narrow. Every method and metric uses the same draws, so intervals of differences are
    paired. (One function for every table of the book: its length is mostly the description
    of the columns, which belongs with the code that makes them.)

    Parameters
    ----------
    reports
        Method → per-point frame, all on the same ``n`` points
        (:func:`interest_lib.recipes.protocol.point_report`, or any frame with the metric
        columns; ``NaN`` marks an undefined value and is left out).
    user_id
        ``(n,)`` the user of each point.
    average
        ``"points"`` (every prediction point counts once) or ``"users"`` (every user counts
        once); no default, a table must say which.
    metric
        The metric that ranks the methods and decides ties.
    columns
        Metrics shown, each with its interval (``metric`` is added if missing).
    ceiling
        Methods that are references, not competitors (the oracle): listed but never "the best".
    reference
        A method of ``reports``: adds the mean of each method's per-point (or per-user)
        difference to it in ``metric``, :math:`\Delta`, with its paired interval.
    baselines
        Methods whose best value in ``metric`` is the baseline of the column ``gap closed``,
        :func:`gap_closed` towards the first ``ceiling`` method (``NaN`` when there is no gap).
    sort
        Sort by ``metric``, best first; ``False`` keeps the order of ``reports``.
    n_boot, alpha, seed
        Bootstrap replicates (0: no intervals, ``NaN``), 1 - coverage, and the seed.

    Returns
    -------
    pandas.DataFrame
        Index ``method``; for each metric ``c`` of ``columns`` the columns ``c``, ``c low`` and
        ``c high``; ``vs best`` (:func:`~interest_lib.evaluation.metrics.relative_difference`
        to the best method that is not a ceiling, :math:`(a - b)/\max(|a|, |b|)`) and ``ties
        best`` (:func:`~interest_lib.evaluation.metrics.is_tie`: :math:`|\text{vs best}| <
        5\,\%`; the best ties with itself, a ceiling never); with ``reference`` also
        ``Δmetric``, ``Δmetric low``, ``Δmetric high``; with ``baselines`` ``gap closed``.
        ``attrs["alpha"]`` keeps ``alpha``.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    if reference is not None and reference not in reports:
        raise ValueError(f"reference {reference!r} is not one of the methods")
    if n_boot < 0 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need n_boot >= 0 and 0 < alpha < 1, got {n_boot}, {alpha}")
    shown = list(dict.fromkeys([*columns, metric]))
    values = {(name, column): frame[column].to_numpy(np.float64)
              for name, frame in reports.items() for column in shown}
    if reference is not None:
        for name, frame in reports.items():
            values[name, f"Δ{metric}"] = (frame[metric].to_numpy(np.float64)
                                          - reports[reference][metric].to_numpy(np.float64))
    rows: dict[str, dict[str, float]] = {name: {} for name in reports}
    for (name, column), (estimate, low, high) in _estimates(values, user_id, average, n_boot,
                                                            alpha, seed).items():
        rows[name].update({column: estimate, f"{column} low": low, f"{column} high": high})
    table = pd.DataFrame.from_dict(rows, orient="index")
    order = [f"{c}{s}" for c in shown for s in ("", " low", " high")]
    if reference is not None:
        order += [f"Δ{metric}{s}" for s in ("", " low", " high")]
    table = table[order].astype(np.float64).rename_axis("method")
    _add_verdicts(table, metric, ceiling, baselines)
    if sort:
        table = table.sort_values(metric, ascending=False, kind="stable")
    table.attrs["alpha"] = alpha
    return table


def paired_difference(
    reports: Mapping[str, pd.DataFrame],
    method: str,
    other: str,
    user_id: ArrayLike,
    *,
    average: str = "points",
    metric: str = "NDCG@10",
    n_boot: int = 1000,
    seed: int = 0,
) -> metrics.ConfidenceInterval:
    r"""``method`` − ``other`` in ``metric``, with the paired 95 % interval of :func:`leaderboard`.

    The mean of the per-point (or per-user) differences :math:`x^{\text{method}} -
    x^{\text{other}}`, its interval from the cluster bootstrap over users with the draws of
    :func:`leaderboard` (same ``seed``, same draws). ``.side()`` of the result says whether the
    data show a difference.
    """
    row = leaderboard({method: reports[method], other: reports[other]}, user_id,
                      average=average, metric=metric, columns=[metric], ceiling=(),
                      reference=other, sort=False, n_boot=n_boot, seed=seed).loc[method]
    return metrics.ConfidenceInterval(float(row[f"Δ{metric}"]), float(row[f"Δ{metric} low"]),
                                      float(row[f"Δ{metric} high"]))


def position(difference: metrics.ConfidenceInterval) -> str:
    """``"above"``, ``"below"`` or ``"level with"``: where a method stands against another, from
    the paired interval of their difference (:func:`paired_difference`)."""
    return {1: "above", -1: "below", 0: "level with"}[difference.side()]


def _add_verdicts(table: pd.DataFrame, metric: str, ceiling: Sequence[str],
                  baselines: Sequence[str]) -> None:
    """Add ``vs best``, ``ties best`` and (with ``baselines``) ``gap closed`` in place."""
    competitors = table.drop(index=[c for c in ceiling if c in table.index])[metric]
    best = competitors.max() if len(competitors) else np.nan
    table["vs best"] = [metrics.relative_difference(v, best) for v in table[metric]]
    table["ties best"] = [name not in ceiling and metrics.is_tie(v, best)
                          for name, v in table[metric].items()]
    if baselines:
        base = table.loc[list(baselines), metric].max()
        top = table.loc[[c for c in ceiling if c in table.index][0], metric]
        table["gap closed"] = [gap_closed(v, base, top) if top > base else np.nan
                               for v in table[metric]]


def formatted(
    board: pd.DataFrame,
    columns: Sequence[str] = ("HR@1", "HR@10", "NDCG@10", "MRR", "vs best", "ties best"),
    *,
    intervals: Sequence[str] = ("NDCG@10",),
    digits: int = 4,
) -> pd.DataFrame:
    """A :func:`leaderboard` as the book prints it.

    Parameters
    ----------
    board
        From :func:`leaderboard`.
    columns
        Columns shown, in order. A metric of ``intervals`` becomes ``"value [low, high]"``
        (column ``"<metric> (95 % CI)"``, the coverage from ``board.attrs["alpha"]``),
        ``vs best`` a signed percentage and ``ties best`` ``"tie"`` or nothing; other columns
        are rounded.
    intervals
        Metrics shown with their interval.
    digits
        Decimals of the metrics.

    Returns
    -------
    pandas.DataFrame
        One row per method of ``board``, in its order.
    """
    coverage = round(100 * (1 - board.attrs.get("alpha", 0.05)))
    out = {}
    for column in columns:
        if column in intervals:
            out[f"{column} ({coverage} % CI)"] = [
                f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" for m, lo, hi in
                board[[column, f"{column} low", f"{column} high"]].to_numpy()]  # fmt: skip
        elif column == "vs best":
            out[column] = [f"{v:+.1%}" for v in board[column]]
        elif column == "ties best":
            out[column] = ["tie" if t else "" for t in board[column]]
        else:
            out[column] = board[column].round(digits).to_numpy()
    return pd.DataFrame(out, index=board.index)
