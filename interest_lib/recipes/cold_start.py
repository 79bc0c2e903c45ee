r"""Chapter 5's recipe: the cold-start users of the web and the transfer methods' scores.

The pieces, in the chapter's order: :func:`user_groups` and :func:`evaluation_set` (who is
a cold-start user, what is predicted),
:func:`platform_history` (the two platforms' past events, popularities, exposure ratio),
:func:`validate_knobs` (``k`` and the prior strength on the validation day),
:func:`transfer_scores` (methods (c1)–(e)); :func:`cold_start_case` runs them. The networks of
method (f) are in :mod:`interest_lib.recipes.cold_start_mlp`; :func:`cold_start_mlp_scores`
caches the pretrained one's scores for chapter 7. The comparison: :func:`all_methods`, :func:`method_table`,
:func:`best_transfer` (applied to the validation day's table of
:mod:`interest_lib.recipes.cold_start_choice`), :func:`ceiling_table`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from interest_lib.data import features
from interest_lib.data.tasks import NextCategoryTask
from interest_lib.evaluation import metrics
from interest_lib.models import baselines, transfer
from interest_lib.recipes.cache import cached, code_version, fingerprint
from interest_lib.recipes.cold_start_mlp import (
    _tensor,
    cold_inputs,
    mlp_loss,
    mlp_predict,
    pretrain_app_mlp,
)
from interest_lib.recipes.protocol import _PROTOCOL_MODULES, BookSetup

# --------------------------------------------------------------------------------------------
# cold-start users of the web: chapter 5's transfer methods
# --------------------------------------------------------------------------------------------

COLD_START_K_GRID: tuple[int, ...] = (10, 25, 50, 100, 200, 400, 800, 1600)
"""Neighbour counts of chapter 5's kNN transfer, chosen among on the validation day."""

COLD_START_STRENGTH_GRID: tuple[float, ...] = (5, 20, 50, 100, 200, 500)
"""Prior strengths (pseudo-events) of chapter 5's shrinkage, chosen among on the validation day."""

COLD_GROUPS: tuple[str, ...] = ("both_cold", "web_cold")
"""The simulator's groups of cold-start users of the web."""

AS_IS, CORRECTED = "as is", "exposure-corrected"
"""The two versions of a method that predicts app interest."""

_SUFFIX = ", " + CORRECTED


@dataclass(eq=False)
class PlatformHistory:
    """The two platforms' events before the test day, and what the transfer methods count on them.

    ``U`` evaluated users, ``A`` app users with a history, ``C`` categories.

    Attributes
    ----------
    vocab
        The training days' category vocabulary.
    history, app_history, web_history
        Every event before the test day; the app's; the web's.
    app_pop, web_pop
        ``(C,)`` category shares of the platforms' past events.
    ratio
        ``(C,)`` exposure ratio web / app (:func:`~interest_lib.models.transfer.exposure_ratio`).
    app_reference
        ``(A, C)`` unit-weight behaviour matrix of every app user.
    app_interest
        ``(A, C)`` its rows normalised to category shares.
    app_counts, web_counts
        ``(U, C)`` the evaluated users' unit-weight app and web counts.
    """

    vocab: features.CategoryVocabulary
    history: pd.DataFrame
    app_history: pd.DataFrame
    web_history: pd.DataFrame
    app_pop: np.ndarray
    web_pop: np.ndarray
    ratio: np.ndarray
    app_reference: Any
    app_interest: Any
    app_counts: Any
    web_counts: Any


