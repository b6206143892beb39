"""Offline ranking metrics for top-K recommendation lists (binary relevance), fully vectorised.

Definitions are fixed here so that numbers match across tools. For each *evaluated* user u (a user with at
least one relevant test item): ``T_u`` = distinct relevant test items, ``L_u`` = the top-K list ordered by
rank, ``rel_u(j)`` = 1 if the item at (1-based) position j is in ``T_u``.

* precision@K = hits / K (K even when the list is shorter), recall@K = hits / |T_u|, hit_rate@K = [hits > 0]
* ndcg@K = DCG / IDCG with DCG = sum_j rel_u(j) / log2(j + 1) and IDCG over min(|T_u|, K) ideal hits
* map@K = (1 / min(|T_u|, K)) sum_j precision@j * rel_u(j); mrr@K = 1 / position of the first hit (0 if none)
* item base B = the items known before the test cut (train or validation; train alone when no validation
  is given), the same for every model
* catalog_coverage@K = |union_u L_u ∩ B| / |B| (<= 1); recommendations outside B are reported apart
  (``exposure_share``)
* gini@K = Gini index of recommendation counts over the items of B (0 counts included)
* novelty@K = mean over recommended (u, item) pairs of -log2(n_i / N) (n_i = training rows of item i, 1 when
  unseen; N = training rows)
* diversity@K = 1 - mean pairwise cosine similarity of item feature vectors within L_u (users with >= 2 items)
* popularity p_i = rows of item i before the test cut (train + validation; 0 for an item outside B)
* arp@K = mean over users with a filled slot of the mean p_i of their top-K slots (average recommended
  popularity)
* aplt@K = mean over users with a filled slot of the share of their top-K slots holding a long-tail item:
  items of B sorted by p_i descending, the short head is every item whose p_i is at least that of the item
  at which the cumulative share of rows first reaches HEAD_SHARE (80%; ties at the boundary join the head),
  the long tail every other item (items outside B included)

Conventions (documented because they affect numbers):

* Lists are ordered by ``rank`` with ties broken by ``item_idx`` (independent of row order); the position in
  that order is the rank used for @K, so ranks need not start at 1 or be contiguous.
* Missing slots (short or absent lists) count as misses. A repeated item inside one list keeps its slot but
  only its first occurrence can be a hit (so hits <= |T_u|); it does count twice for exposure metrics.
* Beyond-accuracy figures (coverage, gini, novelty) use the lists of the evaluated users only.
* For diversity, items without a feature row (index beyond the matrix) or with an all-zero row act as zero
  vectors (cosine 0 with everything) but still count as list members.
* Diversity is not available (NaN) when the item features use fewer than two columns: no features, or
  one-hot categories of a catalogue without categories (every item in one ``<unknown>`` category). Every
  list would score 0 by construction, a number that measures nothing (``describes_items``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

ACCURACY_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
BEYOND_ACCURACY_METRICS: tuple[str, ...] = ("catalog_coverage", "gini", "novelty", "arp", "aplt")
METRIC_NAMES: tuple[str, ...] = (*ACCURACY_METRICS, *BEYOND_ACCURACY_METRICS, "diversity")
PER_USER_METRICS: tuple[str, ...] = (*ACCURACY_METRICS, "diversity")
#: the short head holds this share of the rows before the test cut (Pareto's 80/20): aplt's long tail
HEAD_SHARE = 0.8

ItemFeatures = sp.spmatrix | sp.sparray | np.ndarray


@dataclass(frozen=True)
class _Prepared:
    """Evaluated users and their ranked lists, in integer arrays."""

    ks: list[int]
    eval_users: np.ndarray  # sorted distinct user_idx of evaluated users
    n_rel: np.ndarray  # |T_u| per evaluated user (>= 1)
    u: np.ndarray  # position of the row's user in eval_users; rows sorted by (u, pos)
    item: np.ndarray
    pos: np.ndarray  # 0-based position within the user's list, < max(ks)
    hit: np.ndarray  # bool: item in T_u and first occurrence in the list


def _normalise_ks(ks: Sequence[int]) -> list[int]:
    out = sorted({int(k) for k in ks})
    if not out:
        raise ValueError("ks must contain at least one K")
    if out[0] < 1:
        raise ValueError(f"every K must be >= 1, got {out[0]}")
    return out


def _int64(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = frame[column].to_numpy(dtype=np.int64)
    if len(values) and values.min() < 0:
        raise ValueError(f"{column} must be non-negative")
    return values


def _dense(top: int, n: int) -> bool:
    """Whether a lookup table over ids 0..top is affordable next to ``n`` input values."""
    return top <= max(4 * n, 1 << 20)


def _index_in(sorted_keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in ``sorted_keys`` (distinct, ascending, non-negative), -1 where absent."""
    if not len(sorted_keys) or not len(values):
        return np.full(len(values), -1, dtype=np.int64)
    top = int(max(sorted_keys[-1], values.max()))
    if _dense(top, len(values) + len(sorted_keys)):  # dense ids: O(n) lookup table
        table = np.full(top + 1, -1, dtype=np.int64)
        table[sorted_keys] = np.arange(len(sorted_keys), dtype=np.int64)
        return table[values]
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == values, at, -1).astype(np.int64)


