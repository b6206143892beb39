"""The backtest: the training-and-evaluation chain at cut dates, one partition per cut, so that a backfill
over a range of cuts is a rolling-origin backtest; and the verdict over time across every cut materialized.

Per cut (``cut_*`` assets, partitioned by cut date): the splits and id maps as they were when the cut's test
window ended (``preparation.cuts``), each model's fits — continuing the previous materialized cut's fits of
the same lineage when ``backtest.warm_start`` allows (``fitting.warm_start``) — its top-K lists, and the cut's
metrics, significance and costs. Unpartitioned: ``backtest`` and ``backtest_costs``, every cut's rows.
"""

import datetime as dt

import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
    asset,
    multi_asset,
)

from recpipeline.config import ModelSpec, RunConfig
from recpipeline.evaluation.backtest import (
    BACKTEST_COSTS_TABLE,
    BACKTEST_TABLE,
    backtest_summary,
    backtest_table,
    costs_over_time,
    verdict_over_time,
)
from recpipeline.evaluation.reports import backtest_html, markdown_table, over_time_chart
from recpipeline.evaluation.serving import REPORT_FOLDER, report_url
from recpipeline.evaluation.verdict import evaluated_families, verdict_markdown
from recpipeline.fitting.recommending import recommend_for_test_users
from recpipeline.fitting.training import CutOrigin, TrainingData, WarmStarts, train_model
from recpipeline.models import RunSettings
from recpipeline.orchestration.assets.evaluation import evaluate_models_of_run
from recpipeline.orchestration.assets.modeling import (
    cost_table,
    fit_metadata,
    interactions_in,
    metered_recommendations,
    use_threads,
)
from recpipeline.orchestration.instance import TRAINING_POOL
from recpipeline.orchestration.io_managers import read_model
from recpipeline.orchestration.resources import Warehouse
from recpipeline.preparation.cuts import cut_data, cut_range, cut_windows
from recpipeline.preparation.splitting import SPLIT_KINDS, split_for_run
from recpipeline.sources import open_source

GROUP = "backtest"
BACKTEST_ASSET = BACKTEST_TABLE
BACKTEST_COSTS_ASSET = BACKTEST_COSTS_TABLE
BACKTEST_PAGE = "backtest.html"
BACKTEST_REPORT_PATH = f"{REPORT_FOLDER}/{BACKTEST_PAGE}"
SPLIT_OUTPUTS = ("train", "validation", "test", "user_id_map", "item_id_map")
CUT_TABLES = ("metrics", "significance", "costs")
#: a run tagged so recomputes its cut cold, whatever backtest.warm_start says (reproducibility)
COLD_TAG = "recpipeline/cold-start"
PREVIOUS_CUT = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


def cut_asset(name: str) -> str:
    return f"cut_{name}"


def cut_model_asset(model: str) -> str:
    return cut_asset(f"{model}_model")


def cut_validation_fit_asset(model: str) -> str:
    return cut_asset(f"{model}_validation_fit")


def cut_recommendations_asset(model: str) -> str:
    return cut_asset(f"{model}_recommendations")


def cut_partitions(config: RunConfig) -> TimeWindowPartitionsDefinition | None:
    """One partition per cut date (YYYY-MM-DD) every ``backtest.every_days`` from the first possible cut to
    the last one; None where the split kind does not roll over cut dates (any but temporal)."""
    if not SPLIT_KINDS[config.split.kind].rolls:
        return None
    first_day, last_day = open_source(config).days()
    last_day = last_day or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    try:
        first, last = cut_range(first_day, last_day, config.split, config.backtest)
    except ValueError:
        return None  # too few days for a cut: no backtest assets (recpipeline backtest says why)
    every = config.backtest.every_days
    # weekly cuts fall on the first cut's weekday (cron counts Sunday as 0)
    cron = "0 0 * * *" if every == 1 else f"0 0 * * {first.isoweekday() % 7}"
    return TimeWindowPartitionsDefinition(
        start=first.isoformat(),
        end=(last + dt.timedelta(days=every)).isoformat(),
        cron_schedule=cron,
        fmt="%Y-%m-%d",
        timezone="UTC",
    )


