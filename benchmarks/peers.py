"""Our models side by side with the peer libraries users would pick instead, in one run: Cornac's BPR,
LensKit's ALS, item-kNN and user-kNN, RecBole's LightGCN and SASRec, each against ours with the closest
settings, on the same MovieLens-100K split, machine and thread count.

Split: the Microsoft Recommenders protocol of ``data/movielens-100k-recommenders.yaml``: each item's ratings
75 / 25 by ``recpipeline.preparation.splitting.stratified_split`` (seed 42, no validation share), every test
rating relevant, top-10 lists with the user's training items removed. Every library fits the same training
rows; every top-10 is scored by our engine (``recpipeline.scoring.metrics.mean_ndcg``, mean over the same
test users), so only the model differs. The peer's own nDCG@10 is printed beside it where the library
computes one on the same lists (Cornac's ``ranking_eval``, LensKit's ``RunAnalysis``, RecBole's
``Trainer.evaluate`` for LightGCN; RecBole's SASRec evaluation scores one next item per test row, a
different figure, so none is shown).

Nothing early-stops: no library gets a validation set, each trains its stated epochs. Fit time is the
model's training call only (``time.perf_counter`` and the process's CPU time, ``time.process_time``);
``top10 s`` is the wall time of the test users' lists. Settings per pair are in ``pairs()``.

Needs the benchmark-only extra and the dataset:

    pip install torch==2.13.0 -e '.[peers]'    # cornac, lenskit, recbole: a separate venv, never dev
    recpipeline datasets fetch movielens-100k   # or RECPIPELINE_DATA pointing at a folder holding it
    python benchmarks/peers.py                  # every pair, one thread
    python benchmarks/peers.py --pairs bpr als --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from movielens_models import SEED, K, load_ratings  # noqa: E402

from recpipeline.datasets import DATASETS, missing_message  # noqa: E402
from recpipeline.evaluation.reports import markdown_table  # noqa: E402
from recpipeline.models import FitContext, ScoreContext, create_model  # noqa: E402
from recpipeline.models.base import top_k_excluding  # noqa: E402
from recpipeline.preparation.encoding import interaction_matrix  # noqa: E402
from recpipeline.preparation.splitting import stratified_split  # noqa: E402
from recpipeline.scoring.metrics import mean_ndcg  # noqa: E402

DATASET = "movielens-100k"
PEER_LIBRARIES = ("cornac", "lenskit", "recbole")


@dataclass(frozen=True)
class Split:
    """The rows every library fits and is scored on; user_idx / item_idx are the ids handed to the peers."""

    train: pd.DataFrame
    test: pd.DataFrame
    shape: tuple[int, int]
    matrix: sp.csr_matrix  # train, weight = rating
    users: np.ndarray  # the test users, ascending

    @classmethod
    def movielens(cls, folder: Path) -> Split:
        ratings = load_ratings(folder)
        shape = (int(ratings["user_idx"].max()) + 1, int(ratings["item_idx"].max()) + 1)
        train, _, test = stratified_split(ratings, "item", 0.25, 0.0, SEED)
        matrix = interaction_matrix(train, *shape)
        return cls(train, test, shape, matrix, np.unique(test["user_idx"].to_numpy()))

    def top_from_scores(self, scores: np.ndarray) -> np.ndarray:
        """Top-K item_idx per test user from a (test users x items) score block, training items removed."""
        return top_k_excluding(scores, self.matrix[self.users], K)[0]


@dataclass
class Result:
    """One fitted model: its lists scored by our engine, the library's own figure, and the times."""

    library: str
    ndcg: float
    own_ndcg: float | None
    fit_s: float
    fit_cpu_s: float
    top_s: float


@dataclass(frozen=True)
class Pair:
    """Our model and the peer's, with the settings each gets (``settings`` says them in words)."""

    name: str
    ours: dict
    library: str
    settings: str
    peer: Callable[[Split], Contender]


