"""Read, map and clean every UCI Online Retail invoice line (all 374 days), as the ingestion assets do.

python benchmarks/ingest_online_retail.py [--path online_retail.parquet]

Prints wall seconds (finding the days, reading and assigning rows to days, mapping and cleaning), rows per
second and peak RSS; checks on the way that every row is accounted for. Parquet writes and Dagster's own
bookkeeping are not included (benchmarks/run_default.py times whole runs).
"""

from __future__ import annotations

import argparse
import resource
import time
from functools import partial

import pandas as pd

from recpipeline.config import parse_config
from recpipeline.datasets import dataset_folder
from recpipeline.preparation.cleaning import clean_partitions, reason_counts
from recpipeline.sources import partition_window, read_raw_events, source_row_counts, to_contract

DEFAULT_PATH = dataset_folder("uci-online-retail") / "online_retail.parquet"  # recpipeline datasets fetch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", default=str(DEFAULT_PATH))
    args = parser.parse_args()
    config = parse_config({"source": {"kind": "online_retail", "path": args.path}})

    started = time.perf_counter()
    first, last = partition_window(config)
    days = {day.isoformat(): read_raw_events(config, day) for day in pd.date_range(first, last).date}
    read_s = time.perf_counter() - started
    results = clean_partitions(days, partial(to_contract, config=config))
    wall = time.perf_counter() - started

    rows = sum(len(frame) for frame in days.values())
    cleaned = sum(len(c) for c, _ in results.values())
    quarantine = pd.concat([q for _, q in results.values()], ignore_index=True)
    counts = source_row_counts(config)
    if rows + counts["outside_window_rows"] != counts["source_rows"] or rows != cleaned + len(quarantine):
        raise SystemExit(f"row accounting broken: {rows=} {cleaned=} {len(quarantine)=} {counts=}")
    reasons = {name: n for name, n in reason_counts(quarantine).items() if n}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{rows:,} rows over {len(days)} days ({first} .. {last})")
    print(f"{cleaned:,} cleaned, {len(quarantine):,} quarantined: {reasons}")
    print(
        f"wall_s={wall:.2f} (read + assign days {read_s:.2f}, map + clean {wall - read_s:.2f}) "
        f"rows_per_s={rows / wall:,.0f} peak_rss_mb={peak_mb:.0f}"
    )


if __name__ == "__main__":
    main()
