"""The claims of chapter 7 (evaluation), on the book's default log with seed 0.

Each test runs the library calls the chapter runs, with an empty cache, so every number is
recomputed from scratch: the hand-worked metrics, leaderboard entries recomputed from the
baselines themselves, and each classic mistake changing a number or the order of two methods.
"""

from __future__ import annotations

import numpy as np
import pytest
from event_tables import cluster_interval_by_loop
from sklearn.metrics import recall_score
from toc_notebooks import parameters_cell

from interest_lib import (
    baselines,
    cache,
    cold_start,
    leaderboard,
    metrics,
    mistakes,
    next_window,
    protocol,
    trajectories,
    trajectory,
)
from interest_lib.data.simulation import simulate
from interest_lib.recipes import comparison

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


def test_precision_recall_and_f1_by_hand():
    """The chapter's confusion: four buyers, four non-buyers, "buyer" from a score of 0.5."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score

    truth = np.r_[np.ones(4, int), np.zeros(4, int)]
    label = (np.array([0.9, 0.7, 0.6, 0.3, 0.8, 0.6, 0.2, 0.1]) >= 0.5).astype(int)
    (tp, fn), (fp, tn) = confusion_matrix(truth, label, labels=[1, 0])
    assert (tp, fp, fn, tn) == (3, 2, 1, 2)
    precision, recall = precision_score(truth, label), recall_score(truth, label)
    assert precision == pytest.approx(3 / 5) and recall == pytest.approx(3 / 4)
    # F1 is the harmonic mean of precision and recall, not of accuracy and recall
    f1 = f1_score(truth, label)
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall)) == pytest.approx(6 / 9)
    accuracy = accuracy_score(truth, label)
    assert accuracy == pytest.approx(5 / 8) != pytest.approx(precision)
    assert 2 * accuracy * recall / (accuracy + recall) != pytest.approx(f1)
    # in the eight-user example every class has FP = FN, so precision equals recall per class
    np.testing.assert_allclose(precision_score(TOY_TRUE, TOY_PRED, average=None),
                               recall_score(TOY_TRUE, TOY_PRED, average=None))


def test_label_metrics_by_hand():
    assert metrics.macro_f1(TOY_TRUE, TOY_PRED) == pytest.approx((6 / 8 + 2 / 4 + 2 / 4) / 3)
    labels = np.r_[np.ones(4, int), np.zeros(4, int)]
    scores = np.array([0.9, 0.7, 0.6, 0.3, 0.8, 0.6, 0.2, 0.1])
    assert metrics.auc(labels, scores) == pytest.approx(11.5 / 16)


# --------------------------------------------------------------------------------------------
# the leaderboard: entries recomputed from scratch
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scores_of_test_day(setup):
    """Every baseline's and the oracle's scores on the test day, computed from scratch."""
    return baselines.baseline_scores(setup.task("test"), setup.split.train, simulation=setup.sim)


def test_leaderboard_entries_equal_the_baselines_themselves(setup, scores_of_test_day):
    test = setup.task("test")
    train = setup.split.train
    board = leaderboard.leaderboard(protocol.baseline_reports(setup), test.user_id,
                                    average="points", n_boot=200, seed=SEED)
    from_scratch = {
        "global popularity": baselines.global_popularity_scores(test, train),
        "repeat last": baselines.repeat_last_scores(test, train),
        "oracle": scores_of_test_day["oracle"],
    }
    for name, scores in from_scratch.items():
        # the mean over points, users resampled with all their points
        for column, metric in [("NDCG@10", metrics.ndcg_at_k), ("HR@1", metrics.hit_rate_at_k),
                               ("MRR", metrics.mrr)]:
            kwargs = {} if column == "MRR" else {"k": 10 if column == "NDCG@10" else 1}
            assert board.loc[name, column] == pytest.approx(metric(scores, test.target, **kwargs)), (
                name, column)
        per_point = metrics.ndcg_at_k(scores, test.target, 10, per_user=True)
        assert (board.loc[name, "NDCG@10 low"], board.loc[name, "NDCG@10 high"]) == pytest.approx(
            tuple(cluster_interval_by_loop(per_point, test.user_id, 200, SEED)))
    # the oracle is the ceiling of the baselines, for both targets
    assert board.index[0] == "oracle"
    changed_task = setup.task("test", changed=True)
    changed = protocol.baseline_reports(setup, changed=True, oracle=False)
    means = {name: frame["NDCG@10"].mean() for name, frame in changed.items()}
    oracle_changed = metrics.ndcg_at_k(protocol.per_changed(scores_of_test_day["oracle"], setup),
                                       changed_task.target, 10)
    assert oracle_changed > max(means.values())
    # "repeat last" equals "user frequency" for the next changed category
    np.testing.assert_array_equal(changed["repeat last"]["NDCG@10"], changed["user frequency"]["NDCG@10"])


def chapter6_parameters() -> dict:
    """The model sizes of chapter 6's parameters cell, read from the notebook itself."""
    values = parameters_cell("06_lstm_trajectories")
    return {name: values[name] for name in trajectory.TRAJECTORY_DEFAULTS if name in values}