class Contender(ABC):
    """One model of one library: ``fit`` is what is timed, ``top`` gives the test users' top-K item_idx."""

    library = ""

    @abstractmethod
    def fit(self, split: Split) -> None: ...

    @abstractmethod
    def top(self, split: Split) -> np.ndarray: ...

    def own_ndcg(self, split: Split) -> float | None:
        """The library's own nDCG@K of these lists, where it computes one on the same lists."""
        return None


class Ours(Contender):
    library = "recpipeline"

    def __init__(self, name: str, params: dict, binary: bool) -> None:
        self.model = create_model(name, params)
        self.binary = binary

    def _matrix(self, split: Split) -> sp.csr_matrix:
        if not self.binary:
            return split.matrix
        ones = split.matrix.copy()
        ones.data[:] = 1.0
        return ones

    def fit(self, split: Split) -> None:
        self.model.fit(self._matrix(split), context=FitContext(train_events=split.train))

    def top(self, split: Split) -> np.ndarray:
        items, _ = self.model.recommend(split.users, self._matrix(split), K, ScoreContext(split.train, None))
        return items


class CornacBPR(Contender):
    library = "cornac"

    def __init__(self, split: Split) -> None:
        import cornac

        self.cornac = cornac
        self.model = cornac.models.BPR(k=200, max_iter=100, learning_rate=0.01, lambda_reg=0.001, seed=SEED)
        triples = lambda frame: list(  # noqa: E731
            zip(frame["user_idx"].astype(str), frame["item_idx"].astype(str), frame["weight"], strict=True)
        )
        self.method = cornac.eval_methods.BaseMethod.from_splits(
            triples(split.train), triples(split.test), exclude_unknowns=True, seed=SEED, verbose=False
        )

    def fit(self, split: Split) -> None:
        self.model.fit(self.method.train_set)

    def top(self, split: Split) -> np.ndarray:
        uid, iid = self.method.train_set.uid_map, self.method.train_set.iid_map
        rows = np.array([uid.get(str(user), -1) for user in split.users])
        columns = np.full(split.shape[1], -1)
        for raw, index in iid.items():
            columns[int(raw)] = index
        u, v, b = self.model.u_factors, self.model.i_factors, self.model.i_biases
        scores = u[np.maximum(rows, 0)] @ v.T + b
        ours = np.where(columns >= 0, scores[:, np.maximum(columns, 0)], -np.inf)
        ours[rows < 0] = -np.inf
        return split.top_from_scores(ours)

    def own_ndcg(self, split: Split) -> float:
        metric = self.cornac.metrics.NDCG(k=K)
        result, _ = self.cornac.eval_methods.ranking_eval(
            self.model, [metric], self.method.train_set, self.method.test_set, exclude_unknowns=True
        )
        return float(result[0])


class LensKit(Contender):
    """A LensKit scorer in its top-N pipeline, whose candidates exclude the user's training items; ``fit``
    trains the pipeline (the scorer, and the training-item lookups, which cost next to nothing)."""

    library = "lenskit"

    def __init__(self, split: Split, make: Callable[[], object]) -> None:
        from lenskit.data import from_interactions_df
        from lenskit.pipeline import topn_pipeline

        frame = split.train.rename(columns={"user_idx": "user_id", "item_idx": "item_id", "weight": "rating"})
        self.data = from_interactions_df(frame[["user_id", "item_id", "rating"]])
        self.pipeline = topn_pipeline(make(), n=K)

    def fit(self, split: Split) -> None:
        from lenskit.training import TrainingOptions

        self.pipeline.train(self.data, TrainingOptions(rng=SEED))

    def top(self, split: Split) -> np.ndarray:
        from lenskit.batch import recommend

        self.recs = recommend(self.pipeline, split.users.tolist(), n=K)  # ordered lists, kept for own_ndcg
        frame = self.recs.to_df()
        top = np.full((len(split.users), K), -1)
        row = np.searchsorted(split.users, frame["user_id"].to_numpy())
        top[row, frame["rank"].to_numpy() - 1] = frame["item_id"].to_numpy()
        return top

    def own_ndcg(self, split: Split) -> float:
        from lenskit.data import ItemListCollection
        from lenskit.metrics import NDCG, LogRankWeight, RunAnalysis

        analysis = RunAnalysis()
        # 1 / log2(rank + 1), ours; LensKit's default clips the log at 2, so ranks 1 and 2 both weigh 1
        analysis.add_metric(NDCG(n=K, weight=LogRankWeight(offset=1)))
        test = split.test.rename(columns={"user_idx": "user_id", "item_idx": "item_id"})
        truth = ItemListCollection.from_df(test[["user_id", "item_id"]].drop_duplicates(), ["user_id"])
        return float(analysis.compute(self.recs, truth).list_summary().loc[f"NDCG@{K}", "mean"])


