r"""The errata appendix's recipe: the data and the small fits behind its demonstrations.

The appendix shows each error of the source articles and its correction in a few visible lines;
what those lines need but a reader need not read lives here:

- :func:`purchase_data`, :func:`purchase_halves` — behaviour on the training days and a purchase
  on the validation day;
- :func:`category_pairs`, :func:`train_pair_model` — consecutive category pairs and a tiny model
  trained on a chosen target;
- :func:`popular_items` — the most viewed training items of some categories;
- :func:`copy_check` — the same tiny model trained on the input and on the next category, beside
  the repeat-last rule;
- :func:`sampled_hit_rates`, :func:`protocol_comparison` — one score under a full ranking and
  among randomly sampled negatives;
- :func:`confusion_scores` — accuracy, precision, recall and F1 of one confusion, and the "F1" an
  article computes from accuracy instead of precision;
- :func:`early_stopping_leak` — what choosing the stopping epoch on the test set reports when there
  is nothing to learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.data import features
from interest_lib.data.features import CategoryVocabulary
from interest_lib.data.split import TimeSplit
from interest_lib.evaluation import metrics


def purchase_data(
    split: TimeSplit, vocab: CategoryVocabulary, user_ids: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels of a purchase-intent model: will the user buy on the validation day?

    Parameters
    ----------
    split
        The time split.
    vocab
        The ``C`` categories.
    user_ids
        ``(U,)`` the users, one row each.

    Returns
    -------
    (X, y)
        ``(U, C)`` ``log(1 + weighted count)`` of the training days; ``(U,)`` 1 when the user buys
        on the validation day.
    """
    X = features.behavior_matrix(split.train, vocab, users=user_ids).matrix.toarray()
    y = features.purchase_labels(split.valid, user_ids, start=split.train_end, end=split.valid_end)
    return np.log1p(X), y


def purchase_halves(
    split: TimeSplit, vocab: CategoryVocabulary, users: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`purchase_data` of the first half of ``users`` (to fit) and of the second (to test).

    Returns
    -------
    (X_fit, y_fit, X_test, y_test)
        As in :func:`purchase_data`, for ``users[:len(users) // 2]`` and the rest.
    """
    users = np.asarray(users)
    half = len(users) // 2
    return (*purchase_data(split, vocab, users[:half]), *purchase_data(split, vocab, users[half:]))


def category_pairs(
    events: pd.DataFrame, vocab: CategoryVocabulary, split: TimeSplit, rng: np.random.Generator,
    max_train: int = 50_000,
) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Consecutive (category, next category) pairs of the same user, both in the vocabulary.

    Parameters
    ----------
    events
        The log, sorted by user then time.
    vocab
        The ``C`` categories.
    split
        The time split: training pairs end before ``train_end``, test pairs on the test day.
    rng
        Draws the sample of training pairs.
    max_train
        Size of that sample (a sample is plenty for a tiny model).

    Returns
    -------
    (x_train, y_train, x_test, y_test)
        Category indices: ``(n,)`` torch tensors of the sampled training pairs, ``(m,)`` arrays
        of every test pair.
    """
    import torch

    cat = vocab.index(events["category_id"].to_numpy(), unknown="minus_one")
    same_user = events["user_id"].to_numpy()[1:] == events["user_id"].to_numpy()[:-1]
    t_next = events["timestamp"].to_numpy()[1:]
    pairs = same_user & (cat[:-1] >= 0) & (cat[1:] >= 0)
    train_pairs = pairs & (t_next < split.train_end)
    test_pairs = pairs & (t_next >= split.valid_end)
    sample = rng.choice(np.flatnonzero(train_pairs), size=min(max_train, int(train_pairs.sum())),
                        replace=False)
    return (torch.from_numpy(cat[:-1][sample]), torch.from_numpy(cat[1:][sample]),
            cat[:-1][test_pairs], cat[1:][test_pairs])


def _fit_pair_model(
    x_train: Any, target: Any, x_test: np.ndarray, n_categories: int, seed: int, epochs: int,
    lr: float,
) -> tuple[float, np.ndarray]:
    """Fit the tiny model of :func:`train_pair_model`; return its final loss and ``(m, C)`` test
    scores."""
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Embedding(n_categories, 16),
                                torch.nn.Linear(16, n_categories))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x_train), target)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        scores = model(torch.from_numpy(x_test)).numpy()
    return float(loss.detach()), scores


