"""Model registry: build a recommender from its config name, or reload one from its saved directory."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from recpipeline.models.als import ALS
from recpipeline.models.base import Recommender
from recpipeline.models.bpr import BPR
from recpipeline.models.content import Content
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.ease import EASE
from recpipeline.models.gru4rec import GRU4Rec
from recpipeline.models.hybrid import Hybrid
from recpipeline.models.item_knn import ItemKNN
from recpipeline.models.mult_vae import MultVAE
from recpipeline.models.neumf import NeuMF
from recpipeline.models.popularity import Popularity
from recpipeline.models.random_baseline import Random
from recpipeline.models.sasrec import SASRec
from recpipeline.models.svd import SVD
from recpipeline.models.user_knn import UserKNN

#: every model by config name, baselines first, then CF, content / hybrid and the neural models
MODEL_REGISTRY: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        Popularity,
        Random,
        ItemKNN,
        UserKNN,
        ALS,
        BPR,
        EASE,
        SVD,
        Content,
        Hybrid,
        MultVAE,
        NeuMF,
        SASRec,
        GRU4Rec,
    )
}

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "MODEL_REGISTRY",
    "SVD",
    "Content",
    "FitContext",
    "GRU4Rec",
    "Hybrid",
    "ItemKNN",
    "MultVAE",
    "NeuMF",
    "Popularity",
    "Random",
    "Recommender",
    "SASRec",
    "ScoreContext",
    "UserKNN",
    "create_model",
    "has_item_similarity",
    "load_model",
    "with_run_settings",
]


def _model_class(name: str) -> type[Recommender]:
    try:
        return MODEL_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODEL_REGISTRY))}") from None


def create_model(name: str, params: dict[str, Any] | None = None) -> Recommender:
    """Instantiate model ``name`` with ``params``; config mistakes surface as a ``ValueError`` naming them."""
    cls = _model_class(name)
    params = dict(params or {})
    known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(known))
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        names = ", ".join(map(repr, unknown))
        raise ValueError(f"model {name!r} has no parameter{plural} {names}; known: {', '.join(known)}")
    return cls(**params)


def with_run_settings(name: str, params: dict[str, Any] | None, **settings: Any) -> dict[str, Any]:
    """``params`` plus each run-level setting (e.g. ``seed``, ``k``) that model ``name`` accepts and
    ``params`` does not set already."""
    accepted = inspect.signature(_model_class(name).__init__).parameters
    return {**{key: value for key, value in settings.items() if key in accepted}, **(params or {})}


def load_model(directory: Path | str) -> Recommender:
    """Reload a saved model; the class comes from the ``model`` field of its ``params.json``."""
    directory = Path(directory)
    meta = json.loads((directory / "params.json").read_text())
    return _model_class(meta["model"]).load(directory)


def has_item_similarity(name: str) -> bool:
    """Whether model ``name`` implements ``similar_items`` (item embeddings or a similarity matrix)."""
    return _model_class(name).similar_items is not Recommender.similar_items
