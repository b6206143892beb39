"""Refit (``evaluation.refit``): choices made on validation, then a fresh fit on train + validation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from dagster import AssetSelection, materialize

from recpipeline.fitting.holdout import holdout_ndcg, validation_scorer
from recpipeline.fitting.training import TrainingData, train_model
from recpipeline.models import FitContext, create_model
from recpipeline.models.base import RunSettings
from recpipeline.orchestration.definitions import build_assets
from recpipeline.orchestration.resources import build_resources
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline_tests.conftest import TINY_RANGE, tiny_config
from recpipeline_tests.models.conftest import (
    ITEMS_PER_BLOCK,
    N_ITEMS,
    N_USERS,
    USERS_PER_GROUP,
    events_of,
    planted_blocks,
)

#: an item no one touched in train, bought in the validation window by the first 15 users of group 0
NEW_ITEM = N_ITEMS
BOUGHT = 15
#: the other group-0 users: the new item belongs in their lists once a model has learned it
NOT_BOUGHT = np.arange(BOUGHT, USERS_PER_GROUP)
SHAPE = (N_USERS, N_ITEMS + 1)
SETTINGS = RunSettings(seed=7, k=3)
VAE_PARAMS = {"hidden": 16, "latent": 4, "epochs": 15, "patience": 2, "num_threads": 1}


@pytest.fixture(scope="module")
def data() -> TrainingData:
    """The planted blocks as event tables (validation one day after train), plus NEW_ITEM in validation."""
    train, held = planted_blocks()
    held = sp.lil_matrix(sp.csr_matrix(held, shape=SHAPE))
    held[:BOUGHT, NEW_ITEM] = 1.0
    rng = np.random.default_rng(0)
    validation = events_of(sp.csr_matrix(held), rng)
    validation["timestamp"] += pd.Timedelta(days=1)
    return TrainingData(
        events_of(sp.csr_matrix(train, shape=SHAPE), rng),
        validation,
        pd.DataFrame({"id": [f"u{i}" for i in range(SHAPE[0])], "idx": np.arange(SHAPE[0])}),
        pd.DataFrame({"id": [f"i{i}" for i in range(SHAPE[1])], "idx": np.arange(SHAPE[1])}),
        pd.DataFrame({"item_id": pd.Series(dtype=str)}),
        pd.DataFrame({"user_id": pd.Series(dtype=str)}),
    )


def matrix(events: pd.DataFrame) -> sp.csr_matrix:
    return interaction_matrix(events, *SHAPE)


def everything(data: TrainingData) -> sp.csr_matrix:
    """Train + validation: the history the test window is recommended from."""
    return matrix(pd.concat([data.train, data.validation]))


@pytest.mark.parametrize(
    ("name", "params"), [("als", {"iterations": 10}), ("ease", {"regularization": 10.0})]
)
def test_only_the_refit_model_knows_an_item_seen_only_in_validation(name, params, data) -> None:
    seen = everything(data)
    other_blocks = np.arange(ITEMS_PER_BLOCK, N_ITEMS)

    before = train_model(name, params, SETTINGS, data, refit=False).model
    # fitted on train alone the model has learned nothing about the item: its score is exactly 0
    assert not before.score(NOT_BOUGHT, seen[NOT_BOUGHT])[:, NEW_ITEM].any()

    after = train_model(name, params, SETTINGS, data, refit=True).model
    scores = after.score(NOT_BOUGHT, seen[NOT_BOUGHT])
    # co-bought with group 0's items by 15 users, it now outranks every item of the other groups
    assert (scores[:, NEW_ITEM] > scores[:, other_blocks].max(axis=1)).all()
    top, _ = after.recommend(NOT_BOUGHT, seen, 3)  # two unseen group-0 items are left per user
    assert (top == NEW_ITEM).any(axis=1).all()
    if name == "als":
        assert not before.item_factors_[NEW_ITEM].any() and after.item_factors_[NEW_ITEM].any()


def test_a_model_that_chooses_nothing_on_validation_is_fitted_once(data) -> None:
    """Untuned ALS with refit: one fit, on train + validation — the model the two-fit path returned."""
    lines: list[str] = []
    trained = train_model("als", {"iterations": 10}, SETTINGS, data, log=lines.append, refit=True)
    assert lines[0] == "als: nothing to choose on validation: one fit, on train + validation"
    assert trained.seconds is None and trained.refit_seconds > 0 and np.isnan(trained.validation_ndcg)
    direct = create_model("als", {"iterations": 10}, SETTINGS).fit(everything(data))
    np.testing.assert_array_equal(trained.model.item_factors_, direct.item_factors_)
    # tuned, it still fits on train first: validation picks the parameters
    tuned = train_model("als", {"iterations": 10}, SETTINGS, data, tuning_trials=2, refit=True)
    assert tuned.seconds > 0 and np.isfinite(tuned.validation_ndcg)


def test_refit_false_is_the_fit_on_train(data) -> None:
    """Without refit the asset is exactly the model fitted on train with validation (the old protocol)."""
    trained = train_model("mult_vae", VAE_PARAMS, SETTINGS, data, refit=False)
    train, validation = matrix(data.train), matrix(data.validation)
    context = FitContext(validate=validation_scorer(train, validation))
    old = create_model("mult_vae", VAE_PARAMS, SETTINGS).fit(train, validation, context=context)
    for key, value in old.module_.state_dict().items():
        assert torch.equal(trained.model.module_.state_dict()[key], value), key
    assert trained.refit_seconds is None and trained.epochs == old.best_epoch_
    assert trained.model.get_params() == old.get_params()
    assert trained.validation_ndcg == holdout_ndcg(old, train, validation, SETTINGS.k)


def test_torch_refit_runs_exactly_the_chosen_epochs(data) -> None:
    lines: list[str] = []
    trained = train_model("mult_vae", VAE_PARAMS, SETTINGS, data, log=lines.append, refit=True)
    first = train_model("mult_vae", VAE_PARAMS, SETTINGS, data, refit=False)
    chosen = first.epochs
    assert 1 <= chosen < VAE_PARAMS["epochs"]  # early stopping kept an earlier epoch
    assert trained.epochs == chosen and trained.validation_ndcg == first.validation_ndcg
    fixed = {"epochs": chosen, "total_anneal_steps": first.model.anneal_steps_}
    refit_lines = lines[lines.index(f"mult_vae: refit on train + validation with {fixed}") + 1 :]
    # no validation in the refit: one plain line per epoch, nothing kept or stopped early
    assert [line.split(":")[0] for line in refit_lines] == [
        f"mult_vae epoch {e}" for e in range(1, chosen + 1)
    ]
    assert not any("val ndcg" in line for line in refit_lines)
    model = trained.model
    assert model.get_params()["epochs"] == model.best_epoch_ == chosen
    # the refit anneals beta on the schedule the epochs were chosen under, and is the same seeded fit
    assert model.anneal_steps_ == first.model.anneal_steps_
    again = create_model("mult_vae", model.get_params()).fit(
        everything(data), context=FitContext(train_events=pd.concat([data.train, data.validation]))
    )
    for key, value in again.module_.state_dict().items():
        assert torch.equal(model.module_.state_dict()[key], value), key


def test_hybrid_refit_repeats_its_torch_cf_models_chosen_epochs(data) -> None:
    ids = data.item_id_map["id"]
    catalog = pd.DataFrame({"item_id": ids, "category": [f"c{i % 4}" for i in range(len(ids))]})
    data = replace(data, item_catalog=catalog)
    content = {"text_columns": [], "categorical_columns": ["category"], "numeric_columns": []}
    params = {"cf": "mult_vae", "cf_params": VAE_PARAMS, "content_params": content}
    first = train_model("hybrid", params, SETTINGS, data, refit=False).model
    chosen = first.cf_model_.best_epoch_
    assert 1 <= chosen < VAE_PARAMS["epochs"]
    assert first.refit_params()["cf_params"]["epochs"] == chosen
    refit = train_model("hybrid", params, SETTINGS, data, refit=True).model
    assert refit.cf_model_.get_params()["epochs"] == chosen


def test_sequence_refit_trains_on_the_validation_events(data) -> None:
    lines: list[str] = []
    params = {"factors": 8, "max_len": 3, "epochs": 2, "patience": 1, "num_threads": 1}
    train_model("gru4rec", params, SETTINGS, data, log=lines.append, refit=True)
    windows = [line for line in lines if "training windows" in line]
    # 5 next-item targets per user in train (6 items), 7 or 8 with validation: windows of 3 targets each
    assert windows == [
        f"gru4rec: {2 * N_USERS} training windows of 3 steps",
        f"gru4rec: {3 * N_USERS} training windows of 3 steps",
    ]


def test_tuned_refit_keeps_the_chosen_parameters(data) -> None:
    trained = train_model("ease", None, SETTINGS, data, tuning_trials=3, refit=True)
    best = max(trained.trials, key=lambda trial: trial["ndcg"])
    assert trained.validation_ndcg == best["ndcg"]
    assert trained.model.get_params() == create_model("ease", best["params"]).get_params()
    assert trained.refit_seconds > 0 and trained.epochs is None


@pytest.mark.integration
@pytest.mark.parametrize("refit", [True, False])
def test_model_asset_metadata(tmp_path: Path, refit: bool) -> None:
    config = tiny_config(tmp_path / "warehouse", evaluation={"refit": refit})
    # the model assets and what they need (the split makes test as well; quarantined_events comes with it)
    wanted = AssetSelection.assets("als_model", "mult_vae_model", "test", "quarantined_events")
    selection = wanted.upstream()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = materialize(
            build_assets(config), resources=build_resources(config), tags=TINY_RANGE, selection=selection
        )
    finally:
        torch.set_num_threads(threads)
    assert result.success
    als = result.asset_materializations_for_node("als_model")[0].metadata
    vae = result.asset_materializations_for_node("mult_vae_model")[0].metadata
    for meta in (als, vae):
        assert meta["refit"].value is refit
        assert ("refit_seconds" in meta) is refit
    # Mult-VAE chooses its epochs on validation; with refit, untuned ALS is fitted once, on train + validation
    for meta in (als, vae) if not refit else (vae,):
        assert 0.0 <= meta["validation_ndcg@5"].value <= 1.0
        assert meta["fit_seconds"].value > 0
    if refit:
        assert "validation_ndcg@5" not in als and "fit_seconds" not in als and als["refit_seconds"].value > 0
    assert "epochs" not in als and 1 <= vae["epochs"].value <= 3
    # the asset's params are the refit's: exactly the epochs kept (the configured 3 without refit)
    assert vae["params"].value["epochs"] == (vae["epochs"].value if refit else 3)
