"""Evaluation protocol: which test items count, user and item segments, per-user values, rating errors.

Relevance (``recpipeline.scoring.relevance``): the test items a user had not interacted with before the
test window (train or validation), from the test interactions the ``RelevanceRule`` keeps (event types, a
minimum rating). Coverage and gini count over one item base for every model: the items known before the
test window (``EvaluationData.base``). Metric definitions: ``docs/metrics.md``. Segments (column ``segment``):

* ``all`` — every user with at least one relevant test item;
* ``with_history`` — those with at least one train / validation row (``warm`` and ``cold``): the headline
  segment (summary, default baseline, significance, regression gate), since every model serves users without
  history the same fallback list and they would only dilute the differences;
* ``warm`` / ``cold`` / ``new_users`` — a partition of those users by their history before the test window
  (train + validation rows, what the models see when recommending): more than ``cold_max_interactions``,
  1 to ``cold_max_interactions``, none (served by the cold-start fallback);
* ``cross_category`` — relevance restricted to test items whose category the user never touched before the
  test window, over users with history and at least one such item (needs the item catalogue);
* ``new_items`` — relevance restricted to items first seen in the test window (users with at least one), plus
  ``exposure_share``: the share of all evaluated users' top-K slots holding an item outside the item base
  (first seen in the test window, or unknown to the evaluation; its n_users is the number of all evaluated
  users);
* ``light`` / ``medium`` / ``heavy`` — a partition of ``with_history`` by activity: the users' train +
  validation rows against the terciles of those counts over the evaluated users with history (``activity``);
  segment ``with_history`` adds ``ndcg_gap``, heavy's ndcg minus light's.

A segment without users (no cold users, no catalogue categories new to anyone) has no rows in the metrics
table, rather than rows of NaN; segment ``all`` always has its rows. Column ``served_by`` names who made the
lists scored: the model, except on ``new_users`` rows of a model that does not serve users without history
itself (``Recommender.serves_cold_users``), where it is the cold-start fallback (``COLD_START_FALLBACK``).
Column ``flagged``: the row rests on fewer than ``min_segment_users`` users (shown, but not tested).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.config import EvaluationConfig
from recpipeline.models.base import Recommender, score_chunk_rows
from recpipeline.models.context import ScoreContext
from recpipeline.models.registry import model_class
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline.scoring.metrics import (
    count_items,
    evaluate_subsets,
    exposure_share,
    index_relevance,
    isin_ids,
    per_user_metrics,
)
from recpipeline.scoring.relevance import RelevanceRule, unseen_relevant

METRICS_COLUMNS = ("model", "segment", "metric", "k", "value", "n_users", "served_by", "flagged")
#: a partition of the evaluated users by history length; the per-user table carries one of these per user
USER_SEGMENTS = ("warm", "cold", "new_users")
#: the users with history before the test window (warm and cold): the headline segment
WITH_HISTORY = "with_history"
#: a partition of the users with history by activity (train + validation rows): terciles
ACTIVITY_SEGMENTS = ("light", "medium", "heavy")
#: heavy users' ndcg minus light users' (segment with_history)
NDCG_GAP = "ndcg_gap"
SEGMENTS = ("all", WITH_HISTORY, *USER_SEGMENTS, *ACTIVITY_SEGMENTS, "cross_category", "new_items")
#: who serves users without history when the model does not (``recommending.recommend_table``): the
#: ranking by popularity before the test window
COLD_START_FALLBACK = "popularity"
#: the default of ``evaluation.min_segment_users`` (``recpipeline evaluate`` has no configuration)
MIN_SEGMENT_USERS: int = EvaluationConfig.model_fields["min_segment_users"].default
#: k of metrics that are not cut-off metrics (rmse, mae)
NO_K = 0

#: family of recommendation lists read from files; a registered model's family is its class attribute
EXTERNAL = "external"
#: families never chosen as the default significance baseline: the neural models, the external lists, and
#: the private models (their accuracy is the price of a guarantee, not the bar the others must clear)
NOT_BASELINE_FAMILIES = ("neural", "private", EXTERNAL)


def list_families(model_names: Iterable[str], external_names: Iterable[str]) -> dict[str, str]:
    """The family of every evaluated list: each registered model's ``family``, ``external`` for the lists
    read from files (a name that is neither raises: it could never be labelled correctly)."""
    families = {name: model_class(name).family for name in model_names}
    return {**families, **dict.fromkeys(external_names, EXTERNAL)}


def new_users_served_by(model_names: Iterable[str], external_names: Iterable[str]) -> dict[str, str]:
    """Who made each list's recommendations for users without history: a registered model that serves them
    itself (``serves_cold_users``), else the cold-start fallback; an external list its own."""
    served = {
        name: name if model_class(name).serves_cold_users else COLD_START_FALLBACK for name in model_names
    }
    return {**served, **{name: name for name in external_names}}


def headline_segment(metrics: pd.DataFrame) -> str:
    """``with_history`` where the table has its rows (users with history were evaluated), else ``all``."""
    return WITH_HISTORY if (metrics["segment"] == WITH_HISTORY).any() else "all"


def category_codes(item_catalog: pd.DataFrame, item_id_map: pd.DataFrame) -> np.ndarray:
    """Category code per item index (items missing from the catalogue share an 'unknown' category)."""
    # as strings first: a catalogue without categories maps to float NaN, which a string cannot fill
    category = item_id_map["id"].map(item_catalog.set_index("item_id")["category"]).astype("string")
    category = category.fillna("<unknown>")
    codes, _ = pd.factorize(category.astype(str), sort=True)
    out = np.empty(len(item_id_map), dtype=np.int64)
    out[item_id_map["idx"].to_numpy()] = codes
    return out


def one_hot(codes: np.ndarray) -> sp.csr_matrix:
    rows = np.arange(len(codes))
    return sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, codes)), shape=(len(codes), codes.max(initial=-1) + 1)
    )


@dataclass(frozen=True)
class EvaluationData:
    """Everything the metrics need besides the lists, prepared once per run."""

    relevant: pd.DataFrame  # distinct unseen (user_idx, item_idx) test pairs
    train: pd.DataFrame  # novelty counts
    base: np.ndarray  # sorted item_idx known before the test window: the item base of coverage and gini
    features: sp.csr_matrix | None  # one-hot categories; None without a catalogue
    user_segment: pd.Series  # evaluated user_idx (sorted) -> one of USER_SEGMENTS
    cross_category: (
        pd.DataFrame | None
    )  # relevant pairs in a category new to the user; None without catalogue
    new_items: np.ndarray  # item_idx first seen in the test window
    #: item_idx of every train and validation row: the popularity of arp and aplt (None: train's rows)
    known_items: np.ndarray | None = None
    #: evaluated user_idx (sorted) -> one of ACTIVITY_SEGMENTS, "" without history (``activity``)
    activity: pd.Series | None = None

    def users_in(self, segment: str) -> np.ndarray:
        """The evaluated users of a user segment (one of USER_SEGMENTS or ACTIVITY_SEGMENTS, or
        WITH_HISTORY)."""
        if segment in ACTIVITY_SEGMENTS:
            if self.activity is None:
                return np.zeros(0, dtype=np.int64)
            return self.activity.index[self.activity.to_numpy() == segment].to_numpy()
        segments = self.user_segment.to_numpy()
        chosen = segments != "new_users" if segment == WITH_HISTORY else segments == segment
        return self.user_segment.index[chosen].to_numpy()


def activity(history: np.ndarray) -> np.ndarray:
    """Each user's activity group by ``history`` (train + validation rows): among the users with history,
    ``light`` up to the first tercile t1 of their counts, ``medium`` above t1 up to the second tercile t2,
    ``heavy`` above t2 (numpy's linear-interpolation quantiles; tied counts share a group); "" without
    history."""
    history = np.asarray(history, dtype=np.int64)
    active = history[history > 0]
    if not len(active):
        return np.full(len(history), "", dtype=object)
    t1, t2 = np.quantile(active, [1 / 3, 2 / 3])
    groups = np.where(history <= t1, "light", np.where(history <= t2, "medium", "heavy")).astype(object)
    groups[history == 0] = ""
    return groups


def prepare_evaluation(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    item_catalog: pd.DataFrame | None,
    item_id_map: pd.DataFrame,
    cold_max_interactions: int,
    relevance: RelevanceRule | None = None,
) -> EvaluationData:
    """Relevance, segments and item features from the splits (indices) and the catalogue (string ids).

    relevance: which test interactions may be relevant (None: every one; a rule with options reads the
    test's event_type and weight columns)."""
    pair = ["user_idx", "item_idx"]
    known = pd.concat([train[pair], validation[pair]], ignore_index=True)
    kept = test if relevance is None else test[relevance.keeps(test)]
    relevant = unseen_relevant(kept, known)
    known_user = known["user_idx"].to_numpy(np.int64)
    known_item = known["item_idx"].to_numpy(np.int64)
    users = np.unique(relevant["user_idx"].to_numpy(np.int64))
    # rows before the test window per user_idx, long enough for every relevant user
    known_rows = np.bincount(known_user, minlength=int(users.max(initial=-1)) + 1)
    history = known_rows[users]
    segment = np.where(history == 0, "new_users", np.where(history <= cold_max_interactions, "cold", "warm"))
    test_item = test["item_idx"].to_numpy(np.int64)
    new_items = np.unique(test_item[~isin_ids(test_item, known_item)])

    features = cross = None
    if item_catalog is not None:
        codes = category_codes(item_catalog, item_id_map)
        features = one_hot(codes)
        n_cat = int(codes.max(initial=-1)) + 1
        rel_user = relevant["user_idx"].to_numpy(np.int64)
        rel_category = codes[relevant["item_idx"].to_numpy(np.int64)]
        novel = ~isin_ids(rel_user * n_cat + rel_category, known_user * n_cat + codes[known_item])
        has_history = known_rows[rel_user] > 0  # for new users every category is new: that's new_users
        cross = relevant[novel & has_history].reset_index(drop=True)
    index = pd.Index(users, name="user_idx")
    return EvaluationData(
        relevant=relevant,
        train=train,
        base=np.unique(known_item),
        features=features,
        user_segment=pd.Series(segment, index=index, name="user_segment"),
        cross_category=cross,
        new_items=new_items,
        known_items=known_item,
        activity=pd.Series(activity(history), index=index, name="activity"),
    )


def _labelled(parts: Sequence[tuple[str, str, pd.DataFrame]]) -> pd.DataFrame:
    """The (model, segment, table) parts stacked and labelled at once (an assign per part is slow)."""
    sizes = [len(table) for _, _, table in parts]
    stacked = pd.concat([table for _, _, table in parts], ignore_index=True)
    models = np.repeat([model for model, _, _ in parts], sizes)
    segments = np.repeat([segment for _, segment, _ in parts], sizes)
    return stacked.assign(model=models, segment=segments)


def evaluate_models(
    recommendations: Mapping[str, pd.DataFrame],
    data: EvaluationData,
    ks: Sequence[int],
    served_by: Mapping[str, str] | None = None,
    min_segment_users: int = MIN_SEGMENT_USERS,
) -> pd.DataFrame:
    """Metrics for every model and segment on the test window: METRICS_COLUMNS rows.

    ``served_by``: list name -> who served its users without history (``new_users_served_by``); a list not
    in it served them itself. Rows on fewer than ``min_segment_users`` users are ``flagged``.
    """
    # (relevant pairs, {segment: user subset}), indexed once for every model; the user segments are subsets
    # of segment all, so each list's per-user metrics are computed once for all five
    relevant = index_relevance(data.relevant)
    user_segments = (WITH_HISTORY, *USER_SEGMENTS, *ACTIVITY_SEGMENTS)
    cases = [(relevant, {"all": None, **{s: data.users_in(s) for s in user_segments}})]
    if data.cross_category is not None:
        cases.append((index_relevance(data.cross_category), {"cross_category": None}))
    new_items = data.relevant[data.relevant["item_idx"].isin(data.new_items)]
    cases.append((index_relevance(new_items), {"new_items": None}))
    counts = count_items(data.train, data.base, data.known_items)
    parts = []
    for model, recs in recommendations.items():
        for relevance, segments in cases:
            evaluated = evaluate_subsets(recs, relevance, counts, ks, data.features, list(segments.values()))
            tables = dict(zip(segments, evaluated, strict=True))
            # a segment without users would only hold NaN rows; segment all stays (its NaN flags a bad run)
            parts += [
                (model, segment, table)
                for segment, table in tables.items()
                if segment == "all" or table["n_users"].iloc[0] > 0
            ]
            if WITH_HISTORY in tables and tables[WITH_HISTORY]["n_users"].iloc[0] > 0:
                parts.append((model, WITH_HISTORY, ndcg_gap(tables["light"], tables["heavy"])))
        shares = exposure_share(recs, relevant, ks, data.base)
        exposure = pd.DataFrame(
            {
                "metric": "exposure_share",
                "k": list(shares),
                "value": list(shares.values()),
                "n_users": len(data.user_segment),
            }
        )
        parts.append((model, "new_items", exposure))
    return typed_metrics(_labelled(parts), min_segment_users, served_by)


def ndcg_gap(light: pd.DataFrame, heavy: pd.DataFrame) -> pd.DataFrame:
    """``NDCG_GAP`` rows (metric, k, value, n_users) from the light and heavy users' ``evaluate`` tables:
    heavy's ndcg@k minus light's (NaN when a group has no users); n_users the smaller group's, so the row is
    flagged when either group is small."""
    light_ndcg = light[light["metric"] == "ndcg"].set_index("k")
    heavy_ndcg = heavy[heavy["metric"] == "ndcg"].set_index("k")
    return pd.DataFrame(
        {
            "metric": NDCG_GAP,
            "k": light_ndcg.index.to_numpy(np.int64),
            "value": (heavy_ndcg["value"] - light_ndcg["value"]).to_numpy(np.float64),
            "n_users": np.minimum(light_ndcg["n_users"], heavy_ndcg["n_users"]).to_numpy(np.int64),
        }
    )


def typed_metrics(
    table: pd.DataFrame, min_segment_users: int, served_by: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The METRICS_COLUMNS of a table of model, segment, metric, k, value and n_users, typed."""
    dtypes = {
        "model": str,
        "segment": str,
        "metric": str,
        "k": np.int64,
        "value": np.float64,
        "n_users": np.int64,
    }
    table = table.astype(dtypes)
    model = table["model"]
    return table.assign(
        served_by=model.where(table["segment"] != "new_users", model.replace(dict(served_by or {}))),
        flagged=(table["n_users"] < min_segment_users).to_numpy(bool),
    )[list(METRICS_COLUMNS)]


def per_user_values(
    recommendations: Mapping[str, pd.DataFrame],
    data: EvaluationData,
    ks: Sequence[int],
    served_by: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per model and evaluated user (segment ``all`` relevance): model, user_idx, user_segment, served_by
    (as in ``evaluate_models``), metric@k.

    Every model has the same rows (the evaluated users, sorted), so values are paired across models.
    """
    relevant = index_relevance(data.relevant)
    segment = data.user_segment.to_numpy()
    frames = []
    for model, recs in recommendations.items():
        values = per_user_metrics(recs, relevant, ks, item_features=data.features)
        values.insert(0, "model", model)
        values.insert(2, "user_segment", segment)
        fallback = (served_by or {}).get(model, model)
        values.insert(3, "served_by", np.where(segment == "new_users", fallback, model))
        frames.append(values)
    return pd.concat(frames, ignore_index=True)


def rating_errors(
    models: Mapping[str, Recommender],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    rating_weight: float,
    min_segment_users: int = MIN_SEGMENT_USERS,
) -> pd.DataFrame:
    """RMSE and MAE of every model's rating predictions on the test window's explicit ratings.

    The models' scores are ranking scores, not ratings, so each model gets a linear calibration
    ``rating ~ a + b * score`` fitted by least squares on the validation window's ratings (scored from the
    training history), then predicts the test ratings (scored from train + validation history), clipped to
    the observed rating range. Ratings are the ``rating`` events' weight / ``rating_weight``. No rows when
    either window has no ratings or ``rating_weight`` is 0 (the rating value cannot be recovered).
    """
    if rating_weight <= 0:
        return typed_metrics(pd.DataFrame(columns=list(_RATING_COLUMNS)), min_segment_users)
    fit_pairs, test_pairs = _ratings(validation, rating_weight), _ratings(test, rating_weight)
    if not len(fit_pairs) or not len(test_pairs):
        return typed_metrics(pd.DataFrame(columns=list(_RATING_COLUMNS)), min_segment_users)
    known = pd.concat([train, validation], ignore_index=True)
    scale = _ratings(known, rating_weight)["rating"]
    low, high = scale.min(), scale.max()
    rows = []
    for name, model in models.items():
        shape = (model.n_users_, model.n_items_)
        fit_scores = score_pairs(model, fit_pairs, interaction_matrix(train, *shape), ScoreContext(train))
        test_scores = score_pairs(model, test_pairs, interaction_matrix(known, *shape), ScoreContext(known))
        ratings = fit_pairs["rating"].to_numpy()
        ok = np.isfinite(fit_scores)
        fallback = float(ratings.mean())
        slope, intercept = _linear_fit(fit_scores[ok], ratings[ok]) if ok.any() else (0.0, fallback)
        predicted = np.where(np.isfinite(test_scores), intercept + slope * test_scores, fallback)
        error = np.clip(predicted, low, high) - test_pairs["rating"].to_numpy()
        n_users = int(test_pairs["user_idx"].nunique())
        rows += [
            (name, "all", "rmse", NO_K, float(np.sqrt(np.mean(error**2))), n_users),
            (name, "all", "mae", NO_K, float(np.mean(np.abs(error))), n_users),
        ]
    return typed_metrics(pd.DataFrame(rows, columns=list(_RATING_COLUMNS)), min_segment_users)


#: a rating error row before ``typed_metrics`` adds who served the lists and the flag
_RATING_COLUMNS = METRICS_COLUMNS[:6]


def _ratings(split: pd.DataFrame, rating_weight: float) -> pd.DataFrame:
    """Mean rating per (user_idx, item_idx) of a split's rating events."""
    rated = split[split["event_type"].astype(str) == "rating"]
    rating = rated["weight"].to_numpy(np.float64) / rating_weight
    pairs = rated[["user_idx", "item_idx"]].assign(rating=rating)
    return pairs.groupby(["user_idx", "item_idx"], as_index=False, sort=True)["rating"].mean()


def _linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept (x non-empty); a constant prediction when x does not vary."""
    spread = x - x.mean()
    denominator = float(spread @ spread)
    slope = float(spread @ (y - y.mean())) / denominator if denominator > 0 else 0.0
    return slope, float(y.mean() - slope * x.mean())


def score_pairs(
    model: Recommender, pairs: pd.DataFrame, history: sp.csr_matrix, context: ScoreContext | None = None
) -> np.ndarray:
    """The model's score of each (user_idx, item_idx) row of ``pairs``, scoring users in bounded chunks.

    ``history``: the users x items matrix of everything known; ``context``: the events behind it.
    """
    users, row = np.unique(pairs["user_idx"].to_numpy(np.int64), return_inverse=True)
    row = row.ravel()
    items = pairs["item_idx"].to_numpy(np.int64)
    order = np.argsort(row, kind="stable")
    sorted_row = row[order]
    history = history.tocsr()
    out = np.empty(len(pairs), dtype=np.float64)
    rows_per_chunk = score_chunk_rows(history.shape[1])
    for first in range(0, len(users), rows_per_chunk):
        chunk_users = users[first : first + rows_per_chunk]
        a, b = np.searchsorted(sorted_row, [first, first + rows_per_chunk])
        take = order[a:b]
        scores = np.asarray(model.score(chunk_users, history[chunk_users], context), dtype=np.float64)
        out[take] = scores[row[take] - first, items[take]]
    return out
