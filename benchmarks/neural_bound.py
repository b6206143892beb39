"""Each torch model's epoch inside the pipeline's ``fit`` loop against a bare torch loop of the same
architecture (``recpipeline.bench.bound``), on MovieLens-100K and on a generated shop; and the epoch time
under three thread choices (1, auto, torch's default).

    python benchmarks/neural_bound.py                                  # every torch model, both data
    python benchmarks/neural_bound.py --data movielens --models sasrec --epochs 3
    python benchmarks/neural_bound.py --threads                        # also time 1 / auto / default threads

MovieLens: all ratings by time, each user's last 10 % (at least one) held out as validation. Shop: the
synthetic source sized as ``recpipeline bench --events N`` sizes it (``--shop-events``, default 2e5).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from movielens_models import DATA, load_ratings  # noqa: E402

from recpipeline.bench.bound import TORCH_MODELS, measure_bound  # noqa: E402
from recpipeline.evaluation.reports import markdown_table  # noqa: E402
from recpipeline.models import FitContext  # noqa: E402
from recpipeline.models.threads import auto_threads  # noqa: E402
from recpipeline.preparation.encoding import interaction_matrix  # noqa: E402

#: hyperparameters besides the class defaults: the pipeline's default Mult-VAE budget
PARAMS = {"mult_vae": {"batch_size": 500}}
WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0}


def shop_events(events: float, days: int = 10) -> pd.DataFrame:
    """The synthetic shop's events over ``days`` days, encoded (readable rows only: no dirt)."""
    from recpipeline.bench.pipeline import bench_config
    from recpipeline.sources.synthetic import synthetic_source

    # the configuration's storage is never written here: any folder this process may write in will do
    source = synthetic_source(bench_config(events, Path(tempfile.gettempdir()), days=days))
    first, _ = source.days()
    raw = pd.concat([source.events_of_day(first + pd.Timedelta(days=d)) for d in range(days)])
    raw["timestamp"] = pd.to_datetime(raw["timestamp"], errors="coerce", utc=True, format="ISO8601")
    raw = raw.dropna(subset=["user_id", "item_id", "timestamp"])
    raw = raw[raw["event_type"].isin(list(WEIGHTS))]
    return pd.DataFrame(
        {
            "user_idx": pd.factorize(raw["user_id"])[0].astype(np.int32),
            "item_idx": pd.factorize(raw["item_id"])[0].astype(np.int32),
            "weight": raw["event_type"].map(WEIGHTS).to_numpy(np.float32),
            "timestamp": raw["timestamp"].array,
        }
    )


def split_last(events: pd.DataFrame, share: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's latest ``share`` of events (at least one, if they have two) as validation."""
    events = events.sort_values(["user_idx", "timestamp"], kind="stable", ignore_index=True)
    rank = events.groupby("user_idx").cumcount(ascending=False)
    held = rank < np.maximum(
        1, (events.groupby("user_idx")["item_idx"].transform("size") * share).astype(int)
    )
    held &= events.groupby("user_idx")["item_idx"].transform("size") >= 2
    return events[~held].reset_index(drop=True), events[held].reset_index(drop=True)


def run(events: pd.DataFrame, label: str, names: list[str], epochs: int, threads: list[int]) -> pd.DataFrame:
    train_events, held = split_last(events)
    shape = (int(events["user_idx"].max()) + 1, int(events["item_idx"].max()) + 1)
    train, validation = interaction_matrix(train_events, *shape), interaction_matrix(held, *shape)
    context = FitContext(train_events=train_events, validation_events=held)
    rows = []
    for name in names:
        for count in threads:
            params = {**PARAMS.get(name, {}), "num_threads": count}
            if count < 0:  # torch's default: leave the pool as torch sized it
                params["num_threads"] = torch.get_num_threads()
            result = measure_bound(name, params, train, validation, context, epochs=epochs)
            rows.append(
                {
                    "data": label,
                    "model": name,
                    "threads": {1: "1", 0: f"auto ({auto_threads()})"}.get(
                        count, f"default ({os.cpu_count()})"
                    ),
                    "epoch_s": round(result.epoch_s, 2),
                    "bound_s": round(result.bound_s, 2),
                    "ratio": round(result.ratio, 2),
                    "validation_s": round(result.validation_s, 2),
                    "batches": result.batches,
                }
            )
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(TORCH_MODELS), choices=list(TORCH_MODELS))
    parser.add_argument("--data", nargs="+", default=["movielens", "shop"], choices=["movielens", "shop"])
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each loop (the fastest counts)")
    parser.add_argument("--shop-events", type=float, default=2e5)
    parser.add_argument("--threads", action="store_true", help="also auto and torch's default threads")
    args = parser.parse_args()
    threads = [1, 0, -1] if args.threads else [1]
    tables = []
    for data in args.data:
        events = load_ratings(DATA) if data == "movielens" else shop_events(args.shop_events)
        label = "MovieLens-100K" if data == "movielens" else f"shop {len(events):,} events"
        tables.append(run(events, label, args.models, args.epochs, threads))
    print(markdown_table(pd.concat(tables, ignore_index=True), float_format="{:.2f}"))


if __name__ == "__main__":
    main()