@dataclass(eq=False)
class KnobValidation:
    """Chapter 5's rehearsal of the cold start on the validation day (:func:`validate_knobs`).

    Attributes
    ----------
    strength, k
        HR@10 of the corrected own app profile per prior strength, of the corrected kNN per
        neighbour count (indexed by the value tried).
    popularity
        HR@10 of web popularity (training days).
    n_users, n_app_users
        Warm users evaluated; app users the neighbours are drawn from.
    """

    strength: pd.Series
    k: pd.Series
    popularity: float
    n_users: int
    n_app_users: int


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
        Method name → ``(U, C)`` static score, one row per user, fixed for the test day; the
        methods that predict app interest in their exposure-corrected version.
    k, strength
        The neighbour count and prior strength used (validated unless given).
    uncorrected
        Name of a method that predicts app interest (without the ``", exposure-corrected"`` of
        its key in ``scores``) → its ``(U, C)`` app-interest prediction, as is.
    data
        The :class:`PlatformHistory` the methods were computed from.
    validation
        The :class:`KnobValidation` that chose ``k`` and ``strength``.
    """

    users: np.ndarray
    is_both_cold: np.ndarray
    event_user: np.ndarray
    event_target: np.ndarray
    event_row: np.ndarray
    scores: dict[str, np.ndarray]
    k: int
    strength: float
    uncorrected: dict[str, np.ndarray] = field(default_factory=dict)
    data: PlatformHistory | None = None
    validation: KnobValidation | None = None

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

    def versions(self) -> dict[tuple[str, str], np.ndarray]:
        """``(method, version)`` → ``(U, C)`` score of every method but the truth, in order.

        Methods that predict app interest come twice, ``"as is"`` and ``"exposure-corrected"``;
        the others (web popularity, own web events) once, ``"as is"``.
        """
        out: dict[tuple[str, str], np.ndarray] = {}
        for name, value in self.scores.items():
            if name.startswith("truth"):
                continue
            base = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else name
            if base in self.uncorrected:
                out[base, AS_IS] = self.uncorrected[base]
                out[base, CORRECTED] = value
            else:
                out[name, AS_IS] = value
        return out


def user_groups(setup: BookSetup) -> pd.DataFrame:
    """The simulator's user groups: people, their median past events per platform, test-day web.

    Returns
    -------
    pandas.DataFrame
        One row per group of :data:`~interest_lib.data.simulation.USER_GROUPS`: the number of
        people, the median number of web and of app events before the test day (of those with
        any) and the number of people with web events on the test day.
    """
    from interest_lib.data.simulation import USER_GROUPS

    truth, split = setup.sim.truth, setup.split
    history = split.history("test")
    group_of = pd.Series(truth.user_group, index=truth.user_ids)
    web_history = history[history["platform"] == "web"]
    app_history = history[history["platform"] == "app"]
    test_web = split.test[split.test["platform"] == "web"]
    return pd.DataFrame({
        "people": group_of.value_counts(),
        "median web events before the test day":
            web_history.groupby("user_id").size().groupby(group_of).median(),
        "median app events before the test day":
            app_history.groupby("user_id").size().groupby(group_of).median(),
        "people with web events on the test day":
            test_web.groupby("user_id").size().groupby(group_of).size(),
    }).reindex(USER_GROUPS).fillna(0).astype(int)


def evaluation_set(
    setup: BookSetup, vocab: features.CategoryVocabulary
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Who is predicted for, and the targets: ``(users, is_both_cold, event_user, event_target,
    event_row)`` of :class:`ColdStartCase`.

    The cold-start users of the web (:data:`COLD_GROUPS`) with a web event on the test day; each
    of their test-day web events is a target. The test day is the simulation's cold-start day,
    or an earlier day (the rehearsal of
    :func:`~interest_lib.recipes.cold_start_choice.rehearsal_setup`): these people have at most
    three web events before the cold-start day, so before any earlier day too.
    """
    truth, split = setup.sim.truth, setup.split
    if split.valid_end > truth.cold_start_cutoff:
        raise RuntimeError("the test day starts after the simulation's cold-start day")
    test_web = split.test[split.test["platform"] == "web"]
    cold_ids = truth.user_ids[np.isin(truth.user_group, COLD_GROUPS)]
    target_events = test_web[test_web["user_id"].isin(cold_ids)]
    users = np.sort(target_events["user_id"].unique())
    event_user = np.searchsorted(users, target_events["user_id"].to_numpy())
    event_target = vocab.index(target_events["category_id"].to_numpy(), unknown="minus_one")
    event_row = setup.events.index.get_indexer(target_events.index)
    if np.any(event_row < 0):
        raise RuntimeError("target events not found in setup.events")
    group_of = pd.Series(truth.user_group, index=truth.user_ids)
    is_both_cold = group_of.reindex(users).to_numpy() == "both_cold"
    return (users, is_both_cold, event_user.astype(np.int64),
            np.asarray(event_target, dtype=np.int64), event_row.astype(np.int64))


