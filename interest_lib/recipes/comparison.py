r"""Chapter 7's comparison of every method: the leaderboard's verdicts, cold-start users, items.

:func:`leaderboard_summary` reads a :func:`~interest_lib.evaluation.leaderboard.leaderboard` of
every method (best method, ties, best learned model against the best baseline);
:func:`validated_transfer` takes chapter 5's choice of a transfer method on the validation day and
:func:`cold_start_comparison` puts chapter 5's transfer methods and the next-category methods on
chapter 5's cold-start users; :func:`item_lists`, :func:`item_score_functions`,
:func:`item_leaderboard` and :func:`example_list_user` build and evaluate top-N item lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interest_lib.evaluation import metrics
from interest_lib.evaluation.leaderboard import formatted, leaderboard
from interest_lib.models import baselines

if TYPE_CHECKING:
    from interest_lib.data.tasks import NextCategoryTask
    from interest_lib.models.recommend import ItemPopularity

LEARNED: tuple[str, ...] = ("interest MLP", "LSTM")
"""The learned models of chapter 7's leaderboard (chapters 3 and 6)."""


def leaderboard_summary(
    board: pd.DataFrame,
    reports: Mapping[str, pd.DataFrame],
    user_id: np.ndarray,
    *,
    learned: Sequence[str] = LEARNED,
    ceiling: str = "oracle",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """What a sorted leaderboard of every method says, in numbers.

    Parameters
    ----------
    board
        :func:`~interest_lib.evaluation.leaderboard.leaderboard` of ``reports``, sorted by
        NDCG@10 (with ``baselines=BASELINE_NAMES`` for ``gap``).
    reports
        Method → per-point frame, the board's input.
    user_id
        ``(n,)`` the user of each point.
    learned
        The learned models; the baselines are
        :data:`~interest_lib.models.baselines.BASELINE_NAMES`.
    ceiling
        The reference that is never "the best".
    n_boot, seed
        Bootstrap of the paired difference.

    Returns
    -------
    dict
        ``best`` (best method short of the ceiling), ``ties`` (other methods that tie with it,
        in board order), ``best_baseline``, ``best_learned``, ``difference`` (NDCG@10 of the
        best learned model minus the best baseline, a
        :class:`~interest_lib.evaluation.metrics.ConfidenceInterval` from the leaderboard's
        paired cluster bootstrap over users), ``relative``
        (:func:`~interest_lib.evaluation.metrics.relative_difference`), ``tie``
        (:func:`~interest_lib.evaluation.metrics.is_tie`) and ``gap`` (the share of the best
        baseline → ceiling gap the best learned model closes; ``None`` if it closes none).
    """
    competitors = board.drop(index=ceiling)
    best = competitors.index[0]
    ties = [name for name in competitors.index[1:] if competitors.loc[name, "ties best"]]
    best_baseline = board.loc[list(baselines.BASELINE_NAMES), "NDCG@10"].idxmax()
    best_learned = board.loc[list(learned), "NDCG@10"].idxmax()
    pair = {name: reports[name] for name in (best_learned, best_baseline)}
    paired = leaderboard(pair, user_id, average="points", reference=best_baseline,
                         n_boot=n_boot, seed=seed).loc[best_learned]
    difference = metrics.ConfidenceInterval(
        float(paired["ΔNDCG@10"]), float(paired["ΔNDCG@10 low"]), float(paired["ΔNDCG@10 high"]))
    a, b = board.loc[best_learned, "NDCG@10"], board.loc[best_baseline, "NDCG@10"]
    closes = a > b and board.loc[ceiling, "NDCG@10"] > b
    return {"best": best, "ties": ties, "best_baseline": best_baseline,
            "best_learned": best_learned, "difference": difference,
            "relative": float(metrics.relative_difference(a, b)), "tie": metrics.is_tie(a, b),
            "gap": float(board.loc[best_learned, "gap closed"]) if closes else None}


def verdict(difference: metrics.ConfidenceInterval) -> str:
    """"beats", "loses to" or "cannot be told apart from", from a paired interval of a - b."""
    return {1: "beats", -1: "loses to", 0: "cannot be told apart from"}[difference.side()]


# --------------------------------------------------------------------------------------------
# cold-start users
# --------------------------------------------------------------------------------------------

REFERENCES: tuple[str, ...] = ("truth (hidden parameters)", "oracle")
"""The references of the cold-start comparison (not competitors)."""

READS_EVENTS: tuple[str, ...] = ("user frequency", "repeat last", "Markov chain", "session-aware",
                                 "session Markov chain", "LSTM")
"""Next-category methods that update their score after every event of the user."""


def transfer_label(key: tuple[str, str]) -> str:
    """Chapter 7's name of a row ``(method, version)`` of chapter 5's method table.

    Exposure-corrected methods carry their version in the name, as the keys of
    :attr:`~interest_lib.recipes.cold_start.ColdStartCase.scores` do; the others are named alone.
    """
    from interest_lib.recipes.cold_start import CORRECTED

    name, version = key
    return f"{name}, {version}" if version == CORRECTED else name


def validated_transfer(
    setup: Any,
    cold: Any,
    names: Sequence[str],
    *,
    seed: int = 0,
    device: Any = None,
) -> dict[str, Any]:
    """Chapter 5's choice of a transfer method on the validation day, among ``names``.

    Runs chapter 5's rehearsal, :func:`~interest_lib.recipes.cold_start_choice.validation_table`
    (the book's protocol moved one day earlier, with chapter 5's settings and ``cold``'s ``k``
    and prior strength), and picks with :func:`~interest_lib.recipes.cold_start.best_transfer`
    among the transfer methods (c) to (f) whose :func:`transfer_label` is in ``names``; the test
    day is never looked at. The validation HR@10 are cached (:func:`~interest_lib.recipes.cache.cached`).

    Parameters
    ----------
    setup
        The protocol (:class:`~interest_lib.recipes.protocol.BookSetup`).
    cold
        :func:`~interest_lib.recipes.cold_start.cold_start_case` of the test day.
    names
        The transfer methods the comparison shows (keys of its ``transfer_scores``).
    seed, device
        As chapter 5.

    Returns
    -------
    dict
        ``chosen`` (the label chosen among ``names``), ``chapter5`` (chapter 5's own choice among
        all its methods, as :func:`~interest_lib.recipes.cold_start.method_label` names it; it
        may be a method this comparison does not show) and ``valid_hr`` (label → validation
        HR@10 of every transfer row, a :class:`pandas.Series`).
    """
    from interest_lib.models import training
    from interest_lib.recipes import cold_start, cold_start_choice
    from interest_lib.recipes.cache import cached, code_version, fingerprint
    from interest_lib.recipes.protocol import _PROTOCOL_MODULES

    target = training.best_device(device)
    params = {"data": setup.key, "users": fingerprint(cold.users), "k": cold.k,
              "strength": cold.strength, "seed": seed, "device": target.type}

    def compute() -> dict[str, np.ndarray]:
        table, _ = cold_start_choice.validation_table(setup, cold, seed=seed, device=target)
        rows = cold_start.transfer_rows(table)
        own = cold_start.best_transfer(table)
        return {"labels": np.array([transfer_label(key) for key in rows]),
                "hr": table.loc[rows, "HR@10"].to_numpy(dtype=np.float64),
                "chapter5": np.array(cold_start.method_label(own, table.index))}

    code = code_version(_PROTOCOL_MODULES + ("cold_start", "cold_start_choice", "cold_start_mlp",
                                             "interest_mlp", "training", "transfer", "baselines"),
                        (validated_transfer, transfer_label))
    stored = cached("cold_start_validation", params, compute, code=code)
    valid_hr = pd.Series(stored["hr"], index=[str(label) for label in stored["labels"]],
                         name="validation HR@10")
    shown = valid_hr[valid_hr.index.isin(list(names))]
    if shown.empty:
        raise ValueError("none of the transfer methods in names is a row of chapter 5's table")
    return {"chosen": str(shown.idxmax()), "chapter5": str(stored["chapter5"]),
            "valid_hr": valid_hr}


def cold_start_comparison(
    cold: Any,
    transfer_scores: Mapping[str, np.ndarray],
    test_scores: Mapping[str, np.ndarray],
    task: NextCategoryTask,
    *,
    chosen: str,
    popularity: str = "(a) web popularity",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Chapter 5's transfer methods and the next-category methods on chapter 5's cold-start users.

    Every method is scored on the same web events of the test day, the same way: HR@10 and
    NDCG@10 per person (the mean over their events), then the mean over people. A transfer
    method gives a person one static row (``cold.report``); a next-category method its score at
    each event (``cold.event_report``), only at events that are prediction points of ``task``.

    Parameters
    ----------
    cold
        :func:`~interest_lib.recipes.cold_start.cold_start_case`.
    transfer_scores
        Method → ``(len(cold.users), C)`` static scores (chapter 5's methods and references).
    test_scores
        Method → ``(len(task), C)`` scores of the next-category methods.
    task
        The test day's prediction points.
    chosen
        The transfer method chosen on the validation day (:func:`validated_transfer`); the
        comparisons are made with it, never with the test day's best.
    popularity
        The transfer baseline (first of ``transfer_scores`` apart from the references).
    n_boot, seed
        Bootstrap over people.

    Returns
    -------
    dict
        ``reports`` (method → per-person frame), ``kind`` (method → "reference", "transfer
        (ch. 5), static", "reads earlier events" or "static"), ``table`` (HR@10 and NDCG@10 with
        95 % intervals resampling people, relative to ``popularity``, sorted by HR@10),
        ``on_points`` (which cold-start events are points of ``task``), ``hr`` (method → mean
        HR@10), ``transfer`` (the transfer methods), ``best_transfer`` (``chosen``),
        ``test_best_transfer`` (the highest test-day HR@10 apart from ``popularity``, shown for
        comparison only), ``best_sequence`` and ``weakest_sequence`` (of :data:`READS_EVENTS`),
        ``transfer_vs_popularity`` and ``sequence_vs_transfer`` (paired intervals of the
        per-person HR@10 differences of ``chosen`` against ``popularity`` and of
        ``best_sequence`` against ``chosen``,
        :func:`~interest_lib.evaluation.metrics.bootstrap_diff_ci`).
    """
    transfer = [name for name in transfer_scores if name not in REFERENCES]
    if chosen not in transfer or chosen == popularity:
        raise ValueError(f"chosen must be a transfer method other than {popularity!r}, "
                         f"got {chosen!r}")
    position = cold.task_positions(task)  # each cold-start web event among the task's points
    on_points = position >= 0  # events with an earlier event of the user (and a known category)
    reports, kind = {}, {}
    for name, scores in transfer_scores.items():
        reports[name] = cold.report(scores, keep=on_points)  # per person, as chapter 5
        kind[name] = "reference" if name in REFERENCES else "transfer (ch. 5), static"
    for name, scores in test_scores.items():
        reports[name] = cold.event_report(scores[position[on_points]], on_points)
        kind[name] = ("reference" if name in REFERENCES else
                      "reads earlier events" if name in READS_EVENTS else "static")  # fmt: skip
    hr = {name: float(report["HR@10"].mean()) for name, report in reports.items()}
    people = np.arange(len(next(iter(reports.values()))))
    board = leaderboard(reports, people, average="users", metric="HR@10",
                        columns=("HR@10", "NDCG@10"), ceiling=REFERENCES, n_boot=n_boot, seed=seed)
    table = formatted(board, ("HR@10", "NDCG@10"), intervals=("HR@10", "NDCG@10"))
    table.insert(0, "kind", [kind[name] + (", chosen on validation" if name == chosen else "")
                             for name in board.index])
    table["HR@10 vs web popularity"] = [f"{hr[name] / hr[popularity] - 1:+.1%}"
                                        for name in board.index]

    def paired(a: str, b: str) -> metrics.ConfidenceInterval:
        return metrics.bootstrap_diff_ci(reports[a]["HR@10"].to_numpy(),
                                         reports[b]["HR@10"].to_numpy(), n_boot=n_boot, seed=seed)

    test_best = max((name for name in transfer if name != popularity), key=hr.get)
    reading = [name for name in READS_EVENTS if name in test_scores]
    best_sequence, weakest_sequence = max(reading, key=hr.get), min(reading, key=hr.get)
    return {"reports": reports, "kind": kind, "table": table, "on_points": on_points, "hr": hr,
            "transfer": transfer, "best_transfer": chosen, "test_best_transfer": test_best,
            "best_sequence": best_sequence, "weakest_sequence": weakest_sequence,
            "transfer_vs_popularity": paired(chosen, popularity),
            "sequence_vs_transfer": paired(best_sequence, chosen)}


# --------------------------------------------------------------------------------------------
# item lists
# --------------------------------------------------------------------------------------------


def item_leaderboard(
    lists: Mapping[str, np.ndarray],
    relevant: Sequence[np.ndarray],
    *,
    ceiling: Sequence[str] = ("oracle → items",),
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Every method's top-N item lists on one leaderboard: one list per user, a mean over users.

    Parameters
    ----------
    lists
        Method → ``(n_users, N)`` recommended item ids, best first, ``N >= 20``.
    relevant
        Per user, the item ids that count as hits (e.g. every item of the test day).
    ceiling
        Lists that are references (from the oracle), never "the best".
    n_boot, seed
        Bootstrap over users.

    Returns
    -------
    (board, per_user)
        :func:`~interest_lib.evaluation.leaderboard.leaderboard` of HR@1, HR@10, HR@20 and
        NDCG@10 (sorted by NDCG@10), and method → per-user frame
        (:func:`~interest_lib.models.recommend.list_report`).
    """
    from interest_lib.models.recommend import list_report

    per_user = {name: list_report(recommended, relevant, ks=(1, 10, 20))
                for name, recommended in lists.items()}
    users = np.arange(len(relevant))
    board = leaderboard(per_user, users, average="users",
                        columns=("HR@1", "HR@10", "HR@20", "NDCG@10"), ceiling=ceiling,
                        n_boot=n_boot, seed=seed)
    return board, per_user


def example_list_user(
    recommended: np.ndarray, report: pd.DataFrame, items: ItemPopularity, history: Any
) -> int:
    """The first user with a hit in the top ten whose top ten mixes seen and unseen items.

    Parameters
    ----------
    recommended
        ``(n_users, N)`` one method's lists.
    report
        Its per-user frame (:func:`item_leaderboard`).
    items
        The catalogue (:class:`~interest_lib.models.recommend.ItemPopularity`).
    history
        ``(n_users, n_items)`` sparse counts of the items each user touched before
        (:func:`~interest_lib.models.recommend.user_item_history`).

    Returns
    -------
    int
        The user's row.
    """
    top10 = recommended[:, :10]
    hits = report["HR@10"].to_numpy() == 1
    seen_before = np.array([np.isin(top10[u], items.item_ids[history[u].indices]).mean()
                            for u in range(len(top10))])
    return int(np.flatnonzero(hits & (seen_before > 0) & (seen_before < 1))[0])


def item_lists(
    setup: Any, category_scores: Mapping[str, np.ndarray], n: int = 20
) -> dict[str, Any]:
    """Top-``n`` item lists of the test day: two item baselines and one list per category score.

    Each test user gets one list at the start of the test day. ``item popularity`` shows every
    user the most popular training items, ``re-viewed items`` the user's own most touched
    items; every category score becomes a list through
    :func:`~interest_lib.models.recommend.recommend_items` (``"<name> → items"``).

    Parameters
    ----------
    setup
        The protocol (:class:`~interest_lib.recipes.protocol.BookSetup`).
    category_scores
        Method → ``(n_users, C)`` category scores of each test user's first point
        (``scores[setup.first_positions("test")[1]]``).
    n
        List length.

    Returns
    -------
    dict
        ``users`` (test user ids), ``items`` (the training catalogue,
        :class:`~interest_lib.models.recommend.ItemPopularity`), ``history`` (items each user
        touched before the test day), ``test_items`` (per user, the items of the test day),
        ``first_item`` (each user's first item of the test day), ``lists`` (method →
        ``(n_users, n)`` item ids).
    """
    from interest_lib.models import recommend

    split, events, category_ids = setup.split, setup.events, setup.category_ids
    users, first = setup.first_positions("test")
    items = recommend.ItemPopularity.fit(split.train, category_ids)  # training days only
    history = recommend.user_item_history(events, items, users, end=split.valid_end)
    test_items = split.test.groupby("user_id")["item_id"].unique().reindex(users).tolist()
    first_item = events["item_id"].to_numpy()[setup.task("test").rows[first]]
    lists = {"item popularity": recommend.recommend_popular(items, users.size, n),
             "re-viewed items": recommend.recommend_reviewed(items, history, n)}
    for name, scores in category_scores.items():
        lists[f"{name} → items"] = recommend.recommend_items(scores, category_ids, items, history,
                                                            n=n)
    return {"users": users, "items": items, "history": history, "test_items": test_items,
            "first_item": first_item, "lists": lists}


def item_score_functions(
    items: ItemPopularity, history: Any, category_scores: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """The scores behind :func:`item_lists`, for any candidate items (sampled negatives).

    Returns
    -------
    dict
        Method → ``score(rows, candidates)``: ``(len(rows), m)`` scores of the item positions
        ``candidates`` for the users ``rows``, as
        :func:`~interest_lib.recipes.mistakes.sampled_item_ranks` takes it.
    """
    from interest_lib.models import recommend

    functions: dict[str, Any] = {
        "item popularity": lambda rows, candidates: items.counts[candidates],
        "re-viewed items": lambda rows, candidates: recommend.reviewed_scores(
            items, history[rows], candidates),
    }
    for name, scores in category_scores.items():
        functions[f"{name} → items"] = (
            lambda rows, candidates, scores=scores: recommend.item_scores(
                scores[rows], items, history[rows], candidates))
    return functions
