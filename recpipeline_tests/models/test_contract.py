"""Every registered model runs the model contract (recpipeline_tests/models/contract.py), with small, fast
settings: here, or next to the model's other tests (``test_<model>.py``); a registry entry without a contract
class in any test module of this folder fails ``test_every_registered_model_has_a_contract``.
"""

from __future__ import annotations

import importlib
import pkgutil

import recpipeline_tests.models as model_tests
from recpipeline.models import MODEL_NAMES
from recpipeline_tests.models.contract import ModelContract

SEQUENCE = {"factors": 8, "max_len": 8, "epochs": 2, "batch_size": 32, "dropout": 0.0}


class TestPopularity(ModelContract):
    name = "popularity"


class TestSegmentPopularity(ModelContract):
    name = "popularity"
    params = {"segment_by": ["region"]}


class TestRecentPopularity(ModelContract):
    name = "recent_popularity"
    params = {"half_life_days": 7}


class TestRandom(ModelContract):
    name = "random"


class TestItemKNN(ModelContract):
    name = "item_knn"


class TestUserKNN(ModelContract):
    name = "user_knn"


class TestALS(ModelContract):
    name = "als"
    params = {"factors": 4, "iterations": 5}


class TestBPR(ModelContract):
    name = "bpr"
    params = {"factors": 8, "iterations": 10}


class TestEASE(ModelContract):
    name = "ease"


class TestSVD(ModelContract):
    name = "svd"
    params = {"factors": 3}


class TestContent(ModelContract):
    name = "content"


class TestHybrid(ModelContract):
    name = "hybrid"
    params = {"cf_params": {"factors": 4, "iterations": 5}}


class TestMultVAE(ModelContract):
    name = "mult_vae"
    params = {"hidden": 16, "latent": 4, "epochs": 2, "batch_size": 32, "device": "cpu"}


class TestNeuMF(ModelContract):
    name = "neumf"
    params = {"factors": 4, "layers": [8, 4], "epochs": 2, "batch_size": 128, "device": "cpu"}


class TestSASRec(ModelContract):
    name = "sasrec"
    params = SEQUENCE


class TestGRU4Rec(ModelContract):
    name = "gru4rec"
    params = SEQUENCE


def test_every_registered_model_has_a_contract() -> None:
    modules = [
        importlib.import_module(f"{model_tests.__name__}.{info.name}")
        for info in pkgutil.iter_modules(model_tests.__path__)
        if info.name.startswith("test_")
    ]
    covered = {
        cls.name
        for module in modules
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, ModelContract) and cls is not ModelContract
    }
    missing = [name for name in MODEL_NAMES if name not in covered]
    assert not missing, f"registered models without a contract class in {model_tests.__name__}: {missing}"
