"""IO managers: Parquet tables and model artefact folders under one storage root (local path or fsspec URL).

Paths are ``<root>/<asset key>/<partition key>.parquet`` (partitioned) or ``<root>/<asset key>.parquet``.
Writes are atomic: the file is written next to its destination under a temporary name and then moved into
place, so a crashed step never leaves a half-written file where a reader looks.

Partitioned assets hand over ``dict[partition_key, DataFrame]`` — one entry per partition of the run, so a
single-run backfill over a date range writes one file per day (Dagster's ``UPathIOManager`` alone can only
write one partition per output). Loading a partitioned upstream likewise always gives a dict, whether the run
covers one partition or many (dagster issue #28942 hands a bare object for exactly one).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
    UPathIOManager,
)
from upath import UPath

from recpipeline.models import Recommender, load_model


class _AtomicUPathIOManager(UPathIOManager):
    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        from dagster._core.storage.upath_io_manager import escape_dotdot_segments

        return super().make_safe_partition_path(base_path, escape_dotdot_segments(partition))

    def _temporary_sibling(self, path: UPath) -> UPath:
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")

    def _move_into_place(self, tmp: UPath, path: UPath) -> None:
        if path.exists() and path.is_dir():
            path.fs.rm(path.path, recursive=True)
        path.fs.mv(tmp.path, path.path, recursive=True)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not context.has_asset_partitions:
            super().handle_output(context, obj)
            return
        if not isinstance(obj, dict):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: a partitioned asset must return "
                "dict[partition_key, value] (one entry per partition of the run)"
            )
        paths = self._get_paths_for_partitions(context)
        if set(obj) != set(paths):
            raise ValueError(
                f"{context.asset_key.to_user_string()}: returned partitions {sorted(obj)} but the run "
                f"materializes {sorted(paths)}"
            )
        for key, path in paths.items():
            self.make_directory(path.parent)
            context.log.debug(self.get_writing_output_log_message(path))
            self.dump_to_path(context=context, obj=obj[key], path=path)
        first = paths[min(paths)]
        context.add_output_metadata(
            {"path": MetadataValue.path(str(first.parent)), **self.get_metadata(context, obj)}
        )

    def load_input(self, context: InputContext) -> Any:
        loaded = super().load_input(context)
        if context.has_asset_key and context.has_asset_partitions and len(context.asset_partition_keys) == 1:
            if loaded is None:
                return {}
            return {context.asset_partition_keys[0]: loaded}
        return loaded


class PartitionedParquetIOManager(_AtomicUPathIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a pandas DataFrame, got {type(obj)}"
            )
        table = pa.Table.from_pandas(obj, preserve_index=False)
        tmp = self._temporary_sibling(path)
        pq.write_table(table, tmp.path, filesystem=tmp.fs)
        self._move_into_place(tmp, path)

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no materialization of {context.upstream_output.asset_key.to_user_string()}"
                if context.upstream_output and context.upstream_output.has_asset_key
                else f"{path}: not found"
            )
        # an input's metadata may name the columns it needs: Parquet then reads only those
        columns = (context.definition_metadata or {}).get("columns")
        return pq.read_table(path.path, filesystem=path.fs, columns=columns).to_pandas()

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        frames = list(obj.values()) if isinstance(obj, dict) else [obj]
        frames = [f for f in frames if isinstance(f, pd.DataFrame)]
        if not frames:
            return {}
        return {
            "dagster/row_count": sum(len(f) for f in frames),
            "dagster/column_schema": TableSchema(
                columns=[TableColumn(name=str(c), type=str(t)) for c, t in frames[0].dtypes.items()]
            ),
        }


class ModelArtefactIOManager(_AtomicUPathIOManager):
    """A fitted ``Recommender`` as a folder: ``params.json`` plus npz / safetensors — never pickle."""

    extension = ""

    def dump_to_path(self, context: OutputContext, obj: Recommender, path: UPath) -> None:
        tmp = self._temporary_sibling(path)
        with tempfile.TemporaryDirectory() as local:
            obj.save(Path(local))
            tmp.fs.put(local.rstrip("/") + "/", tmp.path, recursive=True)
        self._move_into_place(tmp, path)

    def load_from_path(self, context: InputContext, path: UPath) -> Recommender:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no saved model")
        with tempfile.TemporaryDirectory() as local:
            path.fs.get(path.path.rstrip("/") + "/", local, recursive=True)
            return load_model(Path(local))

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        return {}


class ParquetIOManager(ConfigurableIOManagerFactory):
    """Parquet tables under ``root`` (a local path or an fsspec URL)."""

    root: str

    def create_io_manager(self, context) -> PartitionedParquetIOManager:
        return PartitionedParquetIOManager(base_path=UPath(self.root))


class ModelIOManager(ConfigurableIOManagerFactory):
    """Model artefact folders under ``root``/models."""

    root: str

    def create_io_manager(self, context) -> ModelArtefactIOManager:
        return ModelArtefactIOManager(base_path=UPath(self.root) / "models")
