"""The book's pipeline on a real data file: load → clean → split → task → baselines.

The appendix "Running on real data" walks through these steps one by one; this module holds the
pieces it needs that are not specific to one chapter, and :func:`run_pipeline`, which runs the
whole evaluation of the baselines on one file (also from the command line)::

    python -m interest_lib.recipes.real_data UserBehavior.csv --users 20000
    python -m interest_lib.recipes.real_data 2019-Oct.csv --format rees46 --users 20000
    python -m interest_lib.recipes.real_data events.csv --format retailrocket

The rules (cut-offs, row account) live in :mod:`interest_lib.recipes.real_data_rules` and are
reachable from here too.

* :func:`load_events` reads a file of one of the three public formats.
* :func:`day_cutoffs` states the split rule for a log of any dates: the last day is the test day,
  the day before it the validation day, everything earlier is training. On a Taobao log, in
  China Standard Time, it gives the book's Taobao cut-offs. :func:`choose_cutoffs` picks the
  cut-offs of a cleaned log (fixed Taobao days, the day rule, or for a log of a few hours
  :func:`short_log_cutoffs`) and says which rule it used.
* :func:`row_account` follows every row from the file to the cleaned log: rows read = rows
  loaded + rows the loader dropped (by reason) = rows after cleaning + rows cleaning dropped
  (by reason).
* :func:`release_memory` hands the memory of a deleted table back to the system.
* :func:`sample_users` keeps every event of a random sample of users, so a very large log can be
  evaluated in bounded memory (per-user histories stay complete).
* :func:`evaluate` scores a task block by block: a score matrix has one column per category, and
  with the 9,439 categories of the Taobao log one dense row costs 75 KB, so the full test day does
  not fit in memory at once. Metrics come with a bootstrap confidence interval over users.
"""

from __future__ import annotations

import argparse
import gc
import glob
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from interest_lib.data.cleaning import CleaningReport, clean
from interest_lib.data.loaders import (
    DataFormatError,
    load_rees46,
    load_retailrocket,
    load_taobao,
)
from interest_lib.data.split import TimeSplit, split_by_time
from interest_lib.recipes.real_data_rules import (
    FORMATS,
    UTC_OFFSETS,
    Cutoffs,
    NothingToEvaluateError,
    RowAccount,
    _check_format,
    choose_cutoffs,
    cutoff_table,
    day_cutoffs,
    protocol,
    row_account,
    short_log_cutoffs,
)

if TYPE_CHECKING:
    from interest_lib.data.tasks import NextCategoryTask

__all__ = [
    "FORMATS",
    "UTC_OFFSETS",
    "Cutoffs",
    "NothingToEvaluateError",
    "PipelineResult",
    "RowAccount",
    "choose_cutoffs",
    "cutoff_table",
    "day_cutoffs",
    "evaluate",
    "evaluate_baselines",
    "load_events",
    "main",
    "protocol",
    "release_memory",
    "retailrocket_property_files",
    "row_account",
    "run_pipeline",
    "sample_users",
    "PLAIN",
    "SEQUENCE_MODELS",
    "sequence_scorer",
    "short_log_cutoffs",
    "train_sequence_models",
]

PathLike = str | os.PathLike

Scorer = Callable[["NextCategoryTask"], Mapping[str, np.ndarray]]


# --------------------------------------------------------------------------------------------
# loading and the protocol
# --------------------------------------------------------------------------------------------


def retailrocket_property_files(events_path: PathLike) -> list[str]:
    """The ``item_properties_part*.csv`` files next to a RetailRocket ``events.csv``.

    Raises
    ------
    FileNotFoundError
        If the folder holds none.
    """
    folder = os.path.dirname(os.path.abspath(events_path))
    found = sorted(glob.glob(os.path.join(folder, "item_properties_part*.csv*")))
    if not found:
        raise FileNotFoundError(
            f"no item_properties_part*.csv next to {os.fspath(events_path)}; RetailRocket "
            "categories come from item_properties_part1.csv and item_properties_part2.csv"
        )
    return found


