"""CFGAN: the contract, the ZR / PM negative sampling, recovery of planted blocks, fold-in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recpipeline.models import create_model
from recpipeline.models.cfgan import CFGAN
from recpipeline_tests.models.conftest import N_USERS, block_of_item, planted_blocks, recall_at
from recpipeline_tests.models.contract import ModelContract

#: the first user of every group, left out of training and folded in from the history row
UNSEEN = np.arange(0, N_USERS, 20)
PARAMS = {
    "generator": [64],
    "discriminator": [16],
    "lr": 3e-3,
    "zr_weight": 1.0,
    "epochs": 100,
    "patience": 100,
    "batch_size": 16,
    "device": "cpu",
}


class TestCFGANContract(ModelContract):
    name = "cfgan"
    params = {"generator": [16], "discriminator": [8], "epochs": 2, "batch_size": 32, "device": "cpu"}


def test_negative_samples_are_unobserved_items_in_the_given_share() -> None:
    torch.manual_seed(0)
    x = (torch.rand(200, 500) < 0.2).float()
    for ratio in (0.0, 0.3, 0.7):
        mask = CFGAN._sample(x, ratio, 500)
        assert not (mask * x).any()  # never a purchased item
        assert abs(float(mask.sum() / (x == 0).sum()) - ratio) < 0.01


def test_zero_reconstruction_pushes_sampled_outputs_down() -> None:
    """With only the ZR term the generator's outputs on unobserved items fall towards 0."""
    model = CFGAN(generator=[8], discriminator=[4], zr_ratio=1.0, pm_ratio=0.0, zr_weight=1.0)
    model.n_items_ = 12
    torch.manual_seed(0)
    module = model._build_module()
    x = torch.zeros(4, 12)
    x[:, :3] = 1
    optimiser = torch.optim.Adam(module.generator.parameters(), lr=0.05)
    before = float(module(x)[:, 3:].mean().detach())
    for _ in range(50):
        loss = model._generator_loss(module, x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert before > 0.3 and float(module(x)[:, 3:].mean().detach()) < 0.05


@pytest.fixture(scope="module")
def fitted() -> tuple[CFGAN, sp.csr_matrix, sp.csr_matrix]:
    """Fitted on the planted blocks with the first user of every group left out (``UNSEEN``)."""
    train, held = planted_blocks()
    keep = np.ones(N_USERS, dtype=np.float32)
    keep[UNSEEN] = 0
    return create_model("cfgan", PARAMS).fit(sp.diags(keep) @ train, held), train, held


def test_cfgan_recovers_blocks(fitted) -> None:
    model, train, held = fitted
    assert recall_at(model, train, held, k=5) >= 0.8
    assert 1 <= model.best_epoch_ <= PARAMS["epochs"]


def test_cfgan_scores_a_history_row_it_never_trained_on(fitted) -> None:
    model, train, _ = fitted
    items, _ = model.recommend(UNSEEN, train, 2)
    assert (block_of_item(items) == block_of_item(train[UNSEEN].indices[::6])[:, None]).all()
