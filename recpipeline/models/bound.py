"""Each torch model's training epoch against its bound: a bare torch loop of the same architecture.

The bound is what an epoch cannot go below with this module on this machine: the model's own
``_build_module``, its optimiser and its loss, run over batch tensors built before the clock starts —
forward, loss, backward, step, nothing else. The pipeline's epoch (``TorchRecommender.epoch_seconds_``, the
``fit`` loop with its sampling, shuffling, batching and bookkeeping; validation is timed apart) over the
bound is the ratio ``bound_ratio``. Both run in one process, on the same data, batch size and threads.

Adding a model is one ``ENTRIES`` line: how to pre-build its batches, how many a pass has, and its epoch —
``adam(loss)`` for one Adam optimiser over all weights and one pass, or the model's own optimisers and phases
(RecVAE: encoder passes then a decoder pass; CFGAN: discriminator then generator passes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recpipeline.models.base import prepare_matrix
from recpipeline.models.context import FitContext
from recpipeline.models.neural import TorchRecommender, frozen, nonempty_rows, sparse_to_dense
from recpipeline.models.registry import create_model

#: pre-built batches stop at this many bytes or batches; the bound is then extrapolated from their mean
#: batch time (a large data set's bound costs a fraction of an epoch)
BATCH_BYTES, MAX_BATCHES = 1 << 30, 300

Batch = tuple[torch.Tensor, ...]
Loss = Callable[[TorchRecommender, nn.Module, Batch], torch.Tensor]
#: one bare epoch over the pre-built batches; returns a loss (read once, after the clock's last step)
Epoch = Callable[[list[Batch]], torch.Tensor]


@dataclass(frozen=True)
class BoundEntry:
    #: the fitted model, train and context -> one pass's batches, built once (within ``BATCH_BYTES``)
    batches: Callable[[TorchRecommender, sp.csr_matrix, FitContext], list[Batch]]
    #: batches per pass of the model's own loop (to extrapolate a capped list)
    steps: Callable[[TorchRecommender, sp.csr_matrix, FitContext], int]
    #: the model and a bare module -> its epoch, with the model's optimisers made once (before any clock)
    epoch: Callable[[TorchRecommender, nn.Module], Epoch]


def _pass(
    optimiser: torch.optim.Optimizer, batches: list[Batch], loss: Callable[[Batch], torch.Tensor]
) -> torch.Tensor:
    """One optimiser over the batches: forward, loss, backward, step; the last loss."""
    for batch in batches:
        value = loss(batch)
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        optimiser.step()
    return value


def adam(loss: Loss) -> Callable[[TorchRecommender, nn.Module], Epoch]:
    """The epoch of a model with one Adam optimiser over all its weights and one pass over the batches."""

    def epoch(model: TorchRecommender, module: nn.Module) -> Epoch:
        optimiser = torch.optim.Adam(module.parameters(), lr=model.lr, weight_decay=model.weight_decay)
        return lambda batches: _pass(optimiser, batches, lambda batch: loss(model, module, batch))

    return epoch


def _recvae_epoch(model: TorchRecommender, module: nn.Module) -> Epoch:
    """RecVAE's fit: the prior refreshed, ``encoder_steps`` encoder passes (dropout), one decoder pass;
    each phase without the other part's weight gradients."""
    encoder = torch.optim.Adam(module.encoder.parameters(), lr=model.lr)
    decoder = torch.optim.Adam(module.decoder.parameters(), lr=model.lr)

    def epoch(batches: list[Batch]) -> torch.Tensor:
        module.refresh_prior()
        with frozen(module.decoder):
            for _ in range(model.encoder_steps):
                _pass(encoder, batches, lambda batch: model._loss(module, batch[0], model.dropout))
        with frozen(module.encoder):
            return _pass(decoder, batches, lambda batch: model._loss(module, batch[0], 0.0))

    return epoch


def _cfgan_epoch(model: TorchRecommender, module: nn.Module) -> Epoch:
    """CFGAN's fit: ``discriminator_steps`` discriminator passes, then ``generator_steps`` generator ones
    (the discriminator frozen)."""
    discriminator, generator = (
        torch.optim.Adam(part.parameters(), lr=model.lr, weight_decay=model.weight_decay)
        for part in (module.discriminator, module.generator)
    )

    def epoch(batches: list[Batch]) -> torch.Tensor:
        for _ in range(model.discriminator_steps):
            _pass(discriminator, batches, lambda batch: model._discriminator_loss(module, batch[0]))
        with frozen(module.discriminator):
            for _ in range(model.generator_steps):
                loss = _pass(generator, batches, lambda batch: model._generator_loss(module, batch[0]))
        return loss

    return epoch


