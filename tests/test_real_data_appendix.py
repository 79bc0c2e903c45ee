"""The appendix "Running on real data": its benchmark script and the figures it reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmark_scripts import load_benchmark

from interest_lib.data.loaders import load_taobao

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MEASURED = ("load", "clean", "split", "task", "blocks")
FIGURES = ("seconds", "held_before_gib", "stage_peak_gib", "peak_gib")


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_full_taobao")


def test_file_is_written_in_chunks_with_disjoint_users(bench, tmp_path):
    path = str(tmp_path / "UserBehavior.csv")
    info = bench.write_file(path, rows=5000, chunk_rows=2000)
    events = load_taobao(path)
    assert len(events) == info["rows"] == 5000
    assert info["chunks"] == 3
    # each chunk is one simulated log, sorted by user: ids never go back, so no two chunks share one
    assert np.all(np.diff(events["user_id"].to_numpy()) >= 0)
    assert events["user_id"].nunique() > 5000 // 200


@pytest.mark.parametrize("stage", ["load", "task", "blocks"])
def test_stages_measure_on_a_small_file(bench, tmp_path, stage):
    path = str(tmp_path / "UserBehavior.csv")
    bench.write_file(path, rows=3000, chunk_rows=3000)
    result = bench.run_stage(stage, path, block_points=100)
    assert result["stage"] == stage and result["seconds"] >= 0
    assert result["peak_gib"] >= result["held_before_gib"] > 0
    if stage == "blocks":
        assert result["data"]["blocks"] == -(-result["data"]["task_points"] // 100)


@pytest.mark.parametrize("name", ["full_taobao.json", "taobao_10000000_rows.json"])
def test_results_hold_what_the_appendix_reads(name):
    results = json.loads((RESULTS / name).read_text())
    for key in ("measured", "command"):
        assert isinstance(results[key], str)
    for key in ("cpu", "cores", "memory_gib", "load_average_at_start"):
        assert key in results["machine"]
    for key in ("rows", "users", "gib"):
        assert results["file"][key] > 0
    stages = MEASURED + (("sequences",) if name.startswith("taobao_1") else ())
    for stage in stages:
        figures = results["stages"][stage]
        assert not figures.get("failed"), stage
        for key in FIGURES:
            assert figures[key] >= 0, (stage, key)
        assert figures["peak_gib"] >= figures["stage_peak_gib"] - 1e-3
    for key in ("task_points", "blocks", "block_points"):
        assert results["data"][key] > 0
    assert results["file"]["rows"] == results["data"]["rows"]
