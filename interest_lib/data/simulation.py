"""A behaviour-log simulator that also returns the truth behind the log.

The generative story is a hidden Markov model over *sessions*:

1. ``n_categories`` categories are grouped into ``n_segments`` interest segments. Each segment has a
   sparse, long-tailed distribution over categories (its *emission* row), and neighbouring segments
   share categories, so one category is ambiguous evidence of the segment behind it.
2. Every user has a long-term preference over segments (a Dirichlet draw) and an activity level
   (a heavy-tailed number of sessions).
3. Sessions are separated by more than 30 minutes; events inside a session are less than 30 minutes
   apart. The latent segment is fixed within a session. Between sessions it moves by a per-user
   transition matrix

   .. math:: A_u = (1-\\beta)\\,G + \\beta\\,\\mathbf{1}\\pi_u^\\top ,

   where :math:`G` is a global sticky matrix with structured migrations (baby → home,
   fashion → beauty, ...) and :math:`\\pi_u` the user's preference. A *promotion shift* at
   ``shift_time`` replaces :math:`G` by another matrix that pulls people towards a promoted
   segment, and tilts :math:`\\pi_u` towards it by ``promotion_pull``.
   The matrix used to enter a session is the one in force at the previous session's last event.
4. Inside a session each event's category either repeats the previous event's category (probability
   ``repeat_prob``) or is drawn afresh from the segment's emission row, re-weighted by the
   platform's category *exposure*. Items follow a Zipf law within their category; a repeated
   category often re-views the very same item. The behaviour type follows the purchase funnel,
   with more purchases late in a session, in the user's core segment and for buy-prone users.
5. Two platforms: ``app`` (the source) and ``web`` (the target, with a shifted category exposure).
   Users are app-only, on both platforms, or cold-start on the web: such users have at most three
   web events before ``cold_start_cutoff`` (the start of the test day) and more after it.

Everything is vectorised numpy; the same ``seed`` gives identical data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interest_lib.data.schema import (
    BEHAVIOR_DTYPE,
    BEHAVIOR_TYPES,
    DAY_S,
    PLATFORM_DTYPE,
    PLATFORMS,
    SESSION_GAP_S,
    TAOBAO_START,
)

DEFAULT_SEGMENT_NAMES: tuple[str, ...] = (
    "baby",
    "home",
    "electronics",
    "sports",
    "fashion",
    "beauty",
)

USER_GROUPS: tuple[str, ...] = ("app_only", "both", "both_cold", "web_cold")
"""``app_only``: never on the web. ``both``: active on both platforms. ``both_cold``: a full app
history but at most three web events before the cut-off. ``web_cold``: web only, at most three
events before the cut-off."""

# Share of session starts per hour of the day (UTC+8), shaped like the Taobao log: quiet at night,
# a plateau during the day and a peak in the evening.
_HOURLY_ACTIVITY = np.array(
    [3.0, 1.6, 0.9, 0.6, 0.5, 0.6, 1.0, 1.8, 2.8, 3.6, 4.2, 4.2,
     4.0, 4.1, 4.2, 4.2, 4.1, 4.0, 4.2, 4.9, 5.6, 6.2, 6.0, 4.6]
)  # fmt: skip
_UTC8 = 8 * 3600


@dataclass
class SimulationTruth:
    """Everything behind a simulated log; enough for the Bayes-optimal oracle.

    Shapes use ``S`` segments, ``C`` categories, ``P`` = 2 platforms, ``U`` users, ``N`` events.
    Category *indices* ``0..C-1`` refer to ``category_ids``; the event table holds the ids.
    """

    segment_names: list[str]
    category_ids: np.ndarray  # (C,) int64: category_id of each category index
    emission: np.ndarray  # (S, C) P(category | segment) before platform exposure
    platform_exposure: np.ndarray  # (P, C) multiplicative exposure of each category per platform
    emission_by_platform: np.ndarray  # (P, S, C) P(category | segment, platform)
    transition_before: np.ndarray  # (S, S) global matrix G before the promotion shift
    transition_after: np.ndarray  # (S, S) global matrix G after the shift
    preference_weight: float  # beta in A_u = (1 - beta) G + beta 1 pi_u^T
    promotion_pull: float  # after the shift pi_u is replaced by (1 - pull) pi_u + pull e_promoted
    repeat_prob: float  # P(an event repeats the previous event's category within a session)
    promoted_segment: int
    shift_time: int  # Unix s; sessions entered after an event at or after it use transition_after
    start: int  # Unix s, window start (inclusive)
    end: int  # Unix s, window end (exclusive)
    cold_start_cutoff: int  # Unix s; cold-start users have <= 3 web events before it
    session_gap_s: int
    user_ids: np.ndarray  # (U,) int64
    user_preference: np.ndarray  # (U, S) pi_u, the initial distribution and long-term preference
    user_taste: np.ndarray  # (U, C) personal taste multiplying the emission rows
    user_group: np.ndarray  # (U,) str, one of USER_GROUPS
    event_segment: np.ndarray  # (N,) int16, latent segment of every event row
    event_session: np.ndarray  # (N,) int64, global session id of every event row
    item_ids: np.ndarray = field(repr=False)  # (n_items,) int64
    item_category: np.ndarray = field(repr=False)  # (n_items,) category index of every item

    def user_transition(self, user_index: int, after_shift: bool) -> np.ndarray:
        """The (S, S) transition matrix of one user, before or after the promotion shift."""
        g = self.transition_after if after_shift else self.transition_before
        beta = self.preference_weight
        return (1.0 - beta) * g + beta * self.shifted_preference(user_index, after_shift)[None, :]

    def shifted_preference(self, user_index: int | np.ndarray, after_shift: bool | np.ndarray) -> np.ndarray:
        """The preference part of the between-session move, with the promotion's pull after the
        shift: ``pi_u`` before, ``(1 - pull) pi_u + pull e_promoted`` after. Shape (S,) or (m, S)."""
        pref = self.user_preference[user_index]
        after = np.asarray(after_shift)
        pull = self.promotion_pull * (after[..., None] if after.ndim else after)
        promoted = np.zeros(pref.shape[-1])
        promoted[self.promoted_segment] = 1.0
        return (1.0 - pull) * pref + pull * promoted

    def user_emission(self, user_index: np.ndarray, platform: np.ndarray) -> np.ndarray:
        """P(category | segment) of given users on given platforms (0 app, 1 web), (m, S, C)."""
        e = self.emission_by_platform[platform] * self.user_taste[user_index][:, None, :]
        return e / e.sum(axis=2, keepdims=True)

    def category_index(self, category_ids: np.ndarray) -> np.ndarray:
        """Map category ids to indices ``0..C-1``; unknown ids raise ``KeyError``."""
        order = np.argsort(self.category_ids)
        pos = np.searchsorted(self.category_ids, category_ids, sorter=order)
        pos = np.clip(pos, 0, len(order) - 1)
        idx = order[pos]
        bad = self.category_ids[idx] != np.asarray(category_ids)
        if bad.any():
            raise KeyError(f"category id {np.asarray(category_ids)[bad][0]} is not simulated")
        return idx


@dataclass
class Simulation:
    """A simulated behaviour log: ``events`` (canonical table) and its ``truth``."""

    events: pd.DataFrame
    truth: SimulationTruth
    config: dict


def _segment_emission(
    rng: np.random.Generator, n_segments: int, n_categories: int, overlap: int, background: float
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
        weights = (1.0 + rng.permutation(len(support))) ** -1.3
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
    chunk: int = 250_000,
) -> np.ndarray:
    """One category per event from its user's taste-weighted emission row, in chunks."""
    n = len(platform)
    out = np.empty(n, dtype=np.int64)
    u01 = rng.random(n)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        w = emission_pf[platform[lo:hi], segment[lo:hi]] * taste[user[lo:hi]]
        cum = np.cumsum(w, axis=1)
        out[lo:hi] = (cum < (u01[lo:hi] * cum[:, -1])[:, None]).sum(axis=1)
    return out


