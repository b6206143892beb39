"""One model asset and one recommendations asset per configured model (an asset factory)."""

import inspect
import json
import time

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output, asset

from recpipeline.config import ModelSpec, RunConfig
from recpipeline.encoding import interaction_matrix
from recpipeline.models import MODEL_REGISTRY, Recommender, create_model
from recpipeline.recommending import recommend_table
from recpipeline.splitting import unseen_relevant

MODELS_GROUP = "models"
RECOMMENDATIONS_GROUP = "recommendations"


def model_asset_name(model: str) -> str:
    return f"{model}_model"


def recommendations_asset_name(model: str) -> str:
    return f"{model}_recommendations"


def model_params(config: RunConfig, spec: ModelSpec) -> dict:
    """The spec's hyperparameters, with the run's seed and K where the model takes them."""
    accepted = inspect.signature(MODEL_REGISTRY[spec.name].__init__).parameters
    params = dict(spec.params)
    if "seed" in accepted:
        params.setdefault("seed", config.seed)
    if "k" in accepted:
        params.setdefault("k", config.k)
    return params


def build_model_assets(config: RunConfig) -> list:
    assets = []
    for spec in config.models:
        assets += [_model_asset(config, spec), _recommendations_asset(config, spec)]
    return assets


def _model_asset(config: RunConfig, spec: ModelSpec):
    @asset(
        name=model_asset_name(spec.name),
        group_name=MODELS_GROUP,
        io_manager_key="model_io_manager",
        kinds={"pytorch" if spec.name in {"mult_vae"} else "python"},
        description=f"The fitted `{spec.name}` model (params.json + npz / safetensors artefacts, no pickle).",
    )
    def fit_model(
        context: AssetExecutionContext,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        user_id_map: pd.DataFrame,
        item_id_map: pd.DataFrame,
    ) -> Output[Recommender]:
        shape = (len(user_id_map), len(item_id_map))
        params = model_params(config, spec)
        model = create_model(spec.name, params)
        started = time.perf_counter()
        model.fit(
            interaction_matrix(train, *shape), interaction_matrix(validation, *shape), log=context.log.info
        )
        seconds = time.perf_counter() - started
        context.log.info(f"{spec.name}: fitted in {seconds:.1f} s")
        return Output(
            model,
            metadata={
                "fit_seconds": round(seconds, 3),
                "params": MetadataValue.json(json.loads(json.dumps(params, default=str))),
                "n_users": shape[0],
                "n_items": shape[1],
            },
        )

    return fit_model


def _recommendations_asset(config: RunConfig, spec: ModelSpec):
    @asset(
        name=recommendations_asset_name(spec.name),
        group_name=RECOMMENDATIONS_GROUP,
        ins={"model": AssetIn(model_asset_name(spec.name))},
        kinds={"pandas", "parquet"},
        description=f"Top-{config.k} unseen items per evaluated user from `{spec.name}`.",
    )
    def recommend(
        context: AssetExecutionContext,
        model: Recommender,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        test: pd.DataFrame,
        user_id_map: pd.DataFrame,
        item_id_map: pd.DataFrame,
    ) -> pd.DataFrame:
        known = pd.concat([train, validation], ignore_index=True)
        history = interaction_matrix(known, len(user_id_map), len(item_id_map))
        users = np.unique(unseen_relevant(test, known)["user_idx"].to_numpy())
        cold_start = np.bincount(known["item_idx"].to_numpy(), minlength=len(item_id_map)).astype(np.float32)
        table = recommend_table(
            model,
            spec.name,
            users,
            history,
            config.k,
            user_ids=_ids_by_index(user_id_map),
            item_ids=_ids_by_index(item_id_map),
            cold_start_scores=cold_start,
        )
        context.log.info(f"{spec.name}: {len(table)} recommendations for {len(users)} users")
        return table

    return recommend


def _ids_by_index(id_map: pd.DataFrame) -> np.ndarray:
    ids = np.empty(len(id_map), dtype=object)
    ids[id_map["idx"].to_numpy()] = id_map["id"].to_numpy()
    return ids
