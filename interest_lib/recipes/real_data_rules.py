"""The rules of the real-data pipeline: cut-offs for a log of any dates, and the row account.

:mod:`interest_lib.recipes.real_data` runs the pipeline; this module holds its rules, which the
appendix "Running on real data" shows and the tests check:

* :func:`protocol`: the cleaning window and the cut-offs the book uses for a data set;
* :func:`day_cutoffs`: the last calendar day of a log is the test day, the day before it the
  validation day, everything earlier is training;
* :func:`short_log_cutoffs`: for a log of a few hours, shares of its time span;
* :func:`choose_cutoffs`: which of these applies to a cleaned log, and why;
* :func:`row_account`: rows read = rows loaded + rows the loader dropped (by reason) = rows after
  cleaning + rows cleaning dropped (by reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interest_lib.data.cleaning import CleaningReport
from interest_lib.data.schema import DAY_S, TAOBAO_END, TAOBAO_START, UTC8_OFFSET_S
from interest_lib.data.split import TEST_END, TRAIN_END, VALID_END

FORMATS: tuple[str, ...] = ("taobao", "retailrocket", "rees46")
"""The file formats :func:`load_events` reads."""

UTC_OFFSETS: dict[str, int] = {"taobao": UTC8_OFFSET_S, "retailrocket": 0, "rees46": 0}
"""Time zone of each data set's days, as an offset from UTC in seconds.

