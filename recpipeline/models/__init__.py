"""Recommenders behind one interface (``Recommender``) and the registry that builds them by config name.

The model classes are importable from here (``from recpipeline.models import ALS``) but load on first use,
so importing the package (e.g. to validate configuration) does not import torch.
"""

from __future__ import annotations

from typing import Any

from recpipeline.contracts import MODEL_NAMES, has_item_similarity
from recpipeline.models.base import MODEL_FAMILIES, ArtefactError, Recommender, RunSettings, no_log
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.registry import (
    MODEL_CLASS_NAMES,
    MODEL_REGISTRY,
    create_model,
    load_model,
    model_class,
)

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
    *MODEL_CLASS_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in MODEL_CLASS_NAMES:
        return model_class(MODEL_CLASS_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
