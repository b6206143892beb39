"""Items first seen in the test window: the pretrained title encoder (all-MiniLM-L6-v2) against TF-IDF.

For each dataset the pipeline runs once (``run_pipeline``: ingestion, cleaning, the configured split, then
``popularity`` and ``content`` with TF-IDF trained and evaluated through Dagster) into a temporary storage.
From that warehouse's splits, id maps and catalogue, each variant below is then trained, recommends and is
evaluated with the pipeline's own domain functions (``train_model`` with the configured refit,
``recommend_for_test_users``, ``prepare_evaluation`` + ``evaluate_models``), so every row sees the same data:

* ``content`` / ``content+minilm`` — the content model with TF-IDF titles / all-MiniLM-L6-v2 title vectors;
* ``hybrid`` / ``hybrid+minilm`` — ALS blended with that content model (alpha 0.8), a cold item's missing
  CF evidence imputed as average (``cold_items: average``, the default) or, ``cold=content``, as its
  content evidence;
* ``popularity`` — the reference: it never recommends an item first seen in test.

Segment ``new_items`` (``evaluation/protocol.py``): relevance restricted to items first seen in the test
window, over the users with at least one; ``exposure_share``: the share of all evaluated users' top-K slots
holding such an item. Also timed: embedding the catalogue's titles with a fresh encoder load (rows/s).

    python benchmarks/new_items_text.py                      # UCI Online Retail and the default shop
    python benchmarks/new_items_text.py --datasets shop
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from math import nan
from pathlib import Path

import pandas as pd
import torch
import yaml

from recpipeline.config import RunConfig, parse_config
from recpipeline.evaluation.protocol import COLD_START_FALLBACK, evaluate_models, prepare_evaluation
from recpipeline.evaluation.reports import markdown_table
from recpipeline.fitting.recommending import recommend_for_test_users
from recpipeline.fitting.training import TrainingData, train_model
from recpipeline.models import RunSettings, model_class
from recpipeline.models import text as text_module
from recpipeline.models.text import DEFAULT_TEXT_ENCODER, encode_item_text
from recpipeline.orchestration.resources import Warehouse
from recpipeline.orchestration.runner import run_pipeline

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {"online-retail": ROOT / "data" / "online-retail.yaml", "shop": None}  # None: the default shop
MINILM = {"text_encoder": DEFAULT_TEXT_ENCODER}
VARIANTS = {
    "popularity": ("popularity", {}),
    "content": ("content", {}),
    "content+minilm": ("content", MINILM),
    "hybrid": ("hybrid", {}),
    "hybrid+minilm": ("hybrid", {"content_params": MINILM}),
    "hybrid cold=content": ("hybrid", {"cold_items": "content"}),
    "hybrid+minilm cold=content": ("hybrid", {"cold_items": "content", "content_params": MINILM}),
}
TABLES = ("train", "validation", "test", "user_id_map", "item_id_map", "item_catalog", "user_profiles")


def dataset_config(name: str, storage: Path) -> RunConfig:
    """The dataset's configuration with this benchmark's models, storage and one torch thread."""
    path = DATASETS[name]
    raw = yaml.safe_load(path.read_text()) if path else {}
    raw.update(models=["popularity", "content"], storage=str(storage), execution={"num_threads": 1})
    return parse_config(raw, str(path or "<default shop>"), path.parent if path else ROOT)


def run_dataset(name: str, k: int) -> tuple[pd.DataFrame, dict]:
    with tempfile.TemporaryDirectory() as storage:
        config = dataset_config(name, Path(storage))
        started = time.perf_counter()
        outcome = run_pipeline(config)
        pipeline_seconds = time.perf_counter() - started
        warehouse = Warehouse(root=config.storage)
        tables = {table: warehouse.read_previous(table) for table in TABLES}
    data = TrainingData(*(tables[t] for t in TABLES[:2] + TABLES[3:]))
    catalogue = tables["item_catalog"]
    timing = time_encoding(catalogue)
    settings = RunSettings(seed=config.seed, k=k)
    lists, fits = {}, {}
    for label, (model, params) in VARIANTS.items():
        trained = train_model(model, params, settings, data, refit=config.evaluation.refit)
        fits[label] = (trained.seconds or 0.0) + (trained.refit_seconds or 0.0)
        lists[label] = recommend_for_test_users(
            trained.model, model, *(tables[t] for t in TABLES[:3]), k, *(tables[t] for t in TABLES[3:5]),
            tables["user_profiles"],
        )  # fmt: skip
    evaluation = prepare_evaluation(
        tables["train"], tables["validation"], tables["test"], catalogue, tables["item_id_map"],
        config.evaluation.cold_max_interactions,
    )  # fmt: skip
    # the variants' labels are no registry names: who serves users without history, from their model
    served_by = {
        label: label if model_class(model).serves_cold_users else COLD_START_FALLBACK
        for label, (model, _) in VARIANTS.items()
    }
    metrics = evaluate_models(lists, evaluation, [k], served_by)
    pipeline = outcome.metrics
    pipeline_content = pipeline.set_index(["model", "segment", "metric"])["value"]
    summary = {
        "pipeline_seconds": pipeline_seconds,
        "pipeline_content_new_items_ndcg": pipeline_content.get(("content", "new_items", "ndcg")),
        "new_items": len(evaluation.new_items),
        "items": len(catalogue),
        "fit_seconds": fits,
        **timing,
    }
    return metrics, summary


def time_encoding(catalogue: pd.DataFrame) -> dict:
    """Embed the catalogue's titles with the encoder loaded afresh (the load is counted)."""
    text_module._load.cache_clear()
    text_module._embed_distinct.cache_clear()
    started, cpu = time.perf_counter(), time.process_time()
    encode_item_text(catalogue, ["title"], DEFAULT_TEXT_ENCODER)
    seconds = time.perf_counter() - started
    return {
        "encode_seconds": seconds,
        "encode_cpu_seconds": time.process_time() - cpu,
        "encode_rows_per_s": len(catalogue) / seconds,
        "distinct_titles": int(catalogue["title"].dropna().astype(str).str.strip().nunique()),
        "load": f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?",
    }


