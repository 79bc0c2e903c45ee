r"""Chapter 5's recipe: the cold-start users of the web and the transfer methods' scores.

:func:`cold_start_case`, :func:`cold_start_mlp_scores`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.data.tasks import NextCategoryTask
from interest_lib.evaluation import metrics
from interest_lib.models import baselines
from interest_lib.recipes.cache import cached, code_version, fingerprint
from interest_lib.recipes.protocol import _PROTOCOL_MODULES, BookSetup

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
        :attr:`~interest_lib.data.tasks.NextCategoryTask.rows` holds).
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

        :func:`interest_lib.models.transfer.event_report`: every target event is a single-target
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
        from interest_lib.models import transfer

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
    from interest_lib.data import features
    from interest_lib.models import transfer

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

    The same library calls as chapter 5: an :class:`~interest_lib.models.interest_mlp.InterestMLP` learns
    the validation day's app interest of the app users active on the training days and the
    validation day from their training-day app events (``log1p`` counts of
    :func:`~interest_lib.data.features.behavior_matrix`, soft cross-entropy, ``epochs`` epochs,
    batches of 256, learning rate 3e-3, no early stopping); its output bias then adds the log
    exposure ratio of the training days (:func:`~interest_lib.models.transfer.with_output_bias`), and it
    reads every event of ``users`` before the test day. Training runs on one CPU thread; the
    scores are cached (:func:`cached`), so a chapter pays the few seconds of training once.

    Parameters
    ----------
    setup
        The protocol (a simulation with the ``app`` and ``web`` platforms).
    users
        ``(U,)`` the users to score, e.g. :attr:`ColdStartCase.users`.
    seed, device
        Seed of the weights and batches; the device (:func:`interest_lib.models.training.best_device`).
    hidden, epochs
        Chapter 5's interest size and epochs.

    Returns
    -------
    numpy.ndarray
        ``(U, C)`` float64 softmax probabilities, one row per user of ``users``.
    """
    from interest_lib.models import training

    target = training.best_device(device)
    users = np.asarray(users)
    params = {"data": setup.key, "users": fingerprint(users), "seed": seed,
              "device": target.type, "hidden": hidden, "epochs": epochs}

    def compute() -> dict[str, np.ndarray]:
        import torch

        from interest_lib.data import features
        from interest_lib.models import interest_mlp, transfer

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
            return interest_mlp.soft_cross_entropy(net(inputs), goal)

        x_pre = tensor(features.behavior_matrix(app_train, vocab, pre_users).log1p().matrix)
        y_pre = tensor(features.next_window_targets(app_valid, vocab, pre_users, None, None))
        x_cold = tensor(features.behavior_matrix(split.history("test"), vocab, users)
                        .log1p().matrix)
        with training.one_cpu_thread():
            training.set_seed(seed)
            pretrained = interest_mlp.InterestMLP(setup.n_categories, hidden=hidden)
            training.fit(pretrained, (x_pre, y_pre), loss_fn=loss_fn, epochs=epochs, batch_size=256,
                      lr=3e-3, patience=None, device=target, seed=seed, progress=False)
            corrected = transfer.with_output_bias(pretrained, np.log(ratio_train))
            corrected.eval()
            with torch.no_grad():
                logits = corrected(x_cold.to(next(corrected.parameters()).device))
            scores = torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64)
        return {"scores": scores}

    code = code_version(_PROTOCOL_MODULES + ("interest_mlp", "training", "transfer", "baselines"),
                        (cold_start_mlp_scores,))
    return cached("cold_start_mlp", params, compute, code=code)["scores"]
