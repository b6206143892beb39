"""The session protocol (``split.kind: sessions``): test sessions replayed event by event, next-item metrics.

Each test session (``session_idx``; its events in time order, consecutive repeats of one item collapsed)
of ``n`` items gives ``n - 1`` positions: the prefix of the first ``p`` items is what the model sees, the
target is item ``p + 1`` (``evaluation.session_targets: next``) or every item from ``p + 1`` on (``rest``).
Each (session, position) is a pseudo-user, index ``n_users + row`` (beyond every fitted user, so models with
user factors fold the history in rather than reading a stored user), scored through the ordinary
``Recommender.score`` with a history row and ``history_events``: the visitor's train / validation events
before the session if they are logged in (the last ``MAX_HISTORY_EVENTS``), then the prefix (its last
``MAX_HISTORY_EVENTS``). Sequence models read the prefix from ``history_events`` (the prefix events keep the
session's ``session_idx``, so "the current session" is the row's latest session). Items already in the
history may be recommended unless ``evaluation.session_recommend_seen`` is false.

A model whose ``score`` fails for such a pseudo-user cannot serve a prefix: it is reported
(``prefix_support``), never scored. Metrics (``docs/metrics.md``) average over every (session, position); the
table's ``n_users`` counts positions. Segments: ``all``, ``prefix_1``, ``prefix_2_4``, ``prefix_5_plus`` (by
prefix length), ``logged_in`` / ``anonymous`` (by the visitor). Significance is paired by session: each
session's mean over its positions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.contracts import ANONYMOUS_USER_PREFIX, SESSION_COLUMN, headline_k
from recpipeline.evaluation.external import ExternalDataError, read_table
from recpipeline.evaluation.protocol import category_codes, one_hot, typed_metrics
from recpipeline.models.base import Recommender, score_chunk_rows, top_k_excluding
from recpipeline.models.context import ScoreContext
from recpipeline.scoring.metrics import count_items, evaluate_subsets, index_relevance, per_user_metrics

#: the most events of each part of a pseudo-user's history (earlier visits; the prefix): bounds the work of
#: long sessions and long-lived accounts (a sequence model reads at most its max_len anyway)
MAX_HISTORY_EVENTS = 100
#: segments by prefix length: name -> (shortest, longest) prefix
PREFIX_SEGMENTS = {"prefix_1": (1, 1), "prefix_2_4": (2, 4), "prefix_5_plus": (5, np.iinfo(np.int64).max)}
VISITOR_SEGMENTS = ("logged_in", "anonymous")
SESSION_SEGMENTS = ("all", *PREFIX_SEGMENTS, *VISITOR_SEGMENTS)
#: prefix_support values: scored from the prefix; scored, but the list does not depend on it; not scored
FOLDS_IN, IGNORES_PREFIX, CANNOT_SERVE = "folds_in", "ignores_prefix", "cannot_serve"
#: the columns of a session position table (``SessionPositions.table``, ``recpipeline evaluate``'s lists)
POSITION_COLUMNS = ("user_idx", SESSION_COLUMN, "position", "visitor_idx", "anonymous")
_EVENT_COLUMNS = ["user_idx", "item_idx", "weight", "timestamp", SESSION_COLUMN]


@dataclass(frozen=True)
class SessionPositions:
    """Every (test session, position) as a pseudo-user, with what the models see and what is relevant."""

    #: one row per position: user_idx (the pseudo-user), session_idx, position (prefix length),
    #: visitor_idx (the session's user_idx), anonymous (bool)
    table: pd.DataFrame
    history: sp.csr_matrix  # row r: pseudo-user table.user_idx[r]'s history (earlier visits + prefix)
    #: the events behind ``history``: user_idx = the pseudo-user, sorted by pseudo-user then time
    events: pd.DataFrame
    targets: pd.DataFrame  # user_idx (pseudo-user), item_idx: the relevant items of each position

    @property
    def first_user(self) -> int:
        return int(self.table["user_idx"].iloc[0]) if len(self.table) else 0


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ``starts[i] .. starts[i] + lengths[i] - 1``."""
    total = int(lengths.sum())
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + np.arange(total) - offsets


