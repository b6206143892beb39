"""Peak memory of an EASE fit on a synthetic catalogue, one fresh subprocess per size (issue #24).

    python benchmarks/ease_memory.py                      # 12,500 and 20,000 items
    python benchmarks/ease_memory.py --items 5000 12500 --users 62500 --per-user 35
    python benchmarks/ease_memory.py --items 3000 6000 --private 8    # private_ease with noise, epsilon 8

Each child builds a random binary users x items matrix (``per-user`` items per user, popularity ~ rank^-0.8),
records its peak RSS before the fit, fits ``EASE`` (``max_items`` raised to the size) and prints the peak
RSS after it (``ru_maxrss``), the growth the fit caused per item pair, and the fit's wall and CPU seconds:
what ``check_catalogue``'s bytes per pair estimate. ``--private EPSILON`` fits ``private_ease`` with that
noise instead (``NOISY_PEAK_BYTES_PER_PAIR``). Run it against another checkout with ``PYTHONPATH`` to compare.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def child(n_items: int, n_users: int, per_user: int, seed: int, epsilon: float | None) -> dict:
    from recpipeline.models.ease import EASE
    from recpipeline.models.private_ease import PrivateEASE

    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, n_users * per_user, p=popularity / popularity.sum())
    users = np.repeat(np.arange(n_users), per_user)
    matrix = sp.csr_matrix((np.ones(len(items), np.float32), (users, items)), shape=(n_users, n_items))
    matrix.data[:] = 1.0
    before = peak_rss_gib()
    wall, cpu = time.perf_counter(), time.process_time()
    if epsilon is None:
        EASE(max_items=n_items).fit(matrix)
    else:
        PrivateEASE(max_items=n_items, epsilon=epsilon, max_items_per_user=per_user).fit(matrix)
    peak = peak_rss_gib()
    return {
        "items": n_items,
        "epsilon": epsilon,
        "nnz": int(matrix.nnz),
        "rss_before_fit_gib": round(before, 2),
        "peak_rss_gib": round(peak, 2),
        "growth_bytes_per_pair": round((peak - before) * 2**30 / n_items**2, 1),
        "fit_wall_s": round(time.perf_counter() - wall, 1),
        "fit_cpu_s": round(time.process_time() - cpu, 1),
    }


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--items", type=int, nargs="+", default=[12_500, 20_000])
    parser.add_argument("--users", type=int, default=62_500)
    parser.add_argument("--per-user", type=int, default=35)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--private", type=float, metavar="EPSILON", help="fit private_ease with this epsilon")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.users, args.per_user, args.seed, args.private)))
        return
    for n_items in args.items:
        command = [sys.executable, __file__, "--child", str(n_items), "--users", str(args.users)]
        command += ["--per-user", str(args.per_user), "--seed", str(args.seed)]
        command += [] if args.private is None else ["--private", str(args.private)]
        print(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
