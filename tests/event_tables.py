"""Small event tables shared by the unit tests (not a test module)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from interest_lib.data.schema import (
    BEHAVIOR_DTYPE,
    PLATFORM_DTYPE,
    TAOBAO_END,
    TAOBAO_START,
    as_canonical,
)


def synthetic_events(n_users: int = 200, seed: int = 0, platform: bool = True) -> pd.DataFrame:
    """A small clean canonical log: users sorted, times sorted within a user, one category per
    item, about 90 % page views."""
    rng = np.random.default_rng(seed)
    per_user = rng.integers(1, 60, size=n_users)
    user_id = np.repeat(np.sort(rng.choice(10 * n_users, n_users, replace=False)) + 1, per_user)
    n = len(user_id)
    n_items = max(5, n // 8)
    item_category = rng.integers(1, 30, size=n_items) * 1000
    item = rng.zipf(1.5, size=n) % n_items
    timestamp = rng.integers(TAOBAO_START, TAOBAO_END, size=n)
    order = np.lexsort((timestamp, user_id))
    frame = pd.DataFrame(
        {
            "user_id": user_id[order],
            "item_id": item + 10_000,
            "category_id": item_category[item],
            "behavior_type": pd.Categorical.from_codes(
                rng.choice(4, size=n, p=[0.9, 0.05, 0.03, 0.02]), dtype=BEHAVIOR_DTYPE
            ),
            "timestamp": timestamp[order],
        }
    )
    if platform:
        frame["platform"] = pd.Categorical.from_codes(rng.integers(0, 2, n), dtype=PLATFORM_DTYPE)
    return frame


def make_events(rows: list[tuple[int, int, str, int]]) -> pd.DataFrame:
    """Events from (user_id, category_id, behavior_type, timestamp) tuples."""
    frame = pd.DataFrame(rows, columns=["user_id", "category_id", "behavior_type", "timestamp"])
    frame["item_id"] = frame["category_id"] * 10
    return as_canonical(frame)


def cluster_interval_by_loop(
    values: np.ndarray, user: np.ndarray, n_boot: int, seed: int
) -> np.ndarray:
    """The 95 % cluster bootstrap of a mean over points, written out replicate by replicate (to
    check the vectorised one of the library): ``[low, high]``."""
    users, inverse = np.unique(user, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(float)
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(n_boot):
        drawn = rng.integers(0, users.size, users.size)
        replicates.append(sums[drawn].sum() / counts[drawn].sum())
    return np.quantile(replicates, [0.025, 0.975])

