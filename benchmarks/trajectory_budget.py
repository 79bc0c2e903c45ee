"""Chapter 6's training budget: validation NDCG@10 and seconds by share of the training windows.

Run: ``python benchmarks/trajectory_budget.py`` (a few minutes on a laptop CPU). For the LSTM and
the GRU of chapter 6 on the book's default log (seed 0), it trains one pass over a share of the
training windows (``train_share`` of
:data:`interest_lib.models.trajectory.TRAJECTORY_DEFAULTS`) and prints the validation NDCG@10
(the day the budget is chosen on; the test day is not read), the training seconds, and the
validation NDCG@10 when each point is scored with the user's whole history or with the last
``window`` events (older ones through the history counts), with the scoring seconds.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

import interest_lib as il
from interest_lib.evaluation import metrics
from interest_lib.models import trajectory
from interest_lib.recipes import protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the book trains on a CPU
    setup = protocol.book_setup(il.simulate(seed=args.seed))
    train, valid = setup.task("train"), setup.task("valid")
    window = int(trajectory.TRAJECTORY_DEFAULTS["window"])
    rows = []
    for cell in ("lstm", "gru"):
        for share in args.shares:
            started = time.perf_counter()
            model, history = trajectory.fit_trajectory_model(
                setup.events, setup.category_ids, train, valid, cell=cell, seed=args.seed,
                device="cpu", train_share=share,
            )
            row = {"cell": cell, "train_share": share,
                   "valid NDCG@10 (early stopping)": history.best_valid,
                   "training s": time.perf_counter() - started}
            for label, context in (("whole history", None), (f"last {window}", window)):
                started = time.perf_counter()
                scores = trajectory.trajectory_scores(model, setup.events, setup.category_ids,
                                                      valid, context=context, device="cpu")
                row[f"valid NDCG@10, {label}"] = metrics.ndcg_at_k(scores, valid.target, 10)
                row[f"scoring s, {label}"] = time.perf_counter() - started
            rows.append(row)
            print(row, flush=True)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