def platform_history(setup: BookSetup, users: ArrayLike) -> PlatformHistory:
    """Both platforms' events before the test day, their popularities, ratio and profiles.

    Popularities and profiles count every event before the test day (``split.history("test")``)
    with unit weights; ``users`` are the people to predict for.
    """
    split = setup.split
    vocab = features.CategoryVocabulary.fit(split.train)
    if not np.array_equal(vocab.ids, setup.category_ids):
        raise RuntimeError("the setup's vocabulary is not the training days' vocabulary")
    history = split.history("test")
    web_history = history[history["platform"] == "web"]
    app_history = history[history["platform"] == "app"]
    app_pop = baselines.popularity(app_history, vocab.ids)
    web_pop = baselines.popularity(web_history, vocab.ids)
    unit = features.UNIT_WEIGHTS
    app_users = np.sort(app_history["user_id"].unique())
    app_reference = features.behavior_matrix(app_history, vocab, app_users, weights=unit)
    return PlatformHistory(
        vocab, history, app_history, web_history, app_pop, web_pop,
        transfer.exposure_ratio(app_pop, web_pop), app_reference,
        features.normalize_rows(app_reference.matrix),  # each app user's category shares
        features.behavior_matrix(app_history, vocab, users, weights=unit),
        features.behavior_matrix(web_history, vocab, users, weights=unit),
    )


def validate_knobs(
    setup: BookSetup,
    k_grid: Sequence[int] = COLD_START_K_GRID,
    strength_grid: Sequence[float] = COLD_START_STRENGTH_GRID,
) -> KnobValidation:
    """Rehearse the cold start on the validation day to choose ``k`` and the prior strength.

    Warm users of both platforms (group ``both``): their app history of the training days is
    the input, their web events of the validation day the targets (HR@10 per event, averaged
    per user, then over users). Popularities and the exposure ratio count the training days
    only. Tried: the own app profile shrunk to app popularity for every strength, and cosine kNN
    among the app users (own profile included) for every ``k``, both exposure-corrected.
    """
    truth, split = setup.sim.truth, setup.split
    vocab = features.CategoryVocabulary(setup.category_ids)
    app_train = split.train[split.train["platform"] == "app"]
    web_train = split.train[split.train["platform"] == "web"]
    app_pop_train = baselines.popularity(app_train, vocab.ids)
    web_pop_train = baselines.popularity(web_train, vocab.ids)
    ratio_train = transfer.exposure_ratio(app_pop_train, web_pop_train)
    warm_ids = truth.user_ids[truth.user_group == "both"]
    valid_web = split.valid[(split.valid["platform"] == "web")
                            & split.valid["user_id"].isin(warm_ids)]
    valid_users = np.sort(valid_web["user_id"].unique())
    valid_user = np.searchsorted(valid_users, valid_web["user_id"].to_numpy())
    valid_target = vocab.index(valid_web["category_id"].to_numpy(), unknown="minus_one")
    reference = features.behavior_matrix(app_train, vocab, weights=features.UNIT_WEIGHTS)
    valid_app = features.behavior_matrix(app_train, vocab, valid_users,
                                         weights=features.UNIT_WEIGHTS)

    def valid_hr(predicted: np.ndarray) -> float:
        return transfer.event_report(predicted, valid_user, valid_target)["HR@10"].mean()

    by_strength = pd.Series({
        s: valid_hr(transfer.correct_exposure(
            transfer.shrink(valid_app.matrix, app_pop_train, s), ratio_train))
        for s in strength_grid})
    by_k = pd.Series({
        k: valid_hr(transfer.correct_exposure(transfer.knn_transfer(
            valid_app.log1p(), reference.log1p(), features.normalize_rows(reference.matrix), k,
            fallback=app_pop_train), ratio_train))
        for k in k_grid})
    popularity = valid_hr(np.tile(web_pop_train, (len(valid_users), 1)))
    return KnobValidation(by_strength, by_k, float(popularity), len(valid_users),
                          len(reference.user_ids))


