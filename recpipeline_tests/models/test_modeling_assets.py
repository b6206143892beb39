"""The model assets through real Dagster: side information wired in, tuning metadata, similar items."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from dagster import AssetKey, AssetSelection, materialize

from recpipeline.models import load_model
from recpipeline.orchestration.definitions import build_assets
from recpipeline.orchestration.resources import build_resources
from recpipeline_tests.conftest import TINY_RANGE, tiny_config

#: runs the Dagster graph
pytestmark = pytest.mark.integration

MODELS = [
    {"popularity": {"segment_by": "auto"}},
    {"ease": {"regularization": 50.0}},
    {"hybrid": {"cf": "ease", "cf_params": {"regularization": 50.0}}},
    {"sasrec": {"epochs": 2, "factors": 16, "max_len": 10, "num_threads": 1}},
]


def test_models_with_context_tuning_and_similar_items(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path / "warehouse",
        models=MODELS,
        tuning={"trials": 2, "models": ["ease"]},
        similar_items={"model": "hybrid", "n": 5},
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # the model side only: everything the recommendations and similar items need, no evaluation
        wanted = [f"{next(iter(spec))}_recommendations" for spec in MODELS] + ["similar_items"]
        selection = AssetSelection.assets(*wanted).upstream() | AssetSelection.assets("quarantined_events")
        assets = build_assets(config)
        result = materialize(assets, resources=build_resources(config), tags=TINY_RANGE, selection=selection)
    finally:
        torch.set_num_threads(threads)
    assert result.success
    root = Path(config.storage)

    ease_meta = result.asset_materializations_for_node("ease_model")[0].metadata
    trials = ease_meta["tuning_trials"].value
    assert len(trials) == 2 and trials[0]["params"] == {}
    assert ease_meta["params"].value["regularization"] == 50.0  # configured values are never searched
    assert ease_meta["id_map_version"].value

    hybrid = load_model(root / "models" / "hybrid_model")
    assert hybrid.popularity_model_.segment_columns_.tolist() == ["age_band", "region"]
    assert hybrid.id_map_version_ == ease_meta["id_map_version"].value

    similar = pd.read_parquet(root / "similar_items.parquet")
    assert list(similar.columns) == ["item_id", "similar_item_id", "rank", "score", "model"]
    assert set(similar["model"]) == {"hybrid"} and similar["rank"].between(1, 5).all()
    assert (similar["item_id"] != similar["similar_item_id"]).all()
    assert similar["item_id"].nunique() > 0.9 * len(pd.read_parquet(root / "item_id_map.parquet"))

    for spec in MODELS:
        name = next(iter(spec))
        recs = pd.read_parquet(root / f"{name}_recommendations.parquet")
        assert recs["rank"].max() == config.k and len(recs) > 0, name
    assert AssetKey("similar_items") in {m.asset_key for m in result.get_asset_materialization_events()}
