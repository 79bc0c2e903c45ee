"""The stages of :func:`~interest_lib.data.simulation.simulate`, one function per stage.

:func:`~interest_lib.data.simulation.simulate` calls them in the order in which they draw from its
one random generator: the world (:func:`_draw_world`), the users, the sessions and the gaps
between their events, the platforms, the latent segment path, and then per event the categories,
the items and the behaviours. Changing that order, or a draw inside a stage, changes every log
drawn with a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from interest_lib.data.schema import DAY_S, SESSION_GAP_S

if TYPE_CHECKING:
    from interest_lib.data.simulation import SimulationParams

_APP_ONLY, _BOTH, _BOTH_COLD, _WEB_COLD = range(4)
"""Codes of the user groups, positions in :data:`~interest_lib.data.simulation.USER_GROUPS`."""

# Share of session starts per hour of the day (UTC+8), shaped like the Taobao log: quiet at night,
# a plateau during the day and a peak in the evening.
_HOURLY_ACTIVITY = np.array(
    [3.0, 1.6, 0.9, 0.6, 0.5, 0.6, 1.0, 1.8, 2.8, 3.6, 4.2, 4.2,
     4.0, 4.1, 4.2, 4.2, 4.1, 4.0, 4.2, 4.9, 5.6, 6.2, 6.0, 4.6]
)  # fmt: skip


def _segment_emission(
    rng: np.random.Generator,
    n_segments: int,
    n_categories: int,
    overlap: int,
    background: float,
    zipf: float,
) -> np.ndarray:
    """Sparse, overlapping, long-tailed (S, C) emission rows."""
    block = n_categories // n_segments
    perm = rng.permutation(n_categories)
    emission = np.zeros((n_segments, n_categories))
    for s in range(n_segments):
        own = perm[s * block : (s + 1) * block]
        nxt = perm[((s + 1) % n_segments) * block : ((s + 1) % n_segments) * block + overlap]
        prv = perm[((s - 1) % n_segments) * block : ((s - 1) % n_segments) * block + overlap]
        support = np.unique(np.concatenate([own, nxt, prv]))
        weights = (1.0 + rng.permutation(len(support))) ** -zipf
        emission[s, support] = weights
    emission /= emission.sum(axis=1, keepdims=True)
    emission = (1.0 - background) * emission + background / n_categories
    return emission


def _migration_matrices(
    n_segments: int, stickiness: tuple[float, float], promoted: int
) -> tuple[np.ndarray, np.ndarray]:
    """Global sticky transition matrices G before and after the promotion shift."""
    s = n_segments
    uniform = (np.ones((s, s)) - np.eye(s)) / (s - 1)
    partner = np.zeros((s, s))
    partner[np.arange(s), (np.arange(s) + 1) % s] = 1.0  # baby -> home, fashion -> beauty, ...
    moves_before = 0.4 * uniform + 0.6 * partner
    toward_promoted = np.zeros((s, s))
    toward_promoted[:, promoted] = 1.0
    toward_promoted[promoted] = partner[promoted]
    moves_after = 0.4 * moves_before + 0.6 * toward_promoted
    before = stickiness[0] * np.eye(s) + (1 - stickiness[0]) * moves_before
    after = stickiness[1] * np.eye(s) + (1 - stickiness[1]) * moves_after
    return before, after


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (n, k)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return (cum < u[:, None]).sum(axis=1)


def _session_start_times(
    rng: np.random.Generator, n: int, first_day: np.ndarray, n_days: np.ndarray, start: int
) -> np.ndarray:
    """``n`` session starts: a uniform day in ``[first_day, first_day + n_days)``, an hour from the
    daily activity curve (UTC+8) and a uniform second within the hour."""
    day = first_day + np.floor(rng.random(n) * n_days).astype(np.int64)
    hour = rng.choice(24, size=n, p=_HOURLY_ACTIVITY / _HOURLY_ACTIVITY.sum())
    second = rng.integers(0, 3600, size=n)
    # the window starts at midnight UTC+8, so hour h of local day d is start + d days + h hours
    return start + day * DAY_S + hour * 3600 + second


def _sample_categories(
    rng: np.random.Generator,
    emission_pf: np.ndarray,
    taste: np.ndarray,
    platform: np.ndarray,
    segment: np.ndarray,
    user: np.ndarray,
) -> np.ndarray:
    """One category per event from its user's taste-weighted emission row, ``(n_events,)``.

    Rejection sampling, so no (events x C) array is ever built: a category is proposed from the
    emission row of the event's platform and segment (one ``searchsorted`` in the stacked
    cumulative rows) and accepted with probability ``taste[user, c] / max_c taste[user, c]``;
    rejected events propose again. The accepted category has probability proportional to
    ``emission_pf[platform, segment, c] * taste[user, c]``, exactly.
    """
    n_platforms, n_segments, n_categories = emission_pf.shape
    cum = np.cumsum(emission_pf.reshape(-1, n_categories), axis=1)
    cum /= cum[:, -1:]
    row = platform * n_segments + segment
    stacked = (cum + np.arange(len(cum))[:, None]).ravel()
    top_taste = taste.max(axis=1)
    out = np.empty(len(row), dtype=np.int64)
    todo = np.arange(len(row))
    while len(todo):
        r = row[todo]
        flat = np.searchsorted(stacked, r + rng.random(len(todo)), side="right")
        proposal = np.minimum(flat - r * n_categories, n_categories - 1)
        u = user[todo]
        accept = rng.random(len(todo)) * top_taste[u] < taste[u, proposal]
        out[todo[accept]] = proposal[accept]
        todo = todo[~accept]
    return out


def _random_ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` distinct ids from ``[low, high)``, sorted."""
    return np.sort(rng.choice(np.arange(low, high, dtype=np.int64), size=n, replace=False))


