"""Explanations: why each model recommended each item to a seeded sample of test users, and whether the
reason is true (``recpipeline.evaluation.explanations``). Built only when a configured model explains."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetOut, MetadataValue, Output, multi_asset

from recpipeline.config import RunConfig
from recpipeline.evaluation.explanations import ExplanationSettings, explain_models
from recpipeline.evaluation.reports import markdown_table
from recpipeline.fitting.training import TrainingData
from recpipeline.models import model_class
from recpipeline.orchestration.assets.model_inputs import model_inputs_in
from recpipeline.orchestration.assets.modeling import model_asset_name, use_threads
from recpipeline.preparation.encoding import MATRIX_COLUMNS

GROUP = "evaluation"
EXPLANATIONS_ASSET = "explanations"
FIDELITY_ASSET = "explanation_fidelity"


def explaining_models(config: RunConfig) -> list[str]:
    """The configured models that explain their recommendations (none when ``explanations.users`` is 0)."""
    if config.explanations.users == 0:
        return []
    return [name for name in config.model_names if model_class(name).explains is not None]


def explanation_inputs(config: RunConfig) -> dict[str, AssetIn]:
    """What the report reads of the explanations (nothing without them): both tables and the item titles."""
    if not explaining_models(config):
        return {}
    return {
        EXPLANATIONS_ASSET: AssetIn(EXPLANATIONS_ASSET),
        FIDELITY_ASSET: AssetIn(FIDELITY_ASSET),
        "item_catalog": AssetIn("item_catalog", metadata={"columns": ["item_id", "title"]}),
    }


def build_explanation_assets(config: RunConfig) -> list:
    names = explaining_models(config)
    if not names:
        return []
    # the matrix columns plus the event columns any of them reads (session and sequence models)
    columns = dict.fromkeys(MATRIX_COLUMNS + sum((model_class(name).event_columns for name in names), ()))
    settings = ExplanationSettings(
        users=config.explanations.users, reasons=config.explanations.reasons, k=config.k, seed=config.seed
    )

    @multi_asset(
        group_name=GROUP,
        ins={
            "data": model_inputs_in({"columns": list(columns)}),
            "test": AssetIn(metadata={"columns": ["user_idx", "item_idx"]}),
            **{f"model_{name}": AssetIn(model_asset_name(name)) for name in names},
        },
        outs={
            EXPLANATIONS_ASSET: AssetOut(
                kinds={"pandas", "parquet"},
                description=f"Why each item of the top-{config.k} was recommended, for {settings.users} "
                "seeded test users: per model, item and reason the history item and its contribution to the "
                "item's score (method: exact, fold-in, gradient×input or leave-one-out; docs/metrics.md).",
            ),
            FIDELITY_ASSET: AssetOut(
                kinds={"pandas", "parquet"},
                description="Is the explanation true? Per model: how often the explained item leaves the "
                "top-K, and its mean rank change, when its strongest reason is removed from the history, "
                "against removing a random history item (docs/metrics.md).",
            ),
        },
    )
    def explanations(context: AssetExecutionContext, data: TrainingData, test: pd.DataFrame, **models):
        use_threads(config)
        result = explain_models({name: models[f"model_{name}"] for name in names}, data, test, settings)
        shown = markdown_table(result.fidelity)
        context.log.info("explanation fidelity\n" + shown)
        yield Output(
            result.table,
            output_name=EXPLANATIONS_ASSET,
            metadata={"n_users": int(result.table["user_id"].nunique()), "models": ", ".join(names)},
        )
        yield Output(
            result.fidelity, output_name=FIDELITY_ASSET, metadata={"fidelity": MetadataValue.md(shown)}
        )

    return [explanations]
