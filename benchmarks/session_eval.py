"""The session protocol's overhead: evaluating N session positions against a bare scoring loop.

python benchmarks/session_eval.py [--positions 100000] [--items 2000] [--k 20] [--models gru4rec,sknn]

Sessions walk a planted item chain (as ``recpipeline_tests/evaluation/test_sessions.py``); each test session
is its own anonymous visitor. Per model, in the same process, one thread (torch and BLAS):

* bare: the same prefixes (``session_positions``, built beforehand and not timed) scored in the same chunks
  through ``Recommender.score``, then ``np.argpartition`` for an unordered top K — the floor;
* evaluation: ``evaluate_sessions`` from the splits — building every prefix, the prefix-support probe,
  scoring, ``top_k_excluding`` (ties by item index, sorted), and every metric and segment.

Prints both wall times, their ratio, CPU seconds (on a busy machine CPU seconds estimate the wall time
alone) and the load average.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from recpipeline.evaluation.sessions import evaluate_sessions, positions_context, session_positions
from recpipeline.models.base import score_chunk_rows
from recpipeline.models.context import FitContext
from recpipeline.models.registry import model_class
from recpipeline.preparation.encoding import interaction_matrix

T0 = pd.Timestamp("2026-01-01", tz="UTC")
#: mean items per session (3..8 uniform): 4.5 positions per session
LENGTHS = (3, 9)


def chain_sessions(n_sessions: int, first: int, n_items: int, rng: np.random.Generator) -> pd.DataFrame:
    """Sessions of 3..8 steps walking i -> i + 1 (mod n_items), mostly, with a 20% random jump."""
    lengths = rng.integers(*LENGTHS, size=n_sessions)
    session = np.repeat(np.arange(first, first + n_sessions), lengths)
    step = np.arange(len(session)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    start = np.repeat(rng.integers(n_items, size=n_sessions), lengths)
    jump = rng.integers(n_items, size=len(session)) * (rng.random(len(session)) < 0.2)
    return pd.DataFrame(
        {
            "user_idx": session,
            "item_idx": (start + step + jump) % n_items,
            "weight": np.float32(1.0),
            "timestamp": T0 + pd.to_timedelta(session * 60 + step, unit="s"),
            "event_type": "view",
            "session_idx": session.astype(np.int64),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--models", default="gru4rec,sknn")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n_test = round(args.positions / (np.mean(np.arange(*LENGTHS)) - 1))
    n_train = 2 * n_test
    train = chain_sessions(n_train, 0, args.items, rng)
    validation = chain_sessions(n_test // 10, n_train, args.items, rng)
    test = chain_sessions(n_test, n_train + n_test // 10, args.items, rng)
    n_users = int(test["user_idx"].max()) + 1
    item_map = pd.DataFrame({"id": np.arange(args.items).astype(str), "idx": np.arange(args.items)})
    user_map = pd.DataFrame({"id": [f"~anonymous:{u}" for u in range(n_users)], "idx": np.arange(n_users)})
    params = {"gru4rec": {"epochs": 2, "factors": 32, "device": "cpu", "num_threads": 1}}
    with threadpool_limits(1):
        for name in args.models.split(","):
            model = model_class(name)(**params.get(name, {}))
            model.fit(
                interaction_matrix(train, n_users, args.items),
                interaction_matrix(validation, n_users, args.items),
                context=FitContext(train_events=train, validation_events=validation),
            )
            positions = session_positions(
                pd.concat([train, validation]), test, n_users, args.items, np.arange(n_users)
            )
            users = positions.table["user_idx"].to_numpy(np.int64)
            wall, cpu = time.perf_counter(), time.process_time()
            step = score_chunk_rows(args.items)
            for begin in range(0, len(users), step):
                chunk = users[begin : begin + step]
                scores = model.score(
                    chunk, positions.history[begin : begin + step], positions_context(model, positions, chunk)
                )
                np.argpartition(-np.asarray(scores), args.k - 1, axis=1)[:, : args.k]
            bare_wall, bare_cpu = time.perf_counter() - wall, time.process_time() - cpu
            wall, cpu = time.perf_counter(), time.process_time()
            result = evaluate_sessions(
                {name: model}, train, validation, test, None, item_map, user_map, [args.k]
            )
            eval_wall, eval_cpu = time.perf_counter() - wall, time.process_time() - cpu
            ndcg = result.metrics.query("segment == 'all' and metric == 'ndcg'")["value"].iloc[0]
            print(
                f"{name}: {result.n_positions} positions of {result.n_sessions} sessions, "
                f"ndcg@{args.k} {ndcg:.3f}; bare {bare_wall:.1f} s wall ({bare_cpu:.1f} s CPU), evaluation "
                f"{eval_wall:.1f} s wall ({eval_cpu:.1f} s CPU): {eval_wall / bare_wall:.2f}x wall, "
                f"{eval_cpu / bare_cpu:.2f}x CPU; load {os.getloadavg()[0]:.2f}"
            )


if __name__ == "__main__":
    main()
