"""Time and memory of the pipeline on a file as large as the full Taobao UserBehavior log.

Run: ``python benchmarks/bench_full_taobao.py`` (``--rows`` sets the file size, 100 M by
default; try ``--rows 10000000`` first). The real file has 100,150,807 rows of 987,994 users.

A Taobao-format file of ``--rows`` rows written from the simulator stands in for the real one. It
is written in chunks of about ``--chunk-rows`` events, each chunk a fresh simulation with its own
seed and its own range of user ids, written with :func:`interest_lib.write_taobao` and appended to
the file, so the whole log is never in memory at once. Then each stage runs in a fresh child
process:

* ``load``: :func:`interest_lib.recipes.real_data.load_events` of the whole file, which is
  :func:`interest_lib.load_taobao` followed by handing pyarrow's parse buffers back to the system;
* ``clean``: :func:`interest_lib.clean` of the loaded table (the raw table is freed afterwards);
* ``split``: :func:`interest_lib.split_by_time` with the Taobao cut-offs, and the category
  vocabulary of the training days;
* ``task``: :func:`interest_lib.data.tasks.next_category_task` for the test day, on the whole
  cleaned table;
* ``blocks``: :func:`interest_lib.data.sequences.user_sequences` for that task in blocks of
  ``--block-points`` points (each block's users with their full history, built and dropped in
  turn), as a block-wise evaluation of an LSTM reads them;
* ``sequences``: the same for all test-day users in one call.

A stage's child first runs the stages before it (``blocks`` and ``sequences`` are two ways of
doing the same thing: neither runs before the other), as a script would, deleting the raw table
after cleaning and handing freed memory back (:func:`interest_lib.recipes.real_data.release_memory`),
then measures its own stage.
For each stage the script reports the stage's seconds, the memory held when it starts, the peak
during the stage alone (``VmHWM`` after resetting it through ``/proc/self/clear_refs``) and the
peak of the whole child, which is the memory the pipeline needs up to and including that stage
(both read from ``VmHWM``, the kernel's figure behind ``getrusage``'s ``ru_maxrss``).
A watchdog kills a child whose resident memory passes ``--max-gib`` and reports the stage as not
fitting. The results go to a small JSON file (``--json``), with the date and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES: tuple[str, ...] = ("load", "clean", "split", "task", "blocks", "sequences")
DEFAULT_ROWS = 100_000_000
EVENTS_PER_USER = 85  # a little under the simulator's mean (about 89), so a chunk is never short
RESULTS = Path(__file__).resolve().parent / "results"
GIB = 2**30


# --------------------------------------------------------------------------------------------
# memory readings (Linux)
# --------------------------------------------------------------------------------------------


def _status_gib(field: str, pid: int | str = "self") -> float:
    """A memory line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in GiB; ``nan`` if absent."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> bool:
    """Reset this process's peak resident memory (``VmHWM``) to its current value."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _self_peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # KiB on Linux


# --------------------------------------------------------------------------------------------
# the test file
# --------------------------------------------------------------------------------------------


def write_file(path: str, rows: int, chunk_rows: int, seed: int = 0) -> dict:
    """Write a Taobao-format file of exactly ``rows`` simulated events, chunk by chunk.

    Chunk ``i`` is ``simulate(n_users=chunk_rows // 85, seed=seed + i)`` with its user ids shifted
    past those of the chunks before, cut to the rows still missing.

    Returns
    -------
    dict
        Rows, users, chunks, bytes of the file, seconds and peak memory (GiB) of the writer.
    """
    from interest_lib import simulate, write_taobao

    start = time.perf_counter()
    part = path + ".part"
    written = users = chunks = 0
    with open(path, "wb") as out:
        while written < rows:
            n_users = max(1, min(chunk_rows, rows - written) // EVENTS_PER_USER + 1)
            events = simulate(n_users=n_users, seed=seed + chunks).events
            events = events.iloc[: rows - written]
            # simulated user ids are 1..n_users: shift them past the earlier chunks' users
            events = events.assign(user_id=events["user_id"].to_numpy() + users)
            write_taobao(events, part)
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)
            written += len(events)
            users += n_users
            chunks += 1
            print(f"  chunk {chunks}: {written:,} rows", file=sys.stderr, flush=True)
            del events
            gc.collect()
    os.remove(part)
    return {
        "rows": written,
        "users_simulated": users,
        "chunks": chunks,
        "bytes": os.path.getsize(path),
        "seconds": time.perf_counter() - start,
        "peak_gib": _self_peak_gib(),
    }


# --------------------------------------------------------------------------------------------
# the stages
# --------------------------------------------------------------------------------------------


def run_stage(stage: str, path: str, block_points: int = 1_000_000) -> dict:
    """Run the stages up to ``stage`` and measure ``stage``; returns its figures."""
    import numpy as np

    import interest_lib as il
    from interest_lib.recipes.real_data import load_events, release_memory

    if stage in ("task", "blocks", "sequences"):
        from interest_lib.data import sequences  # imports torch; counted before any stage
        from interest_lib.data.tasks import next_category_task
    imported_gib = _status_gib("VmRSS")
    state: dict = {}
    info: dict = {}

    def load() -> None:
        state["raw"] = load_events(path, "taobao")
        info["rows"] = len(state["raw"])

    def clean() -> None:
        state["events"], report = il.clean(state.pop("raw"))  # the raw table is freed here
        release_memory()
        info["rows_out"] = report.rows_out
        info["dropped"] = {k: v for k, v in report.dropped.items() if v}

    def split() -> None:
        events = state["events"]
        state["split"] = il.split_by_time(events)
        state["category_ids"] = np.unique(state["split"].train["category_id"].to_numpy())
        info["users"] = int(events["user_id"].nunique())
        info["categories"] = int(state["category_ids"].size)
        info["split_rows"] = {p: len(getattr(state["split"], p)) for p in ("train", "valid", "test")}

    def task() -> None:
        s = state["split"]
        state["task"] = next_category_task(
            state["events"], state["category_ids"], s.valid_end, s.test_end
        )
        info["task_points"] = len(state["task"])
        info["task_users"] = state["task"].n_users

    def blocks() -> None:
        points = len(state["task"])
        positions = 0
        for lo in range(0, points, block_points):
            block = state["task"].subset(np.arange(lo, min(lo + block_points, points)))
            seqs = sequences.user_sequences(state["events"], state["category_ids"], block)
            positions += int(seqs.lengths.sum())
            del seqs
        info["blocks"] = -(-points // block_points)
        info["block_points"] = block_points
        info["block_positions"] = positions

    def user_sequences() -> None:
        seqs = sequences.user_sequences(state["events"], state["category_ids"], state["task"])
        info["sequence_positions"] = int(seqs.lengths.sum())
        info["sequences"] = len(seqs)
        state["sequences"] = seqs

    steps = dict(zip(STAGES, (load, clean, split, task, blocks, user_sequences), strict=True))
    before = [s for s in STAGES[: STAGES.index(stage)] if s not in ("blocks", "sequences")]
    for name in before:
        steps[name]()
    release_memory()
    held = _status_gib("VmRSS")
    peak_before = _status_gib("VmHWM")  # the reset below also resets ru_maxrss
    reset = _reset_peak()
    started = time.perf_counter()
    steps[stage]()
    seconds = time.perf_counter() - started
    return {
        "stage": stage,
        "seconds": seconds,
        "held_before_gib": held,
        "stage_peak_gib": _status_gib("VmHWM") if reset else float("nan"),
        "peak_gib": max(peak_before, _self_peak_gib()),
        "imported_gib": imported_gib,
        "data": info,
    }


def _child(args: list[str], max_gib: float) -> tuple[dict | None, float, str]:
    """Run this script as a child; kill it if its resident memory passes ``max_gib``.

    Returns the child's JSON result (``None`` if it failed), the largest resident memory the
    watchdog saw (GiB) and the child's error output.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *args], stdout=out, stderr=err, text=True
        )
        seen = 0.0
        killed = False
        while child.poll() is None:
            rss = _status_gib("VmRSS", child.pid)
            if rss == rss:  # not nan
                seen = max(seen, rss)
            if seen > max_gib and not killed:
                child.kill()
                killed = True
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        lines = out.read().strip().splitlines()
        error = err.read()
        if killed:
            error += f"\nkilled: resident memory passed {max_gib} GiB"
        if child.returncode != 0 or not lines:
            return None, seen, error
        return json.loads(lines[-1]), seen, error


