"""Evaluation protocol: which test items count, which features measure diversity, one table for all models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.metrics import evaluate
from recpipeline.splitting import unseen_relevant

METRICS_COLUMNS = ("model", "segment", "metric", "k", "value", "n_users")


def category_features(item_catalog: pd.DataFrame, item_id_map: pd.DataFrame) -> sp.csr_matrix:
    """One-hot category per item index (items missing from the catalogue share an 'unknown' category)."""
    category = item_id_map["id"].map(item_catalog.set_index("item_id")["category"]).fillna("<unknown>")
    codes, _ = pd.factorize(category.astype(str), sort=True)
    rows = item_id_map["idx"].to_numpy()
    return sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, codes)), shape=(len(item_id_map), codes.max() + 1)
    )


def evaluate_models(
    recommendations: Mapping[str, pd.DataFrame],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    item_catalog: pd.DataFrame,
    item_id_map: pd.DataFrame,
    ks: Sequence[int],
) -> pd.DataFrame:
    """Metrics for every model on the test window.

    Relevant items are the test items a user had not seen before the test window (train or validation):
    recommendations exclude seen items, so those could never be hit. Novelty counts come from train.
    """
    relevant = unseen_relevant(test, pd.concat([train, validation], ignore_index=True))
    features = category_features(item_catalog, item_id_map)
    tables = []
    for model, recs in recommendations.items():
        table = evaluate(recs, relevant, train, ks, item_features=features)
        table.insert(0, "segment", "all")
        table.insert(0, "model", model)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)[list(METRICS_COLUMNS)]
