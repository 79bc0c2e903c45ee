"""The book's one evaluation split: a global split in time.

Every method in the book is fitted on the first days, tuned on the next day and scored on the
last day. A random split would let a model learn from events that happen after the ones it
predicts (and the simulator's mid-period promotion shift makes that leak visible); a global time
split does not. :class:`TimeSplit` also guards against fitting on anything but the training days.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interest_lib.data.schema import DAY_S, TAOBAO_START, UTC8_OFFSET_S

TRAIN_END: int = TAOBAO_START + 7 * DAY_S
"""2017-12-02 00:00 UTC+8: training covers 2017-11-25 .. 2017-12-01 (Unix s)."""

VALID_END: int = TAOBAO_START + 8 * DAY_S
"""2017-12-03 00:00 UTC+8: validation is 2017-12-02 (Unix s)."""

TEST_END: int = TAOBAO_START + 9 * DAY_S
"""2017-12-04 00:00 UTC+8: test is 2017-12-03 (Unix s)."""


class FutureLeakError(ValueError):
    """A frame used for fitting holds events at or after the end of the training period."""


def _local(timestamp: int, utc_offset_s: int = UTC8_OFFSET_S) -> str:
    """Unix seconds as a time in the zone ``utc_offset_s`` from UTC, labelled with the zone."""
    hours, rest = divmod(abs(utc_offset_s), 3600)
    zone = "UTC" if utc_offset_s == 0 else f"UTC{'+' if utc_offset_s > 0 else '-'}{hours}"
    zone += f":{rest // 60:02d}" if rest else ""
    return pd.Timestamp(timestamp + utc_offset_s, unit="s").strftime(f"%Y-%m-%d %H:%M {zone}")


def _utc8(timestamp: int) -> str:
    return _local(timestamp, UTC8_OFFSET_S)


@dataclass(repr=False)
class TimeSplit:
    """Events split at three cut-offs in time.

    ``train`` holds events with ``timestamp < train_end``, ``valid`` those in
    ``[train_end, valid_end)``, ``test`` those in ``[valid_end, test_end)``. Rows keep their
    order and their index labels, so they can be matched back to per-event truth.

    Attributes
    ----------
    train, valid, test
        The three parts, each a frame with the columns of the input.
    train_end, valid_end, test_end
        The cut-offs, Unix seconds.
    dropped_after_test_end
        Number of input events at or after ``test_end`` (in no part).
    utc_offset_s
        The time zone in which :meth:`sizes` and the ``repr`` show times, as an offset from UTC
        in seconds: UTC+8 for Taobao (the default), 0 for data whose days are UTC days.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    train_end: int
    valid_end: int
    test_end: int
    dropped_after_test_end: int = 0
    utc_offset_s: int = UTC8_OFFSET_S
    _events: pd.DataFrame | None = field(default=None, init=False, compare=False)

    def history(self, until: str = "test") -> pd.DataFrame:
        """Everything observed before a part starts.

        Parameters
        ----------
        until
            ``"test"``: ``train`` and ``valid`` (the history available when predicting the test
            day, e.g. to refit the final model); ``"valid"``: ``train`` only.

        Returns
        -------
        pandas.DataFrame
            The rows before the cut-off, in input order.
        """
        if until == "valid":
            return self.train
        if until != "test":
            raise ValueError(f"until must be 'valid' or 'test', got {until!r}")
        if self._events is None:
            return pd.concat([self.train, self.valid])
        # taken from the input rather than concatenated, to keep the input's row order
        return self._events.loc[self._events["timestamp"].to_numpy() < self.valid_end]

    def check_no_future(self, frame: pd.DataFrame, name: str = "frame") -> None:
        """Raise :class:`FutureLeakError` if ``frame`` holds events at or after ``train_end``.

        Call it on whatever a scaler, vocabulary, popularity count or model is fitted on.

        Parameters
        ----------
        frame
            A frame with a ``timestamp`` column (Unix s).
        name
            What the frame is, for the message.
        """
        assert_fitted_on_train(frame, self.train_end, name=name)

    def sizes(self) -> pd.DataFrame:
        """Rows, users and period of each part, one row per part (times in ``utc_offset_s``)."""
        lines = []
        starts = [None, self.train_end, self.valid_end]
        ends = [self.train_end, self.valid_end, self.test_end]
        for part, start, end in zip(("train", "valid", "test"), starts, ends, strict=True):
            frame = getattr(self, part)
            lines.append(
                {
                    "part": part,
                    "rows": len(frame),
                    "users": frame["user_id"].nunique(),
                    "from": self._local(start if start is not None
                                        else int(frame["timestamp"].min()))
                    if start is not None or len(frame)
                    else "",
                    "until (excl.)": self._local(end),
                }
            )
        return pd.DataFrame(lines).set_index("part")

    def __repr__(self) -> str:
        return (
            f"TimeSplit(train={len(self.train):,} rows < {self._local(self.train_end)}, "
            f"valid={len(self.valid):,}, test={len(self.test):,} < {self._local(self.test_end)})"
        )

    def _local(self, timestamp: int) -> str:
        return _local(timestamp, self.utc_offset_s)

    def _repr_html_(self) -> str:
        return self.sizes().to_html()


