"""Shared similarity machinery: cosine neighbours, sparse top-N item similarity, TF-IDF / BM25 weights."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recpipeline.models.base import top_k_excluding

Weighting = Annotated[
    Literal["none", "tfidf", "bm25"],
    Field(
        description="re-weighting of the user x item matrix before the cosine (bm25 / tfidf damp heavy users)"
    ),
]
WEIGHTINGS = ("none", "tfidf", "bm25")
#: the similarity damping of the neighbourhood models
Shrinkage = Annotated[
    float,
    Field(ge=0, description="damps similarities backed by few co-occurrences: dot / (norms + shrinkage)"),
]
#: BM25 constants as in implicit's bm25_weight (large K1: weights saturate slowly with interaction strength)
BM25_K1, BM25_B = 100.0, 0.8
#: rows per dense similarity block (bounds memory at rows x columns floats)
SIMILARITY_CHUNK = 1024


def top_neighbours(similarity: np.ndarray, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``n`` of a dense ``(len(items), n_items)`` similarity block, each item itself excluded."""
    self_mask = sp.csr_matrix(
        (np.ones(len(items), dtype=np.float32), (np.arange(len(items)), items)), shape=similarity.shape
    )
    return top_k_excluding(similarity, self_mask, n)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def cosine_neighbours(vectors: np.ndarray, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` cosine neighbours of ``items`` among the rows of ``vectors``, the item itself excluded.

    Rows without a vector (norm 0) score 0 against everything.
    """
    unit = unit_rows(np.asarray(vectors, dtype=np.float32))
    items = np.asarray(items, dtype=np.int64)
    return top_neighbours(unit[items] @ unit.T, items, n)


def weighting_stats(matrix: sp.csr_matrix) -> tuple[np.ndarray, float]:
    """Per-column inverse document frequency and the mean row length of a (rows x columns) training matrix."""
    n_rows = matrix.shape[0]
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    idf = (np.log(max(n_rows, 1)) - np.log1p(df)).astype(np.float32)
    row_lengths = np.asarray(matrix.sum(axis=1)).ravel()
    return np.maximum(idf, 0.0), float(row_lengths.mean()) if n_rows else 1.0


def apply_weighting(
    matrix: sp.csr_matrix, scheme: Weighting, idf: np.ndarray, mean_length: float
) -> sp.csr_matrix:
    """TF-IDF or BM25 re-weighting of the entries (rows = documents, columns = terms); ``none`` copies."""
    if scheme not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {scheme!r}")
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    if scheme == "none":
        return out
    cols = out.indices
    if scheme == "tfidf":
        out.data = out.data * idf[cols]
        return out
    # BM25: saturating term frequency, normalised by the row's length relative to the mean
    rows = np.repeat(np.arange(out.shape[0]), np.diff(out.indptr))
    lengths = np.asarray(out.sum(axis=1)).ravel()
    norm = (1.0 - BM25_B) + BM25_B * lengths / max(mean_length, 1e-12)
    out.data = out.data * (BM25_K1 + 1.0) / (BM25_K1 * norm[rows] + out.data) * idf[cols]
    return out


def column_cosine_top_n(matrix: sp.csr_matrix, n: int, shrinkage: float = 0.0) -> sp.csr_matrix:
    """Columns x columns cosine similarity of ``matrix``, keeping each row's ``n`` largest (self excluded).

    ``shrinkage`` damps similarities backed by little data: ``dot / (|a| |b| + shrinkage)``. Computed in
    dense row blocks so memory stays at ``SIMILARITY_CHUNK x columns``; only positive similarities are kept.
    """
    csc = sp.csc_matrix(matrix, dtype=np.float32)
    gram_t = csc.T.tocsr()
    norms = np.sqrt(np.asarray(csc.multiply(csc).sum(axis=0)).ravel()).astype(np.float32)
    n_cols = matrix.shape[1]
    n = min(n, n_cols - 1)
    rows, cols, vals = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0, np.float32)]
    for start in range(0, n_cols if n > 0 else 0, SIMILARITY_CHUNK):
        block = np.arange(start, min(start + SIMILARITY_CHUNK, n_cols))
        sims = (gram_t[block] @ csc).toarray()
        denominator = np.outer(norms[block], norms)
        denominator += shrinkage + 1e-12
        np.divide(sims, denominator, out=sims)  # in place: the block is the step's largest array
        top, top_sims = top_neighbours(sims, block, n)
        keep = (top >= 0) & (top_sims > 0)
        rows.append(np.broadcast_to(block[:, None], top.shape)[keep])
        cols.append(top[keep])
        vals.append(top_sims[keep])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_cols, n_cols)
    )


def sparse_arrays(matrix: sp.csr_matrix, prefix: str) -> dict[str, np.ndarray]:
    """A CSR matrix as plain arrays for an npz file (no pickle)."""
    matrix = sp.csr_matrix(matrix)
    return {
        f"{prefix}_data": matrix.data,
        f"{prefix}_indices": matrix.indices,
        f"{prefix}_indptr": matrix.indptr,
        f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def sparse_from_arrays(arrays: dict[str, np.ndarray], prefix: str) -> sp.csr_matrix:
    """The CSR matrix of ``sparse_arrays``; ``ValueError`` where the arrays do not form one."""
    shape = tuple(int(x) for x in arrays[f"{prefix}_shape"])
    matrix = sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]), shape=shape
    )
    matrix.check_format(full_check=True)  # indices in range, indptr ascending: scipy checks only lengths
    return matrix
