"""The one interface every recommender implements (fit / score / recommend / similar_items / save / load).

Models work on integer indices only: a user x item CSR matrix of interaction weights, with the shape fixed by
the persisted id maps (items first seen after training are all-zero columns). Mapping back to string ids is
the caller's job. Side information (item / user features, time-ordered events) comes in an optional
``FitContext`` / ``ScoreContext`` (``recpipeline.models.context``); models that do not need it ignore it.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.explaining import leave_one_out, top_reasons
from recpipeline.models.settings import ModelSettings, validate_settings

Logger = Callable[[str], None]

#: the most users scored at once in recommend()
SCORE_CHUNK_USERS = 2048
#: cells of one dense (users x items) float32 score block: 64 MB, so a large catalogue scores fewer users at a
#: time (the top-K of a block needs about 4x its size again)
SCORE_BLOCK_CELLS = 2**24


#: the families a registered model can belong to (lists read from files are family ``external``); ``private``:
#: trained with a differential-privacy guarantee (docs/privacy.md)
MODEL_FAMILIES = (
    "baseline",
    "neighbourhood",
    "factorisation",
    "linear",
    "content",
    "hybrid",
    "private",
    "neural",
)


#: the file of the learned arrays of the numpy models (torch models: ``neural.STATE_FILE``)
NPZ_FILE = "state.npz"
PARAMS_FILE = "params.json"
#: how a zip archive starts: a local file header, or the end record of an archive without members
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


#: what to do about a fit that ended in NaN / inf
NON_FINITE_REMEDY = (
    "the likely cause is ratings or values out of range in the input (huge or negative): narrow the "
    "value range (`cleaning.value_range`) so they are quarantined as bad_value"
)


class ArtefactError(ValueError):
    """A saved model that cannot be used (unreadable file, shapes off the recorded id maps, NaN / inf) or a
    fitted model that must not be saved; the message names the file (or the model) and what to do."""

    def __init__(
        self, path: Path | str, problem: str, remedy: str = "rematerialize the model asset to refit it"
    ) -> None:
        super().__init__(f"{path}: {problem}; {remedy}")
        self.path, self.problem, self.remedy = str(path), problem, remedy


def error_summary(error: BaseException) -> str:
    """``Type: first line of the message``, so a wrapped library error keeps the message one line."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def read_params(directory: Path, known: Collection[str] = ()) -> dict[str, Any]:
    """``params.json`` of a saved model, checked for the fields ``load`` needs (``ArtefactError`` if not);
    with ``known``, the model name must be one of them."""
    path = Path(directory) / PARAMS_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtefactError(path, "missing") from None
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ArtefactError(path, f"unreadable ({error_summary(error)})") from error
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), str):
        raise ArtefactError(path, "not a model's params.json (no 'model' name)")
    if known and meta["model"] not in known:
        raise ArtefactError(
            path, f"names an unknown model {meta['model']!r}; known: {', '.join(sorted(known))}"
        )
    if not isinstance(meta.get("params"), dict):
        raise ArtefactError(path, "no 'params' object")
    for key in ("n_users", "n_items"):
        # the id-map sizes every array shape is checked against (bool is an int to Python)
        if type(meta.get(key)) is not int or meta[key] < 0:
            raise ArtefactError(path, f"{key!r} is {meta.get(key)!r}, not a count")
    return meta


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an npz file, read now; a missing or damaged file raises ``ArtefactError``."""
    try:
        with open(path, "rb") as file:
            magic = file.read(4)
    except FileNotFoundError:
        raise ArtefactError(path, "missing") from None
    except OSError as error:
        raise ArtefactError(path, f"unreadable ({error_summary(error)})") from error
    # checked here, as numpy takes anything else for a pickle (and suggests loading it unsafely)
    if magic not in ZIP_MAGIC:
        raise ArtefactError(path, "not an npz archive (overwritten or damaged)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    # a truncated archive fails in any of these, some only when a member is read
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ArtefactError(path, f"unreadable ({error_summary(error)})") from error


def non_finite(arrays: Mapping[str, Any]) -> str | None:
    """The name of the first floating-point array holding NaN or inf (CPU torch tensors do too), or None."""
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            return name
    return None


def score_chunk_rows(n_items: int) -> int:
    """Users (or items) per dense score block over ``n_items`` columns."""
    return int(np.clip(SCORE_BLOCK_CELLS // max(n_items, 1), 64, SCORE_CHUNK_USERS))


def no_log(_: str) -> None:
    """The default ``log`` of ``fit`` and friends: progress messages are dropped."""
    return None


@dataclass(frozen=True)
class RunSettings:
    """Run-level settings handed to every model that declares them in ``run_settings``.

    ``None`` leaves a setting to the model's own default (a hybrid passes only its seed to its CF part).
    """

    seed: int | None = None
    k: int | None = None

    def apply(self, model_class: type[Recommender], params: dict[str, Any] | None) -> dict[str, Any]:
        """``params`` plus each setting ``model_class`` declares that ``params`` does not set already."""
        settings = {name: getattr(self, name) for name in model_class.run_settings}
        return {**{name: value for name, value in settings.items() if value is not None}, **(params or {})}


class Recommender(ABC):
    """Base class: settings declared in ``Settings``, learned state in attributes with a trailing underscore.

    Subclasses declare their ``Settings`` and implement ``_fit`` and ``score``; ``fit`` (recording the shape
    and id-map version) and ``recommend`` (masking of already-seen items and top-K selection in bounded user
    chunks) are shared.
    """

    #: registry name; set by each subclass
    name: ClassVar[str] = ""
    #: the model's settings: name, type, default, allowed values and help of each (``models.settings``)
    Settings: ClassVar[type[ModelSettings]] = ModelSettings
    #: the model's family, set by each subclass: one of MODEL_FAMILIES; the default significance baseline
    #: is the best model outside ``neural`` and ``private``
    family: ClassVar[str] = ""
    #: the RunSettings fields (``seed``, ``k``) the model takes as hyperparameters of the same name
    run_settings: ClassVar[tuple[str, ...]] = ()
    #: True where ``score`` gives useful rankings for users without any history (segment popularity, hybrid);
    #: callers serve such users from a popularity list for every other model
    serves_cold_users: ClassVar[bool] = False
    #: the interaction columns the model reads from the event tables of its contexts (``train_events``,
    #: ``validation_events``, ``history_events``) — sequence models: the time order; callers may read only
    #: these plus the matrix columns, and leave the events out of a ScoreContext when this is empty
    event_columns: ClassVar[tuple[str, ...]] = ()
    #: True where ``fit`` chooses something on validation (early stopping): a refit on train + validation
    #: then needs that fit on train first; for any other untuned model the fit on train would be thrown away
    chooses_on_validation: ClassVar[bool] = False
    #: hyperparameter -> candidate values for the validation search (``recpipeline.fitting.tuning``)
    search_space: ClassVar[dict[str, list[Any]]] = {}
    #: learned attribute -> its shape, checked on load: ``n_users`` / ``n_items`` are the recorded id-map
    #: sizes, any other name a dimension all arrays naming it share (user and item factors: ``factors``)
    state_shapes: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: how ``explain`` attributes a score to the history items (``models.explaining.METHODS``: exact,
    #: fold-in, gradient×input, leave-one-out); None: the model does not explain its recommendations
    explains: ClassVar[str | None] = None

    n_users_: int
    n_items_: int
    id_map_version_: str | None = None
    #: where the fit comes from in a backtest (``fitting.warm_start.Provenance``); None outside one
    provenance_: dict[str, Any] | None = None

    def get_params(self) -> dict[str, Any]:
        """Every setting as given to ``__init__``, the defaults filled in (JSON-serialisable)."""
        return dict(self._params)

    def refit_params(self) -> dict[str, Any]:
        """The hyperparameters to refit with on train + validation once this fit chose them: the same ones;
        models that stop early on validation fix what they chose (``TorchRecommender``: the epochs)."""
        return self.get_params()

    def check_params(self) -> None:
        """Raise a ValueError naming the model, the setting and its allowed values for a hyperparameter that
        only its surroundings can judge: an encoder's files, an installed package, a nested model's
        parameters. ``__init__`` checks values alone (``Settings``), since it also runs when a saved model is
        loaded (where those need not be present); ``fitting.checks.validate_models`` calls this before any
        step."""
        return  # most models: nothing beyond their declared settings

    def __init__(self, **params: Any) -> None:
        """Settings by name, checked against ``Settings`` (``SettingError`` naming the model, the setting and
        what it allows); sklearn style, each becomes a plain attribute of the same name."""
        self._params = validate_settings(self.name, self.Settings, params)
        for key, value in self._params.items():
            setattr(self, key, value)

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        *,
        context: FitContext | None = None,
        log: Logger = no_log,
    ) -> Self:
        """Learn from ``train`` (users x items weights). ``validation`` (same shape) is for early stopping;
        ``context`` carries side information (features, time-ordered events) for the models that use it.
        Records the shape and id-map version every fitted model carries, then learns in ``_fit``.
        """
        self._start_fit(train, context)
        self._fit(train, validation, context if context is not None else FitContext(), log)
        return self

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        """``fit`` proper: set the learned attributes (``n_users_`` / ``n_items_`` are set already). Not
        abstract: a test double may override ``fit`` itself."""
        raise NotImplementedError(f"{self.name} implements neither fit nor _fit")

    @abstractmethod
    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        """Dense float32 scores, shape ``(len(users), n_items_)``.

        ``history`` holds the rows of ``users`` (same order): everything known about them at prediction time.
        Models that can fold in history (item-based, autoencoders, sequence models) use it; models with
        learned user factors may ignore it. ``context`` may hold the events behind ``history`` (sequence
        models read their time order from it) and user features.
        """

    def recommend(
        self, users: np.ndarray, history: sp.csr_matrix, k: int, context: ScoreContext | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores per user, best first; items in the user's history are excluded.

        ``history`` is the full users x items matrix (all users); rows are picked by ``users``. ``context``
        is handed to ``score`` unchanged.
        Returns ``(items, scores)`` of shape ``(len(users), k')`` with ``k' = min(k, n_items_)``; where a user
        has fewer than ``k'`` unseen items the tail holds item ``-1`` with score ``-inf``.
        """
        self._check_history(history)
        users = np.asarray(users, dtype=np.int64)
        k = min(k, self.n_items_)
        out_items = np.empty((len(users), k), dtype=np.int32)
        out_scores = np.empty((len(users), k), dtype=np.float32)
        history = history.tocsr()

        def store_top_k(start: int, scores: np.ndarray, rows: sp.csr_matrix) -> None:
            out_items[start : start + len(scores)], out_scores[start : start + len(scores)] = top_k_excluding(
                scores, rows, k
            )

        # the top-K of one chunk runs in a worker while the next chunk is scored (numpy releases the GIL)
        with ThreadPoolExecutor(max_workers=1) as worker:
            pending: Future | None = None
            rows_per_chunk = score_chunk_rows(self.n_items_)
            for start in range(0, len(users), rows_per_chunk):
                chunk = users[start : start + rows_per_chunk]
                rows = history[chunk]
                scores = np.asarray(self.score(chunk, rows, context), dtype=np.float32)
                if pending is not None:
                    pending.result()  # at most two score blocks in memory
                pending = worker.submit(store_top_k, start, scores, rows)
            if pending is not None:
                pending.result()
        return out_items, out_scores

    def _check_history(self, history: sp.spmatrix) -> None:
        if history.shape[1] != self.n_items_:
            raise ValueError(
                f"{self.name}: history has {history.shape[1]} items but the model was fitted on "
                f"{self.n_items_}; refit it on the current id map"
            )

    def explain(
        self,
        users: np.ndarray,
        history: sp.csr_matrix,
        items: np.ndarray,
        n: int,
        context: ScoreContext | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Why each of ``items`` (``(len(users), targets)``, -1: none) scores as it does for its user: the
        ``n`` history items contributing most, by the model's method (``explains``).

        ``history`` holds the rows of ``users`` (as in ``score``). Returns ``(reasons, contributions)`` of
        shape ``(len(users), targets, n)``: item indices, strongest first (-1 where there are fewer), and
        their contributions (NaN there); see ``models.explaining.top_reasons``.
        """
        if self.explains is None:
            raise NotImplementedError(f"{self.name} does not explain its recommendations")
        self._check_history(history)
        history = prepare_matrix(history)
        items = np.asarray(items, dtype=np.int64)
        return top_reasons(history, self.history_contributions(users, history, items, context), n)

    def history_contributions(
        self, users: np.ndarray, history: sp.csr_matrix, items: np.ndarray, context: ScoreContext | None
    ) -> np.ndarray:
        """``(history.nnz, items.shape[1])``: each history entry's contribution to each target's score (NaN
        for target -1). The default: leave-one-out through ``score``; models whose score is a sum over the
        history override it with the exact terms."""
        return leave_one_out(self.score, users, history, items, context)

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` most similar items per item (itself excluded). Models with item vectors override."""
        raise NotImplementedError(f"{self.name} has no notion of item similarity")

    def _start_fit(self, train: sp.spmatrix, context: FitContext | None) -> None:
        """Record the shape and id-map version every fitted model carries (``fit`` does, before ``_fit``)."""
        self.n_users_, self.n_items_ = train.shape
        self.id_map_version_ = context.id_map_version if context is not None else None

    # -- persistence: npz/safetensors + JSON, never pickle -------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write ``params.json`` and the learned arrays (``_save_state``) into ``directory``.

        A learned state with NaN or inf is refused (``ArtefactError``) before anything is written.
        """
        bad = non_finite(self._learned_arrays())
        if bad is not None:
            raise ArtefactError(
                f"model {self.name!r}",
                f"the fitted {bad} holds NaN or inf, so it is not saved",
                NON_FINITE_REMEDY,
            )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "model": self.name,
            "params": self.get_params(),
            "n_users": self.n_users_,
            "n_items": self.n_items_,
            "id_map_version": self.id_map_version_,
        }
        if self.provenance_ is not None:  # only backtest fits carry one: other artefacts stay as they were
            meta["provenance"] = self.provenance_
        (directory / "params.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        self._save_state(directory)

    @classmethod
    def load(cls, directory: Path) -> Recommender:
        """The model saved in ``directory``; every file is checked (readable, shapes against the recorded
        ``n_users`` / ``n_items`` and each other, values finite) and any fault raises ``ArtefactError``."""
        directory = Path(directory)
        meta = read_params(directory)
        if meta["model"] != cls.name:
            raise ArtefactError(directory / PARAMS_FILE, f"holds model {meta['model']!r}, not {cls.name!r}")
        try:
            model = cls(**meta["params"])
        except (TypeError, ValueError) as error:
            raise ArtefactError(directory / PARAMS_FILE, f"bad params ({error_summary(error)})") from error
        model.n_users_, model.n_items_ = meta["n_users"], meta["n_items"]
        model.id_map_version_ = meta.get("id_map_version")
        provenance = meta.get("provenance")
        if provenance is not None and not isinstance(provenance, dict):
            raise ArtefactError(directory / PARAMS_FILE, "'provenance' is not an object")
        model.provenance_ = provenance
        model._load_state(directory)
        return model

    def _save_state(self, directory: Path) -> None:
        arrays = self._state_arrays()
        np.savez(directory / NPZ_FILE, **arrays)

    def _load_state(self, directory: Path) -> None:
        path = directory / NPZ_FILE
        arrays = read_npz(path)
        bad = non_finite(arrays)
        if bad is not None:
            raise ArtefactError(path, f"array {bad!r} holds NaN or inf")
        try:
            self._set_state_arrays(arrays)
        except KeyError as error:
            raise ArtefactError(path, f"array {error} missing") from error
        except (ValueError, TypeError) as error:  # e.g. a sparse matrix whose index arrays do not fit
            raise ArtefactError(path, f"arrays do not fit together ({error_summary(error)})") from error
        self._check_shapes(path)

    def _check_shapes(self, path: Path) -> None:
        """Each ``state_shapes`` attribute against the recorded id-map sizes and the dimensions it shares."""
        dims = {"n_users": self.n_users_, "n_items": self.n_items_}
        for attribute, names in self.state_shapes.items():
            shape = getattr(self, attribute).shape
            expected = [dims.setdefault(name, size) for name, size in zip(names, shape, strict=False)]
            if len(shape) != len(names) or tuple(expected) != shape:
                wanted = ", ".join(f"{name}={dims.get(name, '?')}" for name in names)
                raise ArtefactError(
                    path,
                    f"{attribute.rstrip('_')} has shape {shape}, expected ({wanted}) from the recorded "
                    f"{self.n_users_} users x {self.n_items_} items",
                )

    def _learned_arrays(self) -> Mapping[str, Any]:
        """The learned state as saved (checked for NaN / inf before saving)."""
        return self._state_arrays()

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Learned arrays to persist; models with torch modules override ``_save_state`` instead."""
        raise NotImplementedError

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


def prepare_matrix(matrix: sp.spmatrix, binarize: bool = False) -> sp.csr_matrix:
    """Float32 CSR copy, duplicates summed, explicit zeros dropped; entries set to 1 if ``binarize``."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    if binarize:
        matrix.data[:] = 1.0
    return matrix


def top_k_excluding(scores: np.ndarray, exclude: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``k`` of a dense score block after setting the ``exclude`` entries to ``-inf``.

    Ties are broken by the lower item index so results are deterministic. Excluded or missing slots come back
    as item ``-1`` with score ``-inf``. NaN scores count as ``-inf`` (they carry no ranking information).
    """
    # fmax copies to float32 and maps NaN to -inf in one pass (fmax ignores a NaN operand)
    scores = np.fmax(np.asarray(scores), np.float32(-np.inf), dtype=np.float32)
    exclude = exclude.tocoo()
    scores[exclude.row, exclude.col] = -np.inf
    n_rows, n_items = scores.shape
    k = max(0, min(k, n_items))
    if k == 0:
        part = np.empty((n_rows, 0), dtype=np.int64)
    elif k == n_items:
        part = np.broadcast_to(np.arange(n_items), scores.shape).copy()
    else:
        # select the k smallest of the negated scores: selecting at the top end degrades several-fold when
        # most scores tie (item-kNN rows are mostly 0), the negation costs one cheap pass
        part = np.argpartition(np.negative(scores), k - 1, axis=1)[:, :k]
        # argpartition keeps an arbitrary subset of the items tied at the k-th score; only rows with more
        # items at or above that score than k slots are ambiguous, and only those are redone by the rule
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        ambiguous = np.flatnonzero(np.count_nonzero(scores >= kth, axis=1) > k)
        if len(ambiguous):
            part[ambiguous] = _top_k_lowest_index_ties(scores[ambiguous], kth[ambiguous], k)
    part_scores = np.take_along_axis(scores, part, axis=1)
    # lexsort: primary key score (descending), secondary item index (ascending)
    order = np.lexsort((part, -part_scores), axis=1)
    items = np.take_along_axis(part, order, axis=1).astype(np.int32)
    top = np.take_along_axis(part_scores, order, axis=1)
    items[~np.isfinite(top)] = -1
    return items, top


def _top_k_lowest_index_ties(scores: np.ndarray, kth: np.ndarray, k: int) -> np.ndarray:
    """Every item strictly above the ``kth`` score plus the lowest-indexed items tied at it, ``k`` per row."""
    above = scores > kth
    tied = scores == kth
    need = k - above.sum(axis=1, keepdims=True)
    keep = above | (tied & (np.cumsum(tied, axis=1) <= need))
    return np.nonzero(keep)[1].reshape(len(scores), k)
