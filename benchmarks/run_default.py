"""Time `recpipeline run` on the embedded default (or a given config) and print wall time, peak RSS, ndcg.

python benchmarks/run_default.py [--config FILE]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    args = parser.parse_args()
    command = [sys.executable, "-m", "recpipeline.cli", "run", "--log-level", "WARNING"]
    if args.config:
        command += ["--config", args.config]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode:
        sys.exit(completed.stderr[-3000:])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(completed.stdout.strip())
    print(f"\nwall_s={wall:.1f} peak_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
