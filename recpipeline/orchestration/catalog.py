"""How every asset presents itself in the Dagster UI, applied once where the definitions are built.

``catalogued`` maps each asset spec (``dagster.map_asset_specs``) to add, in one place:

* ``OWNERS``, the team that answers for the pipeline;
* tags: ``stage`` (the asset's group), and for the model and recommendations assets ``model`` and
  ``model_family`` (the registry's family: baseline, factorisation, neural, ...);
* the column schema with the contracts' descriptions (``contracts.COLUMNS``), there before the first
  materialization; each materialization writes its own, with the same descriptions and the real dtypes;
* a freshness policy on ``metrics``: stale when older than the nightly period plus a margin for the run;
* code references (the file and line of each asset's function; with ``RECPIPELINE_GIT_URL`` set, links into
  that repository instead).

The metrics asset's page opens with its verdict: the UI lists an asset's column table above its metadata, so
the metrics table's columns are listed in a metadata entry (``SCHEMA_ENTRY``) after the verdict rather than
as ``dagster/column_schema``.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from dagster import (
    AnchorBasedFilePathMapping,
    AssetSpec,
    BetaWarning,
    FreshnessPolicy,
    PreviewWarning,
    TableColumn,
    TableSchema,
    link_code_references_to_git,
    map_asset_specs,
    with_source_code_references,
)

from recpipeline.config import RunConfig
from recpipeline.contracts import (
    CLEANED_COLUMNS,
    COLUMNS,
    ITEM_COLUMNS,
    LINEAGE_COLUMNS,
    column_description,
)
from recpipeline.evaluation.backtest import BACKTEST_COLUMNS
from recpipeline.evaluation.costs import COST_COLUMNS
from recpipeline.evaluation.explanations import EXPLANATION_COLUMNS, FIDELITY_COLUMNS
from recpipeline.evaluation.history import HISTORY_COLUMNS
from recpipeline.evaluation.protocol import METRICS_COLUMNS, list_families
from recpipeline.evaluation.significance import SIGNIFICANCE_COLUMNS
from recpipeline.fitting.recommending import RECOMMENDATION_COLUMNS, SIMILAR_ITEMS_COLUMNS
from recpipeline.orchestration.assets.backtest import (
    BACKTEST_ASSET,
    BACKTEST_COSTS_ASSET,
    cut_asset,
    cut_model_asset,
    cut_recommendations_asset,
    cut_validation_fit_asset,
)
from recpipeline.orchestration.assets.explanations import EXPLANATIONS_ASSET, FIDELITY_ASSET
from recpipeline.orchestration.assets.modeling import model_asset_name, recommendations_asset_name
from recpipeline.orchestration.io_managers import SCHEMA_ENTRY
from recpipeline.preparation.encoding import ID_MAP_COLUMNS, INTERACTION_COLUMNS

#: who answers for every asset of the pipeline (Dagster's owner syntax: ``team:<name>`` or an e-mail)
OWNERS = ("team:recommendations",)
STAGE_TAG = "stage"
MODEL_TAG = "model"
FAMILY_TAG = "model_family"
#: the canonical column-schema key; the UI shows it as the asset's "Columns" table
COLUMN_SCHEMA = "dagster/column_schema"
#: assets that keep their column schema in a metadata entry (``io_managers.SCHEMA_ENTRY``), after the entries
#: their materializations write first, instead
SCHEMA_AFTER_METADATA = frozenset({"metrics"})
#: metrics are refreshed once a night (the schedule ingests, the sensor retrains) ...
NIGHTLY_PERIOD = dt.timedelta(hours=24)
#: ... and a night's ingestion and training take a while: stale when older than both together
RUN_MARGIN = dt.timedelta(hours=3)
METRICS_FRESHNESS = FreshnessPolicy.time_window(fail_window=NIGHTLY_PERIOD + RUN_MARGIN)
#: set to the repository's web address (and optionally its branch) to link code references into it
GIT_URL_ENV_VAR = "RECPIPELINE_GIT_URL"
GIT_BRANCH_ENV_VAR = "RECPIPELINE_GIT_BRANCH"
REPO_ROOT = Path(__file__).resolve().parents[2]


def asset_columns(config: RunConfig) -> dict[str, tuple[str, ...]]:
    """The contract columns of each table asset, as its definition lists them (a source's own columns, and
    the per-user metric columns, which depend on the configuration, come with the materialization)."""
    interactions = dict.fromkeys(("interactions", "train", "validation", "test"), INTERACTION_COLUMNS)
    recommendations = {recommendations_asset_name(m): RECOMMENDATION_COLUMNS for m in config.model_names}
    return {
        "raw_events": LINEAGE_COLUMNS,
        "cleaned_events": (*CLEANED_COLUMNS, *LINEAGE_COLUMNS),
        "quarantined_events": (*LINEAGE_COLUMNS, "reason"),
        "item_catalog": ITEM_COLUMNS,
        "user_profiles": ("user_id",),
        **interactions,
        "user_id_map": ID_MAP_COLUMNS,
        "item_id_map": ID_MAP_COLUMNS,
        **recommendations,
        "external_recommendations": RECOMMENDATION_COLUMNS,
        "similar_items": SIMILAR_ITEMS_COLUMNS,
        "metrics": (*METRICS_COLUMNS, "run_id", "as_of"),
        "metrics_per_user": ("model", "user_idx", "user_segment", "served_by"),
        "significance": SIGNIFICANCE_COLUMNS,
        "metrics_history": HISTORY_COLUMNS,
        "model_costs": COST_COLUMNS,
        EXPLANATIONS_ASSET: EXPLANATION_COLUMNS,
        FIDELITY_ASSET: FIDELITY_COLUMNS,
        **_backtest_columns(config, interactions, recommendations),
    }


def _backtest_columns(
    config: RunConfig, interactions: dict[str, tuple[str, ...]], recommendations: dict[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    """The backtest's tables: each cut's as the single run's, then the tables over every cut."""
    per_cut = {
        **{cut_asset(name): columns for name, columns in interactions.items() if name != "interactions"},
        cut_asset("user_id_map"): ID_MAP_COLUMNS,
        cut_asset("item_id_map"): ID_MAP_COLUMNS,
        **{cut_asset(name): columns for name, columns in recommendations.items()},
        cut_asset("metrics"): (*METRICS_COLUMNS, "run_id", "as_of"),
        cut_asset("significance"): SIGNIFICANCE_COLUMNS,
        cut_asset("costs"): COST_COLUMNS,
    }
    return {
        **per_cut,
        BACKTEST_ASSET: BACKTEST_COLUMNS,
        BACKTEST_COSTS_ASSET: ("cut_date", *COST_COLUMNS),
    }


