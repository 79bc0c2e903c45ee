"""Simulator speed: events per second and peak memory at the book's size and at 10 M events.

Run: ``python benchmarks/bench_simulate.py`` (``--events`` changes the large size). Each size runs
in a fresh child process so its peak resident memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

EVENTS_PER_USER = 90  # the default simulator's mean, used to size the large run


def _measure(n_users: int) -> dict:
    from interest_lib.data.simulation import simulate

    start = time.perf_counter()
    sim = simulate(n_users=n_users, seed=0)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "users": n_users,
        "events": len(sim.events),
        "seconds": seconds,
        "events_per_s": len(sim.events) / seconds,
        "peak_memory_gib": peak_kib / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000, help="size of the large run")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_measure(args.child)))
        return
    print(f"{'users':>9} {'events':>11} {'seconds':>8} {'events/s':>11} {'peak GiB':>9}")
    for n_users in (5_000, max(1, args.events // EVENTS_PER_USER)):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n_users)],
            check=True, capture_output=True, text=True,
        )
        r = json.loads(out.stdout)
        print(f"{r['users']:>9,} {r['events']:>11,} {r['seconds']:>8.2f} "
              f"{r['events_per_s']:>11,.0f} {r['peak_memory_gib']:>9.2f}")


if __name__ == "__main__":
    main()
