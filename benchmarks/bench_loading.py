"""Loader and cleaner speed: rows per second and peak memory on a Taobao-format file.

Run: ``python benchmarks/bench_loading.py`` (``--rows`` sets the file size, 10 M by default).

The script writes a ``UserBehavior.csv`` of ``--rows`` rows with :func:`write_taobao` (the
simulator's log, repeated with shifted user ids until it is long enough), then measures three
stages, each in a fresh child process so that each peak resident memory is its own:

* ``load``: :func:`load_taobao` on the whole file;
* ``head``: :func:`load_taobao` with ``nrows`` = a tenth of the file;
* ``clean``: :func:`load_taobao`, then :func:`clean` (its peak includes the loaded table).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def _write_file(path: str, rows: int) -> dict:
    import pandas as pd

    from interest_lib import simulate
    from interest_lib.data.loaders import write_taobao

    start = time.perf_counter()
    base = simulate(n_users=5000, seed=0).events
    copies = -(-rows // len(base))
    shift = int(base["user_id"].max()) + 1
    user_id = (base["user_id"].to_numpy()[None, :] + shift * np.arange(copies)[:, None]).ravel()
    events = pd.DataFrame(
        {
            "user_id": user_id[:rows],
            "item_id": np.tile(base["item_id"].to_numpy(), copies)[:rows],
            "category_id": np.tile(base["category_id"].to_numpy(), copies)[:rows],
            "behavior_type": pd.Categorical.from_codes(
                np.tile(base["behavior_type"].cat.codes.to_numpy(), copies)[:rows],
                dtype=base["behavior_type"].dtype,
            ),
            "timestamp": np.tile(base["timestamp"].to_numpy(), copies)[:rows],
        }
    )
    write_taobao(events, path)
    return {"rows": len(events), "seconds": time.perf_counter() - start, "bytes": os.path.getsize(path)}


def _stage(stage: str, path: str, rows: int) -> dict:
    from interest_lib.data.cleaning import clean
    from interest_lib.data.loaders import load_taobao

    baseline = _peak_gib()
    if stage == "load":
        start = time.perf_counter()
        events = load_taobao(path)
        seconds = time.perf_counter() - start
    elif stage == "head":
        start = time.perf_counter()
        events = load_taobao(path, nrows=max(1, rows // 10))
        seconds = time.perf_counter() - start
    elif stage == "clean":
        events = load_taobao(path)
        start = time.perf_counter()
        events, report = clean(events)
        seconds = time.perf_counter() - start
        assert report.rows_in == rows
    else:
        raise ValueError(stage)
    measured = rows if stage == "clean" else len(events)
    return {
        "stage": stage,
        "rows": measured,
        "seconds": seconds,
        "rows_per_s": measured / seconds,
        "peak_gib": _peak_gib(),
        "baseline_gib": baseline,
    }


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"stage {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the test file")
    parser.add_argument("--dir", help="folder for the test file (default: a temporary folder)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stage, path, rows = args.child
        result = _write_file(path, int(rows)) if stage == "write" else _stage(stage, path, int(rows))
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = os.path.join(folder, "UserBehavior.csv")
        written = _child("write", path, str(args.rows))
        print(
            f"wrote {written['rows']:,} rows ({written['bytes'] / 2**20:,.0f} MiB) "
            f"in {written['seconds']:.1f} s"
        )
        print(f"{'stage':>6} {'rows':>12} {'seconds':>8} {'rows/s':>12} {'peak GiB':>9}")
        for stage in ("load", "head", "clean"):
            r = _child(stage, path, str(written["rows"]))
            print(
                f"{r['stage']:>6} {r['rows']:>12,} {r['seconds']:>8.2f} {r['rows_per_s']:>12,.0f} "
                f"{r['peak_gib']:>9.2f}"
            )
        print(f"(a child process holds {r['baseline_gib']:.2f} GiB after importing the libraries)")


if __name__ == "__main__":
    main()
