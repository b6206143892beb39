"""The price of differential privacy: NDCG@10 of the private models against epsilon, beside the public ones.

For each dataset the pipeline runs once (``run_pipeline``: ingestion, cleaning, the dataset's split, then
``popularity``, ``ease`` and ``als`` trained and evaluated through Dagster) into a temporary storage. From
that warehouse's splits and id maps, ``private_ease`` and ``private_popularity`` (docs/privacy.md) are then
trained for each epsilon and noise seed, recommend and are evaluated with the pipeline's own domain functions
(``train_model`` with the configured refit, ``recommend_for_test_users``, ``prepare_evaluation`` +
``evaluate_models`` under the configured relevance rule), so every row sees the same data. Two
reference rows: ``epsilon = inf`` is ``private_ease`` without noise or clipping, i.e. plain EASE (the
script checks it equals the pipeline's ``ease`` exactly), and ``clip only`` keeps the per-user bound
without noise: what the clipping alone costs.

Reported: ndcg@10 on the headline segment (``with_history``), mean ± sd over the noise seeds, a Markdown
table, a CSV per dataset and a PNG chart in ``--out`` (docs/images/privacy_sweep.png is a copy), and a
verdict line at epsilon = 4 (the private model's mean ± sd over the seeds against popularity: no
significance test).

    RECPIPELINE_DATA=<datasets folder> python benchmarks/privacy_sweep.py
    python benchmarks/privacy_sweep.py --datasets movielens-100k-recommenders --seeds 0 1 --out <folder>
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from recpipeline.config import RunConfig, parse_config
from recpipeline.evaluation.protocol import (
    evaluate_models,
    headline_segment,
    new_users_served_by,
    prepare_evaluation,
)
from recpipeline.evaluation.reports import markdown_table
from recpipeline.fitting.recommending import recommend_for_test_users
from recpipeline.fitting.training import TrainingData, train_model
from recpipeline.models import RunSettings
from recpipeline.orchestration.resources import Warehouse
from recpipeline.orchestration.runner import run_pipeline
from recpipeline.scoring.relevance import RelevanceRule

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("movielens-100k-recommenders", "online-retail")
PUBLIC = ("popularity", "ease", "als")
PRIVATE = ("private_ease", "private_popularity")
EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)
TABLES = ("train", "validation", "test", "user_id_map", "item_id_map", "item_catalog", "user_profiles")
#: the reference rows of the sweep: label -> private_ease's settings
REFERENCES = {"inf": {"epsilon": None, "max_items_per_user": None}, "clip only": {"epsilon": None}}
VERDICT_EPSILON = 4.0


def dataset_config(name: str, storage: Path) -> RunConfig:
    """The dataset's configuration with the public models, this storage and one torch thread."""
    path = ROOT / "data" / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.update(models=list(PUBLIC), storage=str(storage), execution={"num_threads": 1})
    return parse_config(raw, str(path), path.parent)


def run_dataset(name: str, seeds: Sequence[int]) -> tuple[pd.DataFrame, dict[str, float], float]:
    """(one row per private fit: model, epsilon label, seed, ndcg; the pipeline's public ndcg per model;
    the pipeline's wall seconds)."""
    with tempfile.TemporaryDirectory() as storage:
        config = dataset_config(name, Path(storage))
        started = time.perf_counter()
        outcome = run_pipeline(config)
        seconds = time.perf_counter() - started
        warehouse = Warehouse(root=config.storage)
        tables = {table: warehouse.read_previous(table) for table in TABLES}
    k = config.k
    public = headline_ndcg(outcome.metrics, k)
    data = TrainingData(*(tables[t] for t in TABLES[:2] + TABLES[3:]))
    settings = config.evaluation
    relevance = RelevanceRule(
        settings.relevant_event_types, settings.min_rating, config.event_weights.get("rating", 0.0)
    )
    evaluation = prepare_evaluation(
        tables["train"], tables["validation"], tables["test"], tables["item_catalog"], tables["item_id_map"],
        settings.cold_max_interactions, relevance,
    )  # fmt: skip
    fits: list[tuple[str, str, int, dict[str, Any]]] = [
        ("private_ease", label, seeds[0], params) for label, params in REFERENCES.items()
    ]
    fits += [(model, f"{e:g}", seed, {"epsilon": e}) for e in EPSILONS for model in PRIVATE for seed in seeds]
    rows = []
    for model, label, seed, params in fits:
        trained = train_model(model, params, RunSettings(seed=seed, k=k), data, refit=settings.refit)
        lists = recommend_for_test_users(
            trained.model, model, *(tables[t] for t in TABLES[:3]), k, *(tables[t] for t in TABLES[3:5]),
            tables["user_profiles"],
        )  # fmt: skip
        metrics = evaluate_models({model: lists}, evaluation, [k], new_users_served_by([model], []))
        ndcg = headline_ndcg(metrics, k)[model]
        rows.append({"model": model, "epsilon": label, "seed": seed, "ndcg": ndcg})
        print(f"  {name}: {model} epsilon={label} seed={seed}: ndcg@{k} {ndcg:.4f}", flush=True)
    return pd.DataFrame(rows), public, seconds


