"""A torch model's fit alone and beside one busy process, under each thread policy.

python benchmarks/threads_under_contention.py [--model mult_vae] [--epochs 5] [--users 6000] [--items 3000]

Each fit runs in a fresh interpreter (OpenMP reads its wait policy when torch loads), on the same seeded
random interactions, under three policies: ``auto`` (``num_threads: 0``: one thread per core this process
may use, torch's default active waits), ``auto+passive`` (the same with ``OMP_WAIT_POLICY=PASSIVE`` set
before torch loads) and ``one`` (``num_threads: 1``). Each is timed quiet, then beside a busy process (one
core spinning in plain Python, as a second run or the daemon would). Prints the fit seconds and, per
policy, busy / quiet: the issue's bound is 1.5. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

POLICIES = {
    "auto": ({}, 0),
    "auto+passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 0),
    "one": ({}, 1),
}
BUSY = "while True: pass"

FIT = """
import json, sys, time
import numpy as np, scipy.sparse as sp
from recpipeline.models import create_model
model = sys.argv[1]
epochs, users, items, threads = (int(value) for value in sys.argv[2:6])
rng = np.random.default_rng(0)
rows = np.repeat(np.arange(users), 50)  # 50 interactions a user, popular items more often
cols = (rng.zipf(1.3, rows.size) - 1) % items
train = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(users, items))
fitted = create_model(model, {"epochs": epochs, "num_threads": threads, "seed": 0})
started = time.perf_counter()
fitted.fit(train)
print(json.dumps({"fit_s": time.perf_counter() - started}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mult_vae", help="a torch model fitted from the matrix alone")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--items", type=int, default=3000)
    args = parser.parse_args()
    results = {}
    for policy, (env, threads) in POLICIES.items():
        for setting in ("quiet", "busy"):
            busy = subprocess.Popen([sys.executable, "-c", BUSY]) if setting == "busy" else None
            try:
                time.sleep(0.5 if busy else 0)
                results[policy, setting] = _fit(args, {**os.environ, **env}, threads)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            print(f"{policy:>13} {setting}: fit {results[policy, setting]:.2f} s", flush=True)
    print(f"cores this process may use: {len(os.sched_getaffinity(0))}")
    for policy in POLICIES:
        quiet, busy = results[policy, "quiet"], results[policy, "busy"]
        print(f"{policy:>13}: quiet {quiet:.2f} s, busy {busy:.2f} s, busy / quiet {busy / quiet:.2f}")


def _fit(args: argparse.Namespace, env: dict[str, str], threads: int) -> float:
    command = [sys.executable, "-c", FIT, args.model, str(args.epochs), str(args.users), str(args.items)]
    done = subprocess.run([*command, str(threads)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["fit_s"]


if __name__ == "__main__":
    main()