@dataclass
class _World:
    """What every user shares: segments, categories, platforms and transitions."""

    emission: np.ndarray  # (S, C) P(category | segment)
    exposure: np.ndarray  # (P, C) category exposure per platform
    emission_pf: np.ndarray  # (P, S, C) P(category | segment, platform)
    transition_before: np.ndarray  # (S, S) G before the shift
    transition_after: np.ndarray  # (S, S) G after the shift
    promoted: int  # index of the promoted segment
    segment_popularity: np.ndarray  # (S,) descending
    category_ids: np.ndarray  # (C,) int64


def _draw_world(rng: np.random.Generator, p: SimulationParams) -> _World:
    """Emission rows, platform exposure, migration matrices, segment popularity, category ids."""
    S, C = p.n_segments, p.n_categories
    emission = _segment_emission(rng, S, C, p.overlap, p.background, p.category_zipf)
    exposure = np.ones((2, C))
    exposure[1] = np.exp(rng.normal(0.0, p.web_exposure_sigma, size=C))
    exposure[1] /= exposure[1].mean()
    emission_pf = emission[None, :, :] * exposure[:, None, :]
    emission_pf /= emission_pf.sum(axis=2, keepdims=True)
    names = p.resolved_segment_names
    promoted = int(names.index("electronics")) if "electronics" in names else 0
    g_before, g_after = _migration_matrices(S, p.stickiness, promoted)
    segment_popularity = np.sort(rng.dirichlet(np.full(S, 4.0)))[::-1]
    category_ids = _random_ids(rng, C, 1_000, 5_000_000)
    rng.shuffle(category_ids)
    return _World(emission, exposure, emission_pf, g_before, g_after, promoted,
                  segment_popularity, category_ids)  # fmt: skip


@dataclass
class _Users:
    """Per-user draws, (U, ...) arrays."""

    preference: np.ndarray  # (U, S) pi_u
    group: np.ndarray  # (U,) code into USER_GROUPS
    core_segment: np.ndarray  # (U,) most preferred segment
    taste: np.ndarray  # (U, C) personal taste
    buy_propensity: np.ndarray  # (U,)
    web_share: np.ndarray  # (U,) share of web sessions of the "both" group, else 0
    n_sessions: np.ndarray  # (U,) int64


def _draw_users(rng: np.random.Generator, p: SimulationParams, world: _World) -> _Users:
    """Segment preferences, groups, tastes, buying propensity and activity of every user."""
    S, C, U = p.n_segments, p.n_categories, p.n_users
    preference = rng.dirichlet(p.preference_concentration * S * world.segment_popularity, size=U)
    preference = np.clip(preference, 1e-6, None)
    preference /= preference.sum(axis=1, keepdims=True)
    shares = np.asarray(p.group_shares) / sum(p.group_shares)
    group = rng.choice(len(shares), size=U, p=shares)
    core_segment = preference.argmax(axis=1)
    if p.taste_shape is None:
        taste = np.ones((U, C))
    else:
        taste = rng.gamma(p.taste_shape, 1.0 / p.taste_shape, size=(U, C))
    buy_propensity = rng.lognormal(0.0, 0.8, size=U)
    web_share = np.where(group == _BOTH, rng.uniform(0.2, 0.7, size=U), 0.0)
    n_sessions = np.maximum(
        1,
        np.round(rng.lognormal(np.log(p.sessions_per_user_median), p.sessions_per_user_sigma, U)),
    ).astype(np.int64)
    web_cold = group == _WEB_COLD
    n_sessions[web_cold] = np.minimum(n_sessions[web_cold], 8)  # new to the web
    return _Users(preference, group, core_segment, taste, buy_propensity, web_share, n_sessions)


