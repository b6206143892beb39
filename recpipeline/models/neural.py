"""Shared PyTorch plumbing for the neural models: device choice, seeding, the fit, safetensors.

Subclasses build their ``nn.Module`` from hyperparameters and the matrix shape alone (``_build_module``), so
a saved model reloads from ``params.json`` + ``model.safetensors`` without pickle, and describe what trains
it (``training``: batches, losses, phases); the one step loop (``models.loop``) runs every fit.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from recpipeline.models.base import (
    ArtefactError,
    Logger,
    Recommender,
    error_summary,
    non_finite,
    prepare_matrix,
)
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.explaining import entry_rows
from recpipeline.models.loop import Batch, Steps, Training, train_epochs
from recpipeline.models.threads import resolve_threads

STATE_FILE = "model.safetensors"


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


#: history rows scored at once by an autoencoder-style model (and densified at once to explain them)
EVAL_BATCH_USERS = 1024


class SparseRows(NamedTuple):
    """A block of history rows by their non-zeros, on the device: entry ``e`` is ``values[e]`` at column
    ``items[e]`` of row ``owners[e]``; row ``r``'s entries start at ``offsets[r]``. What the history-row
    models (Mult-VAE, RecVAE, CFGAN) train and score on: their first layer reads the non-zeros (``linear``)
    instead of multiplying a catalogue-wide row that is almost all zeros; LightGCN multiplies by its
    adjacency's rows so. A tuple of tensors, so it is a batch of the step loop (``models.loop.Batch``) as it
    is."""

    offsets: torch.Tensor
    items: torch.Tensor
    values: torch.Tensor
    owners: torch.Tensor

    @classmethod
    def of(cls, rows: sp.csr_matrix, device: torch.device) -> SparseRows:
        """The CSR ``rows`` on ``device``."""
        indptr = rows.indptr.astype(np.int64)
        owners = np.repeat(np.arange(rows.shape[0], dtype=np.int64), np.diff(indptr))
        arrays = (indptr[:-1], rows.indices.astype(np.int64), rows.data.astype(np.float32), owners)
        return cls(*(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays))

    @property
    def n_rows(self) -> int:
        return self.offsets.shape[0]

    def times(self, matrix: torch.Tensor) -> torch.Tensor:
        """The rows times ``matrix`` (items x d), from the non-zeros: a weighted sum of ``matrix``'s rows."""
        return F.embedding_bag(
            self.items, matrix, self.offsets, mode="sum", per_sample_weights=self.values.to(matrix.dtype)
        )

    def row_sums(self, values: torch.Tensor | None = None) -> torch.Tensor:
        """Each row's sum of ``values`` (one per entry; default: the rows' own)."""
        values = self.values if values is None else values
        return values.new_zeros(self.n_rows).index_add_(0, self.owners, values)

    def at(self, dense: torch.Tensor) -> torch.Tensor:
        """``dense``'s entries (rows x items) at the rows' non-zeros, in entry order."""
        return dense[self.owners, self.items]

    def to_dense(self, n_items: int) -> torch.Tensor:
        """The rows as a dense (rows x ``n_items``) tensor (repeated entries summed, as scipy does)."""
        out = self.values.new_zeros((self.n_rows, n_items))
        return out.index_put_((self.owners, self.items), self.values, accumulate=True)


#: history rows as a dense (rows x items) tensor or by their non-zeros; the helpers below take either (the
#: dense form is what gradient x input differentiates)
Rows = torch.Tensor | SparseRows


def times(x: Rows, matrix: torch.Tensor) -> torch.Tensor:
    """``x @ matrix`` (matrix: items x d); from the non-zeros for sparse rows."""
    return x @ matrix if isinstance(x, torch.Tensor) else x.times(matrix)


def linear(layer: nn.Linear, x: Rows) -> torch.Tensor:
    """``layer(x)``; from the non-zeros for sparse rows (fast with the weight ``item_major``)."""
    return layer(x) if isinstance(x, torch.Tensor) else x.times(layer.weight.t()) + layer.bias


def item_major(layer: nn.Linear) -> nn.Linear:
    """``layer`` with its weight (out x items, name and shape unchanged) stored item by item, so the items'
    columns a sparse row gathers are contiguous: ``weight.t()`` is then a plain (items x out) table and
    its gradient one too (gathering columns of the usual layout costs a transposed copy of the whole
    matrix per step). Loading, saving, warm starts and the optimiser keep the layout."""
    layer.weight = nn.Parameter(layer.weight.detach().t().contiguous().t())
    return layer


def normalized(x: Rows) -> Rows:
    """Each row scaled to unit L2 norm (``F.normalize``)."""
    if isinstance(x, torch.Tensor):
        return F.normalize(x, dim=1)
    norms = x.row_sums(x.values.pow(2)).sqrt().clamp_min(1e-12)  # F.normalize's eps
    return x._replace(values=x.values / norms[x.owners])


