"""`recpipeline bench` on a tiny size: the table and the summary are complete (no timing assertions)."""

import pandas as pd
import pytest

from recpipeline.bench import pipeline as bench
from recpipeline.bench.pipeline import bench_config
from recpipeline.contracts import MODEL_NAMES


def test_bench_sizes_the_shop_from_the_event_count(tmp_path):
    config = bench_config(2e6, tmp_path, days=30)
    spec = config.source.synthetic
    assert spec["n_users"] == 25_000 and spec["n_items"] == 5_000
    assert spec["sessions_per_day"] == round(2e6 / (30 * 6.45))
    assert config.model_names == ["popularity", "als", "item_knn"]


@pytest.mark.integration
def test_bench_reports_every_stage_and_the_summary(tmp_path, monkeypatch):
    # ingestion in runs of about 6,000 rows (two or three days each): stage rows add up over the runs
    monkeypatch.setattr(bench, "INGEST_ROWS_PER_RUN", 6_000)
    result = bench.run_benchmark(20_000, storage=tmp_path, days=8)
    summary = result["summary"]
    assert set(summary) >= {
        "events",
        "wall_s",
        "peak_rss_mb",
        "als_overhead_ratio",
        "eval_bound_ratio",
        "als_fold_in_s",
    }
    table = result["table"].set_index("stage")
    assert {"raw_events", "clean", "als_model", "item_knn_model", "metrics"} <= set(table.index)
    raw = table.loc["raw_events", "rows"]
    assert summary["events"] == raw and 10_000 < raw < 40_000  # counted once, not once per partition
    raw_files = sorted((tmp_path / "warehouse" / "raw_events").glob("*.parquet"))
    assert len(raw_files) == 8 and raw == sum(len(pd.read_parquet(f)) for f in raw_files)
    assert (table["seconds"] > 0).all() and (table["peak_rss_mb"] > 0).all()
    assert summary["als_overhead_ratio"] > 0 and summary["eval_bound_ratio"] > 0
    assert summary["als_eval_s"] > 0  # the fold-in takes milliseconds here: it may round to 0


def test_bench_takes_any_model_set(tmp_path):
    assert bench_config(1e5, tmp_path, models="all").model_names == list(MODEL_NAMES)
    assert bench_config(1e5, tmp_path, models=["ease", "sasrec"]).model_names == ["ease", "sasrec"]


def test_bench_caps_every_torch_models_epochs(tmp_path):
    config = bench_config(1e5, tmp_path, models="all", epochs=2)
    assert config.model_names == list(MODEL_NAMES)
    epochs = {spec.name: spec.params.get("epochs") for spec in config.models}
    assert epochs["sasrec"] == epochs["mult_vae"] == epochs["recvae"] == 2
    assert epochs["als"] is None  # ALS's iterations are not epochs: only torch models are capped


def test_epoch_log_lines_are_recorded_per_model():
    recorder = bench._Recorder()
    recorder.on_message("mult_vae epoch 1: loss 5.1 beta 0.010 val ndcg@10 0.1234 0.4s (training 0.25s)")
    recorder.on_message("mult_vae epoch 2: loss 5.0 beta 0.020 1.5s (training 1.50s)")
    recorder.on_message("mult_vae: kept epoch 1 (val ndcg@10 0.1234)")
    assert recorder.epochs == {"mult_vae": [(0.4, 0.25), (1.5, 1.5)]}


@pytest.mark.integration
def test_bench_reports_each_models_fit_epochs_and_bound(tmp_path):
    lines: list[str] = []
    result = bench.run_benchmark(
        20_000, storage=tmp_path, days=8, models=["popularity", "mult_vae"], epochs=3, progress=lines.append
    )
    summary = result["summary"]
    assert "als_overhead_ratio" not in summary  # no ALS in the set: no ALS bounds
    models = summary["models"]
    assert set(models) == {"popularity", "mult_vae"}
    assert "epochs" not in models["popularity"] and models["popularity"]["fit_s"] >= 0
    vae = models["mult_vae"]
    # at most the 3 capped epochs on train, then the kept ones again on train + validation
    assert 1 <= vae["epochs"] <= 3 and vae["epochs_run"] == 3 + vae["epochs"]
    assert (models["popularity"]["family"], vae["family"]) == ("baseline", "neural")
    metrics = pd.read_parquet(tmp_path / "warehouse" / "metrics.parquet")
    ndcg = metrics[(metrics["metric"] == "ndcg") & (metrics["k"] == 10)].set_index(["model", "segment"])
    for name, entry in models.items():
        assert entry["ndcg"] == round(float(ndcg.loc[(name, entry["segment"]), "value"]), 4)
    # each finished step and each epoch was reported as the run went
    assert any(line.startswith("mult_vae_model: ") for line in lines)
    assert sum(line.startswith("mult_vae epoch ") for line in lines) == vae["epochs_run"]
    assert vae["fit_s"] > 0 and vae["s_per_epoch"] > 0 and vae["bound_s"] > 0 and vae["bound_ratio"] > 0
    assert vae["peak_rss_mb"] > 0
    assert summary["step_peak_rss_mb"]["mult_vae_model"] == vae["peak_rss_mb"]
