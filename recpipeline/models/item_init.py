"""Sequence-model item embeddings from the text encoder's title vectors (``item_init: text``).

Two steps. Before training, the item table starts from the title vectors projected to the model's width by
PCA (the top ``factors`` principal directions of the items that have a title), scaled to the small spread
of the random initialisation (``sequential.init_embeddings``): items with similar titles start close.
After training, items without a single training interaction (their rows only ever received "not this one"
gradients) get the embedding a ridge regression from title vector to trained embedding predicts, fitted on
the items that have both: an item first seen in test, with a title, lands next to the items its title
resembles, so it gets informed scores instead of the bottom of every list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: the catalogue column the title vectors come from
TITLE_COLUMN = "title"
#: the standard deviation of a randomly initialised embedding entry (``sequential.init_embeddings``)
INIT_STD = 0.02
#: ridge penalty of the title -> embedding map (title vectors have unit norm)
RIDGE = 1.0


def title_vectors(name: str, item_features: pd.DataFrame | None, n_items: int) -> np.ndarray:
    """``(n_items, dim)`` L2-normalised title vectors of the default encoder (zero rows: no title)."""
    if item_features is None or TITLE_COLUMN not in item_features:
        raise ValueError(
            f"{name}: item_init 'text' needs the item catalogue with a {TITLE_COLUMN!r} column "
            "(FitContext.item_features)"
        )
    from recpipeline.models.text import DEFAULT_TEXT_ENCODER, encode_item_text

    vectors = encode_item_text(item_features.iloc[:n_items], [TITLE_COLUMN], DEFAULT_TEXT_ENCODER)
    if len(vectors) != n_items:
        raise ValueError(f"{name}: the item catalogue has {len(vectors)} rows for {n_items} items")
    return vectors


def pca_projection(vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(projected ``(n_items, dim)`` float32, columns filled): PCA of the rows with text, entries scaled to
    ``INIT_STD``; rows without text, and columns beyond the rank of the titles, are zero and not filled."""
    has_text = np.abs(vectors).sum(axis=1) > 0
    out = np.zeros((len(vectors), dim), dtype=np.float32)
    filled = np.zeros(dim, dtype=bool)
    if has_text.sum() < 2:
        return out, filled
    centred = vectors[has_text] - vectors[has_text].mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    rank = int(min(dim, (singular > 1e-6 * singular[0]).sum()))
    projected = centred @ components[:rank].T
    out[np.ix_(has_text, np.arange(rank))] = projected * (INIT_STD / max(float(projected.std()), 1e-12))
    filled[:rank] = True
    return out, filled


def ridge_cold_items(vectors: np.ndarray, embeddings: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """``embeddings`` with the rows of untrained items that have a title replaced by the ridge prediction
    from their title vector (fitted on trained items with a title, intercept through centring)."""
    has_text = np.abs(vectors).sum(axis=1) > 0
    source, cold = has_text & trained, has_text & ~trained
    out = embeddings.copy()
    if source.sum() < 2 or not cold.any():
        return out
    text_mean, embedding_mean = vectors[source].mean(axis=0), embeddings[source].mean(axis=0)
    x = vectors[source] - text_mean
    weights = np.linalg.solve(
        x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ (embeddings[source] - embedding_mean)
    )
    out[cold] = embedding_mean + (vectors[cold] - text_mean) @ weights
    return out
