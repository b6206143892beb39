"""Resources shared by the assets, built from the run configuration."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from upath import UPath

from recpipeline.config import RunConfig
from recpipeline.orchestration.io_managers import ModelIOManager, ParquetIOManager


class Warehouse(ConfigurableResource):
    """Direct reads of earlier materializations (e.g. an asset's own previous id maps)."""

    root: str

    def read_previous(self, asset_name: str) -> pd.DataFrame | None:
        """The last materialized table of an unpartitioned asset, or ``None`` on the first run."""
        path = UPath(self.root) / f"{asset_name}.parquet"
        if not path.exists():
            return None
        return pq.read_table(path.path, filesystem=path.fs).to_pandas()


def build_resources(config: RunConfig) -> dict[str, object]:
    return {
        "io_manager": ParquetIOManager(root=config.storage),
        "model_io_manager": ModelIOManager(root=config.storage),
        "warehouse": Warehouse(root=config.storage),
    }
