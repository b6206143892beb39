"""Evaluation: metrics per model x segment x K, per-user values, significance, metric history, the report.

External recommendation files (``evaluation.external_recommendations``) join as extra models.
"""

from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)

from recpipeline.config import RunConfig
from recpipeline.evaluation.backtest import BACKTEST_TABLE
from recpipeline.evaluation.explanations import explanation_examples
from recpipeline.evaluation.external import read_external_lists
from recpipeline.evaluation.reports import (
    MetricsOverview,
    ReportInputs,
    metrics_overview,
    report_figures,
    report_html,
    report_markdown,
)
from recpipeline.evaluation.run import EvaluationSettings, EvaluationSplits, RunEvaluation, evaluate_run
from recpipeline.evaluation.serving import REPORT_FOLDER, REPORT_PAGE, report_url
from recpipeline.evaluation.verdict import evaluated_families, verdict_lines, verdict_markdown
from recpipeline.orchestration.assets.explanations import (
    EXPLANATIONS_ASSET,
    FIDELITY_ASSET,
    explanation_inputs,
)
from recpipeline.orchestration.assets.modeling import (
    cost_table,
    latest_metadata,
    model_asset_name,
    recommendations_asset_name,
)
from recpipeline.orchestration.assets.preparation import VALIDATION_DRAWN
from recpipeline.orchestration.instance import TRAINING_POOL
from recpipeline.orchestration.resources import Warehouse
from recpipeline.preparation.splitting import SPLIT_KINDS

GROUP = "evaluation"
EXTERNAL_ASSET = "external_recommendations"
REPORT_PATH = f"{REPORT_FOLDER}/{REPORT_PAGE}"
REPORT_ASSET = "report"
#: the UI shows a Markdown metadata entry of fewer characters inline, a longer one behind "[Show Markdown]"
INLINE_MARKDOWN = 1000


def headline_chart_path(run_id: str) -> str:
    """Where a run's headline chart lies under the storage root: in the report folder, which the report
    server serves (one file per run, so an earlier materialization's verdict keeps its own chart)."""
    return f"{REPORT_FOLDER}/headline-{run_id}.png"


def verdict_entries(verdict: str, chart: str | None = None) -> dict[str, str]:
    """The verdict as the metrics asset's first metadata entry, short enough for the UI to show inline with
    ``chart`` (a Markdown image) under it: bullets that would make it too long are left to a second entry,
    ``verdict_full``, with the whole verdict."""
    image = f"\n\n{chart}" if chart else ""
    if len(verdict) + len(image) < INLINE_MARKDOWN:
        return {"verdict": verdict + image}
    note = "\n- (more in verdict_full)"
    lines = verdict.split("\n")
    shown = lines[:1]
    for line in lines[1:]:
        if len("\n".join([*shown, line])) + len(note) + len(image) >= INLINE_MARKDOWN:
            break
        shown.append(line)
    return {"verdict": "\n".join(shown) + note + image, "verdict_full": verdict}


def metrics_metadata(
    overview: MetricsOverview, extra: dict[str, object], chart_url: str | None = None
) -> dict[str, object]:
    """The metrics asset's metadata in display order: the verdict (with the headline chart, fetched from
    ``chart_url``), the link to the HTML report, the overview's other Markdown, ``extra``, then the overview's
    numbers (the only entries the UI plots across runs)."""
    markdown = dict(overview.markdown)
    chart = None
    if chart_url and overview.headline_chart:
        chart = f"![{overview.headline_chart[0]}]({chart_url})"
    verdict = verdict_entries(markdown.pop("verdict", ""), chart)
    return {
        **{key: MetadataValue.md(text) for key, text in verdict.items()},
        "report": MetadataValue.url(report_url()),
        **{key: MetadataValue.md(text) for key, text in markdown.items()},
        **extra,
        **overview.numbers,
    }


