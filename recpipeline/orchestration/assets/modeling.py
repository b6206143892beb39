"""One model asset and one recommendations asset per configured model (an asset factory), plus the
similar-items table of the configured model."""

import json
import os
import time
from collections.abc import Callable, Mapping

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
    Output,
    asset,
)

from recpipeline.config import ModelSpec, RunConfig
from recpipeline.evaluation.costs import COST_COLUMNS
from recpipeline.fitting.recommending import recommend_for_test_users, similar_items_by_id
from recpipeline.fitting.training import TrainedModel, TrainingData, train_model
from recpipeline.models import Recommender, RunSettings, model_class
from recpipeline.models.neural import TorchRecommender
from recpipeline.models.threads import configure as configure_threads
from recpipeline.orchestration.assets.model_inputs import model_inputs_in
from recpipeline.orchestration.instance import TRAINING_POOL, training_pool_limit
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


def use_threads(config: RunConfig, instance: DagsterInstance | None = None) -> None:
    """The torch thread budget of this step's process: the override, else the cores shared by the steps the
    executor runs at once (in-process: one at a time; multiprocess: max_concurrent, Dagster's default the
    CPU count). A step of the training pool passes the run's ``instance``: the pool's limit (1 in the
    instance recpipeline creates) caps how many of its steps run at once, whatever the executor allows."""
    execution = config.execution
    concurrent = 1 if execution.executor == "in_process" else execution.max_concurrent or os.cpu_count() or 1
    pool_limit = None if instance is None else training_pool_limit(instance)
    configure_threads(min(concurrent, pool_limit or concurrent), execution.num_threads)


def interactions_in(spec: ModelSpec) -> dict[str, list[str]]:
    """The input metadata of train / validation as the model reads them: the matrix columns plus the model's
    event columns (Parquet reads no others)."""
    columns = dict.fromkeys(MATRIX_COLUMNS + model_class(spec.name).event_columns)
    return {"columns": list(columns)}


def _model_asset(config: RunConfig, spec: ModelSpec):
    tuned = config.tuning.trials > 0 and spec.name in config.tuning.models
    neural = issubclass(model_class(spec.name), TorchRecommender)

    @asset(
        name=model_asset_name(spec.name),
        group_name=MODELS_GROUP,
        io_manager_key="model_io_manager",
        ins={"data": model_inputs_in(interactions_in(spec))},
        pool=TRAINING_POOL,
        kinds={"pytorch" if neural else "python"},
        description=f"The fitted `{spec.name}` model (params.json + npz / safetensors artefacts, no pickle)"
        + (f"; hyperparameters chosen from {config.tuning.trials} trials on validation" if tuned else "")
        + ("; refit on train + validation with what validation chose." if config.evaluation.refit else "."),
    )
    def fit_model(context: AssetExecutionContext, data: TrainingData) -> Output[Recommender]:
        use_threads(config, context.instance)
        settings = RunSettings(seed=config.seed, k=config.k)
        trials = config.tuning.trials if tuned else 0
        refit = config.evaluation.refit
        trained = train_model(
            spec.name,
            spec.params,
            settings,
            data,
            trials,
            context.log.info,
            refit,
            trial_epochs=config.tuning.trial_epochs,
            validation_users=config.evaluation.validation_users,
        )
        context.log.info(f"{spec.name}: fitted in {trained.cost.wall_s:.1f} s")
        return Output(trained.model, metadata=fit_metadata(trained, config, tuned))

    return fit_model