def contract_schema(columns: Sequence[str]) -> TableSchema:
    """``columns`` with the contracts' logical types and descriptions (a column without one: type
    ``unknown``, no description; a test keeps every listed column described)."""
    return TableSchema(
        columns=[
            TableColumn(
                name=name, type=COLUMNS.get(name, ("unknown",))[0], description=column_description(name)
            )
            for name in columns
        ]
    )


def model_tags(config: RunConfig) -> dict[str, dict[str, str]]:
    """``model`` and ``model_family`` tags of each model and recommendations asset."""
    families = list_families(config.model_names, [])
    tags = {}
    for model in config.model_names:
        names = (model_asset_name(model), recommendations_asset_name(model))
        cut_names = (
            cut_model_asset(model),
            cut_validation_fit_asset(model),
            cut_recommendations_asset(model),
        )
        for name in (*names, *cut_names):
            tags[name] = {MODEL_TAG: model, FAMILY_TAG: families[model]}
    return tags


def catalogued(config: RunConfig, definitions: Sequence) -> list:
    """``definitions`` (assets and checks) with owners, tags, column schemas, the metrics' freshness policy
    and code references."""
    columns = asset_columns(config)
    by_model = model_tags(config)

    def present(spec: AssetSpec) -> AssetSpec:
        name = spec.key.to_user_string()
        metadata = {}
        if name in columns:
            key = SCHEMA_ENTRY if name in SCHEMA_AFTER_METADATA else COLUMN_SCHEMA
            metadata[key] = contract_schema(columns[name])
        tags = {STAGE_TAG: spec.group_name or "default", **by_model.get(name, {})}
        spec = spec.merge_attributes(owners=list(OWNERS), tags=tags, metadata=metadata)
        if name == "metrics":
            spec = spec.replace_attributes(freshness_policy=METRICS_FRESHNESS)
        return spec

    with warnings.catch_warnings():
        # code references are beta in Dagster 1.13; nothing to act on
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", PreviewWarning)
        presented = with_source_code_references(map_asset_specs(present, definitions))
        git_url = os.environ.get(GIT_URL_ENV_VAR)
        if git_url:
            presented = link_code_references_to_git(
                presented,
                git_url=git_url,
                git_branch=os.environ.get(GIT_BRANCH_ENV_VAR, "main"),
                file_path_mapping=AnchorBasedFilePathMapping(
                    local_file_anchor=REPO_ROOT, file_anchor_path_in_repository=""
                ),
            )
    return list(presented)