def build_backtest_assets(config: RunConfig) -> list:
    partitions = cut_partitions(config)
    if partitions is None:
        return []
    assets = [_cut_splits(config, partitions)]
    for spec in config.models:
        assets += [_cut_fits(config, spec, partitions), _cut_recommendations(config, spec, partitions)]
    return [*assets, _cut_evaluation(config, partitions), _backtest(config)]


def _cut_date(context: AssetExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)


def _cut_splits(config: RunConfig, partitions: TimeWindowPartitionsDefinition):
    @multi_asset(
        group_name=GROUP,
        partitions_def=partitions,
        outs={
            cut_asset(name): AssetOut(kinds={"pandas", "parquet"}, description=description)
            for name, description in (
                ("train", "The cut's training interactions: before its validation window."),
                ("validation", "The cut's validation window (split.validation_days before the test window)."),
                ("test", "The cut's test window: the split.test_days after the cut date."),
                ("user_id_map", "The user id map as it was when the cut's test window ended."),
                ("item_id_map", "The item id map as it was when the cut's test window ended."),
            )
        },
    )
    def cut_splits(
        context: AssetExecutionContext,
        interactions: pd.DataFrame,
        user_id_map: pd.DataFrame,
        item_id_map: pd.DataFrame,
    ):
        cut = _cut_date(context)
        data = cut_data(interactions, user_id_map, item_id_map, cut, config.split)
        run = split_for_run(
            data.interactions,
            data.user_id_map,
            data.item_id_map,
            config.event_weights,
            config.split,
            seed=config.seed,
            preparation=config.preparation,
            end=pd.Timestamp(data.windows.end, tz="UTC"),
        )
        key = context.partition_key
        frames = {**run.splits._asdict(), "user_id_map": data.user_id_map, "item_id_map": data.item_id_map}
        for name in SPLIT_OUTPUTS:
            yield Output(
                {key: frames[name]},
                output_name=cut_asset(name),
                metadata={"cut": key, "rows": len(frames[name]), "test_end": str(data.windows.end)},
            )

    return cut_splits


def _cut_fits(config: RunConfig, spec: ModelSpec, partitions: TimeWindowPartitionsDefinition):
    model_key, fit_key = cut_model_asset(spec.name), cut_validation_fit_asset(spec.name)
    tuned = config.tuning.trials > 0 and spec.name in config.tuning.models

    @multi_asset(
        name=cut_asset(spec.name),
        group_name=GROUP,
        partitions_def=partitions,
        pool=TRAINING_POOL,
        ins={
            "train": AssetIn(cut_asset("train"), metadata=interactions_in(spec)),
            "validation": AssetIn(cut_asset("validation"), metadata=interactions_in(spec)),
            "user_id_map": AssetIn(cut_asset("user_id_map")),
            "item_id_map": AssetIn(cut_asset("item_id_map")),
        },
        # each cut continues the previous cut's fits: a backfill over a range of cuts runs them in date order
        deps=[AssetDep(model_key, partition_mapping=PREVIOUS_CUT)],
        outs={
            model_key: AssetOut(
                io_manager_key="model_io_manager",
                description=f"`{spec.name}` fitted for the cut's test window (lineage final).",
            ),
            fit_key: AssetOut(
                io_manager_key="model_io_manager",
                is_required=False,
                description=f"`{spec.name}` fitted on the cut's train, chosen on its validation (lineage "
                "validation); only for models that choose something on validation.",
            ),
        },
        can_subset=False,
    )
    def cut_fits(
        context: AssetExecutionContext,
        train: dict,
        validation: dict,
        user_id_map: dict,
        item_id_map: dict,
        item_catalog: pd.DataFrame,
        user_profiles: pd.DataFrame,
    ):
        use_threads(config, context.instance)
        key = context.partition_key
        windows = cut_windows(_cut_date(context), config.split)
        origin = CutOrigin(
            key, context.run.run_id, windows.validation_start.isoformat(), windows.test_start.isoformat()
        )
        warm_allowed = config.backtest.warm_start and context.run.tags.get(COLD_TAG) != "true"
        warm = _previous_fits(context, config, spec.name, key) if warm_allowed else WarmStarts()
        trained = train_model(
            spec.name,
            spec.params,
            RunSettings(seed=config.seed, k=config.k),
            TrainingData(
                train[key], validation[key], user_id_map[key], item_id_map[key], item_catalog, user_profiles
            ),
            config.tuning.trials if tuned else 0,
            context.log.info,
            config.evaluation.refit,
            max_epochs=config.backtest.max_epochs,
            trial_epochs=config.tuning.trial_epochs,
            cut=origin,
            warm=warm,
            validation_users=config.evaluation.validation_users,
        )
        yield Output(
            {key: trained.model}, output_name=model_key, metadata=fit_metadata(trained, config, tuned)
        )
        if trained.validation_fit is not None:
            yield Output({key: trained.validation_fit}, output_name=fit_key)

    return cut_fits


