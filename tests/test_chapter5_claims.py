"""The claims of chapter 5 (cosine transfer to cold-start users), with the chapter's library calls.

Default simulator (``il.simulate(seed=0)``, 5,000 users), the book's time split, the cold-start
users of the web (``both_cold`` and ``web_cold``) with web events on the test day; every one of
their test-day web events is a single-target ranking over all categories, averaged per user.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import interest_lib as il
from interest_lib import baselines, features, interest_mlp, metrics, training, transfer

SEED = 0
N_USERS = 5000
K_GRID = (10, 25, 50, 100, 200, 400, 800, 1600)
STRENGTH_GRID = (5, 20, 50, 100, 200, 500)
N_CLUSTERS = 10
TRAIN_SIZES = (25, 50, 100, 200, 400)
N_REPEATS = 3
MIN_WEB_EVENTS = 10
HIDDEN = 64
EPOCHS = 30
N_BOOT = 1000


def _tensor(matrix) -> torch.Tensor:
    dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    return torch.as_tensor(dense, dtype=torch.float32)


def _loss_fn(model, batch):
    x, y = batch
    return interest_mlp.soft_cross_entropy(model(x), y)


def _predict(model, x):
    model.eval()
    with torch.no_grad():
        logits = model(x.to(next(model.parameters()).device))
    return torch.softmax(logits, dim=1).cpu().numpy()


@pytest.fixture(scope="module")
def chapter():
    """Everything the chapter computes, minus the figures (and the middle of the curve)."""
    torch.set_num_threads(1)
    device = training.best_device()
    sim = il.simulate(n_users=N_USERS, seed=SEED)
    events, truth = sim.events, sim.truth
    split = il.split_by_time(events)
    history = split.history("test")
    assert split.valid_end == truth.cold_start_cutoff
    vocab = features.CategoryVocabulary.fit(split.train)
    categories = vocab.ids
    group_of = pd.Series(truth.user_group, index=truth.user_ids)
    web_history = history[history["platform"] == "web"]
    app_history = history[history["platform"] == "app"]
    test_web = split.test[split.test["platform"] == "web"]

    cold_ids = truth.user_ids[np.isin(truth.user_group, ["both_cold", "web_cold"])]
    target_events = test_web[test_web["user_id"].isin(cold_ids)]
    users = np.sort(target_events["user_id"].unique())
    event_user = np.searchsorted(users, target_events["user_id"].to_numpy())
    event_target = vocab.index(target_events["category_id"].to_numpy(), unknown="minus_one")
    is_both_cold = group_of.reindex(users).to_numpy() == "both_cold"

    def score(predicted):
        return transfer.event_report(predicted, event_user, event_target, ks=(10,))

    app_pop = baselines.popularity(app_history, categories)
    web_pop = baselines.popularity(web_history, categories)
    ratio = transfer.exposure_ratio(app_pop, web_pop)
    true_ratio = (truth.platform_exposure[1] / truth.platform_exposure[0])[
        truth.category_index(categories)
    ]

    results = {}

    def add(name, predicted, corrected=None):
        results[(name, "as is")] = score(predicted)
        if corrected is not None:
            results[(name, "exposure-corrected")] = score(corrected)

    web_counts = features.behavior_matrix(web_history, vocab, users, weights=features.UNIT_WEIGHTS)
    add("(a) web popularity", np.tile(web_pop, (len(users), 1)))
    add("(b) own web events", transfer.shrink(web_counts.matrix, web_pop, strength=1.0))

    # validation day: warm users on both platforms, app history of the training days
    train_events = split.train
    app_train = train_events[train_events["platform"] == "app"]
    web_train = train_events[train_events["platform"] == "web"]
    app_pop_train = baselines.popularity(app_train, categories)
    web_pop_train = baselines.popularity(web_train, categories)
    ratio_train = transfer.exposure_ratio(app_pop_train, web_pop_train)
    warm_ids = truth.user_ids[truth.user_group == "both"]
    valid_web = split.valid[
        (split.valid["platform"] == "web") & split.valid["user_id"].isin(warm_ids)
    ]
    valid_users = np.sort(valid_web["user_id"].unique())
    valid_user = np.searchsorted(valid_users, valid_web["user_id"].to_numpy())
    valid_target = vocab.index(valid_web["category_id"].to_numpy(), unknown="minus_one")
    app_reference_train = features.behavior_matrix(app_train, vocab, weights=features.UNIT_WEIGHTS)
    valid_app = features.behavior_matrix(app_train, vocab, valid_users, weights=features.UNIT_WEIGHTS)

    def valid_hr(predicted):
        return transfer.event_report(predicted, valid_user, valid_target)["HR@10"].mean()

    valid_strength = pd.Series({
        s: valid_hr(transfer.correct_exposure(
            transfer.shrink(valid_app.matrix, app_pop_train, s), ratio_train))
        for s in STRENGTH_GRID})
    valid_k = pd.Series({
        k: valid_hr(transfer.correct_exposure(transfer.knn_transfer(
            valid_app.log1p(), app_reference_train.log1p(),
            features.normalize_rows(app_reference_train.matrix), k, fallback=app_pop_train),
            ratio_train))
        for k in K_GRID})
    strength = float(valid_strength.idxmax())
    k = int(valid_k.idxmax())

    # (c) the same person's app history
    app_users = np.sort(app_history["user_id"].unique())
    app_reference = features.behavior_matrix(app_history, vocab, app_users,
                                             weights=features.UNIT_WEIGHTS)
    app_interest = features.normalize_rows(app_reference.matrix)
    app_counts = features.behavior_matrix(app_history, vocab, users, weights=features.UNIT_WEIGHTS)
    own_app = transfer.shrink(app_counts.matrix, app_pop, strength)
    add("(c1) own app profile", own_app, transfer.correct_exposure(own_app, ratio))
    neighbours = transfer.knn_transfer(app_counts.log1p(), app_reference.log1p(), app_interest, k,
                                       fallback=app_pop)
    add("(c2) kNN of own app profile", neighbours, transfer.correct_exposure(neighbours, ratio))

    # (d), (e) a few web events
    from_web = transfer.knn_transfer(web_counts, app_reference.log1p(), app_interest, k,
                                     fallback=app_pop)
    add("(d) kNN from web events", from_web, transfer.correct_exposure(from_web, ratio))
    centroids = transfer.centroid_transfer(web_counts, app_reference.log1p(), N_CLUSTERS,
                                           seed=SEED, reference_targets=app_interest, n_init=3)
    add("(e) centroid from web events", centroids.scores,
        transfer.correct_exposure(centroids.scores, ratio))

    # (f) the MLP: pretrained on the app, corrected by its bias, fine-tuned vs from scratch
    app_valid = split.valid[split.valid["platform"] == "app"]
    pre_users = np.intersect1d(app_train["user_id"].unique(), app_valid["user_id"].unique())
    x_pre = _tensor(features.behavior_matrix(app_train, vocab, pre_users).log1p().matrix)
    y_pre = _tensor(features.next_window_targets(app_valid, vocab, pre_users, None, None))
    training.set_seed(SEED)
    pretrained = interest_mlp.InterestMLP(len(categories), hidden=HIDDEN)
    training.fit(pretrained, (x_pre, y_pre), loss_fn=_loss_fn, epochs=EPOCHS, batch_size=256,
              lr=3e-3, patience=None, device=device, seed=SEED, progress=False)
    corrected = transfer.with_output_bias(pretrained, np.log(ratio_train))
    x_cold = _tensor(features.behavior_matrix(history, vocab, users).log1p().matrix)
    add("(f) MLP pretrained on app, n = 0", _predict(pretrained, x_cold),
        _predict(corrected, x_cold))

    web_valid = split.valid[split.valid["platform"] == "web"]
    n_web_train = web_train.groupby("user_id").size()
    rich = n_web_train.index[n_web_train >= MIN_WEB_EVENTS].to_numpy()
    pool = np.intersect1d(rich, web_valid["user_id"].unique())
    x_pool = _tensor(features.behavior_matrix(train_events, vocab, pool).log1p().matrix)
    y_pool = _tensor(features.next_window_targets(web_valid, vocab, pool, None, None))
    curve = {}
    for n in (min(TRAIN_SIZES), max(TRAIN_SIZES)):  # the chapter runs every size; each is independent
        runs = {"fine-tuned": [], "from scratch": []}
        for repeat in range(N_REPEATS):
            rng = np.random.default_rng([SEED, n, repeat])
            rows = torch.as_tensor(rng.choice(len(pool), size=n, replace=False))
            data = (x_pool[rows], y_pool[rows])
            settings = dict(loss_fn=_loss_fn, epochs=EPOCHS, batch_size=64, patience=None,
                            device=device, seed=SEED + repeat, progress=False)
            tuned, _ = transfer.fine_tune(corrected, data, lr=3e-4, **settings)
            training.set_seed(SEED + repeat)
            scratch = interest_mlp.InterestMLP(len(categories), hidden=HIDDEN)
            training.fit(scratch, data, lr=3e-3, **settings)
            runs["fine-tuned"].append(score(_predict(tuned, x_cold)))
            runs["from scratch"].append(score(_predict(scratch, x_cold)))
        for name, reports in runs.items():
            curve[(name, n)] = sum(reports) / N_REPEATS
    largest = max(TRAIN_SIZES)
    results[(f"(f) MLP fine-tuned, n = {largest}", "exposure-corrected")] = curve[("fine-tuned", largest)]
    results[(f"(f) MLP from scratch, n = {largest}", "as is")] = curve[("from scratch", largest)]
    results[("truth (hidden parameters)", "as is")] = score(
        transfer.truth_interest(truth, users, categories))

    return dict(results=results, curve=curve, is_both_cold=is_both_cold, ratio=ratio,
                true_ratio=true_ratio, truth=truth, users=users, categories=categories,
                score=score, k=k, strength=strength)


def _hr(report, mask=None) -> float:
    values = report["HR@10"]
    return float(values.mean() if mask is None else values[mask].mean())


def _best_transfer(results):
    transfer_rows = [key for key in results if key[0].startswith(("(c", "(d", "(e", "(f"))]
    return max(transfer_rows, key=lambda key: _hr(results[key]))


def _mask(chapter, report, group: str) -> np.ndarray:
    both = chapter["is_both_cold"][report.index.to_numpy()]
    return both if group == "both_cold" else ~both


def test_the_evaluation_covers_both_kinds_of_cold_start_users(chapter):
    pop = chapter["results"][("(a) web popularity", "as is")]
    assert len(pop) > 600 and 0.3 < chapter["is_both_cold"].mean() < 0.5
    assert 0.4 < _hr(pop) < 0.7  # popularity's HR@10 stays well below 1


def test_the_estimated_exposure_ratio_tracks_the_true_one(chapter):
    corr = np.corrcoef(np.log(chapter["ratio"]), np.log(chapter["true_ratio"]))[0, 1]
    assert corr > 0.9


def test_the_exposure_correction_helps_every_transfer_from_the_app(chapter):
    results = chapter["results"]
    names = [name for name, version in results
             if version == "exposure-corrected" and (name, "as is") in results]
    assert len(names) == 5
    for name in names:
        assert _hr(results[(name, "exposure-corrected")]) > _hr(results[(name, "as is")]), name
    gain = metrics.bootstrap_diff_ci(results[("(c1) own app profile", "exposure-corrected")]["HR@10"],
                                     results[("(c1) own app profile", "as is")]["HR@10"],
                                     n_boot=N_BOOT, seed=SEED)
    assert gain.low > 0
    # uncorrected, the own app profile loses to web popularity
    assert _hr(results[("(c1) own app profile", "as is")]) < _hr(results[("(a) web popularity", "as is")])


def test_the_best_transfer_beats_popularity_with_a_paired_interval_above_zero(chapter):
    results = chapter["results"]
    best = results[_best_transfer(results)]
    pop = results[("(a) web popularity", "as is")]
    diff = metrics.bootstrap_diff_ci(best["HR@10"], pop["HR@10"], n_boot=N_BOOT, seed=SEED)
    assert diff.low > 0
    # on the people it is meant for, the people with an app history, the gain is larger
    ratio_both = _hr(best, _mask(chapter, best, "both_cold")) / _hr(pop, _mask(chapter, pop, "both_cold"))
    assert ratio_both > 1.1


@pytest.mark.xfail(
    strict=True,
    reason="Out of reach on the default simulator: the truth itself (each person's true segment mix "
    "and taste) scores only about 1.3-1.35 x popularity's HR@10 on the cold-start users, the best "
    "transfer method about 1.1 x. See test_why_1_3x_is_out_of_reach and the chapter's section "
    "'How far could transfer go?'.",
)
def test_the_best_transfer_reaches_1_3_times_popularity(chapter):
    results = chapter["results"]
    best = results[_best_transfer(results)]
    assert _hr(best) >= 1.3 * _hr(results[("(a) web popularity", "as is")])


def test_why_1_3x_is_out_of_reach(chapter):
    """The chapter's ceiling: 1.3 x popularity would take nearly all of the truth's own gain."""
    results, truth, users, categories = (chapter[k] for k in ("results", "truth", "users", "categories"))
    pop = _hr(results[("(a) web popularity", "as is")])
    best = _hr(results[_best_transfer(results)])
    ceiling = _hr(results[("truth (hidden parameters)", "as is")])
    segment_only = _hr(chapter["score"](
        transfer.truth_interest(truth, users, categories, with_taste=False)))
    assert best < 1.2 * pop
    assert segment_only < ceiling and best < ceiling
    assert ceiling / pop < 1.4
    assert (1.3 - 1) / (ceiling / pop - 1) > 0.75  # 1.3 x needs three quarters of the truth's gain


def test_fine_tuned_beats_scratch_at_the_smallest_n(chapter):
    curve = chapter["curve"]
    n = min(TRAIN_SIZES)
    for metric in ("HR@10", "NDCG@10"):
        diff = metrics.bootstrap_diff_ci(curve[("fine-tuned", n)][metric],
                                         curve[("from scratch", n)][metric],
                                         n_boot=N_BOOT, seed=SEED)
        assert diff.low > 0, (metric, diff)
    # from scratch, so few users do not even reach popularity
    pop = chapter["results"][("(a) web popularity", "as is")]
    assert _hr(curve[("from scratch", n)]) < _hr(pop) < _hr(curve[("fine-tuned", n)])
