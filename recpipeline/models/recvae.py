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
from torch import nn

from recpipeline.models.base import Logger, no_log, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.neural import (
    TorchRecommender,
    TrainingRows,
    frozen,
    nonempty_rows,
    resolve_device,
    score_rows,
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
    """L2-normalised input, dropout, then five dense residual swish layers with layer norm."""

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Linear(n_items if i == 0 else hidden, hidden) for i in range(ENCODER_LAYERS)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden, eps=0.1) for _ in range(ENCODER_LAYERS))
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.dropout(F.normalize(x, dim=1), p=dropout, training=dropout > 0)
        outputs: list[torch.Tensor] = []
        for layer, norm in zip(self.layers, self.norms, strict=True):
            # each layer sees the sum of every earlier layer's output (the paper's dense connections)
            h = norm(F.silu(layer(h) + sum(outputs)) if outputs else F.silu(layer(h)))
            outputs.append(h)
        return self.mu(h), self.logvar(h)


class _RecVAE(nn.Module):
    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.encoder = _Encoder(n_items, hidden, latent)
        self.old_encoder = _Encoder(n_items, hidden, latent)  # the prior's posterior: a frozen copy
        self.old_encoder.requires_grad_(False)
        self.decoder = nn.Linear(latent, n_items)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic logits (latent mean, no dropout): the scoring path."""
        return self.decoder(self.encoder(x, 0.0)[0])

    def refresh_prior(self) -> None:
        """The prior's posterior becomes the encoder as it is now (at the start of every epoch)."""
        self.old_encoder.load_state_dict(self.encoder.state_dict())  # copies in place

    def log_prior(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
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

    def __init__(
        self,
        hidden: int = 600,
        latent: int = 200,
        gamma: float = 0.01,
        dropout: float = 0.5,
        lr: float = 5e-4,
        encoder_steps: int = 3,
        epochs: int = 100,
        batch_size: int = 100,
        patience: int = 20,
        k: int = 10,
        binarize: bool = True,
        seed: int = 42,
        device: str = "auto",
        num_threads: int = 0,
    ) -> None:
        super().__init__(
            hidden=hidden,
            latent=latent,
            gamma=gamma,
            dropout=dropout,
            lr=lr,
            encoder_steps=encoder_steps,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            k=k,
            binarize=binarize,
            seed=seed,
            device=device,
            num_threads=num_threads,
        )

    def _build_module(self) -> nn.Module:
        return _RecVAE(self.n_items_, self.hidden, self.latent)

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        *,
        context: FitContext | None = None,
        log: Logger = no_log,
    ) -> RecVAE:
        self._start_fit(train, context)
        self.device_ = resolve_device(self.device)
        order_rng = np.random.default_rng(self.seed)
        rows = TrainingRows(nonempty_rows(train, self.binarize), self.device_)
        steps = max(-(-len(rows) // self.batch_size), 1)

        def run_pass(optimiser: torch.optim.Optimizer, dropout: float) -> torch.Tensor:
            total = torch.zeros((), device=self.device_)
            for x in rows.batches(order_rng.permutation(len(rows)), self.batch_size):
                loss = self._loss(module, x, dropout)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.detach()  # summed on the device: no sync per batch
            return total / steps

        def run_epoch(epoch: int) -> str:
            module.refresh_prior()
            with frozen(module.decoder):
                for _ in range(self.encoder_steps):
                    encoder_loss = run_pass(encoder_optimiser, self.dropout)
            with frozen(module.encoder):
                decoder_loss = run_pass(decoder_optimiser, 0.0)
            return f"loss encoder {float(encoder_loss):.4f} decoder {float(decoder_loss):.4f}"

        with self._seeded():
            module = self.module_ = self._initial_module(context)
            encoder_optimiser = torch.optim.Adam(module.encoder.parameters(), lr=self.lr)
            decoder_optimiser = torch.optim.Adam(module.decoder.parameters(), lr=self.lr)
            self._train_epochs(run_epoch, self._validator(train, validation), log)
        return self

    def _loss(self, module: _RecVAE, x: torch.Tensor, dropout: float) -> torch.Tensor:
        """Negative ELBO with the composite prior; the KL term of each user weighted by gamma x |x_u|."""
        mu, logvar = module.encoder(x, dropout)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        neg_ll = -(F.log_softmax(module.decoder(z), dim=1) * x).sum(dim=1).mean()
        kl = (_log_normal(z, mu, logvar) - module.log_prior(x, z)).sum(dim=1)
        return neg_ll + (kl * self.gamma * x.sum(dim=1)).mean()

    # -- inference --------------------------------------------------------------------------------------

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """Decoder logits for the encoded history rows (latent mean, no sampling)."""
        return score_rows(prepare_matrix(history, self.binarize), self.device_, self.module_)

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the decoder's item vectors (rows of its weight matrix)."""
        vectors = self.module_.decoder.weight.detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)
