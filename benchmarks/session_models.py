"""Session baselines on the DIGINETICA sample: next-item quality and scoring throughput vs bare bounds.

Sessions starting in the last ``--test-days`` days are test; every proper prefix of a test session (repeats
collapsed) is a pseudo-user whose target is the next item. Quality: HR@K / MRR@K of sknn, vsknn,
cooccurrence and popularity over those prefixes. Throughput: ``--prefixes`` prefixes (the test prefixes
repeated, each a fresh pseudo-user) through ``recommend`` (events cut into sessions, scoring, top-K), against
bare bounds over the same prefixes given as a ready binary sparse matrix Q: ``(Q @ sessions.T) @ sessions``
(every session sharing an item votes) and ``Q @ rules`` (one item-item product), the sparse products alone,
and with ``--dense-bound`` also as dense blocks through the shared dense top-K (what a plain ``score`` +
``Recommender.recommend`` costs).

    python benchmarks/session_models.py [--prefixes 100000] [--k 20] [--time sknn bare] [--dense-bound]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.datasets import dataset_folder
from recpipeline.models import FitContext, ScoreContext, create_model
from recpipeline.models.base import score_chunk_rows, top_k_excluding

#: the models compared (name, params); sknn and cooccurrence also give the bounds' matrices
MODELS = (
    ("popularity", {}),
    ("sknn", {}),
    ("vsknn", {}),
    ("vsknn", {"idf_weighting": 1.0}),
    ("cooccurrence", {}),
    ("item_knn", {}),
)
DATA = dataset_folder("diginetica-sample") / "sample_train-item-views.csv"  # recpipeline datasets fetch


def load(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=";")
    items, item_idx = np.unique(raw["item_id"].to_numpy(), return_inverse=True)
    stamps = pd.to_datetime(raw["eventdate"], utc=True) + pd.to_timedelta(raw["timeframe"], unit="ms")
    events = pd.DataFrame(
        {
            "user_idx": raw["session_id"].to_numpy(np.int64),  # anonymous: a session is a visitor
            "item_idx": item_idx.astype(np.int64),
            "weight": np.ones(len(raw), dtype=np.float32),
            "timestamp": stamps,
            "session_idx": raw["session_id"].to_numpy(np.int64),
        }
    )
    return events.sort_values(["session_idx", "timestamp"], kind="stable").reset_index(drop=True), len(items)


def test_prefixes(test: pd.DataFrame, first_user: int, copies: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Every proper prefix of each test session (consecutive repeats collapsed), ``copies`` times, as
    pseudo-users ``first_user, ...`` with a session each; (events, next item per pseudo-user)."""
    keep = np.r_[
        True,
        (test["session_idx"].to_numpy()[1:] != test["session_idx"].to_numpy()[:-1])
        | (test["item_idx"].to_numpy()[1:] != test["item_idx"].to_numpy()[:-1]),
    ]
    test = test[keep].reset_index(drop=True)
    session = test["session_idx"].to_numpy()
    starts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    position = np.arange(len(test)) - np.repeat(starts, np.diff(np.r_[starts, len(test)]))
    # prefix (s, n): the first n items of session s, n = 1 .. length - 1; its target is item n
    targets = np.flatnonzero(position > 0)
    n_prefix = position[targets]
    prefix_of = np.repeat(np.arange(len(targets)), n_prefix)
    rows = np.repeat(targets - n_prefix, n_prefix) + (
        np.arange(len(prefix_of)) - np.repeat(np.cumsum(n_prefix) - n_prefix, n_prefix)
    )
    one = test.iloc[rows].reset_index(drop=True).assign(user_idx=prefix_of, session_idx=prefix_of)
    tiled = pd.concat(
        [one.assign(user_idx=one["user_idx"] + c * len(targets)) for c in range(copies)], ignore_index=True
    )
    tiled["user_idx"] += first_user
    tiled["session_idx"] = tiled["user_idx"] + 10**9
    return tiled, np.tile(test["item_idx"].to_numpy()[targets], copies)


def load_average() -> str:
    with open("/proc/loadavg") as file:
        return file.read().split()[0]


def quality(items: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    hit = items == targets[:, None]
    rank = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.inf)
    return float(hit.any(axis=1).mean()), float(np.mean(1.0 / rank))