def load_events(
    path: PathLike,
    data_format: str = "taobao",
    *,
    properties: Sequence[PathLike] | None = None,
    nrows: int | None = None,
) -> pd.DataFrame:
    """Load a public behavior log onto the canonical event table.

    Parameters
    ----------
    path
        ``UserBehavior.csv`` (Taobao), ``events.csv`` (RetailRocket) or a monthly file such as
        ``2019-Oct.csv`` (REES46).
    data_format
        ``"taobao"``, ``"retailrocket"`` or ``"rees46"``: which loader of
        :mod:`interest_lib.data.loaders` reads the file.
    properties
        RetailRocket only: the item-properties files; by default every
        ``item_properties_part*.csv`` in the folder of ``path``.
    nrows
        Read only the first lines (Taobao and REES46).

    Returns
    -------
    pandas.DataFrame
        The canonical event table, not yet cleaned.

    Notes
    -----
    After parsing, the memory of pyarrow's parse buffers is handed back to the system
    (:func:`release_memory`): on the full Taobao file that is about as much again as the table.
    """
    _check_format(data_format)
    if data_format == "taobao":
        events = load_taobao(path, nrows=nrows)
    elif data_format == "rees46":
        events = load_rees46(path, nrows=nrows)
    else:
        if nrows is not None:
            raise ValueError("nrows is not supported for RetailRocket (categories need every event)")
        if properties is None:
            properties = retailrocket_property_files(path)
        events = load_retailrocket(path, list(properties))
    release_memory()
    return events


def release_memory() -> None:
    """Hand memory freed by deleted tables back to the operating system.

    The loaders parse with pyarrow, whose memory pool keeps the pages of a dropped table for
    reuse; after ``del raw`` on a large log, this returns them (a few GiB on the full Taobao
    file), so the next steps start from a lower footprint.
    """
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()


