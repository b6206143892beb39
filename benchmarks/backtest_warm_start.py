"""Warm starts against cold starts in a daily backtest of the synthetic shop, under a nightly epoch cap.

python benchmarks/backtest_warm_start.py --events 2e6 --cuts 7 --max-epochs 2 [--models mult_vae neumf]
    [--others ease als item_knn] [--modes warm cold]

Runs the same backtest twice — warm starts on, then every cut cold — on one generated shop (``--modes warm``:
only the warm one; ``--others``: the non-torch models fitted beside, default EASE), and prints per cut and
torch model: the validation NDCG curve of the validation fit (a warm start's epoch 0 is its starting
weights), the epochs the warm fit needed to reach the cold fit's best validation NDCG against the epochs the
cold fit needed for it, and the test ndcg@10 of both; then each backtest's wall time. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from recpipeline.bench.pipeline import bench_config
from recpipeline.config import BacktestConfig
from recpipeline.orchestration.assets.backtest import cut_model_asset, cut_partitions
from recpipeline.orchestration.runner import run_backtest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=float, default=2e6)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cuts", type=int, default=7)
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["mult_vae"])
    parser.add_argument("--others", nargs="+", default=["ease"], help="models without a validation curve")
    parser.add_argument("--modes", nargs="+", default=["warm", "cold"], choices=["warm", "cold"])
    parser.add_argument("--storage", help="where to write (default: a new temporary folder)")
    args = parser.parse_args()
    root = Path(args.storage or tempfile.mkdtemp(prefix="recpipeline-warm-"))
    results = {}
    for mode in args.modes:
        config = bench_config(args.events, root / mode, days=args.days, models=[*args.others, *args.models])
        config = config.model_copy(
            update={
                "backtest": BacktestConfig(
                    every_days=1, min_train_days=7, warm_start=True, max_epochs=args.max_epochs
                )
            }
        )
        keys = cut_partitions(config).get_partition_keys()[-args.cuts :]
        with DagsterInstance.ephemeral() as instance:
            started = time.perf_counter()
            outcome = run_backtest(config, instance, keys[0], keys[-1], cold=mode == "cold")
            wall = time.perf_counter() - started
            curves = {
                (model, cut): _curve(instance, model, cut)
                for model in args.models
                for cut in outcome.partitions
            }
        table = pd.read_parquet(root / mode / "backtest.parquet")
        results[mode] = (curves, table, wall, outcome.timings)
    _report(results, args.models, args.others)


def _curve(instance: DagsterInstance, model: str, cut: str) -> list[tuple[int, float]]:
    """The validation curve the cut's fit of ``model`` recorded in its materialization's metadata."""
    record = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(cut_model_asset(model)), asset_partitions=[cut]), limit=1
    ).records[0]
    value = record.asset_materialization.metadata["validation_curve"].value
    return [
        (point["epoch"], point["ndcg"]) for point in (json.loads(value) if isinstance(value, str) else value)
    ]


def _report(results: dict, models: list[str], others: list[str]) -> None:
    test = {
        mode: table[(table["metric"] == "ndcg") & (table["k"] == 10)].set_index(["model", "cut_date"])
        for mode, (_, table, _, _) in results.items()
    }
    if "cold" not in results:
        _report_one(results["warm"], test["warm"])
        return
    warm_curves, _, warm_wall, warm_timings = results["warm"]
    cold_curves, _, cold_wall, cold_timings = results["cold"]
    test = {mode: table["value"] for mode, table in test.items()}
    print(
        "model cut | warm validation curve | cold validation curve | epochs to cold best (warm/cold)", end=""
    )
    print(" | test ndcg@10 warm cold")
    for (model, cut), warm in warm_curves.items():
        cold = cold_curves[(model, cut)]
        best = max(ndcg for _, ndcg in cold)
        cold_epochs = next(epoch for epoch, ndcg in cold if ndcg >= best)
        reached = [epoch for epoch, ndcg in warm if ndcg >= best]
        warm_epochs = reached[0] if reached else None
        needed = ">cap" if warm_epochs is None else warm_epochs
        print(
            f"{model} {cut} | {_fmt(warm)} | {_fmt(cold)} | {needed}/{cold_epochs} | "
            f"{test['warm'][(model, cut)]:.4f} {test['cold'][(model, cut)]:.4f}"
        )
    cuts = sorted({cut for _, cut in warm_curves})
    print(f"final cut {cuts[-1]} test ndcg@10 (warm / cold):")
    for model in [*models, *others]:
        print(f"  {model}: {test['warm'][(model, cuts[-1])]:.4f} / {test['cold'][(model, cuts[-1])]:.4f}")
    print(f"wall_s warm={warm_wall:.1f} cold={cold_wall:.1f} ratio={warm_wall / cold_wall:.2f}")
    print(f"timings warm={warm_timings}\ntimings cold={cold_timings}")


def _report_one(result: tuple, test: pd.DataFrame) -> None:
    """One backtest's per-cut test ndcg@10 against the baseline, and each torch model's curves."""
    curves, _, wall, timings = result
    for (model, cut), curve in curves.items():
        print(f"{model} {cut} | {_fmt(curve)}")
    for (model, cut), row in test.sort_index().iterrows():
        print(
            f"{cut} {model}: {row['value']:.4f} diff {row['diff']:+.4f} "
            f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] p_holm {row['p_holm']:.2g}"
        )
    print(f"wall_s={wall:.1f}\ntimings={timings}")


def _fmt(curve: list[tuple[int, float]]) -> str:
    return " ".join(f"{epoch}:{ndcg:.4f}" for epoch, ndcg in curve)


if __name__ == "__main__":
    main()
