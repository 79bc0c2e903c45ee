r"""Chapter 6's recipe: the LSTM / GRU trajectory models, trained once and shared with chapter 7,
and the analyses of the chapter.

Models: :func:`plain_model`; :func:`sequence_model`, :func:`sequence_model_result`,
:func:`sequence_model_scores`.
Every method on one task: :func:`method_reports`, :func:`boards`. Trajectories:
:func:`point_positions`, :func:`segment_mass`, :func:`trajectory_example`,
:func:`migration_curves`, :func:`figure_days`, :func:`shift_baselines`, :func:`per_day_ndcg`.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interest_lib.data.schema import DAY_S
from interest_lib.evaluation import metrics
from interest_lib.evaluation.leaderboard import leaderboard, paired_difference
from interest_lib.models import baselines
from interest_lib.recipes.cache import cached, code_version
from interest_lib.recipes.protocol import (
    _PROTOCOL_MODULES,
    BookSetup,
    baseline_reports,
    per_changed,
    point_report,
)

if TYPE_CHECKING:
    from interest_lib.data.simulation import SimulationTruth
    from interest_lib.data.tasks import NextCategoryTask

TARGETS: tuple[str, ...] = ("next category", "next changed category")
"""The two targets of chapters 6 and 7, the keys of :func:`boards`."""

# --------------------------------------------------------------------------------------------
# the learned models of chapters 3 and 6
# --------------------------------------------------------------------------------------------


def train_sequence_model(
    setup: BookSetup,
    cell: str = "lstm",
    *,
    parts: Collection[str] | None = None,
    seed: int = 0,
    device: Any = None,
    progress: bool = False,
    **hyper: Any,
) -> tuple[Any, Any, np.ndarray]:
    """Train the LSTM or GRU of chapter 6 and score the test day's next-category points.

    The model is :class:`~interest_lib.models.trajectory.TrajectoryModel`, trained by
    :func:`~interest_lib.models.trajectory.fit_trajectory_model` on every prediction point of the training
    days and early-stopped on validation NDCG@10; each test point is scored with at least the
    ``window`` events before the user's first test point (what the model was trained on; older
    events still enter through the history counts) by
    :func:`~interest_lib.models.trajectory.trajectory_scores`. On the validation day this gives
    the same NDCG@10 as each user's whole history, in two thirds of the time
    (``benchmarks/trajectory_budget.py``). On a CPU, training and scoring run
    on one thread, so the result does not depend on the machine's number of cores.

    Parameters
    ----------
    setup
        The protocol (:func:`book_setup`).
    cell
        ``"lstm"`` or ``"gru"``.
    parts
        The model's parts (:data:`interest_lib.models.trajectory.PARTS`; default: all), for the
        ablation.
    seed
        Seeds the initial weights and the batches.
    device
        Where to train (``None``: :func:`interest_lib.models.training.best_device`).
    progress
        Show a progress bar.
    **hyper
        Overrides of :data:`interest_lib.models.trajectory.TRAJECTORY_DEFAULTS`.

    Returns
    -------
    (model, history, test_scores)
        The trained model (eval mode), its :class:`~interest_lib.models.training.TrainingHistory`, and
        ``float32`` probabilities of shape ``(len(setup.task("test")), C)``.
    """

    from interest_lib.models import training, trajectory

    target = training.best_device(device)
    context = int({**trajectory.TRAJECTORY_DEFAULTS, **hyper}["window"])
    with training.one_cpu_thread(target):
        model, history = trajectory.fit_trajectory_model(
            setup.events, setup.category_ids, setup.task("train"), setup.task("valid"),
            cell=cell, parts=parts, seed=seed, device=target, progress=progress, **hyper,
        )
        scores = trajectory.trajectory_scores(model, setup.events, setup.category_ids,
                                              setup.task("test"), context=context, device=target)
    return model, history, scores


def sequence_model_scores(
    setup: BookSetup, cell: str = "lstm", *, parts: Collection[str] | None = None, seed: int = 0,
    device: Any = None, **hyper: Any
) -> np.ndarray:
    """Test-day scores of :func:`train_sequence_model`, trained once and cached.

    Returns
    -------
    numpy.ndarray
        ``float32 (len(setup.task("test")), C)`` next-category probabilities.
    """
    return sequence_model_result(setup, cell, parts=parts, seed=seed, device=device,
                                 **hyper)["scores"]


_WEIGHT = "weight|"  # prefix of the stored model weights in a cached sequence-model result


def sequence_model_result(
    setup: BookSetup, cell: str = "lstm", *, parts: Collection[str] | None = None, seed: int = 0,
    device: Any = None, **hyper: Any
) -> dict[str, np.ndarray]:
    """:func:`train_sequence_model`'s results, trained once and cached.

    Returns
    -------
    dict
        ``scores`` (test-day probabilities, ``float32 (len(setup.task("test")), C)``),
        ``train_loss`` and ``valid_metric`` (one value per epoch), ``seconds`` (per epoch),
        ``best_epoch``, ``stopped_early``, and the trained weights under ``"weight|<parameter name>"``
        (:func:`sequence_model` rebuilds the model from them).
    """
    from interest_lib.models import recurrent, training, trajectory

    target = training.best_device(device)
    h = recurrent.with_defaults(hyper, trajectory.TRAJECTORY_DEFAULTS)
    chosen = trajectory.check_parts(trajectory.PARTS if parts is None else parts)
    params = {"data": setup.key, "cell": cell, "seed": seed, "device": target.type,
              "parts": "+".join(p for p in trajectory.PARTS if p in chosen), **h}

    def compute() -> dict[str, np.ndarray]:
        return _stored(*train_sequence_model(setup, cell, parts=chosen, seed=seed,
                                             device=target, **h))

    code = code_version(_PROTOCOL_MODULES + ("recurrent", "trajectory", "training"),
                        (train_sequence_model, sequence_model_result, _stored))
    return cached("sequence_model", params, compute, code=code)


def _stored(model: Any, history: Any, scores: np.ndarray) -> dict[str, np.ndarray]:
    """A trained model's test scores, training history and weights as arrays, for the cache."""
    weights = {f"{_WEIGHT}{name}": value.detach().cpu().numpy()
               for name, value in model.state_dict().items()}
    return {"scores": scores, "valid_metric": np.asarray(history.valid_metric),
            "train_loss": np.asarray(history.train_loss), "seconds": np.asarray(history.seconds),
            "best_epoch": np.asarray(history.best_epoch or 0),
            "stopped_early": np.asarray(history.stopped_early), **weights}


