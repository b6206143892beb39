"""The model registry: config name -> model class, imported on first use.

Adding a model is one module plus one line in ``contracts.MODEL_LOCATIONS``: configuration reads the names
from that table (``MODEL_NAMES``, ``has_item_similarity``) without importing any model module or torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from recpipeline.contracts import MODEL_LOCATIONS, MODEL_NAMES, unknown_model
from recpipeline.models.base import Recommender, RunSettings, read_params

#: class name -> registry name (``from recpipeline.models import ALS`` loads the class on first use)
MODEL_CLASS_NAMES: dict[str, str] = {class_name: name for name, (_, class_name, _) in MODEL_LOCATIONS.items()}


def model_class(name: str) -> type[Recommender]:
    """The class of registered model ``name`` (its module is imported now); ``ValueError`` if unknown."""
    if name not in MODEL_LOCATIONS:
        raise unknown_model(name)
    module, class_name, _ = MODEL_LOCATIONS[name]
    cls = getattr(importlib.import_module(module), class_name)
    if cls.name != name:
        raise TypeError(f"registry entry {name!r} is {module}.{class_name}, whose name is {cls.name!r}")
    return cls


class _Registry(Mapping[str, type[Recommender]]):
    """``MODEL_NAMES`` as a read-only mapping to the classes, each imported when first looked up."""

    def __getitem__(self, name: str) -> type[Recommender]:
        if name not in MODEL_LOCATIONS:
            raise KeyError(name)
        return model_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(MODEL_NAMES)

    def __len__(self) -> int:
        return len(MODEL_NAMES)

    def __contains__(self, name: object) -> bool:
        return name in MODEL_LOCATIONS


#: every model by config name (a lazy mapping: membership and iteration import nothing)
MODEL_REGISTRY: Mapping[str, type[Recommender]] = _Registry()


def create_model(
    name: str, params: dict[str, Any] | None = None, settings: RunSettings | None = None
) -> Recommender:
    """Instantiate model ``name`` with ``params`` plus the run ``settings`` the model declares
    (``Recommender.run_settings``; a value in ``params`` wins); config mistakes surface as a ``ValueError``
    naming them (``models.settings.SettingError``)."""
    cls = model_class(name)
    return cls(**(settings.apply(cls, params) if settings is not None else dict(params or {})))


def load_model(directory: Path | str) -> Recommender:
    """Reload a saved model, every file checked (``Recommender.load``); the class comes from the ``model``
    field of its ``params.json``."""
    directory = Path(directory)
    return model_class(read_params(directory, MODEL_NAMES)["model"]).load(directory)