def isin_ids(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in ``members`` (non-negative integer ids or composite keys), O(n).

    A boolean table over the ids when their range is small; else a hash lookup (np.isin sorts both arrays,
    far slower at millions of rows, and a table over a huge key space such as users x items would not fit
    in memory).
    """
    values = np.asarray(values, dtype=np.int64)
    members = np.asarray(members, dtype=np.int64)
    if not len(values) or not len(members):
        return np.zeros(len(values), dtype=bool)
    top = int(max(values.max(), members.max()))
    if _dense(top, len(values) + len(members)):
        table = np.zeros(top + 1, dtype=bool)
        table[members] = True
        return table[values]
    if len(members) > len(values):
        # Series.isin hashes its argument: hash the fewer values and keep only the members among them
        members = members[pd.Series(members).isin(values).to_numpy()]
    return pd.Series(values).isin(members).to_numpy()


@dataclass(frozen=True)
class Relevance:
    """A relevance table in integer arrays, indexed once and reused for every list evaluated against it."""

    users: np.ndarray  # sorted distinct user_idx: the evaluated users
    n_rel: np.ndarray  # |T_u| per evaluated user (>= 1)
    keys: np.ndarray  # sorted distinct u * width + item_idx (u: position in users)
    width: int  # > every relevant item_idx


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique hashes first, several times slower on many distinct int64 keys)."""
    ordered = np.sort(values)
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first]


