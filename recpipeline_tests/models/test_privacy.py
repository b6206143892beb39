"""The differentially private models: the noise scale for a budget (against the mechanism's exact privacy
curve), the per-user contribution bound the sensitivity rests on, determinism under a seed, the non-private
limit (plain EASE, bit for bit), the contract, config errors, and that no private model becomes the baseline.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import integrate, stats

from recpipeline.config import ConfigError, parse_config
from recpipeline.evaluation.protocol import list_families
from recpipeline.evaluation.significance import choose_baseline
from recpipeline.fitting.checks import validate_models
from recpipeline.models import create_model
from recpipeline.models.privacy import clip_rows, gaussian_delta, gaussian_sigma
from recpipeline.models.private_ease import gram_noise_scale
from recpipeline.models.private_popularity import noise_scale
from recpipeline_tests.models.conftest import planted_blocks
from recpipeline_tests.models.contract import ModelContract


class TestPrivateEASE(ModelContract):
    name = "private_ease"
    params = {"epsilon": 8.0, "max_items_per_user": 4}  # the planted users have 6: clipping is exercised


class TestPrivatePopularity(ModelContract):
    name = "private_popularity"
    params = {"epsilon": 8.0, "max_items_per_user": 4}


def hockey_stick(epsilon: float, sigma: float, sensitivity: float) -> float:
    """The privacy curve of the Gaussian mechanism from its definition: sup over events S of
    P[N(sensitivity, sigma^2) in S] - e^eps P[N(0, sigma^2) in S], by numerical integration."""
    shifted, centred = stats.norm(sensitivity, sigma), stats.norm(0.0, sigma)
    # the integrand max(0, p - e^eps q) is positive right of the point where p = e^eps q
    start = sigma**2 * epsilon / sensitivity + sensitivity / 2
    value, _ = integrate.quad(
        lambda x: shifted.pdf(x) - math.exp(epsilon) * centred.pdf(x), start, np.inf, epsabs=1e-14
    )
    return value


@pytest.mark.parametrize(
    ("epsilon", "delta", "sensitivity"), [(0.5, 1e-6, 1.0), (4.0, 1e-6, 35.7), (8.0, 1e-5, 3.0)]
)
def test_sigma_is_the_smallest_that_keeps_delta(epsilon: float, delta: float, sensitivity: float) -> None:
    sigma = gaussian_sigma(epsilon, delta, sensitivity)
    # the closed-form curve agrees with the definition, at sigma and below it
    for scale in (1.0, 0.9):
        assert gaussian_delta(epsilon, scale * sigma, sensitivity) == pytest.approx(
            hockey_stick(epsilon, scale * sigma, sensitivity), rel=1e-4, abs=1e-12
        )
    assert gaussian_delta(epsilon, sigma, sensitivity) <= delta
    assert gaussian_delta(epsilon, sigma * (1 - 1e-6), sensitivity) > delta
    # linear in the sensitivity
    assert gaussian_sigma(epsilon, delta, 2 * sensitivity) == pytest.approx(2 * sigma, rel=1e-9)


def test_sigma_beats_the_classic_bound_where_that_holds() -> None:
    """For epsilon < 1 the classic sqrt(2 ln(1.25 / delta)) / epsilon is private too, and never tighter."""
    for epsilon in (0.1, 0.5, 0.9):
        classic = math.sqrt(2 * math.log(1.25 / 1e-6)) / epsilon
        assert gaussian_sigma(epsilon, 1e-6, 1.0) < classic
        assert gaussian_delta(epsilon, classic, 1.0) <= 1e-6


def test_each_model_scales_the_noise_by_its_sensitivity() -> None:
    # the Gram's upper triangle: c (c + 1) / 2 ones per user at most; the counts: c ones
    assert gram_noise_scale(4.0, 1e-6, 50) == gaussian_sigma(4.0, 1e-6, math.sqrt(50 * 51 / 2))
    assert noise_scale(4.0, 1e-6, 50) == gaussian_sigma(4.0, 1e-6, math.sqrt(50))
    assert gram_noise_scale(1.0, 1e-6, 50) > gram_noise_scale(4.0, 1e-6, 50) > gram_noise_scale(4.0, 1e-6, 10)


def test_one_user_moves_the_gram_triangle_by_at_most_the_sensitivity() -> None:
    """Remove one heavy user from a data set: after clipping, the upper triangle of X^T X changes by an L2
    norm of at most sqrt(c (c + 1) / 2), reached when the user keeps c items."""
    others = sp.random(30, 40, density=0.3, random_state=1, format="csr")
    heavy = sp.csr_matrix(np.ones((1, 40)))
    c = 7
    with_user = clip_rows(sp.vstack([others, heavy]), c, np.random.default_rng(2))
    without = clip_rows(others, c, np.random.default_rng(2))
    difference = (with_user.T @ with_user - without.T @ without).toarray()
    upper = difference[np.triu_indices(40)]
    assert np.linalg.norm(upper) == pytest.approx(math.sqrt(c * (c + 1) / 2))


def test_clipped_rows_keep_at_most_c_of_the_users_own_items() -> None:
    matrix = sp.random(50, 60, density=0.4, random_state=3, format="csr") * 5  # weights, not 0 / 1
    clipped = clip_rows(matrix, 8, np.random.default_rng(4))
    lengths, original = np.diff(clipped.indptr), np.diff(matrix.indptr)
    assert (lengths == np.minimum(original, 8)).all()
    assert (clipped.data == 1.0).all()
    assert (clipped.multiply(matrix) != 0).sum() == clipped.nnz  # a subset of each user's own items
    again = clip_rows(matrix, 8, np.random.default_rng(4))
    assert (clipped != again).nnz == 0
    assert (clipped != clip_rows(matrix, 8, np.random.default_rng(5))).nnz > 0
    assert (clip_rows(matrix, None, np.random.default_rng(4)) != (matrix != 0)).nnz == 0


def test_without_epsilon_and_clip_private_ease_is_plain_ease() -> None:
    train, _ = planted_blocks()
    private = create_model("private_ease", {"epsilon": None, "max_items_per_user": None}).fit(train)
    plain = create_model("ease").fit(train)
    np.testing.assert_array_equal(private.weights_, plain.weights_)
    np.testing.assert_array_equal(private.item_penalty_, plain.item_penalty_)
    users = np.arange(train.shape[0])
    for got, expected in zip(
        private.recommend(users, train, 5), plain.recommend(users, train, 5), strict=True
    ):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ["private_ease", "private_popularity"])
def test_the_seed_fixes_the_noise(name: str) -> None:
    train, _ = planted_blocks()
    state = "weights_" if name == "private_ease" else "item_scores_"

    def fitted(seed: int) -> np.ndarray:
        return getattr(create_model(name, {"epsilon": 1.0, "seed": seed}).fit(train), state)

    np.testing.assert_array_equal(fitted(7), fitted(7))
    assert not np.array_equal(fitted(7), fitted(8))
    exact = getattr(create_model(name, {"epsilon": None}).fit(train), state)
    assert not np.array_equal(fitted(7), exact)  # noise was added


def test_popularity_noise_has_the_mechanism_scale() -> None:
    """Counts of 0 everywhere: what comes back is the noise alone, N(0, sigma^2) per item."""
    empty = sp.csr_matrix((3, 20_000), dtype=np.float32)
    scores = (
        create_model("private_popularity", {"epsilon": 2.0, "max_items_per_user": 9}).fit(empty).item_scores_
    )
    sigma = noise_scale(2.0, 1e-6, 9)
    assert np.std(scores) == pytest.approx(sigma, rel=0.03)
    assert abs(np.mean(scores)) < 4 * sigma / math.sqrt(len(scores))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epsilon": 0}, "epsilon: expected a finite number > 0 or null"),
        ({"epsilon": -1.0}, "epsilon: expected a finite number > 0 or null"),
        ({"epsilon": 4.0, "max_items_per_user": None}, ": .*a finite epsilon needs max_items_per_user"),
        ({"delta": 1.0}, "delta: expected a finite number in \\(0, 1\\)"),
        ({"max_items_per_user": 0}, "max_items_per_user: expected an integer >= 1 or null"),
    ],
)
def test_a_bad_budget_is_a_config_error(params: dict, message: str) -> None:
    for name in ("private_ease", "private_popularity"):
        with pytest.raises(ConfigError, match=f"models\\.{name}.?{message}"):
            validate_models(parse_config({"models": [{name: params}]}))


def test_a_private_model_is_never_the_default_baseline() -> None:
    metrics = pd.DataFrame(
        {
            "model": ["private_ease", "popularity", "ease"],
            "segment": "all",
            "metric": "ndcg",
            "k": 10,
            "value": [0.5, 0.2, 0.3],
        }
    )
    families = list_families(metrics["model"], [])
    assert families["private_ease"] == "private"
    assert choose_baseline(metrics, 10, families) == "ease"