def lenskit_als() -> object:
    from lenskit.als import ImplicitMFScorer

    return ImplicitMFScorer()  # its defaults: 50 factors, 10 epochs, regularization 0.1, weight 40


def lenskit_knn(kind: str) -> Callable[[], object]:
    def make() -> object:
        from lenskit.knn import ItemKNNScorer, UserKNNScorer

        scorer = ItemKNNScorer if kind == "item" else UserKNNScorer
        return scorer(feedback="implicit")  # max_nbrs 20, min_sim 1e-6 (defaults)

    return make


class RecBole(Contender):
    """A RecBole model on atomic files written from the split (``benchmark_filename``: train / valid / test).
    RecBole wants a validation file: it gets one training row, never handed to the trainer (nothing
    early-stops) and already among the training items its test evaluation masks."""

    library = "recbole"

    def __init__(self, model: str, settings: dict, folder: Path) -> None:
        self.model_name, self.settings, self.folder = model, settings, folder

    def _config(self) -> dict:
        return {
            "data_path": str(self.folder),
            "dataset": "peers",
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": None,
            "alias_of_item_id": ["item_id_list"] if self.sequential else None,
            "seed": SEED,
            "reproducibility": True,
            "use_gpu": False,
            "worker": 0,
            "show_progress": False,
            "checkpoint_dir": str(self.folder / "saved"),
            # the order is moot with benchmark files (they fix the split); RecBole's sequential models want TO
            "eval_args": {"group_by": "user", "order": "TO" if self.sequential else "RO", "mode": "full"},
            "metrics": ["NDCG"],
            "topk": [K],
            "valid_metric": f"NDCG@{K}",
            "eval_batch_size": 4096,
            "state": "WARNING",
            **self.settings,
        }

    @property
    def sequential(self) -> bool:
        return self.model_name == "SASRec"

    def _write(self, split: Split) -> None:
        """The atomic files; for SASRec RecBole reads pre-built (history, next item) rows, as its own data
        augmentation makes them: every training item after a user's first, with the <= 50 before it."""
        folder = self.folder / "peers"
        folder.mkdir(parents=True, exist_ok=True)
        train = split.train.sort_values(["user_idx", "timestamp", "item_idx"], kind="stable")
        test = split.test
        if self.sequential:
            histories = {user: items.tolist() for user, items in train.groupby("user_idx")["item_idx"]}
            length = self.settings["MAX_ITEM_LIST_LENGTH"]
            rows = [
                (user, " ".join(map(str, items[max(0, t - length) : t])), items[t])
                for user, items in histories.items()
                for t in range(1, len(items))
            ]
            held = [
                (user, " ".join(map(str, histories.get(user, [])[-length:])), item)
                for user, item in zip(test["user_idx"], test["item_idx"], strict=True)
            ]
            header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
            for name, content in (("train", rows), ("valid", rows[:1]), ("test", held)):
                with open(folder / f"peers.{name}.inter", "w") as out:
                    out.write(header)
                    out.writelines(f"{u}\t{h}\t{i}\n" for u, h, i in content)
            self.histories = histories
            return
        header = "user_id:token\titem_id:token\n"
        for name, frame in (("train", train), ("valid", train[:1]), ("test", test)):
            with open(folder / f"peers.{name}.inter", "w") as out:
                out.write(header)
                out.writelines(
                    f"{u}\t{i}\n" for u, i in zip(frame["user_idx"], frame["item_idx"], strict=True)
                )

    def fit(self, split: Split) -> None:
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.trainer import Trainer
        from recbole.utils import get_model, init_seed

        self._write(split)
        # RecBole 1.2.1 predates NumPy 2 and SciPy 1.13: its Config aliases np.float_, np.complex_ and
        # np.unicode_ (removed), its LightGCN fills a dok_matrix through dict's private _update (gone)
        for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
            if old not in vars(np):
                setattr(np, old, new)
        if not hasattr(sp.dok_matrix, "_update"):
            sp.dok_matrix._update = lambda matrix, entries: matrix._dict.update(entries)
        self.config = Config(model=self.model_name, config_dict=self._config())
        init_seed(self.config["seed"], self.config["reproducibility"])
        self.dataset = create_dataset(self.config)
        train, _, self.test_data = data_preparation(self.config, self.dataset)
        self.model = get_model(self.model_name)(self.config, train.dataset)
        self.trainer = Trainer(self.config, self.model)
        self.trainer.fit(train, valid_data=None, saved=False, show_progress=False)

    def _item_columns(self, split: Split) -> np.ndarray:
        """For each of our item_idx, its RecBole item id (0: unknown to RecBole, its padding token)."""
        tokens = self.dataset.field2id_token["item_id"]
        columns = np.zeros(split.shape[1], dtype=np.int64)
        for index, token in enumerate(tokens[1:], start=1):
            columns[int(token)] = index
        return columns

    @torch.no_grad()
    def top(self, split: Split) -> np.ndarray:
        from recbole.data.interaction import Interaction

        self.model.eval()
        if self.sequential:
            ids = self.dataset.field2token_id["item_id"]
            length = self.settings["MAX_ITEM_LIST_LENGTH"]
            sequences = torch.zeros((len(split.users), length), dtype=torch.long)
            lengths = torch.ones(len(split.users), dtype=torch.long)
            for row, user in enumerate(split.users):
                history = [ids[str(item)] for item in self.histories.get(int(user), [])[-length:]]
                sequences[row, : len(history)] = torch.tensor(history, dtype=torch.long)
                lengths[row] = max(len(history), 1)
            query = {"item_id_list": sequences, "item_length": lengths}
        else:
            users = self.dataset.field2token_id["user_id"]
            query = {"user_id": torch.tensor([users.get(str(user), 0) for user in split.users])}
        scores = self.model.full_sort_predict(Interaction(query)).view(len(split.users), -1).numpy()
        columns = self._item_columns(split)
        ours = np.where(columns > 0, scores[:, columns], -np.inf)
        return split.top_from_scores(ours)

    def own_ndcg(self, split: Split) -> float | None:
        if self.sequential:
            return None  # its evaluation ranks one next item per test row: not the per-user figure
        return float(self.trainer.evaluate(self.test_data, load_best_model=False)[f"ndcg@{K}"])


