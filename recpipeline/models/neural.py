"""Shared PyTorch plumbing for the neural models: device choice, seeding, early stopping, safetensors.

Subclasses build their ``nn.Module`` from hyperparameters and the matrix shape alone (``_build_module``), so
a saved model reloads from ``params.json`` + ``model.safetensors`` without pickle.
"""

from __future__ import annotations

import contextlib
import copy
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from recpipeline.evaluation.relevance import holdout_relevance
from recpipeline.models.base import (
    ArtefactError,
    Logger,
    Recommender,
    error_summary,
    non_finite,
    prepare_matrix,
)
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.holdout import holdout_ndcg
from recpipeline.models.threads import resolve_threads

STATE_FILE = "model.safetensors"


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


#: history rows densified at once when an autoencoder-style model scores
EVAL_BATCH_USERS = 1024


def score_rows(
    rows: sp.csr_matrix, device: torch.device, forward: Callable[[torch.Tensor], torch.Tensor]
) -> np.ndarray:
    """``forward`` of the history ``rows``, densified on ``device`` ``EVAL_BATCH_USERS`` at a time, as one
    float32 array (the models that score a whole history row: Mult-VAE, RecVAE, CFGAN)."""
    out = np.empty(rows.shape, dtype=np.float32)
    for begin in range(0, rows.shape[0], EVAL_BATCH_USERS):
        block = forward(sparse_to_dense(rows[begin : begin + EVAL_BATCH_USERS], device))
        out[begin : begin + block.shape[0]] = block.float().cpu().numpy()
    return out


