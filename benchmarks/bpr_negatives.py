"""BPR's negative sampling on MovieLens-100K under the Microsoft Recommenders protocol (docs/models.md).

The pipeline's per-item 75 / 25 stratified split (``splitting.stratified_split``, seed 42);
``recpipeline.models.bpr.BPR`` fitted on the whole train part for each setting in the grid, nDCG@10 over
every test user (every test rating relevant), and the fit's CPU seconds (``time.process_time``: less
skewed by other load than wall time).
``--write-files DIR`` also writes the split as ``train.tsv`` / ``test.tsv`` in the ``u.data`` layout, for a
``split: predefined`` run (``source.kind: movielens``, ``split: {kind: predefined, train: DIR/train.tsv,
test: DIR/test.tsv}``, ``evaluation.min_rating: null``).

    python benchmarks/bpr_negatives.py                                  # uniform_negatives 0 .. 0.9
    python benchmarks/bpr_negatives.py --regularization 0.001 0.01 --seeds 42 1 2
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
from movielens_models import DATA, SEED, K, load_ratings

from recpipeline.models import create_model
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline.preparation.splitting import stratified_split
from recpipeline.scoring.metrics import evaluate


def write_files(folder: Path, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """The split as u.data files: user, item (1-based), rating, Unix seconds, tab-separated."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("train", train), ("test", test)):
        seconds = (frame["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        rows = pd.DataFrame(
            {
                "user": frame["user_idx"] + 1,
                "item": frame["item_idx"] + 1,
                "rating": frame["weight"].astype(int),
            }
        ).assign(ts=seconds)
        rows.to_csv(folder / f"{name}.tsv", sep="\t", header=False, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uniform-negatives", type=float, nargs="+", default=[0.0, 0.5, 0.75, 0.9])
    parser.add_argument("--regularization", type=float, nargs="+", default=[0.001])
    parser.add_argument("--learning-rate", type=float, nargs="+", default=[0.01])
    parser.add_argument("--factors", type=int, nargs="+", default=[64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[SEED])
    parser.add_argument("--write-files", type=Path)
    args = parser.parse_args()

    ratings = load_ratings(DATA)
    shape = (int(ratings["user_idx"].max()) + 1, int(ratings["item_idx"].max()) + 1)
    train, _, test = stratified_split(ratings, by="item", test_ratio=0.25, validation_ratio=0.0, seed=SEED)
    if args.write_files:
        write_files(args.write_files, train, test)
    matrix = interaction_matrix(train, *shape)
    users = np.unique(test["user_idx"].to_numpy())
    grid = itertools.product(
        args.uniform_negatives, args.regularization, args.learning_rate, args.factors, args.seeds
    )
    for share, regularization, learning_rate, factors, seed in grid:
        params = {"uniform_negatives": share, "regularization": regularization, "seed": seed}
        params |= {"learning_rate": learning_rate, "factors": factors}
        started = time.process_time()
        model = create_model("bpr", params).fit(matrix)
        cpu = time.process_time() - started
        top, _ = model.recommend(users, matrix, K)
        recs = pd.DataFrame(
            {
                "user_idx": np.repeat(users, K),
                "item_idx": top.ravel(),
                "rank": np.tile(np.arange(1, K + 1), len(users)),
            }
        )
        ndcg = evaluate(recs[recs["item_idx"] >= 0], test, train, [K]).set_index("metric")["value"]["ndcg"]
        print(f"{params}  ndcg@{K} {ndcg:.4f}  fit {cpu:.1f} CPU s", flush=True)


if __name__ == "__main__":
    main()