def evaluate_models_of_run(
    config: RunConfig,
    run_id: str,
    splits: dict[str, pd.DataFrame],
    item_catalog: pd.DataFrame,
    recs: dict[str, pd.DataFrame | None],
    models: dict[str, object],
    previous_history: pd.DataFrame | None,
    external: pd.DataFrame | None = None,
) -> RunEvaluation:
    """``evaluate_run`` with the configuration's settings, on ``splits`` (train, validation, test and the id
    maps): the metrics asset's evaluation and a backtest cut's."""
    settings = config.evaluation
    sessions = SPLIT_KINDS[config.split.kind].sessions
    return evaluate_run(
        EvaluationSplits(
            splits["train"],
            splits["validation"],
            splits["test"],
            item_catalog,
            splits["item_id_map"],
            splits["user_id_map"],
        ),
        model_lists=recs,
        external=external,
        models=models,
        settings=EvaluationSettings(
            ks=config.ks,
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
        run_id=run_id,
        previous_history=previous_history,
    )


def build_evaluation_assets(config: RunConfig) -> list:
    settings = config.evaluation
    sessions = SPLIT_KINDS[config.split.kind].sessions
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
        # metrics_history is read, appended to and written back by this step: in the training pool (limit
        # 1), two runs at once append one after the other instead of one overwriting the other's rows
        pool=TRAINING_POOL,
        outs={
            # one step for the whole evaluation (each step is a process under the multiprocess executor);
            # output "result" (asset key metrics) keeps result.output_for_node("metrics") working
            "result": AssetOut(
                key="metrics",
                kinds={"pandas", "parquet"},
                description="Every model's metrics per segment x metric x K (docs/metrics.md). Below: the "
                "verdict with its chart, the `report` link, the tables; the columns under `columns`.",
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
            "model_costs": AssetOut(
                kinds={"pandas", "parquet"},
                description="Per configured model: fit and CPU seconds (fit + refit), epochs run, scoring "
                "time per 1,000 users, size on disk and peak memory while fitting (docs/evaluation.md).",
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
        evaluation = evaluate_models_of_run(
            config,
            context.run.run_id,
            {
                "train": train,
                "validation": validation,
                "test": test,
                "user_id_map": user_id_map,
                "item_id_map": item_id_map,
            },
            item_catalog,
            recs={m: inputs.get(f"recs_{m}") for m in config.model_names},
            models={m: inputs[f"model_{m}"] for m in config.model_names},
            previous_history=warehouse.read_previous("metrics_history"),
            external=inputs.get("recs_external"),
        )
        table = evaluation.metrics
        context.log.info("\n" + evaluation.summary)
        families = evaluated_families(table["model"], config.model_names)
        costs = cost_table(
            context.instance,
            {m: (model_asset_name(m), recommendations_asset_name(m)) for m in config.model_names},
        )
        verdict = verdict_lines(
            table, evaluation.significance, families, config.k, costs, validation_drawn(context.instance)
        )
        context.log.info("verdict\n" + verdict_markdown(verdict))
        overview = metrics_overview(table, verdict, evaluation.history, config.k, costs)
        extra = {
            "headline_segment": evaluation.headline_segment,
            "as_of": table["as_of"].iloc[0],
            "users_per_segment": MetadataValue.json(evaluation.users_per_segment),
        }
        if sessions:
            # models that cannot serve a prefix are named here rather than scored wrong
            extra["prefix_support"] = MetadataValue.json(evaluation.prefix_support)
        chart = headline_chart_path(context.run.run_id)
        warehouse.write_bytes(chart, overview.headline_chart[1])
        chart_url = report_url(chart.removeprefix(f"{REPORT_FOLDER}/"))
        yield Output(table, output_name="result", metadata=metrics_metadata(overview, extra, chart_url))
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
        yield Output(costs, output_name="model_costs")
        history = evaluation.history
        yield Output(
            history, output_name="metrics_history", metadata={"n_runs": int(history["run_id"].nunique())}
        )

    # the explanations and item titles, where a configured model explains itself
    @asset(name=REPORT_ASSET, group_name=GROUP, kinds={"html"}, ins=explanation_inputs(config))
    def report(
        context: AssetExecutionContext,
        metrics: pd.DataFrame,
        significance: pd.DataFrame,
        metrics_per_user: pd.DataFrame,
        metrics_history: pd.DataFrame,
        model_costs: pd.DataFrame,
        warehouse: Warehouse,
        **explained: pd.DataFrame,
    ) -> MaterializeResult:
        """A self-contained HTML page (plots embedded) under `<storage>/report/report.html`, opened by the
        `html_report` link; the same report, plots included, as Markdown in the entry `report`."""
        examples = None
        if explained:
            examples = explanation_examples(explained[EXPLANATIONS_ASSET], explained["item_catalog"])
        inputs = ReportInputs(
            metrics=metrics,
            significance=significance,
            per_user=metrics_per_user,
            history=metrics_history,
            families=evaluated_families(metrics["model"], config.model_names),
            ks=config.ks,
            n_boot=settings.bootstrap_samples,
            seed=config.seed,
            costs=model_costs,
            # the verdict over time, when backtest cuts were evaluated (recpipeline backtest, the sensor)
            backtest=warehouse.read_previous(BACKTEST_TABLE),
            explanations=examples,
            explanation_fidelity=explained.get(FIDELITY_ASSET),
            validation_drawn=validation_drawn(context.instance),
        )
        figures = report_figures(inputs)
        location = warehouse.write_text(REPORT_PATH, report_html(inputs, figures))
        context.log.info(f"report written to {location}")
        return MaterializeResult(
            metadata={
                # served by `recpipeline report` / beside `recpipeline ui` (evaluation.serving)
                "html_report": MetadataValue.url(report_url()),
                "report": MetadataValue.md(report_markdown(inputs, figures)),
                "path": MetadataValue.path(location),
            }
        )

    assets = [metrics, report]
    if settings.external_recommendations:
        assets.append(_external_asset(config, Path(settings.external_recommendations)))
    return assets


def validation_drawn(instance: DagsterInstance) -> str | None:
    """How the latest validation split was drawn, as its materialization recorded (None before one)."""
    return latest_metadata(instance, "validation", None).get(VALIDATION_DRAWN)


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
