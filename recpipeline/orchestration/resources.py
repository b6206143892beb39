"""Resources shared by the assets, built from the run configuration."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

import pandas as pd
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from upath import UPath

from recpipeline.config import RunConfig
from recpipeline.orchestration.io_managers import ModelInputsLoader, ModelIOManager, ParquetIOManager


class Warehouse(ConfigurableResource):
    """Direct reads of earlier materializations (e.g. an asset's own previous id maps)."""

    root: str

    def read_previous(self, asset_name: str) -> pd.DataFrame | None:
        """The last materialized table of an unpartitioned asset, or ``None`` on the first run."""
        path = UPath(self.root) / f"{asset_name}.parquet"
        if not path.exists():
            return None
        return pq.read_table(path.path, filesystem=path.fs).to_pandas()

    def read_partitions(self, asset_name: str) -> dict[str, pd.DataFrame]:
        """Every materialized partition of a partitioned asset's table, by partition key (ascending)."""
        folder = UPath(self.root) / asset_name
        if not folder.exists():
            return {}
        files = sorted(path for path in folder.iterdir() if path.name.endswith(".parquet"))
        return {
            path.name.removesuffix(".parquet"): pq.read_table(path.path, filesystem=path.fs).to_pandas()
            for path in files
            if not path.name.startswith(".")
        }

    def write_text(self, relative_path: str, text: str) -> str:
        """Write a file under the root atomically (temporary sibling, then a move); returns its location."""
        return self.write_bytes(relative_path, text.encode("utf-8"))

    def write_bytes(self, relative_path: str, data: bytes) -> str:
        """``write_text`` for bytes (e.g. a PNG)."""
        parts = PurePosixPath(relative_path).parts
        if not parts or PurePosixPath(relative_path).is_absolute() or ".." in parts:
            raise ValueError(f"{relative_path!r}: expected a relative path inside the storage root")
        path = UPath(self.root).joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        path.fs.mv(tmp.path, path.path)
        return str(path)


def build_resources(config: RunConfig) -> dict[str, object]:
    return {
        "io_manager": ParquetIOManager(root=config.storage),
        "model_io_manager": ModelIOManager(root=config.storage),
        "model_inputs_loader": ModelInputsLoader(root=config.storage),
        "warehouse": Warehouse(root=config.storage),
    }