def train_pair_model(
    x_train: Any, target: Any, x_test: np.ndarray, y_test: np.ndarray, n_categories: int,
    seed: int = 0, epochs: int = 40, lr: float = 0.05,
) -> tuple[float, float]:
    """Train a category embedding and a linear layer to output ``target`` from ``x_train``.

    Full-batch Adam with the cross-entropy loss, then scored on predicting ``y_test`` from
    ``x_test``.

    Parameters
    ----------
    x_train, target
        ``(n,)`` torch tensors of category indices: the input and what the loss compares with.
    x_test, y_test
        ``(m,)`` category indices of the test pairs.
    n_categories
        ``C``.
    seed
        Seed of the initial weights.
    epochs, lr
        Full-batch steps and the learning rate.

    Returns
    -------
    (loss, ndcg)
        The final training loss and the test NDCG@10 of the next category.
    """
    loss, scores = _fit_pair_model(x_train, target, x_test, n_categories, seed, epochs, lr)
    return loss, metrics.ndcg_at_k(scores, y_test, k=10)


def copy_check(
    x_train: Any, y_train: Any, x_test: np.ndarray, y_test: np.ndarray, n_categories: int,
    seed: int = 0, epochs: int = 40, lr: float = 0.05,
) -> pd.DataFrame:
    """The tiny model of :func:`train_pair_model` trained on the input and on the next category,
    beside the repeat-last rule, on the same test pairs.

    The repeat-last rule ranks the current category first and the others by their popularity as
    next categories in the training pairs.

    Parameters
    ----------
    x_train, y_train
        ``(n,)`` torch tensors: a category and the next one (training pairs).
    x_test, y_test
        ``(m,)`` category indices of the test pairs.
    n_categories, seed, epochs, lr
        As in :func:`train_pair_model`.

    Returns
    -------
    pandas.DataFrame
        Three rows (loss over the input, the repeat-last rule, loss over the next category); columns
        the final training loss (NaN for the rule), the share of test pairs whose first choice is
        the input category (HR@1 of ``x_test``) and the test NDCG@10 of the next category.
    """
    loss_in, scores_in = _fit_pair_model(x_train, x_train, x_test, n_categories, seed, epochs, lr)
    loss_next, scores_next = _fit_pair_model(x_train, y_train, x_test, n_categories, seed, epochs,
                                             lr)
    popularity = np.bincount(np.asarray(y_train), minlength=n_categories)
    repeat = np.tile(popularity / (popularity.sum() + 1.0), (len(x_test), 1))
    repeat[np.arange(len(x_test)), x_test] = 2.0  # the current category first
    rows = {"loss over the input x_t (article)": (loss_in, scores_in),
            "repeat-last rule (no training)": (np.nan, repeat),
            "loss over the target y_t = x_(t+1)": (loss_next, scores_next)}
    return pd.DataFrame(
        {"final training loss": [loss for loss, _ in rows.values()],
         "top choice = the input (HR@1 of x_t)": [metrics.hit_rate_at_k(s, x_test, k=1)
                                                  for _, s in rows.values()],
         "test NDCG@10, next category": [metrics.ndcg_at_k(s, y_test, k=10)
                                         for _, s in rows.values()]},
        index=list(rows))


def popular_items(events: pd.DataFrame, category_ids: ArrayLike, per_category: int = 2) -> pd.DataFrame:
    """The ``per_category`` most viewed items of each of ``category_ids`` in ``events``.

    Returns
    -------
    pandas.DataFrame
        Columns ``category_id``, ``item_id``, ``views`` (events of the item), by category, most
        viewed first.
    """
    return (events[events["category_id"].isin(category_ids)]
            .groupby(["category_id", "item_id"]).size().rename("views").reset_index()
            .sort_values(["category_id", "views"], ascending=[True, False])
            .groupby("category_id").head(per_category))


def sampled_hit_rates(
    scores: np.ndarray, target: np.ndarray, n_negatives: int, rng: np.random.Generator
) -> tuple[float, float]:
    """HR@1 and HR@10 of the target among ``n_negatives`` randomly drawn other categories.

    ``n_negatives + 1`` distinct categories are drawn per row; the target, when drawn, is not
    counted as its own negative.

    Parameters
    ----------
    scores
        ``(n, C)`` scores.
    target
        ``(n,)`` target category indices.
    n_negatives
        Negatives per row.
    rng
        Draws the negatives.
    """
    negatives = np.argsort(rng.random((len(target), scores.shape[1])), axis=1)[:, :n_negatives + 1]
    target_score = scores[np.arange(len(target)), target]
    neg_scores = np.take_along_axis(scores, negatives, axis=1)
    neg_scores[negatives == target[:, None]] = -np.inf  # not the target's own negative
    hr1 = float((target_score[:, None] > neg_scores).all(axis=1).mean())
    hr10 = float(((target_score[:, None] <= neg_scores).sum(axis=1) < 10).mean())
    return hr1, hr10


