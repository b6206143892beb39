"""The one step loop of every torch model: its fit, refit and warm start, and the bound (``bench.bound``).

A model describes its training (``TorchRecommender.training``) as a ``Training``: its phases — each one
optimiser over a part of the module, the batches of a pass and the loss of a batch — and what runs at the
start and end of an epoch. This module runs it: the optimisers, the parts frozen in a phase, the losses
summed on the device and read once per epoch, the epoch's log line, early stopping on the validation scorer
the fit was handed (``FitContext.validate``) and the best epoch's weights.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from recpipeline.models.base import Logger
from recpipeline.models.context import ScoreContext

if TYPE_CHECKING:
    from recpipeline.models.neural import TorchRecommender

#: what one step trains on: the tensors a phase's loss takes after the module
Batch = tuple[torch.Tensor, ...]
#: a phase's losses and weights summed over its last pass, still on the device
Sums = list[tuple[torch.Tensor, torch.Tensor | int]]


@dataclass(frozen=True)
class Phase:
    """One optimiser's share of an epoch: ``passes`` passes over ``batches()``, a step per batch.

    ``batches``: one pass's batches, drawn when called (its shuffle and sampling then). ``loss(module,
    *batch)``: the batch's mean loss. ``weight(*batch)``: what that mean counts for in the logged loss (the
    examples or targets it averages; None: every batch alike). ``part``: the submodule whose parameters the
    phase's optimiser steps ("": the whole module); ``frozen``: a submodule without weight gradients in the
    phase (they would be computed and thrown away). ``name``: the loss's name in the log line (a model with
    one phase leaves it empty). ``after_step``: the fit's own work after each step (Mult-VAE's running average
    of the weights); the bound leaves it out, as it leaves out validation.
    """

    batches: Callable[[], Iterable[Batch]]
    loss: Callable[..., torch.Tensor]
    weight: Callable[..., torch.Tensor | int] | None = None
    part: str = ""
    frozen: str = ""
    passes: int = 1
    name: str = ""
    after_step: Callable[[], None] | None = None


@dataclass(frozen=True)
class Training:
    """What a torch model trains, as its ``training`` hook describes it (see ``Phase``).

    Every phase's optimiser is Adam with ``lr`` and ``weight_decay``; a sparse embedding table
    (``nn.Embedding(sparse=True)``) gets lazy Adam instead (``torch.optim.SparseAdam``: a step moves only the
    rows its batch looked up, so a step costs the batch, not the table) and no ``weight_decay`` (the model
    regularises the rows it looks up in its loss). ``epoch_start`` / ``epoch_end`` run on
    the trained module around each epoch's phases (RecVAE refreshes its prior, LightGCN the propagated
    layers it scores from). ``prepare`` runs once in a fit, after the module is built inside the fit's seed
    (buffers, initial rows; it may set the model's ``module_`` to another module it serves, as Mult-VAE's
    average); ``finish`` once after the kept epoch's weights are back. ``note`` adds to the epoch's log line;
    ``score_context`` is what validation scores with (the sequence models' train events).
    """

    phases: tuple[Phase, ...]
    lr: float
    weight_decay: float = 0.0
    epoch_start: Callable[[nn.Module], None] | None = None
    epoch_end: Callable[[nn.Module], None] | None = None
    prepare: Callable[[nn.Module], None] | None = None
    finish: Callable[[], None] | None = None
    note: Callable[[], str] | None = None
    score_context: ScoreContext | None = None


@contextlib.contextmanager
def frozen(part: nn.Module | None) -> Iterator[None]:
    """No weight gradients for ``part`` in the block (None: nothing frozen)."""
    if part is None:
        yield
        return
    part.requires_grad_(False)
    try:
        yield
    finally:
        part.requires_grad_(True)


def optimisers(part: nn.Module, training: Training) -> list[torch.optim.Optimizer]:
    """A phase's optimisers over ``part``: Adam over its dense weights, lazy Adam over the rows of its sparse
    embedding tables (see ``Training``)."""
    sparse = [m.weight for m in part.modules() if isinstance(m, nn.Embedding) and m.sparse]
    dense = [p for p in part.parameters() if all(p is not table for table in sparse)]
    # fused: one kernel per step over every tensor; the default's separate passes over large tables cost
    # ~5x the CPU time (a NeuMF step at 5M events: 73 against 15 ms of CPU with dense tables)
    found: list[torch.optim.Optimizer] = []
    if dense:
        found.append(FusedAdam(dense, lr=training.lr, weight_decay=training.weight_decay))
    if sparse:
        found.append(LazyAdam(sparse, lr=training.lr))
    return found


class FusedAdam(torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` that steps a parameter stored transposed (``neural.item_major``)
    through a contiguous twin over the same memory: the fused kernel copies a non-contiguous tensor and its
    moments in and out every step (a Mult-VAE step at 5M events: 29 of its 42 ms of Adam). The update is
    elementwise, so it is the same in either layout; the twin takes the parameter's gradient, transposed
    (a view), before each step."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float, weight_decay: float) -> None:
        self.twins: list[tuple[nn.Parameter, nn.Parameter]] = []
        stepped = []
        for param in params:
            if param.dim() == 2 and not param.is_contiguous() and param.t().is_contiguous():
                twin = nn.Parameter(param.detach().t())  # shares the parameter's memory
                self.twins.append((param, twin))
                stepped.append(twin)
            else:
                stepped.append(param)
        super().__init__(stepped, lr=lr, weight_decay=weight_decay, fused=True)

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        for param, twin in self.twins:
            twin.grad = None if param.grad is None else param.grad.t()
            param.grad = None  # the next backward starts afresh, as for the other parameters
        super().step()


class LazyAdam(torch.optim.Optimizer):
    """``torch.optim.SparseAdam``'s update, step for step: Adam on the rows a step's sparse gradient
    touches, the moments of the other rows left waiting. It gathers and scatters those rows where
    SparseAdam masks the whole table (``sparse_mask``: on CPU two thirds of a NeuMF step at 5M events)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                state = self.state[param]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param))
                state["step"] += 1
                average = state["exp_avg"].index_select(0, rows).lerp_(values, 1 - beta1)
                squares = state["exp_avg_sq"].index_select(0, rows).mul_(beta2)
                squares.addcmul_(values, values, value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, average)
                state["exp_avg_sq"].index_copy_(0, rows, squares)
                size = group["lr"] * math.sqrt(1 - beta2 ** state["step"]) / (1 - beta1 ** state["step"])
                param.index_add_(0, rows, average.div_(squares.sqrt_().add_(group["eps"])), alpha=-size)


