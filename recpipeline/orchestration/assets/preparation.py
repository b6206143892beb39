"""Preparation: encoded interactions with stable id maps, and the train / validation / test splits."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetOut, Output, multi_asset

from recpipeline.cleaning import reason_counts
from recpipeline.config import RunConfig
from recpipeline.encoding import ENCODED_EVENT_COLUMNS, encode_interactions, extend_id_map
from recpipeline.orchestration.resources import Warehouse
from recpipeline.sources import read_predefined_split
from recpipeline.splitting import predefined_split, temporal_split

GROUP = "preparation"


def build_preparation_assets(config: RunConfig) -> list:
    @multi_asset(
        group_name=GROUP,
        # lineage columns stay in cleaned_events; encoding reads only what it uses (less memory at scale)
        ins={"cleaned_events": AssetIn(metadata={"columns": list(ENCODED_EVENT_COLUMNS)})},
        outs={
            "interactions": AssetOut(
                kinds={"pandas", "parquet"},
                description="All cleaned days up to the run date: user_idx, item_idx (int32), "
                "weight (float32), "
                "timestamp, event_type.",
            ),
            "user_id_map": AssetOut(kinds={"parquet"}, description="user_id <-> user_idx, append-only."),
            "item_id_map": AssetOut(kinds={"parquet"}, description="item_id <-> item_idx, append-only."),
        },
    )
    def encode(context: AssetExecutionContext, cleaned_events: dict[str, pd.DataFrame], warehouse: Warehouse):
        days = sorted(cleaned_events)
        events = pd.concat([cleaned_events[d] for d in days], ignore_index=True)
        known = [events]
        if config.split.kind == "predefined":  # the split's files may hold ids the daily events lack
            known += [cleaned for cleaned, _ in read_predefined_split(config).values()]
        user_ids = pd.concat([f["user_id"] for f in known])
        item_ids = pd.concat([f["item_id"] for f in known])
        user_map = extend_id_map(warehouse.read_previous("user_id_map"), user_ids)
        item_map = extend_id_map(warehouse.read_previous("item_id_map"), item_ids)
        interactions = encode_interactions(events, user_map, item_map, config.event_weights)
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
            },
        )
        yield Output(user_map, output_name="user_id_map")
        yield Output(item_map, output_name="item_id_map")

    @multi_asset(
        group_name=GROUP,
        outs={
            "train": AssetOut(kinds={"pandas", "parquet"}, description="Interactions before validation."),
            "validation": AssetOut(
                kinds={"pandas", "parquet"}, description="Interactions in the validation window."
            ),
            "test": AssetOut(
                kinds={"pandas", "parquet"}, description="Interactions in the last days (test window)."
            ),
        },
    )
    def split(
        context: AssetExecutionContext,
        interactions: pd.DataFrame,
        user_id_map: pd.DataFrame,
        item_id_map: pd.DataFrame,
    ):
        # the run covers whole days: the split ends at midnight after the last event's day
        as_of = interactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
        accounting: dict[str, dict] = {}
        if config.split.kind == "predefined":
            files = read_predefined_split(config)
            encoded = {
                name: encode_interactions(cleaned, user_id_map, item_id_map, config.event_weights)
                for name, (cleaned, _) in files.items()
            }
            splits = predefined_split(encoded["train"], encoded.get("validation"), encoded["test"])
            # every row of a split file: kept, or quarantined with its reason
            for name, (cleaned, quarantine) in files.items():
                reasons = {f"file_quarantined/{r}": n for r, n in reason_counts(quarantine).items() if n}
                accounting[name] = {"file_rows": len(cleaned) + len(quarantine), **reasons}
        else:
            splits = temporal_split(interactions, as_of, config.split.validation_days, config.split.test_days)
        for name, frame in splits._asdict().items():
            yield Output(
                frame,
                output_name=name,
                metadata={
                    "as_of": str(as_of.date()),
                    "n_users": int(frame["user_idx"].nunique()),
                    "first": str(frame["timestamp"].min()),
                    "last": str(frame["timestamp"].max()),
                    **accounting.get(name, {}),
                },
            )

    return [encode, split]
