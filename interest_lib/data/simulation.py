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

   with ``memory`` :math:`= 1-\\beta` (0: sessions drawn afresh from the preference, so their order
   tells nothing more about the user),

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

Everything is vectorised numpy; the same ``seed`` gives identical data. The settings form one
record, :class:`SimulationParams`; the stages of the story, each drawing from the one random
generator in turn, are in :mod:`interest_lib.data.simulation_stages`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

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
from interest_lib.data.simulation_stages import (
    _draw_behaviors,
    _draw_categories,
    _draw_items,
    _draw_platforms,
    _draw_segment_path,
    _draw_sessions,
    _draw_users,
    _draw_world,
    _EventDraws,
    _Sessions,
    _Users,
    _World,
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


@dataclass(frozen=True)
class SimulationParams:
    """The settings of :func:`simulate`, each with the book's default.

    Build one with keywords (``SimulationParams(n_users=500)``), derive another with
    :func:`dataclasses.replace`, and pass it to :func:`simulate`. A field reads as an attribute
    (``params.taste_shape``) or, as from a mapping, ``params["taste_shape"]``. Times are Unix
    seconds; days are UTC+8 days counted from ``start``. Impossible settings raise ``ValueError``
    when the record is built.
    """

    n_users: int = 5000
    """Number of people; the log holds about 90 events per person."""
    n_categories: int = 500
    """Number of product categories ``C``; at least twice ``n_segments``."""
    n_segments: int = 6
    """Number of latent interest segments ``S``."""
    n_days: int = 9
    """Length of the window, days."""
    seed: int = 0
    """Seed of the only random generator; the same seed gives identical output."""
    start: int = TAOBAO_START
    """Window start, Unix s (default 2017-11-25 00:00 UTC+8, as the Taobao log)."""
    shift_day: int = 5
    """Day (from 0) at whose start the promotion shift changes the transition matrix."""
    cold_start_day: int | None = None
    """Day at whose start cold-start users become active on the web; ``None``: the last day."""
    sessions_per_user_median: float = 16.0
    """Median number of sessions per user (log-normal: heavy-tailed activity)."""
    sessions_per_user_sigma: float = 0.9
    """Standard deviation of the log of the number of sessions per user."""
    session_continue_prob: float = 0.75
    """Probability that a session goes on after each event (geometric session length)."""
    repeat_prob: float = 0.45
    """Probability that an event repeats the previous category of its session."""
    reuse_item_prob: float = 0.5
    """Probability that a repeated category re-views the very same item."""
    preference_concentration: float = 0.05
    """Total Dirichlet concentration of users' segment preferences (small: focused users)."""
    memory: float = 0.5
    """How much a session's segment depends on the previous session's beyond the user's preference:
    the weight ``1 - beta`` of the global matrix ``G`` in every between-session move, in [0, 1].
    0: every session draws its segment afresh from ``pi_u``, so the order of a user's sessions
    carries no information beyond their preference; 1: the segment moves by ``G`` alone."""
    taste_shape: float | None = 0.2
    """Gamma shape of a user's taste per category (small: strong favourites; ``None``: none)."""
    stickiness: tuple[float, float] = (0.75, 0.6)
    """Probability of staying in the segment under ``G``, before and after the shift."""
    promotion_pull: float = 0.15
    """After the shift, ``pi_u`` becomes ``(1 - pull) pi_u + pull e_promoted``."""
    category_zipf: float = 1.15
    """Zipf exponent of the categories' weights inside a segment's emission row (small: flat)."""
    overlap: int = 4
    """Number of categories each segment shares with each neighbouring segment."""
    background: float = 0.15
    """Emission mass spread evenly over all categories (so no category is impossible)."""
    web_exposure_sigma: float = 0.8
    """Spread of the log-normal category exposure of the web platform (the domain shift)."""
    group_shares: tuple[float, float, float, float] = (0.55, 0.25, 0.10, 0.10)
    """Shares of the user groups in :data:`USER_GROUPS` (normalised to sum to one)."""
    items_per_user: float = 8.0
    """Items in the catalogue per simulated user (at least 20 per category)."""
    item_zipf: float = 1.1
    """Zipf exponent of item popularity within a category."""
    behavior_mix: tuple[float, float, float, float] = (0.895, 0.055, 0.029, 0.020)
    """Overall shares of pv, cart, fav, buy (pv takes what the other three leave)."""
    segment_names: tuple[str, ...] | None = None
    """Segment names (``electronics`` is the promoted one, else segment 0); ``None``: defaults."""

    def __post_init__(self) -> None:
        if self.n_categories < self.n_segments * 2:
            raise ValueError("n_categories must be at least twice n_segments")
        if not 0 < self.shift_day < self.n_days:
            raise ValueError("shift_day must lie inside the window")
        if not 0 < self.resolved_cold_start_day < self.n_days:
            raise ValueError("cold_start_day must lie inside the window")
        if len(self.resolved_segment_names) != self.n_segments:
            raise ValueError("segment_names must name every segment")
        if not 0.0 <= self.memory <= 1.0:
            raise ValueError("memory must lie in [0, 1]")
        if len(self.group_shares) != len(USER_GROUPS):
            raise ValueError(f"group_shares needs one share per group of {USER_GROUPS}")

    def __getitem__(self, name: str) -> Any:
        """The field ``name``, as from a mapping; ``KeyError`` if there is none."""
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)

    @property
    def resolved_cold_start_day(self) -> int:
        """``cold_start_day``, with ``None`` resolved to the last day of the window."""
        return self.n_days - 1 if self.cold_start_day is None else self.cold_start_day

    @property
    def resolved_segment_names(self) -> tuple[str, ...]:
        """``segment_names``, with ``None`` resolved: :data:`DEFAULT_SEGMENT_NAMES` for six
        segments, else ``segment 0``, ``segment 1``, ..."""
        if self.segment_names is not None:
            return tuple(self.segment_names)
        if self.n_segments == len(DEFAULT_SEGMENT_NAMES):
            return DEFAULT_SEGMENT_NAMES
        return tuple(f"segment {s}" for s in range(self.n_segments))

    @property
    def end(self) -> int:
        """Window end, Unix s (exclusive)."""
        return self.start + self.n_days * DAY_S

    @property
    def shift_time(self) -> int:
        """Start of the promotion shift, Unix s."""
        return self.start + self.shift_day * DAY_S

    @property
    def cold_start_cutoff(self) -> int:
        """Start of the cold-start day, Unix s."""
        return self.start + self.resolved_cold_start_day * DAY_S


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
    memory: float  # 1 - beta in A_u = (1 - beta) G + beta 1 pi_u^T
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

    @property
    def preference_weight(self) -> float:
        """``beta = 1 - memory``, the weight of the user's preference in a between-session move."""
        return 1.0 - self.memory

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
    """A simulated behaviour log: ``events`` (canonical table), its ``truth`` and the ``config``
    (a :class:`SimulationParams`) it was drawn with; ``simulate(sim.config)`` draws it again."""

    events: pd.DataFrame
    truth: SimulationTruth
    config: SimulationParams


