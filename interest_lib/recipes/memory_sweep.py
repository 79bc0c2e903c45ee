"""When does memory matter? Chapter 6's controlled experiment over the simulator's memory knob.

For each setting of :attr:`interest_lib.data.simulation.SimulationParams.memory` — how much a
user's next session follows their previous one beyond their long-term preference — one log is
simulated with everything else at the defaults, and four predictors are scored on its test day
with the book's protocol: the oracle, the best *order-free* baseline (one that ignores the order of
a user's events: :data:`ORDER_FREE_BASELINES`), chapter 6's LSTM, and the same model with its
recurrent state zeroed (:data:`interest_lib.recipes.trajectories.ABLATION`). What the recurrent
state adds is the paired difference of the last two, at every test point and at the points that
open a session (where the previous session's segment is what order can tell).

:func:`memory_setting` measures one setting; :func:`memory_sweep` stacks them into one table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from interest_lib.evaluation.leaderboard import leaderboard
from interest_lib.recipes.protocol import baseline_reports, book_setup, point_report

MEMORY_SETTINGS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The memory settings of chapter 6's sweep (0: sessions drawn afresh from the preference; the
default log has 0.5)."""

ORDER_FREE_BASELINES: tuple[str, ...] = ("global popularity", "recent popularity", "user frequency")
"""Baselines that ignore the order of a user's events (counts only)."""

RECURRENT = "LSTM"
ZEROED = "LSTM, recurrent state zeroed"
POINTS = ("all points", "session openings")
"""The two sets of test points of the sweep."""


def memory_setting(
    memory: float,
    *,
    n_users: int = 1500,
    seed: int = 0,
    device: Any = None,
    n_boot: int = 1000,
    **hyper: Any,
) -> pd.DataFrame:
    """One row per set of points (:data:`POINTS`) of the sweep at one memory setting.

    Parameters
    ----------
    memory
        The simulator's memory, in ``[0, 1]``.
    n_users
        Users of the simulated log (smaller than the book's 5,000 so that the sweep trains its
        models in well under a minute).
    seed
        Seeds the log, the models and the bootstrap.
    device
        Where to train.
    n_boot
        Bootstrap replicates of the paired interval.
    **hyper
        Overrides of :data:`interest_lib.models.trajectory.TRAJECTORY_DEFAULTS`.

    Returns
    -------
    pandas.DataFrame
        Index ``points``; columns ``memory``, ``session-order lift``
        (:func:`interest_lib.data.describe.session_order_lift` of the log), ``points`` counted
        as ``n``, NDCG@10 of ``oracle``, ``best order-free baseline`` (its name in
        ``order-free baseline``), :data:`RECURRENT` and :data:`ZEROED`, and ``recurrence adds``
        with ``low`` / ``high``: the mean paired difference LSTM − zeroed with its 95 % interval
        (cluster bootstrap over users).
    """
    from interest_lib.data.describe import session_order_lift
    from interest_lib.data.simulation import simulate
    from interest_lib.recipes.trajectories import ABLATION, FULL_MODEL, sequence_model_scores

    sim = simulate(n_users=n_users, seed=seed, memory=memory)
    setup = book_setup(sim)
    test = setup.task("test")
    reports = baseline_reports(setup)
    for name, parts in ((RECURRENT, ABLATION[FULL_MODEL]),
                        (ZEROED, ABLATION["full model, recurrent state zeroed"])):
        scores = sequence_model_scores(setup, "lstm", parts=parts, seed=seed, device=device,
                                       **hyper)
        reports[name] = point_report(scores, test)
    lift = session_order_lift(sim.events)["lift"]
    rows = {}
    for label, keep in zip(POINTS, (np.ones(len(test), bool), np.asarray(test.new_session))):
        kept = {name: frame[keep].reset_index(drop=True) for name, frame in reports.items()}
        ndcg = {name: float(frame["NDCG@10"].mean()) for name, frame in kept.items()}
        best = max(ORDER_FREE_BASELINES, key=ndcg.get)
        pair = leaderboard({RECURRENT: kept[RECURRENT], ZEROED: kept[ZEROED]},
                           test.user_id[keep], average="points", columns=["NDCG@10"], ceiling=(),
                           reference=ZEROED, sort=False, n_boot=n_boot, seed=seed).loc[RECURRENT]
        rows[label] = {"memory": memory, "session-order lift": lift, "n": int(keep.sum()),
                       "oracle": ndcg["oracle"], "order-free baseline": best,
                       "best order-free baseline": ndcg[best], RECURRENT: ndcg[RECURRENT],
                       ZEROED: ndcg[ZEROED], "recurrence adds": float(pair["ΔNDCG@10"]),
                       "low": float(pair["ΔNDCG@10 low"]), "high": float(pair["ΔNDCG@10 high"])}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("points")


def memory_sweep(
    memories: Sequence[float] = MEMORY_SETTINGS, **kwargs: Any
) -> pd.DataFrame:
    """:func:`memory_setting` for every memory, stacked: index ``(memory, points)``.

    ``kwargs`` go to :func:`memory_setting` (``n_users``, ``seed``, ``device``, ``n_boot``,
    hyper-parameters). The oracle's lead over the best order-free baseline,
    ``oracle - best order-free baseline``, is added as ``order tells the oracle``: how much the
    order of the data is worth to the best possible predictor.
    """
    table = pd.concat([memory_setting(m, **kwargs) for m in memories])
    table["order tells the oracle"] = table["oracle"] - table["best order-free baseline"]
    return table.set_index("memory", append=True).reorder_levels(["memory", "points"])
