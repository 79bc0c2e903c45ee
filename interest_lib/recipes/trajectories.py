r"""Chapter 6's recipe: the LSTM / GRU trajectory models, trained once and shared with chapter 7.

:func:`sequence_model`, :func:`sequence_model_result`, :func:`sequence_model_scores`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from interest_lib.recipes.cache import cached, code_version
from interest_lib.recipes.protocol import _PROTOCOL_MODULES, BookSetup

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

    The model is :class:`~interest_lib.models.trajectory.TrajectoryModel`, trained by
    :func:`~interest_lib.models.trajectory.fit_trajectory_model` on every prediction point of the training
    days and early-stopped on validation NDCG@10; the test day is scored with each user's whole
    history (:func:`~interest_lib.models.trajectory.trajectory_scores`). On a CPU, training and scoring run
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
    with training.one_cpu_thread(target):
        model, history = trajectory.fit_trajectory_model(
            setup.events, setup.category_ids, setup.task("train"), setup.task("valid"),
            cell=cell, seed=seed, device=target, progress=progress, **hyper,
        )
        scores = trajectory.trajectory_scores(model, setup.events, setup.category_ids,
                                              setup.task("test"), context=None, device=target)
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
    from interest_lib.models import training, trajectory

    target = training.best_device(device)
    unknown = set(hyper) - set(trajectory.TRAJECTORY_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown hyper-parameter(s) {sorted(unknown)}")
    h = {**trajectory.TRAJECTORY_DEFAULTS, **hyper}
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

    code = code_version(_PROTOCOL_MODULES + ("recurrent", "trajectory", "training"),
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
        A :class:`~interest_lib.models.trajectory.TrajectoryModel` in eval mode on ``device``, a
        :class:`~interest_lib.models.training.TrainingHistory` and ``float32 (len(setup.task("test")), C)``
        probabilities.
    """
    import torch

    from interest_lib.models import training, trajectory

    target = training.best_device(device)
    stored = sequence_model_result(setup, cell, seed=seed, device=target, **hyper)
    h = {**trajectory.TRAJECTORY_DEFAULTS, **hyper}
    model = trajectory.TrajectoryModel(setup.n_categories, n_components=int(h["n_components"]),
                                   embedding_dim=int(h["embedding_dim"]), hidden=int(h["hidden"]),
                                   cell=cell)
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
