"""Preparation: encoded interactions with stable id maps, and the train / validation / test splits."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetOut, Output, multi_asset

from recpipeline.config import RunConfig
from recpipeline.orchestration.resources import Warehouse
from recpipeline.preparation.cleaning import clean_predefined_split
from recpipeline.preparation.encoding import ENCODED_EVENT_COLUMNS, encode_days
from recpipeline.preparation.splitting import (
    SPLIT_KINDS,
    FileRows,
    ValidationRule,
    split_for_run,
    validation_drawn,
)

GROUP = "preparation"


def build_preparation_assets(config: RunConfig) -> list:
    needs_files = SPLIT_KINDS[config.split.kind].needs_files

    @multi_asset(
        group_name=GROUP,
        # lineage columns stay in cleaned_events; encoding reads only what it uses (less memory at scale)
        ins={"cleaned_events": AssetIn(metadata={"columns": list(ENCODED_EVENT_COLUMNS)})},
        outs={
            "interactions": AssetOut(
                kinds={"pandas", "parquet"},
                description="All cleaned days up to the run date: user_idx, item_idx (int32), "
                "weight (float32), timestamp, event_type, session_idx (int64: the source's session id, "
                "else cut per user by source.session_gap_minutes).",
            ),
            "user_id_map": AssetOut(kinds={"parquet"}, description="user_id <-> user_idx, append-only."),
            "item_id_map": AssetOut(kinds={"parquet"}, description="item_id <-> item_idx, append-only."),
        },
    )
    def encode(context: AssetExecutionContext, cleaned_events: dict[str, pd.DataFrame], warehouse: Warehouse):
        days = sorted(cleaned_events)
        # the split's files may hold ids the daily events lack
        split_files = clean_predefined_split(config) if needs_files else {}
        interactions, user_map, item_map = encode_days(
            cleaned_events,
            warehouse.read_previous("user_id_map"),
            warehouse.read_previous("item_id_map"),
            config.event_weights,
            also_known=[cleaned for cleaned, _ in split_files.values()],
            session_gap_minutes=config.source.session_gap_minutes,
        )
        context.log.info(f"{len(interactions)} interactions over {len(days)} days ({days[0]} .. {days[-1]})")
        yield Output(
            interactions,
            output_name="interactions",
            metadata={
                "first_day": days[0],
                "last_day": days[-1],
                "n_days": len(days),
                "n_users": int(interactions["user_idx"].nunique()),
                "n_items": int(interactions["item_idx"].nunique()),
                "n_sessions": int(interactions["session_idx"].nunique()),
            },
        )
        yield Output(user_map, output_name="user_id_map")
        yield Output(item_map, output_name="item_id_map")

    @multi_asset(
        group_name=GROUP,
        outs={
            "train": AssetOut(
                kinds={"pandas", "parquet"},
                description="Interactions models are fitted on (split.kind: before validation in time, "
                "or the rest of a random, stratified or leave-last-out split).",
            ),
            "validation": AssetOut(
                kinds={"pandas", "parquet"},
                description="Interactions for tuning and early stopping (the validation window or share).",
            ),
            "test": AssetOut(
                kinds={"pandas", "parquet"},
                description="Interactions models are evaluated on (the test window, share or last events).",
            ),
        },
    )
    def split(
        context: AssetExecutionContext,
        interactions: pd.DataFrame,
        user_id_map: pd.DataFrame,
        item_id_map: pd.DataFrame,
    ):
        run = split_for_run(
            interactions,
            user_id_map,
            item_id_map,
            config.event_weights,
            config.split,
            seed=config.seed,
            preparation=config.preparation,
            split_files=clean_predefined_split(config) if needs_files else None,
        )
        if run.kcore.removed_rows:
            context.log.info(
                f"k-core filtering removed {run.kcore.removed_rows} interactions of "
                f"{run.kcore.removed_users} users and {run.kcore.removed_items} items "
                f"in {run.kcore.iterations} passes"
            )
        # every split carries the filtering's counts: nothing leaves the data without a trace
        kcore = {f"kcore_{name}": n for name, n in run.kcore._asdict().items()}
        for name, frame in run.splits._asdict().items():
            yield Output(
                frame,
                output_name=name,
                metadata={
                    "as_of": str(run.as_of.date()),
                    "split_kind": config.split.kind,
                    "n_users": int(frame["user_idx"].nunique()),
                    "first": str(frame["timestamp"].min()),
                    "last": str(frame["timestamp"].max()),
                    **kcore,
                    **_file_row_metadata(run.file_rows.get(name)),
                    **_validation_rule_metadata(run.validation_rule),
                    VALIDATION_DRAWN: validation_drawn(config.split, run.validation_rule),
                },
            )

    return [encode, split]


#: the split outputs' metadata entry saying how validation was drawn (``splitting.validation_drawn``)
VALIDATION_DRAWN = "validation_drawn"


def _validation_rule_metadata(rule: ValidationRule | None) -> dict[str, str | float]:
    """How a predefined split's validation was drawn, and the statistic ``auto`` decided on."""
    if rule is None:
        return {}
    measured = {} if rule.earlier_test_share is None else {"earlier_test_share": rule.earlier_test_share}
    return {"validation_rule": rule.rule, "validation_rule_configured": rule.configured, **measured}


def _file_row_metadata(rows: FileRows | None) -> dict[str, int]:
    """A split file's rows: all read, and the quarantined ones by reason (none for a temporal split)."""
    if rows is None:
        return {}
    return {"file_rows": rows.rows, **{f"file_quarantined/{r}": n for r, n in rows.quarantined.items()}}