def _collapsed_sessions(test: pd.DataFrame) -> pd.DataFrame:
    """Test events in session-then-time order, consecutive repeats of one item in a session dropped."""
    ordered = test.sort_values([SESSION_COLUMN, "timestamp"], kind="stable")
    session = ordered[SESSION_COLUMN].to_numpy(np.int64)
    item = ordered["item_idx"].to_numpy(np.int64)
    keep = np.r_[True, (session[1:] != session[:-1]) | (item[1:] != item[:-1])]
    return ordered[keep].reset_index(drop=True)


def session_positions(
    known: pd.DataFrame,
    test: pd.DataFrame,
    n_users: int,
    n_items: int,
    anonymous_users: np.ndarray,
    targets: str = "next",
) -> SessionPositions:
    """The pseudo-users of the test sessions (module docstring); ``known``: train + validation events;
    ``anonymous_users``: the user_idx of anonymous visitors; pseudo-users are numbered from ``n_users``."""
    steps = _collapsed_sessions(test)
    session = steps[SESSION_COLUMN].to_numpy(np.int64)
    starts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    lengths = np.diff(np.r_[starts, len(steps)])
    n_positions = np.maximum(lengths - 1, 0)
    # position rows: per session, prefix lengths 1 .. n - 1
    row_session = np.repeat(np.arange(len(starts)), n_positions)
    position = _ranges(np.ones(len(starts), np.int64), n_positions)
    first = starts[row_session]
    visitor = steps["user_idx"].to_numpy(np.int64)[first]
    pseudo = n_users + np.arange(len(position), dtype=np.int64)
    table = pd.DataFrame(
        {
            "user_idx": pseudo,
            SESSION_COLUMN: session[first],
            "position": position,
            "visitor_idx": visitor,
            "anonymous": np.isin(visitor, anonymous_users),
        }
    )

    # the prefix events of every position (the last MAX_HISTORY_EVENTS)
    prefix_length = np.minimum(position, MAX_HISTORY_EVENTS)
    prefix_rows = _ranges(first + position - prefix_length, prefix_length)
    prefix = steps[_EVENT_COLUMNS].iloc[prefix_rows].assign(user_idx=np.repeat(pseudo, prefix_length))

    # earlier visits of logged-in visitors: their known events before the session starts
    earlier = known.sort_values(["user_idx", "timestamp"], kind="stable")[_EVENT_COLUMNS]
    known_user = earlier["user_idx"].to_numpy(np.int64)
    known_time = _nanoseconds(earlier["timestamp"])
    session_start = _nanoseconds(steps["timestamp"])[first]
    # per position: the visitor's rows [lo, hi) strictly before the session start (rows sorted by user, time)
    lo = np.searchsorted(known_user, visitor, side="left")
    user_end = np.searchsorted(known_user, visitor, side="right")
    hi = lo + _count_before(known_time, lo, user_end, session_start)
    hi = np.where(table["anonymous"].to_numpy(), lo, hi)
    earlier_length = np.minimum(hi - lo, MAX_HISTORY_EVENTS)
    earlier_rows = _ranges(hi - earlier_length, earlier_length)
    visits = earlier.iloc[earlier_rows].assign(user_idx=np.repeat(pseudo, earlier_length))

    events = pd.concat([visits, prefix], ignore_index=True)
    events = events.sort_values(["user_idx", "timestamp"], kind="stable").reset_index(drop=True)
    history = sp.csr_matrix(
        (
            events["weight"].to_numpy(np.float32),
            (events["user_idx"].to_numpy(np.int64) - n_users, events["item_idx"].to_numpy(np.int64)),
        ),
        shape=(len(pseudo), n_items),
        dtype=np.float32,
    )
    history.sum_duplicates()

    item = steps["item_idx"].to_numpy(np.int64)
    if targets == "next":
        target_rows, target_users = first + position, pseudo
    else:  # rest: every item after the prefix
        rest = lengths[row_session] - position
        target_rows = _ranges(first + position, rest)
        target_users = np.repeat(pseudo, rest)
    relevant = pd.DataFrame({"user_idx": target_users, "item_idx": item[target_rows]}).drop_duplicates()
    return SessionPositions(table, history, events, relevant.reset_index(drop=True))


def _nanoseconds(timestamps: pd.Series) -> np.ndarray:
    """Int64 nanoseconds since the epoch (UTC); tz-aware stamps would otherwise box into objects."""
    utc = pd.to_datetime(timestamps, utc=True).dt.tz_localize(None)
    return utc.to_numpy("datetime64[ns]").view(np.int64)


