"""Baselines: known answers on a hand-built log, no look-ahead, and a sane order on simulated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from interest_lib import baselines
from interest_lib.data.schema import DAY_S
from interest_lib.data.simulation import Simulation, simulate
from interest_lib.data.tasks import next_category_task
from interest_lib.evaluation.metrics import hit_rate_at_k, ndcg_at_k
from interest_lib.models.baselines import (
    BASELINE_NAMES,
    MarkovChain,
    baseline_scores,
    choose_markov_smoothing,
    global_popularity_scores,
    markov_scores,
    oracle_column_map,
    oracle_scores,
    popularity,
    popularity_distribution,
    recent_popularity_scores,
    repeat_last_scores,
    user_frequency_scores,
    user_history_counts,
    user_history_distribution,
)

S = 10 * DAY_S
CATEGORIES = np.array([10, 20, 30])
POP = np.array([2.0, 4.0, 1.0]) / 7  # training popularity of the tiny log


def tiny_log() -> pd.DataFrame:
    rows = [
        (1, 10, S - 5 * DAY_S), (1, 10, S - 5 * DAY_S + 60), (1, 20, S - 5 * DAY_S + 120),
        (2, 20, S - 3 * DAY_S), (2, 30, S - 3 * DAY_S + 60), (2, 20, S - 500), (2, 20, S - 400),
        (1, 30, S + 100), (1, 10, S + 200),
        (2, 30, S + 5000), (2, 30, S + 5100),
        (3, 10, S + 100), (3, 20, S + 200), (3, 99, S + 300),
        (1, 20, S + DAY_S + 10),  # after the window: must never matter
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "category_id", "timestamp"])
    frame["item_id"] = 1
    frame["behavior_type"] = pd.Categorical(["pv"] * len(frame), categories=["pv", "cart", "fav", "buy"])
    return frame.iloc[np.lexsort((frame["timestamp"], frame["user_id"]))].reset_index(drop=True)


@pytest.fixture(scope="module")
def tiny():
    events = tiny_log()
    train = events.loc[events["timestamp"] < S]
    task = next_category_task(events, CATEGORIES, S, S + DAY_S)
    return events, train, task


# points of the tiny task: (user, previous category) = (1, 20), (1, 30), (2, 20), (2, 30), (3, 10)
USER_COUNTS = np.array([[2, 1, 0], [2, 1, 1], [0, 3, 1], [0, 3, 2], [1, 0, 0]], dtype=float)


def test_popularity(tiny):
    _, train, task = tiny
    np.testing.assert_allclose(popularity(train, CATEGORIES), POP)
    scores = global_popularity_scores(task, train)
    assert scores.shape == (5, 3)
    np.testing.assert_allclose(scores, np.tile(POP, (5, 1)))


def test_recent_popularity_uses_the_last_day_before_the_window(tiny):
    _, train, task = tiny
    # last day before S: user 2's two events in category 20
    expected = (np.array([0.0, 2.0, 0.0]) + POP) / 3
    np.testing.assert_allclose(recent_popularity_scores(task, train, days=1), np.tile(expected, (5, 1)))
    # the last 4 days: 20, 30, 20, 20 of user 2
    expected = (np.array([0.0, 3.0, 1.0]) + POP) / 5
    np.testing.assert_allclose(recent_popularity_scores(task, train, days=4)[0], expected)


def test_user_frequency_counts_every_earlier_event_of_the_user(tiny):
    _, train, task = tiny
    np.testing.assert_array_equal(user_history_counts(task), USER_COUNTS)
    expected = (USER_COUNTS + POP) / (USER_COUNTS.sum(axis=1, keepdims=True) + 1)
    np.testing.assert_allclose(user_frequency_scores(task, train), expected)
    # ties between categories the user never saw are broken by popularity
    assert np.argsort(-user_frequency_scores(task, train)[4]).tolist() == [0, 1, 2]


def test_repeat_last_puts_the_previous_category_first(tiny):
    _, train, task = tiny
    scores = repeat_last_scores(task, train)
    np.testing.assert_array_equal(scores.argmax(axis=1), task.prev_category)
    # then the user's frequency: user 1 after category 20 ranks 10 (seen twice) before 30
    assert np.argsort(-scores[0]).tolist() == [1, 0, 2]


def test_markov_chain_smoothing_formula(tiny):
    _, train, task = tiny
    chain = MarkovChain.fit(train, CATEGORIES, smoothing=1.0)
    # transitions: 10->10, 10->20 (user 1); 20->30, 30->20, 20->20 (user 2)
    np.testing.assert_array_equal(chain.counts.toarray(), [[1, 1, 0], [0, 1, 1], [0, 1, 0]])
    expected = {0: ([1, 1, 0] + POP) / 3, 1: ([0, 1, 1] + POP) / 3, 2: ([0, 1, 0] + POP) / 2}
    scores = markov_scores(task, train, smoothing=1.0)
    for i, prev in enumerate(task.prev_category):
        np.testing.assert_allclose(scores[i], expected[prev])
    np.testing.assert_allclose(chain.transition_matrix().sum(axis=1), 1.0)
    # lambda = 0 is the plain maximum-likelihood chain; an unknown state falls back to popularity
    plain = chain.with_smoothing(0.0).predict(np.array([2, -1]))
    np.testing.assert_allclose(plain, [[0, 1, 0], POP])


def test_markov_unseen_state_falls_back_to_popularity():
    train = pd.DataFrame({"user_id": [1, 1], "category_id": [10, 20], "timestamp": [0, 1]})
    chain = MarkovChain.fit(train, CATEGORIES, smoothing=5.0)
    np.testing.assert_allclose(chain.predict(np.array([2]))[0], [0.5, 0.5, 0.0])


def test_changed_task_rules_out_the_previous_category(tiny):
    events, train, _ = tiny
    task = next_category_task(events, CATEGORIES, S, S + DAY_S, changed=True)
    for name, scores in baseline_scores(task, train).items():
        assert scores.shape == (len(task), 3), name
        assert np.all(scores[np.arange(len(task)), task.prev_category] == 0), name
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, err_msg=name)
    # with the previous category ruled out, repeat-last is the user's frequency
    np.testing.assert_allclose(repeat_last_scores(task, train), user_frequency_scores(task, train))


def test_training_events_must_precede_the_window(tiny):
    events, _, task = tiny
    with pytest.raises(ValueError, match="training events only"):
        global_popularity_scores(task, events)


def test_next_window_forms(tiny):
    events, train, _ = tiny
    users = np.array([3, 1, 7])
    np.testing.assert_allclose(popularity_distribution(train, CATEGORIES, users), np.tile(POP, (3, 1)))
    dist = user_history_distribution(events, CATEGORIES, users, end=S)
    np.testing.assert_allclose(dist[0], POP)  # user 3 has no history before S
    np.testing.assert_allclose(dist[1], ([2, 1, 0] + POP) / 4)
    np.testing.assert_allclose(dist[2], POP)
    # a history reaching into the window (user 3's unknown category 99 is ignored)
    dist = user_history_distribution(events, CATEGORIES, users, start=S, end=S + DAY_S,
                                     smoothing=0.0)  # fmt: skip
    np.testing.assert_allclose(dist[0], [0.5, 0.5, 0.0])


# --- simulated data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_sim():
    return simulate(n_users=300, seed=1)


def _window(sim):
    return sim.truth.end - DAY_S, sim.truth.end


def test_no_baseline_looks_ahead(small_sim):
    """A point's scores are the same when every later event is removed and its own category is
    changed: nothing at or after the point is used."""
    events, truth = small_sim.events, small_sim.truth
    start, end = _window(small_sim)
    train = events.loc[events["timestamp"] < start - DAY_S]
    cats = truth.category_ids
    task = next_category_task(events, cats, start, end)
    full = baseline_scores(task, train, simulation=small_sim)
    rng = np.random.default_rng(0)
    for point in rng.choice(len(task), size=4, replace=False):
        row = task.rows[point]
        cut = events.loc[events["timestamp"] <= task.time[point]].copy()
        cut = cut.loc[~((cut["timestamp"] == task.time[point]) & (cut.index != row))]
        cut.loc[row, "category_id"] = cats[(task.target[point] + 1) % len(cats)]
        cut = cut.reset_index(drop=True)
        sim_cut = Simulation(events=cut, truth=truth, config=small_sim.config)
        cut_task = next_category_task(cut, cats, start, end)
        i = int(np.flatnonzero((cut_task.user_id == task.user_id[point])
                               & (cut_task.time == task.time[point]))[0])  # fmt: skip
        for name, scores in baseline_scores(cut_task, train, simulation=sim_cut).items():
            np.testing.assert_allclose(scores[i], full[name][point], rtol=1e-6, err_msg=name)


def test_user_history_counts_match_a_direct_count(small_sim, monkeypatch):
    events = small_sim.events
    start, end = _window(small_sim)
    cats = small_sim.truth.category_ids
    for task_start in (start, None):
        task = next_category_task(events, cats, task_start, end)
        counts = user_history_counts(task)
        for point in np.random.default_rng(2).choice(len(task), size=10, replace=False):
            earlier = events.iloc[: task.rows[point]]
            earlier = earlier.loc[earlier["user_id"] == task.user_id[point], "category_id"]
            direct = [(earlier == c).sum() for c in cats]
            np.testing.assert_array_equal(counts[point], direct)
        monkeypatch.setattr(baselines, "_BLOCK_CELLS", 7 * len(cats))  # many small blocks
        np.testing.assert_array_equal(baselines._history_counts(task), counts)  # not the stored
        monkeypatch.undo()
        assert user_history_counts(task) is counts  # computed once per task, then read
        assert not counts.flags.writeable


def test_oracle_columns_follow_the_task_vocabulary(small_sim):
    start, end = _window(small_sim)
    cats = small_sim.truth.category_ids
    shuffled = np.random.default_rng(1).permutation(cats)[:-3]  # reordered, 3 categories unseen
    task = next_category_task(small_sim.events, cats, start, end)
    task2 = next_category_task(small_sim.events, shuffled, start, end)
    a, b = oracle_scores(small_sim, task), oracle_scores(small_sim, task2)
    assert a.shape == (len(task), len(cats)) and b.shape == (len(task2), len(shuffled))
    columns = oracle_column_map(cats, shuffled)
    kept = np.isin(task.rows, task2.rows)
    np.testing.assert_allclose(b, a[kept][:, columns], rtol=1e-6)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="not simulated"):
        oracle_column_map(cats, [123])


def test_choose_markov_smoothing(small_sim):
    events = small_sim.events
    start, end = _window(small_sim)
    train = events.loc[events["timestamp"] < start - DAY_S]
    valid = next_category_task(events, small_sim.truth.category_ids, start - DAY_S, start)
    best, ndcg = choose_markov_smoothing(train, valid, grid=(0.0, 1.0, 1e4))
    assert best in ndcg and ndcg[best] == max(ndcg.values())


@pytest.fixture(scope="module")
def sim_2000():
    return simulate(n_users=2000, seed=0)


@pytest.mark.parametrize("changed", [False, True])
def test_ranking_on_simulated_test_day_is_sane(sim_2000, changed):
    """Oracle > Markov chain > global popularity in NDCG@10 on the last day (2,000 users)."""
    sim = sim_2000
    events = sim.events
    start, end = _window(sim)
    train = events.loc[events["timestamp"] < start - DAY_S]
    cats = np.unique(train["category_id"])
    task = next_category_task(events, cats, start, end, changed=changed)
    scores = baseline_scores(task, train, simulation=sim)
    assert list(scores) == [*BASELINE_NAMES, "oracle"]
    ndcg = {name: ndcg_at_k(s, task.target, 10) for name, s in scores.items()}
    assert ndcg["oracle"] > ndcg["Markov chain"] > ndcg["global popularity"]
    assert ndcg["oracle"] >= max(ndcg.values())
    assert hit_rate_at_k(scores["oracle"], task.target, 10) > hit_rate_at_k(
        scores["global popularity"], task.target, 10
    )
