r"""Chapter 3's recipe: the interest MLP trained on next-window targets, as a per-user score.

The pieces, in the chapter's order: :func:`weighting_forecasts` (which behaviour weighting),
:func:`mlp_inputs` (examples without looking ahead, scaled), :func:`mlp_loss`,
:func:`fit_interest_mlp` and :func:`fit_on_windows` (training), :func:`mlp_logits`;
:func:`train_interest_mlp` runs them with :data:`MLP_DEFAULTS`. :func:`fit_softmax_regression`
trains the linear model on the same inputs, the same way. :func:`next_day_scores` and
:func:`score_table` compare the MLP with the baselines; :func:`repeat_share`,
:func:`seen_popularity_share` and :func:`truth_agreement` (with :func:`frequent_categories`)
measure what the chapter explains them with. :func:`interest_mlp_scores` and
:func:`static_user_scores` serve chapter 7.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.data import features, windows
from interest_lib.data.tasks import NextCategoryTask, condition_on_change
from interest_lib.evaluation import metrics
from interest_lib.models import baselines, interest_mlp, training
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
"""Hyper-parameters of the chapter-3 interest MLP (:func:`train_interest_mlp`): the size of the
interest vector, dropout, at most ``epochs`` passes, ``n_windows`` training cut-offs, AdamW's
learning rate and weight decay, and the early-stopping patience (epochs)."""

WEIGHTINGS: dict[str, Mapping[str, float]] = {
    "all ones": features.UNIT_WEIGHTS,
    "funnel 1/2/3/4": features.BEHAVIOR_WEIGHTS,
}
"""The two behaviour weightings chapter 3 compares (:func:`weighting_forecasts`)."""


def weighting_forecasts(setup: BookSetup) -> dict[str, np.ndarray]:
    """Per-user NDCG@10 of each weighting's own-history forecast of the validation day.

    Each user's training-day behaviour row (weighted by one of :data:`WEIGHTINGS`, normalised to
    a distribution) is the forecast of their validation-day interest.

    Returns
    -------
    dict
        Weighting name → ``(n_users,)`` NDCG@10, one per user with a training history.
    """
    split = setup.split
    vocab = features.CategoryVocabulary(setup.category_ids)
    users = features.UserVocabulary.fit(split.train)
    valid_target = features.next_window_targets(
        split.history("test"), vocab, users, split.train_end, split.valid_end
    )
    out = {}
    for name, w in WEIGHTINGS.items():
        rows = features.behavior_matrix(split.train, vocab, users, weights=w).normalize_rows("l1")
        out[name] = metrics.ndcg_at_k(rows.toarray(), valid_target, 10, per_user=True)
    return out


def better_weighting(forecasts: Mapping[str, np.ndarray]) -> str:
    """The weighting of :func:`weighting_forecasts` with the higher mean NDCG@10 (ties: all ones).

    The mean is the paired one, over users with a value for both (what
    :func:`~interest_lib.evaluation.metrics.bootstrap_diff_ci` estimates).
    """
    diff = np.asarray(forecasts["funnel 1/2/3/4"], np.float64) - np.asarray(
        forecasts["all ones"], np.float64)
    return "funnel 1/2/3/4" if float(np.mean(diff[~np.isnan(diff)])) > 0 else "all ones"


@dataclass(eq=False)
class MlpInputs:
    """Chapter 3's next-window examples and their standardised inputs.

    ``n`` rows per set, ``C`` categories; the ``x_*`` are ``float32`` ``(n, C)``.

    Attributes
    ----------
    weights
        The behaviour weights of the inputs.
    ends
        The training cut-offs (Unix s).
    train_ex, fit_ex, valid_ex, test_ex
        :class:`~interest_lib.data.windows.WindowExamples`: every training example, the active
        ones (trained on), the validation day's and the test day's.
    scaler
        The fitted :class:`sklearn.preprocessing.StandardScaler`.
    x_fit, x_valid, x_test
        The scaled inputs of ``fit_ex``, ``valid_ex`` and ``test_ex``.
    """

    weights: dict[str, float]
    ends: np.ndarray
    train_ex: windows.WindowExamples
    fit_ex: windows.WindowExamples
    valid_ex: windows.WindowExamples
    test_ex: windows.WindowExamples
    scaler: Any
    x_fit: np.ndarray
    x_valid: np.ndarray
    x_test: np.ndarray


def mlp_inputs(
    setup: BookSetup, weights: Mapping[str, float], n_windows: int, scaler_on: str = "train"
) -> MlpInputs:
    """Next-window examples without looking ahead, ``log1p`` counts standardised per category.

    Training examples cut the training days at the end of each of their first ``n_windows``
    days; validation predicts the validation day from everything before it, the test the test
    day. ``scaler_on="train"`` fits the standardiser on the training examples only; ``"all"``
    (chapter 7's mistake) on training, validation and test inputs together.
    """
    from sklearn.preprocessing import StandardScaler

    split = setup.split
    vocab = features.CategoryVocabulary(setup.category_ids)
    users = features.UserVocabulary.fit(split.train)  # everyone with a training history
    ends = windows.window_ends(split.train_end, n_windows=n_windows)
    train_ex = windows.next_window_examples(split.train, vocab, users, ends, weights=weights)
    valid_ex = windows.next_window_examples(split.history("test"), vocab, users,
                                            [split.train_end], weights=weights)
    test_ex = windows.next_window_examples(setup.events, vocab, users, [split.valid_end],
                                           weights=weights)
    fit_ex = train_ex.subset(train_ex.active)  # interest targets need activity in the window
    fitted_on = fit_ex.inputs if scaler_on == "train" else np.vstack(
        [fit_ex.inputs, valid_ex.inputs, test_ex.inputs])
    scaler = StandardScaler().fit(fitted_on)
    x_fit, x_valid, x_test = (scaler.transform(ex.inputs).astype(np.float32)
                              for ex in (fit_ex, valid_ex, test_ex))
    return MlpInputs(dict(weights), ends, train_ex, fit_ex, valid_ex, test_ex, scaler,
                     x_fit, x_valid, x_test)


def mlp_loss(model: Any, batch: tuple[Any, Any]) -> Any:
    """The training loss: soft cross-entropy of the logits against the next-window distribution."""
    inputs, target = batch
    return interest_mlp.soft_cross_entropy(model(inputs), target)


def fit_on_windows(model: Any, inputs: MlpInputs, h: Mapping[str, Any], seed: int, target: Any,
                    progress: bool) -> Any:
    """Train ``model`` on :func:`mlp_inputs`; return its training history.

    :func:`mlp_loss` on mini-batches of the training examples (AdamW with ``h``'s ``lr`` and
    ``weight_decay``), NDCG@10 on the validation day after every epoch, early stopping after
    ``h["patience"]`` epochs without improvement, the best epoch's weights restored; on one CPU
    thread.
    """
    import torch

    with training.one_cpu_thread():
        x_valid = torch.tensor(inputs.x_valid, device=target)

        def valid_ndcg(model: Any) -> float:
            return metrics.ndcg_at_k(model(x_valid).cpu().numpy(), inputs.valid_ex.targets, 10)

        return training.fit(
            model, (torch.tensor(inputs.x_fit), torch.tensor(inputs.fit_ex.targets)),
            loss_fn=mlp_loss, valid_fn=valid_ndcg, epochs=h["epochs"], lr=h["lr"],
            weight_decay=h["weight_decay"], patience=h["patience"], device=target, seed=seed,
            progress=progress,
        )


def fit_interest_mlp(
    inputs: MlpInputs,
    n_categories: int,
    *,
    seed: int = 0,
    device: Any = None,
    progress: bool = False,
    **hyper: Any,
) -> tuple[Any, Any]:
    """Train an :class:`~interest_lib.models.interest_mlp.InterestMLP` on :func:`mlp_inputs`.

    :func:`mlp_loss` on mini-batches of the training examples (AdamW), NDCG@10 on the validation
    day after every epoch, early stopping; ``hyper`` overrides :data:`MLP_DEFAULTS`. Runs on one
    CPU thread.

    Returns
    -------
    tuple
        ``(model, history)``: the model with the weights of its best epoch and its
        :class:`~interest_lib.models.training.History`.
    """
    def build(h: dict[str, Any]) -> Any:
        return interest_mlp.InterestMLP(n_categories, hidden=h["hidden"], dropout=h["dropout"])

    return _fit_built(build, inputs, seed, device, progress, hyper)


def _fit_built(
    build: Any, inputs: MlpInputs, seed: int, device: Any, progress: bool, hyper: dict[str, Any]
) -> tuple[Any, Any]:
    """Check ``hyper`` against :data:`MLP_DEFAULTS`, seed, ``build(h)`` the model and fit it."""
    unknown = set(hyper) - set(MLP_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown hyper-parameter(s) {sorted(unknown)}")
    h = {**MLP_DEFAULTS, **hyper}  # n_windows is mlp_inputs' business and not used here
    target = training.best_device(device)
    training.set_seed(seed)
    model = build(h)
    history = fit_on_windows(model, inputs, h, seed, target, progress)
    return model, history


def fit_softmax_regression(
    inputs: MlpInputs,
    n_categories: int,
    *,
    seed: int = 0,
    device: Any = None,
    progress: bool = False,
    **hyper: Any,
) -> tuple[Any, Any]:
    r"""Multinomial logistic regression, :math:`\hat y = \mathrm{softmax}(Ax + a)`, trained like
    the MLP.

    The MLP without its hidden layer: one ``torch.nn.Linear(C, C)``, the same loss
    (:func:`mlp_loss`), the same inputs, AdamW settings, epochs and early stopping on the
    validation day as :func:`fit_interest_mlp` (``hyper`` overrides :data:`MLP_DEFAULTS`;
    ``hidden`` and ``dropout`` are not used). With hundreds of categories this is much faster
    than scikit-learn's ``LogisticRegression`` on the expanded rows of
    :func:`~interest_lib.data.windows.expand_soft_targets`, which minimises the same objective
    with an L2 penalty in place of the weight decay.

    Returns
    -------
    tuple
        ``(model, history)`` as :func:`fit_interest_mlp`.
    """
    from torch import nn

    return _fit_built(lambda h: nn.Linear(n_categories, n_categories), inputs, seed, device,
                      progress, hyper)


def mlp_logits(model: Any, x: ArrayLike, device: Any = None) -> np.ndarray:
    """``(n, C)`` the model's logits for scaled inputs ``x`` (one CPU thread, no gradients)."""
    import torch

    target = training.best_device(device)
    with training.one_cpu_thread(), torch.no_grad():
        return model(torch.tensor(np.asarray(x), device=target)).cpu().numpy()


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

    The weighting whose own-history forecast of the validation day is better
    (:func:`weighting_forecasts`), the inputs of :func:`mlp_inputs`, training by
    :func:`fit_interest_mlp`, softmax of :func:`mlp_logits` on the test day.

    Parameters
    ----------
    setup
        The protocol.
    seed, device, progress
        Seed of the weights and batches, the device
        (:func:`~interest_lib.models.training.best_device`), a progress bar.
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
        behaviour weights used), ``forecasts`` (of :func:`weighting_forecasts`) and ``inputs``
        (the :class:`MlpInputs`).
    """
    unknown = set(hyper) - set(MLP_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown hyper-parameter(s) {sorted(unknown)}")
    if scaler_on not in ("train", "all"):
        raise ValueError(f"scaler_on must be 'train' or 'all', got {scaler_on!r}")
    h = {**MLP_DEFAULTS, **hyper}
    target = training.best_device(device)
    forecasts = weighting_forecasts(setup)
    weights = dict(WEIGHTINGS[better_weighting(forecasts)])
    inputs = mlp_inputs(setup, weights, h["n_windows"], scaler_on)
    model, history = fit_interest_mlp(inputs, setup.n_categories, seed=seed, device=target,
                                      progress=progress, **h)
    logits = mlp_logits(model, inputs.x_test, target)
    scores = _softmax(logits)
    user_ids = inputs.test_ex.user_ids
    if store:  # so that a later interest_mlp_scores(...) with the same arguments reads it back
        params, code = _mlp_cache_key(setup, seed, target, scaler_on, h)
        cached("interest_mlp", params, lambda: {"user_ids": user_ids, "scores": scores},
               code=code, refresh=True)
    return {"model": model, "history": history, "user_ids": user_ids, "scores": scores,
            "weights": weights, "forecasts": forecasts, "inputs": inputs}


def _softmax(logits: np.ndarray) -> np.ndarray:
    import torch

    return torch.softmax(torch.as_tensor(logits), dim=-1).numpy()


def next_day_scores(
    setup: BookSetup, run: Mapping[str, Any], part: str = "test",
    others: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Scores of chapter 3's methods for the users of the validation or test examples.

    Global popularity of the training days, the user's own history up to the window (smoothed
    towards popularity), then ``others`` (e.g. logistic regression), then the MLP's logits.

    Parameters
    ----------
    setup
        The protocol.
    run
        What :func:`train_interest_mlp` returned.
    part
        ``"validation"`` or ``"test"``.
    others
        Further methods' ``(n, C)`` scores for the same users.

    Returns
    -------
    dict
        Method name → ``(n, C)`` scores, rows in the order of the part's examples.
    """
    inputs: MlpInputs = run["inputs"]
    split = setup.split
    ex, x, until = {"validation": (inputs.valid_ex, inputs.x_valid, split.train_end),
                    "test": (inputs.test_ex, inputs.x_test, split.valid_end)}[part]
    return {
        "global popularity": baselines.popularity_distribution(split.train, setup.category_ids,
                                                               ex.user_ids),
        "own history": baselines.user_history_distribution(setup.events, setup.category_ids,
                                                           ex.user_ids, end=until),
        **(others or {}),
        "MLP": mlp_logits(run["model"], x, run["history"].device),
    }