Taobao's days are China Standard Time (UTC+8). RetailRocket and REES46 publish no time zone; the
book counts their days in UTC.
"""


class NothingToEvaluateError(ValueError):
    """A log was read, but leaves nothing to evaluate (no events after cleaning, no test points)."""



def _check_format(data_format: str) -> None:
    if data_format not in FORMATS:
        raise ValueError(f"data_format must be one of {FORMATS}, got {data_format!r}")



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


def short_log_cutoffs(
    timestamps: pd.DataFrame | np.ndarray | Sequence[int],
    *,
    train_share: float = 0.7,
    valid_share: float = 0.15,
) -> tuple[int, int, int]:
    """Cut-offs for a log too short for whole days (a few hours, say).

    The rule: the first ``train_share`` of the log's time span is training, the next
    ``valid_share`` validation, the rest test; the first two cut-offs fall on whole minutes
    after the first event, the test period ends just after the last event.

    Parameters
    ----------
    timestamps
        An event table (its ``timestamp`` column is used) or Unix seconds.
    train_share, valid_share
        Shares of the time span, ``0 < train_share < train_share + valid_share < 1``.

    Returns
    -------
    (train_end, valid_end, test_end)
        Unix seconds.

    Raises
    ------
    NothingToEvaluateError
        If the log is empty or spans less than three minutes.
    """
    if isinstance(timestamps, pd.DataFrame):
        timestamps = timestamps["timestamp"].to_numpy()
    times = np.asarray(timestamps, dtype=np.int64)
    if not 0 < train_share < train_share + valid_share < 1:
        raise ValueError(f"need 0 < train_share < train_share + valid_share < 1, got "
                         f"{train_share}, {valid_share}")  # fmt: skip
    if times.size == 0:
        raise NothingToEvaluateError("no events: cannot place the cut-offs")
    first, last = int(times.min()), int(times.max())
    span = last + 1 - first
    train_end = first + int(span * train_share) // 60 * 60
    valid_end = first + int(span * (train_share + valid_share)) // 60 * 60
    if not first < train_end < valid_end <= last:
        raise NothingToEvaluateError(
            f"the log spans {span:,} seconds: too short to split into training, validation "
            "and test periods of whole minutes"
        )
    return train_end, valid_end, last + 1


@dataclass(frozen=True)
class Cutoffs:
    """The split cut-offs of a log (Unix seconds) and the rule that placed them, in words."""

    train_end: int
    valid_end: int
    test_end: int
    rule: str
    utc_offset_s: int = 0

    def __iter__(self):
        return iter((self.train_end, self.valid_end, self.test_end))

    def __str__(self) -> str:
        def local(t: int) -> str:
            return pd.Timestamp(t + self.utc_offset_s, unit="s").strftime("%Y-%m-%d %H:%M")

        return (f"cut-offs: {self.rule}; train until {local(self.train_end)}, validate until "
                f"{local(self.valid_end)}, test until {local(self.test_end)} (exclusive, "
                f"UTC{self.utc_offset_s / 3600:+g})")  # fmt: skip


def choose_cutoffs(data_format: str, events: pd.DataFrame) -> Cutoffs:
    """The cut-offs of a cleaned log: the book's protocol where it applies, else from the data.

    In order: the fixed Taobao cut-offs (:func:`protocol`) for a Taobao log with events both
    before 12-02 and on 12-03; the day rule (:func:`day_cutoffs`) in the data set's time zone
    for a log of at least three days; :func:`short_log_cutoffs` for a shorter log.

    Parameters
    ----------
    data_format
        ``"taobao"``, ``"retailrocket"`` or ``"rees46"``.
    events
        The cleaned (and sampled) log.

    Returns
    -------
    Cutoffs
        Iterable as ``(train_end, valid_end, test_end)``; ``rule`` says which rule placed them.

    Raises
    ------
    NothingToEvaluateError
        If ``events`` is empty or spans less than three minutes.
    """
    rules = protocol(data_format)
    offset = rules["utc_offset_s"]
    times = events["timestamp"].to_numpy()
    if times.size == 0:
        raise NothingToEvaluateError("no events left after cleaning: nothing to split")
    if rules["cutoffs"] is not None:
        train_end, valid_end, test_end = rules["cutoffs"]
        if (times < train_end).any() and ((times >= valid_end) & (times < test_end)).any():
            return Cutoffs(train_end, valid_end, test_end,
                           "the fixed Taobao days (train to 12-01, validate 12-02, test 12-03)",
                           offset)  # fmt: skip
    try:
        return Cutoffs(*day_cutoffs(times, utc_offset_s=offset),
                       "the day rule (the last day of the log is the test day, the day before "
                       "it validation)", offset)  # fmt: skip
    except ValueError:
        pass
    hours = (int(times.max()) - int(times.min())) / 3600
    return Cutoffs(*short_log_cutoffs(times),
                   f"chosen from the data: the log spans {hours:.1f} hours, less than three "
                   "days, so its first 70 % of time is training, the next 15 % validation and "
                   "the last 15 % test", offset)  # fmt: skip


def cutoff_table(cutoffs: Cutoffs, events: pd.DataFrame) -> pd.DataFrame:
    """The cut-offs used beside those of the day rule, as local times of the data set.

    Returns
    -------
    pandas.DataFrame
        Index ``train_end``, ``valid_end``, ``test_end``; columns ``the rule (day_cutoffs)``
        (``n/a`` for a log shorter than three days) and ``used``.
    """
    def local(t: int) -> str:
        return pd.Timestamp(int(t) + cutoffs.utc_offset_s, unit="s").strftime("%Y-%m-%d %H:%M")

    try:
        by_rule = [local(c) for c in day_cutoffs(events, utc_offset_s=cutoffs.utc_offset_s)]
    except ValueError:
        by_rule = ["n/a"] * 3
    return pd.DataFrame({"the rule (day_cutoffs)": by_rule, "used": [local(c) for c in cutoffs]},
                        index=["train_end", "valid_end", "test_end"])  # fmt: skip


@dataclass(frozen=True)
class RowAccount:
    """Every row from the file to the cleaned log.

    ``rows_read == rows_loaded + sum(loader_dropped.values())`` and
    ``rows_loaded == rows_after_cleaning + sum(cleaning_dropped.values())``.
    """

    rows_read: int
    loader_dropped: dict[str, int]
    rows_loaded: int
    cleaning_dropped: dict[str, int]
    rows_after_cleaning: int

    def table(self) -> pd.DataFrame:
        """One line per step: ``step`` and ``rows`` (dropped rows as negative numbers)."""
        lines = [("rows read from the file", self.rows_read)]
        lines += [(f"  dropped by the loader: {r}", -n) for r, n in self.loader_dropped.items()]
        lines.append(("rows loaded", self.rows_loaded))
        lines += [(f"  dropped by cleaning: {r}", -n) for r, n in self.cleaning_dropped.items()
                  if n]  # fmt: skip
        lines.append(("rows after cleaning", self.rows_after_cleaning))
        return pd.DataFrame(lines, columns=["step", "rows"])

    def __str__(self) -> str:
        table = self.table()
        width = max(len(s) for s in table["step"])
        lines = [f"  {step:<{width}}  {rows:>14,}" for step, rows in table.itertuples(index=False)]
        return "\n".join(["Row account (dropped rows negative):", *lines])


def row_account(raw: pd.DataFrame, report: CleaningReport) -> RowAccount:
    """The row account of a loaded table and the report of its cleaning.

    Parameters
    ----------
    raw
        A table of :func:`load_events` (its ``attrs`` hold ``rows_in_file`` and
        ``loader_dropped``; a table without them counts as read whole).
    report
        ``clean(raw)[1]``.

    Raises
    ------
    ValueError
        If the counts do not add up (a row lost without a reason).
    """
    loader_dropped = {k: int(v) for k, v in raw.attrs.get("loader_dropped", {}).items()}
    rows_read = int(raw.attrs.get("rows_in_file", len(raw)))
    account = RowAccount(rows_read, loader_dropped, len(raw), dict(report.dropped),
                         report.rows_out)  # fmt: skip
    if rows_read != len(raw) + sum(loader_dropped.values()) or report.rows_in != len(raw):
        raise ValueError(f"rows do not add up: {account}")
    return account
