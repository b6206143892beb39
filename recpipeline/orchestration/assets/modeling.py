"""One model asset and one recommendations asset per configured model (an asset factory), plus the
similar-items table of the configured model."""

import json
import time

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output, asset

from recpipeline.config import ModelSpec, RunConfig
from recpipeline.encoding import MATRIX_COLUMNS, interaction_matrix
from recpipeline.models import MODEL_REGISTRY, Recommender, create_model, with_run_settings
from recpipeline.models.context import FitContext, ScoreContext, align_rows, id_map_version
from recpipeline.models.neural import TorchRecommender
from recpipeline.models.tuning import tune
from recpipeline.orchestration.instance import TRAINING_POOL
from recpipeline.recommending import recommend_table, similar_items_table
from recpipeline.splitting import users_with_unseen

MODELS_GROUP = "models"
RECOMMENDATIONS_GROUP = "recommendations"
SIMILAR_ITEMS_ASSET = "similar_items"


def model_asset_name(model: str) -> str:
    return f"{model}_model"


def recommendations_asset_name(model: str) -> str:
    return f"{model}_recommendations"


def model_params(config: RunConfig, spec: ModelSpec) -> dict:
    """The spec's hyperparameters, with the run's seed and K where the model takes them."""
    return with_run_settings(spec.name, spec.params, seed=config.seed, k=config.k)


def build_model_assets(config: RunConfig) -> list:
    assets = []
    for spec in config.models:
        assets += [_model_asset(config, spec), _recommendations_asset(config, spec)]
    if config.similar_items.model is not None and config.similar_items.n > 0:
        assets.append(_similar_items_asset(config))
    return assets


def _interactions_in(spec: ModelSpec) -> AssetIn:
    """Train / validation as the model reads them: the matrix columns plus the model's event columns (Parquet
    reads no others)."""
    columns = dict.fromkeys(MATRIX_COLUMNS + MODEL_REGISTRY[spec.name].event_columns)
    return AssetIn(metadata={"columns": list(columns)})


def _model_asset(config: RunConfig, spec: ModelSpec):
    tuned = config.tuning.trials > 0 and spec.name in config.tuning.models
    neural = issubclass(MODEL_REGISTRY[spec.name], TorchRecommender)

    @asset(
        name=model_asset_name(spec.name),
        group_name=MODELS_GROUP,
        io_manager_key="model_io_manager",
        ins={"train": _interactions_in(spec), "validation": _interactions_in(spec)},
        pool=TRAINING_POOL,
        kinds={"pytorch" if neural else "python"},
        description=f"The fitted `{spec.name}` model (params.json + npz / safetensors artefacts, no pickle)"
        + (f"; hyperparameters chosen from {config.tuning.trials} trials on validation." if tuned else "."),
    )
    def fit_model(
        context: AssetExecutionContext,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        user_id_map: pd.DataFrame,
        item_id_map: pd.DataFrame,
        item_catalog: pd.DataFrame,
        user_profiles: pd.DataFrame,
    ) -> Output[Recommender]:
        shape = (len(user_id_map), len(item_id_map))
        params = model_params(config, spec)
        fit_context = FitContext(
            item_features=align_rows(item_catalog, item_id_map, "item_id"),
            user_features=align_rows(user_profiles, user_id_map, "user_id"),
            train_events=train,
            validation_events=validation,
            id_map_version=id_map_version(user_id_map, item_id_map),
        )
        train_matrix, validation_matrix = (
            interaction_matrix(train, *shape),
            interaction_matrix(validation, *shape),
        )
        started = time.perf_counter()
        metadata = {}
        if tuned:
            result = tune(
                spec.name,
                params,
                train_matrix,
                validation_matrix,
                trials=config.tuning.trials,
                k=config.k,
                seed=config.seed,
                context=fit_context,
                score_context=ScoreContext(history_events=train, user_features=fit_context.user_features),
                log=context.log.info,
            )
            model, params = result.model, result.params
            metadata["tuning_trials"] = MetadataValue.json(_jsonable(result.trials))
        else:
            model = create_model(spec.name, params)
            model.fit(train_matrix, validation_matrix, context=fit_context, log=context.log.info)
        seconds = time.perf_counter() - started
        context.log.info(f"{spec.name}: fitted in {seconds:.1f} s")
        return Output(
            model,
            metadata={
                "fit_seconds": round(seconds, 3),
                "params": MetadataValue.json(_jsonable(model.get_params())),
                "n_users": shape[0],
                "n_items": shape[1],
                "id_map_version": model.id_map_version_ or "",
                **metadata,
            },
        )

    return fit_model


