"""CFGAN (Chae, Kang, Kim & Lee 2018, "CFGAN: A Generic Collaborative Filtering Framework based on
Generative Adversarial Networks"): vector-wise adversarial collaborative filtering.

The generator maps a user's history vector ``c_u`` (the condition) to a purchase vector ``r_hat_u`` over all
items (sigmoid outputs); the discriminator tells real purchase vectors from generated ones, both given
``c_u``. Fed as is, the generator would win by outputting all ones (the real vector is 1 on every purchased
item and the discriminator only sees the purchased positions), so the paper adds two negative-sampling
schemes, resampled for every user and step:

- ZR (zero reconstruction): a ``zr_ratio`` share of the user's unobserved items is pushed to 0 by a
  squared-error term weighted ``zr_weight`` in the generator's loss;
- PM (partial masking): the generator's output is shown to the discriminator on the purchased items plus a
  ``pm_ratio`` share of unobserved ones, so it learns to expect zeros there.

The paper's best variant uses both (CFGAN_ZP) on the purchase vector itself (real = condition, its
"i"-variant). Scores are the generator's output for any history row (fold-in).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from recpipeline.models.base import Logger, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.loop import Phase, Training
from recpipeline.models.neural import (
    Rows,
    TorchRecommender,
    TrainingRows,
    item_major,
    linear,
    nonempty_rows,
    on_rows,
    score_rows,
    times,
)
from recpipeline.models.settings import BatchSize, Epochs, LearningRate, Patience, TorchSettings, WeightDecay
from recpipeline.models.similarity import cosine_neighbours


def _tower(width_in: int, hidden: list[int], width_out: int) -> nn.Sequential:
    """Sigmoid hidden layers (the paper's activation) and a linear output of ``width_out`` logits."""
    widths = [width_in, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], width_out))


class _CFGAN(nn.Module):
    """The generator and the discriminator; the first layers read sparse rows from their non-zeros (weights
    stored item-major: ``item_major``): the generator's input, and the discriminator's condition and real
    purchase vectors. A generated vector is dense (it is masked with PM's draws, most unobserved items), so
    the discriminator's purchase half multiplies it whole."""

    def __init__(self, n_items: int, generator: list[int], discriminator: list[int]) -> None:
        super().__init__()
        self.n_items = n_items
        self.generator = _tower(n_items, generator, n_items)
        self.discriminator = _tower(2 * n_items, discriminator, 1)
        item_major(self.generator[0])
        item_major(self.discriminator[0])

    def generate(self, condition: Rows) -> torch.Tensor:
        """The generator's logits for history rows ``condition``."""
        return self.generator[1:](linear(self.generator[0], condition))

    def forward(self, condition: Rows) -> torch.Tensor:
        """The generated purchase vector (probabilities) for history rows ``condition``."""
        return torch.sigmoid(self.generate(condition))

    def judge(self, purchases: Rows, condition: Rows) -> torch.Tensor:
        """The discriminator's logit that ``purchases`` is a real purchase vector of user ``condition``."""
        first, n = self.discriminator[0], self.n_items
        # the input is [purchases, condition]: the table's first n rows read the purchases
        table = first.weight.t()
        h = times(purchases, table[:n]) + times(condition, table[n:]) + first.bias
        return self.discriminator[1:](h).squeeze(1)