def headline_ndcg(metrics: pd.DataFrame, k: int) -> dict[str, float]:
    """ndcg@k per model on the headline segment."""
    segment = headline_segment(metrics)
    rows = metrics[(metrics["segment"] == segment) & (metrics["metric"] == "ndcg") & (metrics["k"] == k)]
    return dict(zip(rows["model"], rows["value"].astype(float), strict=True))


def summary_table(fits: pd.DataFrame, public: dict[str, float]) -> pd.DataFrame:
    """One row per epsilon label: mean and sd over the seeds of each private model, and the public models."""
    grouped = fits.groupby(["epsilon", "model"], sort=False)["ndcg"].agg(["mean", "std", "count"]).unstack()
    table = pd.DataFrame(index=grouped.index)
    for model in PRIVATE:
        if ("mean", model) in grouped:
            table[model] = [
                _mean_sd(m, s, n)
                for m, s, n in zip(
                    grouped["mean"][model], grouped["std"][model], grouped["count"][model], strict=True
                )
            ]
    for model in PUBLIC:
        table[model] = f"{public[model]:.4f}"
    return table.reset_index()


def _mean_sd(mean: float, sd: float, count: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" if count < 2 else f"{mean:.4f} ± {sd:.4f}"


def verdict(fits: pd.DataFrame, public: dict[str, float]) -> str:
    """At epsilon = 4: the share of its non-private accuracy private_ease keeps, and its place against
    popularity (the pipeline's, non-private)."""
    ease = fits[fits["model"] == "private_ease"]
    private = ease.loc[ease["epsilon"] == f"{VERDICT_EPSILON:g}", "ndcg"]
    exact = float(ease.loc[ease["epsilon"] == "inf", "ndcg"].iloc[0])
    mean, sd = float(private.mean()), float(private.std()) if len(private) > 1 else 0.0
    popularity = public["popularity"]
    place = "still beats" if mean - sd > popularity else "loses to" if mean + sd < popularity else "ties with"
    return (
        f"at ε = {VERDICT_EPSILON:g} the private model (private_ease) keeps {100 * mean / exact:.0f} % of "
        f"its accuracy (ndcg@10 {mean:.4f} ± {sd:.4f} against {exact:.4f}) and {place} popularity "
        f"({popularity:.4f})"
    )


def chart(results: dict[str, tuple[pd.DataFrame, dict[str, float]]], path: Path) -> None:
    """ndcg@10 against epsilon (log scale), one panel per dataset: the private models' mean ± sd over the
    seeds, the public models as horizontal lines (EASE = the epsilon = inf point)."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    from recpipeline.evaluation.reports import model_colours

    colours = model_colours([*PUBLIC, *PRIVATE])
    fig = Figure(figsize=(5.2 * len(results), 3.8), layout="constrained")
    for ax, (name, (fits, public)) in zip(
        np.atleast_1d(fig.subplots(1, len(results))), results.items(), strict=True
    ):
        for model in PRIVATE:
            swept = fits[(fits["model"] == model) & fits["epsilon"].isin([f"{e:g}" for e in EPSILONS])]
            stats = swept.groupby("epsilon", sort=False)["ndcg"].agg(["mean", "std"]).fillna(0.0)
            epsilons = stats.index.astype(float)
            ax.errorbar(epsilons, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=model,
                        color=colours[model])  # fmt: skip
        for model in PUBLIC:
            ax.axhline(public[model], linestyle="--", color=colours[model], label=f"{model} (non-private)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(EPSILONS, [f"{e:g}" for e in EPSILONS])
        ax.set_xlabel("privacy budget ε (δ = 1e-6)")
        ax.set_ylabel("ndcg@10 (users with history)")
        ax.set_title(name)
        ax.set_ylim(bottom=0)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="noise seeds")
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "privacy-sweep", help="table and chart"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results, sections = {}, []
    for name in args.datasets:
        print(f"{name}: pipeline run ...", flush=True)
        fits, public, seconds = run_dataset(name, args.seeds)
        exact = float(
            fits.loc[(fits["model"] == "private_ease") & (fits["epsilon"] == "inf"), "ndcg"].iloc[0]
        )
        check = "equal" if exact == public["ease"] else f"DIFFERENT ({exact:.6f} vs {public['ease']:.6f})"
        results[name] = (fits, public)
        fits.assign(dataset=name).to_csv(args.out / f"privacy_sweep_{name}.csv", index=False)
        sections.append(
            f"## {name}\n\npipeline run {seconds:.0f} s; private_ease at ε = inf against the pipeline's "
            f"ease: {check}\n\n{markdown_table(summary_table(fits, public))}\n\n- {verdict(fits, public)}\n"
        )
    chart(results, args.out / "privacy_sweep.png")
    text = "\n".join(sections)
    (args.out / "privacy_sweep.md").write_text(text)
    print(text)
    print(f"table, CSVs and chart in {args.out}")


if __name__ == "__main__":
    main()
