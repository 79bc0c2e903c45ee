"""Unit tests of chapter 4's recipe (:mod:`interest_lib.recipes.segments`) on small inputs; the
chapter's claims are in test_chapter4_claims.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import interest_lib as il
from interest_lib.recipes import segments


def test_silhouette_reading_follows_the_usual_bands():
    assert segments.silhouette_reading(0.8) == "a strong structure"
    assert segments.silhouette_reading(0.6) == "a reasonable structure"
    assert segments.silhouette_reading(0.3) == "a weak structure"
    assert segments.silhouette_reading(0.1) == "no substantial structure"


def test_cluster_names_mark_unmatched_clusters():
    assert segments.cluster_names(np.array([1, -1]), ["a", "b"]) == [
        "cluster 0 → b", "cluster 1 (unmatched)"]


def test_top_category_share_of_unit_and_spread_centroids():
    centres = np.array([[1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(segments.top_category_share(centres), [1.0, 0.5])


def test_profile_hits_counts_strong_categories_among_the_segments_likely_ones():
    emission = np.tile(np.linspace(1.0, 0.0, 14), (2, 1))  # categories 0..9 are the likely ones
    centres = np.zeros((2, 14))
    centres[0, :4] = 1.0  # all four strongest among the ten
    centres[1, 10:14] = 1.0  # none of them
    assert segments.profile_hits(centres, np.array([0, 1]), emission) == 0.5
    assert segments.profile_hits(centres, np.array([0, -1]), emission) == 1.0


def test_split_half_stability_of_separated_blobs_is_one():
    rng = np.random.default_rng(0)
    V = np.vstack([rng.normal(c, 0.05, size=(40, 2)) for c in ((0, 0), (5, 5), (0, 5))])
    assert segments.split_half_stability(V, 3, seed=0, n_init=3) == pytest.approx(1.0)


def test_error_table_and_rates_group_users():
    right = np.array([True, False, True, True])
    share = np.array([0.4, 0.45, 0.8, 0.95])
    n_events = np.array([5, 12, 50, 100])
    table = segments.error_table(right, share, n_events)
    assert table.loc[("dominant share", "< 50 %"), "users"] == 2
    assert table.loc[("dominant share", "< 50 %"), "in their segment's cluster"] == 0.5
    assert table.loc[("training events", "≥ 80"), "users"] == 1
    rates = segments.error_rates(right, share, n_events, [0, 1, 0, 1], [0, 1, 0, 1])
    assert rates["acc_mixed"] == 0.5 and rates["acc_focused"] == 1.0
    assert rates["acc_light"] == 1.0 and rates["acc_heavy"] == 1.0
    assert rates["ari_not_light"] == pytest.approx(1.0)
    assert list(segments.share_bins(share).categories)[0] == "< 50 %"


def test_segments_chapter_rejects_unknown_parameters():
    with pytest.raises(TypeError):
        segments.segments_chapter(n_user=10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny web side
def test_small_simulation_runs_every_step():
    sim = il.simulate(n_users=300, seed=1)
    result = segments.segments_chapter(sim, seed=1, k_values=(2, 3, 4), n_init=2,
                                       silhouette_sample=200, tree_depth=2)
    data = result["data"]
    assert result["X"].shape == (len(data.users), len(data.vocab))
    np.testing.assert_allclose(np.linalg.norm(result["X"], axis=1), 1.0)
    assert result["k_chosen"] in (2, 3, 4)
    assert len(result["labels"]) == len(data.users)
    assert list(result["transfer"].index)[0] == "source centroids, kept fixed"
    assert result["transfer"].iloc[0, 0] == 1.0
    assert 0.0 <= result["rules"].fidelity <= 1.0
    assert isinstance(result["variants"], pd.DataFrame)
    assert result["route"].user_segment.shape == data.users.shape
