"""Full-ranking evaluation at scale: score every item for every user, take the top K, compute the metrics.

python benchmarks/eval_scale.py [--users 100000] [--items 50000] [--factors 64] [--k 10] [--chunk 256]

Scores come from a random factor model (users x factors @ factors x items, float32). Two timings over the same
scores, user chunk by user chunk, one chunk per CPU core at a time (BLAS single-threaded in each):

* bare: the matmul plus ``np.argpartition`` (unordered top K, nothing excluded) — the floor;
* evaluation: the matmul, ``models.base.top_k_excluding`` (seen items excluded, ties by item index, sorted),
  then ``metrics.evaluate`` on the lists (every metric incl. diversity over one-hot categories).

Prints both wall times, their ratio, the CPU seconds of each (on a busy shared machine, CPU seconds / cores
estimates the wall time it would take alone) and the process's peak RSS (the whole benchmark: an upper bound).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recpipeline.models.base import top_k_excluding
from recpipeline.scoring.metrics import evaluate


def synthetic_case(n_users: int, n_items: int, factors: int, seed: int = 0) -> dict:
    """Factors, a few seen items per user (excluded), a few test items per user, item categories."""
    rng = np.random.default_rng(seed)
    popularity = rng.zipf(1.3, n_items).astype(np.float64)
    popularity /= popularity.sum()

    def draws(per_user: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "user_idx": np.repeat(np.arange(n_users), per_user),
                "item_idx": rng.choice(n_items, size=n_users * per_user, p=popularity),
            }
        )

    train = draws(8)
    seen = sp.csr_matrix(
        (np.ones(len(train), np.float32), (train["user_idx"], train["item_idx"])), shape=(n_users, n_items)
    )
    categories = rng.integers(0, 100, n_items)
    return {
        "users": rng.standard_normal((n_users, factors), dtype=np.float32),
        "items": rng.standard_normal((n_items, factors), dtype=np.float32),
        "train": train,
        "seen": seen,
        "test": draws(3),
        "features": sp.csr_matrix((np.ones(n_items, np.float32), (np.arange(n_items), categories))),
    }


def over_chunks(n_users: int, chunk: int, work: Callable[[int], None]) -> None:
    """``work(start)`` for every user chunk, one chunk per core at a time (numpy releases the GIL)."""
    with threadpool_limits(1), ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(work, range(0, n_users, chunk)))


def timed(phase: Callable[[], object]) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds (all threads) and the result of ``phase()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = phase()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def bare(case: dict, k: int, chunk: int) -> None:
    items_t = case["items"].T.copy()

    def work(start: int) -> None:
        np.argpartition(-(case["users"][start : start + chunk] @ items_t), k, axis=1)[:, :k]

    over_chunks(len(case["users"]), chunk, work)


def full_evaluation(case: dict, k: int, chunk: int) -> pd.DataFrame:
    items_t = case["items"].T.copy()
    n_users = len(case["users"])
    top = np.empty((n_users, k), dtype=np.int32)

    def work(start: int) -> None:
        scores = case["users"][start : start + chunk] @ items_t
        top[start : start + chunk], _ = top_k_excluding(scores, case["seen"][start : start + chunk], k)

    over_chunks(n_users, chunk, work)
    recs = pd.DataFrame(
        {
            "user_idx": np.repeat(np.arange(n_users), k),
            "item_idx": top.ravel(),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int16), n_users),
        }
    )
    return evaluate(recs, case["test"], case["train"], [k], item_features=case["features"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=256, help="users scored at once (per core)")
    args = parser.parse_args()

    case = synthetic_case(args.users, args.items, args.factors)
    bare_s, bare_cpu, _ = timed(lambda: bare(case, args.k, args.chunk))
    evaluation_s, evaluation_cpu, table = timed(lambda: full_evaluation(case, args.k, args.chunk))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(
        f"\nusers={args.users} items={args.items} factors={args.factors} k={args.k} chunk={args.chunk} "
        f"cores={os.cpu_count()} load_avg_1m={os.getloadavg()[0]:.1f}\n"
        f"bare_matmul_argpartition_s={bare_s:.1f} (cpu {bare_cpu:.1f}) "
        f"evaluation_s={evaluation_s:.1f} (cpu {evaluation_cpu:.1f})\n"
        f"ratio_wall={evaluation_s / bare_s:.2f} ratio_cpu={evaluation_cpu / bare_cpu:.2f} "
        f"peak_rss_gb={peak_gb:.2f}"
    )


if __name__ == "__main__":
    main()