def _recommendations_asset(config: RunConfig, spec: ModelSpec):
    @asset(
        name=recommendations_asset_name(spec.name),
        group_name=RECOMMENDATIONS_GROUP,
        ins={
            "model": AssetIn(model_asset_name(spec.name)),
            "train": _interactions_in(spec),
            "validation": _interactions_in(spec),
            # of the test window only the pairs that pick the users to recommend for
            "test": AssetIn(metadata={"columns": ["user_idx", "item_idx"]}),
        },
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
        user_profiles: pd.DataFrame,
    ) -> pd.DataFrame:
        _check_id_maps(model, spec.name, user_id_map, item_id_map)
        known = pd.concat([train, validation], ignore_index=True)
        history = interaction_matrix(known, len(user_id_map), len(item_id_map))
        users = users_with_unseen(test, history)  # the users the evaluation scores
        cold_start = np.bincount(known["item_idx"].to_numpy(), minlength=len(item_id_map)).astype(np.float32)
        score_context = ScoreContext(
            history_events=known if model.event_columns else None,
            user_features=align_rows(user_profiles, user_id_map, "user_id"),
        )
        table = recommend_table(
            model,
            spec.name,
            users,
            history,
            config.k,
            user_ids=_ids_by_index(user_id_map),
            item_ids=_ids_by_index(item_id_map),
            cold_start_scores=cold_start,
            context=score_context,
        )
        context.log.info(f"{spec.name}: {len(table)} recommendations for {len(users)} users")
        return table

    return recommend


def _similar_items_asset(config: RunConfig):
    name, n = config.similar_items.model, config.similar_items.n

    @asset(
        name=SIMILAR_ITEMS_ASSET,
        group_name=RECOMMENDATIONS_GROUP,
        ins={"model": AssetIn(model_asset_name(name))},
        kinds={"pandas", "parquet"},
        description=f"Top-{n} most similar items per item from `{name}` (item_id, similar_item_id, rank, "
        "score, model): the 'customers who viewed this also viewed' list.",
    )
    def similar_items(
        context: AssetExecutionContext,
        model: Recommender,
        user_id_map: pd.DataFrame,
        item_id_map: pd.DataFrame,
    ) -> pd.DataFrame:
        _check_id_maps(model, name, user_id_map, item_id_map)
        table = similar_items_table(model, name, _ids_by_index(item_id_map), n)
        context.log.info(f"{name}: {len(table)} neighbours for {table['item_id'].nunique()} items")
        return table

    return similar_items


def _check_id_maps(
    model: Recommender, name: str, user_id_map: pd.DataFrame, item_id_map: pd.DataFrame
) -> None:
    """Refuse a model fitted on other id maps: its indices would point at the wrong users and items."""
    current = id_map_version(user_id_map, item_id_map)
    if model.n_items_ != len(item_id_map) or model.id_map_version_ not in (None, current):
        raise ValueError(
            f"{model_asset_name(name)} was fitted on another id map ({model.n_items_} items, version "
            f"{model.id_map_version_}; now {len(item_id_map)} items, version {current}); "
            f"re-materialize {model_asset_name(name)}"
        )


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _ids_by_index(id_map: pd.DataFrame) -> pd.api.extensions.ExtensionArray:
    """The ids ordered by index; an Arrow string array, so tables take from it without Python strings."""
    return id_map["id"].astype(str).array.take(np.argsort(id_map["idx"].to_numpy(), kind="stable"))
