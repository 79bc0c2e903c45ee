r"""Chapter 3's recipe: the interest MLP trained on next-window targets, as a per-user score.

:func:`train_interest_mlp`, :func:`interest_mlp_scores`, :func:`static_user_scores`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from interest_lib.data.tasks import NextCategoryTask, condition_on_change
from interest_lib.evaluation import metrics
from interest_lib.recipes.cache import cached, code_version
from interest_lib.recipes.protocol import _PROTOCOL_MODULES, BookSetup

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

    Inputs are :func:`~interest_lib.data.windows.next_window_examples` behaviour vectors
    (``log1p``, then standardised) with the behaviour weighting that forecasts the validation day
    better (funnel weights or all ones, as chapter 3 chooses); targets the next day's category
    distribution; loss :func:`~interest_lib.models.interest_mlp.soft_cross_entropy`; early stopping on the
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

    from interest_lib.data import features, windows
    from interest_lib.models import interest_mlp, training

    unknown = set(hyper) - set(MLP_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown hyper-parameter(s) {sorted(unknown)}")
    if scaler_on not in ("train", "all"):
        raise ValueError(f"scaler_on must be 'train' or 'all', got {scaler_on!r}")
    h = {**MLP_DEFAULTS, **hyper}
    target = training.best_device(device)
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

    ends = windows.window_ends(split.train_end, n_windows=h["n_windows"])
    train_ex = windows.next_window_examples(split.train, vocab, users, ends, weights=weights)
    valid_ex = windows.next_window_examples(
        split.history("test"), vocab, users, [split.train_end], weights=weights
    )
    test_ex = windows.next_window_examples(
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

    with training.one_cpu_thread():
        x_valid_t = torch.tensor(x_valid, device=target)

        def loss_fn(net, batch):
            inputs, goal = batch
            return interest_mlp.soft_cross_entropy(net(inputs), goal)

        def valid_fn(net):
            return metrics.ndcg_at_k(net(x_valid_t).cpu().numpy(), valid_ex.targets, 10)

        training.set_seed(seed)
        model = interest_mlp.InterestMLP(setup.n_categories, hidden=h["hidden"], dropout=h["dropout"])
        history = training.fit(
            model, (torch.tensor(x_fit), torch.tensor(fit_ex.targets)), loss_fn=loss_fn,
            valid_fn=valid_fn, epochs=h["epochs"], lr=h["lr"], weight_decay=h["weight_decay"],
            patience=h["patience"], device=target, seed=seed, progress=progress,
        )
        with torch.no_grad():
            logits = model(torch.tensor(x_test, device=target))
            scores = torch.softmax(logits, dim=-1).cpu().numpy()
    if store:  # so that a later interest_mlp_scores(...) with the same arguments reads it back
        params, code = _mlp_cache_key(setup, seed, target, scaler_on, h)
        cached("interest_mlp", params, lambda: {"user_ids": test_ex.user_ids, "scores": scores},
               code=code, refresh=True)
    return {"model": model, "history": history, "user_ids": test_ex.user_ids, "scores": scores,
            "weights": weights}


def _mlp_cache_key(setup: BookSetup, seed: int, target: Any, scaler_on: str,
                   h: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    params = {"data": setup.key, "seed": seed, "device": target.type, "scaler_on": scaler_on, **h}
    code = code_version(_PROTOCOL_MODULES + ("interest_mlp", "training", "windows"),
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
    from interest_lib.models import training

    target = training.best_device(device)
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