def simulate(params: SimulationParams | None = None, **changes: Any) -> Simulation:
    """Simulate a behaviour log and return it with its ground truth.

    Two ways to call it: with keywords, ``simulate(n_users=2000, seed=1, repeat_prob=0.0)``,
    or with a record, ``simulate(params)``; keywords after a record change its fields,
    ``simulate(params, seed=3)``. The stages draw from one random generator in a fixed order:
    the world, the users, the sessions, their platforms, the segment path, then per event the
    categories, items and behaviours.

    Parameters
    ----------
    params
        A :class:`SimulationParams` (positional or ``params=``); ``None`` (default) starts from
        the defaults.
    **changes
        Any field of :class:`SimulationParams` (``n_users``, ``n_categories``, ``n_segments``,
        ``n_days``, ``seed``, ``start``, ``shift_day``, ``cold_start_day``, ...), by keyword.

    Returns
    -------
    Simulation
        ``events``: canonical table (with ``platform``) sorted by user then time, every timestamp in
        ``[start, start + n_days days)``, about 90 rows per user; ``truth``: a
        :class:`SimulationTruth`; ``config``: the :class:`SimulationParams` used.

    Raises
    ------
    TypeError
        For a keyword that is not a field of :class:`SimulationParams`, or a ``params`` that is not
        a record.
    ValueError
        For impossible settings (see :class:`SimulationParams`).
    """
    p = _params(params, changes)
    rng = np.random.default_rng(p.seed)
    world = _draw_world(rng, p)
    users = _draw_users(rng, p, world)
    sessions = _draw_sessions(rng, p, users)
    web, kept_length = _draw_platforms(rng, p, users, sessions)
    segment = _draw_segment_path(rng, p, world, users, sessions, kept_length)
    draws = _EventDraws.of(p, sessions, web, kept_length, segment)
    category, repeat = _draw_categories(rng, p, world, users, draws)
    items = _draw_items(rng, p, world, category, repeat)
    behavior = _draw_behaviors(rng, p, users, draws)
    events, truth = _assemble(p, world, users, sessions, draws, category, items, behavior)
    return Simulation(events=events, truth=truth, config=p)