def bare(
    query: sp.csr_matrix, left: sp.csr_matrix, right: sp.csr_matrix | None, k: int, dense: bool
) -> float:
    """Seconds to score ``query`` as ``query @ left (@ right)`` in chunks; ``dense``: as a dense block with
    the shared dense top-K (``recommend``'s chunks), else the sparse products alone (2048 rows a chunk)."""
    start = time.perf_counter()
    rows = score_chunk_rows(query.shape[1]) if dense else 2048
    for begin in range(0, query.shape[0], rows):
        chunk = query[begin : begin + rows]
        product = chunk @ left
        scores = product @ right if right is not None else product
        if dense:
            top_k_excluding(scores.toarray(), chunk, k)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--test-days", type=int, default=7)
    parser.add_argument("--dense-bound", action="store_true", help="also time the dense top-K bare loop")
    parser.add_argument(
        "--time", nargs="*", help="model names to time (default: all); the others: quality only"
    )
    args = parser.parse_args()
    events, n_items = load(DATA)
    start = events.groupby("session_idx")["timestamp"].transform("min")
    cut = events["timestamp"].max().normalize() - pd.Timedelta(days=args.test_days - 1)
    train, test = events[start < cut], events[start >= cut]
    n_users = int(events["user_idx"].max()) + 1
    matrix = sp.csr_matrix(
        (train["weight"], (train["user_idx"], train["item_idx"])), shape=(n_users, n_items), dtype=np.float32
    )
    one, targets = test_prefixes(test, n_users, 1)
    copies = max(1, -(-args.prefixes // len(targets)))
    print(
        f"{len(train)} train views / {train['session_idx'].nunique()} sessions; "
        f"{test['session_idx'].nunique()} test sessions, {len(targets)} prefixes; {n_items} items; "
        f"throughput over {copies} copies"
    )
    many, many_targets = test_prefixes(test, n_users, copies)
    many_users = np.unique(many["user_idx"].to_numpy())
    history = sp.csr_matrix(
        (many["weight"], (many["user_idx"] - n_users, many["item_idx"])),
        shape=(len(many_users), n_items),
        dtype=np.float32,
    )
    full_history = sp.vstack([sp.csr_matrix((n_users, n_items), dtype=np.float32), history]).tocsr()
    context = FitContext(train_events=train)
    fitted = {}
    for name, params in MODELS:
        model = create_model(name, params).fit(matrix, context=context)
        fitted[name] = model
        label = f"{name}{params or ''}"
        items, _ = model.recommend(
            one["user_idx"].unique(), full_history, args.k, ScoreContext(history_events=one)
        )
        hr, mrr = quality(items, targets)
        if args.time is not None and name not in args.time:
            print(f"{label:40s} HR@{args.k} {hr:.4f} MRR@{args.k} {mrr:.4f}")
            continue
        began = time.perf_counter()
        model.recommend(many_users, full_history, args.k, ScoreContext(history_events=many))
        seconds = time.perf_counter() - began
        print(
            f"{label:40s} HR@{args.k} {hr:.4f} MRR@{args.k} {mrr:.4f}  {len(many_users)} prefixes in "
            f"{seconds:.2f} s ({len(many_users) / seconds:,.0f}/s)  load {load_average()}"
        )
    # the query as a binary matrix is what the bounds start from (no event handling)
    query = history.copy()
    query.data[:] = 1.0
    sessions = fitted["sknn"].session_items_
    bounds = (
        ("(Q @ sessions.T) @ sessions", sessions.T.tocsr(), sessions),
        ("Q @ rules", fitted["cooccurrence"].rules_, None),
    )
    if args.time is not None and "bare" not in args.time:
        return
    for dense in (False, True) if args.dense_bound else (False,):
        for label, left, right in bounds:
            seconds = bare(query, left, right, args.k, dense)
            label = f"bare {label}, " + ("dense top-K" if dense else "sparse products only")
            print(
                f"{label:40s} {len(many_users)} prefixes in {seconds:.2f} s "
                f"({len(many_users) / seconds:,.0f}/s)  load {load_average()}"
            )


if __name__ == "__main__":
    main()
