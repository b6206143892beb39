"""Warm starts: every torch model carries its learned rows over to grown id maps, and the lineage rule refuses
a start that has seen what the fit is judged on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recpipeline.fitting.training import CutOrigin, TrainingData, WarmStarts, train_model
from recpipeline.fitting.warm_start import Provenance, WarmStartRefused, choose_warm_start
from recpipeline.models.base import RunSettings
from recpipeline.models.context import FitContext
from recpipeline.models.neural import TorchRecommender, carry_over, resolve_device
from recpipeline.models.registry import MODEL_NAMES, create_model, model_class

TORCH_MODELS = [name for name in MODEL_NAMES if issubclass(model_class(name), TorchRecommender)]


def _module_shapes(name: str, n_users: int, n_items: int) -> dict[str, tuple[int, ...]]:
    model = create_model(name, {})
    model.n_users_, model.n_items_, model.device_ = n_users, n_items, resolve_device("cpu")
    return {key: tuple(p.shape) for key, p in model._build_module().named_parameters()}


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_every_parameter_that_grows_with_the_id_maps_is_declared(name: str):
    before, after = _module_shapes(name, 37, 53), _module_shapes(name, 41, 59)
    grown = {key for key in before if before[key] != after[key]}
    assert grown <= set(model_class(name).id_axes), (
        f"{name}: undeclared id axes {grown - set(model_class(name).id_axes)}"
    )


def _matrix(n_users: int, n_items: int, seed: int) -> tuple[sp.csr_matrix, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, n_users, 400), rng.integers(0, n_items, 400)
    matrix = sp.csr_matrix((np.ones(400, np.float32), (users, items)), shape=(n_users, n_items))
    events = pd.DataFrame(
        {
            "user_idx": users.astype(np.int32),
            "item_idx": items.astype(np.int32),
            "timestamp": pd.date_range("2026-01-01", periods=400, freq="min", tz="UTC"),
            "weight": np.ones(400, np.float32),
        }
    )
    return matrix, events


@pytest.mark.parametrize("name", ["mult_vae", "lightgcn", "bert4rec"])
def test_a_warm_start_keeps_the_known_rows_and_initialises_the_new_ones(name: str):
    matrix, events = _matrix(30, 40, 0)
    previous = create_model(name, {"epochs": 1, "seed": 3}).fit(
        matrix, None, context=FitContext(train_events=events)
    )
    grown = create_model(name, {"epochs": 1, "seed": 3})
    grown.n_users_, grown.n_items_, grown.device_ = 34, 47, resolve_device("cpu")
    with grown._seeded():
        fresh = grown._build_module()
    with grown._seeded():
        module = grown._build_module()
    carry_over(grown, previous, module)
    old = dict(previous.module_.named_parameters())
    for key, parameter in module.named_parameters():
        if key not in grown.id_axes:
            assert torch.equal(parameter, old[key]), key
            continue
        axis, blocks = grown.id_axes[key]
        start_old = start_new = 0
        for block in blocks:
            sizes = {"users": (30, 34), "items": (40, 47)}.get(block, (block, block))
            kept = parameter.narrow(axis, start_new, sizes[0])
            assert torch.equal(kept, old[key].narrow(axis, start_old, sizes[0])), key
            added = sizes[1] - sizes[0]
            if added:  # rows of users / items the previous fit never saw start as a cold fit's would
                new_rows = parameter.narrow(axis, start_new + sizes[0], added)
                assert torch.equal(
                    new_rows, dict(fresh.named_parameters())[key].narrow(axis, start_new + sizes[0], added)
                )
            start_old, start_new = start_old + sizes[0], start_new + sizes[1]


def _fitted(lineage: str, trained_until: str, params: dict | None = None) -> TorchRecommender:
    matrix, events = _matrix(20, 25, 1)
    model = create_model("mult_vae", {"epochs": 1, "hidden": 16, "latent": 4, **(params or {})})
    model.fit(matrix, None, context=FitContext(train_events=events, id_map_version="v1"))
    model.provenance_ = Provenance(lineage, "2026-10-05", "run-a", trained_until).as_dict()
    return model


PARAMS = {"epochs": 1, "hidden": 16, "latent": 4}


def _choose(previous, lineage="validation", until="2026-10-04", params=PARAMS):
    return choose_warm_start(
        previous,
        "mult_vae",
        {**create_model("mult_vae", params).get_params()},
        lineage,
        until,
        lambda *_: "v1",
    )


def test_a_fit_continues_the_previous_fit_of_its_own_lineage():
    previous = _fitted("validation", "2026-10-04")
    assert _choose(previous) == (previous, None)


def test_a_start_from_the_other_lineage_is_refused():
    with pytest.raises(WarmStartRefused, match="each lineage continues only itself"):
        _choose(_fitted("final", "2026-10-04"))


def test_a_start_that_has_seen_the_evaluation_window_is_refused():
    # the previous final fit saw up to 2026-10-06: a validation window starting 2026-10-04 would leak
    with pytest.raises(WarmStartRefused, match="has seen data up to 2026-10-06"):
        _choose(_fitted("validation", "2026-10-06"))


def test_other_settings_or_other_id_maps_start_cold_with_the_reason():
    previous = _fitted("validation", "2026-10-04")
    model, reason = _choose(previous, params={**PARAMS, "hidden": 32})
    assert model is None and "settings changed" in reason and "hidden" in reason
    model, reason = choose_warm_start(
        previous, "mult_vae", previous.get_params(), "validation", "2026-10-04", lambda *_: "other"
    )
    assert model is None and "not a prefix" in reason
    # only how long it trains differs: it may continue
    assert _choose(previous, params={**PARAMS, "epochs": 5})[0] is previous


def _fit_cut(cut: str, run: str, warm: WarmStarts | None = None):
    """mult_vae fitted for ``cut`` (validation the day before it, test from the day after)."""
    users = pd.DataFrame({"id": [f"u{i}" for i in range(20)], "idx": np.arange(20, dtype=np.int32)})
    items = pd.DataFrame({"id": [f"i{i}" for i in range(25)], "idx": np.arange(25, dtype=np.int32)})
    _, events = _matrix(20, 25, 2)
    empty = pd.DataFrame({"item_id": []}), pd.DataFrame({"user_id": []})
    data = TrainingData(events.iloc[:300], events.iloc[300:], users, items, *empty)
    day = pd.Timestamp(cut)
    origin = CutOrigin(
        cut, run, str((day - pd.Timedelta(days=1)).date()), str((day + pd.Timedelta(days=1)).date())
    )
    return train_model("mult_vae", PARAMS, RunSettings(seed=1, k=5), data, refit=True, cut=origin, warm=warm)


def test_train_model_records_both_lineages_and_continues_each():
    first = _fit_cut("2026-10-05", "run-a")
    assert first.model.provenance_["lineage"] == "final"
    assert first.validation_fit.provenance_["lineage"] == "validation"
    assert first.cost.warm_start_from is None and first.cost.cold_reason == "no earlier cut of this model"
    second = _fit_cut("2026-10-06", "run-b", WarmStarts(validation=first.validation_fit, final=first.model))
    assert second.cost.warm_start_from == "2026-10-05 (run run-a)"
    assert second.model.provenance_["warm_start_from"] == "2026-10-05 (run run-a)"
    assert second.validation_fit.provenance_["trained_until"] == "2026-10-05"
    assert second.validation_fit.provenance_["warm_start_from"] == "2026-10-05 (run run-a)"
    assert second.validation_fit.validation_curve_[0][0] == 0  # epoch 0: the starting weights, measured
    with pytest.raises(WarmStartRefused):  # a planted start from the wrong lineage
        _fit_cut("2026-10-07", "run-c", WarmStarts(validation=second.model, final=second.model))


def test_the_nightly_cap_bounds_the_epochs():
    from recpipeline.fitting.training import capped_epochs

    assert capped_epochs("mult_vae", {}, 2)["epochs"] == 2
    assert capped_epochs("mult_vae", {"epochs": 1}, 2)["epochs"] == 1
    assert capped_epochs("als", {}, 2) == {}
