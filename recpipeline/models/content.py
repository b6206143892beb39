"""Content-based recommender: items as feature vectors, users as the weighted mean of their items' vectors.

Item vector = [TF-IDF of the text columns, or their pretrained sentence embedding (``text_encoder``, e.g.
``all-MiniLM-L6-v2``: ``recpipeline.models.text``) | one-hot of each categorical column (a missing value is
no category) | scaled numeric columns]: each block L2-normalised (numbers only scaled) and weighted, every
row divided by the same norm of the weights, so an item without a title or category has a shorter vector
rather than its remaining blocks standing in for the missing one. A user's profile is the L2-normalised
interaction-weighted mean of their history items' vectors; an item's score is its dot product with the
profile (the cosine for an item with every block). It needs no interactions for an item, so it is where
brand-new items get recommended.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler, normalize

from recpipeline.models.base import Logger, Recommender, no_log, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.similarity import cosine_neighbours, sparse_arrays, sparse_from_arrays
from recpipeline.models.text import check_text_encoder, encode_item_text

SCALERS = {"minmax": MinMaxScaler, "standard": StandardScaler}
_MISSING = "<missing>"


class Content(Recommender):
    """Cosine between a user's profile and item feature vectors built from ``FitContext.item_features``."""

    name = "content"
    family = "content"
    state_shapes = {"item_vectors_": ("n_items", "features")}

    def __init__(
        self,
        text_columns: list[str] | None = None,
        categorical_columns: list[str] | None = None,
        numeric_columns: list[str] | None = None,
        text_weight: float = 1.0,
        categorical_weight: float = 1.0,
        numeric_weight: float = 0.3,
        scaler: Literal["minmax", "standard"] = "minmax",
        min_df: int = 2,
        text_encoder: str | None = None,
    ) -> None:
        if scaler not in SCALERS:
            raise ValueError(f"content: 'scaler' must be one of {sorted(SCALERS)}, got {scaler!r}")
        super().__init__(
            text_columns=["title"] if text_columns is None else text_columns,
            categorical_columns=["category", "brand"] if categorical_columns is None else categorical_columns,
            numeric_columns=["price"] if numeric_columns is None else numeric_columns,
            text_weight=text_weight,
            categorical_weight=categorical_weight,
            numeric_weight=numeric_weight,
            scaler=scaler,
            min_df=min_df,
            text_encoder=text_encoder,
        )

    def check_params(self) -> None:
        """The text encoder can be loaded offline (otherwise only ``fit`` would find out, deep in a run)."""
        check_text_encoder(self.name, self.text_encoder)

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        *,
        context: FitContext | None = None,
        log: Logger = no_log,
    ) -> Content:
        self._start_fit(train, context)
        if context is None or context.item_features is None:
            raise ValueError("content: needs item features (FitContext.item_features, one row per item_idx)")
        self.item_vectors_ = item_feature_matrix(
            context.item_features, self.n_items_, **self.get_params(), log=log
        )
        log(f"content: {self.n_items_} items x {self.item_vectors_.shape[1]} features")
        return self

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        """Each history's normalised weighted mean item vector dotted with every item (0 for an empty one)."""
        profiles = normalize(prepare_matrix(history) @ self.item_vectors_)
        return (profiles @ self.item_vectors_.T).toarray()

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return cosine_neighbours(self.item_vectors_.toarray(), np.asarray(items, dtype=np.int64), n)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return sparse_arrays(self.item_vectors_, "item_vectors")

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_vectors_ = sparse_from_arrays(arrays, "item_vectors")


def item_feature_matrix(
    item_features: pd.DataFrame,
    n_items: int,
    *,
    text_columns: list[str],
    categorical_columns: list[str],
    numeric_columns: list[str],
    text_weight: float,
    categorical_weight: float,
    numeric_weight: float,
    scaler: str,
    min_df: int,
    text_encoder: str | None,
    log: Logger = no_log,
) -> sp.csr_matrix:
    """``n_items x features`` CSR matrix of the configured feature blocks (see module doc)."""
    if len(item_features) != n_items:
        raise ValueError(
            f"content: item_features has {len(item_features)} rows, expected one per item ({n_items})"
        )
    missing = [c for c in (*text_columns, *categorical_columns, *numeric_columns) if c not in item_features]
    if missing:
        raise ValueError(
            f"content: item feature column {missing[0]!r} not found; have {list(item_features.columns)}"
        )
    blocks, weights = [], []
    if text_columns and text_encoder is not None:
        blocks.append(sp.csr_matrix(encode_item_text(item_features, text_columns, text_encoder)))
        weights.append(text_weight)
    elif text_columns:
        columns = [item_features[c].fillna("").astype(str) for c in text_columns]
        text = functools.reduce(lambda a, b: a + " " + b, columns).tolist()
        blocks.append(_tfidf_block(text, min_df, log))
        weights.append(text_weight)
    if categorical_columns:
        values = item_features[categorical_columns].astype(object)
        encoder = OneHotEncoder(handle_unknown="ignore")
        one_hot = encoder.fit_transform(values.where(values.notna(), _MISSING).astype(str))
        # a missing value is no evidence: not a shared "<missing>" category that makes such items alike
        known = np.concatenate([categories != _MISSING for categories in encoder.categories_])
        one_hot = sp.csr_matrix(one_hot, dtype=np.float32)[:, known]
        blocks.append(normalize(one_hot) if one_hot.shape[1] else one_hot)  # none known: an empty block
        weights.append(categorical_weight)
    if numeric_columns:
        numbers = item_features[numeric_columns].astype(np.float64)
        numbers = numbers.fillna(numbers.median()).fillna(0.0).to_numpy()
        blocks.append(sp.csr_matrix(SCALERS[scaler]().fit_transform(numbers)))
        weights.append(numeric_weight)
    if not blocks:
        raise ValueError("content: no feature columns configured")
    # one scale for every row rather than per-row normalisation: an item lacking a block (no title, no
    # category) keeps a shorter vector instead of its other blocks standing in for the missing one
    scale = float(np.sqrt(np.sum(np.square(weights)))) or 1.0
    weighted = [block * (weight / scale) for block, weight in zip(blocks, weights, strict=True)]
    return sp.hstack(weighted, format="csr", dtype=np.float32)


def _tfidf_block(text: list[str], min_df: int, log: Logger) -> sp.csr_matrix:
    try:
        return sp.csr_matrix(
            TfidfVectorizer(min_df=min_df, sublinear_tf=True).fit_transform(text), dtype=np.float32
        )
    except ValueError:  # every term rarer than min_df: no vocabulary
        log(f"content: no text term occurs in {min_df}+ items; text ignored")
        return sp.csr_matrix((len(text), 0), dtype=np.float32)
