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
from recpipeline.evaluation.external import read_external_lists
from recpipeline.evaluation.reports import (
    MetricsOverview,
    ReportInputs,
    metrics_overview,
    report_figures,
    report_html,
    report_markdown,
)
from recpipeline.evaluation.run import EvaluationSettings, EvaluationSplits, evaluate_run
from recpipeline.evaluation.verdict import evaluated_families, verdict_lines, verdict_markdown
from recpipeline.orchestration.assets.modeling import model_asset_name, recommendations_asset_name
from recpipeline.orchestration.resources import Warehouse

GROUP = "evaluation"
EXTERNAL_ASSET = "external_recommendations"
REPORT_PATH = "report/report.html"
REPORT_ASSET = "report"
# the report asset's page in the UI, same origin as the page linking to it: a browser opens it (a file://
# link from an http page is blocked); the page shows the whole report as Markdown, plots included
REPORT_UI_URL = f"/assets/{REPORT_ASSET}"


def metrics_metadata(overview: MetricsOverview, extra: dict[str, object]) -> dict[str, object]:
    """The metrics asset's metadata in display order: the overview's Markdown (verdict first), the link to
    the report, ``extra``, then the overview's numbers (the only entries the UI plots across runs)."""
    return {
        **{key: MetadataValue.md(text) for key, text in overview.markdown.items()},
        "report": MetadataValue.url(REPORT_UI_URL),
        **extra,
        **overview.numbers,
    }


def build_evaluation_assets(config: RunConfig) -> list:
    settings = config.evaluation
    sessions = config.split.kind == "sessions"
    # the session protocol scores the fitted models on each session prefix, not the per-user lists
    rec_inputs = {
        f"recs_{m}": AssetIn(recommendations_asset_name(m)) for m in config.model_names if not sessions
    }
    if settings.external_recommendations:
        rec_inputs["recs_external"] = AssetIn(EXTERNAL_ASSET)
    model_inputs = {f"model_{m}": AssetIn(model_asset_name(m)) for m in config.model_names}

    @multi_asset(
        group_name=GROUP,
        ins={**rec_inputs, **model_inputs},
        outs={
            # one step for the whole evaluation (each step is a process under the multiprocess executor);
            # output "result" (asset key metrics) keeps result.output_for_node("metrics") working
            "result": AssetOut(
                key="metrics",
                kinds={"pandas", "parquet"},
                description="Per model x segment x metric x K (definitions in docs/metrics.md; segments in "
                "docs/evaluation.md; the headline is segment with_history), plus rmse / mae where the data "
                "has explicit ratings; who served each row's lists (served_by), whether its segment is below "
                "evaluation.min_segment_users (flagged); with run id and as-of date. Metadata: the verdict, "
                "the headline table, every metric, charts comparing the models, a link to the report.",
            ),
            "metrics_per_user": AssetOut(
                kinds={"pandas", "parquet"},
                description="Per model and evaluated user: accuracy and diversity at every K (segment `all` "
                "relevance) and the user's segment (warm / cold / new_users); the paired samples of the "
                "significance tests.",
            ),
            "significance": AssetOut(
                kinds={"pandas", "parquet"},
                description="Each model against the baseline, per user segment of at least "
                "evaluation.min_segment_users users: mean per-user difference of ndcg / recall at every K, "
                "paired bootstrap 95% CI, Wilcoxon signed-rank p-value, Holm-adjusted p-value.",
            ),
            "metrics_history": AssetOut(
                kinds={"pandas", "parquet"},
                description="Every run's metrics (run_id, as_of, model, segment, metric, k, value, "
                "served_by), appended to the previous table run after run; re-running a run replaces its "
                "rows.",
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
        user_id_map: pd.DataFrame,
        **inputs,
    ):
        evaluation = evaluate_run(
            EvaluationSplits(train, validation, test, item_catalog, item_id_map, user_id_map),
            model_lists={m: inputs.get(f"recs_{m}") for m in config.model_names},
            external=inputs.get("recs_external"),
            models={m: inputs[f"model_{m}"] for m in config.model_names},
            settings=EvaluationSettings(
                ks=config.ks,
                k=config.k,
                seed=config.seed,
                cold_max_interactions=settings.cold_max_interactions,
                rating_weight=config.event_weights.get("rating", 0.0),
                baseline=settings.baseline,
                bootstrap_samples=settings.bootstrap_samples,
                alpha=settings.alpha,
                min_segment_users=settings.min_segment_users,
                relevant_event_types=settings.relevant_event_types,
                min_rating=settings.min_rating,
                session_targets=settings.session_targets if sessions else None,
                session_recommend_seen=settings.session_recommend_seen,
            ),
            run_id=context.run.run_id,
            previous_history=warehouse.read_previous("metrics_history"),
        )
        table = evaluation.metrics
        context.log.info("\n" + evaluation.summary)
        families = evaluated_families(table["model"], config.model_names)
        verdict = verdict_lines(table, evaluation.significance, families, config.k)
        context.log.info("verdict\n" + verdict_markdown(verdict))
        overview = metrics_overview(table, verdict, evaluation.history, config.k)
        extra = {
            "headline_segment": evaluation.headline_segment,
            "as_of": table["as_of"].iloc[0],
            "users_per_segment": MetadataValue.json(evaluation.users_per_segment),
        }
        if sessions:
            # models that cannot serve a prefix are named here rather than scored wrong
            extra["prefix_support"] = MetadataValue.json(evaluation.prefix_support)
        yield Output(table, output_name="result", metadata=metrics_metadata(overview, extra))
        yield Output(
            evaluation.per_user,
            output_name="metrics_per_user",
            metadata={"n_users": evaluation.n_evaluated_users},
        )
        context.log.info(f"significance against {evaluation.baseline}\n" + evaluation.significance_shown)
        yield Output(
            evaluation.significance,
            output_name="significance",
            metadata={
                "baseline": evaluation.baseline,
                "summary": MetadataValue.md(evaluation.significance_shown),
                "significantly_better": ", ".join(evaluation.significantly_better) or "none",
            },
        )
        history = evaluation.history
        yield Output(
            history, output_name="metrics_history", metadata={"n_runs": int(history["run_id"].nunique())}
        )

    @asset(name=REPORT_ASSET, group_name=GROUP, kinds={"html"})
    def report(
        context: AssetExecutionContext,
        metrics: pd.DataFrame,
        significance: pd.DataFrame,
        metrics_per_user: pd.DataFrame,
        metrics_history: pd.DataFrame,
        warehouse: Warehouse,
    ) -> MaterializeResult:
        """A self-contained HTML page (plots embedded) under `<storage>/report/report.html`; the same report,
        plots included, as Markdown in this asset's metadata (entry `report`), which the UI shows."""
        inputs = ReportInputs(
            metrics=metrics,
            significance=significance,
            per_user=metrics_per_user,
            history=metrics_history,
            families=evaluated_families(metrics["model"], config.model_names),
            ks=config.ks,
            n_boot=settings.bootstrap_samples,
            seed=config.seed,
        )
        figures = report_figures(inputs)
        location = warehouse.write_text(REPORT_PATH, report_html(inputs, figures))
        context.log.info(f"report written to {location}")
        return MaterializeResult(
            metadata={
                "report": MetadataValue.md(report_markdown(inputs, figures)),
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
        lists = read_external_lists(folder, config.model_names, config.k, user_id_map, item_id_map)
        for message in lists.warnings:
            context.log.warning(message)
        return Output(
            lists.table,
            metadata={"folder": MetadataValue.path(str(folder)), "files": MetadataValue.json(lists.counts)},
        )

    return external_recommendations