#: LightGCN: the Microsoft Recommenders LightGCN notebook's settings (3 layers, 64 factors, batch 1024,
#: learning rate 0.005, L2 1e-4, 50 epochs), one uniform negative per positive, on both sides
LIGHTGCN = {"layers": 3, "factors": 64, "batch_size": 1024, "lr": 0.005, "weight_decay": 1e-4, "epochs": 50}
#: SASRec: RecBole's defaults (2 blocks, 2 heads, 64 factors, dropout 0.5, 50 items, lr 0.001, full-softmax
#: cross-entropy) except the epochs: 300 with early stopping there, a fixed budget here. RecBole trains on
#: every (prefix, next item) row, each read through the whole 50-item window: about 50x the tokens of our
#: epoch, which reads each training window once and learns every position of it (one RecBole epoch took
#: several CPU minutes on this machine), hence a small default
SASREC_EPOCHS = 5


def pairs(folder: Path, sasrec_epochs: int) -> list[Pair]:
    """The pairs, ours first: our settings chosen to match the peer's as far as the models allow."""
    torch_common = {"seed": SEED, "device": "cpu"}
    return [
        Pair(
            "bpr",
            {"factors": 200, "iterations": 100, "learning_rate": 0.01, "regularization": 0.001, "seed": SEED},
            "cornac",
            "200 factors, 100 epochs, lr 0.01, L2 0.001, item bias, seed 42, 1 SGD thread (the Recommenders "
            "notebook's BPR; Cornac runs one thread when seeded); ours' other settings at their defaults",
            lambda split: CornacBPR(split),
        ),
        Pair(
            "als",
            {"factors": 50, "iterations": 10, "regularization": 0.1, "alpha": 40.0, "seed": SEED},
            "lenskit",
            "LensKit ImplicitMF defaults: 50 factors, 10 epochs, L2 0.1, confidence 1 + 40 x (ratings "
            "ignored: ours gets every weight set to 1)",
            lambda split: LensKit(split, lenskit_als),
        ),
        Pair(
            "item_knn",
            {"neighbours": 20, "weighting": "none", "shrinkage": 0.0, "binarize": True},
            "lenskit",
            "cosine on binary interactions, 20 neighbours (LensKit ItemKNN, feedback implicit: the 20 most "
            "similar of the user's items per candidate; ours: the 20 most similar per item), no shrinkage",
            lambda split: LensKit(split, lenskit_knn("item")),
        ),
        Pair(
            "user_knn",
            {"neighbours": 20, "weighting": "none", "shrinkage": 0.0, "binarize": True},
            "lenskit",
            "cosine on binary interactions, 20 neighbours (LensKit UserKNN, feedback implicit: the 20 most "
            "similar users who have the candidate; ours: the 20 most similar users), no shrinkage",
            lambda split: LensKit(split, lenskit_knn("user")),
        ),
        Pair(
            "lightgcn",
            {**LIGHTGCN, "negatives": 1, **torch_common},
            "recbole",
            "3 layers, 64 factors, batch 1024, lr 0.005, L2 1e-4, 50 epochs, 1 uniform negative",
            lambda split: RecBole(
                "LightGCN",
                {
                    "n_layers": LIGHTGCN["layers"],
                    "embedding_size": LIGHTGCN["factors"],
                    "train_batch_size": LIGHTGCN["batch_size"],
                    "learning_rate": LIGHTGCN["lr"],
                    "reg_weight": LIGHTGCN["weight_decay"],
                    "epochs": LIGHTGCN["epochs"],
                    "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
                },
                folder,
            ),
        ),
        Pair(
            "sasrec",
            {
                "factors": 64,
                "blocks": 2,
                "heads": 2,
                "dropout": 0.5,
                "max_len": 50,
                "lr": 0.001,
                "epochs": sasrec_epochs,
                **torch_common,
            },  # fmt: skip
            "recbole",
            f"RecBole's defaults: 2 blocks, 2 heads, 64 factors, dropout 0.5, last 50 items, lr 0.001, "
            f"cross-entropy over every item; {sasrec_epochs} epochs (RecBole's 300 assume early stopping)",
            lambda split: RecBole(
                "SASRec",
                {"epochs": sasrec_epochs, "train_neg_sample_args": None, "MAX_ITEM_LIST_LENGTH": 50},
                folder,
            ),
        ),
    ]


