"""The content model's feature vectors when the catalogue has gaps (UCI Online Retail has no categories and
titles missing for some items): a gap is no evidence, never a reason to rank an item first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recpipeline.models import FitContext
from recpipeline.models.content import Content

CATALOGUE = pd.DataFrame(
    {
        "title": ["red enamel mug", "blue enamel mug", "green enamel mug", "jute tote bag", None],
        "category": pd.Series([None] * 5, dtype="string"),
        "brand": pd.Series([None] * 5, dtype="string"),
        "price": [2.0, 2.5, 2.0, 4.0, 3.0],
    }
)


@pytest.mark.parametrize("encoder", [None, "all-MiniLM-L6-v2"])
def test_items_without_title_or_category_do_not_outrank_matching_titles(encoder) -> None:
    model = Content(text_encoder=encoder, min_df=1)
    model.fit(sp.csr_matrix((1, len(CATALOGUE))), context=FitContext(item_features=CATALOGUE))
    # every category missing: no shared "<missing>" column that would make all items alike
    width = model.item_vectors_.shape[1]
    assert width == (384 if encoder else 8) + 1  # text | no categorical column | price
    history = sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 1])), shape=(1, len(CATALOGUE)))
    scores = model.score(np.array([0]), history)[0]
    assert scores[2] > scores[3] > scores[4]  # the third mug, then the titled bag, then the untitled item
    norms = np.linalg.norm(model.item_vectors_.toarray(), axis=1)
    assert norms[4] < 0.5 < norms[:4].min()  # the untitled item keeps only its (weighted) price


def test_a_missing_category_is_no_category() -> None:
    items = CATALOGUE.assign(category=pd.Series(["mugs", "mugs", None, "bags", None], dtype="string"))
    model = Content(text_columns=[], categorical_columns=["category"], numeric_columns=[])
    model.fit(sp.csr_matrix((1, len(items))), context=FitContext(item_features=items))
    vectors = model.item_vectors_.toarray()
    np.testing.assert_array_equal(vectors, [[0, 1], [0, 1], [0, 0], [1, 0], [0, 0]])