def _count_before(times: np.ndarray, lo: np.ndarray, hi: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Per i, how many of ``times[lo[i]:hi[i]]`` (ascending) are before ``bound[i]``: a binary search per
    row, vectorised as ``log2(max length)`` halving steps."""
    left, right = lo.copy(), hi.copy()
    while True:
        open_ = left < right
        if not open_.any():
            return left - lo
        middle = (left + right) // 2
        before = np.zeros(len(lo), dtype=bool)
        before[open_] = times[middle[open_]] < bound[open_]
        left = np.where(open_ & before, middle + 1, left)
        right = np.where(open_ & ~before, middle, right)


def prefix_support(model: Recommender, positions: SessionPositions) -> str:
    """Whether ``model`` can score the pseudo-users: ``cannot_serve`` if ``score`` fails for two of them,
    ``ignores_prefix`` if their one-item histories (the two items most frequent in the histories) get the
    same scores, else ``folds_in``."""
    events = positions.events
    counts = np.bincount(events["item_idx"].to_numpy(np.int64), minlength=positions.history.shape[1])
    items = np.argsort(-counts, kind="stable")[:2]
    users = positions.first_user + np.arange(len(items), dtype=np.int64)
    probe = events.iloc[: len(items)].assign(user_idx=users, item_idx=items, weight=np.float32(1.0))
    history = sp.csr_matrix(
        (np.ones(len(items), np.float32), (np.arange(len(items)), items)),
        shape=(len(items), positions.history.shape[1]),
    )
    context = ScoreContext(history_events=probe if model.event_columns else None)
    try:
        scores = np.asarray(model.score(users, history, context))
    except (IndexError, ValueError, RuntimeError, KeyError):
        return CANNOT_SERVE
    if len(items) < 2:
        return FOLDS_IN  # one item only: nothing to tell prefixes apart by
    return IGNORES_PREFIX if np.allclose(scores[0], scores[1], equal_nan=True) else FOLDS_IN


def positions_context(model: Recommender, positions: SessionPositions, users: np.ndarray) -> ScoreContext:
    """The score context of pseudo-users ``users`` (ascending): their events only, for a model that reads
    events."""
    if not model.event_columns:
        return ScoreContext()
    column = positions.events["user_idx"].to_numpy(np.int64)
    a, b = np.searchsorted(column, [users.min(), users.max() + 1])
    return ScoreContext(history_events=positions.events.iloc[a:b])


def session_lists(
    model: Recommender, name: str, positions: SessionPositions, k: int, recommend_seen: bool = True
) -> pd.DataFrame:
    """Top-``k`` items per position (columns model, user_idx, item_idx, rank, score), scored in chunks;
    the history's items are left out unless ``recommend_seen``."""
    users = positions.table["user_idx"].to_numpy(np.int64)
    k = min(k, positions.history.shape[1])
    items = np.empty((len(users), k), dtype=np.int32)
    scores = np.empty((len(users), k), dtype=np.float32)
    empty = sp.csr_matrix(positions.history.shape, dtype=np.float32)
    exclude = empty if recommend_seen else positions.history
    step = score_chunk_rows(positions.history.shape[1])
    for begin in range(0, len(users), step):
        chunk = slice(begin, begin + step)
        block = model.score(
            users[chunk], positions.history[chunk], positions_context(model, positions, users[chunk])
        )
        items[chunk], scores[chunk] = top_k_excluding(np.asarray(block), exclude[chunk], k)
    valid = items.ravel() >= 0
    return pd.DataFrame(
        {
            "model": name,
            "user_idx": np.repeat(users, k)[valid],
            "item_idx": items.ravel()[valid],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), len(users))[valid],
            "score": scores.ravel()[valid],
        }
    )


def segment_users(positions: SessionPositions) -> dict[str, np.ndarray | None]:
    """Segment name -> its pseudo-users (None: all)."""
    table = positions.table
    length = table["position"].to_numpy(np.int64)
    users = table["user_idx"].to_numpy(np.int64)
    anonymous = table["anonymous"].to_numpy(bool)
    out: dict[str, np.ndarray | None] = {"all": None}
    out.update({name: users[(length >= lo) & (length <= hi)] for name, (lo, hi) in PREFIX_SEGMENTS.items()})
    out.update({"logged_in": users[~anonymous], "anonymous": users[anonymous]})
    return out


