"""Preparation: encoded interactions with stable id maps, and the train / validation / test splits."""

import pandas as pd
from dagster import AssetExecutionContext, AssetOut, Output, multi_asset

from recpipeline.config import RunConfig
from recpipeline.encoding import encode_interactions, extend_id_map
from recpipeline.orchestration.resources import Warehouse
from recpipeline.splitting import temporal_split

GROUP = "preparation"


def build_preparation_assets(config: RunConfig) -> list:
    @multi_asset(
        group_name=GROUP,
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
        user_map = extend_id_map(warehouse.read_previous("user_id_map"), events["user_id"])
        item_map = extend_id_map(warehouse.read_previous("item_id_map"), events["item_id"])
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
    def split(context: AssetExecutionContext, interactions: pd.DataFrame):
        # the run covers whole days: the split ends at midnight after the last event's day
        as_of = interactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
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
                },
            )

    return [encode, split]