def _random_ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    return np.sort(rng.choice(np.arange(low, high, dtype=np.int64), size=n, replace=False))


def simulate(
    n_users: int = 5000,
    n_categories: int = 60,
    n_segments: int = 6,
    n_days: int = 9,
    seed: int = 0,
    *,
    start: int = TAOBAO_START,
    shift_day: int = 5,
    cold_start_day: int | None = None,
    sessions_per_user_median: float = 16.0,
    sessions_per_user_sigma: float = 0.9,
    session_continue_prob: float = 0.75,
    repeat_prob: float = 0.4,
    reuse_item_prob: float = 0.5,
    preference_concentration: float = 0.1,
    preference_weight: float = 0.8,
    taste_shape: float | None = 1.5,
    stickiness: tuple[float, float] = (0.75, 0.6),
    promotion_pull: float = 0.15,
    overlap: int = 4,
    background: float = 0.03,
    web_exposure_sigma: float = 0.8,
    group_shares: tuple[float, float, float, float] = (0.55, 0.25, 0.10, 0.10),
    items_per_user: float = 8.0,
    item_zipf: float = 1.1,
    behavior_mix: tuple[float, float, float, float] = (0.895, 0.055, 0.029, 0.020),
    segment_names: tuple[str, ...] | None = None,
) -> Simulation:
    """Simulate a behaviour log and return it with its ground truth.

    Parameters
    ----------
    n_users
        Number of people. The log has about 100 events per person.
    n_categories, n_segments
        Size of the category set and of the latent interest segments.
    n_days
        Length of the window in days; days are UTC+8 days starting at ``start``.
    seed
        Seed of the only random generator; the same seed gives identical output.
    start
        Window start, Unix seconds (default 2017-11-25 00:00 UTC+8, as the Taobao log).
    shift_day
        Day (from 0) at whose start the promotion shift changes the transition matrix.
    cold_start_day
        Day at whose start cold-start users become active on the web (default: the last day).
    sessions_per_user_median, sessions_per_user_sigma
        Log-normal number of sessions per user (heavy-tailed activity).
    session_continue_prob
        After each event the session goes on with this probability (geometric session length).
    repeat_prob
        Probability that an event repeats the previous category of the session.
    reuse_item_prob
        Probability that a repeated category re-views the same item.
    preference_concentration
        Total Dirichlet concentration of users' segment preferences (small = focused users).
    preference_weight
        Weight ``beta`` of the user's own preference in every between-session move.
    taste_shape
        Gamma shape of each user's personal taste for individual categories, which multiplies the
        emission rows (small = strong personal favourites; ``None`` = no personal taste).
    stickiness
        Probability of staying in the segment under G, before and after the shift.
    promotion_pull
        After the shift, this share of the preference part of every move goes to the promoted
        segment instead: ``pi_u`` becomes ``(1 - pull) pi_u + pull e_promoted``.
    overlap
        Categories each segment shares with each neighbouring segment.
    background
        Emission mass spread evenly over all categories (so no category is impossible).
    web_exposure_sigma
        Spread of the log-normal category exposure of the web platform (the domain shift).
    group_shares
        Shares of the user groups in :data:`USER_GROUPS`.
    items_per_user
        Items in the catalogue per simulated user.
    item_zipf
        Zipf exponent of item popularity within a category.
    behavior_mix
        Overall shares of pv, cart, fav, buy.
    segment_names
        Names of the segments (default: baby, home, electronics, sports, fashion, beauty).

    Returns
    -------
    Simulation
        ``events``: canonical table (with ``platform``) sorted by user then time, every timestamp in
        ``[start, start + n_days days)``; ``truth``: a :class:`SimulationTruth`.
    """
    if n_categories < n_segments * 2:
        raise ValueError("n_categories must be at least twice n_segments")
    if not 0 < shift_day < n_days:
        raise ValueError("shift_day must lie inside the window")
    cold_start_day = n_days - 1 if cold_start_day is None else cold_start_day
    if not 0 < cold_start_day < n_days:
        raise ValueError("cold_start_day must lie inside the window")
    if segment_names is None:
        segment_names = (
            DEFAULT_SEGMENT_NAMES
            if n_segments == len(DEFAULT_SEGMENT_NAMES)
            else tuple(f"segment {s}" for s in range(n_segments))
        )
    if len(segment_names) != n_segments:
        raise ValueError("segment_names must name every segment")
    config = {k: v for k, v in locals().items() if k not in ("config",)}

    rng = np.random.default_rng(seed)
    S, C, U = n_segments, n_categories, n_users
    end = start + n_days * DAY_S
    shift_time = start + shift_day * DAY_S
    cutoff = start + cold_start_day * DAY_S

    # --- the world: segments, categories, platforms, transitions ---------------------------------
    emission = _segment_emission(rng, S, C, overlap, background)
    exposure = np.ones((2, C))
    exposure[1] = np.exp(rng.normal(0.0, web_exposure_sigma, size=C))
    exposure[1] /= exposure[1].mean()
    emission_pf = emission[None, :, :] * exposure[:, None, :]
    emission_pf /= emission_pf.sum(axis=2, keepdims=True)
    promoted = int(segment_names.index("electronics")) if "electronics" in segment_names else 0
    g_before, g_after = _migration_matrices(S, stickiness, promoted)
    segment_popularity = np.sort(rng.dirichlet(np.full(S, 4.0)))[::-1]
    category_ids = _random_ids(rng, C, 1_000, 5_000_000)
    rng.shuffle(category_ids)

    # --- users -------------------------------------------------------------------------------------
    preference = rng.dirichlet(preference_concentration * S * segment_popularity, size=U)
    preference = np.clip(preference, 1e-6, None)
    preference /= preference.sum(axis=1, keepdims=True)
    group = rng.choice(len(USER_GROUPS), size=U, p=np.asarray(group_shares) / sum(group_shares))
    core_segment = preference.argmax(axis=1)
    if taste_shape is None:
        taste = np.ones((U, C))
    else:
        taste = rng.gamma(taste_shape, 1.0 / taste_shape, size=(U, C))
    buy_propensity = rng.lognormal(0.0, 0.8, size=U)
    web_share = np.where(group == 1, rng.uniform(0.2, 0.7, size=U), 0.0)
    n_sessions = np.maximum(
        1, np.round(rng.lognormal(np.log(sessions_per_user_median), sessions_per_user_sigma, U))
    ).astype(np.int64)
    n_sessions[group == 3] = np.minimum(n_sessions[group == 3], 8)  # web_cold: new to the web

    # --- sessions: owner, length, start time -------------------------------------------------------
    sess_user = np.repeat(np.arange(U), n_sessions)
    n_sess = len(sess_user)
    user_first = np.concatenate([[0], np.cumsum(n_sessions)[:-1]])
    sess_pos = np.arange(n_sess) - user_first[sess_user]
    sess_len = rng.geometric(1.0 - session_continue_prob, size=n_sess).astype(np.int64)
    # web_cold users: one short session before the cut-off, the rest on the cut-off day or later
    is_web_cold = group[sess_user] == 3
    first_day = np.zeros(n_sess, dtype=np.int64)
    day_span = np.full(n_sess, n_days, dtype=np.int64)
    first_day[is_web_cold & (sess_pos > 0)] = cold_start_day
    day_span[is_web_cold & (sess_pos > 0)] = n_days - cold_start_day
    day_span[is_web_cold & (sess_pos == 0)] = cold_start_day
    sess_start = _session_start_times(rng, n_sess, first_day, day_span, start)
    short = is_web_cold & (sess_pos == 0)
    sess_len[short] = np.minimum(sess_len[short], rng.integers(1, 4, size=short.sum()))
    order = np.lexsort((sess_start, sess_user))
    sess_start = sess_start[order]
    sess_len[:] = sess_len[order]
    short = short[order]

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

    # push sessions forward so consecutive sessions of a user are more than SESSION_GAP_S apart:
    # t'_k = max(t_k, t'_{k-1} + d_{k-1} + gap), solved with a segmented running maximum
    need = duration + SESSION_GAP_S + 60
    cum_need = np.cumsum(need) - need
    cum_need -= cum_need[user_first][sess_user]
    user_offset = sess_user.astype(np.int64) << 42
    u = sess_start - cum_need + user_offset
    sess_start = np.maximum.accumulate(u) - user_offset + cum_need
    sess_end = sess_start + duration

    # platforms
    sess_web = np.zeros(n_sess, dtype=bool)
    g_sess = group[sess_user]
    sess_web[g_sess == 1] = rng.random((g_sess == 1).sum()) < web_share[sess_user[g_sess == 1]]
    sess_web[g_sess == 3] = True
    # both_cold: one short web session before the cut-off, web half the time after it
    both_cold = g_sess == 2
    after_cut = sess_start >= cutoff
    sess_web[both_cold & after_cut] = rng.random((both_cold & after_cut).sum()) < 0.5
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
        short_new = np.zeros(n_sess, dtype=bool)
        short_new[chosen] = True
        # shortening a session only drops its last events; its start stays, its end moves earlier
        ev_keep_len = sess_len.copy()
        ev_keep_len[chosen] = np.minimum(sess_len[chosen], cap)
    else:
        ev_keep_len = sess_len.copy()

    # --- latent segment of every session: the Markov chain -----------------------------------------
    sess_segment = np.zeros(n_sess, dtype=np.int64)
    sess_last_time = sess_start + _last_event_offset(offset, sess_first_ev, ev_keep_len)
    by_pos = np.argsort(sess_pos, kind="stable")
    bounds = np.searchsorted(sess_pos[by_pos], np.arange(sess_pos.max() + 2))
    first = by_pos[bounds[0] : bounds[1]]
    sess_segment[first] = _sample_rows(rng, preference[sess_user[first]])
    for k in range(1, sess_pos.max() + 1):
        cur = by_pos[bounds[k] : bounds[k + 1]]
        prev = cur - 1
        after_shift = sess_last_time[prev] >= shift_time
        probs = np.where(
            after_shift[:, None], g_after[sess_segment[prev]], g_before[sess_segment[prev]]
        )
        pref = preference[sess_user[cur]]
        pref = np.where(after_shift[:, None], (1.0 - promotion_pull) * pref, pref)
        pref[after_shift, promoted] += promotion_pull
        probs = (1.0 - preference_weight) * probs + preference_weight * pref
        sess_segment[cur] = _sample_rows(rng, probs)

    # --- events --------------------------------------------------------------------------------------
    keep = ev_pos < ev_keep_len[ev_sess]
    ev_time = sess_start[ev_sess] + offset
    keep &= ev_time < end
    ev_segment = sess_segment[ev_sess]
    ev_platform = sess_web[ev_sess].astype(np.int64)

    fresh_category = _sample_categories(rng, emission_pf, taste, ev_platform, ev_segment,
                                        sess_user[ev_sess])
    repeat = (ev_pos > 0) & (rng.random(n_ev) < repeat_prob)
    anchor = np.maximum.accumulate(np.where(repeat, 0, np.arange(n_ev)))
    category = fresh_category[anchor]

    # items: Zipf within category (continuous inverse CDF of a truncated power law)
    cat_weight = (emission * segment_popularity[:, None]).sum(axis=0)
    n_items_total = max(int(items_per_user * U), 20 * C)
    items_per_cat = np.maximum(20, np.round(n_items_total * np.sqrt(cat_weight) /
                                            np.sqrt(cat_weight).sum())).astype(np.int64)
    item_offset = np.concatenate([[0], np.cumsum(items_per_cat)[:-1]])
    n_items = int(items_per_cat.sum())
    a = item_zipf
    n_c = items_per_cat[category].astype(float)
    rank = (((n_c + 1) ** (1 - a) - 1) * rng.random(n_ev) + 1) ** (1 / (1 - a))
    rank = np.clip(np.floor(rank).astype(np.int64), 1, items_per_cat[category])
    item_index = item_offset[category] + rank - 1
    reuse = repeat & (rng.random(n_ev) < reuse_item_prob)
    item_anchor = np.maximum.accumulate(np.where(reuse, 0, np.arange(n_ev)))
    item_index = item_index[item_anchor]
    item_ids = _random_ids(rng, n_items, 100_000, 100_000 + 6 * n_items)
    rng.shuffle(item_ids)
    item_category = np.repeat(np.arange(C), items_per_cat)

    # behaviour funnel
    ev_user = sess_user[ev_sess]
    length = ev_keep_len[ev_sess]
    late = np.where(length > 1, ev_pos / np.maximum(length - 1, 1), 1.0)
    in_core = ev_segment == core_segment[ev_user]
    buy_raw = (0.4 + 1.2 * late) * np.where(in_core, 2.0, 0.7) * buy_propensity[ev_user]
    cart_raw = (0.6 + 0.8 * late) * np.where(in_core, 1.5, 0.8) * np.sqrt(buy_propensity[ev_user])
    fav_raw = np.where(in_core, 1.3, 0.9)
    shares = []
    for raw, target in ((cart_raw, behavior_mix[1]), (fav_raw, behavior_mix[2]),
                        (buy_raw, behavior_mix[3])):
        shares.append(np.minimum(raw * target / raw[keep].mean(), 0.3))
    cum_b = np.cumsum(np.stack(shares, axis=1), axis=1)
    ub = rng.random(n_ev)
    behavior = np.where(ub < cum_b[:, 0], 1, np.where(ub < cum_b[:, 1], 2,
                                                        np.where(ub < cum_b[:, 2], 3, 0)))

    # --- assemble ------------------------------------------------------------------------------------
    user_ids = np.arange(1, U + 1, dtype=np.int64)
    events = pd.DataFrame(
        {
            "user_id": user_ids[ev_user[keep]],
            "item_id": item_ids[item_index[keep]],
            "category_id": category_ids[category[keep]],
            "behavior_type": pd.Categorical.from_codes(behavior[keep], dtype=BEHAVIOR_DTYPE),
            "timestamp": ev_time[keep].astype(np.int64),
            "platform": pd.Categorical.from_codes(ev_platform[keep], dtype=PLATFORM_DTYPE),
        }
    )
    truth = SimulationTruth(
        segment_names=list(segment_names),
        category_ids=category_ids,
        emission=emission,
        platform_exposure=exposure,
        emission_by_platform=emission_pf,
        transition_before=g_before,
        transition_after=g_after,
        preference_weight=preference_weight,
        promotion_pull=promotion_pull,
        repeat_prob=repeat_prob,
        promoted_segment=promoted,
        shift_time=shift_time,
        start=start,
        end=end,
        cold_start_cutoff=cutoff,
        session_gap_s=SESSION_GAP_S,
        user_ids=user_ids,
        user_preference=preference,
        user_taste=taste,
        user_group=np.asarray(USER_GROUPS)[group],
        event_segment=ev_segment[keep].astype(np.int16),
        event_session=ev_sess[keep].astype(np.int64),
        item_ids=item_ids,
        item_category=item_category,
    )
    assert BEHAVIOR_TYPES[0] == "pv" and PLATFORMS[1] == "web"
    return Simulation(events=events, truth=truth, config=config)


def _last_event_offset(
    offset: np.ndarray, sess_first_ev: np.ndarray, kept_len: np.ndarray
) -> np.ndarray:
    """Seconds from a session's first to its last kept event, (n_sessions,)."""
    return offset[sess_first_ev + kept_len - 1]
