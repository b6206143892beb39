"""`recpipeline bench` on a tiny size: the table and the summary are complete (no timing assertions)."""

import pandas as pd
import pytest

from recpipeline import bench
from recpipeline.bench import bench_config


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
