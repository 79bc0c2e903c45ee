"""Chapter 6's plain recurrent model, tuned on the validation day, against a standard GRU4Rec.

Run, in this order (each a few minutes to half an hour on one CPU thread):

* ``python benchmarks/tune_plain_model.py grid``: the plain model's grid on the validation day;
* ``python benchmarks/tune_plain_model.py reference``: GRU4Rec's grid on the validation day;
* ``python benchmarks/tune_plain_model.py test``: the chosen settings — the plain model's
  :data:`~interest_lib.models.recurrent.PLAIN_DEFAULTS`, the same with chapter 6's budget
  (``--chapter-epochs``), GRU4Rec with the setting its grid chose — trained once each and scored
  on the test day, with paired intervals against GRU4Rec.

Each part prints its table and writes it, with the command, the date and the machine, to
``benchmarks/results/plain_model_<part>.json``; chapter 6 reads the files. Each grid chooses the
setting that trains fastest among those within ``TOLERANCE`` (0.001) of its best validation
NDCG@10 — smaller differences are noise — and its best epoch is its number of passes.

* The plain model is :class:`interest_lib.models.recurrent.SequenceModel` trained by
  :func:`interest_lib.models.recurrent.fit_sequence_model`. The grid varies the cell, the state
  size, the learning rate and the batch size around
  :data:`interest_lib.models.recurrent.PLAIN_DEFAULTS`, with up to ``--epochs`` passes and early
  stopping on validation NDCG@10, and prints the best validation NDCG@10, its epoch and the
  seconds per epoch.
* The reference is GRU4Rec as the common open-source libraries configure it (Hidasi et al.'s
  model with the output layer of Tan et al.: item embedding with dropout, a GRU without biases, a
  dense layer back to the embedding size, scores = output · item embeddings, full cross-entropy,
  Adam; defaults embedding 64, state 128, dropout 0.3, learning rate 0.001). It reads only the
  category sequence — no behaviour, no time, no request context — and is trained with the same
  windows, the same loop and the same early stopping as the plain model.

The validation day chooses every setting; ``test`` reads the test day once, for the chosen ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

import interest_lib as il
from interest_lib.data import sequences
from interest_lib.evaluation.leaderboard import leaderboard
from interest_lib.models import recurrent, training
from interest_lib.recipes import protocol


class GRU4Rec(nn.Module):
    """GRU4Rec with tied output scores (embedding → dropout → GRU → dense → · embeddings)."""

    def __init__(self, n_categories: int, embedding_dim: int = 64, hidden: int = 128,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.n_categories = n_categories
        self.embedding = nn.Embedding(n_categories + 1, embedding_dim, padding_idx=n_categories)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(embedding_dim, hidden, bias=False, batch_first=True)
        self.dense = nn.Linear(hidden, embedding_dim)
        nn.init.xavier_normal_(self.embedding.weight)
        nn.init.xavier_uniform_(self.gru.weight_hh_l0)
        nn.init.xavier_uniform_(self.gru.weight_ih_l0)

    def forward(self, categories: torch.Tensor, behaviors: torch.Tensor, lengths: torch.Tensor,
                time_features: torch.Tensor | None = None) -> torch.Tensor:
        """``(b, T, C)`` next-category logits; only the categories are read."""
        categories = torch.where(categories < 0, self.n_categories, categories)
        outputs, _ = self.gru(self.dropout(self.embedding(categories)))
        return self.dense(outputs) @ self.embedding.weight[: self.n_categories].T

    def batch_inputs(self, seqs: sequences.UserSequences, index: np.ndarray) -> tuple:
        return recurrent.sequence_inputs(seqs, index, 0)


RESULTS = Path(__file__).resolve().parent / "results"
TUNED, CHAPTER, REFERENCE = "plain model, tuned", "plain model, chapter 6's budget", "GRU4Rec, tuned"
TOLERANCE = 0.001  # validation NDCG@10 differences this small are noise: choose the faster setting

REFERENCE_DEFAULTS = {"embedding_dim": 64, "hidden": 128, "dropout": 0.3, "lr": 0.001,
                      "batch_size": 32, "window": 64}


def fit_reference(setup: protocol.BookSetup, epochs: int, seed: int = 0, **hyper: float
                  ) -> tuple[GRU4Rec, training.TrainingHistory]:
    """GRU4Rec trained on the plain model's windows with the same loop (Adam, no decay)."""
    h = recurrent.with_defaults(hyper, REFERENCE_DEFAULTS)
    batches, valid_fn = recurrent.training_data(
        setup.events, setup.category_ids, setup.task("train"), setup.task("valid"),
        window=int(h["window"]), valid_context=8, batch_size=int(h["batch_size"]), share=1.0,
        history=False, seed=seed, device=torch.device("cpu"))  # the plain model's windows
    training.set_seed(seed)
    model = GRU4Rec(setup.n_categories, int(h["embedding_dim"]), int(h["hidden"]),
                    float(h["dropout"]))
    history = training.fit(
        model, batches, loss_fn=recurrent.plain_loss, valid_fn=valid_fn, epochs=epochs,
        optimizer=torch.optim.Adam(model.parameters(), lr=float(h["lr"])),
        patience=2, device="cpu", seed=seed, progress=False,
    )
    return model, history


def row(name: str, setting: dict, history: training.TrainingHistory) -> dict:
    return {"model": name, **setting, "valid NDCG@10": history.best_valid,
            "best epoch": history.best_epoch, "epochs run": history.epochs,
            "s / epoch": float(np.mean(history.seconds))}