@dataclass
class _Sessions:
    """Sessions in user-then-time order, ``(n_sessions,)``, and their events, ``(n_events,)``.

    The events of a session are consecutive; ``length`` counts the events drawn for a session,
    of which the platform stage may keep fewer.
    """

    user: np.ndarray  # owner (user index) of every session
    position: np.ndarray  # rank of the session among its owner's sessions
    length: np.ndarray  # events drawn for the session
    start: np.ndarray  # Unix s of the session's first event
    duration: np.ndarray  # s from the first to the last drawn event
    first_event: np.ndarray  # index of the session's first event
    event_session: np.ndarray  # (n_events,) session of every event
    event_position: np.ndarray  # (n_events,) rank of the event within its session
    event_offset: np.ndarray  # (n_events,) s since the session's first event


def _draw_sessions(rng: np.random.Generator, p: SimulationParams, users: _Users) -> _Sessions:
    """Every session's owner, length and start, and the gaps between its events.

    Sessions start on a day and hour drawn from the activity curve; ``web_cold`` users have one
    short session before the cold-start day and the rest on it or later. Events of a session are
    1 s plus an exponential gap apart, never reaching the session gap, and sessions of one user
    are then pushed apart by more than :data:`SESSION_GAP_S`.
    """
    n_days, cold_start_day = p.n_days, p.resolved_cold_start_day
    sess_user = np.repeat(np.arange(p.n_users), users.n_sessions)
    n_sess = len(sess_user)
    user_first = np.concatenate([[0], np.cumsum(users.n_sessions)[:-1]])
    sess_pos = np.arange(n_sess) - user_first[sess_user]
    sess_len = rng.geometric(1.0 - p.session_continue_prob, size=n_sess).astype(np.int64)
    is_web_cold = users.group[sess_user] == _WEB_COLD
    first_day = np.zeros(n_sess, dtype=np.int64)
    day_span = np.full(n_sess, n_days, dtype=np.int64)
    first_day[is_web_cold & (sess_pos > 0)] = cold_start_day
    day_span[is_web_cold & (sess_pos > 0)] = n_days - cold_start_day
    day_span[is_web_cold & (sess_pos == 0)] = cold_start_day
    sess_start = _session_start_times(rng, n_sess, first_day, day_span, p.start)
    short = is_web_cold & (sess_pos == 0)
    sess_len[short] = np.minimum(sess_len[short], rng.integers(1, 4, size=short.sum()))
    order = np.lexsort((sess_start, sess_user))
    sess_start, sess_len = sess_start[order], sess_len[order]

    # gaps inside sessions: 1 s + exponential, never reaching the session gap
    n_ev = int(sess_len.sum())
    ev_sess = np.repeat(np.arange(n_sess), sess_len)
    sess_first_ev = np.concatenate([[0], np.cumsum(sess_len)[:-1]])
    ev_pos = np.arange(n_ev) - sess_first_ev[ev_sess]
    gaps = np.minimum(1 + rng.exponential(75.0, size=n_ev).astype(np.int64), 1500)
    gaps[ev_pos == 0] = 0
    offset = np.cumsum(gaps)
    offset -= offset[sess_first_ev][ev_sess]
    duration = offset[np.concatenate([sess_first_ev[1:] - 1, [n_ev - 1]])]
    sess_start = _separate_sessions(sess_start, duration, sess_user, user_first)
    return _Sessions(sess_user, sess_pos, sess_len, sess_start, duration, sess_first_ev,
                     ev_sess, ev_pos, offset)  # fmt: skip


def _separate_sessions(
    start: np.ndarray, duration: np.ndarray, user: np.ndarray, user_first: np.ndarray
) -> np.ndarray:
    """Push sessions forward so consecutive sessions of a user are more than SESSION_GAP_S apart.

    ``t'_k = max(t_k, t'_{k-1} + d_{k-1} + gap)``, solved with a segmented running maximum.
    """
    need = duration + SESSION_GAP_S + 60
    cum_need = np.cumsum(need) - need
    cum_need -= cum_need[user_first][user]
    user_offset = user.astype(np.int64) << 42
    u = start - cum_need + user_offset
    return np.maximum.accumulate(u) - user_offset + cum_need