def assert_fitted_on_train(frame: pd.DataFrame, train_end: int, name: str = "frame") -> None:
    """Raise :class:`FutureLeakError` if ``frame`` holds events at or after ``train_end``.

    Parameters
    ----------
    frame
        What something is fitted on; needs a ``timestamp`` column (Unix s).
    train_end
        End of the training period (Unix s, exclusive), e.g. ``split.train_end``.
    name
        What the frame is, for the message.
    """
    timestamp = frame["timestamp"].to_numpy()
    late = np.flatnonzero(timestamp >= train_end)
    if len(late):
        first = late[0]
        raise FutureLeakError(
            f"{name} holds {len(late):,} event(s) at or after the end of training "
            f"({_utc8(train_end)}); the first is at position {first}, time {_utc8(int(timestamp[first]))}. "
            "Fit only on split.train."
        )


def split_by_time(
    events: pd.DataFrame,
    train_end: int = TRAIN_END,
    valid_end: int = VALID_END,
    test_end: int = TEST_END,
    *,
    utc_offset_s: int = UTC8_OFFSET_S,
) -> TimeSplit:
    """Split events globally in time: train before ``train_end``, then valid, then test.

    The defaults are the book's Taobao protocol: train on 2017-11-25 .. 12-01, validate on
    12-02, test on 12-03 (days in UTC+8).

    Parameters
    ----------
    events
        An event table with a ``timestamp`` column (Unix s), ``n`` rows; clean it first, since
        every event before ``train_end`` (even one from months earlier) lands in ``train``.
    train_end, valid_end, test_end
        Increasing cut-offs in Unix seconds; each part ends just before its cut-off.
    utc_offset_s
        Time zone of the data's days, as an offset from UTC in seconds, for showing the parts
        (:meth:`TimeSplit.sizes`); UTC+8 by default, as for Taobao. It does not move a cut-off.

    Returns
    -------
    TimeSplit
        The three parts; events at or after ``test_end`` are counted, not kept.
    """
    if not train_end < valid_end <= test_end:
        raise ValueError(
            f"cut-offs must increase: train_end={train_end}, valid_end={valid_end}, "
            f"test_end={test_end}"
        )
    timestamp = events["timestamp"].to_numpy()
    split = TimeSplit(
        train=events.loc[timestamp < train_end],
        valid=events.loc[(timestamp >= train_end) & (timestamp < valid_end)],
        test=events.loc[(timestamp >= valid_end) & (timestamp < test_end)],
        train_end=int(train_end),
        valid_end=int(valid_end),
        test_end=int(test_end),
        dropped_after_test_end=int((timestamp >= test_end).sum()),
        utc_offset_s=int(utc_offset_s),
    )
    split._events = events
    return split
