"""NeuMF (He et al. 2017, "Neural Collaborative Filtering"): GMF and MLP towers fused by a linear output.

GMF: the elementwise product of user and item embeddings. MLP: the concatenated user and item embeddings
through ReLU layers. The two towers' last layers are concatenated into one logit, trained with binary
cross-entropy on each observed (user, item) pair against ``negatives`` uniformly sampled unobserved items.
With ``item_features`` the item side also gets the content model's feature vectors (reduced to
``feature_dim`` by truncated SVD) through a learned projection, which gives items without interactions a
representation.

Fold-in: training users are scored with their learned embeddings. NeuMF has no closed-form inference for
users without training interactions, so their embeddings are learned at score time: ``FOLD_IN_STEPS`` Adam
steps on the same loss over their history rows, with the item side and the towers frozen (seeded, so the
same history always gives the same scores).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from sklearn.decomposition import TruncatedSVD
from torch import nn

from recpipeline.models.base import Logger, prepare_matrix
from recpipeline.models.content import Content, item_feature_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.loop import Batch, Phase, Training
from recpipeline.models.neural import Pairs, TorchRecommender
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

#: (user, item) pairs per forward pass when scoring (bounds memory at pairs x embedding width)
SCORE_BATCH_PAIRS = 1 << 18
#: optimiser steps and learning rate of the fold-in of users unseen in training
FOLD_IN_STEPS, FOLD_IN_LR = 100, 0.05


class _NeuMF(nn.Module):
    def __init__(self, n_users: int, n_items: int, factors: int, layers: list[int], feature_dim: int) -> None:
        super().__init__()
        mlp_dim = layers[0] // 2
        # sparse: a step's gradient and optimiser update touch only the batch's rows (models.loop), not
        # the whole tables, whose dense updates were most of a step at shop scale
        self.gmf_user = nn.Embedding(n_users, factors, sparse=True)
        self.gmf_item = nn.Embedding(n_items, factors, sparse=True)
        self.mlp_user = nn.Embedding(n_users, mlp_dim, sparse=True)
        self.mlp_item = nn.Embedding(n_items, mlp_dim, sparse=True)
        for table in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(table.weight, std=0.01)
        # users with training interactions have learned embeddings; the rest are folded in at score time
        self.register_buffer("trained_users", torch.zeros(n_users, dtype=torch.bool))
        self.feature_dim = feature_dim
        if feature_dim:
            self.register_buffer("item_features", torch.zeros(n_items, feature_dim))
            self.feature_projection = nn.Linear(feature_dim, factors + mlp_dim, bias=False)
        tower = []
        for width_in, width_out in zip(layers[:-1], layers[1:], strict=False):
            tower += [nn.Linear(width_in, width_out), nn.ReLU()]
        self.mlp = nn.Sequential(*tower)
        self.output = nn.Linear(factors + layers[-1], 1)

    def item_vectors(self, items: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(GMF, MLP) item embeddings, content projection added where item features are used."""
        gmf = self.gmf_item.weight if items is None else self.gmf_item(items)
        mlp = self.mlp_item.weight if items is None else self.mlp_item(items)
        if self.feature_dim:
            features = self.item_features if items is None else self.item_features[items]
            side = self.feature_projection(features)
            gmf, mlp = gmf + side[:, : gmf.shape[1]], mlp + side[:, gmf.shape[1] :]
        return gmf, mlp

    def logits(
        self, gmf_user: torch.Tensor, mlp_user: torch.Tensor, gmf_item: torch.Tensor, mlp_item: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.mlp(torch.cat([mlp_user, mlp_item], dim=-1))
        return self.output(torch.cat([gmf_user * gmf_item, hidden], dim=-1)).squeeze(-1)

    def every_pair(
        self, gmf_user: torch.Tensor, mlp_user: torch.Tensor, gmf_item: torch.Tensor, mlp_item: torch.Tensor
    ) -> torch.Tensor:
        """``logits`` of every (user row, item row) pair, users x items. The first tower layer and the output
        layer are linear in their inputs, so each side's share is computed once per row, not once per pair:
        a pair costs the add, the ReLU and the tower's later layers."""
        output = self.output.weight[0]
        gmf = (gmf_user * output[: gmf_user.shape[1]]) @ gmf_item.T + self.output.bias
        if not len(self.mlp):  # no hidden layer: the concatenated embeddings feed the output directly
            mlp_output = output[gmf_user.shape[1] :]
            width = mlp_user.shape[1]
            return gmf + (mlp_user @ mlp_output[:width])[:, None] + (mlp_item @ mlp_output[width:])[None]
        first, width = self.mlp[0], mlp_user.shape[1]
        user_side = F.linear(mlp_user, first.weight[:, :width], first.bias)
        item_side = F.linear(mlp_item, first.weight[:, width:])
        hidden = self.mlp[1:](user_side[:, None] + item_side[None])
        return gmf + hidden @ output[gmf_user.shape[1] :]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        gmf_item, mlp_item = self.item_vectors(items)
        return self.logits(self.gmf_user(users), self.mlp_user(users), gmf_item, mlp_item)


class NeuMF(TorchRecommender):
    """Neural matrix factorisation with sampled negatives, early-stopped on validation NDCG@k."""

    name = "neumf"
    id_axes = {
        "gmf_user.weight": (0, ("users",)),
        "gmf_item.weight": (0, ("items",)),
        "mlp_user.weight": (0, ("users",)),
        "mlp_item.weight": (0, ("items",)),
    }
    search_space = {
        "factors": [16, 32, 64],
        "negatives": [2, 4, 8],
        "lr": [1e-3, 3e-3],
        "weight_decay": [0.0, 1e-6, 1e-5],
    }

    class Settings(TorchSettings):
        factors: Factors = 32
        layers: list[int] = [64, 32, 16]
        """the MLP tower's widths (the first split between the user and item embeddings)"""
        negatives: Negatives = 4
        lr: LearningRate = 1e-3
        weight_decay: WeightDecay = 0.0
        epochs: Epochs = 30
        batch_size: BatchSize = 1024
        patience: Patience = 3
        item_features: bool = False
        """add a projection of the content model's item vectors to the item embeddings"""
        feature_dim: int = Field(32, ge=1)
        """width the item vectors are reduced to before the projection"""

    def _build_module(self) -> nn.Module:
        feature_dim = self.feature_dim if self.item_features else 0
        return _NeuMF(self.n_users_, self.n_items_, self.factors, self.layers, feature_dim)

    def training(self, train: sp.csr_matrix, context: FitContext, log: Logger) -> Training:
        binary = prepare_matrix(train, binarize=True)
        pairs = Pairs.of(binary)
        rng = np.random.default_rng(self.seed)

        def prepare(module: nn.Module) -> None:
            module.trained_users.copy_(torch.from_numpy(np.diff(binary.indptr) > 0))
            if self.item_features:
                module.item_features.copy_(self._item_features(context, log))

        def batches() -> Iterator[Batch]:
            samples = self._epoch_samples(pairs, rng)
            # shuffled once per epoch: each batch is then a slice (a view), not a gather
            order = torch.from_numpy(rng.permutation(len(samples[0]))).to(self.device_)
            users, items, labels = (tensor[order] for tensor in samples)
            for begin in range(0, len(order), self.batch_size):
                end = begin + self.batch_size
                yield users[begin:end], items[begin:end], labels[begin:end]

        def loss(
            module: _NeuMF, users: torch.Tensor, items: torch.Tensor, labels: torch.Tensor
        ) -> torch.Tensor:
            fitted = F.binary_cross_entropy_with_logits(module(users, items), labels)
            return fitted + self._row_decay(module, users, items) if self.weight_decay else fitted

        phase = Phase(batches, loss, weight=lambda users, items, labels: len(users))
        return Training((phase,), lr=self.lr, weight_decay=self.weight_decay, prepare=prepare)

    def _row_decay(self, module: _NeuMF, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``weight_decay``'s L2 penalty on the embedding rows the batch looked up, each row once: Adam's
        coupled decay, applied lazily as the sparse tables are updated (their optimiser takes none)."""
        users, items = users.unique(), items.unique()
        looked_up = (
            module.gmf_user(users),
            module.mlp_user(users),
            module.gmf_item(items),
            module.mlp_item(items),
        )
        squares = sum(rows.pow(2).sum() for rows in looked_up)
        return 0.5 * self.weight_decay * squares

    def _item_features(self, context: FitContext | None, log: Logger) -> torch.Tensor:
        """The content model's item vectors reduced to ``feature_dim`` columns (zero-padded if fewer)."""
        if context is None or context.item_features is None:
            raise ValueError("neumf: item_features=True needs FitContext.item_features")
        vectors = item_feature_matrix(context.item_features, self.n_items_, **Content().get_params(), log=log)
        out = np.zeros((self.n_items_, self.feature_dim), dtype=np.float32)
        dims = min(self.feature_dim, min(vectors.shape) - 1)
        if dims > 0:
            out[:, :dims] = TruncatedSVD(dims, random_state=self.seed).fit_transform(vectors)
        return torch.from_numpy(out).to(self.device_)

    def _epoch_samples(
        self, pairs: Pairs, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every positive pair plus ``negatives`` unobserved items per pair."""
        neg_users = np.repeat(pairs.users, self.negatives)
        neg_items = pairs.negatives(rng, pairs.users, self.negatives).ravel()
        users = np.concatenate([pairs.users, neg_users])
        items = np.concatenate([pairs.items, neg_items])
        labels = np.concatenate([np.ones(len(pairs.users)), np.zeros(len(neg_users))]).astype(np.float32)
        return tuple(torch.from_numpy(a).to(self.device_) for a in (users, items, labels))

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """Logits for every item; users without training interactions are folded in (module docstring)."""
        users = np.asarray(users, dtype=np.int64)
        module = self.module_
        gmf_items, mlp_items = module.item_vectors()
        trained_users = module.trained_users.cpu().numpy()
        trained = users < len(trained_users)
        trained[trained] = trained_users[users[trained]]
        known = torch.from_numpy(np.where(trained, users, 0)).to(self.device_)
        gmf_users, mlp_users = module.gmf_user(known), module.mlp_user(known)
        if not trained.all():
            cold = torch.from_numpy(np.flatnonzero(~trained)).to(self.device_)
            gmf_users[cold], mlp_users[cold] = self._fold_in(history[~trained], gmf_items, mlp_items)
        out = np.empty((len(users), self.n_items_), dtype=np.float32)
        step = max(1, SCORE_BATCH_PAIRS // self.n_items_)
        for begin in range(0, len(users), step):
            end = min(begin + step, len(users))
            logits = module.every_pair(gmf_users[begin:end], mlp_users[begin:end], gmf_items, mlp_items)
            out[begin:end] = logits.float().cpu().numpy()
        return out

    def _fold_in(
        self, rows: sp.csr_matrix, gmf_items: torch.Tensor, mlp_items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(GMF, MLP) user embeddings fitted to ``rows`` (positives vs sampled negatives), all else frozen."""
        positives = prepare_matrix(rows, binarize=True).tocoo()
        generator = torch.Generator(device=self.device_).manual_seed(self.seed)
        users = torch.from_numpy(positives.row.astype(np.int64)).to(self.device_)
        items = torch.from_numpy(positives.col.astype(np.int64)).to(self.device_)
        users = torch.cat([users, users.repeat_interleave(self.negatives)])
        labels = torch.cat([torch.ones(len(items)), torch.zeros(len(users) - len(items))]).to(self.device_)
        gmf = 0.01 * torch.randn(rows.shape[0], gmf_items.shape[1], generator=generator, device=self.device_)
        mlp = 0.01 * torch.randn(rows.shape[0], mlp_items.shape[1], generator=generator, device=self.device_)
        gmf.requires_grad_(True)
        mlp.requires_grad_(True)
        optimiser = torch.optim.Adam([gmf, mlp], lr=FOLD_IN_LR)
        gmf_items, mlp_items = gmf_items.detach(), mlp_items.detach()
        with torch.enable_grad():
            for _ in range(FOLD_IN_STEPS):
                negatives = torch.randint(
                    0, self.n_items_, (len(users) - len(items),), generator=generator, device=self.device_
                )
                batch_items = torch.cat([items, negatives])
                logits = self.module_.logits(
                    gmf[users], mlp[users], gmf_items[batch_items], mlp_items[batch_items]
                )
                loss = F.binary_cross_entropy_with_logits(logits, labels)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
        self.module_.zero_grad(set_to_none=True)  # the frozen towers got gradients too; drop them
        return gmf.detach(), mlp.detach()

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the concatenated GMF and MLP item vectors."""
        gmf, mlp = self.module_.item_vectors()
        vectors = torch.cat([gmf, mlp], dim=1).detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)