def protocol_comparison(
    scores: np.ndarray, target: np.ndarray, n_negatives: int, rng: np.random.Generator
) -> pd.Series:
    """HR@1 and HR@10 of one score under a full ranking of all categories and among
    ``n_negatives`` sampled negatives, as papers report them. The parameters are those of
    :func:`sampled_hit_rates`.

    Returns
    -------
    pandas.Series
        Four hit rates, rounded to three decimals.
    """
    full_hr10 = metrics.hit_rate_at_k(scores, target, k=10)
    full_hr1 = metrics.hit_rate_at_k(scores, target, k=1)
    sampled_hr1, sampled_hr10 = sampled_hit_rates(scores, target, n_negatives, rng)
    return pd.Series({
        "HR@1, full ranking of all categories": full_hr1,
        "HR@10, full ranking": full_hr10,
        f"HR@1 among {n_negatives} sampled negatives": sampled_hr1,
        f"HR@10 among {n_negatives} sampled negatives": sampled_hr10,
    }, name="global popularity").round(3)


def confusion_scores(tp: int, fp: int, fn: int, tn: int) -> pd.Series:
    """Accuracy, precision, recall and F1 of one binary confusion, and the article's "F1".

    F1 is the harmonic mean of precision (精确率) and recall; the harmonic mean of accuracy
    (准确率) and recall is what an article calls F1 by mistake.

    Parameters
    ----------
    tp, fp, fn, tn
        Counts of true positives, false positives, false negatives and true negatives.

    Returns
    -------
    pandas.Series
        ``accuracy``, ``precision``, ``recall``, ``F1 (precision, recall)`` and
        ``"F1" (accuracy, recall)``.
    """
    accuracy = (tp + tn) / (tp + fp + fn + tn)
    precision, recall = tp / (tp + fp), tp / (tp + fn)

    def harmonic(a: float, b: float) -> float:
        return 2 * a * b / (a + b)

    return pd.Series({"accuracy": accuracy, "precision": precision, "recall": recall,
                      "F1 (precision, recall)": harmonic(precision, recall),
                      '"F1" (accuracy, recall)': harmonic(accuracy, recall)})


def early_stopping_leak(
    n: int = 100, n_features: int = 50, epochs: int = 30, repeats: int = 40, lr: float = 0.5,
    seed: int = 0,
) -> pd.Series:
    """Accuracy reported when the stopping epoch is chosen on the test set, on labels that are
    coin flips.

    Each repeat draws training, validation and test sets of ``n`` rows with standard normal
    features and labels independent of them, so every model's true accuracy is 0.5. A logistic
    regression is trained by full-batch gradient descent; after every epoch its accuracy is
    measured on the three sets. The stopping epoch is chosen either on the validation set (and
    the test accuracy reported) or on the test set itself, as ``validation_data=(X_test,
    y_test)`` does.

    Parameters
    ----------
    n
        Rows of each of the three sets.
    n_features
        Features per row.
    epochs
        Gradient steps; one accuracy per step and set.
    repeats
        Independent repeats averaged over.
    lr
        Learning rate of the gradient steps.
    seed
        Seed of the draws.

    Returns
    -------
    pandas.Series
        Mean accuracy over the repeats: on the training rows (at the last epoch), on the test set
        at the epoch chosen on validation, and on the test set at the epoch chosen on the test set.
    """
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(repeats):
        X = rng.standard_normal((3, n, n_features))
        y = rng.integers(0, 2, size=(3, n))
        w = np.zeros(n_features)
        accuracy = np.empty((epochs, 3))
        for epoch in range(epochs):
            p = 1 / (1 + np.exp(-X[0] @ w))
            w -= lr * X[0].T @ (p - y[0]) / n
            accuracy[epoch] = ((X @ w > 0) == y).mean(axis=1)
        results.append((accuracy[-1, 0], accuracy[accuracy[:, 1].argmax(), 2],
                        accuracy[:, 2].max()))
    mean = np.mean(results, axis=0)
    return pd.Series({"training rows": mean[0], "test, epoch chosen on validation": mean[1],
                      "test, epoch chosen on the test set": mean[2]}, name="mean accuracy")