class CFGAN(TorchRecommender):
    """CFGAN with ZR and PM negative sampling, early-stopped on validation NDCG@k (module docstring)."""

    name = "cfgan"
    explains = "gradient×input"
    # the discriminator reads a purchase vector beside a generated one
    id_axes = {
        "generator.0.weight": (1, ("items",)),
        "generator.2.weight": (0, ("items",)),
        "generator.2.bias": (0, ("items",)),
        "discriminator.0.weight": (1, ("items", "items")),
    }
    search_space = {
        "zr_ratio": [0.3, 0.7],
        "pm_ratio": [0.3, 0.7],
        "zr_weight": [0.03, 0.1],
        "generator": [[400], [400, 400]],
    }
    #: purchase vectors are 0/1 (the paper's setting; not a hyperparameter here)
    binarize = True

    class Settings(TorchSettings):
        generator: list[int] = [400]
        """the generator's hidden layer widths"""
        discriminator: list[int] = [125]
        """the discriminator's hidden layer widths"""
        zr_ratio: float = Field(0.7, ge=0, le=1)
        """share of a user's unseen items drawn for the zero-reconstruction penalty"""
        pm_ratio: float = Field(0.7, ge=0, le=1)
        """share of a user's unseen items drawn for partial masking"""
        zr_weight: float = Field(0.1, ge=0)
        """weight of the zero-reconstruction penalty"""
        lr: LearningRate = 1e-3
        weight_decay: WeightDecay = 0.0
        generator_steps: int = Field(1, ge=1)
        """generator updates per batch"""
        discriminator_steps: int = Field(1, ge=1)
        """discriminator updates per batch"""
        epochs: Epochs = 400
        batch_size: BatchSize = 64
        patience: Patience = 20

    def _build_module(self) -> nn.Module:
        return _CFGAN(self.n_items_, self.generator, self.discriminator)

    def training(self, train: sp.csr_matrix, context: FitContext, log: Logger) -> Training:
        """Each epoch: ``discriminator_steps`` discriminator passes (the fakes generated without gradients),
        then ``generator_steps`` generator passes (the discriminator frozen)."""
        rows = TrainingRows(nonempty_rows(train, self.binarize), self.device_)
        batches = rows.shuffled(np.random.default_rng(self.seed), self.batch_size)
        discriminator = Phase(
            batches,
            on_rows(self._discriminator_loss),
            part="discriminator",
            passes=self.discriminator_steps,
            name="discriminator",
        )
        generator = Phase(
            batches,
            on_rows(self._generator_loss),
            part="generator",
            frozen="discriminator",
            passes=self.generator_steps,
            name="generator",
        )
        return Training((discriminator, generator), lr=self.lr, weight_decay=self.weight_decay)

    @staticmethod
    def _sample(x: Rows, ratio: float, n_items: int, observed: float = 0.0) -> torch.Tensor:
        """A 0/1 mask (rows x ``n_items``) of about ``ratio`` of each row's unobserved items, drawn uniformly,
        with ``observed`` at the observed items (1: the purchases shown beside the drawn items). The draws
        are the same for the dense and the sparse form of ``x``; the mask is dense either way (most items)."""
        if isinstance(x, torch.Tensor):
            return ((torch.rand_like(x) < ratio) & (x == 0)).float() + observed * (x != 0)
        mask = (torch.rand((x.n_rows, n_items), device=x.values.device) < ratio).float()
        mask[x.owners, x.items] = observed
        return mask

    def _shown(self, module: _CFGAN, x: Rows) -> torch.Tensor:
        """PM's mask: the purchased items (x is 0/1) and a ``pm_ratio`` share of the unobserved ones."""
        return self._sample(x, self.pm_ratio, module.n_items, observed=1.0)

    def _discriminator_loss(self, module: _CFGAN, x: Rows) -> torch.Tensor:
        """Real purchase vectors labelled 1, generated ones (shown on purchases + PM items) labelled 0."""
        with torch.no_grad():
            fake = module(x) * self._shown(module, x)
        real_logit, fake_logit = module.judge(x, x), module.judge(fake, x)
        return F.binary_cross_entropy_with_logits(
            real_logit, torch.ones_like(real_logit)
        ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))

    def _generator_loss(self, module: _CFGAN, x: Rows) -> torch.Tensor:
        """Fool the discriminator (non-saturating form) + ``zr_weight`` x squared outputs on the ZR items."""
        generated = module(x)
        fake_logit = module.judge(generated * self._shown(module, x), x)
        adversarial = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        zr = self._sample(x, self.zr_ratio, module.n_items)
        zero_reconstruction = (generated.pow(2) * zr).sum(dim=1).mean()
        return adversarial + self.zr_weight * zero_reconstruction

    # -- inference --------------------------------------------------------------------------------------

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """The generator's logits for the history rows (same order as its purchase probabilities)."""
        return score_rows(prepare_matrix(history, self.binarize), self.device_, self.module_.generate)

    def _dense_scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.module_.generate(x)

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the generator's output-layer item vectors (rows of its last weight matrix)."""
        vectors = self.module_.generator[-1].weight.detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)
