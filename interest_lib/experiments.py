r"""The book's experiments as functions, with an on-disk cache of their results.

Chapters 3–7 evaluate many methods on one protocol (DESIGN §6): the global time split of
:func:`~interest_lib.split.split_by_time`, a category vocabulary fitted on the training days, and
the prediction points of :func:`~interest_lib.sequences.next_category_task` on the last day. This
module runs those experiments **once, the same way, for every chapter**: the chapter that
introduces a method and the evaluation chapter call the same function with the same parameters,
so the numbers agree.

What is cached
    Results, never models: per-point metric tables and score matrices, as ``.npz`` files keyed by
    a hash of *everything* that determines them — the events (their content, not their name), the
    parameters, the device type, the library's source code and the versions of NumPy and PyTorch.
    Change any of those and the result is recomputed; run a chapter alone (e.g. in Colab) and it
    simply computes what it needs.

Where
    The directory in the environment variable ``INTEREST_LIB_CACHE``; by default
    ``interest_lib_cache`` under :func:`tempfile.gettempdir`. Set the variable to ``off`` (or
    ``0``, ``none``, ``false``) to disable the cache.

The functions:

- :func:`book_setup` — simulated log, time split, vocabulary and tasks in one object;
- :func:`baseline_reports`, :func:`oracle_scores` — per-point metrics of every baseline and the
  oracle, and the oracle's scores;
- :func:`sequence_model`, :func:`sequence_model_result`, :func:`sequence_model_scores` — the
  LSTM / GRU of chapter 6, trained once;
- :func:`train_interest_mlp`, :func:`interest_mlp_scores` — the interest MLP of chapter 3 as a
  per-user score;
- :func:`user_means`, :func:`leaderboard` — means over users, bootstrap intervals over users and
  the 5 % tie rule;
- :func:`random_split_comparison`, :func:`sampled_ranks`, :func:`sampled_item_ranks` — two
  classic evaluation mistakes, measured;
- :func:`cold_start_case`, :func:`cold_start_mlp_scores` — chapter 5's cold-start users of the
  web and its transfer methods' scores.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib import baselines, metrics
from interest_lib.features import CategoryVocabulary
from interest_lib.sequences import NextCategoryTask, condition_on_change, next_category_task
from interest_lib.split import TimeSplit, split_by_time

if TYPE_CHECKING:
    from interest_lib.simulation import Simulation

CACHE_ENV: str = "INTEREST_LIB_CACHE"
"""Environment variable with the cache directory; ``off`` disables the cache."""

_PROTOCOL_MODULES = ("simulation", "split", "features", "sequences", "metrics")
"""Modules behind every result: the log's truth, the split, the vocabulary, tasks and metrics."""

KS: tuple[int, ...] = (1, 5, 10, 20)
"""The cut-offs of the protocol (DESIGN §6); accuracy is HR@1."""

_OFF = {"off", "0", "none", "false", "no", "disable", "disabled"}

# --------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path | None:
    """The cache directory (created on first use), or ``None`` when the cache is disabled."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    path = Path(value).expanduser() if value else Path(tempfile.gettempdir()) / "interest_lib_cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


_module_hashes: dict[str, str] = {}


def code_version(modules: Sequence[str] = (), functions: Sequence[Callable[..., Any]] = ()) -> str:
    """Hash of the source code a result depends on, and of the NumPy and PyTorch versions.

    Parameters
    ----------
    modules
        Names of ``interest_lib`` submodules (e.g. ``"baselines"``) whose whole source counts.
    functions
        Functions whose own source counts (e.g. the experiment function itself), so that editing
        an unrelated function of the same module does not invalidate a stored result.
    """
    import inspect

    digest = hashlib.sha256(f"numpy {np.__version__}".encode())
    try:
        import torch

        digest.update(f"torch {torch.__version__}".encode())
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    for name in sorted(set(modules)):
        if name not in _module_hashes:
            spec = importlib.util.find_spec(f"interest_lib.{name}")
            if spec is None or not spec.origin:
                raise ValueError(f"interest_lib has no module {name!r}")
            _module_hashes[name] = hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()
        digest.update(f"{name}:{_module_hashes[name]}".encode())
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:16]


def fingerprint(*arrays: ArrayLike | pd.DataFrame) -> str:
    """A short hash of the content of arrays and event tables (column names, dtypes and values)."""
    digest = hashlib.sha256()
    for item in arrays:
        if isinstance(item, pd.DataFrame):
            for name in item.columns:
                column = item[name]
                values = column.cat.codes.to_numpy() if isinstance(
                    column.dtype, pd.CategoricalDtype
                ) else column.to_numpy()
                digest.update(str(name).encode())
                if isinstance(column.dtype, pd.CategoricalDtype):
                    digest.update(repr(list(column.cat.categories)).encode())
                digest.update(np.ascontiguousarray(values).view(np.uint8))
        else:
            array = np.ascontiguousarray(np.asarray(item))
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.view(np.uint8) if array.size else b"")
    return digest.hexdigest()[:16]


def cache_key(name: str, params: Mapping[str, Any], code: str = "") -> str:
    """The file stem of a result: ``name`` plus a hash of ``params`` and ``code``."""
    text = json.dumps({"params": dict(params), "code": code}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def cached(
    name: str,
    params: Mapping[str, Any],
    compute: Callable[[], Mapping[str, np.ndarray]],
    *,
    code: str = "",
    refresh: bool = False,
) -> dict[str, np.ndarray]:
    """Load a result from the cache, or compute it and store it.

    Parameters
    ----------
    name
        What the result is (part of the file name).
    params
        Everything the result depends on (JSON-serialisable after ``str``); include a
        :func:`fingerprint` of the data.
    compute
        Returns a mapping of names to NumPy arrays (no object arrays).
    code
        The :func:`code_version` of the code that computes the result.
    refresh
        Recompute and overwrite even when a stored result exists.

    Returns
    -------
    dict
        Name → array, as ``compute`` returned it.
    """
    directory = cache_dir()
    if directory is None:
        return {k: np.asarray(v) for k, v in compute().items()}
    path = directory / f"{cache_key(name, params, code)}.npz"
    if path.exists() and not refresh:
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {k: stored[k] for k in stored.files}
        except (OSError, ValueError, EOFError):
            pass  # a damaged file: compute again
    result = {k: np.asarray(v) for k, v in compute().items()}
    # write to a private file, then rename: readers never see a half-written result
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".npz.part")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **result)
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return result


def clear_cache() -> int:
    """Delete every stored result; returns how many files were removed."""
    directory = cache_dir()
    if directory is None:
        return 0
    removed = 0
    for path in directory.glob("*.npz"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


# --------------------------------------------------------------------------------------------
# the protocol in one object
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class BookSetup:
    """A simulated log with the book's protocol applied: split, vocabulary, tasks.

    Attributes
    ----------
    sim
        The simulation (events sorted by user and time, and the truth).
    split
        The global time split (7 training days, 1 validation day, 1 test day).
    category_ids
        ``(C,)`` the category vocabulary, fitted on the training days.
    key
        :func:`fingerprint` of the events: what every cached result of this log is keyed by.
    """

    sim: Simulation
    split: TimeSplit
    category_ids: np.ndarray
    key: str
    _tasks: dict[tuple[str, bool], NextCategoryTask] = field(default_factory=dict, repr=False)

    @property
    def events(self) -> pd.DataFrame:
        """The whole event table."""
        return self.sim.events

    @property
    def n_categories(self) -> int:
        """``C``."""
        return int(self.category_ids.size)

    def window(self, part: str) -> tuple[int | None, int]:
        """``(start, end)`` of ``"train"``, ``"valid"`` or ``"test"``."""
        bounds = {
            "train": (None, self.split.train_end),
            "valid": (self.split.train_end, self.split.valid_end),
            "test": (self.split.valid_end, self.split.test_end),
        }
        if part not in bounds:
            raise ValueError(f"part must be 'train', 'valid' or 'test', got {part!r}")
        return bounds[part]

    def task(self, part: str = "test", changed: bool = False) -> NextCategoryTask:
        """The next-category (or next changed category) task of a part, built once."""
        if (part, changed) not in self._tasks:
            start, end = self.window(part)
            self._tasks[part, changed] = next_category_task(
                self.events, self.category_ids, start, end, changed=changed
            )
        return self._tasks[part, changed]

    def changed_positions(self, part: str = "test") -> np.ndarray:
        """Positions of the changed-category points among the points of the plain task.

        ``scores[setup.changed_positions()]`` turns scores of the next-category task into scores
        of the same predictions at the "next changed category" points (then apply
        :func:`~interest_lib.sequences.condition_on_change`).
        """
        plain, changed = self.task(part), self.task(part, changed=True)
        order = np.argsort(plain.rows, kind="stable")
        position = order[np.searchsorted(plain.rows[order], changed.rows)]
        if not np.array_equal(plain.rows[position], changed.rows):
            raise RuntimeError("the changed task's points are not points of the plain task")
        return position

    def first_positions(self, part: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """``(user_ids, positions)``: each user's first point of the plain task of ``part``."""
        return np.unique(self.task(part).user_id, return_index=True)


