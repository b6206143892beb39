"""Evaluation: metrics per model x segment x K, per-user values, significance, metric history, the report.

External recommendation files (``evaluation.external_recommendations``) join as extra models.
"""

from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)

from recpipeline.config import RunConfig
from recpipeline.evaluation import (
    NO_K,
    evaluate_models,
    per_user_values,
    prepare_evaluation,
    rating_errors,
)
from recpipeline.external import clean_recommendations, list_files, read_recommendations
from recpipeline.history import append_history
from recpipeline.models import Recommender
from recpipeline.orchestration.assets.modeling import model_asset_name, recommendations_asset_name
from recpipeline.orchestration.resources import Warehouse
from recpipeline.recommending import RECOMMENDATION_COLUMNS
from recpipeline.reports import (
    ReportInputs,
    markdown_table,
    metrics_summary,
    report_html,
    report_markdown,
    significance_summary,
)
from recpipeline.significance import choose_baseline, significance_table

GROUP = "evaluation"
EXTERNAL_ASSET = "external_recommendations"
REPORT_PATH = "report/report.html"


def build_evaluation_assets(config: RunConfig) -> list:
    settings = config.evaluation
    rec_inputs = {f"recs_{m}": AssetIn(recommendations_asset_name(m)) for m in config.model_names}
    if settings.external_recommendations:
        rec_inputs["recs_external"] = AssetIn(EXTERNAL_ASSET)
    model_inputs = {f"model_{m}": AssetIn(model_asset_name(m)) for m in config.model_names}

    def gather(inputs: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """Every model's lists by name: the configured models, then each external file."""
        lists = {m: inputs[f"recs_{m}"] for m in config.model_names}
        external = inputs.get("recs_external")
        if external is not None:
            lists.update({str(m): frame for m, frame in external.groupby("model", sort=True)})
        return lists

    @multi_asset(
        group_name=GROUP,
        ins={**rec_inputs, **model_inputs},
        outs={
            # one step for the whole evaluation (each step is a process under the multiprocess executor);
            # output "result" (asset key metrics) keeps result.output_for_node("metrics") working
            "result": AssetOut(
                key="metrics",
                kinds={"pandas", "parquet"},
                description="Per model x segment x metric x K (DESIGN.md's definitions; segments in "
                "recpipeline.evaluation), plus rmse / mae where the data has explicit ratings; with run id "
                "and as-of date.",
            ),
            "metrics_per_user": AssetOut(
                kinds={"pandas", "parquet"},
                description="Per model and evaluated user: accuracy and diversity at every K (segment `all` "
                "relevance) and the user's segment (warm / cold / new_users); the paired samples of the "
                "significance tests.",
            ),
            "significance": AssetOut(
                kinds={"pandas", "parquet"},
                description="Each model against the baseline, per user segment: mean per-user difference "
                "of ndcg / recall at every K, paired bootstrap 95% CI, Wilcoxon signed-rank p-value, "
                "Holm-adjusted p-value.",
            ),
            "metrics_history": AssetOut(
                kinds={"pandas", "parquet"},
                description="Every run's metrics (run_id, as_of, model, segment, metric, k, value), "
                "appended to the previous table run after run; re-running a run replaces its rows.",
            ),
        },
    )
    def metrics(
        context: AssetExecutionContext,
        warehouse: Warehouse,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        test: pd.DataFrame,
        item_catalog: pd.DataFrame,
        item_id_map: pd.DataFrame,
        **inputs,
    ):
        data = prepare_evaluation(
            train, validation, test, item_catalog, item_id_map, settings.cold_max_interactions
        )
        lists = gather(inputs)
        models: dict[str, Recommender] = {m: inputs[f"model_{m}"] for m in config.model_names}
        table = pd.concat(
            [
                evaluate_models(lists, data, config.ks),
                rating_errors(models, train, validation, test, config.event_weights.get("rating", 0.0)),
            ],
            ignore_index=True,
        )
        table["run_id"] = context.run.run_id
        table["as_of"] = str((test["timestamp"].max().normalize() + pd.Timedelta(days=1)).date())
        summary = markdown_table(metrics_summary(table, ks=(config.k,)))
        context.log.info("\n" + summary)
        top = table[(table["segment"] == "all") & table["k"].isin([config.k, NO_K])]
        per_model = {
            f"{r.model}/{r.metric}" + (f"@{r.k}" if r.k != NO_K else ""): float(r.value)
            for r in top.itertuples()
        }
        segments = table[table["metric"] == "ndcg"].groupby("segment")["n_users"].max()
        yield Output(
            table,
            output_name="result",
            metadata={
                "summary": MetadataValue.md(summary),
                "as_of": table["as_of"].iloc[0],
                "users_per_segment": MetadataValue.json({s: int(n) for s, n in segments.items()}),
                **per_model,
            },
        )

        per_user = per_user_values(lists, data, config.ks)
        yield Output(per_user, output_name="metrics_per_user", metadata={"n_users": len(data.user_segment)})

        baseline = choose_baseline(table, config.k, settings.baseline)
        tests = significance_table(
            per_user, baseline, config.ks, settings.bootstrap_samples, settings.alpha, config.seed
        )
        shown = significance_summary(tests, config.k)
        better = shown.loc[shown["significant"] & (shown["mean_diff"] > 0), "model"].unique()
        context.log.info(f"significance against {baseline}\n" + markdown_table(shown))
        yield Output(
            tests,
            output_name="significance",
            metadata={
                "baseline": baseline,
                "summary": MetadataValue.md(markdown_table(shown)),
                "significantly_better": ", ".join(better) or "none",
            },
        )

        history = append_history(warehouse.read_previous("metrics_history"), table)
        yield Output(
            history, output_name="metrics_history", metadata={"n_runs": int(history["run_id"].nunique())}
        )

    @asset(group_name=GROUP, kinds={"html"})
    def report(
        context: AssetExecutionContext,
        metrics: pd.DataFrame,
        significance: pd.DataFrame,
        metrics_per_user: pd.DataFrame,
        metrics_history: pd.DataFrame,
        warehouse: Warehouse,
    ) -> MaterializeResult:
        """A self-contained HTML page (plots embedded) under `<storage>/report/report.html`; the same tables
        as Markdown in this asset's metadata."""
        inputs = ReportInputs(
            metrics=metrics,
            significance=significance,
            per_user=metrics_per_user,
            history=metrics_history,
            ks=config.ks,
            n_boot=settings.bootstrap_samples,
            seed=config.seed,
        )
        location = warehouse.write_text(REPORT_PATH, report_html(inputs))
        context.log.info(f"report written to {location}")
        return MaterializeResult(
            metadata={
                "report": MetadataValue.md(report_markdown(inputs)),
                "path": MetadataValue.path(location),
            }
        )

    assets = [metrics, report]
    if settings.external_recommendations:
        assets.append(_external_asset(config, Path(settings.external_recommendations)))
    return assets


def _external_asset(config: RunConfig, folder: Path):
    @asset(name=EXTERNAL_ASSET, group_name="recommendations", kinds={"pandas", "parquet"})
    def external_recommendations(
        context: AssetExecutionContext, user_id_map: pd.DataFrame, item_id_map: pd.DataFrame
    ) -> Output[pd.DataFrame]:
        """Top-K lists from the configured folder (one model per file, named by the file stem), cleaned into
        the recommendations contract; dropped or truncated rows are counted in the metadata."""
        files = list_files(folder, reserved=config.model_names)
        tables, counts = [], {}
        for name, path in files.items():
            table, issues = clean_recommendations(
                read_recommendations(path), name, config.k, user_id_map, item_id_map
            )
            for message in issues.messages(str(path), config.k):
                context.log.warning(message)
            tables.append(table)
            counts[name] = {"rows": len(table), **issues.as_metadata()}
        if not tables:
            context.log.warning(f"{folder}: no .csv or .parquet recommendation files")
            tables.append(pd.DataFrame(columns=list(RECOMMENDATION_COLUMNS)))
        return Output(
            pd.concat(tables, ignore_index=True),
            metadata={"folder": MetadataValue.path(str(folder)), "files": MetadataValue.json(counts)},
        )

    return external_recommendations