@pytest.fixture(scope="module")
def chapter6_lstm(setup):
    """Chapter 6's call with chapter 6's parameters cell: (model, history, test-day scores)."""
    hyper = chapter6_parameters()
    assert {"hidden", "epochs"} <= set(hyper)
    return trajectories.sequence_model(setup, "lstm", seed=SEED, device="cpu", **hyper)


@pytest.fixture(scope="module")
def boards(setup, chapter6_lstm):
    """The chapter's leaderboards with the LSTM as the learned model (mean over points)."""
    reports = {changed: trajectories.method_reports(setup, {"LSTM": chapter6_lstm[2]}, changed)
               for changed in (False, True)}
    return reports, {changed: leaderboard.leaderboard(
        reports[changed], setup.task("test", changed).user_id, average="points",
        baselines=baselines.BASELINE_NAMES, n_boot=1000, seed=SEED) for changed in (False, True)}


def test_lstm_entry_is_chapter_6s_model(setup, chapter6_lstm, boards, monkeypatch):
    """Chapter 6's call trains the LSTM; chapter 7's call gets the very same scores back."""
    test = setup.task("test")
    model, _, chapter6 = chapter6_lstm
    rebuilt = trajectory.trajectory_scores(model, setup.events, setup.category_ids, test,
                                           context=int(chapter6_parameters()["window"]),
                                           device="cpu")
    np.testing.assert_allclose(rebuilt, chapter6, atol=1e-5)  # the stored weights are the model

    stored = cache.cached

    def from_the_cache_only(name, params, compute, **kwargs):
        def refuse():
            raise AssertionError("chapter 7 must not train again what chapter 6 trained")

        return stored(name, params, refuse, **kwargs)

    monkeypatch.setattr(trajectories, "cached", from_the_cache_only)
    chapter7 = trajectories.sequence_model_scores(setup, "lstm", seed=SEED, device="cpu")
    np.testing.assert_array_equal(chapter7, chapter6)
    chapter6_board = trajectories.boards(setup, {"LSTM": chapter6}, average="points", n_boot=0,
                                         seed=SEED)["next category"]
    board = boards[1][False]
    assert board.loc["LSTM", "NDCG@10"] == chapter6_board.loc["LSTM", "NDCG@10"]
    assert board.loc["LSTM", "NDCG@10 low"] > board.loc["Markov chain", "NDCG@10 high"]


@pytest.mark.parametrize("changed", [False, True])
def test_the_best_learned_model_beats_the_best_baseline_and_the_oracle_stays_above(
        setup, boards, changed):
    """"The best learned model beats the best baseline" (paired interval over users), the
    oracle stays above every method, and closes part of the distance to the oracle."""
    reports, board = boards[0][changed], boards[1][changed]
    summary = comparison.leaderboard_summary(board, reports, setup.task("test", changed).user_id,
                                             learned=("LSTM",), n_boot=1000, seed=SEED)
    assert board.index[0] == "oracle" and summary["best"] == "LSTM"
    assert comparison.verdict(summary["difference"]) == "beats"
    assert summary["difference"].low > 0  # whether it is also a tie by the 5 % rule is glued
    assert 0 < summary["gap"] < 1


def test_the_oracle_leads_most_when_interest_moves(boards):
    board = boards[1]
    assert board[True].loc["oracle", "vs best"] > board[False].loc["oracle", "vs best"] > 0


def test_intervals_that_resample_users_are_wider_and_users_count_once(setup):
    """The chapter's interval comparison for "repeat last", with its n_boot and seed."""
    reports = protocol.baseline_reports(setup)
    values = reports["repeat last"]["NDCG@10"].to_numpy()
    by_point = metrics.bootstrap_ci(values, n_boot=1000, seed=SEED)
    repeat = {"repeat last": reports["repeat last"]}
    user_id = setup.task("test").user_id
    by_user, per_user = (leaderboard.leaderboard(repeat, user_id, average=average, columns=[],
                                                 n_boot=1000, seed=SEED).loc["repeat last"]
                         for average in ("points", "users"))
    assert by_user["NDCG@10"] == pytest.approx(by_point.estimate)
    assert (by_user["NDCG@10 high"] - by_user["NDCG@10 low"]) > 1.2 * (by_point.high - by_point.low)
    # light users are harder to predict: every user counting once lowers the number
    assert per_user["NDCG@10"] < by_point.estimate


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


