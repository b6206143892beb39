"""Mult-VAE (Liang, Krishnan, Hoffman & Jebara 2018, "Variational Autoencoders for Collaborative Filtering").

The neural contender: an encoder maps a user's (L2-normalised, dropped-out) item row to a Gaussian latent,
the decoder maps the latent to a softmax over all items, trained on the multinomial log-likelihood with a
KL term annealed from 0 up to ``beta_max``. Scoring folds in any history row, so new users are served.
"""

from __future__ import annotations

import copy
from typing import Any

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
    WeightDecay,
)
from recpipeline.models.similarity import cosine_neighbours


class _VAE(nn.Module):
    """[n_items -> hidden -> 2*latent] tanh encoder, [latent -> hidden -> n_items] decoder; the encoder's
    first layer reads sparse rows from their non-zeros (its weight stored item-major: ``item_major``)."""

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(nn.Linear(n_items, hidden), nn.Tanh(), nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, n_items))
        # the paper's initialisation: Glorot weights, tiny Gaussian biases
        for layer in (*self.encoder, *self.decoder):
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.normal_(layer.bias, std=0.001)
        item_major(self.encoder[0])

    def encode(self, x: Rows) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder[1:](linear(self.encoder[0], x))
        return h[:, : self.latent], h[:, self.latent :]

    def forward(self, x: Rows) -> torch.Tensor:
        """Deterministic logits (latent mean, no sampling): the scoring path."""
        mu, _ = self.encode(x)
        return self.decoder(mu)


class MultVAE(TorchRecommender):
    """Variational autoencoder with multinomial likelihood over items; early-stopped on validation NDCG@k.

    The KL weight rises by ``1 / total_anneal_steps`` per mini-batch step, capped at ``beta_max`` (the
    paper's schedule). ``total_anneal_steps=None`` derives it from the data: steps per epoch x epochs, so
    beta reaches the cap after ``beta_max x epochs`` epochs on any data size (a fixed 20,000 steps would
    barely anneal a small data set).

    ``weight_averaging`` (Polyak averaging): validation, early stopping, scoring and the saved weights use an
    exponential moving average of the trained weights, updated after every step with this decay (warmed up
    as ``min(decay, (1 + step) / (10 + step))``); 0 turns it off. On small data the raw weights move a lot
    from one epoch to the next (a mini-batch is a large share of the users), which makes both the
    early-stopping epoch and the final weights a noisy draw; the average is much steadier.
    """

    name = "mult_vae"
    explains = "gradient×input"
    id_axes = {
        "encoder.0.weight": (1, ("items",)),
        "decoder.2.weight": (0, ("items",)),
        "decoder.2.bias": (0, ("items",)),
    }
    search_space = {
        "hidden": [600, 1000],
        "latent": [50, 100, 200],  # small data sets prefer a narrow latent space
        "dropout": [0.5, 0.7],
        "beta_max": [0.2, 0.5],
    }

    class Settings(TorchSettings):
        hidden: Hidden = 600
        latent: Latent = 200
        dropout: Dropout = 0.5
        lr: LearningRate = 1e-3
        weight_decay: WeightDecay = 0.0
        epochs: Epochs = 200
        batch_size: BatchSize = 100
        beta_max: float = Field(0.2, ge=0)
        """the cap of the KL weight"""
        total_anneal_steps: int | None = Field(None, ge=1)
        """steps over which the KL weight rises by 1 (null: steps per epoch x epochs)"""
        patience: Patience = 20
        weight_averaging: float = Field(0.99, ge=0, lt=1)
        """decay of the weights' moving average used for validation, scoring and saving (0: off)"""
        binarize: Binarize = True

    def _build_module(self) -> nn.Module:
        return _VAE(self.n_items_, self.hidden, self.latent)

    def training(self, train: sp.csr_matrix, context: FitContext, log: Logger) -> Training:
        order_rng = np.random.default_rng(self.seed)
        rows = TrainingRows(nonempty_rows(train, self.binarize), self.device_)
        anneal_steps = self.total_anneal_steps
        if anneal_steps is None:
            anneal_steps = -(-len(rows) // self.batch_size) * self.epochs
        step, beta = 0, 0.0
        averaged: list[nn.Parameter] = []
        trained: list[nn.Parameter] = []

        def prepare(network: nn.Module) -> None:
            nonlocal step
            self.anneal_steps_ = anneal_steps
            if self.warm_started_:  # the weights it continues were annealed already: full KL weight
                step = max(anneal_steps, 0)
            if self.weight_averaging > 0:
                # validation, early stopping and scoring use the running average
                self.module_ = copy.deepcopy(network)
                averaged[:], trained[:] = self.module_.parameters(), network.parameters()

        def loss(network: _VAE, x: Rows) -> torch.Tensor:
            nonlocal beta
            beta = self.beta_max if anneal_steps <= 0 else min(self.beta_max, step / anneal_steps)
            return self._loss(network, x, beta)

        def after_step() -> None:
            nonlocal step
            if averaged:
                # warm-up: a short run is not dominated by the initial weights
                decay = min(self.weight_averaging, (1 + step) / (10 + step))
                with torch.no_grad():
                    torch._foreach_lerp_(averaged, trained, 1.0 - decay)
            step += 1

        phase = Phase(rows.shuffled(order_rng, self.batch_size), on_rows(loss), after_step=after_step)
        return Training(
            (phase,),
            lr=self.lr,
            weight_decay=self.weight_decay,
            prepare=prepare,
            note=lambda: f"beta {beta:.3f}",
        )

    def refit_params(self) -> dict[str, Any]:
        """The chosen epochs with the beta schedule they were chosen under (derived from the planned epochs,
        it would otherwise anneal faster in the shorter refit)."""
        return {**super().refit_params(), "total_anneal_steps": self.anneal_steps_}

    def _loss(self, network: _VAE, x: Rows, beta: float) -> torch.Tensor:
        """Negative ELBO, KL annealed: -multinomial log-likelihood of ``x`` + beta * KL(q(z|x) || N(0, I))."""
        mu, logvar = network.encode(dropped_out(normalized(x), self.dropout))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        neg_ll = -multinomial_log_likelihood(network.decoder(z), x).mean()
        kl = 0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0).sum(dim=1).mean()
        return neg_ll + beta * kl

    # -- inference --------------------------------------------------------------------------------------

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """Decoder logits for the encoded history rows (latent mean, no sampling)."""
        rows = prepare_matrix(history, self.binarize)
        return score_rows(rows, self.device_, lambda x: self.module_(normalized(x)))

    def _attributed_input(self, x: torch.Tensor) -> torch.Tensor:
        # the L2-normalised row: the score is scale-invariant in the raw row, whose gradient × input
        # therefore always sums to zero (a one-item history would get no reason)
        return F.normalize(x, dim=1)

    def _dense_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.module_(inputs)

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the decoder's output-layer item vectors (rows of its last weight matrix)."""
        vectors = self.module_.decoder[-1].weight.detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)
