"""The book's pipeline on a real data file: load → clean → split → task → baselines.

The appendix "Running on real data" walks through these steps one by one; this module holds the
pieces it needs that are not specific to one chapter, and :func:`run_pipeline`, which runs the
whole evaluation of the baselines on one file (also from the command line)::

    python -m interest_lib.recipes.real_data UserBehavior.csv --users 20000
    python -m interest_lib.recipes.real_data 2019-Oct.csv --format rees46 --users 20000
    python -m interest_lib.recipes.real_data events.csv --format retailrocket

* :func:`load_events` reads a file of one of the three public formats.
* :func:`day_cutoffs` states the split rule for a log of any dates: the last day is the test day,
  the day before it the validation day, everything earlier is training. On a Taobao log, in
  China Standard Time, it gives the book's Taobao cut-offs.
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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from interest_lib.data.cleaning import CleaningReport, clean
from interest_lib.data.loaders import load_rees46, load_retailrocket, load_taobao
from interest_lib.data.schema import DAY_S, TAOBAO_END, TAOBAO_START, UTC8_OFFSET_S
from interest_lib.data.split import TEST_END, TRAIN_END, VALID_END, TimeSplit, split_by_time

if TYPE_CHECKING:
    from interest_lib.data.tasks import NextCategoryTask

PathLike = str | os.PathLike

FORMATS: tuple[str, ...] = ("taobao", "retailrocket", "rees46")
"""The file formats :func:`load_events` reads."""

UTC_OFFSETS: dict[str, int] = {"taobao": UTC8_OFFSET_S, "retailrocket": 0, "rees46": 0}
"""Time zone of each data set's days, as an offset from UTC in seconds.