def _restored(
    model: Any, stored: Mapping[str, np.ndarray], target: Any
) -> tuple[Any, Any, np.ndarray]:
    """``(model, history, test scores)`` from :func:`_stored`'s arrays; ``model`` gets the weights."""
    import torch

    from interest_lib.models import training

    model.load_state_dict({name[len(_WEIGHT):]: torch.from_numpy(np.array(value))
                           for name, value in stored.items() if name.startswith(_WEIGHT)})
    model.to(target).eval()
    best = int(stored["best_epoch"])
    history = training.TrainingHistory(
        train_loss=[float(v) for v in stored["train_loss"]],
        valid_metric=[float(v) for v in stored["valid_metric"]],
        seconds=[float(v) for v in stored["seconds"]],
        best_epoch=best or None,
        stopped_early=bool(stored["stopped_early"]),
        device=target.type,
    )
    return model, history, stored["scores"]


def sequence_model(
    setup: BookSetup, cell: str = "lstm", *, parts: Collection[str] | None = None, seed: int = 0,
    device: Any = None, **hyper: Any
) -> tuple[Any, Any, np.ndarray]:
    """Chapter 6's trained model, its training history and its test-day scores, from the cache.

    Trains (:func:`train_sequence_model`) only when no result for these arguments is stored;
    otherwise the model is rebuilt from the stored weights, so chapter 6 and chapter 7 see the
    very same model.

    Returns
    -------
    (model, history, test_scores)
        A :class:`~interest_lib.models.trajectory.TrajectoryModel` in eval mode on ``device``, a
        :class:`~interest_lib.models.training.TrainingHistory` and ``float32 (len(setup.task("test")), C)``
        probabilities.
    """
    from interest_lib.models import training, trajectory

    target = training.best_device(device)
    stored = sequence_model_result(setup, cell, parts=parts, seed=seed, device=target, **hyper)
    h = {**trajectory.TRAJECTORY_DEFAULTS, **hyper}
    model = trajectory.TrajectoryModel(setup.n_categories, n_components=int(h["n_components"]),
                                       embedding_dim=int(h["embedding_dim"]),
                                       hidden=int(h["hidden"]), cell=cell, parts=parts)
    return _restored(model, stored, target)