def _draw_platforms(
    rng: np.random.Generator, p: SimulationParams, users: _Users, sessions: _Sessions
) -> tuple[np.ndarray, np.ndarray]:
    """The platform of every session and the number of its events that are kept.

    ``both`` users go to the web with their ``web_share``, ``web_cold`` users always.
    ``both_cold`` users have one short web session before the cut-off and are on the web half
    the time after it; shortening a session drops its last events (its start stays).

    Returns
    -------
    (web, kept_length)
        ``(n_sessions,)`` bool and int64.
    """
    sess_user, sess_len = sessions.user, sessions.length
    n_sess = len(sess_user)
    sess_web = np.zeros(n_sess, dtype=bool)
    g_sess = users.group[sess_user]
    both = g_sess == _BOTH
    sess_web[both] = rng.random(both.sum()) < users.web_share[sess_user[both]]
    sess_web[g_sess == _WEB_COLD] = True
    both_cold = g_sess == _BOTH_COLD
    after_cut = sessions.start >= p.cold_start_cutoff
    sess_web[both_cold & after_cut] = rng.random((both_cold & after_cut).sum()) < 0.5
    kept_length = sess_len.copy()
    before = np.flatnonzero(both_cold & ~after_cut)
    if len(before):
        pick_key = rng.random(len(before))
        owners = sess_user[before]
        # the session with the smallest random key of each both_cold user becomes web
        o = np.lexsort((pick_key, owners))
        first_of_owner = np.r_[True, owners[o][1:] != owners[o][:-1]]
        chosen = before[o[first_of_owner]]
        sess_web[chosen] = True
        cap = rng.integers(1, 4, size=len(chosen))
        kept_length[chosen] = np.minimum(sess_len[chosen], cap)
    return sess_web, kept_length


def _draw_segment_path(
    rng: np.random.Generator,
    p: SimulationParams,
    world: _World,
    users: _Users,
    sessions: _Sessions,
    kept_length: np.ndarray,
) -> np.ndarray:
    """The latent segment of every session, ``(n_sessions,)``: the Markov chain.

    A user's first session draws from ``pi_u``; each later one moves by
    ``(1 - beta) G + beta pi_u``, with the matrices (and the promotion's pull on ``pi_u``) in
    force at the previous session's last kept event. All users advance one session at a time.
    """
    sess_user, sess_pos = sessions.user, sessions.position
    preference, promoted, pull = users.preference, world.promoted, p.promotion_pull
    sess_segment = np.zeros(len(sess_user), dtype=np.int64)
    sess_last_time = sessions.start + _last_event_offset(
        sessions.event_offset, sessions.first_event, kept_length
    )
    by_pos = np.argsort(sess_pos, kind="stable")
    bounds = np.searchsorted(sess_pos[by_pos], np.arange(sess_pos.max() + 2))
    first = by_pos[bounds[0] : bounds[1]]
    sess_segment[first] = _sample_rows(rng, preference[sess_user[first]])
    for k in range(1, sess_pos.max() + 1):
        cur = by_pos[bounds[k] : bounds[k + 1]]
        prev = cur - 1
        after_shift = sess_last_time[prev] >= p.shift_time
        probs = np.where(
            after_shift[:, None],
            world.transition_after[sess_segment[prev]],
            world.transition_before[sess_segment[prev]],
        )
        pref = preference[sess_user[cur]]
        pref = np.where(after_shift[:, None], (1.0 - pull) * pref, pref)
        pref[after_shift, promoted] += pull
        probs = p.memory * probs + (1.0 - p.memory) * pref
        sess_segment[cur] = _sample_rows(rng, probs)
    return sess_segment


def _draw_categories(
    rng: np.random.Generator,
    p: SimulationParams,
    world: _World,
    users: _Users,
    events: _EventDraws,
) -> tuple[np.ndarray, np.ndarray]:
    """Every event's category index and whether it repeats the previous one, ``(n_events,)``.

    A fresh category comes from the user's taste-weighted emission row of the event's segment
    and platform; with ``repeat_prob`` an event after the first of its session repeats instead.
    """
    n_ev = len(events.user)
    fresh_category = _sample_categories(
        rng, world.emission_pf, users.taste, events.platform, events.segment, events.user
    )
    repeat = (events.position > 0) & (rng.random(n_ev) < p.repeat_prob)
    anchor = np.maximum.accumulate(np.where(repeat, 0, np.arange(n_ev)))
    return fresh_category[anchor], repeat