def _capped(batches: Iterable[Batch]) -> list[Batch]:
    """The leading batches within ``BATCH_BYTES`` (at least one); a generator is consumed only that far.
    Views of one tensor (slices of an epoch's samples, a graph every batch shares) count once."""
    out, used, seen = [], 0, set()
    for batch in batches:
        for tensor in batch:
            storage = None if tensor.is_sparse else tensor.untyped_storage()
            if storage is not None and storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                used += storage.nbytes()
        if out and (used > BATCH_BYTES or len(out) >= MAX_BATCHES):
            break
        out.append(batch)
    return out


def _vae_rows(model: TorchRecommender, train: sp.csr_matrix) -> sp.csr_matrix:
    return nonempty_rows(train, model.binarize)


def _vae_batches(model: TorchRecommender, train: sp.csr_matrix, context: FitContext) -> list[Batch]:
    rows, size = _vae_rows(model, train), model.batch_size
    return _capped(
        (sparse_to_dense(rows[b : b + size], model.device_),) for b in range(0, rows.shape[0], size)
    )


def _vae_loss(model: TorchRecommender, module: nn.Module, batch: Batch) -> torch.Tensor:
    return model._loss(module, batch[0], model.beta_max)


def _neumf_samples(model: TorchRecommender, train: sp.csr_matrix) -> Batch:
    positives = prepare_matrix(train, binarize=True).tocoo()
    users, items = positives.row.astype(np.int64), positives.col.astype(np.int64)
    observed = np.sort(users * model.n_items_ + items)
    return model._epoch_samples(users, items, observed, np.random.default_rng(model.seed))


def _neumf_batches(model: TorchRecommender, train: sp.csr_matrix, context: FitContext) -> list[Batch]:
    users, items, labels = _neumf_samples(model, train)
    size = model.batch_size
    return _capped(
        (users[b : b + size], items[b : b + size], labels[b : b + size]) for b in range(0, len(users), size)
    )


def _neumf_loss(model: TorchRecommender, module: nn.Module, batch: Batch) -> torch.Tensor:
    users, items, labels = batch
    return F.binary_cross_entropy_with_logits(module(users, items), labels)


def _sequence_batches(model: TorchRecommender, train: sp.csr_matrix, context: FitContext) -> list[Batch]:
    """The model's own windows and (input, target) pairs (BERT4Rec: one cloze draw each, made here)."""
    windows = torch.from_numpy(model._training_windows(context.train_events)).to(model.device_)

    def batches() -> Iterator[Batch]:
        for b in range(0, len(windows), model.batch_size):
            inputs, targets = model._training_pair(windows[b : b + model.batch_size])
            mask = targets > 0
            yield inputs.contiguous(), mask, targets[mask]

    return _capped(batches())


def _sequence_loss(model: TorchRecommender, module: nn.Module, batch: Batch) -> torch.Tensor:
    inputs, mask, targets = batch
    return model._item_loss(module(inputs)[mask], targets)


def _lightgcn_batches(model: TorchRecommender, train: sp.csr_matrix, context: FitContext) -> list[Batch]:
    from recpipeline.models.lightgcn import normalised_adjacency

    binary = prepare_matrix(train, binarize=True)
    adjacency = normalised_adjacency(binary)
    indices = torch.from_numpy(np.vstack([adjacency.row, adjacency.col]).astype(np.int64))
    values = torch.from_numpy(adjacency.data.astype(np.float32))
    graph = (
        torch.sparse_coo_tensor(indices, values, adjacency.shape, check_invariants=False)
        .coalesce()
        .to(model.device_)
    )
    positives = binary.tocoo()
    users, items = positives.row.astype(np.int64), positives.col.astype(np.int64)
    observed = np.sort(users * model.n_items_ + items)
    triples = model._triples(users, items, observed, np.random.default_rng(model.seed))
    size = model.batch_size
    return _capped((graph, *(t[b : b + size] for t in triples)) for b in range(0, len(triples[0]), size))


def _lightgcn_loss(model: TorchRecommender, module: nn.Module, batch: Batch) -> torch.Tensor:
    return model._loss(module, *batch)


