"""Evaluation: the metrics table over every model's recommendations."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output, asset

from recpipeline.config import RunConfig
from recpipeline.evaluation import evaluate_models
from recpipeline.orchestration.assets.modeling import recommendations_asset_name
from recpipeline.reports import markdown_table, metrics_summary

GROUP = "evaluation"


def build_evaluation_assets(config: RunConfig) -> list:
    rec_inputs = {f"recs_{m}": AssetIn(recommendations_asset_name(m)) for m in config.model_names}

    @asset(group_name=GROUP, ins=rec_inputs, kinds={"pandas", "parquet"})
    def metrics(
        context: AssetExecutionContext,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        test: pd.DataFrame,
        item_catalog: pd.DataFrame,
        item_id_map: pd.DataFrame,
        **recommendations: pd.DataFrame,
    ) -> Output[pd.DataFrame]:
        """Per model x segment x metric x K: DESIGN.md's metric definitions, with run id and as-of date."""
        as_of = str((test["timestamp"].max().normalize() + pd.Timedelta(days=1)).date())
        table = evaluate_models(
            {m: recommendations[f"recs_{m}"] for m in config.model_names},
            train=train,
            validation=validation,
            test=test,
            item_catalog=item_catalog,
            item_id_map=item_id_map,
            ks=[config.k],
        )
        table["run_id"] = context.run_id
        table["as_of"] = as_of
        summary = metrics_summary(table)
        context.log.info("\n" + markdown_table(summary))
        per_model = {
            f"{row.model}/{row.metric}@{row.k}": float(row.value)
            for row in table[table["segment"] == "all"].itertuples()
        }
        return Output(
            table,
            metadata={"summary": MetadataValue.md(markdown_table(summary)), "as_of": as_of, **per_model},
        )

    return [metrics]
