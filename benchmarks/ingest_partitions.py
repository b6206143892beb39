"""Daily ingestion through Dagster, as `recpipeline run` does it, of the same rows spread over 1, 30 or all
374 days.

python benchmarks/ingest_partitions.py [--path online_retail.parquet] [--days 1 30 0] [--profile FILE]
    [--instance-yaml dagster.yaml]

Every size ingests all rows of the UCI Online Retail log: ``0`` is the log as it is (374 daily partitions);
``N`` > 0 is the same rows with their invoice times squeezed linearly into N winter days from 2010-12-01
(order and ties kept, so the same rows are cleaned alike). Each size is one `daily_ingestion` run (a
single-run backfill, on a persistent SQLite instance in a temporary folder, as `recpipeline run`) that reads,
cleans and writes every day's raw, cleaned and quarantined Parquet files and records their
materializations. Prints one JSON line per size (days, rows, cleaned, wall seconds, rows per second, the
share of the one-pass rows/s), after the one-pass read-and-clean rows/s of benchmarks/ingest_online_retail.py
on the same rows (no writes, no Dagster). Each line also has ``dagster_floor_s``: the same number of
same single-run backfill of the same asset shape whose assets read, clean and write nothing (it stores the
same materializations, one per daily asset and day) — the bookkeeping no daily-partitioned ingestion on this
instance can go below — and the rows/s and share once that floor is taken out of the run's wall time.
``--instance-yaml`` runs both on the instance that file describes (e.g. PostgreSQL storage) instead of
the default SQLite one.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from dagster import (
    AssetSpec,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    materialize,
    multi_asset,
)

from recpipeline.config import parse_config
from recpipeline.datasets import dataset_folder
from recpipeline.orchestration.instance import ensure_dagster_home
from recpipeline.orchestration.runner import run_pipeline
from recpipeline.preparation.cleaning import clean_partitions
from recpipeline.sources import open_source

#: the assets a daily_ingestion run materializes per day
DAILY_ASSETS = ("raw_events", "cleaned_events", "quarantined_events")
DEFAULT_PATH = dataset_folder("uci-online-retail") / "online_retail.parquet"  # recpipeline datasets fetch


def squeezed(path: str, days: int, folder: Path) -> str:
    """The log with its invoice times mapped linearly into ``days`` days from 2010-12-01 00:00 (UK winter
    time, which is UTC), at microsecond resolution: distinct times stay distinct, equal ones equal."""
    frame = pd.read_parquet(path)
    times = pd.to_datetime(frame["InvoiceDate"])
    span = times.max() - times.min() + pd.Timedelta(minutes=1)
    share = (times - times.min()) / span
    frame["InvoiceDate"] = (pd.Timestamp("2010-12-01") + share * pd.Timedelta(days=days)).dt.strftime(
        "%Y-%m-%d %H:%M:%S.%f"
    )
    out = folder / f"online_retail_{days}d.parquet"
    frame.to_parquet(out, index=False)
    return str(out)


def one_pass_rows_per_s(config) -> float:
    """Read, assign days, map and clean every row once (no writes, no Dagster), as ingest_online_retail."""
    started = time.perf_counter()
    source = open_source(config)
    first, last = source.days()
    days = {day.isoformat(): source.events_of_day(day) for day in pd.date_range(first, last).date}
    clean_partitions(days, source.to_contract)
    return sum(len(frame) for frame in days.values()) / (time.perf_counter() - started)


def instance_home(folder: Path, instance_yaml: str | None) -> str:
    """An instance folder: ``instance_yaml``'s instance, else the default SQLite one (``ensure_dagster_home``;
    each call on a fresh folder is a fresh instance, while ``instance_yaml``'s database is shared)."""
    if instance_yaml:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dagster.yaml").write_text(Path(instance_yaml).read_text())
    return str(ensure_dagster_home(folder))