def sample_users(events: pd.DataFrame, n_users: int | None, seed: int = 0) -> pd.DataFrame:
    """Every event of ``n_users`` users drawn at random (without replacement).

    Parameters
    ----------
    events
        Canonical event table.
    n_users
        How many users to keep; ``None`` (or at least the number of users) keeps everyone and
        returns ``events`` itself.
    seed
        Seed of the draw.

    Returns
    -------
    pandas.DataFrame
        The rows of the drawn users in input order, with a fresh index.
    """
    user = events["user_id"].to_numpy()
    users = np.unique(user)
    if n_users is None or n_users >= users.size:
        return events
    if n_users < 1:
        raise ValueError(f"n_users must be positive, got {n_users}")
    chosen = np.random.default_rng(seed).choice(users, size=n_users, replace=False)
    return events.loc[np.isin(user, chosen)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# evaluation in blocks
# --------------------------------------------------------------------------------------------


def _block_size(n_categories: int, max_cells: int) -> int:
    return max(1, int(max_cells) // max(1, int(n_categories)))


def evaluate(
    task: NextCategoryTask,
    scorer: Scorer,
    *,
    k: int = 10,
    max_cells: int = 1 << 24,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """NDCG@k, HR@k and MRR of one or more methods on a task, computed block by block.

    The points are split into consecutive blocks of about ``max_cells / C`` points;
    ``scorer(block)`` returns ``{method: (len(block), C) scores}`` for a block (a
    :meth:`~interest_lib.data.tasks.NextCategoryTask.subset` of the task, with the same events
    and vocabulary), and only per-point metrics are kept. The result equals
    :func:`interest_lib.evaluation.metrics.ranking_report` on the whole task.

    Parameters
    ----------
    task
        The prediction points.
    scorer
        Block → scores of each method, e.g.
        ``lambda block: baseline_scores(block, split.train)``.
    k
        Cut-off of NDCG and HR.
    max_cells
        Largest score matrix (points × categories) built at once; 2**24 cells are 128 MiB per
        float64 matrix.
    n_boot, alpha, seed
        Bootstrap over users (``n_boot=0``: no interval). Users are resampled with all their
        points and the statistic is the mean over the resampled points, so the interval belongs
        to the point average reported (:func:`interest_lib.evaluation.leaderboard.leaderboard`
        with ``average="points"``).

    Returns
    -------
    pandas.DataFrame
        One row per method (in the scorer's order), columns ``points``, ``users``,
        ``NDCG@k``, ``NDCG@k low``, ``NDCG@k high``, ``HR@k``, ``MRR``. Empty when the task has
        no points.
    """
    from interest_lib.evaluation.leaderboard import leaderboard
    from interest_lib.evaluation.metrics import ranking_report

    ndcg, hr = f"NDCG@{k}", f"HR@{k}"
    columns = ["points", "users", ndcg, f"{ndcg} low", f"{ndcg} high", hr, "MRR"]
    if len(task) == 0:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="method"))
    block = _block_size(task.n_categories, max_cells)
    parts: dict[str, list[pd.DataFrame]] = {}
    for lo in range(0, len(task), block):
        sub = task.subset(np.arange(lo, min(lo + block, len(task))))
        for name, scores in scorer(sub).items():
            values = ranking_report(scores, sub.target, ks=(k,), per_user=True)
            parts.setdefault(name, []).append(values[[ndcg, hr, "MRR"]])
            del values
    reports = {name: pd.concat(pieces, ignore_index=True) for name, pieces in parts.items()}
    table = leaderboard(reports, task.user_id, average="points", metric=ndcg,
                        columns=(ndcg, hr, "MRR"), ceiling=(), sort=False, n_boot=n_boot,
                        alpha=alpha, seed=seed)  # fmt: skip
    table.insert(0, "users", task.n_users)
    table.insert(0, "points", len(task))
    return table[columns]


PLAIN = "plain"
"""The value of :data:`SEQUENCE_MODELS` that stands for chapter 6's plain model."""

SEQUENCE_MODELS: dict[str, str] = {
    "chapter 6's plain model": PLAIN,
    "chapter 6's LSTM": "+ taste: the full model",
}
"""The models of chapter 6 the appendix trains on a real log: name in the appendix → :data:`PLAIN`
(the plain model, :func:`interest_lib.models.recurrent.fit_sequence_model`) or a variant of
:data:`interest_lib.recipes.trajectories.ABLATION` (here the full structured model)."""


def train_sequence_models(
    events: pd.DataFrame,
    category_ids: np.ndarray,
    train_task: NextCategoryTask,
    valid_task: NextCategoryTask,
    *,
    models: Mapping[str, str] = SEQUENCE_MODELS,
    cell: str = "lstm",
    seed: int = 0,
    device: object = None,
    **hyper: float,
) -> dict[str, tuple]:
    """Chapter 6's models trained on a log's training points, each with chapter 6's training.

    The plain model is :func:`interest_lib.models.recurrent.fit_sequence_model` with
    :data:`~interest_lib.models.recurrent.PLAIN_DEFAULTS`; every structured one is
    :func:`interest_lib.models.trajectory.fit_trajectory_model` with the parts of its
    :data:`~interest_lib.recipes.trajectories.ABLATION` variant. All get the same seed; with
    validation points, the epoch with the best validation NDCG@10 is kept. On a CPU training runs
    on one thread, as in the chapter.

    Parameters
    ----------
    events
        The cleaned log (histories before the points are read as input).
    category_ids
        ``(C,)`` vocabulary fitted on the training days.
    train_task, valid_task
        Points of the training and validation periods.
    models
        Name → :data:`PLAIN` or a variant of :data:`~interest_lib.recipes.trajectories.ABLATION`.
    cell
        The structured models' cell (the plain model's is in its defaults).
    seed, device
        As for :func:`~interest_lib.models.trajectory.fit_trajectory_model`.
    **hyper
        Overrides, each given to every model whose defaults have it
        (:data:`interest_lib.models.recurrent.PLAIN_DEFAULTS`,
        :data:`interest_lib.models.trajectory.TRAJECTORY_DEFAULTS`), e.g. ``epochs``.

    Returns
    -------
    dict
        Name → ``(model, history)``.

    Raises
    ------
    NothingToEvaluateError
        If the training period has no prediction points.
    TypeError
        For a hyper-parameter no model has.
    """
    from interest_lib.models import recurrent, training, trajectory
    from interest_lib.recipes.trajectories import ABLATION

    known = {**recurrent.PLAIN_DEFAULTS, **trajectory.TRAJECTORY_DEFAULTS}
    recurrent.with_defaults(hyper, known)  # a name no model has is refused
    if len(train_task) == 0:
        raise NothingToEvaluateError("the training period has no prediction points: "
                                     "too little data to train a model")
    target = training.best_device(device)
    trained = {}
    with training.one_cpu_thread(target):
        for name, variant in models.items():
            if variant == PLAIN:
                own = {k: v for k, v in hyper.items() if k in recurrent.PLAIN_DEFAULTS}
                trained[name] = recurrent.fit_sequence_model(
                    events, category_ids, train_task, valid_task, seed=seed, device=target, **own)
            else:
                own = {k: v for k, v in hyper.items() if k in trajectory.TRAJECTORY_DEFAULTS}
                trained[name] = trajectory.fit_trajectory_model(
                    events, category_ids, train_task, valid_task, cell=cell,
                    parts=ABLATION[variant], seed=seed, device=target, **own)
    return trained


def sequence_scorer(
    trained: Mapping[str, tuple], events: pd.DataFrame, category_ids: np.ndarray, *,
    context: int | None, device: object = None,
) -> Scorer:
    """A :data:`Scorer` for :func:`evaluate` from :func:`train_sequence_models`' models.

    Each block of points is scored by every model with
    :func:`~interest_lib.models.trajectory.trajectory_scores` (``context``: at least that many
    events of each user before their first point, as in training; ``None``: whole histories).
    """
    from interest_lib.models import training, trajectory

    target = training.best_device(device)

    def scores(block: NextCategoryTask) -> dict[str, np.ndarray]:
        with training.one_cpu_thread(target):
            return {name: trajectory.trajectory_scores(model, events, category_ids, block,
                                                       context=context, device=target)
                    for name, (model, _) in trained.items()}

    return scores


def evaluate_baselines(
    task: NextCategoryTask,
    train: pd.DataFrame,
    *,
    k: int = 10,
    max_cells: int = 1 << 24,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`evaluate` of every baseline of :func:`interest_lib.models.baselines.baseline_scores`.

    Parameters
    ----------
    task
        The prediction points, e.g. the test day.
    train
        Training events (popularity, Markov transitions).

    Returns
    -------
    pandas.DataFrame
        As :func:`evaluate`, one row per baseline.
    """
    from interest_lib.models.baselines import baseline_scores

    return evaluate(task, lambda block: baseline_scores(block, train), k=k,
                    max_cells=max_cells, n_boot=n_boot, seed=seed)  # fmt: skip


# --------------------------------------------------------------------------------------------
# the whole pipeline
# --------------------------------------------------------------------------------------------


@dataclass(repr=False)
class PipelineResult:
    """What :func:`run_pipeline` found.

    Attributes
    ----------
    report
        The cleaning report (every input row accounted for).
    split
        The time split of the (sampled) cleaned log.
    category_ids
        ``(C,)`` the vocabulary of the training days.
    task
        The test-day prediction points.
    table
        The baselines' metrics (:func:`evaluate`).
    seconds
        Wall-clock seconds per step.
    users_in_log
        Users in the cleaned log before sampling.
    account
        The row account from the file to the cleaned log (:func:`row_account`).
    cutoffs
        The cut-offs of the split and the rule that placed them (:func:`choose_cutoffs`).
    """

    report: CleaningReport
    split: TimeSplit
    category_ids: np.ndarray
    task: NextCategoryTask
    table: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    users_in_log: int = 0
    account: RowAccount | None = None
    cutoffs: Cutoffs | None = None

    def __str__(self) -> str:
        lines = [str(self.account), ""] if self.account is not None else []
        lines += [str(self.report), ""]
        if self.cutoffs is not None:
            lines.append(str(self.cutoffs))
        lines += ["Time split:", self.split.sizes().to_string(), ""]
        lines.append(f"{len(self.category_ids):,} categories in the training days; {self.task!r}")
        lines += ["", self.table.to_string(float_format=lambda x: f"{x:.4f}"), ""]
        lines.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()))
        return "\n".join(lines)


def run_pipeline(
    path: PathLike,
    data_format: str = "taobao",
    *,
    max_users: int | None = None,
    seed: int = 0,
    k: int = 10,
    changed: bool = False,
    max_cells: int = 1 << 24,
    n_boot: int = 1000,
) -> PipelineResult:
    """Load, clean, split and evaluate every baseline on the test day of one file.

    Steps: :func:`load_events`; :func:`interest_lib.data.cleaning.clean` with the data set's window
    (:func:`protocol`); :func:`row_account`; :func:`sample_users` if ``max_users`` is given; the
    time split at the cut-offs of :func:`choose_cutoffs`; the vocabulary of the training days;
    the test-period :func:`~interest_lib.data.tasks.next_category_task` on the whole (sampled)
    log; every baseline through :func:`evaluate`.

    Parameters
    ----------
    path, data_format
        The file and its format (see :func:`load_events`).
    max_users
        Evaluate on a random sample of this many users (``None``: everyone).
    seed
        Seed of the sample and of the bootstrap.
    k
        Cut-off of NDCG and HR.
    changed
        Score the next *changed* category instead of the next category.
    max_cells, n_boot
        See :func:`evaluate`.

    Raises
    ------
    DataFormatError, FileNotFoundError
        The file cannot be read (see :mod:`interest_lib.data.loaders`).
    NothingToEvaluateError
        Cleaning leaves no events, or the test period no prediction points.
    """
    from interest_lib.data.tasks import next_category_task

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    raw = load_events(path, data_format)
    seconds["load"] = time.perf_counter() - started

    started = time.perf_counter()
    rules = protocol(data_format)
    events, report = clean(raw, window=rules["window"])
    account = row_account(raw, report)
    del raw
    release_memory()
    seconds["clean"] = time.perf_counter() - started
    if len(events) == 0:
        dropped = ", ".join(f"{r} {n:,}" for r, n in report.dropped.items() if n)
        raise NothingToEvaluateError(f"{os.fspath(path)}: cleaning dropped all "
                                     f"{report.rows_in:,} rows ({dropped}); nothing to evaluate")  # fmt: skip

    started = time.perf_counter()
    users_in_log = int(events["user_id"].nunique())
    events = sample_users(events, max_users, seed)
    cutoffs = choose_cutoffs(data_format, events)
    split = split_by_time(events, *cutoffs, utc_offset_s=cutoffs.utc_offset_s)
    category_ids = np.unique(split.train["category_id"].to_numpy())
    task = next_category_task(events, category_ids, split.valid_end, split.test_end, changed)
    seconds["split and task"] = time.perf_counter() - started
    if len(task) == 0:
        raise NothingToEvaluateError(f"{os.fspath(path)}: the test period has no prediction "
                                     f"points ({len(split.test):,} test events, "
                                     f"{task.n_unknown_target:,} in categories unknown to the "
                                     f"training period); {cutoffs}")  # fmt: skip

    started = time.perf_counter()
    table = evaluate_baselines(task, split.train, k=k, max_cells=max_cells, n_boot=n_boot,
                               seed=seed)  # fmt: skip
    seconds["baselines"] = time.perf_counter() - started
    return PipelineResult(report, split, category_ids, task, table, seconds, users_in_log,
                          account, cutoffs)  # fmt: skip


EXIT_UNREADABLE = 2
"""Exit status of the command line when the file cannot be read."""

EXIT_NOTHING_TO_EVALUATE = 3
"""Exit status of the command line when the file was read but leaves nothing to evaluate."""


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m interest_lib.recipes.real_data FILE [--format F] [--users N]``.

    Prints the row account, the cleaning report, the cut-offs and the leaderboard. A file that
    cannot be read gives one line naming the file and the problem on stderr and the status
    :data:`EXIT_UNREADABLE` (2); a file that leaves nothing to evaluate gives one line and
    :data:`EXIT_NOTHING_TO_EVALUATE` (3). Warnings are printed one line each.

    Returns
    -------
    int
        The exit status: 0 when a leaderboard was printed.
    """
    parser = argparse.ArgumentParser(
        prog="python -m interest_lib.recipes.real_data",
        description="Load, clean and split a public behavior log and evaluate the baselines "
        "on its test period (next-category target, full ranking).",
    )
    parser.add_argument("path", help="UserBehavior.csv, events.csv (RetailRocket) or a REES46 file")
    parser.add_argument("--format", dest="data_format", choices=FORMATS, default="taobao")
    parser.add_argument("--users", type=int, help="evaluate on a random sample of this many users")
    parser.add_argument("--changed", action="store_true", help="next changed category target")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = run_pipeline(args.path, args.data_format, max_users=args.users,
                                  seed=args.seed, changed=args.changed)  # fmt: skip
        except (DataFormatError, OSError) as error:
            status, message = EXIT_UNREADABLE, str(error)
        except NothingToEvaluateError as error:
            status, message = EXIT_NOTHING_TO_EVALUATE, str(error)
        else:
            status, message = 0, ""
    for warning in caught:
        print(f"warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    if status:
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        return status
    print(result)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without the interpreter's teardown: a pyarrow reader stopped by a bad file may still
    # have a task on pyarrow's thread pool, and destroying that pool at exit while the task runs
    # aborts the process ("terminate called without an active exception", status 134).
    os._exit(status)