def _previous_fits(context: AssetExecutionContext, config: RunConfig, model: str, key: str) -> WarmStarts:
    """The latest materialized earlier cut's fits of ``model``, by the lineage each records."""
    done = context.instance.get_materialized_partitions(AssetKey(cut_model_asset(model)))
    earlier = sorted(partition for partition in done if partition < key)
    if not earlier:
        return WarmStarts()
    fits = [
        read_model(config.storage, asset, earlier[-1])
        for asset in (cut_validation_fit_asset(model), cut_model_asset(model))
    ]
    by_lineage = {
        fit.provenance_["lineage"]: fit for fit in fits if fit is not None and fit.provenance_ is not None
    }
    return WarmStarts(validation=by_lineage.get("validation"), final=by_lineage.get("final"))


def _cut_recommendations(config: RunConfig, spec: ModelSpec, partitions: TimeWindowPartitionsDefinition):
    model = spec.name

    @asset(
        name=cut_recommendations_asset(model),
        group_name=GROUP,
        partitions_def=partitions,
        ins={
            "model": AssetIn(cut_model_asset(model)),
            "train": AssetIn(cut_asset("train"), metadata=interactions_in(spec)),
            "validation": AssetIn(cut_asset("validation"), metadata=interactions_in(spec)),
            "test": AssetIn(cut_asset("test"), metadata={"columns": ["user_idx", "item_idx"]}),
            "user_id_map": AssetIn(cut_asset("user_id_map")),
            "item_id_map": AssetIn(cut_asset("item_id_map")),
        },
        kinds={"pandas", "parquet"},
        description=f"Top-{config.k} unseen items per evaluated user of the cut's test window, by `{model}`.",
    )
    def cut_recommendations(
        context: AssetExecutionContext,
        model: dict,
        train: dict,
        validation: dict,
        test: dict,
        user_id_map: dict,
        item_id_map: dict,
        user_profiles: pd.DataFrame,
    ) -> Output[dict]:
        use_threads(config)
        key = context.partition_key
        table, metadata = metered_recommendations(
            lambda: recommend_for_test_users(
                model[key],
                spec.name,
                train[key],
                validation[key],
                test[key],
                config.k,
                user_id_map[key],
                item_id_map[key],
                user_profiles,
            )
        )
        return Output({key: table}, metadata=metadata)

    return cut_recommendations