@dataclass(frozen=True)
class SessionEvaluation:
    metrics: pd.DataFrame  # METRICS_COLUMNS
    per_session: pd.DataFrame  # model, user_idx (= session_idx), user_segment, served_by, metric@k
    prefix_support: dict[str, str]  # model -> FOLDS_IN | IGNORES_PREFIX | CANNOT_SERVE
    n_positions: int
    n_sessions: int


def evaluate_session_lists(
    lists: Mapping[str, pd.DataFrame],
    positions: SessionPositions,
    train: pd.DataFrame,
    base: np.ndarray,
    features: sp.csr_matrix | None,
    ks: Sequence[int],
    min_segment_users: int,
    popularity_rows: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics table in METRICS_COLUMNS, per-session values) of each model's position lists;
    ``popularity_rows``: item_idx of every train and validation row (arp, aplt; None: train's rows)."""
    relevance = index_relevance(positions.targets)
    counts = count_items(train, base, popularity_rows)
    segments = segment_users(positions)
    table = positions.table.set_index("user_idx")
    parts, per_session = [], []
    for model, recs in lists.items():
        evaluated = evaluate_subsets(recs, relevance, counts, ks, features, list(segments.values()))
        parts += [
            table_part.assign(model=model, segment=segment)
            for segment, table_part in zip(segments, evaluated, strict=True)
            if segment == "all" or table_part["n_users"].iloc[0] > 0
        ]
        values = per_user_metrics(recs, relevance, ks, item_features=features)
        session = table[SESSION_COLUMN].reindex(values["user_idx"]).to_numpy()
        means = values.drop(columns="user_idx").groupby(session, sort=True).mean()
        anonymous = table.groupby(SESSION_COLUMN)["anonymous"].first().reindex(means.index).to_numpy(bool)
        means.insert(0, "served_by", model)
        means.insert(0, "user_segment", np.where(anonymous, "anonymous", "logged_in"))
        means.insert(0, "user_idx", means.index.to_numpy(np.int64))
        means.insert(0, "model", model)
        per_session.append(means.reset_index(drop=True))
    metrics = typed_metrics(pd.concat(parts, ignore_index=True), min_segment_users)
    return metrics, pd.concat(per_session, ignore_index=True)


def evaluate_sessions(
    models: Mapping[str, Recommender],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    item_catalog: pd.DataFrame | None,
    item_id_map: pd.DataFrame,
    user_id_map: pd.DataFrame | None,
    ks: Sequence[int],
    targets: str = "next",
    recommend_seen: bool = True,
    min_segment_users: int = 30,
) -> SessionEvaluation:
    """Replay the test sessions for every model that can serve a prefix (module docstring)."""
    known = pd.concat([train, validation], ignore_index=True)
    fitted = [model.n_users_ for model in models.values()]
    n_users = max([len(user_id_map) if user_id_map is not None else 0, *fitted])
    positions = session_positions(
        known, test, n_users, len(item_id_map), anonymous_user_idx(user_id_map), targets
    )
    if positions.table.empty:
        raise ValueError("no test session has two steps: nothing to replay; widen split.test_days")
    support = {name: prefix_support(model, positions) for name, model in models.items()}
    lists = {
        name: session_lists(model, name, positions, headline_k(ks), recommend_seen)
        for name, model in models.items()
        if support[name] != CANNOT_SERVE
    }
    features = None
    if item_catalog is not None:
        features = one_hot(category_codes(item_catalog, item_id_map))
    known_items = known["item_idx"].to_numpy(np.int64)
    metrics, per_session = evaluate_session_lists(
        lists, positions, train, np.unique(known_items), features, ks, min_segment_users, known_items
    )
    return SessionEvaluation(
        metrics=metrics,
        per_session=per_session,
        prefix_support=support,
        n_positions=len(positions.table),
        n_sessions=int(positions.table[SESSION_COLUMN].nunique()),
    )


def anonymous_user_idx(user_id_map: pd.DataFrame | None) -> np.ndarray:
    """The user_idx of anonymous visitors (ids made from a session id by the source mapping)."""
    if user_id_map is None:
        return np.empty(0, dtype=np.int64)
    anonymous = user_id_map["id"].astype(str).str.startswith(ANONYMOUS_USER_PREFIX).to_numpy(bool)
    return np.sort(user_id_map["idx"].to_numpy(np.int64)[anonymous])


def _with_timestamps(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``frame`` with its timestamp column parsed (UTC); an unparseable value names the file and row."""
    stamps = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if bad.size:
        raise ExternalDataError(
            f"{path}: column 'timestamp' row {bad[0]} holds {str(frame['timestamp'].iloc[bad[0]])[:40]!r}, "
            f"not an ISO 8601 time ({bad.size} such row(s))"
        )
    return frame.assign(timestamp=stamps)


def _positions(values: pd.Series, path: Path, column: str) -> pd.Series:
    """A list's ``position`` or ``rank``: whole numbers from 1 (1 = the first prefix item / the best)."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero((numbers.isna() | (numbers < 1) | (numbers != np.round(numbers))).to_numpy())
    if bad.size:
        raise ExternalDataError(
            f"{path}: column {column!r} row {bad[0]} holds {str(values.iloc[bad[0]])[:40]!r}, not a whole "
            f"number from 1 ({bad.size} such row(s))"
        )
    return numbers.astype(np.int64)


def evaluate_session_files(
    train: Path,
    test: Path,
    recommendations: Path,
    ks: Sequence[int],
    targets: str = "next",
    validation: Path | None = None,
) -> pd.DataFrame:
    """The metrics table of top-K lists per session position (``recpipeline evaluate --sessions``).

    ``train`` (and ``validation``): user_id, item_id, timestamp. ``test``: session_id, item_id, timestamp,
    optionally user_id (without it every session is its own anonymous visitor). ``recommendations``:
    session_id, position, item_id, rank — position is the prefix length after consecutive repeats collapse
    (1 .. steps - 1), as ``session_positions`` numbers them; rows of other positions are not scored.
    """
    known = pd.concat(
        [
            _with_timestamps(read_table(path, ("user_id", "item_id", "timestamp"), what), path)
            for path, what in _known(train, validation)
        ],
        ignore_index=True,
    )
    sessions = _with_timestamps(read_table(test, ("session_id", "item_id", "timestamp"), "test"), test)
    lists = read_table(recommendations, ("session_id", "position", "item_id", "rank"), "recommendations")
    for column in ("position", "rank"):
        lists[column] = _positions(lists[column], recommendations, column)
    sessions["session_id"] = sessions["session_id"].astype(str)
    lists["session_id"] = lists["session_id"].astype(str)
    if "user_id" not in sessions:
        sessions["user_id"] = ANONYMOUS_USER_PREFIX + sessions["session_id"]
    users = pd.Index(pd.unique(pd.concat([known["user_id"], sessions["user_id"]])))
    items = pd.Index(pd.unique(pd.concat([known["item_id"], sessions["item_id"], lists["item_id"]])))
    session_codes = pd.Index(pd.unique(sessions["session_id"]))

    def encoded(frame: pd.DataFrame, session: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "user_idx": users.get_indexer(frame["user_id"]),
                "item_idx": items.get_indexer(frame["item_id"]),
                "weight": np.float32(1.0),
                "timestamp": frame["timestamp"],
                SESSION_COLUMN: session,
            }
        )

    known_events = encoded(known, np.full(len(known), -1, dtype=np.int64))
    test_events = encoded(sessions, session_codes.get_indexer(sessions["session_id"]).astype(np.int64))
    anonymous = np.flatnonzero(users.str.startswith(ANONYMOUS_USER_PREFIX))
    positions = session_positions(known_events, test_events, len(users), len(items), anonymous, targets)
    key = positions.table[[SESSION_COLUMN, "position", "user_idx"]]
    recs = pd.DataFrame(
        {
            SESSION_COLUMN: session_codes.get_indexer(lists["session_id"]).astype(np.int64),
            "position": lists["position"],
            "item_idx": items.get_indexer(lists["item_id"]),
            "rank": lists["rank"],
        }
    ).merge(key, on=[SESSION_COLUMN, "position"])
    base = np.unique(known_events["item_idx"].to_numpy(np.int64))
    name = Path(recommendations).stem
    metrics, _ = evaluate_session_lists({name: recs}, positions, known_events, base, None, ks, 0)
    return metrics


def _known(train: Path, validation: Path | None) -> list[tuple[Path, str]]:
    return [(train, "train"), *([(validation, "validation")] if validation is not None else [])]
