"""Every registered model on MovieLens-100K under the Microsoft Recommenders benchmark protocol.

Protocol (Recommenders' ``examples/06_benchmarks``): a per-item stratified random split, 75 % of each
item's ratings to train and 25 % to test (seed 42; the same rule as ``python_stratified_split(ratio=0.75,
filter_by="item")``, with our own seeded shuffle, so the rows differ from theirs), top-10 lists with the
user's training items removed, and every test rating relevant whatever its value. Metrics come from
``recpipeline.scoring.metrics.evaluate``. Interactions carry the rating as their weight, as the pipeline's
``rating`` events do.

Hyperparameters: each model is tuned (``--trials`` seeded random candidates, defaults first; neural models
``--neural-trials``, they are slow on a CPU) on an inner split of the training set (again per item,
90 / 10), then refitted on the whole training set with the chosen values; neural models are refitted for
the epoch count early stopping chose. The fit time reported is the
final refit's. The test split is never looked at before the final lists.

    python benchmarks/movielens_models.py                       # every model, 40 / 2 trials
    python benchmarks/movielens_models.py --models als ease --trials 20
    python benchmarks/movielens_models.py --trials 1 --neural-trials 1     # defaults only
    python benchmarks/movielens_models.py --models ease als --split-from WAREHOUSE   # a pipeline run's split

Torch runs on one thread by default (``--torch-threads``): on a small shared machine that is the fastest.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recpipeline.datasets import dataset_folder
from recpipeline.evaluation.reports import markdown_table
from recpipeline.fitting.tuning import tune
from recpipeline.models import MODEL_REGISTRY, FitContext, ScoreContext, create_model
from recpipeline.models.neural import TorchRecommender
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline.scoring.metrics import evaluate

DATA = dataset_folder("movielens-100k")  # recpipeline datasets fetch movielens-100k
K = 10
SEED = 42
#: the genre columns of u.item
GENRES = (
    "unknown", "action", "adventure", "animation", "children", "comedy", "crime", "documentary", "drama",
    "fantasy", "film_noir", "horror", "musical", "mystery", "romance", "sci_fi", "thriller", "war", "western",
)  # fmt: skip


def load_ratings(folder: Path) -> pd.DataFrame:
    """u.data as an interactions table: 0-based user_idx / item_idx, weight = rating, UTC timestamp."""
    raw = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "ts"])
    return pd.DataFrame(
        {
            "user_idx": (raw["user"] - 1).astype(np.int32),
            "item_idx": (raw["item"] - 1).astype(np.int32),
            "weight": raw["rating"].astype(np.float32),
            "timestamp": pd.to_datetime(raw["ts"], unit="s", utc=True),
            "event_type": "rating",
        }
    )


def load_items(folder: Path, n_items: int) -> pd.DataFrame:
    """u.item as item features aligned to item_idx: title, first genre as category, year as a number."""
    raw = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1")
    genres = raw.iloc[:, 5:24].to_numpy()
    items = pd.DataFrame(
        {
            "title": raw[1].astype(str),
            "category": np.array(GENRES)[genres.argmax(axis=1)],
            "brand": "",
            "price": pd.to_datetime(raw[2], format="%d-%b-%Y", errors="coerce").dt.year.astype(float),
        }
    )
    return items.reindex(range(n_items))


def load_users(folder: Path, n_users: int) -> pd.DataFrame:
    raw = pd.read_csv(folder / "u.user", sep="|", names=["user", "age", "gender", "occupation", "zip"])
    age_band = pd.cut(raw["age"], [0, 24, 34, 44, 54, 200], labels=["<25", "25-34", "35-44", "45-54", "55+"])
    return pd.DataFrame({"age_band": age_band.astype(str), "gender": raw["gender"]}).reindex(range(n_users))


def stratified_split(frame: pd.DataFrame, ratio: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per item: a seeded shuffle of its rows, the first ``round(ratio * n)`` to the first part."""
    keys = np.random.default_rng(seed).random(len(frame))
    order = np.lexsort((keys, frame["item_idx"].to_numpy()))
    items = frame["item_idx"].to_numpy()[order]
    counts = np.bincount(items)
    position = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    first = np.zeros(len(frame), dtype=bool)
    first[order] = position < np.round(ratio * counts[items])
    return frame[first].reset_index(drop=True), frame[~first].reset_index(drop=True)


