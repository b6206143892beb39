"""The model registry: config name -> model class, imported on first use.

Adding a model is one module plus one line in ``_LOCATIONS``. Nothing here imports a model module at import
time, so configuration can validate names (``MODEL_NAMES``, ``has_item_similarity``) without loading torch.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from recpipeline.models.base import Recommender, RunSettings, read_params

#: config name -> (module, class, whether the class implements similar_items); baselines first, then the
#: neighbourhood (incl. session) models, CF, content / hybrid and the neural models (sequence models last)
_LOCATIONS: dict[str, tuple[str, str, bool]] = {
    "popularity": ("recpipeline.models.popularity", "Popularity", False),
    "recent_popularity": ("recpipeline.models.recency", "RecentPopularity", False),
    "random": ("recpipeline.models.random_baseline", "Random", False),
    "item_knn": ("recpipeline.models.item_knn", "ItemKNN", True),
    "user_knn": ("recpipeline.models.user_knn", "UserKNN", False),
    "sknn": ("recpipeline.models.session_knn", "SKNN", False),
    "vsknn": ("recpipeline.models.session_knn", "VSKNN", False),
    "cooccurrence": ("recpipeline.models.cooccurrence", "Cooccurrence", True),
    "als": ("recpipeline.models.als", "ALS", True),
    "bpr": ("recpipeline.models.bpr", "BPR", True),
    "ease": ("recpipeline.models.ease", "EASE", True),
    "svd": ("recpipeline.models.svd", "SVD", True),
    "content": ("recpipeline.models.content", "Content", True),
    "hybrid": ("recpipeline.models.hybrid", "Hybrid", True),
    "mult_vae": ("recpipeline.models.mult_vae", "MultVAE", True),
    "recvae": ("recpipeline.models.recvae", "RecVAE", True),
    "cfgan": ("recpipeline.models.cfgan", "CFGAN", True),
    "neumf": ("recpipeline.models.neumf", "NeuMF", True),
    "lightgcn": ("recpipeline.models.lightgcn", "LightGCN", True),
    "sasrec": ("recpipeline.models.sasrec", "SASRec", True),
    "gru4rec": ("recpipeline.models.gru4rec", "GRU4Rec", True),
    "bert4rec": ("recpipeline.models.bert4rec", "BERT4Rec", True),
    "caser": ("recpipeline.models.caser", "Caser", True),
}

#: every registered model name, in registry order
MODEL_NAMES: tuple[str, ...] = tuple(_LOCATIONS)
#: class name -> registry name (``from recpipeline.models import ALS`` loads the class on first use)
MODEL_CLASS_NAMES: dict[str, str] = {class_name: name for name, (_, class_name, _) in _LOCATIONS.items()}


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODEL_NAMES))}")


def model_class(name: str) -> type[Recommender]:
    """The class of registered model ``name`` (its module is imported now); ``ValueError`` if unknown."""
    if name not in _LOCATIONS:
        raise _unknown(name)
    module, class_name, _ = _LOCATIONS[name]
    cls = getattr(importlib.import_module(module), class_name)
    if cls.name != name:
        raise TypeError(f"registry entry {name!r} is {module}.{class_name}, whose name is {cls.name!r}")
    return cls


def has_item_similarity(name: str) -> bool:
    """Whether model ``name`` implements ``similar_items`` (item embeddings or a similarity matrix), from the
    registry alone (no model module is imported; the contract tests check it against the class)."""
    if name not in _LOCATIONS:
        raise _unknown(name)
    return _LOCATIONS[name][2]


class _Registry(Mapping[str, type[Recommender]]):
    """``MODEL_NAMES`` as a read-only mapping to the classes, each imported when first looked up."""

    def __getitem__(self, name: str) -> type[Recommender]:
        if name not in _LOCATIONS:
            raise KeyError(name)
        return model_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(MODEL_NAMES)

    def __len__(self) -> int:
        return len(MODEL_NAMES)

    def __contains__(self, name: object) -> bool:
        return name in _LOCATIONS


#: every model by config name (a lazy mapping: membership and iteration import nothing)
MODEL_REGISTRY: Mapping[str, type[Recommender]] = _Registry()


def create_model(
    name: str, params: dict[str, Any] | None = None, settings: RunSettings | None = None
) -> Recommender:
    """Instantiate model ``name`` with ``params`` plus the run ``settings`` the model declares
    (``Recommender.run_settings``; a value in ``params`` wins); config mistakes surface as a ``ValueError``
    naming them."""
    cls = model_class(name)
    params = settings.apply(cls, params) if settings is not None else dict(params or {})
    known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(known))
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        names = ", ".join(map(repr, unknown))
        raise ValueError(f"model {name!r} has no parameter{plural} {names}; known: {', '.join(known)}")
    return cls(**params)


def load_model(directory: Path | str) -> Recommender:
    """Reload a saved model, every file checked (``Recommender.load``); the class comes from the ``model``
    field of its ``params.json``."""
    directory = Path(directory)
    return model_class(read_params(directory, MODEL_NAMES)["model"]).load(directory)
