"""The recipes: the cache, the protocol object, the mistake helpers and the learned models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from interest_lib import (
    baselines,
    cache,
    leaderboard,
    metrics,
    mistakes,
    next_window,
    protocol,
    recurrent,
    trajectories,
    trajectory,
)
from interest_lib.data.simulation import simulate
from interest_lib.data.tasks import condition_on_change
from interest_lib.recipes import comparison


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets an empty cache of its own."""
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def setup():
    return protocol.book_setup(simulate(n_users=300, seed=3))


# --------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------


def test_cached_computes_once_and_keys_on_params(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(3), "y": np.ones((2, 2), np.float32)}

    first = cache.cached("demo", {"a": 1}, compute)
    again = cache.cached("demo", {"a": 1}, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["x"], again["x"])
    assert again["y"].dtype == np.float32
    cache.cached("demo", {"a": 2}, compute)
    cache.cached("demo", {"a": 1}, compute, code="other code")
    cache.cached("demo", {"a": 1}, compute, refresh=True)
    assert len(calls) == 4
    assert cache.clear_cache() == 3
    cache.cached("demo", {"a": 1}, compute)
    assert len(calls) == 5


def test_cache_can_be_switched_off(monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    assert cache.cache_dir() is None
    calls = []
    for _ in range(2):
        cache.cached("demo", {}, lambda: calls.append(1) or {"x": np.zeros(1)})
    assert len(calls) == 2
    assert cache.clear_cache() == 0


def test_default_cache_dir_is_under_tempdir(monkeypatch, tmp_path):
    import tempfile

    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "interest_lib_cache"


def test_a_damaged_file_is_recomputed():
    cache.cached("demo", {}, lambda: {"x": np.zeros(1)})
    (path,) = cache.stored_results("demo")
    path.write_bytes(b"not a pickle")
    out = cache.cached("demo", {}, lambda: {"x": np.ones(1)})
    np.testing.assert_array_equal(out["x"], [1.0])


def test_fingerprint_and_code_version():
    frame = pd.DataFrame({"a": [1, 2], "b": pd.Categorical(["x", "y"])})
    assert cache.fingerprint(frame) == cache.fingerprint(frame.copy())
    changed = frame.copy()
    changed.loc[1, "a"] = 3
    assert cache.fingerprint(changed) != cache.fingerprint(frame)
    assert cache.fingerprint(np.arange(3)) != cache.fingerprint(np.arange(3.0))
    one = cache.code_version(["metrics"], [leaderboard.leaderboard])
    assert one == cache.code_version(["metrics"], [leaderboard.leaderboard])
    assert one != cache.code_version(["metrics", "baselines"], [leaderboard.leaderboard])
    with pytest.raises(ValueError, match="no module"):
        cache.code_version(["no_such_module"])


# --------------------------------------------------------------------------------------------
# the protocol and the reports
# --------------------------------------------------------------------------------------------


def test_setup_tasks_and_positions(setup):
    test, changed = setup.task("test"), setup.task("test", changed=True)
    assert setup.task("test") is test  # built once
    assert test.start == setup.split.valid_end and test.end == setup.split.test_end
    assert setup.task("train").end == setup.split.train_end
    np.testing.assert_array_equal(setup.category_ids, np.unique(setup.split.train["category_id"]))
    position = setup.changed_positions()
    np.testing.assert_array_equal(test.rows[position], changed.rows)
    users, first = setup.first_positions()
    np.testing.assert_array_equal(users, np.unique(test.user_id))
    assert np.all(test.user_id[first] == users)
    with pytest.raises(ValueError, match="part"):
        setup.task("holdout")


def test_per_changed_equals_scoring_the_changed_task(setup):
    test, changed = setup.task("test"), setup.task("test", changed=True)
    train = setup.split.train
    direct = baselines.markov_scores(changed, train)
    derived = protocol.per_changed(baselines.markov_scores(test, train), setup)
    np.testing.assert_allclose(derived, direct)
    oracle = protocol.per_changed(baselines.oracle_scores(setup.sim, test), setup)
    # equal up to float64 rounding: the two paths renormalise rows of different memory layouts
    np.testing.assert_allclose(oracle, baselines.oracle_scores(setup.sim, changed), rtol=1e-12, atol=0)
    # the cached oracle is the library's oracle: bit for bit on the next category; the changed
    # one is derived with per_changed, so again equal up to rounding
    np.testing.assert_array_equal(protocol.cached_oracle_scores(setup),
                                  baselines.oracle_scores(setup.sim, test))
    np.testing.assert_allclose(protocol.cached_oracle_scores(setup, changed=True),
                               baselines.oracle_scores(setup.sim, changed), rtol=1e-12, atol=0)


def test_baseline_reports_equal_the_library_and_are_cached(setup):
    reports = protocol.baseline_reports(setup)
    assert list(reports) == [*baselines.BASELINE_NAMES, "oracle"]
    test = setup.task("test")
    scores = baselines.baseline_scores(test, setup.split.train, simulation=setup.sim)
    for name, frame in reports.items():
        expected = metrics.ranking_report(scores[name], test.target, protocol.KS, per_user=True)
        pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    files = cache.stored_results("baseline_reports")
    assert len(files) == 1
    again = protocol.baseline_reports(setup)
    pd.testing.assert_frame_equal(again["oracle"], reports["oracle"])


def test_static_user_scores(setup):
    test = setup.task("test")
    users = np.unique(test.user_id)[::2]  # half of the users have a row
    rng = np.random.default_rng(0)
    rows = rng.dirichlet(np.ones(setup.n_categories), size=users.size)
    fallback = np.full(setup.n_categories, 1.0 / setup.n_categories)
    out = next_window.static_user_scores(users[::-1], rows[::-1], test, fallback)
    has = np.isin(test.user_id, users)
    np.testing.assert_allclose(out[has], rows[np.searchsorted(users, test.user_id[has])])
    np.testing.assert_allclose(out[~has], fallback[None].repeat((~has).sum(), 0))
    changed = setup.task("test", changed=True)
    out_changed = next_window.static_user_scores(users, rows, changed, fallback)
    np.testing.assert_allclose(out_changed.sum(axis=1), 1.0)


# --------------------------------------------------------------------------------------------
# mistakes
# --------------------------------------------------------------------------------------------


def test_random_split_mask():
    mask = mistakes.random_split(pd.DataFrame({"a": np.arange(10_000)}), 0.2, seed=1)
    assert mask.dtype == bool and 0.18 < mask.mean() < 0.22
    with pytest.raises(ValueError):
        mistakes.random_split(pd.DataFrame({"a": [1]}), 1.5)


def test_random_split_comparison_shapes(setup):
    result = mistakes.random_split_comparison(setup, seed=0)
    assert set(result["random"]) == set(mistakes.RANDOM_SPLIT_METHODS)
    time_task = setup.task("test")
    assert len(result["time"]["Markov chain"]) == len(time_task)
    assert len(result["random"]["user profile"]) == result["random user_id"].size
    # the time-split Markov chain is the library's baseline
    expected = metrics.ndcg_at_k(baselines.markov_scores(time_task, setup.split.train),
                                 time_task.target, 10, per_user=True)
    np.testing.assert_allclose(result["time"]["Markov chain"]["NDCG@10"], expected)


def test_user_profile_scores_use_every_event_of_the_frame(setup):
    task = setup.task("test")
    scores = mistakes.user_profile_scores(task, setup.split.train)
    users, inverse = np.unique(task.user_id, return_inverse=True)
    expected = baselines.user_history_distribution(setup.split.train, task.category_ids, users,
                                                   end=None)[inverse]
    np.testing.assert_allclose(scores, expected)
    changed = setup.task("test", changed=True)
    np.testing.assert_allclose(
        mistakes.user_profile_scores(changed, setup.split.train),
        condition_on_change(expected[setup.changed_positions()], changed))


def test_sampled_ranks_by_hand_and_limits():
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [0.4, 0.3, 0.2, 0.1]])
    target = np.array([2, 0])
    # with every other item sampled, the sampled rank is the full rank
    np.testing.assert_array_equal(mistakes.sampled_ranks(scores, target, 3), [1, 0])
    one = mistakes.sampled_ranks(scores, target, 1, seed=5)
    assert one[1] == 0 and one[0] in (0, 1)
    with pytest.raises(ValueError):
        mistakes.sampled_ranks(scores, target, 4)


