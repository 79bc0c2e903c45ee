"""Session baselines: known answers on a hand-built log, the right pairs, no look-ahead, and runs on a simulation."""

from __future__ import annotations

import numpy as np
import pytest
from event_tables import make_events

import interest_lib as il
from interest_lib.data.schema import DAY_S, SESSION_GAP_S
from interest_lib.data.tasks import condition_on_change, next_category_task
from interest_lib.models.baselines import (
    MarkovChain,
    repeat_last_scores,
    user_frequency_scores,
)
from interest_lib.models.session_baselines import (
    SESSION_BASELINE_NAMES,
    SessionMarkovChain,
    session_aware_scores,
    session_baseline_scores,
    session_markov_scores,
    session_transition_counts,
)
from interest_lib.recipes import protocol

S = 10 * DAY_S
T0, T1 = S - 5 * DAY_S, S - 3 * DAY_S
CATEGORIES = np.array([10, 20, 30])
# training popularity: user 1 has 10 x3, 20 x1, 30 x2; user 2 has 20 x2, 30 x1, 10 x1 (99 is unknown)
POP = np.array([4.0, 3.0, 3.0]) / 10


def session_log(last_category: int = 20):
    rows = [
        # training: user 1, a session 10 10 20 10, then a new session 30 30
        (1, 10, "pv", T0), (1, 10, "pv", T0 + 60), (1, 20, "pv", T0 + 120), (1, 10, "pv", T0 + 180),
        (1, 30, "pv", T0 + 4000), (1, 30, "pv", T0 + 4060),
        # user 2: 20, then a new session 30 10 99 20 (pairs with the unknown 99 never count)
        (2, 20, "pv", T1), (2, 30, "pv", T1 + 3000), (2, 10, "pv", T1 + 3060),
        (2, 99, "pv", T1 + 3100), (2, 20, "pv", T1 + 3160),
        # the task window [S, S + 1 day)
        (1, 20, "pv", S + 100),  # opens a session, previous 30
        (1, 20, "pv", S + 200),  # in session, previous 20
        (1, 10, "pv", S + 300),  # in session, previous 20
        (1, 30, "pv", S + 10_000),  # opens a session, previous 10
        (3, 10, "pv", S + 100),  # no history: not a point
        (3, 10, "pv", S + 200),  # in session, previous 10
        (3, last_category, "pv", S + 5000),  # opens a session, previous 10
        (1, 20, "pv", S + DAY_S + 10),  # after the window: must never matter
    ]  # fmt: skip
    events = make_events(rows)
    train = events.loc[events["timestamp"] < S]
    return events, train


@pytest.fixture(scope="module")
def tiny():
    events, train = session_log()
    task = next_category_task(events, CATEGORIES, S, S + DAY_S)
    return events, train, task


NEW_SESSION = np.array([True, False, False, True, False, True])
PREVIOUS = np.array([2, 1, 1, 0, 0, 0])  # column indices of 30, 20, 20, 10, 10, 10


def test_the_tiny_task_has_the_expected_points(tiny):
    _, _, task = tiny
    np.testing.assert_array_equal(task.new_session, NEW_SESSION)
    np.testing.assert_array_equal(task.prev_category, PREVIOUS)
    np.testing.assert_array_equal(task.user_id, [1, 1, 1, 1, 3, 3])


def test_session_aware_repeats_inside_a_session(tiny):
    _, train, task = tiny
    scores = session_aware_scores(task, train)
    inside = ~NEW_SESSION
    # the previous category is first, with score 2
    np.testing.assert_array_equal(scores[inside].argmax(axis=1), PREVIOUS[inside])
    np.testing.assert_array_equal(scores[inside, PREVIOUS[inside]], 2.0)
    # point 1 (user 1 after 10 10 20 10 30 30 | 20): the others by the user's counts 3, -, 2
    np.testing.assert_allclose(scores[1, [0, 2]], (np.array([3.0, 2.0]) + POP[[0, 2]]) / 8)
    np.testing.assert_allclose(scores[inside], repeat_last_scores(task, train)[inside])


def test_session_aware_falls_back_to_user_frequency_when_a_session_opens(tiny):
    _, train, task = tiny
    scores = session_aware_scores(task, train)
    # point 0: user 1 has 10 x3, 20 x1, 30 x2; the previous category 30 is not raised
    np.testing.assert_allclose(scores[0], (np.array([3.0, 1.0, 2.0]) + POP) / 7)
    assert scores[0].argmax() == 0 != PREVIOUS[0]
    # point 3: after 10 10 20 10 30 30 20 20 10, user 1's favourite is still 10
    np.testing.assert_allclose(scores[3], (np.array([4.0, 3.0, 2.0]) + POP) / 10)
    # point 5: user 3 has seen 10 twice
    np.testing.assert_allclose(scores[5], (np.array([2.0, 0.0, 0.0]) + POP) / 3)
    np.testing.assert_allclose(scores[NEW_SESSION], user_frequency_scores(task, train)[NEW_SESSION])


def test_the_two_markov_matrices_count_the_right_pairs(tiny):
    _, train, _ = tiny
    within, across = session_transition_counts(train, CATEGORIES)
    # within sessions: 10>10, 10>20, 20>10, 30>30 (user 1) and 30>10 (user 2); 10>99>20 skipped
    expected_within = np.zeros((3, 3))
    for i, j in ((0, 0), (0, 1), (1, 0), (2, 2), (2, 0)):
        expected_within[i, j] += 1
    # across a boundary: 10>30 (user 1), 20>30 (user 2); never user 1's last 30 > user 2's first 20
    expected_across = np.zeros((3, 3))
    for i, j in ((0, 2), (1, 2)):
        expected_across[i, j] += 1
    np.testing.assert_array_equal(within.toarray(), expected_within)
    np.testing.assert_array_equal(across.toarray(), expected_across)
    plain = MarkovChain.fit(train, CATEGORIES)
    np.testing.assert_array_equal((within + across).toarray(), plain.counts.toarray())