def plain_model(
    setup: BookSetup, *, seed: int = 0, device: Any = None, progress: bool = False, **hyper: Any
) -> tuple[Any, Any, np.ndarray]:
    """Chapter 6's plain recurrent model, its training history and its test-day scores, cached.

    :class:`~interest_lib.models.recurrent.SequenceModel` trained by
    :func:`~interest_lib.models.recurrent.fit_sequence_model` on the training days and
    early-stopped on validation NDCG@10; each test point is scored with at least the ``window``
    events before the user's first test point, as the model was trained. On a CPU training and
    scoring run on one thread. Trained once per set of arguments, then rebuilt from the stored
    weights.

    Parameters
    ----------
    setup
        The protocol (:func:`book_setup`).
    seed
        Seeds the initial weights, the windows and the batches.
    device
        Where to train (``None``: :func:`interest_lib.models.training.best_device`).
    progress
        Show a progress bar when training.
    **hyper
        Overrides of :data:`interest_lib.models.recurrent.PLAIN_DEFAULTS`.

    Returns
    -------
    (model, history, test_scores)
        The model in eval mode on ``device``, its
        :class:`~interest_lib.models.training.TrainingHistory` and ``float32
        (len(setup.task("test")), C)`` probabilities.
    """
    from interest_lib.models import recurrent, training, trajectory

    target = training.best_device(device)
    h = recurrent.with_defaults(hyper, recurrent.PLAIN_DEFAULTS)

    def compute() -> dict[str, np.ndarray]:
        with training.one_cpu_thread(target):
            model, history = recurrent.fit_sequence_model(
                setup.events, setup.category_ids, setup.task("train"), setup.task("valid"),
                seed=seed, device=target, progress=progress, **h)
            scores = trajectory.trajectory_scores(model, setup.events, setup.category_ids,
                                                  setup.task("test"), context=int(h["window"]),
                                                  batch_size=64, device=target)
        return _stored(model, history, scores)

    code = code_version(_PROTOCOL_MODULES + ("recurrent", "trajectory", "training"),
                        (plain_model, _stored))
    stored = cached("plain_model", {"data": setup.key, "seed": seed, "device": target.type, **h},
                    compute, code=code)
    return _restored(recurrent.plain_sequence_model(setup.n_categories, h), stored, target)


PLAIN_TUNING_FILE = "plain_model_test.json"
"""The test-day comparison ``benchmarks/tune_plain_model.py test`` writes (``benchmarks/results/``)."""


def gru4rec_comparison(record: Mapping[str, Any] | None) -> pd.DataFrame:
    """The plain model against a tuned GRU4Rec, from ``benchmarks/tune_plain_model.py test``.

    Parameters
    ----------
    record
        The JSON record of :data:`PLAIN_TUNING_FILE`
        (:func:`interest_lib.recipes.benchmark_files.read_benchmark`); ``None`` when the file is
        not available, which gives an empty table.

    Returns
    -------
    pandas.DataFrame
        One row per model (the plain model with its tuned settings, with chapter 6's budget, and
        GRU4Rec with its tuned setting), columns ``validation NDCG@10``, ``test NDCG@10``, its
        95 % interval ``low`` / ``high``, and ``Δ vs GRU4Rec`` = the model's test NDCG@10 − GRU4Rec's
        with its paired 95 % interval (``Δ low``, ``Δ high``; a cluster bootstrap over users).
    """
    columns = ["validation NDCG@10", "test NDCG@10", "low", "high", "Δ vs GRU4Rec", "Δ low",
               "Δ high"]
    if record is None:
        return pd.DataFrame(columns=columns).rename_axis("model")
    rows = {row["model"]: [row["valid NDCG@10"], row["NDCG@10"], row["NDCG@10 low"],
                           row["NDCG@10 high"], row["ΔNDCG@10"], row["ΔNDCG@10 low"],
                           row["ΔNDCG@10 high"]]
            for row in record["rows"]}
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("model")


# --------------------------------------------------------------------------------------------
# every method on one task
# --------------------------------------------------------------------------------------------


_BASELINE_REPORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _test_baseline_reports(setup: BookSetup, changed: bool) -> dict[str, pd.DataFrame]:
    """:func:`baseline_reports` of the test day, computed once per setup in this process (the
    chapter draws several boards; without a disk cache each would score the baselines again)."""
    per_setup = _BASELINE_REPORTS.setdefault(setup, {})
    if changed not in per_setup:
        per_setup[changed] = baseline_reports(setup, changed)
    return per_setup[changed]