def test_one_sampled_category_inflates_and_compresses(setup, scores_of_test_day):
    test = setup.task("test")
    board = leaderboard.leaderboard(protocol.baseline_reports(setup), test.user_id,
                                    average="points", n_boot=0)
    table = mistakes.sampled_category_table(scores_of_test_day, test.target, board, seed=SEED)
    full, sampled = table["full: HR@1"], table["1 sampled: HR@1 (AUC)"]
    assert (sampled > full + 0.3).all()  # every method looks excellent
    assert sampled.max() / sampled.min() < 1.3 < 3 < full.max() / full.min()
    # popularity reaches a far larger share of the oracle's sampled score than of its full NDCG@10
    share_sampled = sampled["global popularity"] / sampled["oracle"]
    share_full = (table.loc["global popularity", "full: NDCG@10"]
                  / table.loc["oracle", "full: NDCG@10"])
    assert share_sampled > share_full


@pytest.fixture(scope="module")
def item_case(setup, scores_of_test_day, chapter6_lstm):
    """The chapter's item lists, item leaderboard and sampled-negative table (its five category
    scores: the two user baselines, chapter 3's interest MLP, chapter 6's LSTM, the oracle)."""
    test, train = setup.task("test"), setup.split.train
    _, first = setup.first_positions("test")
    mlp_users, mlp_scores = next_window.interest_mlp_scores(setup, seed=SEED, device="cpu")
    full = {"user frequency": scores_of_test_day["user frequency"],
            "repeat last": scores_of_test_day["repeat last"],
            "interest MLP": next_window.static_user_scores(
                mlp_users, mlp_scores, test, baselines.popularity(train, setup.category_ids)),
            "LSTM": chapter6_lstm[2], "oracle": scores_of_test_day["oracle"]}
    category = {name: scores[first] for name, scores in full.items()}
    case = comparison.item_lists(setup, category, n=20)
    items = case["items"]
    board, _ = comparison.item_leaderboard(case["lists"], case["test_items"], n_boot=200, seed=SEED)
    functions = comparison.item_score_functions(items, case["history"], category)
    table = mistakes.sampled_item_table(functions, case["lists"], case["first_item"],
                                        items.index(case["first_item"]), len(items), seed=SEED)
    return board, table


def test_item_lists_lose_the_lstms_lead(item_case, boards):
    """The LSTM's item lists do not beat those of the user's frequencies (they tie or stay
    below): most of its lead for the next category does not reach the items; one popular list
    for everybody is the weakest."""
    board = item_case[0]["NDCG@10"]
    assert board.drop(index="oracle → items").idxmax() in ("LSTM → items", "user frequency → items")
    item_lead = metrics.relative_difference(board["LSTM → items"], board["user frequency → items"])
    next_board = boards[1][False]["NDCG@10"]
    next_lead = metrics.relative_difference(next_board["LSTM"], next_board["user frequency"])
    assert next_lead > 0 and item_lead < metrics.TIE_TOLERANCE and item_lead < next_lead / 2
    assert board.idxmin() == "item popularity"


def test_item_sampled_negatives_inflate_compress_and_reorder(item_case):
    table = item_case[1]
    summary = mistakes.sampled_summary(table)
    assert (summary["inflation"] > 5).all()  # inflation
    assert summary["spread"]["full"] > summary["spread"]["100"] > summary["spread"]["1"]
    # sampling erases differences: pairs the full ranking separates by 5 % or more tie under
    # sampling, more of them with one negative than with 100
    assert summary["separated"] > 0
    assert 0 < summary["collapsed"]["100"] <= summary["collapsed"]["1"] <= summary["separated"]
    # and it reorders: with 100 negatives some methods change place beyond the tie rule, and the
    # chapter's reversal is one of them (a clear lead in the full ranking, a clear loss sampled)
    assert summary["moved"]["100"] > 0 and summary["raw_moved"]["100"] > 0
    gap, winner, loser, column, lead = summary["reversal"]
    assert gap >= metrics.TIE_TOLERANCE and lead >= metrics.TIE_TOLERANCE
    assert table.loc[winner, "full: NDCG@10"] > table.loc[loser, "full: NDCG@10"]
    assert table.loc[winner, column] < table.loc[loser, column]


def _toy_sampled_table(full: list[float], sampled_100: list[float], sampled_1: list[float]):
    import pandas as pd

    table = pd.DataFrame({"full: HR@10": 1.0, "full: NDCG@10": full, "100 sampled: HR@10": 1.0,
                          "100 sampled: NDCG@10": sampled_100, "1 sampled: HR@1 (AUC)": sampled_1},
                         index=["a", "b", "c"])
    return table


