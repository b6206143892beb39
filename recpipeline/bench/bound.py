"""Each torch model's training epoch against its bound: the same step loop with nothing around it.

The bound is what an epoch cannot go below with this module on this machine: the model's own training
(``TorchRecommender.training``: its phases, optimisers, losses and epoch hooks) run by the fit's step loop
(``models.loop.Steps``) on a fresh module, over batches built before the clock starts — forward, loss,
backward, step, nothing else (no drawing of batches, no validation, none of a fit's own bookkeeping such as
Mult-VAE's weight average). The pipeline's epoch (``TorchRecommender.epoch_seconds_``: the same loop that also
draws its shuffles, samples and batches; validation is timed apart) over the bound is the ratio
``bound_ratio``. Both run in one process, on the same data, batch size and threads.

Every registered torch model has its bound through those public hooks: a new model adds nothing here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import scipy.sparse as sp

from recpipeline.models.base import no_log
from recpipeline.models.context import FitContext
from recpipeline.models.loop import Batch, Steps, mean_losses
from recpipeline.models.neural import TorchRecommender
from recpipeline.models.registry import MODEL_NAMES, create_model, model_class

#: pre-built batches stop at this many bytes or batches a pass; the bound is then extrapolated from their
#: mean step time (a large data set's bound costs a fraction of an epoch)
BATCH_BYTES, MAX_BATCHES = 1 << 30, 300

#: the models with a bound: every registered torch model
TORCH_MODELS = tuple(name for name in MODEL_NAMES if issubclass(model_class(name), TorchRecommender))


def _prebuilt(batches: Iterable[Batch]) -> tuple[list[Batch], int]:
    """A pass's leading batches within ``BATCH_BYTES`` and ``MAX_BATCHES`` (at least one), and how many
    batches the whole pass has (the rest are drawn and counted, not kept). Views of one tensor (slices of a
    pass's shuffled samples) count once."""
    kept, used, seen, count = [], 0, set(), 0
    full = False
    for batch in batches:
        count += 1
        if full:
            continue
        for tensor in batch:
            storage = None if tensor.is_sparse else tensor.untyped_storage()
            if storage is not None and storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                used += storage.nbytes()
        full = bool(kept) and (used > BATCH_BYTES or len(kept) >= MAX_BATCHES)
        if not full:
            kept.append(batch)
    return kept, count


def _replay(batches: list[Batch]) -> Callable[[], list[Batch]]:
    """A phase's batch source that serves the same pre-built batches every pass."""
    return lambda: batches


@dataclass(frozen=True)
class BareLoop:
    """A fitted model's training steps on a fresh module over pre-built batches (``bare_loop``)."""

    model: TorchRecommender
    steps: Steps
    #: optimiser steps in an epoch of the model's own loop (every phase and pass)
    batches: int
    #: the steps a bare epoch runs (fewer where a pass's batches were capped)
    timed: int

    def epoch(self) -> float:
        """Seconds of one bare epoch, extrapolated to the whole epoch when the batches were capped."""
        with self.model.threads():
            started = time.perf_counter()
            mean_losses(self.steps.epoch())  # the one sync a fit's epoch makes for its log line
            seconds = time.perf_counter() - started
        return seconds * self.batches / self.timed


@dataclass(frozen=True)
class BoundResult:
    model: str
    epoch_s: float  # the pipeline's fit loop: its fastest training epoch
    bound_s: float  # the bare loop's fastest epoch (extrapolated when the batches were capped)
    validation_s: float  # validation per epoch inside the pipeline's fit (not part of either)
    epochs: int
    batches: int  # optimiser steps per epoch; the bare loop timed ``timed_batches`` of them
    timed_batches: int

    @property
    def ratio(self) -> float:
        return self.epoch_s / self.bound_s


def bare_loop(model: TorchRecommender, train: sp.csr_matrix, context: FitContext) -> BareLoop:
    """The bare loop of fitted ``model``'s architecture and hyperparameters: its ``training`` on ``train``,
    each phase's batches of one pass built now (phases drawing from one source share them), run by the
    step loop on a fresh module with the model's optimisers, phases and threads."""
    training = model.training(train, context, no_log)
    built: dict[int, tuple[list[Batch], int]] = {}
    for phase in training.phases:
        if id(phase.batches) not in built:
            built[id(phase.batches)] = _prebuilt(phase.batches())
    phases = tuple(
        replace(phase, batches=_replay(built[id(phase.batches)][0]), after_step=None)
        for phase in training.phases
    )
    batches = sum(phase.passes * built[id(phase.batches)][1] for phase in training.phases)
    timed = sum(phase.passes * len(built[id(phase.batches)][0]) for phase in training.phases)
    steps = Steps(replace(training, phases=phases), model.fresh_module(), model.device_)
    steps.module.train()
    return BareLoop(model, steps, batches, timed)


def bare_epoch_seconds(
    model: TorchRecommender, train: sp.csr_matrix, context: FitContext, epochs: int = 2
) -> float:
    """The fastest of ``epochs`` epochs of ``bare_loop``."""
    loop = bare_loop(model, train, context)
    return min(loop.epoch() for _ in range(epochs))


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
            loop = bare_loop(model, train, context)
        bare.append(loop.epoch())
    return BoundResult(
        name,
        epoch_s=min(pipeline),
        bound_s=min(bare),
        validation_s=validation_s / epochs,
        epochs=epochs,
        batches=loop.batches,
        timed_batches=loop.timed,
    )