Taobao's days are China Standard Time (UTC+8). RetailRocket and REES46 publish no time zone; the
book counts their days in UTC.
"""

Scorer = Callable[["NextCategoryTask"], Mapping[str, np.ndarray]]


# --------------------------------------------------------------------------------------------
# loading and the protocol
# --------------------------------------------------------------------------------------------


def _check_format(data_format: str) -> None:
    if data_format not in FORMATS:
        raise ValueError(f"data_format must be one of {FORMATS}, got {data_format!r}")


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


def day_cutoffs(
    timestamps: pd.DataFrame | np.ndarray | Sequence[int],
    *,
    utc_offset_s: int = 0,
    valid_days: int = 1,
    test_days: int = 1,
) -> tuple[int, int, int]:
    """Cut-offs of the global time split for a log of any dates.

    The rule: the calendar day (in the given time zone) of the latest event and the
    ``test_days - 1`` days before it are the test period; the ``valid_days`` days before that are
    validation; everything earlier is training. Apply it to a *cleaned* log, since one stray
    timestamp (a clock set to 2037) would move every cut-off.

    Parameters
    ----------
    timestamps
        An event table (its ``timestamp`` column is used) or Unix seconds.
    utc_offset_s
        Offset of the data's time zone from UTC in seconds (:data:`UTC_OFFSETS`); days start at
        local midnight.
    valid_days, test_days
        Length of the validation and test periods in days.

    Returns
    -------
    (train_end, valid_end, test_end)
        Unix seconds, ready for :func:`interest_lib.data.split.split_by_time`.

    Raises
    ------
    ValueError
        If the log is empty or leaves no training day.
    """
    if isinstance(timestamps, pd.DataFrame):
        timestamps = timestamps["timestamp"].to_numpy()
    times = np.asarray(timestamps, dtype=np.int64)
    if valid_days < 1 or test_days < 1:
        raise ValueError(f"need at least one validation and one test day, got {valid_days}, {test_days}")
    if times.size == 0:
        raise ValueError("no events: cannot place the cut-offs")
    last_day_start = (int(times.max()) + utc_offset_s) // DAY_S * DAY_S - utc_offset_s
    test_end = last_day_start + DAY_S
    valid_end = test_end - test_days * DAY_S
    train_end = valid_end - valid_days * DAY_S
    if int(times.min()) >= train_end:
        raise ValueError(
            f"the log spans less than {valid_days + test_days + 1} days: no training events "
            f"would be left before {pd.Timestamp(train_end + utc_offset_s, unit='s')}"
        )
    return train_end, valid_end, test_end


def protocol(data_format: str, events: pd.DataFrame | None = None) -> dict:
    """The cleaning window and the split cut-offs the book uses for a data set.

    Taobao has a documented window, 2017-11-25 .. 2017-12-03 (UTC+8), and the book's fixed
    cut-offs (train to 12-01, validate on 12-02, test on 12-03). RetailRocket and REES46 have
    other dates: no window is imposed and the cut-offs follow :func:`day_cutoffs` in UTC, so
    ``events`` (the cleaned log) is required for them.

    Returns
    -------
    dict
        ``window`` (for :func:`interest_lib.data.cleaning.clean`), ``cutoffs``
        (``(train_end, valid_end, test_end)``, ``None`` if ``events`` is needed and missing) and
        ``utc_offset_s``.
    """
    _check_format(data_format)
    if data_format == "taobao":
        return {"window": (TAOBAO_START, TAOBAO_END), "cutoffs": (TRAIN_END, VALID_END, TEST_END),
                "utc_offset_s": UTC8_OFFSET_S}  # fmt: skip
    offset = UTC_OFFSETS[data_format]
    cutoffs = None if events is None else day_cutoffs(events, utc_offset_s=offset)
    return {"window": None, "cutoffs": cutoffs, "utc_offset_s": offset}


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
        to the point average reported.

    Returns
    -------
    pandas.DataFrame
        One row per method (in the scorer's order), columns ``points``, ``users``,
        ``NDCG@k``, ``NDCG@k low``, ``NDCG@k high``, ``HR@k``, ``MRR``. Empty when the task has
        no points.
    """
    from interest_lib.evaluation.metrics import bootstrap_ci, ranking_report

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
    _, owner = np.unique(task.user_id, return_inverse=True)
    counts = np.bincount(owner).astype(np.float64)
    rows = {}
    for name, pieces in parts.items():
        values = pd.concat(pieces, ignore_index=True)
        line = {"points": len(task), "users": task.n_users}
        line.update({c: float(values[c].mean()) for c in (ndcg, hr, "MRR")})
        low = high = float("nan")
        if n_boot:
            sums = np.bincount(owner, weights=values[ndcg].to_numpy(), minlength=counts.size)
            interval = bootstrap_ci((sums, counts), n_boot=n_boot, alpha=alpha, seed=seed,
                                    statistic=lambda s, c: s.sum() / c.sum())  # fmt: skip
            low, high = interval.low, interval.high
        line[f"{ndcg} low"], line[f"{ndcg} high"] = low, high
        rows[name] = line
    table = pd.DataFrame.from_dict(rows, orient="index")[columns]
    table.index.name = "method"
    return table


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
    """

    report: CleaningReport
    split: TimeSplit
    category_ids: np.ndarray
    task: NextCategoryTask
    table: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    users_in_log: int = 0

    def __str__(self) -> str:
        lines = [str(self.report), "", "Time split:", self.split.sizes().to_string(), ""]
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
    (:func:`protocol`); :func:`sample_users` if ``max_users`` is given; the time split of
    :func:`protocol`; the vocabulary of the training days; the test-day
    :func:`~interest_lib.data.tasks.next_category_task` on the whole (sampled) log; every baseline
    through :func:`evaluate`.

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
    """
    from interest_lib.data.tasks import next_category_task

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    raw = load_events(path, data_format)
    seconds["load"] = time.perf_counter() - started

    started = time.perf_counter()
    rules = protocol(data_format)
    events, report = clean(raw, window=rules["window"])
    del raw
    release_memory()
    seconds["clean"] = time.perf_counter() - started

    started = time.perf_counter()
    users_in_log = int(events["user_id"].nunique())
    events = sample_users(events, max_users, seed)
    cutoffs = protocol(data_format, events)["cutoffs"]
    split = split_by_time(events, *cutoffs)
    category_ids = np.unique(split.train["category_id"].to_numpy())
    task = next_category_task(events, category_ids, split.valid_end, split.test_end, changed)
    seconds["split and task"] = time.perf_counter() - started

    started = time.perf_counter()
    table = evaluate_baselines(task, split.train, k=k, max_cells=max_cells, n_boot=n_boot,
                               seed=seed)  # fmt: skip
    seconds["baselines"] = time.perf_counter() - started
    return PipelineResult(report, split, category_ids, task, table, seconds, users_in_log)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m interest_lib.recipes.real_data FILE [--format F] [--users N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m interest_lib.recipes.real_data",
        description="Load, clean and split a public behavior log and evaluate the baselines "
        "on its test day (next-category target, full ranking).",
    )
    parser.add_argument("path", help="UserBehavior.csv, events.csv (RetailRocket) or a REES46 file")
    parser.add_argument("--format", dest="data_format", choices=FORMATS, default="taobao")
    parser.add_argument("--users", type=int, help="evaluate on a random sample of this many users")
    parser.add_argument("--changed", action="store_true", help="next changed category target")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run_pipeline(args.path, args.data_format, max_users=args.users, seed=args.seed,
                          changed=args.changed)  # fmt: skip
    print(result)


if __name__ == "__main__":
    main()