def measure(contender: Contender, split: Split) -> Result:
    """Fit (timed: wall and process CPU), the test users' top-K (timed), our nDCG@K and the library's own."""
    wall, cpu = time.perf_counter(), time.process_time()
    contender.fit(split)
    fit_s, fit_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    wall = time.perf_counter()
    top = contender.top(split)
    top_s = time.perf_counter() - wall
    listed = top >= 0
    recs = pd.DataFrame(
        {
            "user_idx": np.repeat(split.users, top.shape[1])[listed.ravel()],
            "item_idx": top[listed],
            "rank": np.tile(np.arange(1, top.shape[1] + 1), len(split.users))[listed.ravel()],
        }
    )
    ndcg = mean_ndcg(recs, split.test, K)
    return Result(contender.library, ndcg, contender.own_ndcg(split), fit_s, fit_cpu_s, top_s)


@dataclass
class Row:
    """One pair's results: ours and the peer's."""

    name: str
    ours: Result
    peer: Result


def side_by_side(rows: Sequence[Row]) -> pd.DataFrame:
    """The table: per pair, nDCG@K (our engine) and fit seconds of ours and the peer's, and the ratios
    ours / theirs (nDCG above 1: ours ranks better; fit below 1: ours trains faster)."""
    return pd.DataFrame(
        [
            {
                "model": row.name,
                "peer": row.peer.library,
                "ours ndcg@10": row.ours.ndcg,
                "peer ndcg@10": row.peer.ndcg,
                "peer's own ndcg@10": np.nan if row.peer.own_ndcg is None else row.peer.own_ndcg,
                "ndcg ours/peer": row.ours.ndcg / row.peer.ndcg,
                "ours fit s": row.ours.fit_s,
                "peer fit s": row.peer.fit_s,
                "fit ours/peer": row.ours.fit_s / row.peer.fit_s,
                "ours fit cpu s": row.ours.fit_cpu_s,
                "peer fit cpu s": row.peer.fit_cpu_s,
                "ours top10 s": row.ours.top_s,
                "peer top10 s": row.peer.top_s,
            }
            for row in rows
        ]
    )


