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
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler, normalize

from recpipeline.models.base import Logger, Recommender, no_log, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.settings import ModelSettings
from recpipeline.models.similarity import cosine_neighbours, sparse_arrays, sparse_from_arrays
from recpipeline.models.text import check_text_encoder, encode_item_text

SCALERS = {"minmax": MinMaxScaler, "standard": StandardScaler}
_MISSING = "<missing>"
#: a feature block's weight in the item vector
BlockWeight = Annotated[float, Field(ge=0, description="the block's weight in the item vector")]


class Content(Recommender):
    """Cosine between a user's profile and item feature vectors built from ``FitContext.item_features``."""

    name = "content"
    family = "content"
    explains = "leave-one-out"  # the profile is normalised: its items' terms do not add up to the score
    state_shapes = {"item_vectors_": ("n_items", "features")}

    class Settings(ModelSettings):
        text_columns: list[str] = ["title"]
        """item columns whose text makes the text block (TF-IDF, or ``text_encoder``'s embedding)"""
        categorical_columns: list[str] = ["category", "brand"]
        """item columns one-hot encoded (a missing value is no category)"""
        numeric_columns: list[str] = ["price"]
        """item columns scaled by ``scaler``"""
        text_weight: BlockWeight = 1.0
        categorical_weight: BlockWeight = 1.0
        numeric_weight: BlockWeight = 0.3
        scaler: Literal["minmax", "standard"] = "minmax"
        """how the numeric columns are scaled"""
        min_df: int = Field(2, ge=1)
        """items a TF-IDF term must occur in"""
        text_encoder: str | None = None
        """null (TF-IDF), the packaged ``all-MiniLM-L6-v2`` or a local sentence-transformers directory"""

    def check_params(self) -> None:
        """The text encoder can be loaded offline (otherwise only ``fit`` would find out, deep in a run)."""
        check_text_encoder(self.name, self.text_encoder)

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        if context.item_features is None:
            raise ValueError("content: needs item features (FitContext.item_features, one row per item_idx)")
        self.item_vectors_ = item_feature_matrix(
            context.item_features, self.n_items_, **self.get_params(), log=log
        )
        log(f"content: {self.n_items_} items x {self.item_vectors_.shape[1]} features")

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
