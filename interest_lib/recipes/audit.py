r"""Chapter 2's recipe: a cleaner audited against known dirt, and what a random split leaks.

Every function takes what the chapter already has — the dirty table of
:func:`~interest_lib.data.noise.add_noise` and its truth (``noise``, ``source_row``), the cleaned
table and :class:`~interest_lib.data.cleaning.CleaningReport` of
:func:`~interest_lib.data.cleaning.clean` — and measures one claim of the chapter:

- :func:`show_rows`, :func:`out_of_window_kinds`, :func:`label_forms` — the dirt, readable;
- :func:`events_per_minute`, :func:`bot_and_busiest_person`, :func:`bot_evidence`,
  :func:`bot_rule_facts` — the evidence behind the bot rule;
- :func:`fill_examples`, :func:`fill_check` — a missing category filled from the item;
- :func:`truth_against_cleaner`, :func:`cleaner_scores` — precision and recall per kind of dirt;
- :func:`forward_fill_check` — what ``ffill()`` does on a log sorted by user;
- :func:`user_day_features`, :func:`scaler_statistics` — a scaler fitted on all the data;
- :func:`taobao_file_with_stray_row` — a small Taobao file with the real file's row from September;
- :func:`drop_categories_from_later_snapshots` — the past-only rule on a loaded RetailRocket log;
- :func:`random_split_parts`, :func:`split_leaks` — a random split against the time split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.preprocessing import StandardScaler

from interest_lib.data.cleaning import CleaningReport
from interest_lib.data.describe import local_time
from interest_lib.data.loaders import write_taobao
from interest_lib.data.noise import NOISE_KINDS
from interest_lib.data.schema import (
    BEHAVIOR_TYPES,
    DAY_S,
    TAOBAO_END,
    TAOBAO_START,
    UTC8_OFFSET_S,
)
from interest_lib.data.simulation import SimulationTruth
from interest_lib.data.split import TimeSplit


def _noise(noise: ArrayLike) -> np.ndarray:
    return np.asarray(noise, dtype=object)


def show_rows(rows: pd.DataFrame, noise: ArrayLike) -> pd.DataFrame:
    """Rows of the dirty table with a readable time (UTC+8) and the truth about their dirt.

    Parameters
    ----------
    rows
        Rows of the dirty table, with its index.
    noise
        ``(n_dirty,)`` the kind of dirt of every dirty row, ``''`` for a clean one.
    """
    rows = rows.copy()
    rows.insert(5, "time (UTC+8)", local_time(rows["timestamp"]))
    rows["noise (truth)"] = _noise(noise)[rows.index]
    return rows


def out_of_window_kinds(dirty: pd.DataFrame, noise: ArrayLike) -> tuple[pd.DataFrame, dict[str, int]]:
    """The out-of-window rows: two examples each of before, after and years off the window.

    Returns
    -------
    (examples, counts)
        Six rows of ``dirty``; ``n_out_before``, ``n_out_after`` (within a year of the window)
        and ``n_out_wild`` (a year or more off).
    """
    outside = dirty[_noise(noise) == "out_of_window"]
    before = outside["timestamp"] < TAOBAO_START
    wild = (outside["timestamp"] < TAOBAO_START - 365 * DAY_S) | (
        outside["timestamp"] >= TAOBAO_END + 365 * DAY_S
    )
    examples = pd.concat(
        [outside[before & ~wild].head(2), outside[~before & ~wild].head(2), outside[wild].head(2)]
    )
    return examples, {"n_out_before": int((before & ~wild).sum()),
                      "n_out_after": int((~before & ~wild).sum()), "n_out_wild": int(wild.sum())}


def events_per_minute(events: pd.DataFrame) -> pd.Series:
    """Events of each user in each clock minute, indexed by ``(user_id, timestamp // 60)``."""
    return events.groupby(["user_id", events["timestamp"] // 60]).size()


def bot_and_busiest_person(per_minute: pd.Series, bot_user_ids: ArrayLike) -> tuple[int, int]:
    """The first bot and the real user with the busiest minute, from :func:`events_per_minute`."""
    max_per_minute = per_minute.groupby(level="user_id").max()
    is_bot_user = max_per_minute.index.isin(bot_user_ids)
    return int(np.asarray(bot_user_ids)[0]), int(max_per_minute[~is_bot_user].idxmax())


def label_forms(dirty: pd.DataFrame, noise: ArrayLike) -> pd.DataFrame:
    """The malformed behaviour labels by their ``repr``, with their rows and whether they say
    which behaviour was meant (stripped and lower-cased, a known label)."""
    bad_labels = dirty.loc[_noise(noise) == "bad_label", "behavior_type"]
    forms = bad_labels.map(repr).value_counts().rename("rows").to_frame()
    forms["recoverable"] = [
        isinstance(v, str) and v.strip().lower() in BEHAVIOR_TYPES
        for v in bad_labels.groupby(bad_labels.map(repr)).first().reindex(forms.index)
    ]
    return forms


def bot_evidence(dirty: pd.DataFrame, report: CleaningReport, bot_user_ids: ArrayLike) -> pd.DataFrame:
    """Per user, on the rows the bot rule sees (after the first four checks): the most events in
    one minute, the minutes with at least the rule's rate, and whether the user is a bot.

    Returns
    -------
    pandas.DataFrame
        Indexed by user id: ``max events in a minute``, ``busy minutes``, ``kind`` (``bot`` or
        ``person``, from the truth).
    """
    seen = np.isin(np.asarray(report.reasons, dtype=object), ["", "bot", "missing_category"])
    minute_counts = events_per_minute(dirty.loc[seen, ["user_id", "timestamp"]])
    per_user = pd.DataFrame(
        {
            "max events in a minute": minute_counts.groupby(level="user_id").max(),
            "busy minutes": (minute_counts >= report.rules["bot_events_per_minute"])
            .groupby(level="user_id")
            .sum(),
        }
    )
    per_user["kind"] = np.where(per_user.index.isin(bot_user_ids), "bot", "person")
    return per_user


def bot_rule_facts(per_user: pd.DataFrame, report: CleaningReport) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The gap between people and bots that the bot rule sits in.

    Parameters
    ----------
    per_user
        :func:`bot_evidence`.
    report
        The cleaning report (its rule and the users it flagged).

    Returns
    -------
    (table, facts)
        Per kind the users and the extremes of both measures; ``person_max_per_minute``,
        ``bot_min_per_minute``, ``bot_min_busy``, ``bots_caught``, ``people_flagged`` and the
        rule's ``rule_per_minute``, ``rule_busy``, ``rule_pv_share``.
    """
    table = per_user.groupby("kind").agg(
        users=("kind", "size"),
        **{
            "max events in a minute, highest": ("max events in a minute", "max"),
            "max events in a minute, lowest": ("max events in a minute", "min"),
            "busy minutes, lowest": ("busy minutes", "min"),
            "busy minutes, highest": ("busy minutes", "max"),
        },
    )
    flagged = np.isin(per_user.index, report.bot_user_ids)
    person, bot = per_user["kind"] == "person", per_user["kind"] == "bot"
    facts = {
        "person_max_per_minute": int(per_user.loc[person, "max events in a minute"].max()),
        "bot_min_per_minute": int(per_user.loc[bot, "max events in a minute"].min()),
        "bot_min_busy": int(per_user.loc[bot, "busy minutes"].min()),
        "bots_caught": int((flagged & bot).sum()),
        "people_flagged": int((flagged & person).sum()),
        "rule_per_minute": report.rules["bot_events_per_minute"],
        "rule_busy": report.rules["bot_busy_minutes"],
        "rule_pv_share": report.rules["bot_min_pv_share"],
    }
    return table, facts


def fill_examples(
    dirty: pd.DataFrame, noise: ArrayLike, cleaned: pd.DataFrame, report: CleaningReport,
    clean_log: pd.DataFrame, source_row: ArrayLike, n: int = 3,
) -> pd.DataFrame:
    """The first ``n`` rows whose category was filled: as dirty, after cleaning, and the truth.

    ``clean_log`` is the simulator's clean table and ``source_row`` maps each dirty row into it.
    """
    filled_rows = np.flatnonzero(report.category_filled)[:n]
    example = show_rows(dirty.iloc[filled_rows], noise)
    example["category after cleaning"] = cleaned["category_id"].to_numpy()[
        np.searchsorted(np.flatnonzero(report.kept), filled_rows)
    ]
    example["true category"] = clean_log["category_id"].to_numpy()[np.asarray(source_row)[filled_rows]]
    return example


def fill_check(
    dirty: pd.DataFrame, cleaned: pd.DataFrame, report: CleaningReport, clean_log: pd.DataFrame,
    source_row: ArrayLike,
) -> dict[str, Any]:
    """Every filled category against the truth, whether any fill used a later row, and what is
    known about the items of the rows dropped for want of a category.

    A *known* row is a kept row whose category was in the log (not filled): the rows the fill
    may copy from.

    Returns
    -------
    dict
        ``n_fills``; ``fill_accuracy``, the share of fills equal to the clean log's category;
        ``fills_from_later``, fills whose item had no known row at or before the filled row's
        time; ``no_earlier_row``, rows dropped as ``missing_category``. Of those:
        ``dropped_later_known``, rows whose item has a known row only *later* than the row (a
        fill from the future would have found it); ``dropped_never_known``, rows whose item has
        no known row at all; ``dropped_ambiguous``, rows whose item had a known row at or
        before their time but with several categories.
    """
    source_row = np.asarray(source_row)
    filled_rows = np.flatnonzero(report.category_filled)
    kept_rows = np.flatnonzero(report.kept)
    filled_in_clean = report.category_filled[kept_rows]
    true_category = clean_log["category_id"].to_numpy()[source_row[kept_rows[filled_in_clean]]]
    fill_accuracy = float((cleaned["category_id"].to_numpy()[filled_in_clean] == true_category).mean())
    known = report.kept & ~report.category_filled
    first_seen = dirty.loc[known].groupby("item_id")["timestamp"].min()
    fill_times = dirty["timestamp"].to_numpy()[filled_rows]
    from_later_only = int((first_seen.reindex(dirty["item_id"].to_numpy()[filled_rows]).to_numpy()
                           > fill_times).sum())
    dropped_rows = np.flatnonzero(np.asarray(report.reasons, dtype=object) == "missing_category")
    first_known = first_seen.reindex(dirty["item_id"].to_numpy()[dropped_rows]).to_numpy()
    dropped_times = dirty["timestamp"].to_numpy()[dropped_rows]
    never_known = np.isnan(first_known)
    later_known = ~never_known & (first_known > dropped_times)
    return {"n_fills": len(filled_rows), "fill_accuracy": fill_accuracy,
            "fills_from_later": from_later_only,
            "no_earlier_row": report.dropped["missing_category"],
            "dropped_later_known": int(later_known.sum()),
            "dropped_never_known": int(never_known.sum()),
            "dropped_ambiguous": int((~never_known & ~later_known).sum())}


def truth_against_cleaner(noise: ArrayLike, report: CleaningReport) -> pd.DataFrame:
    """Cross-table of every row's true dirt (``clean`` for none) against the cleaner's reason
    (``kept`` for none)."""
    truth, reasons = _noise(noise), np.asarray(report.reasons, dtype=object)
    return pd.crosstab(
        pd.Series(np.where(truth == "", "clean", truth), name="truth"),
        pd.Series(np.where(reasons == "", "kept", reasons), name="cleaner"),
    )


def cleaner_scores(
    noise: ArrayLike, report: CleaningReport, label_recoverable: ArrayLike
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Precision and recall of the cleaner per kind of dirt, against the truth of ``add_noise``.

    Precision: the share of the rows dropped *for that reason* that carry that dirt. Recall: the
    share of the rows carrying that dirt that were handled — dropped, or repaired (a filled
    category, a normalised label).

    Returns
    -------
    (scores, facts)
        ``scores`` indexed by kind: ``rows``, ``dropped for this reason``, ``precision``,
        ``recall``. ``facts``: ``clean_dropped`` (clean rows dropped), ``dropped_dirty_share``,
        ``duplicate_reason_bots`` (bot rows dropped as exact duplicates), ``unrecoverable_labels``,
        ``unrecoverable_dropped``, ``missing_category_dropped``.
    """
    truth, reasons = _noise(noise), np.asarray(report.reasons, dtype=object)
    recoverable = np.asarray(label_recoverable)
    handled = ~report.kept | report.category_filled | report.label_normalised
    lines = []
    for kind in NOISE_KINDS:
        has_kind, dropped_for_kind = truth == kind, reasons == kind
        lines.append({
            "kind": kind,
            "rows": int(has_kind.sum()),
            "dropped for this reason": int(dropped_for_kind.sum()),
            "precision": (has_kind & dropped_for_kind).sum() / max(dropped_for_kind.sum(), 1),
            "recall": (has_kind & handled).sum() / max(has_kind.sum(), 1),
        })
    bad_label = truth == "bad_label"
    facts = {
        "clean_dropped": int(((truth == "") & ~report.kept).sum()),
        "dropped_dirty_share": float((truth[~report.kept] != "").mean()),
        "duplicate_reason_bots": int(((truth == "bot") & (reasons == "duplicate")).sum()),
        "unrecoverable_labels": int((bad_label & ~recoverable).sum()),
        "unrecoverable_dropped": int((bad_label & ~recoverable & ~report.kept).sum()),
        "missing_category_dropped": int(((truth == "missing_category") & ~report.kept).sum()),
    }
    return pd.DataFrame(lines).set_index("kind"), facts


def forward_fill_check(
    dirty: pd.DataFrame, noise: ArrayLike, clean_log: pd.DataFrame, source_row: ArrayLike
) -> dict[str, Any]:
    """How often ``ffill()`` gives the right category on the rows whose category was lost.

    Returns
    -------
    dict
        ``missing`` ``(M,)`` positions of those rows in ``dirty``, ``true_missing`` ``(M,)`` their
        true categories, ``n_missing``; ``ffill_right``, the share forward-filled right;
        ``ffill_crosses`` and ``ffill_crosses_n``, the share and number copied from another
        user's row.
    """
    missing = np.flatnonzero(_noise(noise) == "missing_category")
    true_missing = clean_log["category_id"].to_numpy()[np.asarray(source_row)[missing]]
    ffilled = dirty["category_id"].ffill().to_numpy()[missing]
    previous_user = dirty["user_id"].shift().to_numpy()[missing]
    crosses_user = previous_user != dirty["user_id"].to_numpy()[missing]
    return {"missing": missing, "true_missing": true_missing, "n_missing": len(missing),
            "ffill_right": float(np.mean(ffilled == true_missing)),
            "ffill_crosses": float(crosses_user.mean()), "ffill_crosses_n": int(crosses_user.sum())}


def user_day_features(events: pd.DataFrame) -> pd.DataFrame:
    """Events, distinct categories and purchase share per (user, day); ``timestamp`` = day start.

    Days are counted from the start of the Taobao window. Columns: ``user_id``, ``day``,
    ``events``, ``categories``, ``buy_share``, ``timestamp`` (Unix seconds).
    """
    table = events.assign(
        day=(events["timestamp"] - TAOBAO_START) // DAY_S,
        buy=events["behavior_type"] == "buy",
    )
    features = table.groupby(["user_id", "day"]).agg(
        events=("item_id", "size"), categories=("category_id", "nunique"), buy_share=("buy", "mean")
    ).reset_index()
    features["timestamp"] = TAOBAO_START + features["day"] * DAY_S
    return features


def scaler_statistics(
    scaler_all: StandardScaler, scaler_train: StandardScaler, feature_names: list[str]
) -> pd.DataFrame:
    """Means and standard deviations of two fitted scalers side by side, and how far the means
    differ (relative to the one fitted on the training days)."""
    statistics = pd.DataFrame(
        {
            "mean, fitted on all": scaler_all.mean_,
            "mean, fitted on train": scaler_train.mean_,
            "std, fitted on all": scaler_all.scale_,
            "std, fitted on train": scaler_train.scale_,
        },
        index=feature_names,
    )
    statistics["mean differs by"] = statistics["mean, fitted on all"] / statistics[
        "mean, fitted on train"] - 1
    return statistics


STRAY_ROW_TIME = "2017-09-11 10:27:41"
"""Local time (UTC+8) of the row of the real Taobao file that lies months before its window."""


def taobao_file_with_stray_row(events: pd.DataFrame, path: str | Path) -> int:
    """Write a small Taobao UserBehavior file: the first five events of the first user of
    ``events`` (:func:`~interest_lib.data.loaders.write_taobao`), plus one hand-written page view
    of the same item at :data:`STRAY_ROW_TIME`, as in the real file.

    Parameters
    ----------
    events
        An event table in the book's schema.
    path
        The file to write.

    Returns
    -------
    int
        The Unix time of the stray row.
    """
    sample = events[events["user_id"] == events["user_id"].iloc[0]].head(5)
    write_taobao(sample, path)
    september = int(pd.Timestamp(STRAY_ROW_TIME).timestamp()) - UTC8_OFFSET_S  # UTC+8 time
    with Path(path).open("a") as file:
        file.write(f"{sample['user_id'].iloc[0]},{sample['item_id'].iloc[0]},"
                   f"{sample['category_id'].iloc[0]},pv,{september}\n")
    return september


def drop_categories_from_later_snapshots(
    events: pd.DataFrame, properties: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """The past-only rule on a RetailRocket log: drop the events whose category came from a later
    snapshot.

    :func:`~interest_lib.data.loaders.load_retailrocket` gives each event its item's category
    recorded at or before the event's time, but an event older than its item's *first*
    ``categoryid`` snapshot takes that first, later snapshot's value (counted in
    ``events.attrs["category_from_first_snapshot"]``). Under the rule of
    :func:`~interest_lib.data.cleaning.clean` — a category comes only from the past — such an
    event has no known category, and it is dropped here.

    Parameters
    ----------
    events
        The loaded table, ``(n,)`` rows, ``timestamp`` in Unix seconds.
    properties
        The item-properties rows (``timestamp`` in Unix milliseconds, ``itemid``, ``property``,
        ``value``), as read from ``item_properties_part*.csv`` (concatenate the parts).

    Returns
    -------
    (kept, n_dropped)
        The events at or after their item's first ``categoryid`` snapshot (``attrs`` kept), and
        the number dropped. The loaded times are whole seconds, so an event in the very second
        of its item's first snapshot counts as not earlier than it (and is kept).
    """
    snapshots = properties[properties["property"] == "categoryid"]
    first_ms = snapshots.groupby("itemid")["timestamp"].min()
    first_s = first_ms // 1000  # the loaded times are whole seconds, floored
    earlier = (events["timestamp"] < events["item_id"].map(first_s)).to_numpy()
    kept = events.loc[~earlier]
    kept.attrs = dict(events.attrs)
    return kept, int(earlier.sum())


def random_split_parts(n_rows: int, n_train: int, n_valid: int, seed: int = 0) -> np.ndarray:
    """The mistake: ``(n_rows,)`` ``'train'``, ``'valid'`` or ``'test'`` drawn at random, with the
    sizes of the time split."""
    rng = np.random.default_rng(seed)
    random_part = np.empty(n_rows, dtype=object)
    order = rng.permutation(n_rows)
    random_part[order[:n_train]] = "train"
    random_part[order[n_train:n_train + n_valid]] = "valid"
    random_part[order[n_train + n_valid:]] = "test"
    return random_part


def split_leaks(
    cleaned: pd.DataFrame, split: TimeSplit, random_part: ArrayLike, truth: SimulationTruth,
    kept_source: ArrayLike,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """What a random split lets a model see that the time split does not.

    Parameters
    ----------
    cleaned
        The cleaned log, ``(n,)`` rows.
    split
        Its time split.
    random_part
        ``(n,)`` :func:`random_split_parts`.
    truth
        The simulator's truth (sessions, segments, the promotion shift).
    kept_source
        ``(n,)`` row of the clean simulated log behind every cleaned row
        (``noisy.source_row[report.kept]``).

    Returns
    -------
    (table, facts)
        ``table``: four measures, for the time split and the random split. ``facts``:
        ``test_day_in_train`` (share of the last day's events in random training),
        ``session_seen`` and ``future_seen`` (random test events whose session has a training
        event, whose user has a later training event), ``promoted_before``,
        ``promoted_test_day``, ``promoted_random_test`` (share in the promoted segment before the
        shift, on the test day, in the random test part) and ``time_split_session_seen``.
    """
    random_part = np.asarray(random_part, dtype=object)
    kept_source = np.asarray(kept_source)
    session = truth.event_session[kept_source]
    in_promoted = truth.event_segment[kept_source] == truth.promoted_segment
    timestamp = cleaned["timestamp"].to_numpy()
    users = cleaned["user_id"].to_numpy()
    test_day = timestamp >= split.valid_end
    random_test, random_train = random_part == "test", random_part == "train"
    last_train_time = pd.Series(timestamp[random_train]).groupby(users[random_train]).max()
    facts = {
        "test_day_in_train": float((random_part[test_day] == "train").mean()),
        "session_seen": float(np.isin(session[random_test], session[random_train]).mean()),
        "future_seen": float(
            (last_train_time.reindex(users[random_test]).to_numpy() > timestamp[random_test]).mean()
        ),
        "promoted_before": float(in_promoted[timestamp < truth.shift_time].mean()),
        "promoted_test_day": float(in_promoted[test_day].mean()),
        "promoted_random_test": float(in_promoted[random_test].mean()),
        "time_split_session_seen": float(
            np.isin(session[test_day], session[timestamp < split.valid_end]).mean()),
    }
    table = pd.DataFrame(
        {
            "time split": [0.0, facts["time_split_session_seen"], 0.0, facts["promoted_test_day"]],
            "random split": [facts["test_day_in_train"], facts["session_seen"],
                             facts["future_seen"], facts["promoted_random_test"]],
        },
        index=[
            "share of the test day's events that are in training",
            "test events whose session has events in training",
            "test events whose user has a later training event",
            "test events in the promoted segment",
        ],
    )
    return table, facts
