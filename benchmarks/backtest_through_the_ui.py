"""One backtest twice: through the CLI, and through the web UI's backfill on the real webserver and daemon.

python benchmarks/backtest_through_the_ui.py --config retail-bt.yaml --start 2011-09-05 --end 2011-11-28

1. ``recpipeline backtest`` (in-process runs, one per cut, then the summary) into ``<storage>/cli`` (kept and
   reused when ``<storage>/cli`` already holds its table);
2. the UI path on a fresh DAGSTER_HOME with ``<storage>/ui``: the source's days ingested with ``recpipeline
   backfill --no-train``, then ``recpipeline ui`` (dagster dev: webserver + daemon) and, as its buttons send
   them, a ``backtest_inputs`` run, the backfill "Materialize all… → Launch backfill" sends for the
   ``backtest_cuts`` job's cut partitions (one run per cut, launched by the daemon in subprocesses), and a
   ``backtest_summary`` run.

Prints each path's wall time and the verdict over time, and compares the two ``backtest.parquet`` tables:
exactly equal, or the largest difference per column. Uses the running-system helpers of the integration
tests (``recpipeline_tests.orchestration.conftest``), so run it from a checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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
from recpipeline.orchestration.jobs import BACKTEST_CUTS_JOB, BACKTEST_INPUTS_JOB, BACKTEST_SUMMARY_JOB
from recpipeline_tests.orchestration.conftest import free_port, graphql, run_backfill, server_up, wait_for

#: what a job page's "Materialize" sends for an unpartitioned job
LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
LOCATION = {
    "repositoryLocationName": "recpipeline.orchestration.definitions",
    "repositoryName": "__repository__",
}
CLI = Path(sys.executable).with_name("recpipeline")


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

    cli_config = _config_in(root / "cli", raw)
    cli_table = root / "cli" / "warehouse" / "backtest.parquet"
    started = time.monotonic()
    if not cli_table.exists():
        command = ["backtest", "--config", str(cli_config), "--start", args.start, "--end", args.end]
        subprocess.run([str(CLI), *command], env=_env(root / "cli", cli_config), check=True)
    cli_wall = time.monotonic() - started
    cuts = sorted(_cli_cuts(cli_table.parent))  # the CLI's cut dates (--every included)

    ui_config = _config_in(root / "ui", raw)
    env = _env(root / "ui", ui_config)
    days = sorted(path.stem for path in (cli_table.parent / "cleaned_events").glob("*.parquet"))
    started = time.monotonic()
    ingest = ["backfill", "--config", str(ui_config), "--no-train", "--no-progress"]
    ingest += ["--start", days[0], "--end", days[-1]]  # the days the CLI's backtest ingested
    subprocess.run([str(CLI), *ingest], env=env, check=True)
    ingested = time.monotonic() - started
    with _ui(root / "ui", env) as url:
        _run_job(url, BACKTEST_INPUTS_JOB)
        ui = {"url": url, "log": root / "ui" / "dagster_dev.log"}
        run_backfill(
            ui, BACKTEST_CUTS_JOB, cuts, _cut_assets(load_config(ui_config).model_names), args.timeout
        )
        _run_job(url, BACKTEST_SUMMARY_JOB)
    ui_wall = time.monotonic() - started
    print(f"cuts: {len(cuts)} ({cuts[0]} .. {cuts[-1]})")
    print(f"wall_s cli={cli_wall:.1f} ui={ui_wall:.1f} (of which ingestion {ingested:.1f})")
    _compare(cli_table, root / "ui" / "warehouse" / "backtest.parquet")


def _config_in(folder: Path, raw: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump({**raw, "storage": str(folder / "warehouse")}))
    return path


def _env(folder: Path, config: Path) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": str(folder / "home"), "RECPIPELINE_CONFIG": str(config)}


@contextlib.contextmanager
def _ui(folder: Path, env: dict[str, str]) -> Iterator[str]:
    """``recpipeline ui`` on a free loopback port, stopped (its process group) when the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**env, "RECPIPELINE_REPORT_PORT": str(free_port())}
    with open(folder / "dagster_dev.log", "w") as log:
        process = subprocess.Popen(
            [str(CLI), "ui", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(lambda: server_up(url), 300, "the webserver to answer")
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)


def _run_job(url: str, job: str) -> None:
    """Launch ``job`` as its page's "Materialize" button does and wait for its success."""
    params = {"selector": {**LOCATION, "jobName": job}, "runConfigData": {}}
    launched = graphql(url, LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def status() -> str | None:
        value = graphql(url, RUN, {"id": run_id})["runOrError"]["status"]
        assert value not in ("FAILURE", "CANCELED"), f"{job} run {run_id}: {value}"
        return value == "SUCCESS" or None

    wait_for(status, 3600, f"the {job} run")


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
        numeric = [
            c
            for c in cli.columns
            if c not in keys
            and pd.api.types.is_numeric_dtype(cli[c])
            and not pd.api.types.is_bool_dtype(cli[c])
        ]
        largest = {c: float((cli[c] - ui[c]).abs().max()) for c in numeric}
        same = all(cli[c].equals(ui[c]) for c in cli.columns)
        print("identical" if same else f"largest difference per column: {largest}")
    else:
        print("the two tables cover different rows")
    headline = cli[(cli["metric"] == "ndcg") & (cli["k"] == cli["k"].min())]
    print(headline.pivot_table(index="cut_date", columns="model", values="value").round(4).to_string())


if __name__ == "__main__":
    main()
