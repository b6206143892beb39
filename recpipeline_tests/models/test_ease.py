"""EASE's closed form: the blocked Gram matrix and the in-place Cholesky inverse against the textbook formula,
and the refusal of catalogues too large for memory before anything is allocated."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recpipeline.models import ease
from recpipeline.models.ease import EASE, closed_form, gram_matrix


def _binary(n_users: int, n_items: int, seed: int) -> sp.csr_matrix:
    matrix = sp.random(n_users, n_items, density=0.1, random_state=seed, format="csr", dtype=np.float32)
    matrix.data[:] = 1.0
    return matrix


def test_blocked_gram_matrix_is_the_whole_product(monkeypatch) -> None:
    x = _binary(200, 50, seed=1)
    monkeypatch.setattr(ease, "BLOCK_BYTES", 8 * 50 * 7)  # blocks of 7 rows, the last one short
    gram = gram_matrix(x)
    assert gram.dtype == np.float64
    np.testing.assert_array_equal(gram, (x.T @ x).toarray())


def test_closed_form_equals_the_textbook_inverse(monkeypatch) -> None:
    x = _binary(300, 60, seed=2)
    monkeypatch.setattr(ease, "BLOCK_BYTES", 8 * 60 * 9)  # the inverse mirrored in blocks of 9 rows
    gram = (x.T @ x).toarray().astype(np.float64)
    precision = np.linalg.inv(gram + 20.0 * np.eye(60))
    expected = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(expected, 0.0)
    weights = closed_form(gram_matrix(x), 20.0)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, expected, rtol=1e-6, atol=1e-7)


def test_closed_form_names_the_setting_when_the_matrix_is_not_positive_definite() -> None:
    gram = np.array([[1.0, 2.0], [2.0, 1.0]])  # indefinite, as a noisy Gram matrix can be
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite .* raise regularization"):
        closed_form(gram, 0.0)


def test_a_catalogue_beyond_memory_is_refused_before_allocating(monkeypatch) -> None:
    x = _binary(100, 40, seed=3)

    def never(_):
        raise AssertionError("the Gram matrix was built")

    monkeypatch.setattr(ease, "gram_matrix", never)
    monkeypatch.setattr(ease, "available_memory", lambda: 10_000)  # bytes: 40 items need 19,200
    with pytest.raises(
        ValueError, match=r"ease: 40 items need about 0\.0 GiB .* lower max_items=20,000 below 28"
    ):
        EASE().fit(x)
    with pytest.raises(ValueError, match=r"ease: 40 items exceed max_items=30 .* raise max_items"):
        EASE(max_items=30).fit(x)


def test_a_noisy_private_fit_is_refused_at_its_own_larger_peak(monkeypatch) -> None:
    from recpipeline.models.private_ease import NOISY_PEAK_BYTES_PER_PAIR, PrivateEASE

    x = _binary(100, 40, seed=3)
    # room for plain EASE's peak over 40 items, not for the noisy fit's
    monkeypatch.setattr(ease, "available_memory", lambda: 40**2 * (ease.PEAK_BYTES_PER_PAIR + 1))
    assert NOISY_PEAK_BYTES_PER_PAIR > ease.PEAK_BYTES_PER_PAIR + 1
    PrivateEASE(epsilon=None).fit(x)
    with pytest.raises(ValueError, match=r"private_ease: 40 items need about .* more than the"):
        PrivateEASE(epsilon=8.0, max_items_per_user=4).fit(x)


def test_available_memory_is_a_positive_count_on_linux() -> None:
    available = ease.available_memory()
    assert available is None or available > 0