def index_relevance(test: pd.DataFrame) -> Relevance:
    """``test`` (user_idx, item_idx; duplicates allowed) as a Relevance."""
    test_user = _int64(test, "user_idx")
    test_item = _int64(test, "item_idx")
    users = _distinct(test_user)
    width = int(test_item.max(initial=0)) + 1
    keys = _distinct(_index_in(users, test_user) * width + test_item)
    return Relevance(users, np.bincount(keys // width, minlength=len(users)), keys, width)


def _indexed(test: pd.DataFrame | Relevance) -> Relevance:
    return test if isinstance(test, Relevance) else index_relevance(test)


@dataclass(frozen=True)
class ItemCounts:
    """The item base (coverage, gini) and training rows per item (novelty), counted once per run."""

    base: np.ndarray  # sorted distinct item_idx known before the test cut
    items: np.ndarray  # sorted distinct training item_idx
    counts: np.ndarray  # training rows of each
    n_rows: int
    popularity: np.ndarray  # rows before the test cut (train + validation) of each item of base (arp)
    tail: np.ndarray  # bool per item of base: in the long tail (aplt; ``long_tail``)


def _counted(item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``item`` and how often each occurs."""
    if _dense(int(item.max(initial=0)), len(item)):  # a bincount instead of sorting millions of rows
        counts = np.bincount(item)
        items = np.flatnonzero(counts)
        return items, counts[items]
    return np.unique(item, return_counts=True)


def long_tail(popularity: np.ndarray, head_share: float = HEAD_SHARE) -> np.ndarray:
    """Whether each item is in the long tail, by its ``popularity`` (rows before the test cut).

    Items sorted by popularity, most popular first: the short head is every item at least as popular as the
    one at which the cumulative share of rows first reaches ``head_share`` (items tied with it join the
    head, so the head may hold more than that share); the long tail is every other item. Every item is in
    the tail when there are no rows.
    """
    popularity = np.asarray(popularity, dtype=np.float64)
    total = popularity.sum()
    if not len(popularity) or total <= 0:
        return np.ones(len(popularity), dtype=bool)
    ordered = np.sort(popularity)[::-1]
    reached = int(np.searchsorted(np.cumsum(ordered), head_share * total * (1 - 1e-12)))
    threshold = ordered[min(reached, len(ordered) - 1)]
    return popularity < threshold


def count_items(
    train: pd.DataFrame, known_items: np.ndarray | None = None, popularity_rows: np.ndarray | None = None
) -> ItemCounts:
    """The ItemCounts of ``train`` (item_idx column); the item base is train's items and ``known_items``
    (item_idx also known before the test cut, e.g. validation's; duplicates allowed). ``popularity_rows``:
    the item_idx of every row before the test cut (train and validation; each row counts) that arp and the
    long tail count; None: train's rows."""
    item = _int64(train, "item_idx")
    items, counts = _counted(item)
    base = items if known_items is None else _distinct(np.concatenate([items, known_items.astype(np.int64)]))
    if popularity_rows is None:
        popular, times = items, counts
    else:
        popular, times = _counted(np.asarray(popularity_rows, dtype=np.int64))
    popularity = np.zeros(len(base), dtype=np.int64)
    at = _index_in(base, popular)
    popularity[at[at >= 0]] = times[at >= 0]
    return ItemCounts(base, items, counts, len(item), popularity, long_tail(popularity))


def _sort_order(u: np.ndarray, rank: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Row order by (u, rank, item); one int64 argsort when the composite key fits, else a lexsort."""
    if len(u) and np.all(np.isfinite(rank)) and np.all(rank == np.floor(rank)):
        r = (rank - rank.min()).astype(np.int64)
        n_r, n_i = int(r.max()) + 1, int(item.max()) + 1
        if (int(u.max()) + 1) * n_r * n_i < 2**62:
            # rows with equal keys are identical, so an unstable sort is fine
            return np.argsort((u * n_r + r) * n_i + item)
    return np.lexsort((item, rank, u))


def _prepare(recommendations: pd.DataFrame, relevance: Relevance, ks: Sequence[int]) -> _Prepared:
    ks_list = _normalise_ks(ks)
    max_k = ks_list[-1]

    u = _index_in(relevance.users, _int64(recommendations, "user_idx"))
    found = u >= 0
    u = u[found]
    item = _int64(recommendations, "item_idx")[found]
    rank = recommendations["rank"].to_numpy(dtype=np.float64, na_value=np.nan)[found]
    # order by (user, rank, item); skip the sort when rows already come strictly ordered (the usual case)
    same_user = u[1:] == u[:-1]
    if not np.all((u[1:] > u[:-1]) | (same_user & (rank[1:] > rank[:-1]))):
        order = _sort_order(u, rank, item)
        u, item = u[order], item[order]
        same_user = u[1:] == u[:-1]

    # 0-based position within each user's sorted list
    n = len(u)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = ~same_user
    starts = np.flatnonzero(new_group)
    pos = np.arange(n, dtype=np.int64) - starts[np.cumsum(new_group) - 1] if n else np.zeros(0, np.int64)
    keep = pos < max_k
    u, item, pos = u[keep], item[keep], pos[keep]

    # membership of (user, item) in the relevance keys; an item beyond their width is never relevant
    keys = u * relevance.width + item
    hit_rows = np.flatnonzero((item < relevance.width) & (_index_in(relevance.keys, keys) >= 0))
    # a repeated item can only be a hit at its first occurrence in the list
    hit_rows = hit_rows[np.unique(keys[hit_rows], return_index=True)[1]]
    hit = np.zeros(len(keys), dtype=bool)
    hit[hit_rows] = True
    return _Prepared(ks_list, relevance.users, relevance.n_rel, u, item, pos, hit)


def _normalised_features(item_features: ItemFeatures) -> tuple[sp.csr_array | np.ndarray, np.ndarray]:
    """Row-normalised features (zero rows stay zero) and each row's squared norm after normalisation."""
    if sp.issparse(item_features):
        feats = sp.csr_array(item_features, dtype=np.float64)
        norms = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1), dtype=np.float64).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        normed = sp.csr_array(sp.diags_array(inv) @ feats)
        sq = np.asarray(normed.multiply(normed).sum(axis=1), dtype=np.float64).ravel()
        return normed, sq
    dense = np.asarray(item_features, dtype=np.float64)
    norms = np.sqrt((dense * dense).sum(axis=1))
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    normed = dense * inv[:, None]
    return normed, (normed * normed).sum(axis=1)


def describes_items(item_features: ItemFeatures | None) -> bool:
    """Whether item features can tell items apart for diversity: at least two columns used by some item.

    With one column (or none) every pair of items has cosine 1 (or 0 for a zero row), so diversity would
    report 0 for any list: the catalogue has no categories, and diversity is NaN, not 0.
    """
    if item_features is None:
        return False
    if sp.issparse(item_features):
        feats = sp.csr_array(item_features)
        return int(np.count_nonzero(np.bincount(feats.indices[feats.data != 0], minlength=1))) >= 2
    dense = np.asarray(item_features)
    if dense.ndim != 2:
        raise ValueError(f"item_features must be 2-D, got shape {dense.shape}")
    return int(np.count_nonzero(np.any(dense != 0, axis=0))) >= 2


def _row_sq_norms(mat: sp.sparray | sp.spmatrix | np.ndarray) -> np.ndarray:
    if sp.issparse(mat):
        return np.asarray(mat.multiply(mat).sum(axis=1), dtype=np.float64).ravel()
    return (np.asarray(mat) ** 2).sum(axis=1)


def _per_user_values(
    prep: _Prepared, item_features: ItemFeatures | None, chunk_users: int
) -> dict[str, np.ndarray]:
    """f"{metric}@{k}" -> value per evaluated user."""
    if chunk_users < 1:
        raise ValueError("chunk_users must be >= 1")
    ks, max_k = prep.ks, prep.ks[-1]
    n_eval = len(prep.eval_users)
    out = {f"{m}@{k}": np.full(n_eval, np.nan) for m in PER_USER_METRICS for k in ks}

    ranks = np.arange(1, max_k + 1, dtype=np.float64)
    disc = 1.0 / np.log2(ranks + 1.0)
    ideal_cum = np.cumsum(disc)
    features = _normalised_features(item_features) if describes_items(item_features) else None

    for s in range(0, n_eval, chunk_users):
        e = min(s + chunk_users, n_eval)
        n_chunk = e - s
        a, b = np.searchsorted(prep.u, [s, e])
        cu, cpos, citem = prep.u[a:b] - s, prep.pos[a:b], prep.item[a:b]
        hits = np.zeros((n_chunk, max_k), dtype=bool)
        hits[cu, cpos] = prep.hit[a:b]
        n_rel = prep.n_rel[s:e]
        list_len = np.bincount(cu, minlength=n_chunk)

        cum_hits = np.cumsum(hits, axis=1)
        dcg_cum = np.cumsum(hits * disc, axis=1)
        ap_cum = np.cumsum(hits * (cum_hits / ranks), axis=1)
        any_hit = hits.any(axis=1)
        first_hit = np.where(any_hit, np.argmax(hits, axis=1), max_k)

        for k in ks:
            n_hits = cum_hits[:, k - 1].astype(np.float64)
            cut = np.minimum(n_rel, k)
            out[f"precision@{k}"][s:e] = n_hits / k
            out[f"recall@{k}"][s:e] = n_hits / n_rel
            out[f"hit_rate@{k}"][s:e] = (n_hits > 0).astype(np.float64)
            out[f"ndcg@{k}"][s:e] = dcg_cum[:, k - 1] / ideal_cum[cut - 1]
            out[f"map@{k}"][s:e] = ap_cum[:, k - 1] / cut
            out[f"mrr@{k}"][s:e] = np.where(first_hit < k, 1.0 / (first_hit + 1.0), 0.0)

        if features is None:
            continue
        normed, sq = features
        has_row = (citem >= 0) & (citem < normed.shape[0])
        for k in ks:
            sel = has_row & (cpos < k)
            rows, cols = cu[sel], citem[sel]
            member = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n_chunk, normed.shape[0]))
            sum_sq = _row_sq_norms(member @ normed)
            self_sq = np.bincount(rows, weights=sq[cols], minlength=n_chunk)
            n_items = np.minimum(list_len, k).astype(np.float64)
            n_pairs2 = n_items * (n_items - 1.0)  # ordered pairs = 2 * unordered pairs
            mean_cos = np.divide(sum_sq - self_sq, n_pairs2, out=np.full(n_chunk, np.nan), where=n_pairs2 > 0)
            out[f"diversity@{k}"][s:e] = 1.0 - mean_cos
    return out


def per_user_metrics(
    recommendations: pd.DataFrame,
    test: pd.DataFrame | Relevance,
    ks: Sequence[int],
    item_features: ItemFeatures | None = None,
    chunk_users: int = 50_000,
) -> pd.DataFrame:
    """Per-user accuracy and diversity metrics at every K.

    recommendations: user_idx, item_idx, rank (1 = best; int); test: user_idx, item_idx (duplicates allowed,
    deduplicated), or its Relevance (index_relevance) to share across calls. Returns one row per evaluated
    user (users with >= 1 test item, sorted by user_idx): column user_idx plus f"{metric}@{k}" float64
    columns for metric in PER_USER_METRICS and k in sorted distinct ks (diversity NaN for users with < 2
    items, and for everyone when the features do not tell items apart: ``describes_items``). Users are
    processed in chunks of ``chunk_users`` to bound memory.
    """
    prep = _prepare(recommendations, _indexed(test), ks)
    table = pd.DataFrame({"user_idx": prep.eval_users.astype(np.int64)})
    return pd.concat([table, pd.DataFrame(_per_user_values(prep, item_features, chunk_users))], axis=1)


def mean_ndcg(recommendations: pd.DataFrame, test: pd.DataFrame | Relevance, k: int) -> float:
    """Mean ndcg@``k`` over the users of ``test``, the figure ``evaluate`` reports (NaN without users); the
    validation signal of early stopping and tuning, so they optimise the reported metric."""
    prep = _prepare(recommendations, _indexed(test), [k])
    values = _per_user_values(prep, None, chunk_users=50_000)[f"ndcg@{k}"]
    return float(values.mean()) if len(values) else float("nan")


def _gini(counts: np.ndarray) -> float:
    """Gini index with the sorted formula; NaN when nothing was counted."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return float("nan")
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(((2.0 * i - n - 1.0) * x).sum() / (n * total))


def _user_mean(user: np.ndarray, values: np.ndarray) -> float:
    """Mean over users of each user's mean of ``values`` (rows of ``user``); NaN without rows."""
    if not len(user):
        return float("nan")
    slots = np.bincount(user)
    listed = slots > 0
    sums = np.bincount(user, weights=values, minlength=len(slots))
    return float(np.mean(sums[listed] / slots[listed]))


def _beyond_accuracy(
    user: np.ndarray, item: np.ndarray, pos: np.ndarray, ks: Sequence[int], counts: ItemCounts
) -> dict[tuple[str, int], float]:
    """Coverage, gini (over the item base), novelty (training counts), arp and aplt (popularity before the
    test cut) of the list rows (user position, item, 0-based position)."""
    at_base = _index_in(counts.base, item)  # position in the item base, -1 outside it
    at = _index_in(counts.items, item)  # position among the training items, -1 unseen in training
    in_base = at_base >= 0
    popularity = np.zeros(len(item), dtype=np.float64)  # outside the base: no rows before the cut
    popularity[in_base] = counts.popularity[at_base[in_base]]
    tail = np.ones(len(item), dtype=np.float64)  # outside the base: in the long tail
    tail[in_base] = counts.tail[at_base[in_base]]
    n_base = len(counts.base)
    out: dict[tuple[str, int], float] = {}
    for k in ks:
        top = pos < k
        out[("arp", k)] = _user_mean(user[top], popularity[top])
        out[("aplt", k)] = _user_mean(user[top], tail[top])
        top_base = at_base[top]
        exposure = np.bincount(top_base[top_base >= 0], minlength=n_base)
        out[("catalog_coverage", k)] = np.count_nonzero(exposure) / n_base if n_base else float("nan")
        out[("gini", k)] = _gini(exposure)
        top_at = at[top]
        inside = top_at >= 0
        if len(top_at) and counts.n_rows:
            n_i = np.ones(len(top_at))  # unseen in training -> 1
            n_i[inside] = counts.counts[top_at[inside]]
            out[("novelty", k)] = float(np.mean(-np.log2(n_i / counts.n_rows)))
        else:
            out[("novelty", k)] = float("nan")
    return out


def exposure_share(
    recommendations: pd.DataFrame, test: pd.DataFrame | Relevance, ks: Sequence[int], base: np.ndarray
) -> dict[int, float]:
    """Per K: the share of the evaluated users' filled top-K slots holding an item outside the item
    ``base`` (ItemCounts.base): what coverage and gini leave out (NaN without slots).

    test: user_idx, item_idx (who is evaluated), or its Relevance (index_relevance).
    """
    prep = _prepare(recommendations, _indexed(test), ks)
    flagged = ~isin_ids(prep.item, np.asarray(base, dtype=np.int64))
    return {k: float(flagged[prep.pos < k].mean()) if (prep.pos < k).any() else float("nan") for k in prep.ks}


def evaluate(
    recommendations: pd.DataFrame,
    test: pd.DataFrame,
    train: pd.DataFrame,
    ks: Sequence[int],
    item_features: ItemFeatures | None = None,
    users: np.ndarray | None = None,
    validation: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Aggregate metric table: columns metric (str), k (int64), value (float64), n_users (int64).

    One row per (metric, k) for every name in METRIC_NAMES (metric-major, k ascending). train: user_idx,
    item_idx (novelty counts); train and ``validation`` (item_idx) make the item base of coverage and gini,
    and their rows the popularity of arp and aplt.
    users: optional subset of user_idx (a segment); accuracy and diversity means and coverage/gini/novelty
    then use only those users' lists and test rows. n_users = number of evaluated users. Accuracy metrics
    are means over evaluated users, diversity over users with a defined value; a figure with nothing to
    average is NaN.
    """
    known = None if validation is None else _int64(validation, "item_idx")
    rows = None if known is None else np.concatenate([_int64(train, "item_idx"), known])
    return evaluate_subsets(
        recommendations,
        index_relevance(test),
        count_items(train, known, rows),
        ks,
        item_features,
        [users],
    )[0]


def evaluate_subsets(
    recommendations: pd.DataFrame,
    relevance: Relevance,
    counts: ItemCounts,
    ks: Sequence[int],
    item_features: ItemFeatures | None = None,
    subsets: Sequence[np.ndarray | None] = (None,),
) -> list[pd.DataFrame]:
    """``evaluate`` of one list against prepared test and training tables, once per user subset.

    A user's metrics depend only on their own list and relevant items, so they are computed once and each
    subset (None: every user) aggregates its rows: the same values as one ``evaluate`` call per subset.
    """
    prep = _prepare(recommendations, relevance, ks)
    per_user = _per_user_values(prep, item_features, chunk_users=50_000)
    tables = []
    for users in subsets:
        chosen = np.ones(len(prep.eval_users), dtype=bool)
        if users is not None:
            chosen = np.isin(prep.eval_users, np.asarray(users, dtype=np.int64))
        values: dict[tuple[str, int], float] = {}
        for k in prep.ks:
            for metric in PER_USER_METRICS:
                col = per_user[f"{metric}@{k}"][chosen]
                col = col[~np.isnan(col)]
                values[(metric, k)] = float(col.mean()) if len(col) else float("nan")
        rows = chosen[prep.u]
        values.update(_beyond_accuracy(prep.u[rows], prep.item[rows], prep.pos[rows], prep.ks, counts))
        names = [(m, k) for m in METRIC_NAMES for k in prep.ks]
        tables.append(
            pd.DataFrame(
                {
                    "metric": [m for m, _ in names],
                    "k": np.array([k for _, k in names], dtype=np.int64),
                    "value": np.array([values[r] for r in names], dtype=np.float64),
                    "n_users": np.full(len(names), int(chosen.sum()), dtype=np.int64),
                }
            )
        )
    return tables
