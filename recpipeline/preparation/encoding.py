"""Label encoding of ids and event weighting: cleaned events -> interactions with int32 indices.

Id maps are append-only: an id keeps its index across runs, new ids get the next free indices (in order of
first appearance), so models, recommendations and metrics from different nights stay comparable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.contracts import SESSION_COLUMN

ID_MAP_COLUMNS = ("id", "idx")
INTERACTION_COLUMNS = ("user_idx", "item_idx", "weight", "timestamp", "event_type", SESSION_COLUMN)
#: the interaction columns behind a users x items matrix
MATRIX_COLUMNS = ("user_idx", "item_idx", "weight")
#: the cleaned-event columns encoding reads
ENCODED_EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value", "session_id")
#: the default of ``source.session_gap_minutes``: a user's events further apart start a new session
SESSION_GAP_MINUTES = 30


def empty_id_map() -> pd.DataFrame:
    return pd.DataFrame({"id": pd.Series(dtype=str), "idx": pd.Series(dtype=np.int32)})


def extend_id_map(id_map: pd.DataFrame | None, ids: pd.Series) -> pd.DataFrame:
    """``id_map`` plus any ids not yet in it, numbered on from its largest index in order of appearance."""
    id_map = empty_id_map() if id_map is None else id_map
    if len(id_map) and not np.array_equal(np.sort(id_map["idx"].to_numpy()), np.arange(len(id_map))):
        raise ValueError("id map is corrupt: indices are not 0..n-1")
    new = pd.unique(ids[~ids.isin(id_map["id"])].astype(str))
    added = pd.DataFrame({"id": new, "idx": np.arange(len(id_map), len(id_map) + len(new), dtype=np.int32)})
    return pd.concat([id_map, added], ignore_index=True).astype({"id": str, "idx": np.int32})


def encode_interactions(
    events: pd.DataFrame,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    event_weights: Mapping[str, float],
    session_gap_minutes: float = SESSION_GAP_MINUTES,
) -> pd.DataFrame:
    """Cleaned events -> ``user_idx``, ``item_idx`` (int32), ``weight`` (float32), timestamp, event_type,
    ``session_idx`` (int64, ``session_codes``).

    The weight is the event type's configured weight; ratings are multiplied by their value. ``event_type``
    stays categorical; every string operation runs once per distinct value, not once per event.
    """
    user_idx = _lookup(events["user_id"], user_map, "user_id")
    item_idx = _lookup(events["item_id"], item_map, "item_id")
    event_type = events["event_type"].astype("category")
    types = event_type.cat.categories.astype(str)
    codes = event_type.cat.codes.to_numpy()
    type_weight = np.append(np.asarray(types.map(lambda t: event_weights.get(t, 0.0)), dtype=np.float64), 0.0)
    weight = type_weight[codes]  # code -1 (missing type) picks the appended 0
    rated = np.isin(codes, np.flatnonzero(types == "rating"))
    weight[rated] *= events["value"].to_numpy(dtype=np.float64)[rated]
    return pd.DataFrame(
        {
            "user_idx": user_idx,
            "item_idx": item_idx,
            "weight": weight.astype(np.float32),
            "timestamp": events["timestamp"].array,  # to_numpy() would box tz-aware stamps as objects
            "event_type": event_type.array,
            SESSION_COLUMN: session_codes(
                user_idx,
                events["timestamp"],
                events.get("session_id"),
                session_gap_minutes,
            ),
        }
    )


def session_codes(
    user_idx: np.ndarray,
    timestamps: pd.Series,
    session_ids: pd.Series | None,
    gap_minutes: float = SESSION_GAP_MINUTES,
) -> np.ndarray:
    """A dense session code per event (int64), numbered in order of each session's first event.

    An event with a ``session_id`` belongs to that session; the others are cut per user: a new session
    starts at a user's first such event and after every pause longer than ``gap_minutes``.
    """
    n = len(user_idx)
    stamps = pd.to_datetime(timestamps, utc=True).dt.tz_convert(None).to_numpy("datetime64[us]")
    micros = stamps.astype(np.int64)
    has_id = np.zeros(n, dtype=bool) if session_ids is None else session_ids.notna().to_numpy(bool)
    raw = np.empty(n, dtype=np.int64)
    n_logged = 0
    if has_id.any():
        logged, _ = pd.factorize(session_ids[has_id].astype(str))
        raw[has_id] = logged
        n_logged = int(logged.max()) + 1
    cut = np.flatnonzero(~has_id)
    if len(cut):
        users = np.asarray(user_idx, dtype=np.int64)[cut]
        order = np.lexsort((micros[cut], users))
        users, times = users[order], micros[cut][order]
        starts = np.r_[True, (users[1:] != users[:-1]) | (np.diff(times) > gap_minutes * 60e6)]
        raw[cut[order]] = n_logged + np.cumsum(starts) - 1
    # renumber by first event (time, then row order), so codes read in time order
    in_time = raw[np.argsort(micros, kind="stable")]
    first_seen = pd.unique(in_time)
    dense = np.empty(int(raw.max(initial=-1)) + 1, dtype=np.int64)
    dense[first_seen] = np.arange(len(first_seen))
    return dense[raw]


class EncodedDays(NamedTuple):
    interactions: pd.DataFrame
    user_id_map: pd.DataFrame
    item_id_map: pd.DataFrame


def encode_days(
    cleaned_days: Mapping[str, pd.DataFrame],
    user_id_map: pd.DataFrame | None,
    item_id_map: pd.DataFrame | None,
    event_weights: Mapping[str, float],
    also_known: Sequence[pd.DataFrame] = (),
    session_gap_minutes: float = SESSION_GAP_MINUTES,
) -> EncodedDays:
    """The cleaned days, in day order, as interactions; the previous id maps (``None`` on the first run)
    extended by the ids of those days and of ``also_known`` (e.g. a predefined split's files, which may hold
    ids the daily events lack, and whose events must be encodable with the same maps)."""
    events = pd.concat([cleaned_days[day] for day in sorted(cleaned_days)], ignore_index=True)
    known = [events, *also_known]
    users = extend_id_map(user_id_map, pd.concat([frame["user_id"] for frame in known]))
    items = extend_id_map(item_id_map, pd.concat([frame["item_id"] for frame in known]))
    encoded = encode_interactions(events, users, items, event_weights, session_gap_minutes)
    return EncodedDays(encoded, users, items)


def interaction_matrix(interactions: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    """Users x items CSR matrix of summed weights (duplicates add up)."""
    matrix = sp.csr_matrix(
        (
            interactions["weight"].to_numpy(dtype=np.float32),
            (interactions["user_idx"].to_numpy(), interactions["item_idx"].to_numpy()),
        ),
        shape=(n_users, n_items),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    return matrix


def stored_entries(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Whether each ``(rows[j], cols[j])`` is a stored entry of ``matrix`` (whatever its value).

    In canonical CSR (sorted indices, no duplicates) the keys ``row * n_cols + col`` of the stored entries
    ascend, so a binary search answers every pair without a hash table or a dense mask.
    """
    if not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
    n_rows, n_cols = matrix.shape
    stored = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(matrix.indptr)) * n_cols + matrix.indices
    keys = np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(cols, dtype=np.int64)
    at = np.minimum(np.searchsorted(stored, keys), max(len(stored) - 1, 0))
    return stored[at] == keys if len(stored) else np.zeros(len(keys), dtype=bool)


def _lookup(ids: pd.Series, id_map: pd.DataFrame, column: str) -> np.ndarray:
    # factorize first: the string hash lookup then runs over the distinct ids only
    codes, uniques = pd.factorize(ids, use_na_sentinel=False)
    positions = pd.Index(id_map["id"]).get_indexer(pd.Index(uniques).astype(str))
    if (positions < 0).any():
        missing = uniques[np.flatnonzero(positions < 0)[0]]
        raise ValueError(f"{column} {missing!r} is not in the id map; extend the map before encoding")
    return id_map["idx"].to_numpy(dtype=np.int32)[positions][codes]