def score_table(
    scores: Mapping[str, Mapping[str, np.ndarray]],
    targets: Mapping[str, np.ndarray],
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """NDCG@10 and HR@10 with 95 % bootstrap intervals over users, per part and method.

    Parameters
    ----------
    scores
        Part → method → ``(n, C)`` scores (:func:`next_day_scores`).
    targets
        Part → ``(n, C)`` next-window distributions.
    seed
        Seed of the bootstrap.

    Returns
    -------
    tuple
        ``(table, per_user)``: the table indexed by ``(part, method)``, and ``(part, method)`` →
        ``(n,)`` per-user NDCG@10.
    """
    per_user, rows = {}, []
    for part, by_method in scores.items():
        for method, matrix in by_method.items():
            ndcg = metrics.ndcg_at_k(matrix, targets[part], 10, per_user=True)
            hit = metrics.hit_rate_at_k(matrix, targets[part], 10, per_user=True)
            per_user[part, method] = ndcg
            n_ci, h_ci = metrics.bootstrap_ci(ndcg, seed=seed), metrics.bootstrap_ci(hit, seed=seed)
            rows.append({"part": part, "method": method, "NDCG@10": n_ci.estimate,
                         "NDCG low": n_ci.low, "NDCG high": n_ci.high, "HR@10": h_ci.estimate,
                         "HR low": h_ci.low, "HR high": h_ci.high})
    return pd.DataFrame(rows).set_index(["part", "method"]), per_user


def _mlp_cache_key(setup: BookSetup, seed: int, target: Any, scaler_on: str,
                   h: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    params = {"data": setup.key, "seed": seed, "device": target.type, "scaler_on": scaler_on, **h}
    code = code_version(_PROTOCOL_MODULES + ("interest_mlp", "training", "windows"),
                        (train_interest_mlp, weighting_forecasts, better_weighting, mlp_inputs,
                         mlp_loss, fit_on_windows, fit_interest_mlp, mlp_logits,
                         _mlp_cache_key))
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




def repeat_share(examples: windows.WindowExamples) -> float:
    """Mean share of a user's next window spent in categories they had visited before it.

    Over the examples with activity in the window; "visited" means a positive input (any
    behaviour in the category before the cut-off).
    """
    active = np.asarray(examples.active, dtype=bool)
    targets = np.asarray(examples.targets[active], dtype=np.float64)
    seen = np.asarray(examples.inputs[active]) > 0
    return float(np.mean((targets * seen).sum(axis=1)))


def frequent_categories(setup: BookSetup, top: int) -> np.ndarray:
    """Positions (in ``setup.category_ids``) of the ``top`` categories with most training events."""
    vocab = features.CategoryVocabulary(setup.category_ids)
    position = vocab.index(setup.split.train["category_id"].to_numpy(), unknown="minus_one")
    counts = np.bincount(position[position >= 0], minlength=len(vocab))
    return np.argsort(-counts, kind="stable")[:top]


def truth_agreement(columns: ArrayLike, setup: BookSetup, top: int | None = None) -> float:
    """Correlation between the cosine similarity of per-category vectors and the truth's.

    ``columns`` is ``(C, d)``, one row per category of ``setup.category_ids`` (e.g. the columns
    of the MLP's first layer); the truth's vector of a category is its emission profile over the
    segments. ``top`` keeps only the pairs among the ``top`` categories with most training events
    (:func:`frequent_categories`); ``None`` uses all pairs.
    """
    truth = setup.sim.truth
    profile = truth.emission[:, truth.category_index(setup.category_ids)].T
    columns = np.asarray(columns, dtype=np.float64)
    if top is not None:
        keep = frequent_categories(setup, top)
        columns, profile = columns[keep], profile[keep]
    return windows.similarity_agreement(windows.cosine_similarity_matrix(columns),
                                        windows.cosine_similarity_matrix(profile))


def seen_popularity_share(setup: BookSetup, examples: windows.WindowExamples) -> float:
    """What :func:`repeat_share` would be if users followed the crowd: the mean training
    popularity share of the categories each active user had visited before the window."""
    active = np.asarray(examples.active, dtype=bool)
    popularity = baselines.popularity_distribution(setup.split.train, setup.category_ids,
                                                   examples.user_ids[active])
    seen = np.asarray(examples.inputs[active]) > 0
    return float(np.mean((np.asarray(popularity, dtype=np.float64) * seen).sum(axis=1)))
