"""RecVAE: the contract, the composite prior, the per-user KL weight, recovery of planted blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recpipeline.models import create_model
from recpipeline.models.recvae import PRIOR_WEIGHTS, RecVAE, _RecVAE
from recpipeline_tests.models.conftest import N_USERS, block_of_item, planted_blocks, recall_at
from recpipeline_tests.models.contract import ModelContract

#: the first user of every group, left out of training and folded in from the history row
UNSEEN = np.arange(0, N_USERS, 20)
PARAMS = {
    "hidden": 32,
    "latent": 8,
    "epochs": 8,
    "batch_size": 30,
    "lr": 2e-2,
    "encoder_steps": 2,
    "device": "cpu",
}


class TestRecVAEContract(ModelContract):
    name = "recvae"
    params = {"hidden": 16, "latent": 4, "epochs": 2, "batch_size": 32, "device": "cpu"}


def test_composite_prior_is_the_weighted_mixture() -> None:
    torch.manual_seed(0)
    module = _RecVAE(n_items=6, hidden=8, latent=3)
    x, z = torch.rand(2, 6), torch.randn(2, 3)
    old_mu, old_logvar = module.old_encoder(x, 0.0)

    def density(mu: torch.Tensor | float, var: torch.Tensor | float) -> torch.Tensor:
        return torch.exp(-((z - mu) ** 2) / (2 * var)) / torch.sqrt(2 * math.pi * torch.as_tensor(var))

    mixture = (
        PRIOR_WEIGHTS[0] * density(0.0, 1.0)
        + PRIOR_WEIGHTS[1] * density(old_mu, old_logvar.exp())
        + PRIOR_WEIGHTS[2] * density(0.0, math.exp(10.0))
    )
    torch.testing.assert_close(module.log_prior(x, z), torch.log(mixture), rtol=1e-5, atol=1e-5)


def test_kl_weight_is_gamma_times_the_item_count() -> None:
    """The KL term enters as gamma x |x_u| x KL: linear in gamma, and in the row's item count."""
    model = RecVAE(hidden=8, latent=3)
    model.n_items_ = 6
    torch.manual_seed(0)
    module = model._build_module()
    x = torch.tensor([[1.0, 1, 1, 0, 0, 0]])

    def loss(row: torch.Tensor, gamma: float) -> float:
        model.gamma = gamma
        torch.manual_seed(1)  # the same noise draw each time
        return float(model._loss(module, row, dropout=0.0).detach())

    losses = [loss(x, gamma) for gamma in (0.0, 1.0, 2.0)]
    assert losses[0] < losses[1] < losses[2]
    assert math.isclose(losses[2] - losses[1], losses[1] - losses[0], rel_tol=1e-4)
    # twice the weights: the encoder sees the same normalised row, the KL weight doubles
    kl = losses[1] - losses[0]
    assert math.isclose(loss(2 * x, 1.0) - loss(2 * x, 0.0), 2 * kl, rel_tol=1e-4)


@pytest.fixture(scope="module")
def fitted() -> tuple[RecVAE, sp.csr_matrix, sp.csr_matrix]:
    """Fitted on the planted blocks with the first user of every group left out (``UNSEEN``)."""
    train, held = planted_blocks()
    keep = np.ones(N_USERS, dtype=np.float32)
    keep[UNSEEN] = 0
    return create_model("recvae", PARAMS).fit(sp.diags(keep) @ train, held), train, held


def test_recvae_recovers_blocks(fitted) -> None:
    model, train, held = fitted
    assert recall_at(model, train, held, k=5) >= 0.8
    assert 1 <= model.best_epoch_ <= PARAMS["epochs"]
    neighbours, _ = model.similar_items(np.array([0, 15, 25]), 3)
    assert (block_of_item(neighbours) == np.array([[0], [1], [2]])).mean() >= 0.8


def test_recvae_scores_a_history_row_it_never_trained_on(fitted) -> None:
    model, train, _ = fitted
    items, _ = model.recommend(UNSEEN, train, 2)
    assert (block_of_item(items) == block_of_item(train[UNSEEN].indices[::6])[:, None]).all()
