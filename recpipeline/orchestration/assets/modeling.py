"""One model asset and one recommendations asset per configured model (an asset factory), plus the
similar-items table of the configured model."""

import json
import os

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output, asset

from recpipeline.config import ModelSpec, RunConfig
from recpipeline.models import Recommender, RunSettings, model_class
from recpipeline.models.neural import TorchRecommender
from recpipeline.models.recommending import recommend_for_test_users, similar_items_by_id
from recpipeline.models.threads import configure as configure_threads
from recpipeline.models.training import TrainingData, train_model
from recpipeline.orchestration.instance import TRAINING_POOL
from recpipeline.preparation.encoding import MATRIX_COLUMNS

MODELS_GROUP = "models"
RECOMMENDATIONS_GROUP = "recommendations"
SIMILAR_ITEMS_ASSET = "similar_items"


def model_asset_name(model: str) -> str:
    return f"{model}_model"


def recommendations_asset_name(model: str) -> str:
    return f"{model}_recommendations"


def build_model_assets(config: RunConfig) -> list:
    assets = []
    for spec in config.models:
        assets += [_model_asset(config, spec), _recommendations_asset(config, spec)]
    if config.similar_items.model is not None and config.similar_items.n > 0:
        assets.append(_similar_items_asset(config))
    return assets


def _use_threads(config: RunConfig) -> None:
    """The torch thread budget of this step's process: the override, else the cores shared by the steps the
    executor runs at once (in-process: one at a time; multiprocess: max_concurrent, Dagster's default the
    CPU count)."""
    execution = config.execution
    concurrent = 1 if execution.executor == "in_process" else execution.max_concurrent or os.cpu_count() or 1
    configure_threads(concurrent, execution.num_threads)


def _interactions_in(spec: ModelSpec) -> AssetIn:
    """Train / validation as the model reads them: the matrix columns plus the model's event columns (Parquet
    reads no others)."""
    columns = dict.fromkeys(MATRIX_COLUMNS + model_class(spec.name).event_columns)
    return AssetIn(metadata={"columns": list(columns)})


def _model_asset(config: RunConfig, spec: ModelSpec):
    tuned = config.tuning.trials > 0 and spec.name in config.tuning.models
    neural = issubclass(model_class(spec.name), TorchRecommender)

    @asset(
        name=model_asset_name(spec.name),
        group_name=MODELS_GROUP,
        io_manager_key="model_io_manager",
        ins={"train": _interactions_in(spec), "validation": _interactions_in(spec)},
        pool=TRAINING_POOL,
        kinds={"pytorch" if neural else "python"},
        description=f"The fitted `{spec.name}` model (params.json + npz / safetensors artefacts, no pickle)"
        + (f"; hyperparameters chosen from {config.tuning.trials} trials on validation" if tuned else "")
        + ("; refit on train + validation with what validation chose." if config.evaluation.refit else "."),
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
        _use_threads(config)
        data = TrainingData(train, validation, user_id_map, item_id_map, item_catalog, user_profiles)
        settings = RunSettings(seed=config.seed, k=config.k)
        trials = config.tuning.trials if tuned else 0
        refit = config.evaluation.refit
        trained = train_model(spec.name, spec.params, settings, data, trials, context.log.info, refit)
        model = trained.model
        timings = {
            name: round(seconds, 3)
            for name, seconds in (("fit_seconds", trained.seconds), ("refit_seconds", trained.refit_seconds))
            if seconds is not None
        }
        context.log.info(f"{spec.name}: fitted in {sum(timings.values()):.1f} s")
        tuning = {"tuning_trials": MetadataValue.json(_jsonable(trained.trials))} if tuned else {}
        chosen = {} if trained.epochs is None else {"epochs": trained.epochs}
        # a model fitted once on train + validation (it chose nothing there) has no validation score
        if trained.seconds is not None:
            chosen[f"validation_ndcg@{config.k}"] = round(trained.validation_ndcg, 6)
        return Output(
            model,
            metadata={
                **timings,
                "refit": refit,
                **chosen,
                "params": MetadataValue.json(_jsonable(model.get_params())),
                "n_users": len(user_id_map),
                "n_items": len(item_id_map),
                "id_map_version": model.id_map_version_ or "",
                **tuning,
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
        _use_threads(config)
        table = recommend_for_test_users(
            model, spec.name, train, validation, test, config.k, user_id_map, item_id_map, user_profiles
        )
        context.log.info(f"{spec.name}: {len(table)} recommendations for {table['user_idx'].nunique()} users")
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
        table = similar_items_by_id(model, name, user_id_map, item_id_map, n)
        context.log.info(f"{name}: {len(table)} neighbours for {table['item_id'].nunique()} items")
        return table

    return similar_items


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
