"""The result cache on joblib.Memory: what comes back is what was computed, bit for bit."""

from __future__ import annotations

import os

import numpy as np
import pytest

from interest_lib import cache


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))


def test_results_come_back_bit_for_bit_with_their_dtypes():
    rng = np.random.default_rng(0)
    result = {"f64": rng.random((4, 3)), "f32": rng.random(5).astype(np.float32),
              "i64": np.arange(6), "flag": np.array([True, False]), "tiny": np.array([1e-320])}
    first = cache.cached("bits", {"a": 1}, lambda: result)
    again = cache.cached("bits", {"a": 1}, lambda: pytest.fail("computed again"))
    for name, value in result.items():
        for out in (first, again):
            assert out[name].dtype == value.dtype
            assert out[name].tobytes() == value.tobytes()


def test_refresh_overwrites_and_keys_follow_json():
    cache.cached("demo", {"k": 1}, lambda: {"x": np.zeros(1)})
    cache.cached("demo", {"k": 1}, lambda: {"x": np.ones(1)}, refresh=True)
    out = cache.cached("demo", {"k": 1}, lambda: pytest.fail("computed again"))
    np.testing.assert_array_equal(out["x"], [1.0])
    # parameters are keyed as JSON writes them: a tuple and a list are the same key
    cache.cached("demo", {"ks": (1, 5)}, lambda: {"x": np.zeros(1)})
    cache.cached("demo", {"ks": [1, 5]}, lambda: pytest.fail("computed again"))
    assert len(cache.stored_results("demo")) == 2
    assert cache.stored_results("other") == []


def test_clear_cache_removes_only_stored_results():
    cache.cached("one", {}, lambda: {"x": np.zeros(1)})
    cache.cached("two", {}, lambda: {"x": np.zeros(1)})
    foreign = cache.cache_dir() / "notes.txt"
    foreign.write_text("not a result")
    assert cache.clear_cache() == 2
    assert foreign.exists()
    assert cache.stored_results("one") == []


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_directory_anybody_may_write_to_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv(cache.CACHE_ENV, str(shared))
    with pytest.warns(UserWarning, match="not used"):
        assert cache.cache_dir() is None
    calls = []
    with pytest.warns(UserWarning):
        cache.cached("demo", {}, lambda: calls.append(1) or {"x": np.zeros(1)})
    assert calls == [1] and not list(shared.iterdir())
