r"""Chapter 5's choice of a transfer method on the validation day, and the truth's ceiling.

The test day must not choose the method it reports. :func:`rehearsal_setup` moves the book's
protocol one day earlier, so that the validation day plays the test day;
:func:`validation_table` runs every method of chapter 5 there, on the cold-start users of the
web with web events on the validation day, with the same calls as on the test day
(:func:`~interest_lib.recipes.cold_start.cold_start_case`,
:func:`~interest_lib.recipes.cold_start_mlp.pretrain_app_mlp`,
:func:`~interest_lib.recipes.cold_start_mlp.learning_curve`); the chapter picks the best there
(:func:`~interest_lib.recipes.cold_start.best_transfer`) and reports it on the test day.
:func:`gap_shares` measures every method against the truth's ceiling, as a share of the gap from
web popularity to the truth; :func:`popularity_verdicts` says which transfers beat web popularity
at all (paired bootstrap interval of the difference in HR@10).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from interest_lib.data import features
from interest_lib.data.schema import DAY_S
from interest_lib.data.split import split_by_time
from interest_lib.evaluation import metrics
from interest_lib.recipes import cold_start, cold_start_mlp
from interest_lib.recipes.protocol import BookSetup

GROUP_COLUMNS: dict[str, str] = {"with an app history (both_cold)": "HR@10 both_cold",
                                 "without one (web_cold)": "HR@10 web_cold"}
"""Column of :func:`gap_shares` → the column of :func:`~interest_lib.recipes.cold_start.method_table`
it is computed from."""


def rehearsal_setup(setup: BookSetup) -> BookSetup:
    """The book's protocol one day earlier: the validation day becomes the test day.

    Training ends a day before ``setup``'s, the last training day becomes the validation day and
    ``setup``'s validation day the test day; the vocabulary is fitted on the shorter training
    days. Nothing of ``setup``'s test day is in it.

    Returns
    -------
    BookSetup
        On the same simulation; its ``key`` marks it as the rehearsal.
    """
    split = setup.split
    early = split_by_time(setup.events, split.train_end - DAY_S, split.train_end,
                          split.valid_end, utc_offset_s=split.utc_offset_s)
    vocab = features.CategoryVocabulary.fit(early.train)
    return BookSetup(setup.sim, early, vocab.ids, setup.key + ":rehearsal")


def validation_table(
    setup: BookSetup,
    case: cold_start.ColdStartCase,
    *,
    seed: int = 0,
    n_clusters: int = 10,
    hidden: int = 64,
    epochs: int = 30,
    largest: int = 400,
    n_repeats: int = 3,
    min_web_events: int = 10,
    n_boot: int = 1000,
    device: Any = None,
) -> tuple[pd.DataFrame, cold_start.ColdStartCase]:
    """Every method of chapter 5 scored on the validation day, to choose among them.

    The rehearsal (:func:`rehearsal_setup`) runs the chapter's calls with its settings: the
    cold-start users of the web with web events on the validation day are predicted for from
    their events before it; popularities, ratio, app profiles and networks see only the days
    before it. ``k`` and the prior strength are ``case``'s (chosen on the validation day by
    :func:`~interest_lib.recipes.cold_start.validate_knobs`); the learning curve runs its
    ``largest`` size only, the one the table reports.

    Returns
    -------
    tuple
        ``(table, valid_case)``: :func:`~interest_lib.recipes.cold_start.method_table` of the
        validation day, indexed like the test day's, and the rehearsal's
        :class:`~interest_lib.recipes.cold_start.ColdStartCase`.
    """
    from interest_lib.models import training

    early = rehearsal_setup(setup)
    valid_case = cold_start.cold_start_case(early, seed=seed, n_clusters=n_clusters, k=case.k,
                                            strength=case.strength)
    pretrained, corrected, _ = cold_start_mlp.pretrain_app_mlp(
        early, seed=seed, device=device, hidden=hidden, epochs=epochs)
    x_cold = cold_start_mlp.cold_inputs(early, valid_case.users)
    with training.one_cpu_thread(training.best_device(device)):
        zero_shot = (cold_start_mlp.mlp_predict(pretrained, x_cold),
                     cold_start_mlp.mlp_predict(corrected, x_cold))
    curve, _ = cold_start_mlp.learning_curve(
        early, valid_case, corrected, train_sizes=(largest,), n_repeats=n_repeats,
        min_web_events=min_web_events, hidden=hidden, epochs=epochs, seed=seed, device=device)
    results = cold_start.all_methods(valid_case, zero_shot, curve, largest)
    table = cold_start.method_table(results, valid_case.is_both_cold, n_boot=n_boot, seed=seed)
    return table, valid_case


def gap_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Each transfer method's share of the gap from web popularity to the truth, per group.

    .. math:: \\text{share} = \\frac{\\text{HR@10}_{\\text{method}} - \\text{HR@10}_{\\text{popularity}}}
              {\\text{HR@10}_{\\text{truth}} - \\text{HR@10}_{\\text{popularity}}}

    on the people with an app history (``both_cold``) and on those without (``web_cold``): 0 is
    popularity, 1 the truth's ceiling, a negative share is worse than popularity.

    Parameters
    ----------
    table
        :func:`~interest_lib.recipes.cold_start.method_table` with popularity and the truth.

    Returns
    -------
    pandas.DataFrame
        One row per transfer method (:func:`~interest_lib.recipes.cold_start.transfer_rows`),
        one column per group of :data:`GROUP_COLUMNS`.
    """
    rows = cold_start.transfer_rows(table)
    shares = {}
    for name, column in GROUP_COLUMNS.items():
        popularity = table.loc[cold_start.POPULARITY, column]
        gap = table.loc[cold_start.TRUTH, column] - popularity
        shares[name] = (table.loc[rows, column] - popularity) / gap
    return pd.DataFrame(shares, index=pd.MultiIndex.from_tuples(rows, names=table.index.names))


def share_range(shares: pd.DataFrame, rows: Any = None) -> tuple[float, float]:
    """``(lowest, highest)`` share in ``shares`` (of ``rows`` only, if given), over both groups."""
    values = np.asarray(shares.loc[list(rows)] if rows is not None else shares, dtype=np.float64)
    return float(values.min()), float(values.max())


def popularity_verdicts(
    results: Any, *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Does each transfer method beat web popularity? Paired differences in HR@10 over people.

    Parameters
    ----------
    results
        :func:`~interest_lib.recipes.cold_start.all_methods`: ``(method, version)`` → per-person
        report, with web popularity.
    n_boot, seed
        Of :func:`~interest_lib.evaluation.metrics.bootstrap_diff_ci`.

    Returns
    -------
    pandas.DataFrame
        One row per transfer method (c) to (f): ``difference`` (method − popularity), ``low``,
        ``high`` (95 % paired interval) and ``verdict``: ``"beats"`` when the interval lies above
        0, ``"loses to"`` when it lies below 0, else ``"does not measurably beat"``.
    """
    popularity = results[cold_start.POPULARITY]["HR@10"]
    rows = {}
    for key in results:
        if not key[0].startswith(("(c", "(d", "(e", "(f")):
            continue
        diff = metrics.bootstrap_diff_ci(results[key]["HR@10"], popularity, n_boot=n_boot,
                                         seed=seed)
        verdict = {1: "beats", -1: "loses to", 0: "does not measurably beat"}[diff.side()]
        rows[key] = {"difference": diff.estimate, "low": diff.low, "high": diff.high,
                     "verdict": verdict}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(list(rows), names=["method", "version"])
    return table
