"""LightGCN (He, Deng, Wang, Li, Zhang & Wang 2020, "LightGCN: Simplifying and Powering Graph Convolution
Network for Recommendation").

One embedding per user and item (layer 0), propagated ``layers`` times over the symmetrically normalised
user-item bipartite graph ``D^-1/2 A D^-1/2`` (multiplied row by row as an embedding bag; no weights, no
non-linearity); the final vector of a node is the mean of its layer vectors and a score the dot product of
user and item final vectors. Trained with BPR on (user, positive, sampled negative) triples, with L2 on the
batch's layer-0 embeddings.

After every epoch the propagated item layers and the training users' final vectors are kept as buffers, so a
saved model scores without the graph. Fold-in: a user without training interactions gets the propagation
step applied to their history row against the fixed item layers (layer ``k + 1`` of the user is the
normalised sum of the history items' layer ``k``); their own layer 0 is unknown and left at zero, which only
rescales the mean.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from recpipeline.models.base import Logger, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.loop import Batch, Phase, Training
from recpipeline.models.neural import Pairs, SparseRows, TorchRecommender
from recpipeline.models.settings import (
    BatchSize,
    Epochs,
    Factors,
    LearningRate,
    Negatives,
    Patience,
    TorchSettings,
    WeightDecay,
)
from recpipeline.models.similarity import cosine_neighbours


class _Propagation(torch.autograd.Function):
    """``graph @ x`` for the symmetric normalised adjacency: the gradient of ``x`` is ``graph @ grad``, the
    same product (the embedding bag's own backward scatters every entry's row instead)."""

    @staticmethod
    def forward(ctx, graph: SparseRows, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.graph = graph
        return graph.times(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:  # type: ignore[override]
        return None, ctx.graph.times(grad)


class _LightGCN(nn.Module):
    def __init__(self, n_users: int, n_items: int, factors: int, layers: int) -> None:
        super().__init__()
        self.n_users = n_users
        self.embedding = nn.Embedding(n_users + n_items, factors)
        nn.init.normal_(self.embedding.weight, std=0.1)
        # what scoring needs, refreshed from the graph after every epoch (``refresh``)
        self.register_buffer("item_layers", torch.zeros(layers + 1, n_items, factors))
        self.register_buffer("user_final", torch.zeros(n_users, factors))
        self.register_buffer("item_degree", torch.zeros(n_items))
        self.register_buffer("trained_users", torch.zeros(n_users, dtype=torch.bool))

    def propagate(self, graph: SparseRows) -> list[torch.Tensor]:
        """The layer-0 to layer-K embeddings of every node (users first)."""
        layers = [self.embedding.weight]
        for _ in range(self.item_layers.shape[0] - 1):
            layers.append(_Propagation.apply(graph, layers[-1]))
        return layers

    @torch.no_grad()
    def refresh(self, graph: SparseRows) -> None:
        layers = self.propagate(graph)
        self.item_layers.copy_(torch.stack([layer[self.n_users :] for layer in layers]))
        self.user_final.copy_(torch.stack([layer[: self.n_users] for layer in layers]).mean(dim=0))

    def item_final(self) -> torch.Tensor:
        return self.item_layers.mean(dim=0)


def normalised_block(binary: sp.csr_matrix, item_degree: np.ndarray) -> sp.csr_matrix:
    """``D_u^-1/2 R D_i^-1/2``: the user-to-item block of the normalised adjacency (isolated nodes: 0)."""
    user_degree = np.asarray(binary.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        user_scale, item_scale = (np.where(d > 0, 1.0 / np.sqrt(d), 0.0) for d in (user_degree, item_degree))
    return (sp.diags(user_scale) @ binary @ sp.diags(item_scale)).tocsr()


def normalised_adjacency(binary: sp.csr_matrix) -> sp.csr_matrix:
    """``D^-1/2 [[0, R], [R^T, 0]] D^-1/2`` over users then items (symmetric)."""
    normed = normalised_block(binary, np.asarray(binary.sum(axis=0)).ravel())
    adjacency = sp.bmat([[None, normed], [normed.T, None]], format="csr")
    adjacency.sort_indices()
    return adjacency


class LightGCN(TorchRecommender):
    """LightGCN with BPR loss, early-stopped on validation NDCG@k (module docstring)."""

    name = "lightgcn"
    # one table: the users' rows, then the items'
    id_axes = {"embedding.weight": (0, ("users", "items"))}
    search_space = {
        "factors": [64, 128],
        "layers": [2, 3],
        "lr": [5e-3, 1e-2, 2e-2],
        "weight_decay": [1e-4, 1e-3],
        "negatives": [1, 4],
    }

    class Settings(TorchSettings):
        factors: Factors = 64
        layers: int = Field(3, ge=1)
        """graph convolution layers"""
        lr: LearningRate = 1e-2
        weight_decay: WeightDecay = 1e-4
        negatives: Negatives = 4
        epochs: Epochs = 200
        batch_size: BatchSize = 8192
        patience: Patience = 20

    def _build_module(self) -> nn.Module:
        return _LightGCN(self.n_users_, self.n_items_, self.factors, self.layers)

    def training(self, train: sp.csr_matrix, context: FitContext, log: Logger) -> Training:
        """Every positive pair once a pass, shuffled, with ``negatives`` sampled items each; after every epoch
        the propagated layers that scoring reads are refreshed."""
        binary = prepare_matrix(train, binarize=True)
        # the adjacency's rows by their non-zeros: propagation multiplies by them as an embedding bag, each
        # node's weighted sum of its neighbours' rows (at 5M events 5x faster on CPU than torch's sparse CSR
        # product, which was 80 % of a step)
        graph = SparseRows.of(normalised_adjacency(binary), self.device_)
        pairs = Pairs.of(binary)
        rng = np.random.default_rng(self.seed)

        def prepare(module: nn.Module) -> None:
            module.item_degree.copy_(torch.from_numpy(np.asarray(binary.sum(axis=0)).ravel()))
            module.trained_users.copy_(torch.from_numpy(np.diff(binary.indptr) > 0))

        def batches() -> Iterator[Batch]:
            users, positive, negative = self._triples(pairs, rng)
            for begin in range(0, len(users), self.batch_size):
                batch = slice(begin, begin + self.batch_size)
                yield users[batch], positive[batch], negative[batch]

        phase = Phase(
            batches,
            lambda module, *batch: self._loss(module, graph, *batch),
            weight=lambda users, positive, negative: len(users),
        )
        return Training((phase,), lr=self.lr, prepare=prepare, epoch_end=lambda module: module.refresh(graph))

    def _triples(
        self, pairs: Pairs, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every positive pair once, in random order, with ``negatives`` unobserved items each (users x
        negatives)."""
        order = rng.permutation(len(pairs.users))
        users, positive = pairs.users[order], pairs.items[order]
        negative = pairs.negatives(rng, users, self.negatives)
        return tuple(torch.from_numpy(a).to(self.device_) for a in (users, positive, negative))

    def _loss(
        self,
        module: _LightGCN,
        graph: SparseRows,
        users: torch.Tensor,
        positive: torch.Tensor,
        negative: torch.Tensor,
    ) -> torch.Tensor:
        """BPR on the final (layer-mean) vectors, averaged over each pair's negatives, + ``weight_decay`` x
        the batch's layer-0 squared norms / 2."""
        layers, offset = module.propagate(graph), module.n_users
        nodes = torch.cat((users, positive + offset, negative.flatten() + offset))
        # the layer mean at the batch's nodes: one gather of the layers' sum (stacking the layers and
        # gathering each side apart copied and scattered several whole tables a step)
        total = layers[0]
        for layer in layers[1:]:
            total = total + layer
        u, i, j = (total[nodes] / len(layers)).split((len(users), len(positive), negative.numel()))
        bpr = F.softplus(
            (u[:, None] * j.view(*negative.shape, -1)).sum(dim=2) - (u * i).sum(dim=1, keepdim=True)
        )
        l2 = module.embedding.weight[nodes].pow(2).sum()
        return bpr.mean() + self.weight_decay * 0.5 * l2 / len(users)

    # -- inference --------------------------------------------------------------------------------------

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """Final user vectors (folded in from the history row for users without training interactions)
        against every item's final vector."""
        module = self.module_
        users = np.asarray(users, dtype=np.int64)
        trained_users = module.trained_users.cpu().numpy()
        trained = users < len(trained_users)
        trained[trained] = trained_users[users[trained]]
        vectors = module.user_final[torch.from_numpy(np.where(trained, users, 0)).to(self.device_)]
        if not trained.all():
            vectors[torch.from_numpy(np.flatnonzero(~trained)).to(self.device_)] = self._fold_in(
                history[~trained]
            )
        return (vectors @ module.item_final().T).float().cpu().numpy()

    def _fold_in(self, rows: sp.csr_matrix) -> torch.Tensor:
        """One propagation step per layer from the history rows to the fixed item layers (see the module)."""
        module = self.module_
        block = normalised_block(prepare_matrix(rows, binarize=True), module.item_degree.cpu().numpy())
        weights = torch.from_numpy(block.toarray().astype(np.float32)).to(self.device_)
        layers = module.item_layers
        return (weights @ layers[:-1]).sum(dim=0) / layers.shape[0]

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the items' final (layer-mean) vectors."""
        vectors = self.module_.item_final().detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)