def ratios(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The JSON line: per model, our nDCG / theirs and our fit seconds / theirs."""
    columns = {"ndcg_ours_over_peer": "ndcg ours/peer", "fit_s_ours_over_peer": "fit ours/peer"}
    return {
        key: {
            model: round(float(value), 4) for model, value in zip(table["model"], table[column], strict=True)
        }
        for key, column in columns.items()
    }


def require_peers() -> None:
    missing = [name for name in PEER_LIBRARIES if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"benchmarks/peers.py needs the benchmark-only extra `peers` ({', '.join(missing)} not "
            "installed): pip install -e '.[peers]' (in a separate venv: LensKit caps pandas below 3)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = ["bpr", "als", "item_knn", "user_knn", "lightgcn", "sasrec"]
    parser.add_argument("--pairs", nargs="+", default=names, choices=names)
    parser.add_argument("--threads", type=int, default=1, help="torch, BLAS and LensKit threads for all")
    parser.add_argument("--sasrec-epochs", type=int, default=SASREC_EPOCHS)
    args = parser.parse_args()
    require_peers()
    if not DATASETS[DATASET].present():
        raise SystemExit(missing_message(DATASET))
    from lenskit.parallel import initialize

    initialize(processes=1, threads=args.threads, backend_threads=args.threads)
    torch.set_num_threads(args.threads)
    split = Split.movielens(DATASETS[DATASET].folder())
    print(
        f"MovieLens-100K, per-item stratified 75/25, seed {SEED}: {len(split.train)} train / "
        f"{len(split.test)} test ratings, {len(split.users)} test users; {args.threads} thread(s) everywhere"
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder, threadpool_limits(args.threads):
        for pair in pairs(Path(folder), args.sasrec_epochs):
            if pair.name not in args.pairs:
                continue
            params = dict(pair.ours)
            # BPR stays on one SGD thread, as Cornac runs when seeded
            if "num_threads" in create_model(pair.name).get_params() and pair.name != "bpr":
                params["num_threads"] = args.threads
            contender = Ours(pair.name, params, binary=pair.name == "als")
            ours = measure(contender, split)
            print(
                f"{pair.name:9s} ours ndcg {ours.ndcg:.4f} fit {ours.fit_s:6.1f}s | "
                f"{contender.model.get_params()}",
                flush=True,
            )
            peer = measure(pair.peer(split), split)
            rows.append(Row(pair.name, ours, peer))
            own = "none" if peer.own_ndcg is None else f"{peer.own_ndcg:.4f}"
            print(
                f"{pair.name:9s} {pair.library} ndcg {peer.ndcg:.4f} (its own {own}) fit "
                f"{peer.fit_s:6.1f}s | {pair.settings}",
                flush=True,
            )
    table = side_by_side(rows)
    print()
    print(markdown_table(table))
    print(json.dumps(ratios(table)))


if __name__ == "__main__":
    main()