class Steps:
    """A ``Training``'s optimisers for ``module`` and its epochs of steps."""

    def __init__(self, training: Training, module: nn.Module, device: torch.device) -> None:
        self.training, self.module, self.device = training, module, device
        self.optimisers = [
            optimisers(module.get_submodule(phase.part), training) for phase in training.phases
        ]

    def epoch(self) -> Sums:
        """One epoch: every phase's passes, a step per batch; each phase's loss and weight over its last
        pass, summed on the device (no sync per batch)."""
        training, module = self.training, self.module
        if training.epoch_start is not None:
            training.epoch_start(module)
        sums: Sums = []
        for phase, phase_optimisers in zip(training.phases, self.optimisers, strict=True):
            last = (torch.zeros((), device=self.device), 0)
            with frozen(module.get_submodule(phase.frozen) if phase.frozen else None):
                for _ in range(phase.passes):
                    last = self._pass(phase, phase_optimisers)
            sums.append(last)
        if training.epoch_end is not None:
            training.epoch_end(module)
        return sums

    def _pass(
        self, phase: Phase, phase_optimisers: list[torch.optim.Optimizer]
    ) -> tuple[torch.Tensor, torch.Tensor | int]:
        """One pass of ``phase``: forward, loss, backward and step per batch; its summed losses, weights."""
        total, weight = torch.zeros((), device=self.device), 0
        for batch in phase.batches():
            loss = phase.loss(self.module, *batch)
            for optimiser in phase_optimisers:
                optimiser.zero_grad(set_to_none=True)
            loss.backward()
            for optimiser in phase_optimisers:
                optimiser.step()
            if phase.after_step is not None:
                phase.after_step()
            if phase.weight is None:
                total, weight = total + loss.detach(), weight + 1
            else:
                share = phase.weight(*batch)
                total, weight = total + loss.detach() * share, weight + share
        return total, weight