# --------------------------------------------------------------------------------------------
# the machine
# --------------------------------------------------------------------------------------------


def machine() -> dict:
    """What the figures were measured on."""
    import numpy
    import pandas
    import pyarrow

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
    }


def _default_json(rows: int) -> Path:
    if rows == DEFAULT_ROWS:
        return RESULTS / "full_taobao.json"
    return RESULTS / f"taobao_{rows}_rows.json"


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def main() -> None:
    """Parse the options, write the test file once, run each stage in a child process, print.

    Over 80 lines because most of it declares the command-line options.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows of the test file")
    parser.add_argument("--chunk-rows", type=int, default=10_000_000,
                        help="events simulated at a time while writing the file")
    parser.add_argument("--dir", help="folder for the test file (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the test file afterwards")
    parser.add_argument("--file", help="measure this Taobao-format file instead of writing one")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated stages to measure (of {','.join(STAGES)})")
    parser.add_argument("--block-points", type=int, default=1_000_000,
                        help="test-day points per block in the 'blocks' stage")
    parser.add_argument("--max-gib", type=float, default=22.0,
                        help="kill a stage whose resident memory passes this many GiB")
    parser.add_argument("--json", type=Path, help="where to write the results "
                        "(default: benchmarks/results/full_taobao.json for the default size)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, *rest = args.child
        if kind == "write":
            result = write_file(path, int(rest[0]), int(rest[1]))
        else:
            result = run_stage(kind, path, int(rest[0]))
        print(json.dumps(result))
        return

    stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        sys.exit(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
    folder = None if args.file else Path(tempfile.mkdtemp(prefix="bench_taobao_", dir=args.dir))
    path = os.path.abspath(args.file) if args.file else str(folder / "UserBehavior.csv")
    command = "python benchmarks/bench_full_taobao.py " + (
        f"--file {os.path.basename(path)}" if args.file else f"--rows {args.rows}"
    )
    results: dict = {
        "what": "pipeline stages on a Taobao-format file "
        + ("given with --file" if args.file else "written from the simulator"),
        "command": command
        + ("" if args.stages == ",".join(STAGES) else f" --stages {args.stages}"),
        "measured": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    try:
        if args.file:
            results["file"] = {"gib": os.path.getsize(path) / GIB}
        else:
            written, seen, error = _child(["--child", "write", path, str(args.rows),
                                           str(args.chunk_rows)], args.max_gib)  # fmt: skip
            if written is None:
                sys.exit(f"writing the file failed:\n{error}")
            results["file"] = {
                "rows": written["rows"],
                "gib": written["bytes"] / GIB,
                "write_seconds": written["seconds"],
                "write_peak_gib": written["peak_gib"],
            }
            print(f"wrote {written['rows']:,} rows ({written['bytes'] / GIB:.2f} GiB) in "
                  f"{written['seconds']:.0f} s, peak {written['peak_gib']:.2f} GiB")  # fmt: skip
        print(f"{'stage':>10} {'seconds':>8} {'held GiB':>9} {'stage peak':>11} {'peak GiB':>9}")
        results["stages"] = {}
        results["data"] = {}
        for stage in stages:
            r, seen, error = _child(["--child", stage, path, str(args.block_points)],
                                    args.max_gib)  # fmt: skip
            if r is None:
                print(f"{stage:>10} failed (largest resident memory seen {seen:.2f} GiB):\n"
                      f"{error[-2000:]}")  # fmt: skip
                results["stages"][stage] = {"failed": True, "largest_rss_seen_gib": seen,
                                            "error": error[-500:]}  # fmt: skip
                break
            r.pop("stage")
            r["largest_rss_seen_gib"] = seen  # the watchdog's reading, every 0.2 s
            results["data"].update(r.pop("data"))
            results["stages"][stage] = r
            print(f"{stage:>10} {r['seconds']:>8.1f} {r['held_before_gib']:>9.2f} "
                  f"{r['stage_peak_gib']:>11.2f} {r['peak_gib']:>9.2f}")  # fmt: skip
        for key in ("rows", "users"):
            if key in results["data"]:
                results["file"][key] = results["data"][key]
        # not RUSAGE_CHILDREN: resetting VmHWM in a child also resets the ru_maxrss it reports
        measured = [r["peak_gib"] for r in results["stages"].values() if "peak_gib" in r]
        results["largest_stage_peak_gib"] = max(measured, default=float("nan"))
        print(f"largest peak of any stage: {results['largest_stage_peak_gib']:.2f} GiB")
    finally:
        if folder is not None and args.keep:
            print(f"kept {path}")
        elif folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    target = args.json or (RESULTS / "taobao_file.json" if args.file else _default_json(args.rows))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(_rounded(results), indent=1) + "\n")
    print(f"results in {target}")


if __name__ == "__main__":
    main()
