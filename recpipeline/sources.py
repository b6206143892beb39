"""Source adapters: where raw events, the item catalogue and user profiles come from.

A source yields each day's rows *as ingested* (source columns untouched) plus the lineage columns
``_source_file`` and ``_row`` so every row can be traced back. Cleaning onto the contract happens later.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields

import numpy as np
import pandas as pd

from recpipeline.config import ConfigError, RunConfig
from recpipeline.synthetic import SyntheticSpec, generate_events, generate_items, generate_users

LINEAGE_COLUMNS = ("_source_file", "_row")


def synthetic_spec(config: RunConfig) -> SyntheticSpec:
    """The generator settings: the run's seed and start date, overridden by ``source.synthetic``."""
    overrides = dict(config.source.synthetic)
    known = {f.name for f in fields(SyntheticSpec)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"{config.config_file}: source.synthetic.{unknown[0]}: unknown setting; "
            f"expected one of {sorted(known)}"
        )
    overrides.setdefault("seed", config.seed)
    if config.source.start_date is not None:
        overrides.setdefault("start_date", config.source.start_date)
    return SyntheticSpec(**overrides)


def partition_window(config: RunConfig) -> tuple[dt.date, dt.date | None]:
    """First and last (inclusive) day of the daily partitions; last ``None`` means 'up to yesterday'."""
    start = config.source.start_date or synthetic_spec(config).start_date
    return start, config.source.end_date


def read_raw_events(config: RunConfig, day: dt.date) -> pd.DataFrame:
    """The source's rows for one day, as ingested, with lineage columns."""
    frame = generate_events(synthetic_spec(config), day)
    return with_lineage(frame, f"synthetic://seed={config.seed}/{day.isoformat()}")


def read_items(config: RunConfig) -> pd.DataFrame:
    """Item catalogue: item_id, title, category, brand, price, first_seen."""
    return generate_items(synthetic_spec(config))


def read_users(config: RunConfig) -> pd.DataFrame:
    """User profiles: user_id, attributes, first_seen."""
    return generate_users(synthetic_spec(config))


def with_lineage(frame: pd.DataFrame, source_file: str) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame["_source_file"] = source_file
    frame["_row"] = np.arange(len(frame), dtype=np.int64)
    return frame
