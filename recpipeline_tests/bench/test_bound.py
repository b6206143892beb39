"""``recpipeline.bench.bound``: every torch model's bare loop is the fit's step loop on pre-built batches."""

from __future__ import annotations

import pytest
import torch

from recpipeline.bench import bound
from recpipeline.models.registry import model_class

#: small sizes for whichever of these each model takes
SMALL = {"num_threads": 1, "factors": 8, "max_len": 10, "hidden": 16, "latent": 4, "batch_size": 64}
SMALL_TWO_PHASE = {
    "recvae": {"num_threads": 1, "hidden": 16, "latent": 4, "batch_size": 32, "device": "cpu"},
    "cfgan": {"num_threads": 1, "generator": [16], "discriminator": [8], "batch_size": 32, "device": "cpu"},
}


@pytest.mark.parametrize("name", bound.TORCH_MODELS)
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


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module, prefix: str) -> set[str]:
    """The ``prefix`` weights of ``module`` that differ from ``before``."""
    keys = {key for key in before if key.startswith(prefix)}
    assert keys
    return {key for key in keys if not torch.equal(before[key], module.state_dict()[key])}


@pytest.mark.parametrize(
    ("name", "phases", "passes"),
    [("recvae", ("encoder.", "decoder."), 3 + 1), ("cfgan", ("discriminator.", "generator."), 1 + 1)],
)
def test_a_two_phase_bare_epoch_steps_both_of_the_models_optimisers(name, phases, passes, blocks):
    train, held, context, _ = blocks
    model = model_class(name)(**{**SMALL_TWO_PHASE[name], "epochs": 1})
    model.fit(train, held, context=context)
    fitted = _weights(model.module_)
    loop = bound.bare_loop(model, train, context)
    for phase in loop.steps.training.phases:  # pre-built: 60 users with history, 32 a batch
        assert [len(batch[0]) for batch in phase.batches()] == [32, 28] and phase.after_step is None
    assert loop.batches == loop.timed == 2 * passes
    module = loop.steps.module
    assert module is not model.module_
    before = _weights(module)
    assert loop.epoch() > 0
    for phase in phases:  # every weight of both phases moved
        assert _changed(before, module, phase) == {key for key in before if key.startswith(phase)}
    if name == "recvae":  # the prior's posterior is the encoder as the epoch began
        for key, value in module.old_encoder.state_dict().items():
            assert torch.equal(value, before[f"encoder.{key}"])
    # the fitted model is left as it was
    assert all(torch.equal(value, fitted[key]) for key, value in model.module_.state_dict().items())