def _cut_evaluation(config: RunConfig, partitions: TimeWindowPartitionsDefinition):
    names = config.model_names
    ins = {
        **{f"recs_{m}": AssetIn(cut_recommendations_asset(m)) for m in names},
        **{f"model_{m}": AssetIn(cut_model_asset(m)) for m in names},
        **{name: AssetIn(cut_asset(name)) for name in SPLIT_OUTPUTS},
    }

    @multi_asset(
        name=cut_asset("evaluation"),
        group_name=GROUP,
        partitions_def=partitions,
        ins=ins,
        outs={
            cut_asset("metrics"): AssetOut(
                kinds={"pandas", "parquet"}, description="The cut's metrics (as the metrics asset's)."
            ),
            cut_asset("significance"): AssetOut(
                kinds={"pandas", "parquet"}, description="Each model against the cut's baseline."
            ),
            cut_asset("costs"): AssetOut(
                kinds={"pandas", "parquet"},
                description="Per model: fit and CPU seconds, epochs, warm start, scoring time, size, peak "
                "RSS.",
            ),
        },
    )
    def cut_evaluation(context: AssetExecutionContext, item_catalog: pd.DataFrame, **inputs):
        key = context.partition_key
        evaluation = evaluate_models_of_run(
            config,
            context.run.run_id,
            {name: inputs[name][key] for name in SPLIT_OUTPUTS},
            item_catalog,
            recs={m: inputs[f"recs_{m}"][key] for m in names},
            models={m: inputs[f"model_{m}"][key] for m in names},
            previous_history=None,
        )
        costs = cost_table(
            context.instance,
            {m: (cut_model_asset(m), cut_recommendations_asset(m)) for m in names},
            key,
        )
        context.log.info(f"cut {key}\n" + evaluation.summary)
        yield Output({key: evaluation.metrics}, output_name=cut_asset("metrics"))
        yield Output({key: evaluation.significance}, output_name=cut_asset("significance"))
        yield Output(
            {key: costs},
            output_name=cut_asset("costs"),
            metadata={"costs": MetadataValue.md(markdown_table(costs))},
        )

    return cut_evaluation


def _backtest(config: RunConfig):
    @multi_asset(
        group_name=GROUP,
        deps=[cut_asset(t) for t in CUT_TABLES],
        outs={
            BACKTEST_ASSET: AssetOut(
                kinds={"pandas", "parquet"},
                description="Every materialized cut: per model, metric and K on the headline segment, the "
                "value and, against the cut's baseline, the difference, CI, Holm p and the smallest "
                "detectable difference. Metadata: the verdict over time and its chart.",
            ),
            BACKTEST_COSTS_ASSET: AssetOut(
                kinds={"pandas", "parquet"},
                description="Every materialized cut's costs per model (fit_s, cpu_s, epochs_run, "
                "warm_start_from, score_ms_per_1k_users, model_bytes, peak_rss_mb).",
            ),
        },
    )
    def backtest(context: AssetExecutionContext, warehouse: Warehouse):
        metrics = warehouse.read_partitions(cut_asset("metrics"))
        significance = warehouse.read_partitions(cut_asset("significance"))
        cuts = {cut: (metrics[cut], significance[cut]) for cut in metrics if cut in significance}
        families = evaluated_families(
            pd.concat([frame["model"] for frame, _ in cuts.values()]) if cuts else [], config.model_names
        )
        table = backtest_table(cuts, families)
        summary = backtest_summary(table)
        lines = verdict_over_time(table, summary, config.k)
        context.log.info("verdict over time\n" + verdict_markdown(lines))
        chart = over_time_chart(table, config.k)
        yield Output(
            table,
            output_name=BACKTEST_ASSET,
            metadata={
                "verdict_over_time": MetadataValue.md(
                    verdict_markdown(lines) + f"\n\n![ndcg@{config.k} per cut]({chart})"
                ),
                "summary": MetadataValue.md(markdown_table(summary)),
                "n_cuts": len(cuts),
            },
        )
        costs = costs_over_time(warehouse.read_partitions(cut_asset("costs")))
        html = backtest_html(lines, summary, costs, chart, config.k)
        page = warehouse.write_text(BACKTEST_REPORT_PATH, html)
        context.log.info(f"backtest report written to {page}")
        yield Output(
            costs,
            output_name=BACKTEST_COSTS_ASSET,
            metadata={
                "n_cuts": int(costs["cut_date"].nunique()),
                # served on loopback beside the UI (`recpipeline ui`, `recpipeline report`)
                "html_report": MetadataValue.url(report_url(BACKTEST_PAGE)),
                "path": MetadataValue.path(page),
            },
        )

    return backtest
