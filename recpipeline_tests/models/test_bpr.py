import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr

from recpipeline.models import create_model
from recpipeline.models.bpr import with_uniform_negatives


def zipf_log(users: int = 300, items: int = 60, seed: int = 0) -> sp.csr_matrix:
    """Each user touches 10 items drawn by a Zipf-like popularity (item 0 the most popular)."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, items + 1)
    rows = [rng.choice(items, 10, replace=False, p=weights / weights.sum()) for _ in range(users)]
    indices = np.concatenate(rows)
    return sp.csr_matrix(
        (np.ones(len(indices), np.float32), (np.repeat(np.arange(users), 10), indices)), shape=(users, items)
    )


@pytest.mark.parametrize("share", [0.5, 0.75, 0.9])
def test_uniform_negatives_pad_the_matrix_with_rows_of_every_item(share):
    matrix = zipf_log()
    padded = with_uniform_negatives(matrix, share)
    assert (padded[: matrix.shape[0]] != matrix).nnz == 0
    padding = padded[matrix.shape[0] :]
    assert (np.diff(padding.indptr) == matrix.shape[1]).all()  # every padded row holds every item once
    assert share <= padding.nnz / padded.nnz < share + matrix.shape[1] / padded.nnz
    assert with_uniform_negatives(matrix, 0.0) is matrix


def test_uniform_negatives_let_the_item_bias_learn_popularity():
    """With implicit's own popularity-drawn negatives a popular item is as often a negative as a positive, so
    its bias learns little; with uniform negatives the bias ranks the items by popularity."""
    matrix = zipf_log()
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    correlation = {}
    for share in (0.0, 0.75):
        model = create_model("bpr", {"factors": 8, "iterations": 30, "uniform_negatives": share})
        model.fit(matrix)
        assert model.user_factors_.shape[0] == matrix.shape[0]  # the padding rows are no users
        correlation[share] = spearmanr(model.item_factors_[:, -1], popularity).statistic
    assert correlation[0.75] > 0.9 > correlation[0.0]
