"""``TrainingRows``: the autoencoder-style models' batches, densified once or per batch, are the same rows,
and Mult-VAE, RecVAE and CFGAN learn bit-identical weights either way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recpipeline.models import create_model, neural
from recpipeline.models.neural import TrainingRows

PARAMS = {
    "mult_vae": {"hidden": 16, "latent": 4, "epochs": 2, "batch_size": 25},
    "recvae": {"hidden": 16, "latent": 4, "epochs": 2, "batch_size": 25},
    "cfgan": {"generator": [16], "discriminator": [8], "epochs": 2, "batch_size": 25},
}


@pytest.mark.parametrize("budget", [neural.DENSE_TRAIN_BYTES, 0])
def test_batches_are_the_rows_in_the_given_order(budget, monkeypatch, blocks):
    monkeypatch.setattr(neural, "DENSE_TRAIN_BYTES", budget)
    train = blocks[0]
    rows = TrainingRows(train, torch.device("cpu"))
    assert (rows.dense is None) == (budget == 0) and len(rows) == train.shape[0]
    order = np.random.default_rng(0).permutation(len(rows))
    batches = list(rows.batches(order, 25))
    assert [len(batch) for batch in batches] == [25, 25, 10]
    np.testing.assert_array_equal(torch.cat(batches).numpy(), train[order].toarray())


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_dense_and_per_batch_rows_train_the_same_weights(name, monkeypatch, blocks):
    train, held, context, _ = blocks

    def fitted_weights() -> dict[str, torch.Tensor]:
        model = create_model(name, {**PARAMS[name], "num_threads": 1, "device": "cpu"})
        return model.fit(train, held, context=context).module_.state_dict()

    dense = fitted_weights()
    monkeypatch.setattr(neural, "DENSE_TRAIN_BYTES", 0)
    sparse = fitted_weights()
    assert dense.keys() == sparse.keys()
    assert all(torch.equal(dense[key], sparse[key]) for key in dense)
