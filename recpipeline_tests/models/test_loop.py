"""``models.loop``: the one step loop of every torch model, on a toy model that declares only its module, its
training and its scoring (all a new torch model needs)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recpipeline.models.base import Logger, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.loop import Batch, Phase, Steps, Training
from recpipeline.models.neural import TorchRecommender
from recpipeline.models.settings import TorchSettings
from recpipeline_tests.models.conftest import planted_blocks


class _Factors(nn.Module):
    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.users, self.items = nn.Embedding(n_users, 4), nn.Embedding(n_items, 4)

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        return self.users(users) @ self.items.weight.T


class Toy(TorchRecommender):
    """Factors fitted to the rows by squared error, ``batch_size`` users a step."""

    name = "toy"

    class Settings(TorchSettings):
        epochs: int = 4
        patience: int = 2
        lr: float = 0.05
        batch_size: int = 25
        device: str = "cpu"
        num_threads: int = 1

    def _build_module(self) -> nn.Module:
        return _Factors(self.n_users_, self.n_items_)

    def training(self, train: sp.csr_matrix, context: FitContext, log: Logger) -> Training:
        rows = torch.from_numpy(prepare_matrix(train).toarray())
        users = torch.arange(self.n_users_)

        def batches() -> Iterator[Batch]:
            for begin in range(0, self.n_users_, self.batch_size):
                yield users[begin : begin + self.batch_size], rows[begin : begin + self.batch_size]

        return Training((Phase(batches, lambda module, u, x: F.mse_loss(module(u), x)),), lr=self.lr)

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        return self.module_(torch.from_numpy(np.asarray(users, dtype=np.int64))).numpy()


@pytest.fixture(scope="module")
def train() -> sp.csr_matrix:
    return planted_blocks()[0]


def test_early_stopping_keeps_the_best_epochs_weights(train):
    scores, seen = iter([0.1, 0.3, 0.2, 0.25, 0.9]), []

    def validate(model: TorchRecommender, k: int, context: ScoreContext | None) -> float:
        seen.append({key: value.clone() for key, value in model.module_.state_dict().items()})
        return next(scores)

    lines: list[str] = []
    model = Toy(epochs=5).fit(train, train, context=FitContext(validate=validate), log=lines.append)
    # epoch 2 was best; two epochs without a gain stop the fit before the fifth
    assert model.best_epoch_ == 2 and len(model.epoch_seconds_) == len(seen) == 4
    assert [epoch for epoch, _ in model.validation_curve_] == [1, 2, 3, 4]
    state = model.module_.state_dict()
    assert all(torch.equal(state[key], seen[1][key]) for key in state)
    assert not torch.equal(state["users.weight"], seen[3]["users.weight"])
    assert lines[-2:] == [
        "toy: early stop after epoch 4 (no gain for 2 epochs)",
        "toy: kept epoch 2 (val ndcg@10 0.3000)",
    ]
    assert model.refit_params()["epochs"] == 2


def test_without_a_scorer_every_epoch_runs_and_the_last_is_kept(train):
    lines: list[str] = []
    model = Toy(epochs=3).fit(train, train, log=lines.append)  # a validation matrix alone stops nothing
    assert model.best_epoch_ == 3 and len(model.epoch_seconds_) == 3 and model.validation_curve_ == []
    assert [line.split(":")[0] for line in lines] == ["toy epoch 1", "toy epoch 2", "toy epoch 3"]
    again = Toy(epochs=3).fit(train)  # the same seed, the same weights
    assert all(
        torch.equal(value, again.module_.state_dict()[key])
        for key, value in model.module_.state_dict().items()
    )


def test_a_two_phase_epoch_steps_each_phase_on_its_own_part_with_the_other_frozen(train):
    module = _Factors(*train.shape)
    users, rows = torch.arange(train.shape[0]), torch.from_numpy(train.toarray())
    start = {key: value.clone() for key, value in module.state_dict().items()}
    observed: list[tuple[str, bool, bool]] = []

    def loss(name: str):
        def of(module: _Factors, u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            observed.append((name, module.users.weight.requires_grad, module.items.weight.requires_grad))
            return F.mse_loss(module(u), x)

        return of

    def after_users_step() -> None:  # the item part is left alone while the users' optimiser steps
        assert torch.equal(module.items.weight, start["items.weight"])

    training = Training(
        (
            Phase(
                lambda: [(users, rows)],
                loss("users"),
                part="users",
                frozen="items",
                passes=2,
                name="users",
                after_step=after_users_step,
            ),
            Phase(lambda: [(users, rows)], loss("items"), part="items", frozen="users", name="items"),
        ),
        lr=0.1,
    )
    steps = Steps(training, module, torch.device("cpu"))
    sums = steps.epoch()
    assert observed == [("users", True, False), ("users", True, False), ("items", False, True)]
    assert all(part.requires_grad for part in module.parameters())  # unfrozen after the phase
    assert not torch.equal(module.users.weight, start["users.weight"])
    assert not torch.equal(module.items.weight, start["items.weight"])
    assert [weight for _, weight in sums] == [1, 1]  # each phase's loss: over its last pass


class _Counted(torch.Tensor):
    """A loss that records every read of its value (or of a sum it went into) on the host."""

    reads: list[str] = []

    def _read(self, how: str):
        _Counted.reads.append(how)
        return getattr(super(), how)()

    def item(self):
        return self._read("item")

    def tolist(self):
        return self._read("tolist")

    def __float__(self):
        return self._read("__float__")

    def numpy(self):
        return self._read("numpy")

    def cpu(self):
        return self._read("cpu")


def test_the_epochs_losses_are_read_from_the_device_once_per_epoch(train, monkeypatch):
    events: list[str] = []
    monkeypatch.setattr(_Counted, "reads", events)

    class Counting(Toy):
        def training(self, train: sp.csr_matrix, context: FitContext, log: Logger) -> Training:
            (phase,) = super().training(train, context, log).phases

            def loss(module: nn.Module, *batch: torch.Tensor) -> torch.Tensor:
                events.append("step")
                return phase.loss(module, *batch).as_subclass(_Counted)

            return Training((Phase(phase.batches, loss),), lr=self.lr)

    Counting(epochs=3).fit(train)
    steps = train.shape[0] // 25 + 1
    assert events == (["step"] * steps + ["tolist"]) * 3


def test_lazy_adam_takes_sparse_adams_steps():
    """The sparse tables' optimiser is torch's SparseAdam, rewritten to gather rows: the same weights."""
    from recpipeline.models.loop import LazyAdam

    torch.manual_seed(0)
    ours, theirs = nn.Embedding(50, 4, sparse=True), nn.Embedding(50, 4, sparse=True)
    theirs.load_state_dict(ours.state_dict())
    optimisers = LazyAdam(ours.parameters(), lr=0.01), torch.optim.SparseAdam(theirs.parameters(), lr=0.01)
    for _ in range(30):
        rows, targets = torch.randint(0, 50, (20,)), torch.randn(20, 4)  # repeated rows included
        for table, optimiser in zip((ours, theirs), optimisers, strict=True):
            optimiser.zero_grad()
            ((table(rows) - targets) ** 2).sum().backward()
            optimiser.step()
    assert not torch.equal(ours.weight, nn.Embedding(50, 4).weight)
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=1e-6)


def test_sparse_tables_get_lazy_adam_and_the_rest_fused_adam():
    from recpipeline.models.loop import LazyAdam, optimisers

    module = nn.Sequential(nn.Embedding(10, 3, sparse=True), nn.Embedding(10, 3), nn.Linear(3, 1))
    dense, lazy = optimisers(module, Training((), lr=0.1, weight_decay=0.01))
    assert isinstance(lazy, LazyAdam) and [p for g in lazy.param_groups for p in g["params"]] == [
        module[0].weight
    ]
    assert dense.defaults["fused"] and dense.defaults["weight_decay"] == 0.01
    assert len(dense.param_groups[0]["params"]) == 3  # the dense table, the layer's weight and bias


def test_a_parameter_stored_transposed_takes_adams_steps_through_its_contiguous_twin():
    from recpipeline.models.loop import FusedAdam
    from recpipeline.models.neural import item_major

    torch.manual_seed(0)
    ours, theirs = nn.Linear(6, 4), nn.Linear(6, 4)
    theirs.load_state_dict(ours.state_dict())
    initial = ours.weight.detach().clone()
    item_major(ours)
    optimisers = (
        FusedAdam(ours.parameters(), lr=0.1, weight_decay=0.01),
        torch.optim.Adam(theirs.parameters(), lr=0.1, weight_decay=0.01),
    )
    weight = ours.weight
    assert [twin.data_ptr() for _, twin in optimisers[0].twins] == [weight.data_ptr()]
    inputs, targets = torch.randn(8, 6), torch.randn(8, 4)
    for _ in range(5):
        for layer, optimiser in zip((ours, theirs), optimisers, strict=True):
            optimiser.zero_grad(set_to_none=True)
            ((layer(inputs) - targets) ** 2).sum().backward()
            optimiser.step()
    assert ours.weight is weight and ours.weight.grad is None
    assert not torch.allclose(ours.weight, initial)
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.bias, theirs.bias, rtol=0, atol=1e-6)