def pipeline_splits(warehouse: Path) -> tuple[pd.DataFrame, ...]:
    """The train, validation and test tables a pipeline run wrote, with its id-map sizes and the item / user
    features re-indexed to its indices: this script's procedure on exactly the pipeline's split."""
    read = {name: pd.read_parquet(warehouse / f"{name}.parquet") for name in ("train", "validation", "test")}
    maps = {name: pd.read_parquet(warehouse / f"{name}_id_map.parquet") for name in ("user", "item")}
    shape = (len(maps["user"]), len(maps["item"]))
    raw_index = {name: maps[name].sort_values("idx")["id"].astype(int).to_numpy() - 1 for name in maps}
    items = load_items(DATA, int(raw_index["item"].max()) + 1).iloc[raw_index["item"]].reset_index(drop=True)
    users = load_users(DATA, int(raw_index["user"].max()) + 1).iloc[raw_index["user"]].reset_index(drop=True)
    return read["train"], read["validation"], read["test"], shape, items, users


def run(
    names: list[str], trials: int, neural_trials: int, torch_threads: int, split_from: Path | None = None
) -> pd.DataFrame:
    torch.set_num_threads(torch_threads)
    if split_from is None:
        ratings = load_ratings(DATA)
        shape = (int(ratings["user_idx"].max()) + 1, int(ratings["item_idx"].max()) + 1)
        train, test = stratified_split(ratings, 0.75, SEED)
        inner, validation = stratified_split(train, 0.9, SEED + 1)
        items, users = load_items(DATA, shape[1]), load_users(DATA, shape[0])
    else:
        inner, validation, test, shape, items, users = pipeline_splits(split_from)
        train = pd.concat([inner, validation], ignore_index=True)
    print(
        f"MovieLens-100K: {len(train)} train / {len(test)} test ratings, {test['user_idx'].nunique()} test "
        f"users; tuning on {len(inner)} / {len(validation)}; torch threads {torch_threads}"
    )

    def fit_context(events: pd.DataFrame, held: pd.DataFrame | None) -> FitContext:
        return FitContext(
            item_features=items, user_features=users, train_events=events, validation_events=held
        )

    rows = []
    test_users = np.unique(test["user_idx"].to_numpy())
    for name in names:
        accepted = create_model(name).get_params()
        fixed = {key: value for key, value in {"seed": SEED, "k": K}.items() if key in accepted}
        started = time.perf_counter()
        result = tune(
            name,
            fixed,
            interaction_matrix(inner, *shape),
            interaction_matrix(validation, *shape),
            trials=neural_trials if issubclass(MODEL_REGISTRY[name], TorchRecommender) else trials,
            k=K,
            seed=SEED,
            context=fit_context(inner, validation),
            score_context=ScoreContext(history_events=inner, user_features=users),
        )
        tuning_seconds = time.perf_counter() - started
        params = result.model.refit_params()  # neural models: the epochs early stopping kept

        started = time.perf_counter()
        train_matrix = interaction_matrix(train, *shape)
        model = create_model(name, params).fit(train_matrix, context=fit_context(train, None))
        fit_seconds = time.perf_counter() - started
        top, _ = model.recommend(test_users, train_matrix, K, ScoreContext(train, users))
        recs = pd.DataFrame(
            {
                "user_idx": np.repeat(test_users, top.shape[1]),
                "item_idx": top.ravel(),
                "rank": np.tile(np.arange(1, top.shape[1] + 1), len(test_users)),
            }
        )
        recs = recs[recs["item_idx"] >= 0]
        metrics = evaluate(recs, test, train, [K]).set_index("metric")["value"]
        searched = {key: value for key, value in params.items() if key not in ("seed", "k")}
        rows.append(
            {
                "model": name,
                "ndcg@10": metrics["ndcg"],
                "precision@10": metrics["precision"],
                "recall@10": metrics["recall"],
                "map@10": metrics["map"],
                "coverage@10": metrics["catalog_coverage"],
                "fit_s": fit_seconds,
                "tuning_s": tuning_seconds,
                "params": searched,
            }
        )
        print(
            f"{name:10s} ndcg@10 {metrics['ndcg']:.4f}  p@10 {metrics['precision']:.4f}  "
            f"fit {fit_seconds:6.1f}s  tuning {tuning_seconds:6.1f}s  {searched}",
            flush=True,
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODEL_REGISTRY), choices=list(MODEL_REGISTRY))
    parser.add_argument("--trials", type=int, default=40, help="candidates per model (1 = defaults only)")
    parser.add_argument("--neural-trials", type=int, default=2, help="candidates per neural model")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument(
        "--split-from",
        type=Path,
        help="a pipeline run's storage folder: use its train / validation / test instead of splitting here",
    )
    args = parser.parse_args()
    table = run(args.models, args.trials, args.neural_trials, args.torch_threads, args.split_from)
    print()
    print(markdown_table(table.drop(columns="params").sort_values("ndcg@10", ascending=False)))


if __name__ == "__main__":
    main()