def sparse_to_dense(rows: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """A CSR block densified on ``device`` (the sparse form is what crosses to a GPU)."""
    rows = rows.tocoo()
    indices = torch.from_numpy(np.vstack([rows.row, rows.col]).astype(np.int64))
    values = torch.from_numpy(rows.data.astype(np.float32, copy=False))
    sparse = torch.sparse_coo_tensor(indices, values, rows.shape, check_invariants=False)
    return sparse.to(device).to_dense()


#: training rows up to this size (float32, users x items) are densified once per fit instead of per batch
DENSE_TRAIN_BYTES = 1 << 30


def nonempty_rows(train: sp.spmatrix, binarize: bool) -> sp.csr_matrix:
    """The users' rows an autoencoder-style model trains on: the prepared matrix without empty rows (they
    carry no likelihood signal)."""
    rows = prepare_matrix(train, binarize)
    return rows[np.diff(rows.indptr) > 0]


class TrainingRows:
    """A fit's training rows served as dense batches (the autoencoder-style models: Mult-VAE, RecVAE,
    CFGAN): densified once on the device when they fit ``DENSE_TRAIN_BYTES`` (a batch is then a row gather),
    else each batch is densified from its sparse rows."""

    def __init__(self, rows: sp.csr_matrix, device: torch.device) -> None:
        self.rows, self.device = rows, device
        fits = rows.shape[0] * rows.shape[1] * 4 <= DENSE_TRAIN_BYTES
        self.dense = sparse_to_dense(rows, device) if fits else None

    def __len__(self) -> int:
        return self.rows.shape[0]

    def batches(self, order: np.ndarray, size: int) -> Iterator[torch.Tensor]:
        """The rows at positions ``order``, ``size`` at a time."""
        if self.dense is None:
            for begin in range(0, len(order), size):
                yield sparse_to_dense(self.rows[order[begin : begin + size]], self.device)
            return
        positions = torch.from_numpy(order).to(self.device)  # one copy per pass, not one per batch
        for begin in range(0, len(order), size):
            yield self.dense[positions[begin : begin + size]]


@contextlib.contextmanager
def frozen(part: nn.Module) -> Iterator[None]:
    """No weight gradients for ``part`` in the block: in a phase that steps another part's optimiser they
    would only be computed and discarded (its own optimiser sets them to None before its next step)."""
    part.requires_grad_(False)
    try:
        yield
    finally:
        part.requires_grad_(True)


class TorchRecommender(Recommender):
    """Base for PyTorch models; subclasses take ``epochs``, ``patience``, ``k``, ``seed``, ``device`` and
    ``num_threads`` (0 = auto: ``recpipeline.models.threads``).

    After ``fit``, ``epoch_seconds_`` holds each epoch's training seconds and ``validation_seconds_`` the
    validation time of all epochs together (timings only; not saved).
    """

    family = "neural"
    # k: the cut-off of the validation NDCG that early stopping watches
    run_settings = ("seed", "k")
    chooses_on_validation = True  # the epochs

    #: the parameters with an axis that follows the id maps: name -> (axis, blocks), the blocks along that
    #: axis in order, each "users", "items" or a fixed count of other rows (padding, mask tokens). A warm
    #: start carries each block's known rows over; every other parameter must keep its shape
    id_axes: ClassVar[dict[str, tuple[int, tuple[str | int, ...]]]] = {}

    module_: nn.Module
    device_: torch.device
    warm_started_: bool = False

    @abstractmethod
    def _build_module(self) -> nn.Module:
        """A freshly initialised module for ``n_users_`` / ``n_items_`` and the hyperparameters."""

    @abstractmethod
    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """``score`` proper; runs without autograd and with the configured threads."""

    def _initial_module(self, context: FitContext | None) -> nn.Module:
        """A freshly initialised module on the device (call inside ``_seeded``); with ``context.warm_start``
        the previous fit's parameters carried over, so training continues from them: users and items it did
        not know keep their fresh rows (the id maps are append-only, so a known index keeps its meaning)."""
        module = self._build_module().to(self.device_)
        previous = context.warm_start if context is not None else None
        self.warm_started_ = previous is not None
        if previous is not None:
            carry_over(self, previous, module)
        return module

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        with torch.no_grad(), self._threads():
            return self._score(users, history, context)

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Seed torch for the block (initialisation, dropout, sampling); the global RNG is restored after."""
        devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self._threads():
            torch.manual_seed(self.seed)
            yield

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """CPU threads for the block (``resolve_threads``: override, ``num_threads``, else auto); restored
        after. More threads than free cores is much slower: idle threads spin-wait for busy cores."""
        previous = torch.get_num_threads()
        wanted = resolve_threads(self.num_threads, previous)
        if wanted != previous:  # resizing torch's pool is not free: only when it changes
            torch.set_num_threads(wanted)
        try:
            yield
        finally:
            if wanted != previous:
                torch.set_num_threads(previous)

    def _validator(
        self, train: sp.spmatrix, validation: sp.spmatrix | None, context: ScoreContext | None = None
    ) -> Callable[[], float] | None:
        """Validation NDCG@k of the current weights (train as history); None with nothing to validate."""
        if validation is None or len(holdout_relevance(train, validation)[0]) == 0:
            return None
        return lambda: holdout_ndcg(self, train, validation, self.k, context)

    def _train_epochs(
        self, run_epoch: Callable[[int], str], validate: Callable[[], float] | None, log: Logger
    ) -> None:
        """Run up to ``epochs`` epochs; with ``validate`` keep the best epoch by validation NDCG@k.

        ``run_epoch(epoch)`` trains one epoch and returns a short summary for the log line (e.g. the loss).
        Training stops after ``patience`` epochs without improvement. Sets ``best_epoch_`` (1-based).
        """
        best_ndcg, best_state, best_epoch, stale = -np.inf, None, 0, 0
        self.epoch_seconds_, self.validation_seconds_ = [], 0.0
        # validation NDCG per epoch; a warm start's starting weights are epoch 0 (a measure, never kept as
        # the best epoch: the refit needs at least one)
        self.validation_curve_ = []
        if validate is not None and self.warm_started_:
            self.validation_curve_.append((0, validate()))
            log(f"{self.name} epoch 0 (warm start): val ndcg@{self.k} {self.validation_curve_[0][1]:.4f}")
        for epoch in range(1, self.epochs + 1):
            start = time.perf_counter()
            self.module_.train()
            summary = run_epoch(epoch)  # its summary reads the epoch's loss: the one sync per epoch
            self.module_.eval()
            self.epoch_seconds_.append(time.perf_counter() - start)
            # the line ends "<epoch>s (training <its training part>s)": `recpipeline bench` reads both
            timing = f"(training {self.epoch_seconds_[-1]:.2f}s)"
            if validate is None:
                best_epoch = epoch  # without validation the last epoch's weights are kept
                log(f"{self.name} epoch {epoch}: {summary} {time.perf_counter() - start:.1f}s {timing}")
                continue
            validation_start = time.perf_counter()
            ndcg = validate()
            self.validation_seconds_ += time.perf_counter() - validation_start
            self.validation_curve_.append((epoch, ndcg))
            log(
                f"{self.name} epoch {epoch}: {summary} val ndcg@{self.k} {ndcg:.4f} "
                f"{time.perf_counter() - start:.1f}s {timing}"
            )
            if ndcg > best_ndcg:
                best_ndcg, best_epoch, stale = ndcg, epoch, 0
                best_state = copy.deepcopy(self.module_.state_dict())
            else:
                stale += 1
                if stale >= self.patience:
                    log(f"{self.name}: early stop after epoch {epoch} (no gain for {self.patience} epochs)")
                    break
        if best_state is not None:
            self.module_.load_state_dict(best_state)
            log(f"{self.name}: kept epoch {best_epoch} (val ndcg@{self.k} {best_ndcg:.4f})")
        self.best_epoch_ = best_epoch
        self.module_.eval()

    def refit_params(self) -> dict[str, Any]:
        """Exactly the epochs early stopping kept (the refit has no validation to stop on)."""
        return {**self.get_params(), "epochs": max(int(self.best_epoch_), 1)}

    # -- persistence: safetensors, never pickle ---------------------------------------------------------

    def _learned_arrays(self) -> dict[str, torch.Tensor]:
        return {key: value.detach().cpu() for key, value in self.module_.state_dict().items()}

    def _save_state(self, directory: Path) -> None:
        state = {key: value.contiguous() for key, value in self._learned_arrays().items()}
        save_file(state, str(Path(directory) / STATE_FILE))

    def _load_state(self, directory: Path) -> None:
        """The module rebuilt from the recorded sizes, so each tensor's shape is checked against them."""
        path = Path(directory) / STATE_FILE
        try:
            state = load_file(str(path), device="cpu")
        except FileNotFoundError:
            raise ArtefactError(path, "missing") from None
        except (OSError, SafetensorError) as error:
            raise ArtefactError(path, f"unreadable ({error_summary(error)})") from error
        bad = non_finite(state)
        if bad is not None:
            raise ArtefactError(path, f"tensor {bad!r} holds NaN or inf")
        self.device_ = resolve_device(self.device)
        self.module_ = self._build_module()
        expected = {key: tuple(value.shape) for key, value in self.module_.state_dict().items()}
        found = {key: tuple(value.shape) for key, value in state.items()}
        if found != expected:
            key = min(set(found) ^ set(expected) or {k for k in found if found[k] != expected[k]})
            problem = (
                f"tensor {key!r} has shape {found[key]}, expected {expected[key]}"
                if key in found and key in expected
                else f"tensor {key!r} {'missing' if key in expected else 'not part of the model'}"
            )
            raise ArtefactError(
                path, f"{problem} for the recorded {self.n_users_} users x {self.n_items_} items"
            )
        self.module_.load_state_dict(state)
        self.module_.to(self.device_).eval()


def carry_over(model: TorchRecommender, previous: TorchRecommender, module: nn.Module) -> None:
    """Copy ``previous``'s parameters into ``module`` (``model``'s fresh one): whole where the shape is the
    same, block by block along ``id_axes`` where users or items were added. A ``ValueError`` when they do not
    fit (another architecture, fewer users or items than before)."""
    sizes = {"users": (previous.n_users_, model.n_users_), "items": (previous.n_items_, model.n_items_)}
    if any(old > new for old, new in sizes.values()):
        raise ValueError(
            f"{model.name}: cannot continue from a fit on {previous.n_users_} users x {previous.n_items_} "
            f"items with {model.n_users_} x {model.n_items_}: the id maps shrank"
        )
    old_state = dict(previous.module_.named_parameters())
    with torch.no_grad():
        for name, target in module.named_parameters():
            if name not in old_state:
                raise ValueError(f"{model.name}: the previous fit has no parameter {name!r}")
            source = old_state[name].detach().to(target.device)
            if name not in model.id_axes:
                if source.shape != target.shape:
                    raise ValueError(
                        f"{model.name}: parameter {name!r} has shape {tuple(source.shape)} in the previous "
                        f"fit, {tuple(target.shape)} now"
                    )
                target.copy_(source)
                continue
            axis, blocks = model.id_axes[name]
            old_rows, new_rows = _block_rows(blocks, sizes)
            if source.shape[axis] != len(old_rows) or target.shape[axis] != _axis_size(blocks, sizes):
                raise ValueError(f"{model.name}: parameter {name!r} does not follow its declared id axis")
            rows = source.index_select(axis, old_rows.to(source.device))
            target.index_copy_(axis, new_rows.to(target.device), rows)


def _axis_size(blocks: tuple[str | int, ...], sizes: dict[str, tuple[int, int]]) -> int:
    """The length of an id axis now."""
    return sum(sizes[block][1] if isinstance(block, str) else block for block in blocks)


def _block_rows(
    blocks: tuple[str | int, ...], sizes: dict[str, tuple[int, int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions along an id axis of every row the previous fit had, before and now."""
    old_rows, new_rows, old_start, new_start = [], [], 0, 0
    for block in blocks:
        old, new = (block, block) if isinstance(block, int) else sizes[block]
        old_rows.append(torch.arange(old_start, old_start + old))
        new_rows.append(torch.arange(new_start, new_start + old))
        old_start, new_start = old_start + old, new_start + new
    return torch.cat(old_rows), torch.cat(new_rows)