def _draw_items(
    rng: np.random.Generator,
    p: SimulationParams,
    world: _World,
    category: np.ndarray,
    repeat: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The catalogue and every event's item.

    Popular categories get more items (in proportion to the square root of their weight, at
    least 20); an item's rank within its category follows a Zipf law (continuous inverse CDF of
    a truncated power law), and a repeated category re-views the same item with
    ``reuse_item_prob``.

    Returns
    -------
    (item_index, item_ids, item_category)
        ``(n_events,)`` index into the catalogue; ``(n_items,)`` ids and category indices.
    """
    n_ev, C = len(category), p.n_categories
    cat_weight = (world.emission * world.segment_popularity[:, None]).sum(axis=0)
    n_items_total = max(int(p.items_per_user * p.n_users), 20 * C)
    items_per_cat = np.maximum(20, np.round(n_items_total * np.sqrt(cat_weight) /
                                            np.sqrt(cat_weight).sum())).astype(np.int64)
    item_offset = np.concatenate([[0], np.cumsum(items_per_cat)[:-1]])
    n_items = int(items_per_cat.sum())
    a = p.item_zipf
    n_c = items_per_cat[category].astype(float)
    rank = (((n_c + 1) ** (1 - a) - 1) * rng.random(n_ev) + 1) ** (1 / (1 - a))
    rank = np.clip(np.floor(rank).astype(np.int64), 1, items_per_cat[category])
    item_index = item_offset[category] + rank - 1
    reuse = repeat & (rng.random(n_ev) < p.reuse_item_prob)
    item_anchor = np.maximum.accumulate(np.where(reuse, 0, np.arange(n_ev)))
    item_index = item_index[item_anchor]
    item_ids = _random_ids(rng, n_items, 100_000, 100_000 + 6 * n_items)
    rng.shuffle(item_ids)
    item_category = np.repeat(np.arange(C), items_per_cat)
    return item_index, item_ids, item_category


def _draw_behaviors(
    rng: np.random.Generator, p: SimulationParams, users: _Users, events: _EventDraws
) -> np.ndarray:
    """Every event's behaviour code (0 pv, 1 cart, 2 fav, 3 buy), ``(n_events,)``.

    The purchase funnel: cart and buy grow late in a session, in the user's core segment and
    with the user's buy propensity; the shares are scaled so the kept events match
    ``behavior_mix`` on average.
    """
    ev_user, ev_pos, length, keep = events.user, events.position, events.length, events.keep
    propensity = users.buy_propensity[ev_user]
    late = np.where(length > 1, ev_pos / np.maximum(length - 1, 1), 1.0)
    in_core = events.segment == users.core_segment[ev_user]
    buy_raw = (0.4 + 1.2 * late) * np.where(in_core, 2.0, 0.7) * propensity
    cart_raw = (0.6 + 0.8 * late) * np.where(in_core, 1.5, 0.8) * np.sqrt(propensity)
    fav_raw = np.where(in_core, 1.3, 0.9)
    mix = p.behavior_mix
    shares = []
    for raw, target in ((cart_raw, mix[1]), (fav_raw, mix[2]), (buy_raw, mix[3])):
        shares.append(np.minimum(raw * target / raw[keep].mean(), 0.3))
    cum_b = np.cumsum(np.stack(shares, axis=1), axis=1)
    ub = rng.random(len(ev_user))
    return np.where(ub < cum_b[:, 0], 1, np.where(ub < cum_b[:, 1], 2,
                                                   np.where(ub < cum_b[:, 2], 3, 0)))


@dataclass
class _EventDraws:
    """Per-event arrays of all drawn events, ``(n_events,)``; ``keep`` marks those in the log."""

    user: np.ndarray  # user index
    position: np.ndarray  # rank within the session
    length: np.ndarray  # kept events of the event's session
    time: np.ndarray  # Unix s
    segment: np.ndarray  # latent segment
    platform: np.ndarray  # 0 app, 1 web
    keep: np.ndarray  # bool: kept by the platform stage and before the window's end

    @classmethod
    def of(
        cls,
        p: SimulationParams,
        sessions: _Sessions,
        web: np.ndarray,
        kept_length: np.ndarray,
        segment: np.ndarray,
    ) -> _EventDraws:
        """Spread the session-level draws over the sessions' events."""
        ev_sess = sessions.event_session
        time = sessions.start[ev_sess] + sessions.event_offset
        keep = sessions.event_position < kept_length[ev_sess]
        keep &= time < p.end
        return cls(
            user=sessions.user[ev_sess],
            position=sessions.event_position,
            length=kept_length[ev_sess],
            time=time,
            segment=segment[ev_sess],
            platform=web[ev_sess].astype(np.int64),
            keep=keep,
        )


def _last_event_offset(
    offset: np.ndarray, sess_first_ev: np.ndarray, kept_len: np.ndarray
) -> np.ndarray:
    """Seconds from a session's first to its last kept event, (n_sessions,)."""
    return offset[sess_first_ev + kept_len - 1]