def _params(params: SimulationParams | None, changes: dict[str, Any]) -> SimulationParams:
    """The record :func:`simulate` runs with: ``params`` (or the defaults) with ``changes``."""
    if params is None:
        params = SimulationParams()
    elif not isinstance(params, SimulationParams):
        raise TypeError(
            "simulate() takes a SimulationParams or keywords, e.g. simulate(n_users=500), "
            f"not a positional {type(params).__name__}"
        )
    unknown = sorted(set(changes) - set(SimulationParams.__dataclass_fields__))
    if unknown:
        raise TypeError(f"simulate() got an unexpected keyword argument {unknown[0]!r}")
    return dataclasses.replace(params, **changes) if changes else params


def _assemble(
    p: SimulationParams,
    world: _World,
    users: _Users,
    sessions: _Sessions,
    draws: _EventDraws,
    category: np.ndarray,
    items: tuple[np.ndarray, np.ndarray, np.ndarray],
    behavior: np.ndarray,
) -> tuple[pd.DataFrame, SimulationTruth]:
    """The canonical event table of the kept events, and the truth behind it."""
    item_index, item_ids, item_category = items
    keep = draws.keep
    user_ids = np.arange(1, p.n_users + 1, dtype=np.int64)
    events = pd.DataFrame(
        {
            "user_id": user_ids[draws.user[keep]],
            "item_id": item_ids[item_index[keep]],
            "category_id": world.category_ids[category[keep]],
            "behavior_type": pd.Categorical.from_codes(behavior[keep], dtype=BEHAVIOR_DTYPE),
            "timestamp": draws.time[keep].astype(np.int64),
            "platform": pd.Categorical.from_codes(draws.platform[keep], dtype=PLATFORM_DTYPE),
        }
    )
    truth = SimulationTruth(
        segment_names=list(p.resolved_segment_names),
        category_ids=world.category_ids,
        emission=world.emission,
        platform_exposure=world.exposure,
        emission_by_platform=world.emission_pf,
        transition_before=world.transition_before,
        transition_after=world.transition_after,
        memory=p.memory,
        promotion_pull=p.promotion_pull,
        repeat_prob=p.repeat_prob,
        promoted_segment=world.promoted,
        shift_time=p.shift_time,
        start=p.start,
        end=p.end,
        cold_start_cutoff=p.cold_start_cutoff,
        session_gap_s=SESSION_GAP_S,
        user_ids=user_ids,
        user_preference=users.preference,
        user_taste=users.taste,
        user_group=np.asarray(USER_GROUPS)[users.group],
        event_segment=draws.segment[keep].astype(np.int16),
        event_session=sessions.event_session[keep].astype(np.int64),
        item_ids=item_ids,
        item_category=item_category,
    )
    assert BEHAVIOR_TYPES[0] == "pv" and PLATFORMS[1] == "web"
    return events, truth