def mean_losses(sums: Sums) -> list[float]:
    """Each phase's mean loss, the device's sums read in one transfer (the epoch's one sync)."""
    device = sums[0][0].device
    read = torch.stack(
        [
            torch.stack([total.double(), torch.as_tensor(weight, device=device).double()])
            for total, weight in sums
        ]
    ).tolist()
    return [total / max(weight, 1.0) for total, weight in read]


def summary(training: Training, sums: Sums) -> str:
    """The epoch's losses for its log line: ``loss 0.1234``, or per phase ``loss encoder 0.1 decoder 0.2``."""
    losses = " ".join(
        f"{phase.name} {mean:.4f}" if phase.name else f"{mean:.4f}"
        for phase, mean in zip(training.phases, mean_losses(sums), strict=True)
    )
    return f"loss {losses}" + (f" {training.note()}" if training.note is not None else "")


def train_epochs(
    model: TorchRecommender, steps: Steps, validate: Callable[[], float] | None, log: Logger
) -> None:
    """Up to ``model.epochs`` epochs of ``steps``; with ``validate`` (the validation NDCG@k of the served
    module, ``model.module_``) keep the best epoch's weights and stop after ``patience`` epochs without a
    better one. Sets ``best_epoch_`` (1-based), ``epoch_seconds_`` (each epoch's training seconds),
    ``validation_seconds_`` (all epochs' validation) and ``validation_curve_``."""
    best_ndcg, best_state, best_epoch, stale = -np.inf, None, 0, 0
    model.epoch_seconds_, model.validation_seconds_ = [], 0.0
    # validation NDCG per epoch; a warm start's starting weights are epoch 0 (a measure, never kept as the
    # best epoch: the refit needs at least one)
    model.validation_curve_ = []
    name, k = model.name, model.k
    if validate is not None and model.warm_started_:
        model.validation_curve_.append((0, validate()))
        log(f"{name} epoch 0 (warm start): val ndcg@{k} {model.validation_curve_[0][1]:.4f}")
    for epoch in range(1, model.epochs + 1):
        start = time.perf_counter()
        model.module_.train()
        line = summary(steps.training, steps.epoch())
        model.module_.eval()
        model.epoch_seconds_.append(time.perf_counter() - start)
        # the line ends "<epoch>s (training <its training part>s)": `recpipeline bench` reads both
        timing = f"(training {model.epoch_seconds_[-1]:.2f}s)"
        if validate is None:
            best_epoch = epoch  # without validation the last epoch's weights are kept
            log(f"{name} epoch {epoch}: {line} {time.perf_counter() - start:.1f}s {timing}")
            continue
        validation_start = time.perf_counter()
        ndcg = validate()
        model.validation_seconds_ += time.perf_counter() - validation_start
        model.validation_curve_.append((epoch, ndcg))
        seconds = time.perf_counter() - start
        log(f"{name} epoch {epoch}: {line} val ndcg@{k} {ndcg:.4f} {seconds:.1f}s {timing}")
        if ndcg > best_ndcg:
            best_ndcg, best_epoch, stale = ndcg, epoch, 0
            best_state = copy.deepcopy(model.module_.state_dict())
        else:
            stale += 1
            if stale >= model.patience:
                log(f"{name}: early stop after epoch {epoch} (no gain for {model.patience} epochs)")
                break
    if best_state is not None:
        model.module_.load_state_dict(best_state)
        log(f"{name}: kept epoch {best_epoch} (val ndcg@{k} {best_ndcg:.4f})")
    model.best_epoch_ = best_epoch
    model.module_.eval()
