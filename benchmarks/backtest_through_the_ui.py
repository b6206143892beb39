"""One backtest twice: through the CLI, and through the web UI's backfill on the real webserver and daemon.

python benchmarks/backtest_through_the_ui.py --config retail-bt.yaml --start 2011-09-05 --end 2011-11-28

1. ``recpipeline backtest`` (in-process runs, one per cut, then the summary) into ``<storage>/cli``;
2. ``recpipeline run`` then ``recpipeline ui`` (dagster dev: webserver + daemon) on a fresh DAGSTER_HOME with
   ``<storage>/ui``, the backfill the UI's "Materialize all… → Launch backfill" sends for the
   ``backtest_cuts`` job's cut partitions (one run per cut, launched by the daemon in subprocesses), then the
   ``backtest_summary`` job launched as the UI's "Materialize" does.

Prints each path's wall time and the verdict over time, and compares the two ``backtest.parquet`` tables:
exactly equal, or the largest difference per column. Uses the running-system helpers of the integration
tests (``recpipeline_tests.orchestration.conftest``), so run it from a checkout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from recpipeline.config import load_config
from recpipeline.orchestration.assets.backtest import (
    CUT_TABLES,
    SPLIT_OUTPUTS,
    cut_asset,
    cut_model_asset,
    cut_recommendations_asset,
    cut_validation_fit_asset,
)
from recpipeline.orchestration.jobs import BACKTEST_CUTS_JOB, BACKTEST_SUMMARY_JOB
from recpipeline_tests.orchestration.conftest import graphql, run_backfill, running_ui, wait_for

#: what a job page's "Materialize" sends for an unpartitioned job
LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
LOCATION = {
    "repositoryLocationName": "recpipeline.orchestration.definitions",
    "repositoryName": "__repository__",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--storage", help="where to write (default: a new temporary folder)")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds the UI backfill may take")
    args = parser.parse_args()
    root = Path(args.storage or tempfile.mkdtemp(prefix="recpipeline-ui-backtest-"))
    raw = yaml.safe_load(Path(args.config).read_text())
    raw.pop("storage", None)

    cli_root = root / "cli"
    cli_root.mkdir(parents=True, exist_ok=True)
    cli_config = cli_root / "run.yaml"
    cli_config.write_text(yaml.safe_dump({**raw, "storage": str(cli_root / "warehouse")}))
    cli = Path(sys.executable).with_name("recpipeline")
    started = time.monotonic()
    subprocess.run(
        [str(cli), "backtest", "--config", str(cli_config), "--start", args.start, "--end", args.end],
        env={**os.environ, "DAGSTER_HOME": str(cli_root / "home")},
        check=True,
    )
    cli_wall = time.monotonic() - started

    cuts = sorted(_cli_cuts(cli_root / "warehouse"))  # the CLI's cut dates (--every included)
    ui_root = root / "ui"
    ui_root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with running_ui(ui_root, raw) as ui:
        filled = time.monotonic() - started
        assets = _cut_assets(load_config(cli_config).model_names)
        run_backfill(ui, BACKTEST_CUTS_JOB, cuts, assets, timeout=args.timeout)
        cuts_wall = time.monotonic() - started - filled
        launched = graphql(
            ui["url"],
            LAUNCH_RUN,
            {"params": {"selector": {**LOCATION, "jobName": BACKTEST_SUMMARY_JOB}, "runConfigData": {}}},
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        wait_for(
            lambda: graphql(ui["url"], RUN, {"id": run_id})["runOrError"]["status"] == "SUCCESS",
            600,
            "the backtest_summary run",
        )
    ui_wall = time.monotonic() - started
    print(f"cuts: {len(cuts)} ({cuts[0]} .. {cuts[-1]})")
    print(f"wall_s cli={cli_wall:.1f} ui={ui_wall:.1f}", end=" ")
    print(f"(of which recpipeline run {filled:.1f}, the cut backfill {cuts_wall:.1f})")
    _compare(cli_root / "warehouse" / "backtest.parquet", ui_root / "warehouse" / "backtest.parquet")


def _cli_cuts(warehouse: Path) -> set[str]:
    return set(pd.read_parquet(warehouse / "backtest.parquet")["cut_date"].astype(str))


def _cut_assets(models: list[str]) -> list[str]:
    """Every asset of the ``backtest_cuts`` job, as the UI's "Materialize all…" selects them."""
    fits = (cut_model_asset, cut_validation_fit_asset, cut_recommendations_asset)
    return [
        *(cut_asset(name) for name in (*SPLIT_OUTPUTS, *CUT_TABLES)),
        *(asset(model) for model in models for asset in fits),
    ]


def _compare(cli_path: Path, ui_path: Path) -> None:
    keys = ["cut_date", "model", "metric", "k", "segment"]
    cli = pd.read_parquet(cli_path).sort_values(keys).reset_index(drop=True)
    ui = pd.read_parquet(ui_path).sort_values(keys).reset_index(drop=True)
    print(f"backtest.parquet rows: cli {len(cli)}, ui {len(ui)}")
    if cli[keys].equals(ui[keys]):
        numeric = [c for c in cli.columns if c not in keys and pd.api.types.is_numeric_dtype(cli[c])]
        largest = {c: float((cli[c] - ui[c]).abs().max()) for c in numeric}
        same = all(cli[c].equals(ui[c]) for c in cli.columns)
        print("identical" if same else f"largest difference per column: {largest}")
    else:
        print("the two tables cover different rows")
    headline = cli[(cli["metric"] == "ndcg") & (cli["k"] == cli["k"].min())]
    print(headline.pivot_table(index="cut_date", columns="model", values="value").round(4).to_string())


if __name__ == "__main__":
    main()