def book_setup(sim: Simulation) -> BookSetup:
    """Apply the book's protocol to a simulation.

    Parameters
    ----------
    sim
        From :func:`interest_lib.simulate`.

    Returns
    -------
    BookSetup
        The split (:func:`~interest_lib.split.split_by_time` defaults), the training-day
        vocabulary and lazily built tasks.
    """
    split = split_by_time(sim.events)
    vocabulary = CategoryVocabulary.fit(split.train)
    return BookSetup(sim, split, vocabulary.ids, fingerprint(sim.events))


# --------------------------------------------------------------------------------------------
# per-point reports
# --------------------------------------------------------------------------------------------


def point_report(scores: ArrayLike, task: NextCategoryTask, ks: Sequence[int] = KS) -> pd.DataFrame:
    """Per-point HR@K, NDCG@K and reciprocal rank of a score matrix (full ranking).

    :func:`interest_lib.metrics.ranking_report` with ``per_user=True`` against ``task.target``.
    """
    return metrics.ranking_report(scores, task.target, ks, per_user=True)


def _frame_to_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {str(c): frame[c].to_numpy() for c in frame.columns}


def _arrays_to_frame(arrays: Mapping[str, np.ndarray], prefix: str) -> pd.DataFrame:
    columns = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    return pd.DataFrame(columns)


def baseline_reports(
    setup: BookSetup,
    changed: bool = False,
    part: str = "test",
    *,
    ks: Sequence[int] = KS,
    recent_days: float = 1.0,
    markov_smoothing: float = 1.0,
    oracle: bool = True,
) -> dict[str, pd.DataFrame]:
    """Per-point metrics of every baseline of DESIGN §6 (and the oracle) on one task.

    The baselines are fitted on ``setup.split.train`` (:func:`~interest_lib.baselines.baseline_scores`).

    Returns
    -------
    dict
        Method name → per-point frame (:func:`point_report`), in the order of
        :data:`~interest_lib.baselines.BASELINE_NAMES`, then ``"oracle"``.
    """
    task = setup.task(part, changed)
    params = {"data": setup.key, "part": part, "changed": changed, "ks": list(ks),
              "recent_days": recent_days, "markov_smoothing": markov_smoothing, "oracle": oracle}

    def compute() -> dict[str, np.ndarray]:
        scores = baselines.baseline_scores(
            task, setup.split.train, recent_days=recent_days, markov_smoothing=markov_smoothing,
        )
        if oracle:
            scores["oracle"] = oracle_scores(setup, part, changed)
        out: dict[str, np.ndarray] = {}
        for i, (name, matrix) in enumerate(scores.items()):
            for column, values in _frame_to_arrays(point_report(matrix, task, ks)).items():
                out[f"{i:02d}|{name}|{column}"] = values
        return out

    code = code_version(_PROTOCOL_MODULES + ("baselines", "oracle"),
                        (baseline_reports, point_report, oracle_scores))
    stored = cached("baseline_reports", params, compute, code=code)
    names = sorted({k.rsplit("|", 1)[0] for k in stored})
    return {n.split("|", 1)[1]: _arrays_to_frame(stored, f"{n}|") for n in names}


def oracle_scores(setup: BookSetup, part: str = "test", changed: bool = False) -> np.ndarray:
    """The oracle's scores for a task (:func:`~interest_lib.baselines.oracle_scores`), cached.

    The forward filter over every event costs a few seconds; it runs once per log and part. The
    "next changed category" scores are derived from the plain task's (:func:`per_changed`),
    which is exactly what :func:`~interest_lib.baselines.oracle_scores` computes for that task.

    Returns
    -------
    numpy.ndarray
        ``(len(setup.task(part, changed)), C)`` float64.
    """
    params = {"data": setup.key, "part": part}

    def compute() -> dict[str, np.ndarray]:
        # the oracle's probabilities are float32 numbers: storing float32 loses nothing
        return {"scores": baselines.oracle_scores(setup.sim, setup.task(part)).astype(np.float32)}

    code = code_version(_PROTOCOL_MODULES + ("baselines", "oracle"), (oracle_scores,))
    scores = cached("oracle_scores", params, compute, code=code)["scores"].astype(np.float64)
    return per_changed(scores, setup, part) if changed else scores


