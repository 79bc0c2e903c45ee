"""The simulator: determinism, structure, realism targets (CONTRIBUTING.md, "The simulator") and the oracle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interest_lib.data.describe import TAOBAO_REFERENCE, compare_with_taobao, log_statistics
from interest_lib.data.oracle import oracle_next_category
from interest_lib.data.schema import BEHAVIOR_TYPES, EVENT_COLUMNS, SESSION_GAP_S
from interest_lib.data.simulation import SimulationParams, simulate


@pytest.fixture(scope="module")
def default_sim():
    return simulate(seed=0)


def _same_user_next(events: pd.DataFrame) -> np.ndarray:
    user = events["user_id"].to_numpy()
    return user[1:] == user[:-1]


# --- realism targets of the simulator (CONTRIBUTING.md), one test each ----------------------------------------------------


@pytest.fixture(scope="module")
def stats(default_sim):
    return log_statistics(default_sim.events)


def test_behavior_mix_within_1_5_points_of_taobao(stats):
    for label in ("pv", "cart", "fav", "buy"):
        real = TAOBAO_REFERENCE[f"share_{label}"]["real"]
        assert abs(stats[f"share_{label}"] - real) <= 0.015, label


def test_consecutive_same_category_share(stats):
    assert 0.35 <= stats["same_category_next"] <= 0.50


def test_events_per_user_mean_and_long_tail(stats):
    assert 60 <= stats["events_per_user_mean"] <= 120
    assert stats["events_per_user_max"] >= 4 * stats["events_per_user_median"]


def test_median_session_length(stats):
    assert 2 <= stats["session_length_median"] <= 5


def test_median_share_of_top_category(stats):
    assert 0.15 <= stats["top_category_share_median"] <= 0.40


def test_every_target_in_range(default_sim):
    assert compare_with_taobao(default_sim.events)["in range"].all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_as_predictable_as_real_taobao(seed):
    """The predictability targets (leave-last-out), for three seeds."""
    from interest_lib.data.describe import PREDICTABILITY_REFERENCE, predictability_statistics

    stats = predictability_statistics(simulate(seed=seed).events)
    for name, ref in PREDICTABILITY_REFERENCE.items():
        low, high = ref["target"]
        assert low <= stats[name] <= high, (name, stats[name])
    assert 0.20 <= stats["hr10_popularity"] <= 0.33
    assert 0.42 <= stats["hr10_user_frequency"] <= 0.55
    assert 0.33 <= stats["accuracy_repeat_last"] <= 0.45
    assert 0.17 <= stats["accuracy_most_frequent"] <= 0.30
    assert stats["hr10_popularity_no_repeats"] <= 0.35
    assert stats["hr10_user_frequency_no_repeats"] <= 0.45


@pytest.mark.parametrize("seed", [1, 2])
def test_log_and_memory_targets_hold_for_other_seeds(seed):
    assert compare_with_taobao(simulate(seed=seed).events)["in range"].all()


# --- structure ------------------------------------------------------------------------------------


def test_schema_and_order(default_sim):
    ev = default_sim.events
    assert list(ev.columns) == [*EVENT_COLUMNS, "platform"]
    for column in ("user_id", "item_id", "category_id", "timestamp"):
        assert ev[column].dtype == np.int64
    assert list(ev["behavior_type"].cat.categories) == list(BEHAVIOR_TYPES)
    key = ev["user_id"].to_numpy() * 10**10 + ev["timestamp"].to_numpy()
    assert np.all(np.diff(key) > 0), "sorted by user, then strictly by time"


def test_truth_is_aligned_with_events(default_sim):
    ev, truth = default_sim.events, default_sim.truth
    assert len(truth.event_segment) == len(ev) == len(truth.event_session)
    assert np.allclose(truth.emission.sum(axis=1), 1)
    assert np.allclose(truth.transition_before.sum(axis=1), 1)
    assert np.allclose(truth.transition_after.sum(axis=1), 1)
    assert not np.allclose(truth.transition_before, truth.transition_after)
    # the latent segment is constant within a session
    seg = pd.Series(truth.event_segment).groupby(truth.event_session).nunique()
    assert (seg == 1).all()


def test_sessions_are_observable_from_gaps(default_sim):
    ev, truth = default_sim.events, default_sim.truth
    same_user = _same_user_next(ev)
    gap = np.diff(ev["timestamp"].to_numpy())[same_user]
    same_session = (truth.event_session[1:] == truth.event_session[:-1])[same_user]
    assert np.all(gap[same_session] <= SESSION_GAP_S)
    assert np.all(gap[~same_session] > SESSION_GAP_S)


def test_cold_start_users_have_at_most_three_web_events_before_cutoff(default_sim):
    ev, truth = default_sim.events, default_sim.truth
    group = pd.Series(truth.user_group, index=truth.user_ids)
    web_before = ev[(ev["platform"] == "web") & (ev["timestamp"] < truth.cold_start_cutoff)]
    counts = web_before.groupby("user_id").size()
    cold = group[group.isin(["both_cold", "web_cold"])].index
    assert counts.reindex(cold, fill_value=0).max() <= 3
    assert len(cold) >= 0.1 * len(group)
    app_users = set(ev.loc[ev["platform"] == "app", "user_id"])
    assert app_users.isdisjoint(group[group == "web_cold"].index)
    assert set(group[group == "app_only"].index).isdisjoint(set(ev.loc[ev["platform"] == "web", "user_id"]))


def test_web_exposure_shifts_the_category_mix(default_sim):
    ev = default_sim.events
    mix = pd.crosstab(ev["category_id"], ev["platform"], normalize="columns")
    total_variation = 0.5 * (mix["app"] - mix["web"]).abs().sum()
    assert total_variation > 0.1


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_users=st.integers(5, 60))
def test_same_seed_same_data_and_window(seed, n_users):
    a = simulate(n_users=n_users, seed=seed)
    b = simulate(n_users=n_users, seed=seed)
    pd.testing.assert_frame_equal(a.events, b.events)
    np.testing.assert_array_equal(a.truth.event_segment, b.truth.event_segment)
    ts = a.events["timestamp"]
    assert ts.min() >= a.truth.start and ts.max() < a.truth.end


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 2))
def test_different_seeds_differ(seed):
    a = simulate(n_users=30, seed=seed).events
    b = simulate(n_users=30, seed=seed + 1).events
    assert len(a) != len(b) or not a.equals(b)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="shift_day"):
        simulate(n_users=10, shift_day=20)
    with pytest.raises(ValueError, match="n_categories"):
        simulate(n_users=10, n_categories=8, n_segments=6)
    with pytest.raises(ValueError, match="cold_start_day"):
        SimulationParams(n_days=4, shift_day=2, cold_start_day=4)
    with pytest.raises(ValueError, match="segment_names"):
        SimulationParams(segment_names=("a", "b"))
    with pytest.raises(TypeError, match="n_user"):
        simulate(n_user=10)  # a misspelt keyword is not silently ignored
    with pytest.raises(TypeError, match="keywords"):
        simulate(10)  # type: ignore[arg-type]


def test_params_record_and_keywords_draw_the_same_log():
    params = SimulationParams(n_users=40, n_segments=4, n_categories=30, taste_shape=None, seed=2)
    by_record = simulate(params)
    by_keywords = simulate(n_users=40, n_segments=4, n_categories=30, taste_shape=None, seed=2)
    pd.testing.assert_frame_equal(by_record.events, by_keywords.events)
    pd.testing.assert_frame_equal(simulate(params=params).events, by_record.events)
    assert by_keywords.config == params
    assert by_keywords.config["taste_shape"] is None and by_keywords.config.n_segments == 4
    with pytest.raises(KeyError):
        by_keywords.config["no_such_parameter"]
    # keywords after a record change its fields; the stored config draws the same log again
    other_seed = simulate(params, seed=3)
    assert other_seed.config == dataclasses.replace(params, seed=3)
    assert not other_seed.events.equals(by_record.events)
    pd.testing.assert_frame_equal(simulate(other_seed.config).events, other_seed.events)
    truth = by_record.truth
    assert (truth.end, truth.shift_time) == (params.end, params.shift_time)
    assert truth.cold_start_cutoff == params.cold_start_cutoff == params.start + 8 * 86400
    assert truth.segment_names == [f"segment {s}" for s in range(4)]


# --- the oracle ------------------------------------------------------------------------------------


def _forward_filter_one_user(sim, user_id):
    """A plain, loop-by-loop forward filter of one user: the reference implementation."""
    ev, truth = sim.events, sim.truth
    rows = ev.index[ev["user_id"] == user_id]
    u = int(np.searchsorted(truth.user_ids, user_id))
    cats = truth.category_index(ev.loc[rows, "category_id"].to_numpy())
    times = ev.loc[rows, "timestamp"].to_numpy()
    plats = (ev.loc[rows, "platform"] == "web").to_numpy().astype(int)
    kappa = truth.repeat_prob
    preds = []
    alpha = None
    for t in range(len(rows)):
        e = truth.user_emission(np.array([u]), np.array([plats[t]]))[0]
        if t == 0:
            prior = truth.user_preference[u].copy()
            pred = prior @ e
            lik = e[:, cats[t]]
        elif times[t] - times[t - 1] > truth.session_gap_s:
            a_u = truth.user_transition(u, after_shift=times[t - 1] >= truth.shift_time)
            prior = alpha @ a_u
            pred = prior @ e
            lik = e[:, cats[t]]
        else:
            prior = alpha
            pred = (1 - kappa) * (prior @ e)
            pred[cats[t - 1]] += kappa
            lik = (1 - kappa) * e[:, cats[t]] + kappa * (cats[t] == cats[t - 1])
        preds.append(pred)
        alpha = prior * lik
        alpha /= alpha.sum()
    return rows, np.array(preds)


def test_oracle_matches_a_reference_filter():
    sim = simulate(n_users=40, seed=3)
    probs = oracle_next_category(sim)
    for user_id in sim.truth.user_ids[:8]:
        rows, expected = _forward_filter_one_user(sim, user_id)
        np.testing.assert_allclose(probs[rows], expected, rtol=1e-4, atol=1e-6)


def test_oracle_is_calibrated(default_sim):
    """For a calibrated forecaster E[p(y)] = E[sum_c p_c^2]; a wrong filter breaks this."""
    ev, truth = default_sim.events, default_sim.truth
    test_rows = (ev["timestamp"] >= truth.end - 86400).to_numpy()
    probs = oracle_next_category(default_sim, test_rows)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    y = truth.category_index(ev.loc[test_rows, "category_id"].to_numpy())
    observed = probs[np.arange(len(y)), y].mean()
    expected = (probs.astype(np.float64) ** 2).sum(axis=1).mean()
    assert abs(observed - expected) < 0.01, (observed, expected)


def test_oracle_rows_select_the_same_predictions():
    sim = simulate(n_users=30, seed=1)
    full = oracle_next_category(sim)
    mask = (sim.events["timestamp"] % 3 == 0).to_numpy()
    np.testing.assert_allclose(oracle_next_category(sim, mask), full[mask])
    np.testing.assert_allclose(oracle_next_category(sim, np.flatnonzero(mask)), full[mask])


@pytest.mark.parametrize("memory", [0.0, 1.0])
def test_oracle_matches_the_reference_filter_at_every_memory(memory):
    sim = simulate(n_users=30, seed=5, memory=memory)
    probs = oracle_next_category(sim)
    for user_id in sim.truth.user_ids[:6]:
        rows, expected = _forward_filter_one_user(sim, user_id)
        np.testing.assert_allclose(probs[rows], expected, rtol=1e-4, atol=1e-6)


def test_category_sampler_draws_from_the_taste_weighted_emission():
    """The rejection sampler gives P(c) proportional to emission[p, s, c] * taste[u, c]."""
    from interest_lib.data.simulation_stages import _sample_categories

    rng = np.random.default_rng(0)
    emission = rng.dirichlet(np.full(7, 0.5), size=(2, 3))  # (P, S, C)
    taste = rng.gamma(0.3, 1 / 0.3, size=(4, 7)) + 1e-3  # (U, C)
    n = 200_000
    platform, segment, user = np.ones(n, int), np.full(n, 2), np.full(n, 3)
    draws = _sample_categories(np.random.default_rng(1), emission, taste, platform, segment, user)
    expected = emission[1, 2] * taste[3] / (emission[1, 2] * taste[3]).sum()
    observed = np.bincount(draws, minlength=7) / n
    assert np.all(np.abs(observed - expected) <= 4 * np.sqrt(expected / n) + 1e-4)


def test_memory_sets_how_much_session_order_tells():
    from interest_lib.data.describe import session_order_lift

    none = session_order_lift(simulate(n_users=3000, seed=1, memory=0.0).events)
    full = session_order_lift(simulate(n_users=3000, seed=1, memory=1.0).events)
    assert abs(none["lift"] - 1.0) < 0.03  # order tells nothing beyond the preference
    assert full["lift"] > 1.3
    with pytest.raises(ValueError, match="memory"):
        SimulationParams(memory=1.5)
