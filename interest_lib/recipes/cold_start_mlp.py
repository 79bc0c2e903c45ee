r"""Chapter 5's method (f): the interest MLP pretrained on the app, fine-tuned on the web.

:func:`pretrain_app_mlp` trains the network on app users and returns it with its
exposure-corrected copy (the correction as an output bias); :func:`learning_curve` fine-tunes the
copy on ``n`` web users and trains a fresh network on the same users, scoring both on chapter 5's
cold-start users (:class:`~interest_lib.recipes.cold_start.ColdStartCase`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.data import features
from interest_lib.models import baselines, transfer
from interest_lib.recipes.protocol import BookSetup

if TYPE_CHECKING:
    from interest_lib.recipes.cold_start import ColdStartCase


def _tensor(matrix: Any) -> Any:
    import torch

    dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    return torch.as_tensor(dense, dtype=torch.float32)


def mlp_loss(model: Any, batch: tuple[Any, Any]) -> Any:
    """Soft cross-entropy :math:`-\\sum_c y_c \\log \\operatorname{softmax}(z)_c` of a batch."""
    from interest_lib.models import interest_mlp

    x, y = batch
    return interest_mlp.soft_cross_entropy(model(x), y)


def mlp_predict(model: Any, x: Any) -> np.ndarray:
    """``(n, C)`` float32 softmax of the model's logits for the behaviour tensor ``x``."""
    import torch

    model.eval()
    with torch.no_grad():
        logits = model(x.to(next(model.parameters()).device))
    return torch.softmax(logits, dim=1).cpu().numpy()


def cold_inputs(setup: BookSetup, users: ArrayLike) -> Any:
    """``(U, C)`` float32 tensor: ``log1p`` of every event of ``users`` before the test day."""
    vocab = features.CategoryVocabulary(setup.category_ids)
    return _tensor(features.behavior_matrix(setup.split.history("test"), vocab, np.asarray(users))
                   .log1p().matrix)


def pretrain_app_mlp(
    setup: BookSetup, *, seed: int = 0, device: Any = None, hidden: int = 64, epochs: int = 30,
) -> tuple[Any, Any, int]:
    """Method (f) at ``n = 0``: the interest MLP pretrained on the app, and its corrected copy.

    An :class:`~interest_lib.models.interest_mlp.InterestMLP` learns the validation day's app
    interest of the app users active on the training days and the validation day from their
    training-day app events (``log1p`` counts, :func:`mlp_loss`, ``epochs`` epochs, batches of
    256, learning rate 3e-3, no early stopping). The copy adds the log exposure ratio of the
    training days to its output bias (:func:`~interest_lib.models.transfer.with_output_bias`):
    the exposure correction, as a network that has seen no web user.

    Returns
    -------
    tuple
        ``(pretrained, corrected, n_users)``: the two networks and the number of app users
        pretrained on.
    """
    from interest_lib.models import interest_mlp, training

    split, target = setup.split, training.best_device(device)
    vocab = features.CategoryVocabulary(setup.category_ids)
    app_train = split.train[split.train["platform"] == "app"]
    web_train = split.train[split.train["platform"] == "web"]
    app_valid = split.valid[split.valid["platform"] == "app"]
    ratio_train = transfer.exposure_ratio(baselines.popularity(app_train, vocab.ids),
                                          baselines.popularity(web_train, vocab.ids))
    pre_users = np.intersect1d(app_train["user_id"].unique(), app_valid["user_id"].unique())
    x_pre = _tensor(features.behavior_matrix(app_train, vocab, pre_users).log1p().matrix)
    y_pre = _tensor(features.next_window_targets(app_valid, vocab, pre_users, None, None))
    with training.one_cpu_thread(target):
        training.set_seed(seed)
        pretrained = interest_mlp.InterestMLP(setup.n_categories, hidden=hidden)
        training.fit(pretrained, (x_pre, y_pre), loss_fn=mlp_loss, epochs=epochs, batch_size=256,
                     lr=3e-3, patience=None, device=target, seed=seed, progress=False)
    # the exposure correction as a bias: softmax(z + log r) = correct_exposure(softmax(z), r)
    corrected = transfer.with_output_bias(pretrained, np.log(ratio_train))  # a copy
    return pretrained, corrected, len(pre_users)


def learning_curve(
    setup: BookSetup,
    case: ColdStartCase,
    corrected: Any,
    *,
    train_sizes: Sequence[int] = (25, 50, 100, 200, 400),
    n_repeats: int = 3,
    min_web_events: int = 10,
    hidden: int = 64,
    epochs: int = 30,
    seed: int = 0,
    device: Any = None,
) -> tuple[dict[tuple[str, int], pd.DataFrame], int]:
    """Fine-tuned against from scratch, on ``n`` web users, scored on the cold-start users.

    The pool: web users with at least ``min_web_events`` web events on the training days and a
    web event on the validation day (input: all their training-day events, ``log1p``; target:
    their validation-day web events). For every ``n`` and repeat ``r``, ``n`` users drawn with
    ``numpy.random.default_rng([seed, n, r])``; ``corrected`` is fine-tuned on them
    (:func:`~interest_lib.models.transfer.fine_tune`, learning rate 3e-4) and a fresh network
    trained from scratch (3e-3), both ``epochs`` epochs in batches of 64, seed ``seed + r``.

    Returns
    -------
    tuple
        ``(curve, n_pool)``: ``("fine-tuned" | "from scratch", n)`` → per-user report
        (:meth:`ColdStartCase.report`) averaged over the repeats; the size of the pool.
    """
    import torch

    from interest_lib.models import interest_mlp, training

    split, target = setup.split, training.best_device(device)
    vocab = features.CategoryVocabulary(setup.category_ids)
    web_train = split.train[split.train["platform"] == "web"]
    web_valid = split.valid[split.valid["platform"] == "web"]
    n_web_train = web_train.groupby("user_id").size()
    rich = n_web_train.index[n_web_train >= min_web_events].to_numpy()
    pool = np.intersect1d(rich, web_valid["user_id"].unique())  # rich web users with a target
    x_pool = _tensor(features.behavior_matrix(split.train, vocab, pool).log1p().matrix)
    y_pool = _tensor(features.next_window_targets(web_valid, vocab, pool, None, None))
    x_cold = cold_inputs(setup, case.users)
    curve = {}
    with training.one_cpu_thread(target):
        for n in train_sizes:
            runs: dict[str, list[pd.DataFrame]] = {"fine-tuned": [], "from scratch": []}
            for repeat in range(n_repeats):
                rng = np.random.default_rng([seed, n, repeat])
                rows = torch.as_tensor(rng.choice(len(pool), size=n, replace=False))
                data = (x_pool[rows], y_pool[rows])
                settings = dict(loss_fn=mlp_loss, epochs=epochs, batch_size=64, patience=None,
                                device=target, seed=seed + repeat, progress=False)
                tuned, _ = transfer.fine_tune(corrected, data, lr=3e-4, **settings)
                training.set_seed(seed + repeat)
                scratch = interest_mlp.InterestMLP(setup.n_categories, hidden=hidden)
                training.fit(scratch, data, lr=3e-3, **settings)
                runs["fine-tuned"].append(case.report(mlp_predict(tuned, x_cold)))
                runs["from scratch"].append(case.report(mlp_predict(scratch, x_cold)))
            for name, reports in runs.items():
                curve[(name, n)] = sum(reports) / n_repeats
    return curve, len(pool)