def report(name: str, metrics: pd.DataFrame, summary: dict, k: int) -> str:
    rows = []
    for label in VARIANTS:
        own = metrics[metrics["model"] == label].set_index(["segment", "metric"])["value"]
        value = {key: round(float(v), 4) for key, v in own.items()}
        users = metrics[
            (metrics["model"] == label) & (metrics["segment"] == "new_items") & (metrics["metric"] == "ndcg")
        ]["n_users"]
        rows.append(
            {
                "model": label,
                f"new_items ndcg@{k}": value.get(("new_items", "ndcg"), nan),
                f"new_items recall@{k}": value.get(("new_items", "recall"), nan),
                "new_items users": int(users.max()) if len(users) else 0,
                "exposure_share": value.get(("new_items", "exposure_share"), nan),
                f"with_history ndcg@{k}": value.get(("with_history", "ndcg"), nan),
                "fit s": round(summary["fit_seconds"][label], 1),
            }
        )
    return (
        f"### {name}\n\n{markdown_table(pd.DataFrame(rows))}\n\n"
        f"{summary['items']} items ({summary['distinct_titles']} distinct titles), "
        f"{summary['new_items']} first seen in test; titles embedded in "
        f"{summary['encode_seconds']:.1f} s with the load ({summary['encode_cpu_seconds']:.1f} CPU s) "
        f"({summary['encode_rows_per_s']:.0f} rows/s, load average {summary['load']}); pipeline run "
        f"{summary['pipeline_seconds']:.0f} s, its content new_items ndcg "
        f"{summary['pipeline_content_new_items_ndcg']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a small shared machine: one thread is the fastest
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in args.datasets:
        metrics, summary = run_dataset(name, args.k)
        print(report(name, metrics, summary, args.k), flush=True)


if __name__ == "__main__":
    main()
