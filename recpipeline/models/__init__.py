"""Recommenders behind one interface (``Recommender``) and the registry that builds them by config name.

The model classes are importable from here (``from recpipeline.models import ALS``) but load on first use,
so importing the package (e.g. to validate configuration) does not import torch.
"""

from __future__ import annotations

from typing import Any

from recpipeline.models.base import MODEL_FAMILIES, ArtefactError, Recommender, RunSettings, no_log
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.registry import (
    MODEL_NAMES,
    MODEL_REGISTRY,
    create_model,
    has_item_similarity,
    load_model,
    model_class,
)

#: class name -> registry name, for the classes this package re-exports lazily
_CLASSES = {
    "ALS": "als",
    "BPR": "bpr",
    "Content": "content",
    "EASE": "ease",
    "GRU4Rec": "gru4rec",
    "Hybrid": "hybrid",
    "ItemKNN": "item_knn",
    "MultVAE": "mult_vae",
    "NeuMF": "neumf",
    "Popularity": "popularity",
    "Random": "random",
    "RecentPopularity": "recent_popularity",
    "SASRec": "sasrec",
    "SVD": "svd",
    "UserKNN": "user_knn",
}

__all__ = [
    "MODEL_FAMILIES",
    "ArtefactError",
    "MODEL_NAMES",
    "MODEL_REGISTRY",
    "FitContext",
    "Recommender",
    "RunSettings",
    "ScoreContext",
    "create_model",
    "has_item_similarity",
    "load_model",
    "model_class",
    "no_log",
    *_CLASSES,
]


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return model_class(_CLASSES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
