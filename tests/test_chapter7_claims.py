"""The claims of chapter 7 (evaluation), on the book's default log with seed 0.

Each test runs the library calls the chapter runs, with an empty cache, so every number is
recomputed from scratch: the hand-worked metrics, leaderboard entries recomputed from the
baselines themselves, and each classic mistake changing a number or the order of two methods.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import recall_score

from interest_lib import (
    baselines,
    cache,
    cold_start,
    interest_mlp,
    leaderboard,
    metrics,
    mistakes,
    protocol,
    recommend,
    trajectories,
    trajectory,
)
from interest_lib.data.simulation import simulate

SEED = 0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The book's default log, with an empty cache of its own for the whole module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(cache.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
        yield protocol.book_setup(simulate(n_users=5000, seed=SEED))


# --------------------------------------------------------------------------------------------
# metrics by hand
# --------------------------------------------------------------------------------------------

TOY_SCORES = np.array([
    [0.10, 0.40, 0.05, 0.30, 0.15],
    [0.50, 0.20, 0.10, 0.15, 0.05],
    [0.20, 0.35, 0.15, 0.05, 0.25],
])
TOY_TARGET = np.array([3, 0, 3])
TOY_TRUE = np.array([0, 0, 0, 0, 1, 1, 2, 2])
TOY_PRED = np.array([0, 0, 0, 1, 1, 2, 2, 0])


def test_ranking_metrics_by_hand():
    np.testing.assert_array_equal(metrics.target_rank(TOY_SCORES, TOY_TARGET), [1, 0, 4])
    assert metrics.accuracy(TOY_SCORES, TOY_TARGET) == pytest.approx(1 / 3)
    assert metrics.hit_rate_at_k(TOY_SCORES, TOY_TARGET, 3) == pytest.approx(2 / 3)
    assert metrics.ndcg_at_k(TOY_SCORES, TOY_TARGET, 3) == pytest.approx((1 / np.log2(3) + 1) / 3)
    assert metrics.mrr(TOY_SCORES, TOY_TARGET) == pytest.approx((1 / 2 + 1 + 1 / 5) / 3)
    graded = np.array([[0.0, 0.2, 0.0, 0.6, 0.2]])  # exercise ex-eval-graded
    dcg = 0.2 + 0.6 / np.log2(3) + 0.2 / 2
    idcg = 0.6 + 0.2 / np.log2(3) + 0.2 / 2
    assert metrics.ndcg_at_k(TOY_SCORES[:1], graded, 3) == pytest.approx(dcg / idcg)


def test_label_metrics_by_hand():
    assert metrics.macro_f1(TOY_TRUE, TOY_PRED) == pytest.approx((6 / 8 + 2 / 4 + 2 / 4) / 3)
    labels = np.r_[np.ones(4, int), np.zeros(4, int)]
    scores = np.array([0.9, 0.7, 0.6, 0.3, 0.8, 0.6, 0.2, 0.1])
    assert metrics.auc(labels, scores) == pytest.approx(11.5 / 16)


# --------------------------------------------------------------------------------------------
# the leaderboard: entries recomputed from scratch
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_scores(setup):
    """Every baseline's and the oracle's scores on the test day, computed from scratch."""
    return baselines.baseline_scores(setup.task("test"), setup.split.train, simulation=setup.sim)


def test_leaderboard_entries_equal_the_baselines_themselves(setup, test_scores):
    test = setup.task("test")
    train = setup.split.train
    reports = protocol.baseline_reports(setup)
    board = leaderboard.leaderboard(reports, test.user_id, n_boot=200, seed=SEED, average="points")
    from_scratch = {
        "global popularity": baselines.global_popularity_scores(test, train),
        "repeat last": baselines.repeat_last_scores(test, train),
        "oracle": test_scores["oracle"],
    }
    for name, scores in from_scratch.items():
        # chapter 6's computation: the mean over points, users resampled with all their points
        for column, metric in [("NDCG@10", metrics.ndcg_at_k), ("HR@1", metrics.hit_rate_at_k),
                               ("MRR", metrics.mrr)]:
            kwargs = {} if column == "MRR" else {"k": 10 if column == "NDCG@10" else 1}
            assert board.loc[name, column] == pytest.approx(metric(scores, test.target, **kwargs)), (
                name, column)
            if column == "NDCG@10":
                ci = leaderboard.user_bootstrap(metric(scores, test.target, per_user=True, **kwargs),
                                                test.user_id, n_boot=200, seed=SEED)
        assert (board.loc[name, "low"], board.loc[name, "high"]) == pytest.approx((ci.low, ci.high))
    # the oracle is the ceiling of the baselines, for both targets
    assert board.index[0] == "oracle"
    changed_task = setup.task("test", changed=True)
    changed = protocol.baseline_reports(setup, changed=True, oracle=False)
    means = {name: frame["NDCG@10"].mean() for name, frame in changed.items()}
    oracle_changed = metrics.ndcg_at_k(protocol.per_changed(test_scores["oracle"], setup),
                                       changed_task.target, 10)
    assert oracle_changed > max(means.values())
    # "repeat last" equals "user frequency" for the next changed category
    np.testing.assert_array_equal(changed["repeat last"]["NDCG@10"], changed["user frequency"]["NDCG@10"])


def test_lstm_entry_is_chapter_6s_model(setup, test_scores, monkeypatch):
    """Chapter 6's call trains the LSTM; chapter 7's call gets the very same scores back."""
    test = setup.task("test")
    # chapter 6's parameters cell: hidden, n_components, window, epochs
    model, _, chapter6 = trajectories.sequence_model(setup, "lstm", seed=SEED, device="cpu",
                                                    hidden=64, n_components=8, window=64, epochs=2)
    rebuilt = trajectory.trajectory_scores(model, setup.events, setup.category_ids, test, device="cpu")
    np.testing.assert_allclose(rebuilt, chapter6, atol=1e-5)  # the stored weights are the model

    stored = cache.cached

    def from_the_cache_only(name, params, compute, **kwargs):
        def refuse():
            raise AssertionError("chapter 7 must not train again what chapter 6 trained")

        return stored(name, params, refuse, **kwargs)

    monkeypatch.setattr(trajectories, "cached", from_the_cache_only)
    chapter7 = trajectories.sequence_model_scores(setup, "lstm", seed=SEED, device="cpu")
    np.testing.assert_array_equal(chapter7, chapter6)
    board = leaderboard.leaderboard(
        {"LSTM": protocol.point_report(chapter7, test),
         "Markov chain": protocol.point_report(test_scores["Markov chain"], test)},
        test.user_id, n_boot=200, seed=SEED, average="points")
    chapter6_board = leaderboard.evaluate_methods({"LSTM": chapter6}, test, seed=SEED)
    assert board.loc["LSTM", "NDCG@10"] == pytest.approx(chapter6_board.loc["LSTM", "NDCG@10"])
    assert board.loc["LSTM", "low"] > board.loc["Markov chain", "high"]  # chapter 6's claim


def test_user_bootstrap_is_wider_than_point_bootstrap(setup):
    values = protocol.baseline_reports(setup)["repeat last"]["NDCG@10"].to_numpy()
    by_point = metrics.bootstrap_ci(values, n_boot=300, seed=SEED)
    by_user = leaderboard.user_bootstrap(values, setup.task("test").user_id, n_boot=300, seed=SEED)
    assert by_user.estimate == pytest.approx(by_point.estimate)
    assert (by_user.high - by_user.low) > 1.2 * (by_point.high - by_point.low)


# --------------------------------------------------------------------------------------------
# mistake 1: a random split
# --------------------------------------------------------------------------------------------


def test_random_split_inflates_and_flips(setup):
    result = mistakes.random_split_comparison(setup, test_share=0.2, seed=SEED)
    ndcg = {protocol: {name: frame["NDCG@10"].mean() for name, frame in result[protocol].items()}
            for protocol in ("random", "time")}
    gain = {name: ndcg["random"][name] / ndcg["time"][name] - 1
            for name in mistakes.RANDOM_SPLIT_METHODS}
    assert all(g > 0 for g in gain.values()), gain  # every method looks better
    assert gain["user profile"] > 0.2  # the profile fitted on the user's future gains most
    assert all(gain["user profile"] > 2 * g for name, g in gain.items() if name != "user profile")
    # the order of the user profile and the user frequency flips
    assert ndcg["random"]["user profile"] > ndcg["random"]["user frequency"]
    assert ndcg["time"]["user profile"] < ndcg["time"]["user frequency"]


# --------------------------------------------------------------------------------------------
# mistake 2: fitting on the test data
# --------------------------------------------------------------------------------------------


def test_popularity_fitted_on_all_days_looks_better(setup):
    test = setup.task("test")
    ndcg = {}
    for name, frame in [("right", setup.split.train), ("leaky", setup.events)]:
        pop = baselines.popularity(frame, setup.category_ids)
        per_point = metrics.ndcg_at_k(np.tile(pop, (len(test), 1)), test.target, 10, per_user=True)
        ndcg[name] = per_point.mean()
    assert ndcg["leaky"] > 1.02 * ndcg["right"]
    with pytest.raises(Exception, match="Fit only on split.train"):
        setup.split.check_no_future(setup.events)


# --------------------------------------------------------------------------------------------
# mistake 3: sampled negatives
# --------------------------------------------------------------------------------------------


def test_one_sampled_category_inflates_and_compresses(setup, test_scores):
    test = setup.task("test")
    full, sampled = {}, {}
    for name, matrix in test_scores.items():
        full[name] = metrics.accuracy(matrix, test.target)
        ranks = mistakes.sampled_ranks(matrix, test.target, 1, seed=SEED)
        sampled[name] = float(np.mean(ranks < 1))
        assert sampled[name] > full[name] + 0.3, name
    spread_full = max(full.values()) / min(full.values())
    spread_sampled = max(sampled.values()) / min(sampled.values())
    assert spread_sampled < 1.3 < 3 < spread_full


@pytest.fixture(scope="module")
def item_case(setup):
    test, split = setup.task("test"), setup.split
    users, first = setup.first_positions("test")
    items = recommend.ItemPopularity.fit(split.train, setup.category_ids)
    history = recommend.user_item_history(setup.events, items, users, end=split.valid_end)
    first_item = setup.events["item_id"].to_numpy()[test.rows[first]]
    target = items.index(first_item)
    known = target >= 0
    category = {"user frequency": baselines.user_frequency_scores(test, split.train)[first],
                "repeat last": baselines.repeat_last_scores(test, split.train)[first]}
    lists = {"item popularity": recommend.recommend_popular(items, users.size, 20),
             "re-viewed items": recommend.recommend_reviewed(items, history, 20)}
    score = {"item popularity": lambda rows, c: items.counts[c],
             "re-viewed items": lambda rows, c: recommend.reviewed_scores(items, history[rows], c)}
    for name, s in category.items():
        lists[f"{name} → items"] = recommend.recommend_items(s, setup.category_ids, items, history, 20)
        score[f"{name} → items"] = (
            lambda rows, c, s=s: recommend.item_scores(s[rows], items, history[rows], c))
    full = {name: recommend.list_report(lst[known], first_item[known], ks=(10,))
            for name, lst in lists.items()}
    return items, target[known], np.flatnonzero(known), score, full


def test_item_sampled_negatives_inflate_compress_and_flip(item_case):
    items, target, rows, score, full = item_case
    hr_full = {name: report["HR@10"].mean() for name, report in full.items()}
    ndcg_full = {name: report["NDCG@10"].mean() for name, report in full.items()}
    ranks_100 = {name: mistakes.sampled_item_ranks(fn, rows, target, len(items), 100, seed=SEED)
                 for name, fn in score.items()}
    ranks_1 = {name: mistakes.sampled_item_ranks(fn, rows, target, len(items), 1, seed=SEED)
               for name, fn in score.items()}
    for name in score:
        assert np.mean(ranks_100[name] < 10) > 5 * hr_full[name], name  # inflation
    ndcg_100 = {name: mistakes.rank_report(r, ks=(10,))["NDCG@10"] for name, r in ranks_100.items()}
    # compression: popularity trails the user-frequency lists clearly in the full ranking and
    # is level with them under 100 sampled negatives
    gap_full = metrics.relative_difference(ndcg_full["user frequency → items"], ndcg_full["item popularity"])
    gap_100 = metrics.relative_difference(ndcg_100["user frequency → items"], ndcg_100["item popularity"])
    assert gap_full > 0.10 and abs(gap_100) < 0.02
    # flip: "repeat last → items" loses to the re-viewed items in the full ranking and wins
    # against them with one sampled negative
    auc = {name: np.mean(r < 1) for name, r in ranks_1.items()}
    assert ndcg_full["repeat last → items"] < ndcg_full["re-viewed items"]
    assert auc["repeat last → items"] > auc["re-viewed items"]


# --------------------------------------------------------------------------------------------
# mistake 4: recall_score without an average
# --------------------------------------------------------------------------------------------


def test_recall_score_needs_an_average_on_multiclass_labels():
    with pytest.raises(ValueError, match="average"):
        recall_score(TOY_TRUE, TOY_PRED)
    macro = recall_score(TOY_TRUE, TOY_PRED, average="macro")
    micro = recall_score(TOY_TRUE, TOY_PRED, average="micro")
    assert macro == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert micro == pytest.approx(np.mean(TOY_TRUE == TOY_PRED)) == pytest.approx(5 / 8)
    assert macro != pytest.approx(micro)


# --------------------------------------------------------------------------------------------
# cold-start users: chapter 5's transfer methods on chapter 5's evaluation
# --------------------------------------------------------------------------------------------

K_GRID = (10, 25, 50, 100, 200, 400, 800, 1600)  # chapter 5's parameters cell
STRENGTH_GRID = (5, 20, 50, 100, 200, 500)
POPULARITY = "(a) web popularity"
OWN_APP = "(c1) own app profile, exposure-corrected"
KNN_APP = "(c2) kNN of own app profile, exposure-corrected"
PRETRAINED = "(f) MLP pretrained on app, n = 0"


@pytest.fixture(scope="module")
def cold_case(setup):
    return cold_start.cold_start_case(setup, seed=SEED)


@pytest.fixture(scope="module")
def chapter5_direct(setup):
    """Chapter 5's evaluation set, (a), (c1) and (c2), with chapter 5's own library calls."""
    from interest_lib import features, transfer

    split, truth = setup.split, setup.sim.truth
    history = split.history("test")
    vocab = features.CategoryVocabulary.fit(split.train)
    categories = vocab.ids
    web_history = history[history["platform"] == "web"]
    app_history = history[history["platform"] == "app"]
    test_web = split.test[split.test["platform"] == "web"]
    cold_ids = truth.user_ids[np.isin(truth.user_group, ["both_cold", "web_cold"])]
    target_events = test_web[test_web["user_id"].isin(cold_ids)]
    users = np.sort(target_events["user_id"].unique())
    event_user = np.searchsorted(users, target_events["user_id"].to_numpy())
    event_target = vocab.index(target_events["category_id"].to_numpy(), unknown="minus_one")

    app_pop = baselines.popularity(app_history, categories)
    web_pop = baselines.popularity(web_history, categories)
    ratio = transfer.exposure_ratio(app_pop, web_pop)

    app_train = split.train[split.train["platform"] == "app"]
    web_train = split.train[split.train["platform"] == "web"]
    app_pop_train = baselines.popularity(app_train, categories)
    ratio_train = transfer.exposure_ratio(app_pop_train, baselines.popularity(web_train, categories))
    warm_ids = truth.user_ids[truth.user_group == "both"]
    valid_web = split.valid[(split.valid["platform"] == "web") & split.valid["user_id"].isin(warm_ids)]
    valid_users = np.sort(valid_web["user_id"].unique())
    valid_user = np.searchsorted(valid_users, valid_web["user_id"].to_numpy())
    valid_target = vocab.index(valid_web["category_id"].to_numpy(), unknown="minus_one")
    app_reference_train = features.behavior_matrix(app_train, vocab, weights=features.UNIT_WEIGHTS)
    valid_app = features.behavior_matrix(app_train, vocab, valid_users, weights=features.UNIT_WEIGHTS)

    def valid_hr(predicted):
        return transfer.event_report(predicted, valid_user, valid_target)["HR@10"].mean()

    strengths = {s: valid_hr(transfer.correct_exposure(
        transfer.shrink(valid_app.matrix, app_pop_train, s), ratio_train)) for s in STRENGTH_GRID}
    ks = {k: valid_hr(transfer.correct_exposure(transfer.knn_transfer(
        valid_app.log1p(), app_reference_train.log1p(),
        features.normalize_rows(app_reference_train.matrix), k, fallback=app_pop_train), ratio_train))
        for k in K_GRID}
    strength = float(max(strengths, key=strengths.get))
    k = int(max(ks, key=ks.get))

    app_users = np.sort(app_history["user_id"].unique())
    app_reference = features.behavior_matrix(app_history, vocab, app_users,
                                             weights=features.UNIT_WEIGHTS)
    app_counts = features.behavior_matrix(app_history, vocab, users, weights=features.UNIT_WEIGHTS)
    own_app = transfer.shrink(app_counts.matrix, app_pop, strength)
    neighbours = transfer.knn_transfer(app_counts.log1p(), app_reference.log1p(),
                                       features.normalize_rows(app_reference.matrix), k,
                                       fallback=app_pop)

    def score(predicted):
        return transfer.event_report(predicted, event_user, event_target, ks=(10,))

    return dict(users=users, event_user=event_user, event_target=event_target, k=k,
                strength=strength, history=history, vocab=vocab, ratio_train=ratio_train,
                reports={POPULARITY: score(np.tile(web_pop, (len(users), 1))),
                         OWN_APP: score(transfer.correct_exposure(own_app, ratio)),
                         KNN_APP: score(transfer.correct_exposure(neighbours, ratio))})


def test_cold_start_case_is_chapter_5s_evaluation(cold_case, chapter5_direct):
    np.testing.assert_array_equal(cold_case.users, chapter5_direct["users"])
    np.testing.assert_array_equal(cold_case.event_user, chapter5_direct["event_user"])
    np.testing.assert_array_equal(cold_case.event_target, chapter5_direct["event_target"])
    assert (cold_case.k, cold_case.strength) == (chapter5_direct["k"], chapter5_direct["strength"])
    assert len(cold_case.users) > 600 and 0.3 < cold_case.is_both_cold.mean() < 0.5
    for name, direct in chapter5_direct["reports"].items():
        mine = cold_case.report(cold_case.scores[name])
        np.testing.assert_array_equal(mine.index, direct.index)
        np.testing.assert_allclose(mine["HR@10"], direct["HR@10"], rtol=0, atol=1e-12)
        assert abs(mine["HR@10"].mean() - direct["HR@10"].mean()) < 1e-12, name


def test_cold_start_mlp_is_chapter_5s_pretrained_mlp(setup, cold_case, chapter5_direct):
    """Method (f) with n = 0, trained here as chapter 5 trains it."""
    import torch

    from interest_lib import features, training, transfer

    split, vocab = setup.split, chapter5_direct["vocab"]
    app_train = split.train[split.train["platform"] == "app"]
    app_valid = split.valid[split.valid["platform"] == "app"]
    pre_users = np.intersect1d(app_train["user_id"].unique(), app_valid["user_id"].unique())

    def tensor(matrix):
        return torch.as_tensor(matrix.toarray() if hasattr(matrix, "toarray") else matrix,
                               dtype=torch.float32)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        training.set_seed(SEED)
        pretrained = interest_mlp.InterestMLP(setup.n_categories, hidden=64)
        training.fit(pretrained, (tensor(features.behavior_matrix(app_train, vocab, pre_users)
                                      .log1p().matrix),
                               tensor(features.next_window_targets(app_valid, vocab, pre_users,
                                                                   None, None))),
                  loss_fn=lambda net, batch: interest_mlp.soft_cross_entropy(net(batch[0]), batch[1]),
                  epochs=30, batch_size=256, lr=3e-3, patience=None, device="cpu", seed=SEED,
                  progress=False)
        corrected = transfer.with_output_bias(pretrained, np.log(chapter5_direct["ratio_train"]))
        corrected.eval()
        x_cold = tensor(features.behavior_matrix(chapter5_direct["history"], vocab,
                                                 cold_case.users).log1p().matrix)
        with torch.no_grad():
            direct = torch.softmax(corrected(x_cold), dim=1).numpy()
    finally:
        torch.set_num_threads(threads)
    mine = cold_start.cold_start_mlp_scores(setup, cold_case.users, seed=SEED, device="cpu")
    assert mine.shape == (len(cold_case.users), setup.n_categories)
    np.testing.assert_allclose(mine, direct, rtol=0, atol=1e-6)
    hr = cold_case.report(mine)["HR@10"].mean()
    assert abs(hr - cold_case.report(direct)["HR@10"].mean()) < 1e-12


def _cold_reports(setup, cold_case):
    reports = {name: cold_case.report(scores) for name, scores in cold_case.scores.items()}
    reports[PRETRAINED] = cold_case.report(
        cold_start.cold_start_mlp_scores(setup, cold_case.users, seed=SEED, device="cpu"))
    return reports


def test_best_transfer_beats_web_popularity_with_a_paired_interval(setup, cold_case):
    reports = _cold_reports(setup, cold_case)
    transfer_names = [name for name in reports if name.startswith(("(c", "(d", "(e", "(f"))]
    assert len(transfer_names) == 5
    best = max(transfer_names, key=lambda name: reports[name]["HR@10"].mean())
    diff = metrics.bootstrap_diff_ci(reports[best]["HR@10"].to_numpy(),
                                     reports[POPULARITY]["HR@10"].to_numpy(), n_boot=1000, seed=SEED)
    assert diff.low > 0, (best, diff)
    # every static transfer stays below the simulator's true interest, chapter 5's reference
    truth_hr = reports["truth (hidden parameters)"]["HR@10"].mean()
    assert all(reports[name]["HR@10"].mean() < truth_hr for name in transfer_names)


def test_reading_earlier_events_beats_every_transfer_on_cold_start_users(setup, cold_case,
                                                                        test_scores):
    """The chapter's comparison: the same events, the Markov chain against the best transfer."""
    test = setup.task("test")
    position = cold_case.task_positions(test)
    on_points = position >= 0
    assert on_points.mean() > 0.95  # nearly every cold-start web event is a prediction point
    np.testing.assert_array_equal(test.rows[position[on_points]], cold_case.event_row[on_points])
    np.testing.assert_array_equal(test.target[position[on_points]],
                                  cold_case.event_target[on_points])
    scores = dict(cold_case.scores)
    scores[PRETRAINED] = cold_start.cold_start_mlp_scores(setup, cold_case.users, seed=SEED,
                                                           device="cpu")
    reports = {name: cold_case.report(value, keep=on_points) for name, value in scores.items()
               if name.startswith(("(c", "(d", "(e", "(f"))}
    markov = cold_case.event_report(test_scores["Markov chain"][position[on_points]], on_points)
    best = max(reports, key=lambda name: reports[name]["HR@10"].mean())
    np.testing.assert_array_equal(markov.index, reports[best].index)
    diff = metrics.bootstrap_diff_ci(markov["HR@10"].to_numpy(), reports[best]["HR@10"].to_numpy(),
                                     n_boot=1000, seed=SEED)
    assert diff.low > 0, (best, diff)