def fit_metadata(trained: TrainedModel, config: RunConfig, tuned: bool) -> dict[str, object]:
    """A model asset's metadata: timings and costs, what validation chose, parameters, the id maps' size."""
    model = trained.model
    timings = {
        name: round(seconds, 3)
        for name, seconds in (("fit_seconds", trained.seconds), ("refit_seconds", trained.refit_seconds))
        if seconds is not None
    }
    tuning = {"tuning_trials": MetadataValue.json(_jsonable(trained.trials))} if tuned else {}
    chosen = {} if trained.epochs is None else {"epochs": trained.epochs}
    # a model fitted once on train + validation (it chose nothing there) has no validation score
    if trained.seconds is not None:
        chosen[f"validation_ndcg@{config.k}"] = round(trained.validation_ndcg, 6)
    cost = trained.cost
    costs = {
        "fit_s": round(cost.wall_s, 3),
        "cpu_s": round(cost.cpu_s, 3),
        "peak_rss_mb": round(cost.peak_rss_mb, 1),
        **({} if cost.epochs_run is None else {"epochs_run": cost.epochs_run}),
    }
    chooser = trained.validation_fit or model
    if getattr(chooser, "validation_curve_", None):  # torch models: what early stopping saw, epoch by epoch
        costs["validation_curve"] = MetadataValue.json(
            [{"epoch": epoch, "ndcg": round(ndcg, 6)} for epoch, ndcg in chooser.validation_curve_]
        )
    if model.provenance_ is not None:  # a backtest fit: where it started from
        costs["warm_start_from"] = cost.warm_start_from or "cold"
        if cost.cold_reason:
            costs["cold_start_reason"] = cost.cold_reason
    return {
        **timings,
        **costs,
        "refit": config.evaluation.refit,
        **chosen,
        "params": MetadataValue.json(_jsonable(model.get_params())),
        "n_users": model.n_users_,
        "n_items": model.n_items_,
        "id_map_version": model.id_map_version_ or "",
        **tuning,
    }


def metered_recommendations(recommend: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, float]]:
    """The table ``recommend`` makes, and its scoring time per 1,000 users (metadata of the asset)."""
    started = time.perf_counter()
    table = recommend()
    seconds = time.perf_counter() - started
    users = table["user_idx"].nunique()
    return table, {
        "n_users": int(users),
        "score_ms_per_1k_users": round(1e6 * seconds / max(users, 1), 3),
    }


def cost_table(
    instance: DagsterInstance, assets: Mapping[str, tuple[str, str]], partition: str | None = None
) -> pd.DataFrame:
    """``evaluation.costs.COST_COLUMNS`` per model from the metadata of its model and recommendations assets
    (``assets``: model -> (model asset, recommendations asset)) of ``partition``."""
    rows = []
    for model, (fitted, recommended) in assets.items():
        row = {
            **latest_metadata(instance, fitted, partition),
            **latest_metadata(instance, recommended, partition),
        }
        rows.append({**row, "model": model})
    table = pd.DataFrame(rows).reindex(columns=list(COST_COLUMNS))
    numbers = [column for column in COST_COLUMNS if column not in ("model", "warm_start_from")]
    table[numbers] = table[numbers].apply(pd.to_numeric, errors="coerce")
    return table


def latest_metadata(instance: DagsterInstance, asset: str, partition: str | None) -> dict[str, object]:
    """The metadata values of the asset's latest materialization (of ``partition``), {} when there is none."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1,
        ascending=False,
    ).records
    if not records:
        return {}
    metadata = records[0].asset_materialization.metadata
    return {key: value.value for key, value in metadata.items()}


def _recommendations_asset(config: RunConfig, spec: ModelSpec):
    @asset(
        name=recommendations_asset_name(spec.name),
        group_name=RECOMMENDATIONS_GROUP,
        ins={
            "model": AssetIn(model_asset_name(spec.name)),
            "data": model_inputs_in(interactions_in(spec)),
            # of the test window only the pairs that pick the users to recommend for
            "test": AssetIn(metadata={"columns": ["user_idx", "item_idx"]}),
        },
        kinds={"pandas", "parquet"},
        description=f"Top-{config.k} unseen items per evaluated user from `{spec.name}`.",
    )
    def recommend(
        context: AssetExecutionContext, model: Recommender, data: TrainingData, test: pd.DataFrame
    ) -> Output[pd.DataFrame]:
        use_threads(config)
        table, metadata = metered_recommendations(
            lambda: recommend_for_test_users(
                model,
                spec.name,
                data.train,
                data.validation,
                test,
                config.k,
                data.user_id_map,
                data.item_id_map,
                data.user_profiles,
            )
        )
        context.log.info(f"{spec.name}: {len(table)} recommendations for {metadata['n_users']} users")
        return Output(table, metadata=metadata)

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