def dagster_floor_seconds(folder: Path, days: list[str], instance_yaml: str | None = None) -> float:
    """What Dagster's bookkeeping alone costs for a run over ``days``: a single-run backfill of the same
    asset shape (``raw_events``, then one step materializing ``cleaned_events`` and ``quarantined_events``)
    whose assets read, clean and write nothing, on an instance of the same kind (``instance_home``). It
    stores the same materializations (one per asset and day)."""
    partitions = DailyPartitionsDefinition(start_date=days[0], end_date=_next_day(days[-1]), timezone="UTC")
    policy = BackfillPolicy.single_run()

    @asset(name="raw_events", partitions_def=partitions, backfill_policy=policy)
    def raw_events() -> MaterializeResult:
        return MaterializeResult()

    @multi_asset(
        specs=[AssetSpec(name, deps=["raw_events"], partitions_def=partitions) for name in DAILY_ASSETS[1:]],
        backfill_policy=policy,
    )
    def clean() -> Iterator[MaterializeResult]:
        for name in DAILY_ASSETS[1:]:
            yield MaterializeResult(asset_key=name)

    tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
    with DagsterInstance.from_config(instance_home(folder / "floor", instance_yaml)) as instance:
        started = time.perf_counter()
        materialize([raw_events, clean], instance=instance, tags=tags)
        return time.perf_counter() - started


def _next_day(day: str) -> str:
    return (pd.Timestamp(day) + pd.Timedelta(days=1)).date().isoformat()


def ingest(path: str, folder: Path, profile: str | None, instance_yaml: str | None = None) -> dict:
    """One daily_ingestion run over every day of the log at ``path``."""
    # a few real days quarantine more than the default ceiling (cancellations): ingest them all anyway
    raw = {"source": {"kind": "online_retail", "path": path}, "cleaning": {"max_quarantine_share": 1.0}}
    config = parse_config({**raw, "storage": str(folder / "wh")})
    with DagsterInstance.from_config(instance_home(folder / "home", instance_yaml)) as instance:
        run = partial(run_pipeline, config, instance=instance, train=False)
        started = time.perf_counter()
        if profile:
            profiler = cProfile.Profile()
            outcome = profiler.runcall(run)
            profiler.dump_stats(profile)
        else:
            outcome = run()
        wall = time.perf_counter() - started
    rows = sum(pq.read_metadata(p).num_rows for p in (folder / "wh" / "raw_events").glob("*.parquet"))
    cleaned = sum(pq.read_metadata(p).num_rows for p in (folder / "wh" / "cleaned_events").glob("*.parquet"))
    floor = dagster_floor_seconds(folder, outcome.partitions, instance_yaml)
    return {
        "days": len(outcome.partitions),
        "rows": rows,
        "cleaned": cleaned,
        "wall_s": round(wall, 2),
        "rows_per_s": round(rows / wall),
        "dagster_floor_s": round(floor, 2),
        # rows/s of the run once Dagster's own bookkeeping floor is taken out
        "rows_per_s_above_floor": round(rows / max(wall - floor, 1e-9)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", default=str(DEFAULT_PATH))
    parser.add_argument("--days", type=int, nargs="+", default=[1, 30, 0])
    parser.add_argument("--profile", help="write a cProfile of the whole-log (0) run to this file")
    parser.add_argument("--instance-yaml", help="a dagster.yaml for the instance (default: SQLite)")
    args = parser.parse_args()
    one_pass = one_pass_rows_per_s(parse_config({"source": {"kind": "online_retail", "path": args.path}}))
    print(json.dumps({"one_pass_rows_per_s": round(one_pass), "load": os.getloadavg()}), flush=True)
    for days in args.days:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            path = squeezed(args.path, days, folder) if days else args.path
            result = ingest(path, folder, args.profile if days == 0 else None, args.instance_yaml)
        result["share_of_one_pass"] = round(result["rows_per_s"] / one_pass, 2)
        result["share_of_one_pass_above_floor"] = round(result["rows_per_s_above_floor"] / one_pass, 2)
        print(json.dumps({**result, "load": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