def method_reports(
    setup: BookSetup, model_scores: Mapping[str, np.ndarray], changed: bool = False
) -> dict[str, pd.DataFrame]:
    """Per-point metrics of every baseline, the given models and the oracle on the test day.

    The baselines and the oracle come from
    :func:`~interest_lib.recipes.protocol.baseline_reports` (cached); each model's scores of
    the plain test task are scored with :func:`~interest_lib.recipes.protocol.point_report`,
    for ``changed=True`` after :func:`~interest_lib.recipes.protocol.per_changed` (every
    method is told that the category changes).

    Parameters
    ----------
    setup
        The protocol.
    model_scores
        Method name → ``(len(setup.task("test")), C)`` scores of the plain test task.
    changed
        The "next changed category" target.

    Returns
    -------
    dict
        Method → per-point frame: the baselines (in the order of
        :data:`~interest_lib.models.baselines.BASELINE_NAMES`), the models, then ``"oracle"``.
    """
    task = setup.task("test", changed)
    reports = dict(_test_baseline_reports(setup, changed))
    oracle = reports.pop("oracle")
    for name, scores in model_scores.items():
        reports[name] = point_report(per_changed(scores, setup) if changed else scores, task)
    reports["oracle"] = oracle
    return reports


def boards(
    setup: BookSetup,
    model_scores: Mapping[str, np.ndarray],
    *,
    average: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Chapter 6's leaderboards: every baseline, the models and the oracle on both targets.

    :func:`~interest_lib.evaluation.leaderboard.leaderboard` of :func:`method_reports`, in the
    order baselines, models, oracle, with the paired difference to the oracle (``ΔNDCG@10``)
    and the share of the gap between the best baseline and the oracle (``gap closed``).

    Parameters
    ----------
    setup
        The protocol.
    model_scores
        Method name → ``(len(setup.task("test")), C)`` scores of the plain test task.
    average
        ``"points"`` or ``"users"``.
    n_boot, seed
        Bootstrap replicates (0: no intervals) and seed.

    Returns
    -------
    dict
        :data:`TARGETS` → leaderboard.
    """
    return {
        target: leaderboard(
            method_reports(setup, model_scores, changed), setup.task("test", changed).user_id,
            average=average, reference="oracle", baselines=baselines.BASELINE_NAMES, sort=False,
            n_boot=n_boot, seed=seed,
        )
        for target, changed in zip(TARGETS, (False, True))
    }


# --------------------------------------------------------------------------------------------
# what each part of the model adds
# --------------------------------------------------------------------------------------------

FULL_MODEL = "+ taste: the full model"
"""The name of the full model in :data:`ABLATION`."""

ABLATION: dict[str, tuple[str, ...]] = {
    "recurrent network, linear head": ("recurrence",),
    "+ copy of the last category": ("recurrence", "copy"),
    "+ interest components": ("recurrence", "copy", "components"),
    FULL_MODEL: ("recurrence", "copy", "components", "taste"),
    "full model, recurrent state zeroed": ("copy", "components", "taste"),
}
"""Chapter 6's ablation: the network with a linear head, each part of the interest head added in
turn (the parts of :data:`interest_lib.models.trajectory.PARTS`), and the full model without its
recurrent state. Name → parts."""


def ablation_scores(
    setup: BookSetup, cell: str = "lstm", *, seed: int = 0, device: Any = None, **hyper: Any
) -> dict[str, np.ndarray]:
    """Test-day scores of every variant of :data:`ABLATION`, each trained once and cached.

    Every variant is trained with the same budget, seed and data
    (:func:`sequence_model_scores` with its ``parts``).

    Returns
    -------
    dict
        Variant name → ``float32 (len(setup.task("test")), C)`` probabilities.
    """
    return {name: sequence_model_scores(setup, cell, parts=parts, seed=seed, device=device,
                                        **hyper)
            for name, parts in ABLATION.items()}


ABLATION_COMPARISONS: dict[str, tuple[str, str]] = {
    "+ copy of the last category": ("copy of the last category", "recurrent network, linear head"),
    "+ interest components": ("interest components", "+ copy of the last category"),
    FULL_MODEL: ("taste", "+ interest components"),
    "full model, recurrent state zeroed": ("recurrent state", FULL_MODEL),
}
"""Row of :data:`ABLATION` → (the part it measures, the row it is compared with). An added part
is credited with ``row - compared``; the recurrent state with ``full model - zeroed``."""


def ablation_table(
    setup: BookSetup, variant_scores: Mapping[str, np.ndarray], *, n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    r"""Chapter 6's ablation table on both targets: what each part adds, with paired intervals.

    One row per variant of :data:`ABLATION`, in its order: NDCG@10 with its 95 % interval, and
    for every row but the network with a linear head the part it measures
    (:data:`ABLATION_COMPARISONS`) and what that part adds, :math:`\Delta` = NDCG@10 with the part − NDCG@10 without it (for
    an added part: this row − the row above; for the recurrent state: the full model − this
    row), the mean of the per-point differences with its 95 % paired interval (cluster
    bootstrap over users, the same draws for both). ``verdict`` reads the interval:
    ``"helps"`` (above 0), ``"hurts"`` (below 0) or ``"no measurable effect"``.

    Parameters
    ----------
    setup
        The protocol.
    variant_scores
        :func:`ablation_scores`: every name of :data:`ABLATION` → test-day scores.
    n_boot, seed
        Bootstrap replicates and seed.

    Returns
    -------
    dict
        :data:`TARGETS` → table indexed by variant, columns ``NDCG@10``, ``NDCG@10 low``,
        ``NDCG@10 high``, ``part``, ``ΔNDCG@10``, ``ΔNDCG@10 low``, ``ΔNDCG@10 high``,
        ``verdict``.
    """
    missing = set(ABLATION) - set(variant_scores)
    if missing:
        raise ValueError(f"variant_scores lacks {sorted(missing)}")
    result = {}
    for target, changed in zip(TARGETS, (False, True)):
        task = setup.task("test", changed)
        reports = {name: point_report(per_changed(variant_scores[name], setup) if changed
                                      else variant_scores[name], task)
                   for name in ABLATION}
        table = leaderboard(reports, task.user_id, average="points", columns=["NDCG@10"],
                            ceiling=(), sort=False, n_boot=n_boot, seed=seed)
        table = table[["NDCG@10", "NDCG@10 low", "NDCG@10 high"]].copy()
        table["part"] = ""
        for column in ("ΔNDCG@10", "ΔNDCG@10 low", "ΔNDCG@10 high"):
            table[column] = np.nan
        table["verdict"] = ""
        for row, (part, other) in ABLATION_COMPARISONS.items():
            with_part, without = (other, row) if part == "recurrent state" else (row, other)
            delta = paired_difference(reports, with_part, without, task.user_id, n_boot=n_boot,
                                      seed=seed)
            table.loc[row, ["ΔNDCG@10", "ΔNDCG@10 low", "ΔNDCG@10 high"]] = tuple(delta)
            table.loc[row, "part"] = part
            table.loc[row, "verdict"] = part_verdict(delta)
        result[target] = table
    return result


def ablation_formatted(tables: Mapping[str, pd.DataFrame], digits: int = 4) -> pd.DataFrame:
    """:func:`ablation_table`'s tables side by side, as text: the part each row measures, then
    per target NDCG@10, what the part adds with its interval, and the verdict."""

    def one(table: pd.DataFrame) -> pd.DataFrame:
        added = ["" if not row["part"] else
                 f"{row['ΔNDCG@10']:+.{digits}f} [{row['ΔNDCG@10 low']:+.{digits}f}, "
                 f"{row['ΔNDCG@10 high']:+.{digits}f}]"
                 for _, row in table.iterrows()]
        return pd.DataFrame({"NDCG@10": table["NDCG@10"].map(f"{{:.{digits}f}}".format),
                             "adds": added, "verdict": table["verdict"]}, index=table.index)

    first = next(iter(tables.values()))
    part = pd.concat({"": first[["part"]].rename(columns={"part": "part measured"})}, axis=1)
    return pd.concat([part, pd.concat({target: one(t) for target, t in tables.items()}, axis=1)],
                     axis=1)


def part_verdict(added: metrics.ConfidenceInterval) -> str:
    """``"helps"``, ``"hurts"`` or ``"no measurable effect"``: where the paired interval of what
    a part adds lies with respect to 0."""
    return {1: "helps", -1: "hurts", 0: "no measurable effect"}[added.side()]


# --------------------------------------------------------------------------------------------
# trajectories: segments, migrations, days
# --------------------------------------------------------------------------------------------


def figure_days(
    setup: BookSetup, first_day: int = 2, n_users: int | None = 500, seed: int = 0
) -> NextCategoryTask:
    """The prediction points of every day from ``first_day`` to the end, of a random set of users.

    The per-day figures of chapter 6 score every method on these points. Scoring every day of
    every user with hundreds of categories takes minutes on a CPU; ``n_users`` users, drawn with
    ``seed`` among those with such points, are enough for a mean per day.

    Parameters
    ----------
    setup
        The protocol.
    first_day
        First day scored, counted from 0.
    n_users
        Users kept (``None``: all).
    seed
        Seeds the draw.

    Returns
    -------
    NextCategoryTask
        Built on ``setup.events`` with ``setup.category_ids``.
    """
    from interest_lib.data.tasks import next_category_task

    truth = setup.sim.truth
    task = next_category_task(setup.events, setup.category_ids, truth.start + first_day * DAY_S,
                              setup.split.test_end)
    users = np.unique(task.user_id)
    if n_users is None or n_users >= users.size:
        return task
    keep = np.random.default_rng(seed).choice(users, n_users, replace=False)
    return task.subset(np.isin(task.user_id, keep))


def point_positions(task: NextCategoryTask, within: NextCategoryTask) -> np.ndarray:
    """Where the points of ``task`` sit among the points of ``within`` (same event table).

    ``scores_within[point_positions(task, within)]`` are the scores of ``task``'s points.

    Raises
    ------
    ValueError
        If a point of ``task`` is not a point of ``within``.
    """
    index = pd.Index(within.rows).get_indexer(task.rows)
    if (index < 0).any():
        raise ValueError("a point of task is not a point of within")
    return index


def segment_mass(scores: np.ndarray, truth: SimulationTruth, category_ids: np.ndarray
                 ) -> np.ndarray:
    r"""Predicted mass per true segment, :math:`\hat q_s \propto \sum_c \hat p_c P(s \mid c)`.

    :math:`P(s \mid c) \propto E[s, c]` (the emission matrix normalised over segments), so a
    category distribution ``scores`` over the vocabulary ``category_ids`` becomes a
    distribution over the segments.

    Returns
    -------
    numpy.ndarray
        ``(len(scores), S)``.
    """
    columns = baselines.oracle_column_map(truth.category_ids, category_ids)
    segment_of_category = truth.emission[:, columns]
    segment_of_category = segment_of_category / segment_of_category.sum(axis=0, keepdims=True)
    return scores @ segment_of_category.T


def trajectory_example(
    days_task: NextCategoryTask,
    truth: SimulationTruth,
    masses: Mapping[str, np.ndarray],
    after_day: int,
    points: tuple[int, int] = (25, 60),
) -> dict[str, Any]:
    """The user whose true segment moves most often after ``after_day``, and how methods follow.

    Among users with between ``points[0]`` and ``points[1]`` prediction points after day
    ``after_day`` (days from ``truth.start``, from 0), the one with the most changes of the true
    segment between consecutive points (the first such user on a tie).

    Parameters
    ----------
    days_task
        The prediction points of several days.
    truth
        The simulation's truth (segments of the events).
    masses
        Method → ``(len(days_task), S)`` segment mass (:func:`segment_mass`).
    after_day
        Only points of later days count.
    points
        Smallest and largest number of points of the example user.

    Returns
    -------
    dict
        ``user``, ``moves`` (changes of segment), ``pick`` (the user's point positions in
        ``days_task``), ``true_segment`` (``(len(pick),)``) and ``follows``: method → share of
        the user's points whose most likely segment is the true one.
    """
    day_of_point = (days_task.time - truth.start) // DAY_S
    true_segment = truth.event_segment[days_task.rows].astype(int)
    recent = day_of_point > after_day
    per_user = pd.DataFrame({"user": days_task.user_id[recent], "segment": true_segment[recent]})
    moves = per_user.groupby("user")["segment"].agg(
        lambda s: int((np.diff(s.to_numpy()) != 0).sum()))
    sizes = per_user.groupby("user").size()
    user = int(moves[(sizes >= points[0]) & (sizes <= points[1])].idxmax())
    pick = np.flatnonzero(recent & (days_task.user_id == user))
    follows = {name: float((mass[pick].argmax(axis=1) == true_segment[pick]).mean())
               for name, mass in masses.items()}
    return {"user": user, "moves": int(moves.loc[user]), "pick": pick,
            "true_segment": true_segment[pick], "follows": follows}


def migration_curves(
    task: NextCategoryTask,
    truth: SimulationTruth,
    masses: Mapping[str, np.ndarray],
    n_events: int = 6,
) -> tuple[dict[str, pd.DataFrame], int]:
    """Mean predicted mass on the true segment, event by event of a session, after a migration.

    A session *migrates* when its segment differs from the one of the user's previous session.
    For the points of ``task`` in sessions with a previous session, the curves give each
    method's mean mass on the true segment of the point at the ``k``-th event of its session.

    Parameters
    ----------
    task
        The prediction points (built on the simulation's events).
    truth
        The simulation's truth (sessions and segments of the events).
    masses
        Method → ``(len(task), S)`` segment mass (:func:`segment_mass`).
    n_events
        Events of a session shown, ``k = 0 .. n_events - 1``.

    Returns
    -------
    (curves, n_migrations)
        ``curves["after a migration"]`` and ``curves["in the same segment"]``: method ×
        event of the session; ``n_migrations``: sessions of ``task`` that start with a
        migration (their first event is a point).
    """
    session = truth.event_session
    session_start = np.r_[True, session[1:] != session[:-1]]
    first_row = np.maximum.accumulate(np.where(session_start, np.arange(session.size), 0))
    rows = task.rows
    k_in_session = rows - first_row[rows]
    previous_segment = truth.event_segment[np.maximum(first_row[rows] - 1, 0)].astype(int)
    user = task.events["user_id"].to_numpy()
    user_first = np.r_[True, user[1:] != user[:-1]]
    has_previous_session = ~user_first[first_row[rows]]
    segment_now = truth.event_segment[rows].astype(int)
    migrates = has_previous_session & (previous_segment != segment_now)
    curves = {}
    for label, moved in (("after a migration", migrates),
                         ("in the same segment", has_previous_session & ~migrates)):
        rows_of = {}
        for name, mass in masses.items():
            on_true = mass[np.arange(len(rows)), segment_now]
            rows_of[name] = [on_true[moved & (k_in_session == k)].mean() for k in range(n_events)]
        curves[label] = pd.DataFrame(rows_of, index=pd.RangeIndex(n_events,
                                                                  name="event of the session")).T
    return curves, int((migrates & (k_in_session == 0)).sum())


def per_day_ndcg(days_task: NextCategoryTask, scores: Mapping[str, np.ndarray], start: int
                 ) -> pd.DataFrame:
    """NDCG@10 of each method per day: the mean over the day's prediction points.

    Parameters
    ----------
    days_task
        The prediction points.
    scores
        Method → ``(len(days_task), C)`` scores.
    start
        Unix s of day 0 (e.g. ``truth.start``).

    Returns
    -------
    pandas.DataFrame
        Day (from 0) × method.
    """
    day_of_point = (days_task.time - start) // DAY_S
    return pd.DataFrame({
        name: pd.Series(metrics.ndcg_at_k(s, days_task.target, 10, per_user=True))
        .groupby(day_of_point).mean() for name, s in scores.items()
    })


def shift_baselines(setup: BookSetup, days_task: NextCategoryTask) -> dict[str, np.ndarray]:
    """Baselines around the promotion shift, for the points of several days.

    ``repeat last`` (popularity fallback from the events before ``days_task.start``), a first-order
    Markov chain fitted on the training days *before* the shift, and one fitted on all
    training days.

    Returns
    -------
    dict
        Method → ``(len(days_task), C)`` scores.
    """
    split, truth, vocabulary = setup.split, setup.sim.truth, setup.category_ids
    before_shift = split.train[split.train["timestamp"] < truth.shift_time]
    day_zero = setup.events[setup.events["timestamp"] < days_task.start]
    return {
        "repeat last": baselines.repeat_last_scores(days_task, day_zero),
        "Markov fitted before the shift": baselines.MarkovChain.fit(before_shift, vocabulary)
        .predict(days_task.prev_category),
        "Markov fitted on the training days": baselines.MarkovChain.fit(split.train, vocabulary)
        .predict(days_task.prev_category),
    }