def transfer_scores(
    data: PlatformHistory, k: int, strength: float, *, n_clusters: int = 10, n_init: int = 3,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Methods (c1)–(e) of chapter 5: ``(corrected, as_is)``, each name → ``(U, C)`` scores.

    (c1) the own app profile shrunk to app popularity with ``strength``; (c2) the cosine kNN of
    the own app profile among app users; (d) the same neighbours found from the few web events;
    (e) the nearest of ``n_clusters`` KMeans clusters of app users (``random_state=seed``).
    Each predicts app interest; ``corrected`` moves it to the web with the exposure ratio, with
    the key ``"<name>, exposure-corrected"``; ``as_is`` keeps it, with the key ``"<name>"``.
    """
    reference = data.app_reference.log1p()
    as_is = {
        "(c1) own app profile": transfer.shrink(data.app_counts.matrix, data.app_pop, strength),
        "(c2) kNN of own app profile": transfer.knn_transfer(
            data.app_counts.log1p(), reference, data.app_interest, k, fallback=data.app_pop),
        "(d) kNN from web events": transfer.knn_transfer(
            data.web_counts, reference, data.app_interest, k, fallback=data.app_pop),
        "(e) centroid from web events": transfer.centroid_transfer(
            data.web_counts, reference, n_clusters, seed=seed,
            reference_targets=data.app_interest, n_init=n_init).scores,
    }
    corrected = {name + _SUFFIX: transfer.correct_exposure(value, data.ratio)
                 for name, value in as_is.items()}
    return corrected, as_is


def cold_start_case(
    setup: BookSetup,
    *,
    seed: int = 0,
    k_grid: Sequence[int] = COLD_START_K_GRID,
    strength_grid: Sequence[float] = COLD_START_STRENGTH_GRID,
    n_clusters: int = 10,
    n_init: int = 3,
    truth: bool = True,
    k: int | None = None,
    strength: float | None = None,
) -> ColdStartCase:
    """Chapter 5's cold-start evaluation and its transfer methods that need no neural training.

    The users are the simulator's web cold-start users (``both_cold``, ``web_cold``) with web
    events on the test day; every one of those events is a target. The methods (keys of
    :attr:`ColdStartCase.scores`): ``"(a) web popularity"``; ``"(b) own web events"`` (shrunk to
    web popularity with strength 1); ``"(c1) own app profile, exposure-corrected"``, ``"(c2) kNN
    of own app profile, exposure-corrected"``, ``"(d) kNN from web events, exposure-corrected"``,
    ``"(e) centroid from web events, exposure-corrected"`` (:func:`transfer_scores`, with the
    ``k`` and strength of :func:`validate_knobs`); and, with ``truth=True``, ``"truth (hidden
    parameters)"``, the simulator's true long-run web interest, a reference no method can know.
    Chapter 5's MLPs (method (f)) need training and are not here
    (:func:`~interest_lib.recipes.cold_start_mlp.pretrain_app_mlp`, :func:`cold_start_mlp_scores`). Everything here takes seconds.

    Parameters
    ----------
    setup
        From :func:`~interest_lib.recipes.protocol.book_setup` (a simulation with the ``app``
        and ``web`` platforms and the cold-start groups of :func:`interest_lib.simulate`).
    seed
        ``random_state`` of the KMeans of method (e).
    k_grid, strength_grid
        The candidates validated.
    n_clusters, n_init
        KMeans of method (e).
    truth
        Add the truth reference.
    k, strength
        Use these instead of the validated values.

    Returns
    -------
    ColdStartCase
    """
    vocab = features.CategoryVocabulary(setup.category_ids)
    users, is_both_cold, event_user, event_target, event_row = evaluation_set(setup, vocab)
    data = platform_history(setup, users)
    validation = validate_knobs(setup, k_grid, strength_grid)
    strength = float(validation.strength.idxmax()) if strength is None else float(strength)
    k = int(validation.k.idxmax()) if k is None else int(k)
    scores = {
        "(a) web popularity": np.tile(data.web_pop, (len(users), 1)),
        "(b) own web events": transfer.shrink(data.web_counts.matrix, data.web_pop, strength=1.0),
    }
    corrected, as_is = transfer_scores(data, k, strength, n_clusters=n_clusters, n_init=n_init,
                                       seed=seed)
    scores.update(corrected)
    if truth:
        scores["truth (hidden parameters)"] = transfer.truth_interest(setup.sim.truth, users,
                                                                      vocab.ids)
    return ColdStartCase(
        users, is_both_cold, event_user, event_target, event_row,
        {name: np.asarray(value, dtype=np.float64) for name, value in scores.items()}, k, strength,
        {name: np.asarray(value, dtype=np.float64) for name, value in as_is.items()}, data,
        validation)


# --------------------------------------------------------------------------------------------
# method (f) at n = 0, cached for chapter 7 (the networks: interest_lib.recipes.cold_start_mlp)
# --------------------------------------------------------------------------------------------


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

    The ``corrected`` network of :func:`~interest_lib.recipes.cold_start_mlp.pretrain_app_mlp`
    reads every event of ``users`` before the test day. The scores are cached (:func:`cached`), so a chapter pays
    the few seconds of training once.

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
        _, corrected, _ = pretrain_app_mlp(setup, seed=seed, device=target, hidden=hidden,
                                           epochs=epochs)
        with training.one_cpu_thread(target):
            scores = mlp_predict(corrected, cold_inputs(setup, users))
        return {"scores": scores.astype(np.float64)}

    code = code_version(_PROTOCOL_MODULES + ("interest_mlp", "training", "transfer", "baselines"),
                        (cold_start_mlp_scores, pretrain_app_mlp, mlp_loss, mlp_predict,
                         cold_inputs, _tensor))
    return cached("cold_start_mlp", params, compute, code=code)["scores"]


# --------------------------------------------------------------------------------------------
# all methods side by side
# --------------------------------------------------------------------------------------------

TRUTH = ("truth (hidden parameters)", AS_IS)
"""The key of the truth in :func:`all_methods`."""

POPULARITY = ("(a) web popularity", AS_IS)
"""The key of web popularity in :func:`all_methods`."""


def all_methods(
    case: ColdStartCase,
    zero_shot: tuple[np.ndarray, np.ndarray],
    curve: Mapping[tuple[str, int], pd.DataFrame],
    largest: int,
) -> dict[tuple[str, str], pd.DataFrame]:
    """Per-user reports of every method of chapter 5, in the chapter's order.

    Parameters
    ----------
    case
        :func:`cold_start_case` (with the truth).
    zero_shot
        ``(as_is, corrected)`` ``(U, C)`` scores of the pretrained MLP at ``n = 0``.
    curve
        :func:`learning_curve`; its ``largest`` size gives the fine-tuned and from-scratch rows.

    Returns
    -------
    dict
        ``(method, version)`` → :meth:`ColdStartCase.report`; the truth last.
    """
    results = {key: case.report(value) for key, value in case.versions().items()}
    results[("(f) MLP pretrained on app, n = 0", AS_IS)] = case.report(zero_shot[0])
    results[("(f) MLP pretrained on app, n = 0", CORRECTED)] = case.report(zero_shot[1])
    # the fine-tuned network starts from the corrected one: it is an exposure-corrected method
    results[(f"(f) MLP fine-tuned, n = {largest}", CORRECTED)] = curve[("fine-tuned", largest)]
    results[(f"(f) MLP from scratch, n = {largest}", AS_IS)] = curve[("from scratch", largest)]
    results[TRUTH] = case.report(case.scores[TRUTH[0]])
    return results


def method_table(
    results: Mapping[tuple[str, str], pd.DataFrame], is_both_cold: np.ndarray, *,
    n_boot: int = 1000, seed: int = 0,
) -> pd.DataFrame:
    """HR@10 and NDCG@10 (95 % bootstrap intervals over users) of every method, per group too.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(method, version)``: ``HR@10``, ``HR low``, ``HR high``, ``NDCG@10``,
        ``NDCG low``, ``NDCG high``, ``HR@10 both_cold``, ``HR@10 web_cold`` and ``× popularity``
        (HR@10 over web popularity's).
    """
    rows = []
    for (name, version), per_user in results.items():
        hr = metrics.bootstrap_ci(np.asarray(per_user["HR@10"]), n_boot=n_boot, seed=seed)
        ndcg = metrics.bootstrap_ci(np.asarray(per_user["NDCG@10"]), n_boot=n_boot, seed=seed)
        both = is_both_cold[per_user.index.to_numpy()]
        rows.append({"method": name, "version": version,
                     "HR@10": hr.estimate, "HR low": hr.low, "HR high": hr.high,
                     "NDCG@10": ndcg.estimate, "NDCG low": ndcg.low, "NDCG high": ndcg.high,
                     "HR@10 both_cold": per_user["HR@10"][both].mean(),
                     "HR@10 web_cold": per_user["HR@10"][~both].mean()})
    table = pd.DataFrame(rows).set_index(["method", "version"])
    table["× popularity"] = table["HR@10"] / table.loc[POPULARITY, "HR@10"]
    return table


def transfer_rows(table: pd.DataFrame) -> list[tuple[str, str]]:
    """The rows of the transfer methods, (c) to (f)."""
    return [key for key in table.index if key[0].startswith(("(c", "(d", "(e", "(f"))]


def best_transfer(table: pd.DataFrame, column: str = "HR@10") -> tuple[str, str]:
    """The transfer method (and version) with the highest ``column`` of :func:`method_table`.

    Chapter 5 applies it to the table of the validation day
    (:func:`~interest_lib.recipes.cold_start_choice.validation_table`), never to the test day's.
    """
    return table.loc[transfer_rows(table), column].idxmax()


def method_label(key: tuple[str, str], keys: Any) -> str:
    """A method's name, with its version where ``keys`` holds both versions."""
    name, version = key
    both = (name, AS_IS) in keys and (name, CORRECTED) in keys
    return f"{name}, {version}" if both else name


def ceiling_table(
    setup: BookSetup, case: ColdStartCase, results: Mapping[tuple[str, str], pd.DataFrame],
    best_key: tuple[str, str],
) -> pd.DataFrame:
    """The truth taken apart: segment mix without taste, with taste from app counts, and all.

    The taste from app counts is the posterior mean of each category taste given the person's
    app counts (a gamma prior with the simulator's ``taste_shape``, Poisson counts). Rows: web
    popularity, the three truths, and the transfer method ``best_key`` chosen on the validation
    day (:func:`best_transfer` of the validation table).

    Returns
    -------
    pandas.DataFrame
        HR@10 over all users and over ``both_cold`` users, and both as multiples of popularity.
    """
    sim, users, categories = setup.sim, case.users, setup.category_ids
    segment_only = transfer.truth_interest(sim.truth, users, categories, with_taste=False)
    app_mix = transfer.truth_interest(sim.truth, users, categories, platform=0, with_taste=False)
    counts = case.data.app_counts.matrix.toarray()
    shape = sim.config["taste_shape"]  # taste ~ Gamma(shape, 1/shape) (None: no taste)
    taste = 1.0 if shape is None else (shape + counts) / (
        shape + counts.sum(axis=1, keepdims=True) * app_mix)
    rows = (("web popularity", results[POPULARITY]),
            ("truth: segment mix, no taste", case.report(segment_only)),
            ("truth: segment mix, taste from app counts", case.report(segment_only * taste)),
            ("truth: segment mix and taste", results[TRUTH]),
            (f"chosen method: {method_label(best_key, results)}", results[best_key]))
    ceiling = pd.DataFrame({
        name: {"HR@10 all": s["HR@10"].mean(),
               "HR@10 both_cold": s["HR@10"][case.is_both_cold[s.index.to_numpy()]].mean()}
        for name, s in rows}).T
    ceiling["× popularity (all)"] = ceiling["HR@10 all"] / ceiling.loc["web popularity",
                                                                        "HR@10 all"]
    ceiling["× popularity (both_cold)"] = (ceiling["HR@10 both_cold"]
                                          / ceiling.loc["web popularity", "HR@10 both_cold"])
    return ceiling
