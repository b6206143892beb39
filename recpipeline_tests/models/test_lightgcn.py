"""LightGCN: the contract, the normalised graph, recovery of planted blocks, fold-in of unseen users."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recpipeline.models import create_model
from recpipeline.models.lightgcn import LightGCN, _LightGCN, normalised_adjacency
from recpipeline.models.neural import SparseRows
from recpipeline_tests.models.conftest import N_ITEMS, N_USERS, block_of_item, planted_blocks, recall_at
from recpipeline_tests.models.contract import ModelContract

#: the first user of every group, left out of training and folded in from the history row
UNSEEN = np.arange(0, N_USERS, 20)
PARAMS = {"factors": 16, "epochs": 30, "batch_size": 64, "lr": 1e-2, "device": "cpu", "num_threads": 1}


class TestLightGCNContract(ModelContract):
    name = "lightgcn"
    params = {"factors": 4, "layers": 2, "epochs": 2, "batch_size": 64, "device": "cpu"}


def test_normalised_adjacency_is_symmetric_with_degree_scaling() -> None:
    binary = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    adjacency = normalised_adjacency(binary).toarray()
    assert adjacency.shape == (5, 5)
    np.testing.assert_allclose(adjacency, adjacency.T)
    # user 0 (degree 2) - item 1 (degree 2): 1 / sqrt(2 * 2); user 1 (1) - item 1 (2): 1 / sqrt(2)
    np.testing.assert_allclose([adjacency[0, 3], adjacency[1, 3]], [0.5, 1 / np.sqrt(2)], rtol=1e-6)
    assert adjacency[:2, :2].sum() == adjacency[2:, 2:].sum() == 0  # bipartite: no user-user, item-item
    assert adjacency[:, 4].sum() == 0  # an item nobody touched stays isolated


@pytest.fixture(scope="module")
def fitted() -> tuple[LightGCN, sp.csr_matrix, sp.csr_matrix]:
    """Fitted on the planted blocks with the first user of every group left out (``UNSEEN``)."""
    train, held = planted_blocks()
    keep = np.ones(N_USERS, dtype=np.float32)
    keep[UNSEEN] = 0
    return create_model("lightgcn", PARAMS).fit(sp.diags(keep) @ train, held), train, held


def test_lightgcn_recovers_blocks(fitted) -> None:
    model, train, held = fitted
    assert recall_at(model, train, held, k=5) >= 0.8
    assert 1 <= model.best_epoch_ <= PARAMS["epochs"]
    # item neighbours come from the own block
    neighbours, _ = model.similar_items(np.array([0, 15, 25]), 3)
    assert (block_of_item(neighbours) == np.array([[0], [1], [2]])).all()


def test_lightgcn_folds_in_users_unseen_in_training(fitted) -> None:
    model, train, _ = fitted
    assert not model.module_.trained_users[UNSEEN].any() and model.module_.trained_users.sum() == N_USERS - 3
    items, _ = model.recommend(UNSEEN, train, 2)
    assert (block_of_item(items) == block_of_item(train[UNSEEN].indices[::6])[:, None]).all()
    # a user without any history scores every item 0 rather than NaN
    assert np.all(model.score(np.array([N_USERS + 1]), sp.csr_matrix((1, N_ITEMS))) == 0)


def test_propagation_and_its_gradient_equal_the_dense_product() -> None:
    rng = np.random.default_rng(0)
    binary = sp.csr_matrix((rng.random((30, 20)) < 0.2).astype(np.float32))
    adjacency = normalised_adjacency(binary)
    graph = SparseRows.of(adjacency, torch.device("cpu"))
    dense = torch.from_numpy(adjacency.toarray().astype(np.float32))
    module = _LightGCN(30, 20, factors=4, layers=3)
    weights = torch.randn(50, 4)
    layers = module.propagate(graph)
    reference = [module.embedding.weight]
    for _ in range(3):
        reference.append(dense @ reference[-1])
    for got, want in zip(layers, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    (gradient,) = torch.autograd.grad(
        (torch.stack(layers).mean(dim=0) * weights).sum(), module.embedding.weight
    )
    (expected,) = torch.autograd.grad(
        (torch.stack(reference).mean(dim=0) * weights).sum(), module.embedding.weight
    )
    torch.testing.assert_close(gradient, expected, rtol=1e-5, atol=1e-6)


def test_the_loss_is_bpr_on_the_layer_means_plus_the_batchs_l2() -> None:
    """The loss gathers the batch's final vectors from the layers' sum; the textbook form stacks every
    layer of every node and averages."""
    rng = np.random.default_rng(1)
    binary = sp.csr_matrix((rng.random((30, 20)) < 0.2).astype(np.float32))
    graph = SparseRows.of(normalised_adjacency(binary), torch.device("cpu"))
    model = LightGCN(weight_decay=0.01)
    module = _LightGCN(30, 20, factors=4, layers=3)
    users, positive = torch.tensor([0, 3, 3, 7]), torch.tensor([1, 5, 2, 19])
    negative = torch.tensor([[4, 8], [0, 9], [11, 12], [2, 2]])
    final = torch.stack(module.propagate(graph)).mean(dim=0)
    u, i, j = final[users], final[positive + 30], final[negative + 30]
    bpr = torch.nn.functional.softplus((u[:, None] * j).sum(dim=2) - (u * i).sum(dim=1, keepdim=True)).mean()
    ego = module.embedding.weight
    l2 = sum(ego[nodes].pow(2).sum() for nodes in (users, positive + 30, negative + 30))
    expected = bpr + 0.01 * 0.5 * l2 / len(users)
    torch.testing.assert_close(model._loss(module, graph, users, positive, negative), expected)
