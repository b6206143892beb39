"""Sparse history rows (``neural.SparseRows``, ``TrainingRows``): the history-row models (Mult-VAE, RecVAE,
CFGAN) train and score from the rows' non-zeros, and that path equals the dense one within float tolerance:
the batches, the helpers, each model's scores, losses and gradients; a saved model reloads and scores the
same, its first layers still stored item-major."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recpipeline.models import create_model, load_model
from recpipeline.models.base import prepare_matrix
from recpipeline.models.neural import (
    SparseRows,
    TorchRecommender,
    TrainingRows,
    linear,
    multinomial_log_likelihood,
    normalized,
    row_sums,
)

CPU = torch.device("cpu")
N_ITEMS = 23
#: small modules, no input dropout: the dense and the sparse path then draw the same random numbers
PARAMS = {
    "mult_vae": {"hidden": 16, "latent": 4, "dropout": 0.0},
    "recvae": {"hidden": 16, "latent": 4, "dropout": 0.0},
    "cfgan": {"generator": [16], "discriminator": [8]},
}
#: the parameters stored item-major (a gathered item's column contiguous)
FIRST_LAYERS = {
    "mult_vae": ["encoder.0.weight"],
    "recvae": ["encoder.layers.0.weight", "old_encoder.layers.0.weight"],
    "cfgan": ["generator.0.weight", "discriminator.0.weight"],
}


def history(binary: bool, seed: int = 0) -> sp.csr_matrix:
    """7 users x ``N_ITEMS``, weights 1-3 (or 0/1), user 3 without any item."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((7, N_ITEMS)) < 0.3) * rng.integers(1, 4, (7, N_ITEMS))
    dense[3] = 0
    return sp.csr_matrix((dense > 0 if binary else dense).astype(np.float32))


def both_forms(rows: sp.csr_matrix) -> tuple[torch.Tensor, SparseRows]:
    return torch.from_numpy(rows.toarray()), SparseRows.of(rows, CPU)


def built(name: str) -> tuple[TorchRecommender, torch.nn.Module]:
    model = create_model(name, {**PARAMS[name], "device": "cpu", "num_threads": 1})
    model.n_users_, model.n_items_, model.device_ = 7, N_ITEMS, CPU
    torch.manual_seed(0)
    model.module_ = model._build_module()
    return model, model.module_


def test_batches_are_the_rows_in_the_given_order() -> None:
    train = history(binary=False)
    rows = TrainingRows(train, CPU)
    order = np.random.default_rng(0).permutation(len(rows))
    batches = list(rows.batches(order, 3))
    assert [batch.n_rows for batch in batches] == [3, 3, 1]
    dense = torch.cat([batch.to_dense(N_ITEMS) for batch in batches])
    np.testing.assert_array_equal(dense.numpy(), train[order].toarray())


def test_the_row_helpers_equal_their_dense_form() -> None:
    dense, sparse = both_forms(history(binary=False))
    torch.testing.assert_close(normalized(sparse).to_dense(N_ITEMS), normalized(dense))
    torch.testing.assert_close(row_sums(sparse), row_sums(dense))
    logits = torch.randn(7, N_ITEMS, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        multinomial_log_likelihood(logits, sparse), multinomial_log_likelihood(logits, dense)
    )
    layer = torch.nn.Linear(N_ITEMS, 5)
    torch.testing.assert_close(linear(layer, sparse), linear(layer, dense))


def dense_scores(name: str, model: TorchRecommender, x: torch.Tensor) -> torch.Tensor:
    """The scores of dense history rows ``x``, as the dense path computes them."""
    if name == "recvae":
        return model.module_(x)
    return model._dense_scores(model._attributed_input(x))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_scores_from_the_non_zeros_equal_the_dense_forward(name) -> None:
    model, module = built(name)
    module.eval()
    rows = history(binary=False)
    prepared = prepare_matrix(rows, model.binarize)  # as ``score`` prepares it
    expected = dense_scores(name, model, torch.from_numpy(prepared.toarray())).detach().numpy()
    np.testing.assert_allclose(model.score(np.arange(7), rows), expected, rtol=1e-5, atol=1e-5)


def losses(name: str, model: TorchRecommender) -> list[Callable]:
    if name == "mult_vae":
        return [lambda module, x: model._loss(module, x, beta=0.3)]
    if name == "recvae":
        return [lambda module, x: model._loss(module, x, 0.0)]
    return [model._discriminator_loss, model._generator_loss]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_losses_and_gradients_from_the_non_zeros_equal_the_dense_ones(name) -> None:
    """Without dropout both paths draw the same numbers (latent noise, CFGAN's ZR / PM masks)."""
    model, module = built(name)
    module.train()
    dense, sparse = both_forms(history(binary=name == "cfgan"))
    for loss in losses(name, model):
        results = []
        for x in (dense, sparse):
            torch.manual_seed(1)
            module.zero_grad(set_to_none=True)
            value = loss(module, x)
            value.backward()
            grads = {key: p.grad.clone() for key, p in module.named_parameters() if p.grad is not None}
            results.append((value.detach(), grads))
        (dense_loss, dense_grads), (sparse_loss, sparse_grads) = results
        torch.testing.assert_close(sparse_loss, dense_loss)
        assert sparse_grads.keys() == dense_grads.keys() and dense_grads.keys() & set(FIRST_LAYERS[name])
        for key, grad in dense_grads.items():
            torch.testing.assert_close(sparse_grads[key], grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["mult_vae", "recvae"])
def test_dropout_on_the_non_zeros_is_seeded(name) -> None:
    model, module = built(name)
    model.dropout = 0.5
    _, sparse = both_forms(history(binary=False))
    (loss,) = losses(name, model)

    def value(seed: int) -> float:
        torch.manual_seed(seed)
        return float(loss(module, sparse).detach())

    assert value(3) == value(3) != value(4)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_a_saved_model_reloads_item_major_and_scores_the_same(name, blocks, tmp_path) -> None:
    train, held, context, _ = blocks
    params = {**PARAMS[name], "epochs": 2, "batch_size": 25, "num_threads": 1, "device": "cpu"}
    model = create_model(name, params).fit(train, held, context=context)
    model.save(tmp_path)
    loaded = load_model(tmp_path)
    users = np.arange(train.shape[0])
    np.testing.assert_array_equal(loaded.score(users, train), model.score(users, train))
    state = loaded.module_.state_dict()
    for key in FIRST_LAYERS[name]:
        assert state[key].t().is_contiguous()