def test_the_session_gap_decides_the_kind_of_pair():
    gap = SESSION_GAP_S
    events = make_events([(1, 10, "pv", 0), (1, 20, "pv", gap), (1, 30, "pv", 2 * gap + 1)])
    within, across = session_transition_counts(events, CATEGORIES)
    assert within.toarray()[0, 1] == 1 and within.sum() == 1  # exactly the gap: same session
    assert across.toarray()[1, 2] == 1 and across.sum() == 1  # one second more: a new session


def test_session_markov_scores_apply_the_matrix_of_the_request(tiny):
    _, train, task = tiny
    scores = session_markov_scores(task, train)
    assert scores.shape == (6, 3) and scores.dtype == np.float64
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    np.testing.assert_allclose(scores[0], POP)  # across from 30: never seen, popularity
    np.testing.assert_allclose(scores[1], (np.array([1.0, 0.0, 0.0]) + POP) / 2)  # within from 20
    np.testing.assert_allclose(scores[3], (np.array([0.0, 0.0, 1.0]) + POP) / 2)  # across from 10
    np.testing.assert_allclose(scores[4], (np.array([1.0, 1.0, 0.0]) + POP) / 3)  # within from 10
    np.testing.assert_allclose(scores[5], scores[3])
    # with smoothing 10 the counts matter less
    smooth = session_markov_scores(task, train, smoothing=10.0)
    np.testing.assert_allclose(smooth[1], (np.array([1.0, 0.0, 0.0]) + 10 * POP) / 11)
    chain = SessionMarkovChain.fit(train, CATEGORIES).with_smoothing(1.0, 10.0)
    mixed = session_markov_scores(task, train, chain=chain)
    np.testing.assert_allclose(mixed[~NEW_SESSION], scores[~NEW_SESSION])
    np.testing.assert_allclose(mixed[NEW_SESSION], smooth[NEW_SESSION])


def test_no_event_at_or_after_the_point_is_used():
    """Another category for the last window event (itself a point) leaves every score as it was."""
    events, train = session_log(last_category=20)
    other_events, other_train = session_log(last_category=30)
    task = next_category_task(events, CATEGORIES, S, S + DAY_S)
    other = next_category_task(other_events, CATEGORIES, S, S + DAY_S)
    assert task.target[-1] != other.target[-1]
    for baseline in (session_aware_scores, session_markov_scores):
        np.testing.assert_array_equal(baseline(task, train), baseline(other, other_train))


def test_changed_category_conditioning(tiny):
    events, train, task = tiny
    changed = next_category_task(events, CATEGORIES, S, S + DAY_S, changed=True)
    # changes: user 1 30>20, 20>10, 10>30; user 3 10>20
    positions = np.array([0, 2, 3, 5])
    np.testing.assert_array_equal(changed.rows, task.rows[positions])
    aware = session_aware_scores(changed, train)
    np.testing.assert_allclose(aware, user_frequency_scores(changed, train))
    np.testing.assert_array_equal(aware[np.arange(4), changed.prev_category], 0.0)
    markov = session_markov_scores(changed, train)
    expected = condition_on_change(session_markov_scores(task, train)[positions], changed)
    np.testing.assert_allclose(markov, expected)
    np.testing.assert_allclose(markov.sum(axis=1), 1.0)
    np.testing.assert_array_equal(markov[np.arange(4), changed.prev_category], 0.0)


def test_training_events_inside_the_window_are_refused(tiny):
    events, _, task = tiny
    with pytest.raises(ValueError, match="training events only"):
        session_aware_scores(task, events)
    with pytest.raises(ValueError, match="training events only"):
        session_markov_scores(task, events)


def test_predict_checks_shapes(tiny):
    _, train, _ = tiny
    chain = SessionMarkovChain.fit(train, CATEGORIES)
    with pytest.raises(ValueError, match="shape"):
        chain.predict(np.array([0, 1]), np.array([True]))
    with pytest.raises(ValueError, match="smoothing"):
        SessionMarkovChain.fit(train, CATEGORIES, smoothing=-1.0)


@pytest.fixture(scope="module")
def simulated():
    return protocol.book_setup(il.simulate(n_users=400, seed=0))


@pytest.mark.parametrize("changed", [False, True])
def test_both_run_on_a_simulation(simulated, changed):
    task = simulated.task("test", changed)
    scores = session_baseline_scores(task, simulated.split.train)
    assert tuple(scores) == SESSION_BASELINE_NAMES
    for matrix in scores.values():
        assert matrix.shape == (len(task), simulated.n_categories)
        assert matrix.dtype == np.float64
        assert np.isfinite(matrix).all() and (matrix >= 0).all()
    np.testing.assert_allclose(scores["session Markov chain"].sum(axis=1), 1.0)
    opens = task.new_session
    assert 0 < opens.sum() < len(task)  # both rules are exercised
    if not changed:
        np.testing.assert_allclose(
            scores["session-aware"][~opens], repeat_last_scores(task, simulated.split.train)[~opens]
        )