def choose(rows: list[dict]) -> dict:
    """The setting that trains fastest (best epoch × seconds per epoch) among those within
    :data:`TOLERANCE` of the best validation NDCG@10."""
    best = max(r["valid NDCG@10"] for r in rows)
    near = [r for r in rows if r["valid NDCG@10"] >= best - TOLERANCE]
    return min(near, key=lambda r: r["best epoch"] * r["s / epoch"])


def plain_grid(setup: protocol.BookSetup, epochs: int, seed: int) -> list[dict]:
    rows = []
    for cell, hidden, lr, batch in itertools.product(("gru", "lstm"), (64, 128),
                                                     (0.002, 0.005), (32, 64)):
        setting = {"cell": cell, "hidden": hidden, "lr": lr, "batch_size": batch}
        _, history = recurrent.fit_sequence_model(
            setup.events, setup.category_ids, setup.task("train"), setup.task("valid"),
            seed=seed, device="cpu", epochs=epochs, patience=1, **setting)
        rows.append(row("plain", setting, history))
        print(rows[-1], flush=True)
    return rows


def reference_grid(setup: protocol.BookSetup, epochs: int, seed: int) -> list[dict]:
    rows = []
    for hidden, lr in itertools.product((64, 128), (0.001, 0.003)):
        setting = {"hidden": hidden, "lr": lr}
        _, history = fit_reference(setup, epochs, seed, **setting)
        rows.append(row("GRU4Rec", setting, history))
        print(rows[-1], flush=True)
    return rows


def test_day(setup: protocol.BookSetup, reference_epochs: int, seed: int, reference: dict,
             chapter_epochs: int) -> list[dict]:
    """The chosen settings trained once each and scored on the test day, with paired intervals
    against GRU4Rec; one row per model."""
    test = setup.task("test")
    test_seq = sequences.user_sequences(setup.events, setup.category_ids, test, context=64,
                                        request_context=True)
    scores, valid, seconds = {}, {}, {}
    for label, budget in ((TUNED, {}), (CHAPTER, {"epochs": chapter_epochs})):
        started = time.perf_counter()
        plain, history = recurrent.fit_sequence_model(setup.events, setup.category_ids,
                                                      setup.task("train"), setup.task("valid"),
                                                      seed=seed, device="cpu", **budget)
        seconds[label], valid[label] = time.perf_counter() - started, history.best_valid
        scores[label] = recurrent.sequence_scores(plain, test_seq, device="cpu")
    started = time.perf_counter()
    reference_model, history = fit_reference(setup, reference_epochs, seed, **reference)
    seconds[REFERENCE], valid[REFERENCE] = time.perf_counter() - started, history.best_valid
    scores[REFERENCE] = recurrent.sequence_scores(reference_model, test_seq, device="cpu")
    reports = {name: protocol.point_report(s, test) for name, s in scores.items()}
    board = leaderboard(reports, test.user_id, average="points", columns=["NDCG@10"], ceiling=(),
                        reference=REFERENCE, sort=False, seed=seed)
    return [{"model": name, "valid NDCG@10": valid[name], "training s": seconds[name],
             **{column: float(board.loc[name, column]) for column in
                ("NDCG@10", "NDCG@10 low", "NDCG@10 high", "ΔNDCG@10", "ΔNDCG@10 low",
                 "ΔNDCG@10 high")}}
            for name in scores]


def machine() -> dict:
    """What the seconds were measured on (training on one CPU thread)."""
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("part", choices=("grid", "reference", "test"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-users", type=int, default=5000, help="people in the simulated log")
    parser.add_argument("--epochs", type=int, default=8, help="most passes of the plain model")
    parser.add_argument("--reference-epochs", type=int, default=20,
                        help="most passes of GRU4Rec (it learns more slowly)")
    parser.add_argument("--chapter-epochs", type=int, default=2,
                        help="the passes chapter 6 gives the plain model (its plain_epochs)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the JSON files (plain_model_<part>.json)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the book trains on a CPU
    setup = protocol.book_setup(il.simulate(n_users=args.n_users, seed=args.seed))
    record = {"command": "python benchmarks/tune_plain_model.py " + " ".join(sys.argv[1:]),
              "measured": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": machine(), "seed": args.seed, "n_users": args.n_users,
              "tolerance": TOLERANCE}
    if args.part == "test":
        chosen = json.loads((args.results / "plain_model_reference.json").read_text())["chosen"]
        reference = {"hidden": chosen["hidden"], "lr": chosen["lr"]}
        record["rows"] = test_day(setup, args.reference_epochs, args.seed, reference,
                                  args.chapter_epochs)
        record.update(reference=reference, chapter_epochs=args.chapter_epochs,
                      plain_settings=recurrent.PLAIN_DEFAULTS)
    else:
        grid = plain_grid if args.part == "grid" else reference_grid
        record["rows"] = grid(setup, args.epochs if args.part == "grid" else args.reference_epochs,
                              args.seed)
        record["chosen"] = choose(record["rows"])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(record["rows"]).round(4).to_string(index=False))
    if "chosen" in record:
        print(f"chosen (the fastest within {TOLERANCE} of the best validation NDCG@10):",
              record["chosen"])
    path = args.results / f"plain_model_{args.part}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print("written:", path)


if __name__ == "__main__":
    main()
