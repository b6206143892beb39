"""The contract every registered model keeps, as a mixin (in the style of implicit's
``RecommenderBaseTestMixin``): one small test class per model inherits it and sets ``name`` and ``params``.

The checks are behavioural, not about quality (the planted-structure tests in test_models.py are): fit,
score, recommend, similar_items where the model has it, a save / load round trip with identical
recommendations, determinism under a seed, seen items never recommended, k larger than the catalogue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from recpipeline.contracts import has_item_similarity
from recpipeline.models import MODEL_FAMILIES, Recommender, RunSettings, create_model, load_model, model_class
from recpipeline_tests.models.conftest import N_ITEMS, N_USERS


class ModelContract:
    """Inherit, set ``name`` (registry name) and ``params`` (small, fast settings)."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    k: ClassVar[int] = 5

    @classmethod
    def fit_model(cls, blocks) -> Recommender:
        train, held, context, _ = blocks
        return create_model(cls.name, cls.params).fit(train, held, context=context)

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, blocks) -> Recommender:
        return cls.fit_model(blocks)

    def recommend(self, model: Recommender, blocks, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        train, _, _, score_context = blocks
        return model.recommend(np.arange(N_USERS), train, k or self.k, score_context)

    # -- what the registry and the pipeline read from the class -------------------------------------------

    def test_class_declarations(self) -> None:
        cls = model_class(self.name)
        assert cls.name == self.name and cls.family in MODEL_FAMILIES
        assert has_item_similarity(self.name) == (cls.similar_items is not Recommender.similar_items)
        # every setting is declared with its help; run settings are declared, and every declared one is a
        # setting of that name
        assert all(field.description for field in cls.Settings.model_fields.values())
        accepted = set(cls.Settings.model_fields)
        assert set(cls.run_settings) <= {"seed", "k"} & accepted
        assert {"seed", "k"} & accepted <= set(cls.run_settings)
        applied = create_model(self.name, self.params, RunSettings(seed=3, k=4)).get_params()
        for setting, value in (("seed", 3), ("k", 4)):
            if setting in cls.run_settings and setting not in self.params:
                assert applied[setting] == value

    # -- fit, score, recommend ----------------------------------------------------------------------------

    def test_fit_records_the_shape(self, model: Recommender) -> None:
        assert (model.n_users_, model.n_items_) == (N_USERS, N_ITEMS)
        assert model.id_map_version_ == "v1"

    def test_score(self, model: Recommender, blocks) -> None:
        train, _, _, score_context = blocks
        users = np.array([0, 25, 59])
        scores = model.score(users, train[users], score_context)
        assert scores.shape == (3, N_ITEMS)

    def test_recommend_excludes_seen_items(self, model: Recommender, blocks) -> None:
        train = blocks[0]
        items, scores = self.recommend(model, blocks)
        assert items.shape == (N_USERS, self.k) and items.dtype == np.int32 and scores.dtype == np.float32
        for user in range(N_USERS):
            assert not np.isin(items[user], train[user].indices).any()
        assert np.all(np.diff(scores, axis=1) <= 0)

    def test_k_larger_than_the_catalogue(self, model: Recommender, blocks) -> None:
        train = blocks[0]
        items, scores = self.recommend(model, blocks, k=N_ITEMS + 7)
        assert items.shape == (N_USERS, N_ITEMS)
        n_unseen = N_ITEMS - np.diff(train.indptr)
        for user in range(N_USERS):
            listed = items[user][items[user] >= 0]
            assert len(set(listed.tolist())) == len(listed) <= n_unseen[user]
            assert np.isneginf(scores[user][items[user] < 0]).all()

    def test_similar_items(self, model: Recommender) -> None:
        items = np.array([0, 15, 29])
        if not has_item_similarity(self.name):
            with pytest.raises(NotImplementedError):
                model.similar_items(items, 3)
            return
        neighbours, sims = model.similar_items(items, 3)
        assert neighbours.shape == sims.shape == (3, 3)
        assert not (neighbours == items[:, None]).any()
        finite = np.isfinite(sims)
        assert np.all(np.diff(np.where(finite, sims, -np.inf), axis=1) <= 0)

    # -- persistence and determinism ----------------------------------------------------------------------

    def test_save_load_round_trip(self, model: Recommender, blocks, tmp_path: Path) -> None:
        model.save(tmp_path)
        meta = json.loads((tmp_path / "params.json").read_text())
        assert meta["model"] == self.name and meta["id_map_version"] == "v1"
        assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pt"))
        loaded = load_model(tmp_path)
        assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
        for got, expected in zip(self.recommend(loaded, blocks), self.recommend(model, blocks), strict=True):
            np.testing.assert_array_equal(got, expected)

    def test_same_seed_same_recommendations(self, model: Recommender, blocks) -> None:
        again = self.fit_model(blocks)
        for got, expected in zip(self.recommend(again, blocks), self.recommend(model, blocks), strict=True):
            np.testing.assert_array_equal(got, expected)

    def test_history_of_another_catalogue_is_refused(self, model: Recommender) -> None:
        with pytest.raises(ValueError, match=f"history has {N_ITEMS + 1} items"):
            model.recommend(np.array([0]), sp.csr_matrix((1, N_ITEMS + 1)), 3)