def per_changed(scores: np.ndarray, setup: BookSetup, part: str = "test") -> np.ndarray:
    """Scores of the plain task turned into scores of the "next changed category" task.

    The prediction at a changed point is the prediction at the same event of the plain task,
    with the previous category ruled out (:func:`~interest_lib.sequences.condition_on_change`).
    """
    return condition_on_change(
        np.asarray(scores)[setup.changed_positions(part)], setup.task(part, changed=True)
    )


# --------------------------------------------------------------------------------------------
# the learned models of chapters 3 and 6
# --------------------------------------------------------------------------------------------


def train_sequence_model(
    setup: BookSetup,
    cell: str = "lstm",
    *,
    seed: int = 0,
    device: Any = None,
    progress: bool = False,
    **hyper: Any,
) -> tuple[Any, Any, np.ndarray]:
    """Train the LSTM or GRU of chapter 6 and score the test day's next-category points.

    The model is :class:`~interest_lib.models.TrajectoryModel`, trained by
    :func:`~interest_lib.models.fit_trajectory_model` on every prediction point of the training
    days and early-stopped on validation NDCG@10; the test day is scored with each user's whole
    history (:func:`~interest_lib.models.trajectory_scores`). On a CPU, training and scoring run
    on one thread, so the result does not depend on the machine's number of cores.

    Parameters
    ----------
    setup
        The protocol (:func:`book_setup`).
    cell
        ``"lstm"`` or ``"gru"``.
    seed
        Seeds the initial weights and the batches.
    device
        Where to train (``None``: :func:`interest_lib.train.device`).
    progress
        Show a progress bar.
    **hyper
        Overrides of :data:`interest_lib.models.TRAJECTORY_DEFAULTS`.

    Returns
    -------
    (model, history, test_scores)
        The trained model (eval mode), its :class:`~interest_lib.train.TrainingHistory`, and
        ``float32`` probabilities of shape ``(len(setup.task("test")), C)``.
    """
    import torch

    from interest_lib import models, train

    target = train.device(device)
    # small recurrent models run fastest on one CPU thread; one thread also makes the result the
    # same on every machine (a sum over two threads can round differently)
    threads = torch.get_num_threads()
    if target.type == "cpu":
        torch.set_num_threads(1)
    try:
        model, history = models.fit_trajectory_model(
            setup.events, setup.category_ids, setup.task("train"), setup.task("valid"),
            cell=cell, seed=seed, device=target, progress=progress, **hyper,
        )
        scores = models.trajectory_scores(model, setup.events, setup.category_ids,
                                          setup.task("test"), context=None, device=target)
    finally:
        torch.set_num_threads(threads)
    return model, history, scores


def sequence_model_scores(
    setup: BookSetup, cell: str = "lstm", *, seed: int = 0, device: Any = None, **hyper: Any
) -> np.ndarray:
    """Test-day scores of :func:`train_sequence_model`, trained once and cached.

    Returns
    -------
    numpy.ndarray
        ``float32 (len(setup.task("test")), C)`` next-category probabilities.
    """
    return sequence_model_result(setup, cell, seed=seed, device=device, **hyper)["scores"]


_WEIGHT = "weight|"  # prefix of the stored model weights in a cached sequence-model result