def test_changes_of_place_count_only_beyond_the_tie_rule():
    """A swap among methods under 5 % apart is no change of place; a clear swap is."""
    # a > b > c by 20 % steps in full; with 100 negatives b and c swap by 1 % (a tie); with one
    # negative the order turns round, each pair by more than 5 %: b keeps its raw place (second),
    # yet changes place with both a and c
    table = _toy_sampled_table([0.5, 0.4, 0.32], [0.9, 0.80, 0.808], [0.6, 0.75, 0.86])
    summary = mistakes.sampled_summary(table)
    assert summary["raw_moved"] == {"100": 2, "1": 2}
    assert summary["moved"] == {"100": 0, "1": 3}
    assert summary["separated"] == 3
    assert summary["collapsed"] == {"100": 1, "1": 0}  # b and c tie with 100 negatives
    winner, loser = summary["reversal"][1:3]
    assert (winner, loser) == ("a", "c") and summary["reversal"][4] >= metrics.TIE_TOLERANCE


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

POPULARITY = "(a) web popularity"
OWN_APP = "(c1) own app profile, exposure-corrected"
KNN_APP = "(c2) kNN of own app profile, exposure-corrected"
PRETRAINED = "(f) MLP pretrained on app, n = 0"


@pytest.fixture(scope="module")
def cold_case(setup):
    return cold_start.cold_start_case(setup, seed=SEED)


@pytest.fixture(scope="module")
def cold_transfer_scores(setup, cold_case):
    transfer_scores = dict(cold_case.scores)
    transfer_scores[f"{PRETRAINED}, exposure-corrected"] = cold_start.cold_start_mlp_scores(
        setup, cold_case.users, seed=SEED, device="cpu")
    return transfer_scores


@pytest.fixture(scope="module")
def cold_choice(setup, cold_case, cold_transfer_scores):
    return comparison.validated_transfer(setup, cold_case, list(cold_transfer_scores), seed=SEED,
                                         device="cpu")


@pytest.fixture(scope="module")
def cold_comparison(setup, cold_case, scores_of_test_day, cold_transfer_scores, cold_choice):
    """The chapter's cold-start table, with the baselines and the oracle as next-event methods."""
    return comparison.cold_start_comparison(cold_case, cold_transfer_scores, scores_of_test_day,
                                            setup.task("test"), chosen=cold_choice["chosen"],
                                            n_boot=1000, seed=SEED)


def test_the_transfer_method_is_chosen_on_the_validation_day(setup, cold_case,
                                                            cold_transfer_scores, cold_choice,
                                                            cold_comparison):
    """Chapter 5's rehearsal chooses, among the methods of the table; the test day never does."""
    from interest_lib.recipes import cold_start_choice

    table, _ = cold_start_choice.validation_table(setup, cold_case, seed=SEED, device="cpu")
    rows = [key for key in cold_start.transfer_rows(table)
            if comparison.transfer_label(key) in cold_transfer_scores]
    assert comparison.transfer_label(table.loc[rows, "HR@10"].idxmax()) == cold_choice["chosen"]
    assert cold_choice["chapter5"] == cold_start.method_label(cold_start.best_transfer(table),
                                                              table.index)
    assert cold_comparison["best_transfer"] == cold_choice["chosen"]
    assert cold_comparison["test_best_transfer"] in cold_comparison["transfer"]
    with pytest.raises(ValueError, match="chosen"):
        comparison.cold_start_comparison(cold_case, cold_transfer_scores, {}, setup.task("test"),
                                         chosen=POPULARITY)


def test_chosen_transfer_beats_web_popularity_with_a_paired_interval(cold_comparison):
    hr = cold_comparison["hr"]
    assert cold_comparison["transfer_vs_popularity"].low > 0, cold_comparison["best_transfer"]
    assert comparison.verdict(cold_comparison["transfer_vs_popularity"]) == "beats"
    # every static transfer stays below the simulator's true interest, chapter 5's reference
    truth_hr = hr["truth (hidden parameters)"]
    assert all(hr[name] < truth_hr for name in cold_comparison["transfer"])


def test_reading_earlier_events_beats_every_transfer_on_cold_start_users(setup, cold_case,
                                                                        cold_comparison):
    """Every cold-start web event is a prediction point; the methods that read earlier events,
    even the weakest, beat every transfer method, the best one beyond a paired interval."""
    test = setup.task("test")
    position = cold_case.task_positions(test)
    assert cold_comparison["on_points"].all()
    np.testing.assert_array_equal(test.rows[position], cold_case.event_row)
    np.testing.assert_array_equal(test.target[position], cold_case.event_target)
    hr = cold_comparison["hr"]
    assert cold_comparison["sequence_vs_transfer"].low > 0
    best_transfer = max(hr[name] for name in cold_comparison["transfer"])
    assert hr[cold_comparison["weakest_sequence"]] > best_transfer
    # "even the true one": the best of them beats the true static interest
    assert hr[cold_comparison["best_sequence"]] > hr["truth (hidden parameters)"]
