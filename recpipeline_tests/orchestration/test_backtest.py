"""The backtest through Dagster: cut partitions run in order with warm starts, the verdict over time, and a
cold cut that reproduces the single run whose data ends with its test window."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from recpipeline.evaluation.backtest import BACKTEST_COLUMNS
from recpipeline.evaluation.costs import COST_COLUMNS
from recpipeline.models import load_model
from recpipeline.orchestration.definitions import build_definitions
from recpipeline.orchestration.runner import run_backtest, run_pipeline
from recpipeline_tests.conftest import tiny_config, tiny_raw_config
from recpipeline_tests.orchestration.conftest import run_backfill, running_ui

pytestmark = pytest.mark.integration
BACKTEST = {"every_days": 1, "min_train_days": 3, "max_epochs": 2}


def test_a_backtest_runs_its_cuts_in_order_and_warm_starts_the_torch_model(tmp_path: Path):
    config = tiny_config(tmp_path / "warehouse", backtest=BACKTEST)
    with DagsterInstance.ephemeral() as instance:
        outcome = run_backtest(config, instance, "2026-10-05", "2026-10-07")
    assert outcome.partitions == ["2026-10-05", "2026-10-06", "2026-10-07"]
    table = pd.read_parquet(tmp_path / "warehouse" / "backtest.parquet")
    assert list(table.columns) == list(BACKTEST_COLUMNS)
    assert sorted(table["cut_date"].unique()) == outcome.partitions
    costs = pd.read_parquet(tmp_path / "warehouse" / "backtest_costs.parquet")
    assert list(costs.columns) == ["cut_date", *COST_COLUMNS]
    vae = costs[costs["model"] == "mult_vae"].set_index("cut_date")
    assert vae.loc["2026-10-05", "warm_start_from"] == "cold"
    assert vae.loc["2026-10-06", "warm_start_from"].startswith("2026-10-05 (run ")
    assert vae.loc["2026-10-07", "warm_start_from"].startswith("2026-10-06 (run ")
    assert (vae["epochs_run"] <= 4).all()  # the nightly cap: at most 2 epochs each for fit and refit
    assert (costs["fit_s"] > 0).all() and (costs["model_bytes"] > 0).all()
    page = (tmp_path / "warehouse" / "report" / "backtest.html").read_text()
    assert "Verdict over time" in page and "data:image/png;base64," in page
    models = tmp_path / "warehouse" / "models"
    final = load_model(models / "cut_mult_vae_model" / "2026-10-07")
    fit = load_model(models / "cut_mult_vae_validation_fit" / "2026-10-07")
    assert final.provenance_["lineage"] == "final" and final.provenance_["trained_until"] == "2026-10-08"
    assert fit.provenance_["lineage"] == "validation" and fit.provenance_["trained_until"] == "2026-10-06"
    als = load_model(models / "cut_als_model" / "2026-10-06")
    assert "no weights to continue from" in als.provenance_["cold_reason"]


def test_the_nightly_sensor_adds_the_newest_cut_then_refreshes_the_verdict(tmp_path: Path):
    config = tiny_config(tmp_path / "warehouse", backtest=BACKTEST, models=["popularity"])
    defs = build_definitions(config)
    sensor = defs.resolve_sensor_def("backtest_newest_cut")
    with DagsterInstance.ephemeral() as instance:

        def tick():
            with build_sensor_context(instance=instance, definitions=defs) as context:
                return sensor(context)

        assert isinstance(tick(), SkipReason)  # nothing encoded yet
        run_backtest(config, instance, "2026-10-05", "2026-10-05")
        # the days are encoded up to 2026-10-10: cut 2026-10-08's test window (10-09 .. 10-10) is complete
        request = tick()
        assert isinstance(request, RunRequest)
        assert (request.job_name, request.partition_key) == ("backtest_cuts", "2026-10-08")
        run_backtest(config, instance, "2026-10-08", "2026-10-08")
        assert "is evaluated and in the verdict over time" in tick().skip_message


def test_a_cold_cut_gives_the_metrics_of_the_run_whose_data_ends_with_its_test_window(tmp_path: Path):
    cut = tiny_config(tmp_path / "cuts", backtest={**BACKTEST, "warm_start": False, "max_epochs": None})
    with DagsterInstance.ephemeral() as instance:
        run_backtest(cut, instance, "2026-10-06", "2026-10-06")
    # cut 2026-10-06: test window 2026-10-07 .. 2026-10-08
    single = tiny_config(
        tmp_path / "single",
        source={
            "kind": "synthetic",
            "start_date": "2026-10-01",
            "end_date": "2026-10-08",
            "synthetic": {"n_users": 300, "n_items": 150, "sessions_per_day": 150},
        },
    )
    with DagsterInstance.ephemeral() as instance:
        run_pipeline(single, instance)
    drop = ["run_id"]
    from_cut = pd.read_parquet(tmp_path / "cuts" / "cut_metrics" / "2026-10-06.parquet").drop(columns=drop)
    from_run = pd.read_parquet(tmp_path / "single" / "metrics.parquet").drop(columns=drop)
    keys = ["model", "segment", "metric", "k"]
    pd.testing.assert_frame_equal(
        from_cut.sort_values(keys, ignore_index=True),
        from_run.sort_values(keys, ignore_index=True),
        check_exact=True,
    )


CUTS = ["2026-10-05", "2026-10-06", "2026-10-07"]
KINDS = ("model", "validation_fit", "recommendations")


def test_a_backfill_launched_from_the_ui_runs_the_cuts_in_date_order_with_warm_starts(tmp_path: Path):
    """The documented UI path (docs/operations.md, "Backtests"): Jobs → backtest_cuts → Materialize all… →
    the cut dates → Launch backfill, on the real webserver and daemon."""
    raw = tiny_raw_config(
        "unused",
        backtest=BACKTEST,
        models=["popularity", {"mult_vae": {"epochs": 2, "hidden": 32, "latent": 8}}],
    )
    raw.pop("storage")
    with running_ui(tmp_path, raw) as ui:
        assets = [
            *(f"cut_{name}" for name in ("train", "validation", "test", "user_id_map", "item_id_map")),
            *(f"cut_{m}_{kind}" for m in ("popularity", "mult_vae") for kind in KINDS),
            "cut_metrics",
            "cut_significance",
            "cut_costs",
        ]
        run_backfill(ui, "backtest_cuts", CUTS, assets, timeout=600)
    models = ui["storage"] / "models" / "cut_mult_vae_model"
    chain = {cut: load_model(models / cut).provenance_["warm_start_from"] for cut in CUTS}
    assert chain["2026-10-05"] is None
    assert chain["2026-10-06"].startswith("2026-10-05 (run ")
    assert chain["2026-10-07"].startswith("2026-10-06 (run ")
