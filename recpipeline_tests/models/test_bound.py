"""``recpipeline.models.bound``: every torch model with an entry runs its bare loop on pre-built batches."""

from __future__ import annotations

import pytest

from recpipeline.models import bound
from recpipeline.models.neural import TorchRecommender
from recpipeline.models.registry import MODEL_NAMES, model_class

#: small sizes for whichever of these each model takes
SMALL = {"num_threads": 1, "factors": 8, "max_len": 10, "hidden": 16, "latent": 4, "batch_size": 64}


def test_every_bound_entry_is_a_registered_torch_model():
    assert set(bound.ENTRIES) <= set(MODEL_NAMES)
    assert all(issubclass(model_class(name), TorchRecommender) for name in bound.ENTRIES)


@pytest.mark.parametrize("name", sorted(bound.ENTRIES))
def test_the_bound_is_measured_on_the_models_own_batches(name, blocks):
    train, held, context, _ = blocks
    params = {key: value for key, value in SMALL.items() if key in model_class(name)().get_params()}
    result = bound.measure_bound(name, params, train, held, context, epochs=2)
    assert result.epochs == 2 and result.epoch_s > 0 and result.bound_s > 0
    assert result.timed_batches == result.batches >= 1  # tiny data: nothing capped
    assert result.ratio == result.epoch_s / result.bound_s


def test_capped_batches_stay_within_the_byte_budget(monkeypatch, blocks):
    train, held, context, _ = blocks
    monkeypatch.setattr(bound, "BATCH_BYTES", 1)  # one batch at least, however small the budget
    result = bound.measure_bound(
        "neumf", {"num_threads": 1, "batch_size": 16}, train, held, context, epochs=1
    )
    assert result.timed_batches == 1 and result.batches == -(-train.nnz * 5 // 16)