def dropped_out(x: Rows, p: float) -> Rows:
    """Dropout with rate ``p`` (0: none); sparse rows drop among their non-zeros only (a dropped zero
    changes nothing), so the draws differ from the dense form's."""
    if p <= 0:
        return x
    if isinstance(x, torch.Tensor):
        return F.dropout(x, p=p, training=True)
    return x._replace(values=F.dropout(x.values, p=p, training=True))


def row_sums(x: Rows) -> torch.Tensor:
    """Each row's sum (RecVAE's item count |x_u| on binary rows)."""
    return x.sum(dim=1) if isinstance(x, torch.Tensor) else x.row_sums()


def multinomial_log_likelihood(logits: torch.Tensor, x: Rows) -> torch.Tensor:
    """Each row's ``sum_i x_i log softmax(logits)_i``; for sparse rows from the non-zeros, as
    ``sum_i x_i logits_i - |x| logsumexp(logits)`` (no rows x items log-softmax and its backward)."""
    if isinstance(x, torch.Tensor):
        return (F.log_softmax(logits, dim=1) * x).sum(dim=1)
    picked = x.row_sums(x.values * x.at(logits))
    return picked - x.row_sums() * torch.logsumexp(logits, dim=1)


def on_rows(loss: Callable[[nn.Module, SparseRows], torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A phase's loss (``models.loop.Phase``) over ``TrainingRows`` batches: ``loss(module, rows)`` given the
    batch's tensors unpacked."""
    return lambda module, *batch: loss(module, SparseRows(*batch))


def score_rows(
    rows: sp.csr_matrix, device: torch.device, forward: Callable[[SparseRows], torch.Tensor]
) -> np.ndarray:
    """``forward`` of the history ``rows`` (as ``SparseRows`` on ``device``, ``EVAL_BATCH_USERS`` at a time),
    as one float32 array (the models that score a whole history row: Mult-VAE, RecVAE, CFGAN)."""
    out = np.empty(rows.shape, dtype=np.float32)
    for begin in range(0, rows.shape[0], EVAL_BATCH_USERS):
        block = forward(SparseRows.of(rows[begin : begin + EVAL_BATCH_USERS], device))
        out[begin : begin + block.shape[0]] = block.float().cpu().numpy()
    return out


def sparse_to_dense(rows: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """A CSR block densified on ``device`` (the sparse form is what crosses to a GPU)."""
    return SparseRows.of(rows, device).to_dense(rows.shape[1])


def nonempty_rows(train: sp.spmatrix, binarize: bool) -> sp.csr_matrix:
    """The users' rows an autoencoder-style model trains on: the prepared matrix without empty rows (they
    carry no likelihood signal)."""
    rows = prepare_matrix(train, binarize)
    return rows[np.diff(rows.indptr) > 0]


class TrainingRows:
    """A fit's training rows served as ``SparseRows`` batches (the history-row models: Mult-VAE, RecVAE,
    CFGAN); only the non-zeros cross to the device."""

    def __init__(self, rows: sp.csr_matrix, device: torch.device) -> None:
        self.rows, self.device = rows, device

    def __len__(self) -> int:
        return self.rows.shape[0]

    def batches(self, order: np.ndarray, size: int) -> Iterator[SparseRows]:
        """The rows at positions ``order``, ``size`` at a time."""
        for begin in range(0, len(order), size):
            yield SparseRows.of(self.rows[order[begin : begin + size]], self.device)

    def shuffled(self, rng: np.random.Generator, size: int) -> Callable[[], Iterator[Batch]]:
        """A phase's batches (``models.loop.Phase``): each pass the rows in a fresh order drawn from ``rng``,
        ``size`` at a time (a batch is its ``SparseRows``, which the loss receives unpacked)."""
        return lambda: self.batches(rng.permutation(len(self)), size)


@dataclass(frozen=True)
class Pairs:
    """The observed (user, item) pairs of a binary matrix, with their keys ``user * n_items + item`` sorted:
    they answer "is (u, j) observed?" for a whole batch of drawn negatives at once."""

    users: np.ndarray
    items: np.ndarray
    keys: np.ndarray
    n_items: int

    @classmethod
    def of(cls, binary: sp.csr_matrix) -> Pairs:
        positives = binary.tocoo()
        users, items = positives.row.astype(np.int64), positives.col.astype(np.int64)
        return cls(users, items, np.sort(users * binary.shape[1] + items), binary.shape[1])

    def negatives(self, rng: np.random.Generator, users: np.ndarray, per_user: int) -> np.ndarray:
        """``(len(users), per_user)`` items drawn uniformly from ``rng`` for ``users``; the draws that hit an
        observed pair are redrawn once (a second hit stays: rare, and cheaper than rejection to the end)."""
        items = rng.integers(0, self.n_items, (len(users), per_user))
        clash = np.isin(users[:, None] * self.n_items + items, self.keys)
        items[clash] = rng.integers(0, self.n_items, int(clash.sum()))
        return items


class TorchRecommender(Recommender):
    """Base for PyTorch models; subclasses take ``epochs``, ``patience``, ``k``, ``seed``, ``device`` and
    ``num_threads`` (0 = auto: ``recpipeline.models.threads``), and implement ``_build_module``,
    ``training`` and ``_score``: the fit (``_fit``, the loop of ``models.loop``) is shared.

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
    def training(self, train: sp.csr_matrix, context: FitContext, log: Logger) -> Training:
        """What trains the module on ``train``: its batches, losses and phases (``models.loop.Training``).

        Called after the shape and ``device_`` are set and before the fit's seed: it prepares the data and
        must draw nothing from torch's random generator (its shuffles and samples draw from its own,
        seeded, numpy generators as the epochs run). ``bench.bound`` calls it on a fitted model too."""

    @abstractmethod
    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """``score`` proper; runs without autograd and with the configured threads."""

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        """Build the module (seeded; a warm start's weights carried over) and run ``training``'s epochs in
        the step loop, early-stopped on ``context.validate`` where there is ``validation``."""
        self.device_ = resolve_device(self.device)
        training = self.training(train, context, log)
        with self._seeded():
            module = self.module_ = self._initial_module(context)
            if training.prepare is not None:
                training.prepare(module)
            validate = self._validator(validation, context, training.score_context)
            train_epochs(self, Steps(training, module, self.device_), validate, log)
            if training.finish is not None:
                training.finish()

    def fresh_module(self) -> nn.Module:
        """A freshly initialised module on the device, seeded as a fit's first (no warm start)."""
        with self._seeded():
            return self._build_module().to(self.device_)

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
        with torch.no_grad(), self.threads():
            return self._score(users, history, context)

    def _attributed_input(self, x: torch.Tensor) -> torch.Tensor:
        """The dense history rows as the network's first layer reads them, which gradient × input attributes
        over; the rows themselves unless a model transforms them first."""
        return x

    def _dense_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """Scores of ``_attributed_input``'s output, differentiable in it: what the models declaring
        ``explains = "gradient×input"`` implement."""
        raise NotImplementedError(f"{self.name} scores no dense history row")

    def history_contributions(
        self, users: np.ndarray, history: sp.csr_matrix, items: np.ndarray, context: ScoreContext | None
    ) -> np.ndarray:
        """Gradient × input for the models that declare it: ``x_ui * d score_j / d x_ui`` at every history
        entry, x the ``_attributed_input`` (one backward pass per target column and block of users); others:
        the base's default."""
        if self.explains != "gradient×input":
            return super().history_contributions(users, history, items, context)
        rows = prepare_matrix(history, self.binarize)
        owner = entry_rows(rows)
        out = np.full((rows.nnz, items.shape[1]), np.nan)
        with torch.enable_grad(), self.threads():
            for begin in range(0, rows.shape[0], EVAL_BATCH_USERS):
                block = rows[begin : begin + EVAL_BATCH_USERS]
                x = self._attributed_input(sparse_to_dense(block, self.device_)).requires_grad_(True)
                targets = items[begin : begin + EVAL_BATCH_USERS]
                picked = (
                    self._dense_scores(x)
                    .float()
                    .gather(1, torch.from_numpy(np.maximum(targets, 0)).to(self.device_))
                )
                entries = slice(rows.indptr[begin], rows.indptr[begin + block.shape[0]])
                local = torch.from_numpy(owner[entries] - begin).to(self.device_)
                cols = torch.from_numpy(rows.indices[entries].astype(np.int64)).to(self.device_)
                for column in range(targets.shape[1]):  # the list positions (K), not users or events
                    # rows are scored independently, so the gradient of the sum is each row's own
                    (grad,) = torch.autograd.grad(
                        picked[:, column].sum(), x, retain_graph=column < targets.shape[1] - 1
                    )
                    terms = (grad * x.detach())[local, cols].double().cpu().numpy()
                    valid = targets[owner[entries] - begin, column] >= 0
                    out[entries, column] = np.where(valid, terms, np.nan)
        return out

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Seed torch for the block (initialisation, dropout, sampling); the global RNG is restored after."""
        devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self.threads():
            torch.manual_seed(self.seed)
            yield

    @contextlib.contextmanager
    def threads(self) -> Iterator[None]:
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
        self,
        validation: sp.spmatrix | None,
        context: FitContext | None,
        score_context: ScoreContext | None = None,
    ) -> Callable[[], float] | None:
        """Validation NDCG@k of the current weights (train as history) through the scorer the fit was handed;
        None with nothing to validate."""
        if validation is None or context is None or context.validate is None:
            return None
        validate = context.validate
        return lambda: validate(self, self.k, score_context)

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
