"""RecVAE (Shenbin, Alekseev, Tutubalina, Malykh & Nikolenko 2020, "RecVAE: a New Variational Autoencoder
for Top-N Recommendations with Implicit Feedback").

Mult-VAE's model with the paper's changes: a deeper encoder (dense residual swish layers with layer
normalisation), a composite prior (a mixture of the standard normal, the posterior of the encoder as it was
before this epoch's encoder updates, and a wide normal), a KL weight rescaled per user by the number of
items in their row (``beta = gamma * |x_u|``), and alternating updates: ``encoder_steps`` passes over the
users for the encoder (denoising dropout on the input), then one for the decoder (no dropout). Scoring
encodes any history row, so new users are served.
"""

from __future__ import annotations

import math

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
    dropped_out,
    item_major,
    linear,
    multinomial_log_likelihood,
    nonempty_rows,
    normalized,
    on_rows,
    row_sums,
    score_rows,
)
from recpipeline.models.settings import (
    BatchSize,
    Binarize,
    Dropout,
    Epochs,
    Hidden,
    Latent,
    LearningRate,
    Patience,
    TorchSettings,
)
from recpipeline.models.similarity import cosine_neighbours

#: the composite prior's mixture weights (standard normal, old posterior, wide normal) and the wide
#: component's log-variance, as in the authors' code
PRIOR_WEIGHTS, WIDE_LOGVAR = (3 / 20, 3 / 4, 1 / 10), 10.0
ENCODER_LAYERS = 5


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log density of N(mu, exp(logvar)) at z."""
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mu).pow(2) / logvar.exp())


class _Encoder(nn.Module):
    """L2-normalised input, dropout, then five dense residual swish layers with layer norm; the first reads
    sparse rows from their non-zeros (its weight stored item-major: ``item_major``)."""

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Linear(n_items if i == 0 else hidden, hidden) for i in range(ENCODER_LAYERS)
        )
        item_major(self.layers[0])
        self.norms = nn.ModuleList(nn.LayerNorm(hidden, eps=0.1) for _ in range(ENCODER_LAYERS))
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x: Rows, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.norms[0](F.silu(linear(self.layers[0], dropped_out(normalized(x), dropout))))
        outputs = [h]
        for layer, norm in zip(self.layers[1:], self.norms[1:], strict=True):
            # each layer sees the sum of every earlier layer's output (the paper's dense connections)
            h = norm(F.silu(layer(h) + sum(outputs)))
            outputs.append(h)
        return self.mu(h), self.logvar(h)


class _RecVAE(nn.Module):
    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.encoder = _Encoder(n_items, hidden, latent)
        self.old_encoder = _Encoder(n_items, hidden, latent)  # the prior's posterior: a frozen copy
        self.old_encoder.requires_grad_(False)
        self.decoder = nn.Linear(latent, n_items)

    def forward(self, x: Rows) -> torch.Tensor:
        """Deterministic logits (latent mean, no dropout): the scoring path."""
        return self.decoder(self.encoder(x, 0.0)[0])

    def refresh_prior(self) -> None:
        """The prior's posterior becomes the encoder as it is now (at the start of every epoch)."""
        self.old_encoder.load_state_dict(self.encoder.state_dict())  # copies in place

    def log_prior(self, x: Rows, z: torch.Tensor) -> torch.Tensor:
        """Elementwise log density of the composite prior at z for the users of x."""
        old_mu, old_logvar = self.old_encoder(x, 0.0)
        zeros = torch.zeros_like(z)
        parts = [
            _log_normal(z, zeros, zeros),
            _log_normal(z, old_mu, old_logvar),
            _log_normal(z, zeros, zeros + WIDE_LOGVAR),
        ]
        weighted = [part + math.log(weight) for part, weight in zip(parts, PRIOR_WEIGHTS, strict=True)]
        return torch.logsumexp(torch.stack(weighted, dim=-1), dim=-1)


class RecVAE(TorchRecommender):
    """RecVAE, early-stopped on validation NDCG@k; one epoch is ``encoder_steps`` encoder passes over the
    users followed by one decoder pass."""

    name = "recvae"
    # the encoder L2-normalises the row inside, so the score is scale-invariant in it and gradient × input
    # sums to zero: the score drop on removal instead
    explains = "leave-one-out"
    id_axes = {
        "encoder.layers.0.weight": (1, ("items",)),
        "old_encoder.layers.0.weight": (1, ("items",)),
        "decoder.weight": (0, ("items",)),
        "decoder.bias": (0, ("items",)),
    }
    search_space = {
        "hidden": [300, 600],
        "latent": [100, 200],
        "gamma": [0.005, 0.01, 0.02],
        "dropout": [0.5, 0.7],
    }

    class Settings(TorchSettings):
        hidden: Hidden = 600
        latent: Latent = 200
        gamma: float = Field(0.01, ge=0)
        """the composite prior's KL weight per unit of the user's interaction count"""
        dropout: Dropout = 0.5
        lr: LearningRate = 5e-4
        encoder_steps: int = Field(3, ge=1)
        """encoder passes over the users per decoder pass"""
        epochs: Epochs = 100
        batch_size: BatchSize = 100
        patience: Patience = 20
        binarize: Binarize = True

    def _build_module(self) -> nn.Module:
        return _RecVAE(self.n_items_, self.hidden, self.latent)

    def training(self, train: sp.csr_matrix, context: FitContext, log: Logger) -> Training:
        """Each epoch: the prior refreshed, ``encoder_steps`` encoder passes (input dropout, the decoder
        frozen), then one decoder pass (no dropout, the encoder frozen)."""
        rows = TrainingRows(nonempty_rows(train, self.binarize), self.device_)
        batches = rows.shuffled(np.random.default_rng(self.seed), self.batch_size)
        encoder = Phase(
            batches,
            on_rows(lambda module, x: self._loss(module, x, self.dropout)),
            part="encoder",
            frozen="decoder",
            passes=self.encoder_steps,
            name="encoder",
        )
        decoder = Phase(
            batches,
            on_rows(lambda module, x: self._loss(module, x, 0.0)),
            part="decoder",
            frozen="encoder",
            name="decoder",
        )
        return Training((encoder, decoder), lr=self.lr, epoch_start=_RecVAE.refresh_prior)

    def _loss(self, module: _RecVAE, x: Rows, dropout: float) -> torch.Tensor:
        """Negative ELBO with the composite prior; the KL term of each user weighted by gamma x |x_u|."""
        mu, logvar = module.encoder(x, dropout)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        neg_ll = -multinomial_log_likelihood(module.decoder(z), x).mean()
        kl = (_log_normal(z, mu, logvar) - module.log_prior(x, z)).sum(dim=1)
        return neg_ll + (kl * self.gamma * row_sums(x)).mean()

    # -- inference --------------------------------------------------------------------------------------

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """Decoder logits for the encoded history rows (latent mean, no sampling)."""
        return score_rows(prepare_matrix(history, self.binarize), self.device_, self.module_)

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the decoder's item vectors (rows of its weight matrix)."""
        vectors = self.module_.decoder.weight.detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)