def _vae_steps(model: TorchRecommender, train: sp.csr_matrix, context: FitContext) -> int:
    return -(-_vae_rows(model, train).shape[0] // model.batch_size)


def _neumf_steps(model: TorchRecommender, train: sp.csr_matrix, context: FitContext) -> int:
    return -(-train.nnz * (1 + model.negatives) // model.batch_size)  # train is binary-deduplicated


def _pair_steps(model: TorchRecommender, train: sp.csr_matrix, context: FitContext) -> int:
    return -(-train.nnz // model.batch_size)


def _sequence_steps(model: TorchRecommender, train: sp.csr_matrix, context: FitContext) -> int:
    return -(-len(model._training_windows(context.train_events)) // model.batch_size)


_SEQUENCE = BoundEntry(_sequence_batches, _sequence_steps, adam(_sequence_loss))

#: model name -> how its bare loop is built; one line per torch model
ENTRIES: dict[str, BoundEntry] = {
    "mult_vae": BoundEntry(_vae_batches, _vae_steps, adam(_vae_loss)),
    "recvae": BoundEntry(_vae_batches, _vae_steps, _recvae_epoch),
    "cfgan": BoundEntry(_vae_batches, _vae_steps, _cfgan_epoch),
    "neumf": BoundEntry(_neumf_batches, _neumf_steps, adam(_neumf_loss)),
    "gru4rec": _SEQUENCE,
    "sasrec": _SEQUENCE,
    "bert4rec": _SEQUENCE,
    "caser": _SEQUENCE,
    "lightgcn": BoundEntry(_lightgcn_batches, _pair_steps, adam(_lightgcn_loss)),
}


@dataclass(frozen=True)
class BoundResult:
    model: str
    epoch_s: float  # the pipeline's fit loop: its fastest training epoch
    bound_s: float  # the bare loop's fastest epoch (extrapolated when the batches were capped)
    validation_s: float  # validation per epoch inside the pipeline's fit (not part of either)
    epochs: int
    batches: int  # batches per pass over the data; the bare loop timed ``timed_batches`` of them
    timed_batches: int

    @property
    def ratio(self) -> float:
        return self.epoch_s / self.bound_s


def bare_loop(
    model: TorchRecommender, train: sp.csr_matrix, context: FitContext
) -> tuple[Callable[[], float], int, int]:
    """The bare loop of fitted ``model``'s architecture and hyperparameters (a fresh module, its optimisers
    and phases, its threads): (run one epoch and return its seconds, extrapolated to the whole epoch when the
    batches were capped; batches per pass; batches timed per pass)."""
    entry = ENTRIES[model.name]
    batches = entry.batches(model, train, context)
    steps = entry.steps(model, train, context)
    with model._seeded():
        module = model._build_module().to(model.device_)
    run = entry.epoch(model, module)
    module.train()

    def epoch() -> float:
        fitted, model.module_ = getattr(model, "module_", None), module  # sequence losses read ``module_``
        with model._threads():
            started = time.perf_counter()
            float(run(batches).detach())  # one sync, as the pipeline's epoch summary does
            seconds = time.perf_counter() - started
        model.module_ = fitted
        return seconds * steps / len(batches)

    return epoch, steps, len(batches)


def bare_epoch_seconds(
    model: TorchRecommender, train: sp.csr_matrix, context: FitContext, epochs: int = 2
) -> float:
    """The fastest of ``epochs`` epochs of ``bare_loop``."""
    epoch = bare_loop(model, train, context)[0]
    return min(epoch() for _ in range(epochs))


def measure_bound(
    name: str,
    params: dict,
    train: sp.csr_matrix,
    validation: sp.csr_matrix | None,
    context: FitContext,
    epochs: int = 2,
) -> BoundResult:
    """``epochs`` rounds of one epoch of ``name``'s own ``fit`` (a fresh one-epoch fit each round) and one
    epoch of its bare loop, interleaved so that a machine's changing load hits both alike; the fastest
    epoch of each."""
    model = create_model(name, {**params, "epochs": 1})
    pipeline, bare, validation_s = [], [], 0.0
    for round_ in range(epochs):
        model.fit(train, validation, context=context)
        pipeline.append(model.epoch_seconds_[0])
        validation_s += model.validation_seconds_
        if round_ == 0:
            epoch, steps, timed = bare_loop(model, train, context)
        bare.append(epoch())
    return BoundResult(
        name,
        epoch_s=min(pipeline),
        bound_s=min(bare),
        validation_s=validation_s / epochs,
        epochs=epochs,
        batches=steps,
        timed_batches=timed,
    )