def sequence_model_result(
    setup: BookSetup, cell: str = "lstm", *, seed: int = 0, device: Any = None, **hyper: Any
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
    from interest_lib import models, train

    target = train.device(device)
    unknown = set(hyper) - set(models.TRAJECTORY_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown hyper-parameter(s) {sorted(unknown)}")
    h = {**models.TRAJECTORY_DEFAULTS, **hyper}
    params = {"data": setup.key, "cell": cell, "seed": seed, "device": target.type, **h}

    def compute() -> dict[str, np.ndarray]:
        model, history, scores = train_sequence_model(setup, cell, seed=seed, device=target, **h)
        weights = {f"{_WEIGHT}{name}": value.detach().cpu().numpy()
                   for name, value in model.state_dict().items()}
        return {"scores": scores, "valid_metric": np.asarray(history.valid_metric),
                "train_loss": np.asarray(history.train_loss),
                "seconds": np.asarray(history.seconds),
                "best_epoch": np.asarray(history.best_epoch or 0),
                "stopped_early": np.asarray(history.stopped_early), **weights}

    code = code_version(_PROTOCOL_MODULES + ("models", "train"),
                        (train_sequence_model, sequence_model_result))
    return cached("sequence_model", params, compute, code=code)


def sequence_model(
    setup: BookSetup, cell: str = "lstm", *, seed: int = 0, device: Any = None, **hyper: Any
) -> tuple[Any, Any, np.ndarray]:
    """Chapter 6's trained model, its training history and its test-day scores, from the cache.

    Trains (:func:`train_sequence_model`) only when no result for these arguments is stored;
    otherwise the model is rebuilt from the stored weights, so chapter 6 and chapter 7 see the
    very same model.

    Returns
    -------
    (model, history, test_scores)
        A :class:`~interest_lib.models.TrajectoryModel` in eval mode on ``device``, a
        :class:`~interest_lib.train.TrainingHistory` and ``float32 (len(setup.task("test")), C)``
        probabilities.
    """
    import torch

    from interest_lib import models, train

    target = train.device(device)
    stored = sequence_model_result(setup, cell, seed=seed, device=target, **hyper)
    h = {**models.TRAJECTORY_DEFAULTS, **hyper}
    model = models.TrajectoryModel(setup.n_categories, n_components=int(h["n_components"]),
                                   embedding_dim=int(h["embedding_dim"]), hidden=int(h["hidden"]),
                                   cell=cell)
    model.load_state_dict({name[len(_WEIGHT):]: torch.from_numpy(np.array(value))
                           for name, value in stored.items() if name.startswith(_WEIGHT)})
    model.to(target).eval()
    best = int(stored["best_epoch"])
    history = train.TrainingHistory(
        train_loss=[float(v) for v in stored["train_loss"]],
        valid_metric=[float(v) for v in stored["valid_metric"]],
        seconds=[float(v) for v in stored["seconds"]],
        best_epoch=best or None,
        stopped_early=bool(stored["stopped_early"]),
        device=target.type,
    )
    return model, history, stored["scores"]


MLP_DEFAULTS: dict[str, Any] = {
    "hidden": 128,
    "dropout": 0.1,
    "epochs": 30,
    "n_windows": 6,
    "lr": 3e-3,
    "weight_decay": 1e-2,
    "patience": 5,
}
"""Hyper-parameters of the chapter-3 interest MLP (:func:`train_interest_mlp`)."""


def train_interest_mlp(
    setup: BookSetup,
    *,
    seed: int = 0,
    device: Any = None,
    scaler_on: str = "train",
    progress: bool = False,
    store: bool = True,
    **hyper: Any,
) -> dict[str, Any]:
    """Train the interest MLP of chapter 3 and predict every user's test-day interest.

    Inputs are :func:`~interest_lib.static_interest.next_window_examples` behaviour vectors
    (``log1p``, then standardised) with the behaviour weighting that forecasts the validation day
    better (funnel weights or all ones, as chapter 3 chooses); targets the next day's category
    distribution; loss :func:`~interest_lib.models.soft_cross_entropy`; early stopping on the
    validation day's NDCG@10. Training runs on one CPU thread, as in chapter 3.

    Parameters
    ----------
    setup
        The protocol.
    seed, device, progress
        As in :func:`train_sequence_model`.
    scaler_on
        ``"train"`` (right): the standardiser is fitted on the training examples. ``"all"``
        (the mistake of chapter 7): fitted on training, validation and test inputs together.
    store
        Also put the scores in the cache, where :func:`interest_mlp_scores` with the same
        arguments finds them (so chapter 7 reuses the model chapter 3 trained).
    **hyper
        Overrides of :data:`MLP_DEFAULTS`.

    Returns
    -------
    dict
        ``model``, ``history``, ``user_ids`` ``(n,)`` and ``scores`` ``(n, C)`` (softmax
        probabilities of the test day for every user with a training history), ``weights`` (the
        behaviour weights used).
    """
    import torch
    from sklearn.preprocessing import StandardScaler

    from interest_lib import features, models, static_interest, train

    unknown = set(hyper) - set(MLP_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown hyper-parameter(s) {sorted(unknown)}")
    if scaler_on not in ("train", "all"):
        raise ValueError(f"scaler_on must be 'train' or 'all', got {scaler_on!r}")
    h = {**MLP_DEFAULTS, **hyper}
    target = train.device(device)
    split, events = setup.split, setup.events
    vocab = features.CategoryVocabulary(setup.category_ids)
    users = features.UserVocabulary.fit(split.train)

    # the weighting: the one whose own-history forecast of the validation day is better
    valid_target = features.next_window_targets(
        split.history("test"), vocab, users, split.train_end, split.valid_end
    )
    quality = {}
    for name, w in (("all ones", features.UNIT_WEIGHTS), ("funnel", features.BEHAVIOR_WEIGHTS)):
        rows = features.behavior_matrix(split.train, vocab, users, weights=w).normalize_rows("l1")
        quality[name] = metrics.ndcg_at_k(rows.toarray(), valid_target, 10)
    weights = dict(features.BEHAVIOR_WEIGHTS if quality["funnel"] > quality["all ones"]
                   else features.UNIT_WEIGHTS)

    ends = static_interest.window_ends(split.train_end, n_windows=h["n_windows"])
    train_ex = static_interest.next_window_examples(split.train, vocab, users, ends, weights=weights)
    valid_ex = static_interest.next_window_examples(
        split.history("test"), vocab, users, [split.train_end], weights=weights
    )
    test_ex = static_interest.next_window_examples(
        events, vocab, users, [split.valid_end], weights=weights
    )
    fit_ex = train_ex.subset(train_ex.active)
    fitted_on = fit_ex.inputs if scaler_on == "train" else np.vstack(
        [fit_ex.inputs, valid_ex.inputs, test_ex.inputs]
    )
    scaler = StandardScaler().fit(fitted_on)
    x_fit, x_valid, x_test = (
        scaler.transform(ex.inputs).astype(np.float32) for ex in (fit_ex, valid_ex, test_ex)
    )

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x_valid_t = torch.tensor(x_valid, device=target)

        def loss_fn(net, batch):
            inputs, goal = batch
            return models.soft_cross_entropy(net(inputs), goal)

        def valid_fn(net):
            return metrics.ndcg_at_k(net(x_valid_t).cpu().numpy(), valid_ex.targets, 10)

        train.set_seed(seed)
        model = models.InterestMLP(setup.n_categories, hidden=h["hidden"], dropout=h["dropout"])
        history = train.fit(
            model, (torch.tensor(x_fit), torch.tensor(fit_ex.targets)), loss_fn=loss_fn,
            valid_fn=valid_fn, epochs=h["epochs"], lr=h["lr"], weight_decay=h["weight_decay"],
            patience=h["patience"], device=target, seed=seed, progress=progress,
        )
        with torch.no_grad():
            logits = model(torch.tensor(x_test, device=target))
            scores = torch.softmax(logits, dim=-1).cpu().numpy()
    finally:
        torch.set_num_threads(threads)
    if store:  # so that a later interest_mlp_scores(...) with the same arguments reads it back
        params, code = _mlp_cache_key(setup, seed, target, scaler_on, h)
        cached("interest_mlp", params, lambda: {"user_ids": test_ex.user_ids, "scores": scores},
               code=code, refresh=True)
    return {"model": model, "history": history, "user_ids": test_ex.user_ids, "scores": scores,
            "weights": weights}


def _mlp_cache_key(setup: BookSetup, seed: int, target: Any, scaler_on: str,
                   h: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    params = {"data": setup.key, "seed": seed, "device": target.type, "scaler_on": scaler_on, **h}
    code = code_version(_PROTOCOL_MODULES + ("models", "train", "static_interest"),
                        (train_interest_mlp, _mlp_cache_key))
    return params, code


def interest_mlp_scores(
    setup: BookSetup,
    *,
    seed: int = 0,
    device: Any = None,
    scaler_on: str = "train",
    **hyper: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """``(user_ids, scores)`` of :func:`train_interest_mlp`, trained once and cached."""
    from interest_lib import train

    target = train.device(device)
    params, code = _mlp_cache_key(setup, seed, target, scaler_on, {**MLP_DEFAULTS, **hyper})

    def compute() -> dict[str, np.ndarray]:
        out = train_interest_mlp(setup, seed=seed, device=target, scaler_on=scaler_on,
                                 store=False, **hyper)
        return {"user_ids": out["user_ids"], "scores": out["scores"]}

    stored = cached("interest_mlp", params, compute, code=code)
    return stored["user_ids"], stored["scores"]


def static_user_scores(
    user_ids: ArrayLike,
    user_scores: ArrayLike,
    task: NextCategoryTask,
    fallback: ArrayLike,
) -> np.ndarray:
    """A per-user score (one row per user, fixed for the window) at every point of a task.

    Points of a user without a row get ``fallback`` (e.g. the training popularity). For a
    "next changed category" task the previous category is ruled out.

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)`` float64.
    """
    user_ids = np.asarray(user_ids)
    user_scores = np.asarray(user_scores, dtype=np.float64)
    order = np.argsort(user_ids)
    position = np.minimum(np.searchsorted(user_ids[order], task.user_id), max(user_ids.size - 1, 0))
    row = order[position]
    found = user_ids[row] == task.user_id if user_ids.size else np.zeros(len(task), dtype=bool)
    out = np.where(found[:, None], user_scores[row], np.asarray(fallback, dtype=np.float64)[None])
    return condition_on_change(out, task)


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
        As in :func:`interest_lib.metrics.bootstrap_ci`.
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
    :func:`interest_lib.metrics.bootstrap_ci` of the users' means. With ``average="points"`` every
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
        :func:`~interest_lib.metrics.relative_difference`) and ``ties best``
        (:func:`~interest_lib.metrics.is_tie`; the best method ties with itself).
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


# --------------------------------------------------------------------------------------------
# mistakes: a random split, sampled negatives
# --------------------------------------------------------------------------------------------


def random_split(events: pd.DataFrame, test_share: float = 0.2, seed: int = 0) -> np.ndarray:
    """The mistake: a boolean mask that puts each event in the test part at random.

    Returns
    -------
    numpy.ndarray
        ``(len(events),)`` ``True`` for the random test events.
    """
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must lie in (0, 1), got {test_share}")
    return np.random.default_rng(seed).random(len(events)) < test_share


def user_profile_scores(task: NextCategoryTask, fitted_on: pd.DataFrame) -> np.ndarray:
    r"""A static user profile: the user's category distribution in ``fitted_on``.

    :func:`~interest_lib.baselines.user_history_distribution` over *every* event of the user in
    the fitting frame, smoothed towards its popularity. Fitted on the training days it is a
    legitimate baseline; fitted on a random share of all events it contains the user's future.

    Returns
    -------
    numpy.ndarray
        ``(len(task), C)``.
    """
    users, inverse = np.unique(task.user_id, return_inverse=True)
    profile = baselines.user_history_distribution(fitted_on, task.category_ids, users, end=None)
    return condition_on_change(profile[inverse], task)


RANDOM_SPLIT_METHODS: tuple[str, ...] = (
    "global popularity", "user frequency", "user profile", "Markov chain",
)  # fmt: skip
"""Methods compared under a random and a time split by :func:`random_split_comparison`."""


def _method_scores(name: str, task: NextCategoryTask, fitted_on: pd.DataFrame) -> np.ndarray:
    if name == "global popularity":
        return condition_on_change(
            np.tile(baselines.popularity(fitted_on, task.category_ids), (len(task), 1)), task
        )
    if name == "user frequency":
        pop = baselines.popularity(fitted_on, task.category_ids)
        counts = baselines.user_history_counts(task)
        return condition_on_change((counts + pop) / (counts.sum(axis=1, keepdims=True) + 1), task)
    if name == "user profile":
        return user_profile_scores(task, fitted_on)
    if name == "Markov chain":
        chain = baselines.MarkovChain.fit(fitted_on, task.category_ids)
        return condition_on_change(chain.predict(task.prev_category), task)
    raise ValueError(f"unknown method {name!r}; choose from {RANDOM_SPLIT_METHODS}")


def random_split_comparison(
    setup: BookSetup,
    *,
    test_share: float = 0.2,
    seed: int = 0,
    methods: Sequence[str] = RANDOM_SPLIT_METHODS,
    changed: bool = False,
    ks: Sequence[int] = KS,
) -> dict[str, Any]:
    """The same methods evaluated after a random split and after the book's time split.

    Random split: every event goes to the test part with probability ``test_share``; each method
    is fitted on the other events (of all nine days) and predicts the test events that have an
    earlier event of their user. Time split: fitted on the training days, evaluated on the test
    day (the points of ``setup.task("test")``). Histories are every earlier event in both cases;
    the methods are those of :func:`~interest_lib.baselines.baseline_scores` with the fitting
    frame as their training data, plus :func:`user_profile_scores`.

    Returns
    -------
    dict
        ``"random"`` and ``"time"``: method → per-point frame (:func:`point_report`);
        ``"random user_id"`` and ``"time user_id"``: the user of each point, for
        :func:`user_bootstrap`.
    """
    params = {"data": setup.key, "test_share": test_share, "seed": seed, "methods": list(methods),
              "changed": changed, "ks": list(ks)}
    events = setup.events

    def compute() -> dict[str, np.ndarray]:
        in_test = random_split(events, test_share, seed)
        every = next_category_task(events, setup.category_ids, None, setup.split.test_end,
                                   changed=changed)
        random_task = every.subset(in_test[every.rows])
        fitted = events.loc[~in_test]
        time_task = setup.task("test", changed)
        out: dict[str, np.ndarray] = {"random|user_id": random_task.user_id,
                                      "time|user_id": time_task.user_id}
        for protocol, task, frame in (("random", random_task, fitted),
                                      ("time", time_task, setup.split.train)):
            for i, name in enumerate(methods):
                report = point_report(_method_scores(name, task, frame), task, ks)
                for column, values in _frame_to_arrays(report).items():
                    out[f"{protocol}|{i:02d}|{name}|{column}"] = values
        return out

    code = code_version(_PROTOCOL_MODULES + ("baselines",),
                        (random_split_comparison, random_split, _method_scores,
                         user_profile_scores, point_report))
    stored = cached("random_split", params, compute, code=code)
    result: dict[str, Any] = {}
    for protocol in ("random", "time"):
        names = sorted({k.rsplit("|", 1)[0] for k in stored if k.startswith(f"{protocol}|")
                        and k.count("|") == 3})
        result[protocol] = {n.split("|")[2]: _arrays_to_frame(stored, f"{n}|") for n in names}
        result[f"{protocol} user_id"] = stored[f"{protocol}|user_id"]
    return result


def sampled_ranks(
    scores: ArrayLike, targets: ArrayLike, n_negatives: int, seed: int = 0
) -> np.ndarray:
    """The mistake: the target's rank among ``n_negatives`` randomly sampled other items.

    For each row, ``n_negatives`` distinct items other than the target are drawn uniformly, and
    the rank is the number of them that score above the target (ties: lower index first, as in
    :mod:`interest_lib.metrics`). ``rank < K`` is then the "sampled HR@K" that papers report
    with 100 negatives (HR@10 out of 101 candidates) or with 1 negative (an AUC per point).

    Parameters
    ----------
    scores
        ``(n, N)`` scores over the full item set.
    targets
        ``(n,)`` target indices.
    n_negatives
        Negatives per row, at most ``N - 1``.
    seed
        Seed of the sampling.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 ranks in ``0 .. n_negatives``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    n, n_items = scores.shape
    _check_negatives(n_negatives, n_items)
    rng = np.random.default_rng(seed)
    ranks = np.empty(n, dtype=np.int64)
    block = max(1, (1 << 22) // n_items)
    for lo in range(0, n, block):
        rows = slice(lo, min(lo + block, n))
        target = targets[rows]
        keys = rng.random((target.size, n_items))
        keys[np.arange(target.size), target] = 2.0  # the target is never drawn
        negatives = np.argpartition(keys, n_negatives - 1, axis=1)[:, :n_negatives]
        block_scores = scores[rows]
        own = block_scores[np.arange(target.size), target][:, None]
        other = np.take_along_axis(block_scores, negatives, axis=1)
        ranks[rows] = _rank_among_negatives(own, other, negatives, target)
    return ranks


def _check_negatives(n_negatives: int, n_items: int) -> None:
    if not 1 <= n_negatives <= n_items - 1:
        raise ValueError(f"n_negatives must lie in 1 .. {n_items - 1}, got {n_negatives}")


def _rank_among_negatives(own: np.ndarray, other: np.ndarray, negatives: np.ndarray,
                          targets: np.ndarray) -> np.ndarray:
    """``(n,)`` how many negatives score above the target (``own`` ``(n, 1)``, ``other``
    ``(n, m)``); a tie counts against the target when the negative has the lower index."""
    ahead = (other > own) | ((other == own) & (negatives < targets[:, None]))
    return ahead.sum(axis=1).astype(np.int64)


def rank_report(ranks: ArrayLike, ks: Sequence[int] = (1, 10)) -> dict[str, float]:
    """Mean HR@K, NDCG@K (single target) and MRR computed from 0-based ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        out[f"HR@{k}"] = float((ranks < k).mean())
        out[f"NDCG@{k}"] = float(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
    out["MRR"] = float((1.0 / (ranks + 1.0)).mean())
    return out


def sampled_item_ranks(
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    rows: ArrayLike,
    targets: ArrayLike,
    n_items: int,
    n_negatives: int,
    seed: int = 0,
) -> np.ndarray:
    """:func:`sampled_ranks` for a catalogue too large for a full score matrix.

    Only the target and its sampled negatives are scored: ``score(rows, candidates)`` must return
    the scores of the item positions ``candidates`` (``(n, 1 + n_negatives)``, the target first)
    for the users ``rows``. Negatives are distinct items other than the target, drawn uniformly.

    Parameters
    ----------
    score
        Scoring function, e.g. ``lambda rows, c: recommend.item_scores(s[rows], items,
        history[rows], c)``.
    rows
        ``(n,)`` the users (row positions passed on to ``score``).
    targets
        ``(n,)`` item position of each user's target, ``0 .. n_items - 1``.
    n_items
        Catalogue size.
    n_negatives
        Negatives per user, at most ``n_items - 1``.
    seed
        Seed of the sampling.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 ranks in ``0 .. n_negatives``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    _check_negatives(n_negatives, n_items)
    if np.any((targets < 0) | (targets >= n_items)):
        raise ValueError("targets must be item positions in 0 .. n_items - 1")
    rng = np.random.default_rng(seed)
    # distinct draws from n_items - 1 values, then skip over the target: never the target
    negatives = np.empty((rows.size, n_negatives), dtype=np.int64)
    for i in range(rows.size):
        negatives[i] = rng.choice(n_items - 1, size=n_negatives, replace=False)
    negatives += negatives >= targets[:, None]
    candidates = np.hstack([targets[:, None], negatives])
    values = np.asarray(score(rows, candidates), dtype=np.float64)
    return _rank_among_negatives(values[:, :1], values[:, 1:], negatives, targets)


# --------------------------------------------------------------------------------------------
# cold-start users of the web: chapter 5's transfer methods
# --------------------------------------------------------------------------------------------

COLD_START_K_GRID: tuple[int, ...] = (10, 25, 50, 100, 200, 400, 800, 1600)
"""Neighbour counts of chapter 5's kNN transfer, chosen among on the validation day."""

COLD_START_STRENGTH_GRID: tuple[float, ...] = (5, 20, 50, 100, 200, 500)
"""Prior strengths (pseudo-events) of chapter 5's shrinkage, chosen among on the validation day."""


@dataclass(eq=False)
class ColdStartCase:
    """Chapter 5's cold-start evaluation set and the scores of its static transfer methods.

    Shapes use ``U`` cold-start users, ``E`` target events and ``C`` categories.

    Attributes
    ----------
    users
        ``(U,)`` sorted ids of the web's cold-start users (groups ``both_cold`` and ``web_cold``)
        with at least one web event on the test day.
    is_both_cold
        ``(U,)`` whether the user is new on both platforms (``False``: new on the web only, with
        an app history).
    event_user
        ``(E,)`` row of ``users`` of each of their test-day web events.
    event_target
        ``(E,)`` category index of each event, ``-1`` outside the vocabulary (a miss).
    event_row
        ``(E,)`` position of each event in ``setup.events`` (what
        :attr:`~interest_lib.sequences.NextCategoryTask.rows` holds).
    scores
        Method name → ``(U, C)`` static score, one row per user, fixed for the test day.
    k, strength
        The neighbour count and prior strength chosen on the validation day.
    """

    users: np.ndarray
    is_both_cold: np.ndarray
    event_user: np.ndarray
    event_target: np.ndarray
    event_row: np.ndarray
    scores: dict[str, np.ndarray]
    k: int
    strength: float

    def __len__(self) -> int:
        """``E``, the number of target events."""
        return int(self.event_user.size)

    def report(
        self, user_scores: ArrayLike, keep: ArrayLike | None = None, ks: Sequence[int] = (10,)
    ) -> pd.DataFrame:
        """Per-user metrics of a static score, as chapter 5 computes them.

        :func:`interest_lib.transfer.event_report`: every target event is a single-target
        ranking over all categories, and a user's value is the mean over their events.

        Parameters
        ----------
        user_scores
            ``(U, C)`` one row per user.
        keep
            Optional ``(E,)`` boolean mask: only these events count.
        ks
            Cut-offs.

        Returns
        -------
        pandas.DataFrame
            One row per user with a kept event, indexed by the row of ``users``.
        """
        from interest_lib import transfer

        mask = np.ones(len(self), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        return transfer.event_report(user_scores, self.event_user[mask], self.event_target[mask],
                                     ks=tuple(ks))

    def event_report(
        self, event_scores: ArrayLike, keep: ArrayLike, ks: Sequence[int] = (10,)
    ) -> pd.DataFrame:
        """Per-user metrics of a score that changes from event to event (a sequence model).

        Parameters
        ----------
        event_scores
            ``(keep.sum(), C)`` one row per kept event, in event order.
        keep
            ``(E,)`` boolean mask of the events that have a score.
        ks
            Cut-offs.

        Returns
        -------
        pandas.DataFrame
            The frame of :meth:`report`: one row per user with a kept event, the mean over the
            user's kept events.
        """
        keep = np.asarray(keep, dtype=bool)
        per_event = metrics.ranking_report(event_scores, self.event_target[keep], ks=tuple(ks),
                                           per_user=True)
        rows = self.event_user[keep]
        grouped = per_event.groupby(rows)
        report = grouped.mean()
        report["n_events"] = grouped.size()
        report.index.name = "row"
        return report

    def task_positions(self, task: NextCategoryTask) -> np.ndarray:
        """``(E,)`` the position of each target event among the points of ``task``, ``-1`` if none.

        An event is no point when it is the user's first event ever (nothing to predict from) or
        its category is outside the vocabulary.
        """
        order = np.argsort(task.rows, kind="stable")
        found = np.searchsorted(task.rows[order], self.event_row)
        found = np.minimum(found, max(task.rows.size - 1, 0))
        position = order[found] if task.rows.size else np.zeros(len(self), dtype=np.int64)
        hit = task.rows[position] == self.event_row if task.rows.size else np.zeros(len(self), bool)
        return np.where(hit, position, -1).astype(np.int64)


def cold_start_case(
    setup: BookSetup,
    *,
    seed: int = 0,
    k_grid: Sequence[int] = COLD_START_K_GRID,
    strength_grid: Sequence[float] = COLD_START_STRENGTH_GRID,
    n_clusters: int = 10,
    n_init: int = 3,
    truth: bool = True,
) -> ColdStartCase:
    """Chapter 5's cold-start evaluation and its transfer methods that need no neural training.

    The same library calls as chapter 5 (and ``tests/test_chapter5_claims.py``). The users are
    the simulator's web cold-start users (``both_cold``, ``web_cold``) with web events on the test
    day; every one of those events is a target. Popularity and profiles come from all events
    before the test day (``split.history("test")``), with unit weights per event. The prior
    strength of the shrinkage and the ``k`` of the kNN are chosen on the validation day, on warm
    users of both platforms, with the app history of the training days; the exposure ratio
    (web popularity over app popularity) corrects every score transferred from the app.

    The methods (keys of :attr:`ColdStartCase.scores`):

    - ``"(a) web popularity"``;
    - ``"(b) own web events"``: the user's own earlier web events, shrunk to web popularity;
    - ``"(c1) own app profile, exposure-corrected"``: the user's app history, shrunk to app
      popularity, then corrected;
    - ``"(c2) kNN of own app profile, exposure-corrected"``: the mean next interest of the ``k``
      most similar app users;
    - ``"(d) kNN from web events, exposure-corrected"``: the same neighbours, found from the
      user's few web events;
    - ``"(e) centroid from web events, exposure-corrected"``: the interest of the nearest of
      ``n_clusters`` KMeans clusters of app users;
    - ``"truth (hidden parameters)"`` (with ``truth=True``): the simulator's true long-run web
      interest, a reference no method can know.

    Chapter 5's MLPs (its methods (f)) need training and are not here; the app-pretrained one,
    with no web data, is :func:`cold_start_mlp_scores`. Everything here takes seconds.

    Parameters
    ----------
    setup
        From :func:`book_setup` (its simulation must have the ``app`` and ``web`` platforms and
        the cold-start groups of :func:`interest_lib.simulate`).
    seed
        ``random_state`` of the KMeans of method (e).
    k_grid, strength_grid
        The candidates validated.
    n_clusters, n_init
        KMeans of method (e).
    truth
        Add the truth reference.

    Returns
    -------
    ColdStartCase
    """
    from interest_lib import features, transfer

    sim, split = setup.sim, setup.split
    sim_truth = sim.truth
    history = split.history("test")
    vocab = features.CategoryVocabulary.fit(split.train)
    categories = vocab.ids
    if not np.array_equal(categories, setup.category_ids):
        raise RuntimeError("the setup's vocabulary is not the training days' vocabulary")
    group_of = pd.Series(sim_truth.user_group, index=sim_truth.user_ids)
    web_history = history[history["platform"] == "web"]
    app_history = history[history["platform"] == "app"]
    test_web = split.test[split.test["platform"] == "web"]

    cold_ids = sim_truth.user_ids[np.isin(sim_truth.user_group, ["both_cold", "web_cold"])]
    target_events = test_web[test_web["user_id"].isin(cold_ids)]
    users = np.sort(target_events["user_id"].unique())
    event_user = np.searchsorted(users, target_events["user_id"].to_numpy())
    event_target = vocab.index(target_events["category_id"].to_numpy(), unknown="minus_one")
    event_row = setup.events.index.get_indexer(target_events.index)
    if np.any(event_row < 0):
        raise RuntimeError("target events not found in setup.events")
    is_both_cold = group_of.reindex(users).to_numpy() == "both_cold"

    app_pop = baselines.popularity(app_history, categories)
    web_pop = baselines.popularity(web_history, categories)
    ratio = transfer.exposure_ratio(app_pop, web_pop)

    # the validation day: warm users on both platforms, app history of the training days
    train_events = split.train
    app_train = train_events[train_events["platform"] == "app"]
    web_train = train_events[train_events["platform"] == "web"]
    app_pop_train = baselines.popularity(app_train, categories)
    web_pop_train = baselines.popularity(web_train, categories)
    ratio_train = transfer.exposure_ratio(app_pop_train, web_pop_train)
    warm_ids = sim_truth.user_ids[sim_truth.user_group == "both"]
    valid_web = split.valid[
        (split.valid["platform"] == "web") & split.valid["user_id"].isin(warm_ids)
    ]
    valid_users = np.sort(valid_web["user_id"].unique())
    valid_user = np.searchsorted(valid_users, valid_web["user_id"].to_numpy())
    valid_target = vocab.index(valid_web["category_id"].to_numpy(), unknown="minus_one")
    app_reference_train = features.behavior_matrix(app_train, vocab, weights=features.UNIT_WEIGHTS)
    valid_app = features.behavior_matrix(app_train, vocab, valid_users,
                                         weights=features.UNIT_WEIGHTS)

    def valid_hr(predicted: np.ndarray) -> float:
        return float(transfer.event_report(predicted, valid_user, valid_target)["HR@10"].mean())

    valid_strength = pd.Series({
        s: valid_hr(transfer.correct_exposure(
            transfer.shrink(valid_app.matrix, app_pop_train, s), ratio_train))
        for s in strength_grid})
    valid_k = pd.Series({
        k: valid_hr(transfer.correct_exposure(transfer.knn_transfer(
            valid_app.log1p(), app_reference_train.log1p(),
            features.normalize_rows(app_reference_train.matrix), k, fallback=app_pop_train),
            ratio_train))
        for k in k_grid})
    strength = float(valid_strength.idxmax())
    k = int(valid_k.idxmax())

    scores: dict[str, np.ndarray] = {}
    web_counts = features.behavior_matrix(web_history, vocab, users, weights=features.UNIT_WEIGHTS)
    scores["(a) web popularity"] = np.tile(web_pop, (len(users), 1))
    scores["(b) own web events"] = transfer.shrink(web_counts.matrix, web_pop, strength=1.0)

    app_users = np.sort(app_history["user_id"].unique())
    app_reference = features.behavior_matrix(app_history, vocab, app_users,
                                             weights=features.UNIT_WEIGHTS)
    app_interest = features.normalize_rows(app_reference.matrix)
    app_counts = features.behavior_matrix(app_history, vocab, users, weights=features.UNIT_WEIGHTS)
    own_app = transfer.shrink(app_counts.matrix, app_pop, strength)
    scores["(c1) own app profile, exposure-corrected"] = transfer.correct_exposure(own_app, ratio)
    neighbours = transfer.knn_transfer(app_counts.log1p(), app_reference.log1p(), app_interest, k,
                                       fallback=app_pop)
    scores["(c2) kNN of own app profile, exposure-corrected"] = transfer.correct_exposure(
        neighbours, ratio)
    from_web = transfer.knn_transfer(web_counts, app_reference.log1p(), app_interest, k,
                                     fallback=app_pop)
    scores["(d) kNN from web events, exposure-corrected"] = transfer.correct_exposure(
        from_web, ratio)
    centroids = transfer.centroid_transfer(web_counts, app_reference.log1p(), n_clusters,
                                           seed=seed, reference_targets=app_interest,
                                           n_init=n_init)
    scores["(e) centroid from web events, exposure-corrected"] = transfer.correct_exposure(
        centroids.scores, ratio)
    if truth:
        scores["truth (hidden parameters)"] = transfer.truth_interest(sim_truth, users, categories)
    scores = {name: np.asarray(value, dtype=np.float64) for name, value in scores.items()}
    return ColdStartCase(users, is_both_cold, event_user.astype(np.int64),
                         np.asarray(event_target, dtype=np.int64), event_row.astype(np.int64),
                         scores, k, strength)


def cold_start_mlp_scores(
    setup: BookSetup,
    users: ArrayLike,
    *,
    seed: int = 0,
    device: Any = None,
    hidden: int = 64,
    epochs: int = 30,
) -> np.ndarray:
    """Chapter 5's method (f) with no web data: the app-pretrained MLP, exposure-corrected.

    The same library calls as chapter 5: an :class:`~interest_lib.models.InterestMLP` learns
    the validation day's app interest of the app users active on the training days and the
    validation day from their training-day app events (``log1p`` counts of
    :func:`~interest_lib.features.behavior_matrix`, soft cross-entropy, ``epochs`` epochs,
    batches of 256, learning rate 3e-3, no early stopping); its output bias then adds the log
    exposure ratio of the training days (:func:`~interest_lib.transfer.with_output_bias`), and it
    reads every event of ``users`` before the test day. Training runs on one CPU thread; the
    scores are cached (:func:`cached`), so a chapter pays the few seconds of training once.

    Parameters
    ----------
    setup
        The protocol (a simulation with the ``app`` and ``web`` platforms).
    users
        ``(U,)`` the users to score, e.g. :attr:`ColdStartCase.users`.
    seed, device
        Seed of the weights and batches; the device (:func:`interest_lib.train.device`).
    hidden, epochs
        Chapter 5's interest size and epochs.

    Returns
    -------
    numpy.ndarray
        ``(U, C)`` float64 softmax probabilities, one row per user of ``users``.
    """
    from interest_lib import train

    target = train.device(device)
    users = np.asarray(users)
    params = {"data": setup.key, "users": fingerprint(users), "seed": seed,
              "device": target.type, "hidden": hidden, "epochs": epochs}

    def compute() -> dict[str, np.ndarray]:
        import torch

        from interest_lib import features, models, transfer

        split = setup.split
        vocab = features.CategoryVocabulary(setup.category_ids)
        app_train = split.train[split.train["platform"] == "app"]
        web_train = split.train[split.train["platform"] == "web"]
        app_valid = split.valid[split.valid["platform"] == "app"]
        ratio_train = transfer.exposure_ratio(baselines.popularity(app_train, vocab.ids),
                                              baselines.popularity(web_train, vocab.ids))
        pre_users = np.intersect1d(app_train["user_id"].unique(), app_valid["user_id"].unique())

        def tensor(matrix: Any) -> torch.Tensor:
            dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
            return torch.as_tensor(dense, dtype=torch.float32)

        def loss_fn(net: Any, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            inputs, goal = batch
            return models.soft_cross_entropy(net(inputs), goal)

        x_pre = tensor(features.behavior_matrix(app_train, vocab, pre_users).log1p().matrix)
        y_pre = tensor(features.next_window_targets(app_valid, vocab, pre_users, None, None))
        x_cold = tensor(features.behavior_matrix(split.history("test"), vocab, users)
                        .log1p().matrix)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            train.set_seed(seed)
            pretrained = models.InterestMLP(setup.n_categories, hidden=hidden)
            train.fit(pretrained, (x_pre, y_pre), loss_fn=loss_fn, epochs=epochs, batch_size=256,
                      lr=3e-3, patience=None, device=target, seed=seed, progress=False)
            corrected = transfer.with_output_bias(pretrained, np.log(ratio_train))
            corrected.eval()
            with torch.no_grad():
                logits = corrected(x_cold.to(next(corrected.parameters()).device))
            scores = torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64)
        finally:
            torch.set_num_threads(threads)
        return {"scores": scores}

    code = code_version(_PROTOCOL_MODULES + ("models", "train", "transfer", "baselines"),
                        (cold_start_mlp_scores,))
    return cached("cold_start_mlp", params, compute, code=code)["scores"]