def test_sampled_ranks_never_draw_the_target():
    rng = np.random.default_rng(0)
    scores = rng.random((500, 30))
    target = rng.integers(0, 30, 500)
    scores[np.arange(500), target] = -1.0  # the worst item: its rank is the number drawn
    np.testing.assert_array_equal(mistakes.sampled_ranks(scores, target, 7, seed=2), 7)


def test_sampled_item_ranks_match_sampled_ranks_logic():
    rng = np.random.default_rng(3)
    full = rng.random((60, 40))
    target = rng.integers(0, 40, 60)
    ranks = mistakes.sampled_item_ranks(lambda rows, c: np.take_along_axis(full[rows], c, 1),
                                           np.arange(60), target, 40, 39, seed=0)
    np.testing.assert_array_equal(ranks, metrics.target_rank(full, target))
    full[np.arange(60), target] = -1.0
    worst = mistakes.sampled_item_ranks(lambda rows, c: np.take_along_axis(full[rows], c, 1),
                                           np.arange(60), target, 40, 5, seed=1)
    np.testing.assert_array_equal(worst, 5)
    with pytest.raises(ValueError):
        mistakes.sampled_item_ranks(lambda r, c: c, np.arange(2), np.array([0, 40]), 40, 3)


def test_rank_report():
    out = mistakes.rank_report(np.array([0, 1, 4]), ks=(1, 3))
    assert out["HR@1"] == pytest.approx(1 / 3) and out["HR@3"] == pytest.approx(2 / 3)
    assert out["NDCG@3"] == pytest.approx((1 + 1 / np.log2(3)) / 3)
    assert out["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 3)


def test_unknown_hyper_parameters_are_rejected(setup):
    with pytest.raises(TypeError, match="hyper"):
        trajectories.train_sequence_model(setup, "lstm", hidden_size=3)
    with pytest.raises(TypeError, match="hyper"):
        next_window.train_interest_mlp(setup, width=3)
    with pytest.raises(ValueError, match="scaler_on"):
        next_window.train_interest_mlp(setup, scaler_on="test")


# --------------------------------------------------------------------------------------------
# the analyses of chapters 6 and 7
# --------------------------------------------------------------------------------------------


def test_point_positions_and_segment_mass(setup):
    test, changed = setup.task("test"), setup.task("test", changed=True)
    at = trajectories.point_positions(changed, test)
    np.testing.assert_array_equal(at, setup.changed_positions())
    with pytest.raises(ValueError, match="not a point"):
        trajectories.point_positions(test, changed)
    truth = setup.sim.truth
    oracle = protocol.cached_oracle_scores(setup)
    mass = trajectories.segment_mass(oracle, truth, setup.category_ids)
    assert mass.shape == (len(test), len(truth.segment_names))
    np.testing.assert_allclose(mass.sum(axis=1), 1.0, atol=1e-6)  # a distribution per point


def test_trajectory_example_picks_the_user_who_moves_most(setup):
    truth, test = setup.sim.truth, setup.task("test")
    scores = protocol.cached_oracle_scores(setup)
    mass = trajectories.segment_mass(scores, truth, setup.category_ids)
    example = trajectories.trajectory_example(test, truth, {"oracle": mass}, after_day=-1,
                                              points=(1, 10_000))
    segment = truth.event_segment[test.rows].astype(int)
    moves = {u: int((np.diff(segment[test.user_id == u]) != 0).sum()) for u in np.unique(test.user_id)}
    assert example["moves"] == max(moves.values()) == moves[example["user"]]
    np.testing.assert_array_equal(test.user_id[example["pick"]], example["user"])
    expected = (mass[example["pick"]].argmax(axis=1) == segment[example["pick"]]).mean()
    assert example["follows"]["oracle"] == pytest.approx(expected)


def test_item_leaderboard_and_example_user(setup):
    test = setup.task("test")
    _, first = setup.first_positions("test")
    category = {"user frequency": baselines.user_frequency_scores(test, setup.split.train)[first]}
    case = comparison.item_lists(setup, category, n=20)
    assert set(case["lists"]) == {"item popularity", "re-viewed items", "user frequency → items"}
    board, per_user = comparison.item_leaderboard(case["lists"], case["test_items"], ceiling=(),
                                                  n_boot=100, seed=1)
    for name, report in per_user.items():
        ci = metrics.bootstrap_ci(report["NDCG@10"].to_numpy(), n_boot=100, seed=1)
        assert tuple(board.loc[name, ["NDCG@10", "NDCG@10 low", "NDCG@10 high"]]) == pytest.approx(ci)
        assert board.loc[name, "HR@1"] == pytest.approx(report["HR@1"].mean())
    best = board.index[0]
    user = comparison.example_list_user(case["lists"][best], per_user[best], case["items"],
                                        case["history"])
    top10 = case["lists"][best][user, :10]
    seen = np.isin(top10, case["items"].item_ids[case["history"][user].indices])
    assert per_user[best]["HR@10"].iloc[user] == 1 and 0 < seen.mean() < 1


def test_formatted_board():
    board = leaderboard.leaderboard(
        {"a": pd.DataFrame({"NDCG@10": [0.5, 0.7]}), "b": pd.DataFrame({"NDCG@10": [0.2, 0.3]})},
        [1, 2], average="points", columns=[], n_boot=10)
    shown = leaderboard.formatted(board, ["NDCG@10", "vs best", "ties best"], digits=2)
    assert list(shown.columns) == ["NDCG@10 (95 % CI)", "vs best", "ties best"]
    assert shown.loc["a", "NDCG@10 (95 % CI)"].startswith("0.60 [")
    assert shown.loc["a", "ties best"] == "tie" and shown.loc["b", "ties best"] == ""
    assert shown.loc["b", "vs best"] == "-58.3%"


# --------------------------------------------------------------------------------------------
# the learned models: deterministic, and the cache returns what training returned
# --------------------------------------------------------------------------------------------


def test_sequence_model_scores_are_reproducible_and_cached(setup):
    small = {"epochs": 1, "hidden": 8, "embedding_dim": 4}
    _, history, scores = trajectories.train_sequence_model(setup, "gru", seed=1, device="cpu", **small)
    assert scores.shape == (len(setup.task("test")), setup.n_categories)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    assert history.epochs == 1
    first = trajectories.sequence_model_scores(setup, "gru", seed=1, device="cpu", **small)
    np.testing.assert_array_equal(first, scores)  # training is deterministic on the CPU
    files = cache.stored_results("sequence_model")
    assert len(files) == 1
    again = trajectories.sequence_model_scores(setup, "gru", seed=1, device="cpu", **small)
    np.testing.assert_array_equal(again, scores)
    assert len(cache.stored_results("sequence_model")) == 1
    trajectories.sequence_model_scores(setup, "gru", seed=2, device="cpu", **small)
    assert len(cache.stored_results("sequence_model")) == 2
    # the model itself comes back from the stored weights, with its history
    model, stored_history, stored = trajectories.sequence_model(setup, "gru", seed=1, device="cpu",
                                                               **small)
    np.testing.assert_array_equal(stored, scores)
    assert stored_history.train_loss == pytest.approx(history.train_loss)
    assert stored_history.best_epoch == history.best_epoch
    rescored = trajectory.trajectory_scores(model, setup.events, setup.category_ids,
                                            setup.task("test"), device="cpu",
                                            context=int(trajectory.TRAJECTORY_DEFAULTS["window"]))
    np.testing.assert_allclose(rescored, scores, atol=1e-5)  # scored as in training: the window


def test_plain_model_is_trained_once_and_rebuilt_from_the_cache(setup):
    small = {"epochs": 1, "hidden": 8, "embedding_dim": 4}
    model, history, scores = trajectories.plain_model(setup, seed=1, device="cpu", **small)
    assert scores.shape == (len(setup.task("test")), setup.n_categories)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    assert len(cache.stored_results("plain_model")) == 1
    again, stored_history, stored = trajectories.plain_model(setup, seed=1, device="cpu", **small)
    assert len(cache.stored_results("plain_model")) == 1  # read, not trained again
    np.testing.assert_array_equal(stored, scores)
    assert stored_history.train_loss == pytest.approx(history.train_loss)
    rescored = trajectory.trajectory_scores(again, setup.events, setup.category_ids,
                                            setup.task("test"), device="cpu",
                                            context=int(recurrent.PLAIN_DEFAULTS["window"]))
    np.testing.assert_allclose(rescored, scores, atol=1e-5)  # the stored weights are the model
    with pytest.raises(TypeError, match="hyper"):
        trajectories.plain_model(setup, hidden_size=3)


def test_interest_mlp_scores_are_reproducible_and_cached(setup):
    small = {"epochs": 2, "hidden": 8, "n_windows": 2}
    out = next_window.train_interest_mlp(setup, seed=0, device="cpu", **small)
    stored = cache.cached  # training stored the scores: reading them must not train again
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(next_window, "cached", lambda name, params, compute, **kw: stored(
            name, params, lambda: pytest.fail("trained again"), **kw))
        users, scores = next_window.interest_mlp_scores(setup, seed=0, device="cpu", **small)
    np.testing.assert_array_equal(users, out["user_ids"])
    np.testing.assert_array_equal(scores, out["scores"])
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    _, leaky = next_window.interest_mlp_scores(setup, seed=0, device="cpu", scaler_on="all", **small)
    assert not np.allclose(leaky, scores)  # the scaler fitted on all data changes the model
