"""Side information for models beyond the interaction matrix: item / user features and time-ordered events.

Everything here is aligned to the matrix indices (row ``i`` of ``item_features`` describes ``item_idx == i``),
so models never see string ids. Every field is optional; a model that needs one raises a clear error when it
is missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from recpipeline.models.base import Recommender

#: the event columns sequence models read (any further interaction columns are ignored)
EVENT_COLUMNS = ("user_idx", "item_idx", "timestamp")


@dataclass(frozen=True)
class FitContext:
    """What ``fit`` may use besides the train / validation matrices.

    ``item_features``: one row per ``item_idx`` (``n_items`` rows, default RangeIndex), e.g. title, category,
    brand, price; items absent from the catalogue are all-missing rows. ``user_features``: one row per
    ``user_idx``, attribute columns (e.g. age_band, region). ``train_events`` / ``validation_events``: the
    interaction tables behind the matrices (``user_idx``, ``item_idx``, ``weight``, ``timestamp``, ...), for
    models that need the order of events. ``id_map_version``: a digest of the id maps the indices refer to,
    stored with the model. ``warm_start``: a fitted model of the same kind and settings whose learned weights
    this fit continues from (torch models); the caller has checked that it may (``fitting.warm_start``).
    ``validate``: the validation NDCG@k of a model's current weights — ``validate(model, k, score_context)``,
    on the validation matrix given to ``fit`` with its train matrix as history — for models that stop early;
    the fitting stage hands it in (``fitting.holdout.validation_scorer``); None: nothing to validate.
    """

    item_features: pd.DataFrame | None = None
    user_features: pd.DataFrame | None = None
    train_events: pd.DataFrame | None = None
    validation_events: pd.DataFrame | None = None
    id_map_version: str | None = None
    warm_start: Recommender | None = None
    validate: Callable[[Recommender, int, ScoreContext | None], float] | None = None


@dataclass(frozen=True)
class ScoreContext:
    """What ``score`` / ``recommend`` may use besides the history matrix.

    ``history_events``: the events behind the history rows (at least ``user_idx``, ``item_idx``,
    ``timestamp``; any row order, models sort by time), needed by sequence models. ``user_features``: one row
    per ``user_idx``, for models that serve users without history by their attributes.
    """

    history_events: pd.DataFrame | None = None
    user_features: pd.DataFrame | None = None


def align_rows(table: pd.DataFrame, id_map: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """``table`` (keyed by ``id_column``) reordered to one row per index of ``id_map`` (``id``, ``idx``).

    Ids of the map missing from the table give all-missing rows; table rows not in the map are dropped; of
    repeated ids the last row wins. The id column is kept, the index is ``0..len(id_map)-1``.
    """
    ids = np.empty(len(id_map), dtype=object)
    ids[id_map["idx"].to_numpy()] = id_map["id"].to_numpy()
    latest = table.drop_duplicates(id_column, keep="last")
    keyed = latest.set_index(latest[id_column].astype(str).rename(None))
    return keyed.reindex(pd.Index(ids.astype(str))).reset_index(drop=True)


def id_map_version(user_id_map: pd.DataFrame, item_id_map: pd.DataFrame) -> str:
    """A short digest of both id maps: model indices only mean something with the maps they came from."""
    digest = hashlib.sha256()
    for id_map in (user_id_map, item_id_map):
        ordered = id_map.sort_values("idx")[["id", "idx"]]
        digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def time_ordered(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` sorted by user then time; ties keep their given order (a stable sort)."""
    return events.sort_values(["user_idx", "timestamp"], kind="stable")
