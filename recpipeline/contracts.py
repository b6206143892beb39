"""The data contracts between the stages: the column names and event types each table carries.

One definition each; every stage package imports them from here, so no stage imports another to learn
a column name.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

#: the contract's event types, in their categorical order
EVENT_TYPES = ("view", "cart", "purchase", "rating")
#: columns a cleaned event carries (``cleaned_events``)
CLEANED_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value", "session_id")
#: lineage columns every raw row carries: the file it came from and its row there
LINEAGE_COLUMNS = ("_source_file", "_row")
#: columns every item catalogue starts with (a source's own attributes follow)
ITEM_COLUMNS = ("item_id", "title", "category", "brand", "price")
#: cleaning's default range of event values (``cleaning.value_range``): ratings and quantities fit, while
#: a -5 rating or a 1e38 quantity (which would overflow float32 in encoding) is a ``bad_value``
VALUE_RANGE = (0.0, 1e6)
#: the interactions' session column (int64): equal values = one session, a dense code per run numbered in
#: order of each session's first event; from the source's ``session_id`` where the log has one, else cut per
#: user by an inactivity gap (``source.session_gap_minutes``)
SESSION_COLUMN = "session_idx"
#: the user id an anonymous event (no user id, a session id) gets: this prefix + its session id, so each
#: anonymous session is its own visitor
ANONYMOUS_USER_PREFIX = "~anonymous:"
#: file types of the tables a user brings (interactions, top-K lists to evaluate)
TABLE_SUFFIXES = (".csv", ".parquet")


def table_files(folder: str | Path) -> list[Path]:
    """The CSV / Parquet files of ``folder``, sorted, hidden files skipped: e.g. a folder of top-K lists, one
    model per file stem."""
    return [
        path
        for path in sorted(Path(folder).iterdir())
        if path.suffix.lower() in TABLE_SUFFIXES and not path.name.startswith(".")
    ]


#: what each column of the pipeline's tables holds, by column name: one description per column, shown in the
#: Dagster UI's column tables (from the asset definitions, before any materialization, and with each
#: materialization's own types); the first element is the contract's logical type
COLUMNS: dict[str, tuple[str, str]] = {
    # events (raw, cleaned, quarantined)
    "user_id": (
        "string",
        f"The source's user id; an anonymous event's is {ANONYMOUS_USER_PREFIX}<session_id>.",
    ),
    "item_id": ("string", "The source's item id."),
    "event_type": ("category", f"One of {', '.join(EVENT_TYPES)}."),
    "timestamp": ("timestamp (UTC)", "When the event happened, in UTC."),
    "value": (
        "float",
        "An event's rating or quantity (1 where the source has none); in the metrics tables, the "
        "metric's value.",
    ),
    "session_id": ("string", "The source's session id, where its log has one."),
    "_source_file": ("string", "Lineage: the file (or generator) the raw row came from."),
    "_row": ("integer", "Lineage: the raw row's position in that file."),
    "reason": ("string", "Why cleaning rejected the row: the first quarantine reason that applies."),
    # catalogue and users
    "title": ("string", "The item's title."),
    "category": ("string", "The item's category (diversity and cross-category metrics use it)."),
    "brand": ("string", "The item's brand."),
    "price": ("float", "The item's price."),
    "first_seen": ("timestamp (UTC)", "When the item or user first appeared."),
    # encoded interactions and id maps
    "user_idx": ("integer", "The user's dense index (int32), stable across nights (append-only id map)."),
    "item_idx": ("integer", "The item's dense index (int32), stable across nights (append-only id map)."),
    "weight": (
        "float",
        "The interaction's weight: event_weights of its event type (x the rating for ratings).",
    ),
    SESSION_COLUMN: (
        "integer",
        "The session: the source's session id, else cut per user by an inactivity gap.",
    ),
    "id": ("string", "The source's id (user_id or item_id)."),
    "idx": ("integer", "Its dense index: never reused, new ids get the next one."),
    # recommendations and similar items
    "model": ("string", "The model (registry name) or external list that made the row."),
    "rank": ("integer", "Position in the top-K list, 1 = best."),
    "score": ("float", "The model's score for the item (higher ranks first)."),
    "similar_item_id": (
        "string",
        "An item customers of item_id also viewed, by the model's item similarity.",
    ),
    # explanations and their fidelity
    "method": (
        "string",
        "How the model attributes a score to the history: exact, fold-in, gradient×input or leave-one-out.",
    ),
    "reason_rank": ("integer", "Position among the item's reasons, 1 = the strongest."),
    "reason_item": ("string", "A history item (item_id) that contributed to the recommended item's score."),
    "contribution": ("float", "How much the reason adds to the item's score, by the model's method."),
    "n_explained": ("integer", "Recommended items with at least one reason (their fidelity is measured)."),
    "left_top_k_share": (
        "float",
        "Share of the explained items that leave the top-K when their strongest reason leaves the history.",
    ),
    "mean_rank_change": (
        "float",
        "Mean change of the explained item's rank (positive: down) when its strongest reason is removed.",
    ),
    "random_left_top_k_share": (
        "float",
        "The same share when a random history item (seeded) is removed instead: the bar to beat.",
    ),
    "random_mean_rank_change": ("float", "The mean rank change when a random history item is removed."),
    "beats_random": (
        "boolean",
        "Removing the strongest reason moves the items further down on average than a random removal.",
    ),
    # metrics, significance and history
    "segment": (
        "string",
        "The users scored: all, with_history (the headline), warm, cold, new_users, light/medium/heavy, ...",
    ),
    "metric": ("string", "The metric's name (docs/metrics.md)."),
    "k": ("integer", "The cut-off K of the top-K list (0 for metrics without one, such as rmse)."),
    "n_users": ("integer", "Users the figure is computed over."),
    "served_by": ("string", "Who served the segment's lists: the model itself or the cold-start fallback."),
    "flagged": ("boolean", "The segment has fewer users than evaluation.min_segment_users: indicative only."),
    "run_id": ("string", "The Dagster run that computed the row."),
    "as_of": ("string", "The last day of the data the run saw (YYYY-MM-DD)."),
    "user_segment": ("string", "The user's history segment: warm, cold or new_users."),
    "baseline": ("string", "The model every other model is tested against."),
    "mean_diff": ("float", "Mean per-user difference, model minus baseline."),
    "ci_low": ("float", "Lower end of the paired bootstrap 95% interval of mean_diff."),
    "ci_high": ("float", "Upper end of the paired bootstrap 95% interval of mean_diff."),
    "p_value": ("float", "Wilcoxon signed-rank p-value."),
    "p_holm": ("float", "Holm-adjusted p-value (over every model tested against the baseline)."),
    "significant": ("boolean", "p_holm below evaluation.alpha."),
    "mde": (
        "float",
        "The smallest mean difference the comparison detects with 80% power, at Holm's strictest level.",
    ),
    # costs (model_costs, cut_costs, backtest_costs)
    "fit_s": ("float", "Wall seconds of the model step's fit, refit on train + validation included."),
    "cpu_s": (
        "float",
        "CPU seconds (user + system, every thread of the process) of the same fit; NaN if not measured.",
    ),
    "epochs_run": ("integer", "Epochs trained (torch models); NaN for models without epochs."),
    "warm_start_from": (
        "string",
        "The cut whose weights the fit continued (backtest): '<cut> (run <id>)'; 'cold' or empty when cold.",
    ),
    "score_ms_per_1k_users": ("float", "Wall milliseconds of the recommendations step per 1,000 users."),
    "model_bytes": ("integer", "Size of the fitted model as stored, in bytes."),
    "peak_rss_mb": ("float", "Peak resident memory of the process while fitting, in MB."),
    # the backtest (cut_* tables, backtest)
    "cut_date": ("string", "The backtest cut: the last day before its test window (YYYY-MM-DD)."),
    "family": ("string", "The model's family (baseline, neighbourhood, factorisation, linear, neural, ...)."),
    "diff": ("float", "The cut's mean per-user difference, model minus the cut's baseline."),
}


def column_description(name: str) -> str | None:
    """What column ``name`` holds (``COLUMNS``); ``<metric>@<k>`` columns are described by their name; None
    for a column outside the contracts (a source's own attribute)."""
    if name in COLUMNS:
        return COLUMNS[name][1]
    metric, at, k = name.partition("@")
    if at and k.isdigit():
        return f"The user's {metric} at cut-off {k}."
    return None


def headline_k(ks: Iterable[int]) -> int:
    """The one cut-off where one is needed, from the configured cut-offs ``ks`` (``RunConfig.ks``): the
    length of every top-K list and the headline metrics' k (ndcg@k) -- the largest."""
    return max(ks)


#: config name -> (module, class, whether the class implements similar_items); baselines first, then the
#: neighbourhood (incl. session) models, CF, content / hybrid, the differentially private models and the
#: neural models (sequence models last)
MODEL_LOCATIONS: dict[str, tuple[str, str, bool]] = {
    "popularity": ("recpipeline.models.popularity", "Popularity", False),
    "recent_popularity": ("recpipeline.models.recency", "RecentPopularity", False),
    "random": ("recpipeline.models.random_baseline", "Random", False),
    "item_knn": ("recpipeline.models.item_knn", "ItemKNN", True),
    "user_knn": ("recpipeline.models.user_knn", "UserKNN", False),
    "sknn": ("recpipeline.models.session_knn", "SKNN", False),
    "vsknn": ("recpipeline.models.session_knn", "VSKNN", False),
    "cooccurrence": ("recpipeline.models.cooccurrence", "Cooccurrence", True),
    "als": ("recpipeline.models.als", "ALS", True),
    "bpr": ("recpipeline.models.bpr", "BPR", True),
    "ease": ("recpipeline.models.ease", "EASE", True),
    "svd": ("recpipeline.models.svd", "SVD", True),
    "content": ("recpipeline.models.content", "Content", True),
    "hybrid": ("recpipeline.models.hybrid", "Hybrid", True),
    "private_popularity": ("recpipeline.models.private_popularity", "PrivatePopularity", False),
    "private_ease": ("recpipeline.models.private_ease", "PrivateEASE", True),
    "mult_vae": ("recpipeline.models.mult_vae", "MultVAE", True),
    "recvae": ("recpipeline.models.recvae", "RecVAE", True),
    "cfgan": ("recpipeline.models.cfgan", "CFGAN", True),
    "neumf": ("recpipeline.models.neumf", "NeuMF", True),
    "lightgcn": ("recpipeline.models.lightgcn", "LightGCN", True),
    "sasrec": ("recpipeline.models.sasrec", "SASRec", True),
    "gru4rec": ("recpipeline.models.gru4rec", "GRU4Rec", True),
    "bert4rec": ("recpipeline.models.bert4rec", "BERT4Rec", True),
    "caser": ("recpipeline.models.caser", "Caser", True),
}

#: every registered model name, in registry order
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_LOCATIONS)


def unknown_model(name: str) -> ValueError:
    return ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODEL_NAMES))}")


def has_item_similarity(name: str) -> bool:
    """Whether model ``name`` implements ``similar_items`` (item embeddings or a similarity matrix), from the
    registry alone (no model module is imported; the contract tests check it against the class)."""
    if name not in MODEL_LOCATIONS:
        raise unknown_model(name)
    return MODEL_LOCATIONS[name][2]
