"""IO managers: Parquet tables and model artefact folders under one storage root (local path or fsspec URL).

Paths are ``<root>/<asset key>/<partition key>.parquet`` (partitioned) or ``<root>/<asset key>.parquet``.
Writes are atomic: the file is written next to its destination under a temporary name and then moved into
place, so a crashed step never leaves a half-written file where a reader looks.

Partitioned assets hand over ``dict[partition_key, DataFrame]`` — one entry per partition of the run, so a
single-run backfill over a date range writes one file per day. Loading a partitioned upstream likewise always
gives a dict, whether the run covers one partition or many. Both are built on Dagster's public ``IOManager``
interface alone (``handle_output`` / ``load_input``), so a Dagster upgrade does not reach into them.
"""

from __future__ import annotations

import tempfile
import uuid
from abc import abstractmethod
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    IOManager,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from upath import UPath

from recpipeline.models import ArtefactError, Recommender, load_model


def contained_path(base: UPath, relative: str) -> UPath:
    """``base / relative`` that cannot leave ``base``: a leading ``/`` and every ``..`` segment are
    escaped (``%2F``, ``%2E%2E``) rather than dropped, so distinct keys keep distinct paths."""
    escaped = "%2F" + relative[1:] if relative.startswith("/") else relative
    return base / "/".join("%2E%2E" if segment == ".." else segment for segment in escaped.split("/"))


class _AtomicIOManager(IOManager):
    """One file or folder per asset (and partition) under ``base_path``, written atomically."""

    #: appended to every path (``""``: a folder)
    extension = ""

    def __init__(self, base_path: UPath) -> None:
        self.base_path = base_path

    @abstractmethod
    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        """Write ``obj`` at ``path`` (a temporary sibling of its destination)."""

    @abstractmethod
    def load_from_path(self, context: InputContext, path: UPath) -> Any: ...

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        return {}

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if context.has_asset_partitions:
            if not isinstance(obj, dict):
                raise TypeError(
                    f"{context.asset_key.to_user_string()}: a partitioned asset must return "
                    "dict[partition_key, value] (one entry per partition of the run)"
                )
            paths = self._partition_paths(context)
            if set(obj) != set(paths):
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: returned partitions {sorted(obj)} but the run "
                    f"materializes {sorted(paths)}"
                )
            for key, path in paths.items():
                self._write(context, obj[key], path)
            where = paths[min(paths)].parent
        else:
            where = self._asset_path(context)
            self._write(context, obj, where)
        metadata = {"path": MetadataValue.path(str(where)), **self.get_metadata(context, obj)}
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> Any:
        if not context.has_asset_partitions:
            return self._read(context, self._asset_path(context))
        return {key: self._read(context, path) for key, path in self._partition_paths(context).items()}

    def _asset_path(self, context: InputContext | OutputContext) -> UPath:
        parts = context.asset_key.path if context.has_asset_key else context.get_identifier()
        path = self.base_path.joinpath(*parts)
        return path.with_name(path.name + self.extension)

    def _partition_paths(self, context: InputContext | OutputContext) -> dict[str, UPath]:
        folder = self.base_path.joinpath(*context.asset_key.path)
        paths = {key: contained_path(folder, key) for key in context.asset_partition_keys}
        return {key: path.with_name(path.name + self.extension) for key, path in paths.items()}

    def _write(self, context: OutputContext, obj: Any, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        context.log.debug(f"Writing {path} using {type(self).__name__}")
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        self.dump_to_path(context, obj, tmp)
        if path.exists() and path.is_dir():
            path.fs.rm(path.path, recursive=True)
        path.fs.mv(tmp.path, path.path, recursive=True)

    def _read(self, context: InputContext, path: UPath) -> Any:
        context.log.debug(f"Loading {path} using {type(self).__name__}")
        return self.load_from_path(context, path)


class PartitionedParquetIOManager(_AtomicIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a pandas DataFrame, got {type(obj)}"
            )
        pq.write_table(pa.Table.from_pandas(obj, preserve_index=False), path.path, filesystem=path.fs)

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


class ModelArtefactIOManager(_AtomicIOManager):
    """A fitted ``Recommender`` as a folder: ``params.json`` plus npz / safetensors — never pickle.

    Loading checks every file (``Recommender.load``); an ``ArtefactError`` names the stored file.
    """

    def dump_to_path(self, context: OutputContext, obj: Recommender, path: UPath) -> None:
        with tempfile.TemporaryDirectory() as local:
            obj.save(Path(local))
            path.fs.put(local.rstrip("/") + "/", path.path, recursive=True)

    def load_from_path(self, context: InputContext, path: UPath) -> Recommender:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no saved model")
        with tempfile.TemporaryDirectory() as local:
            path.fs.get(path.path.rstrip("/") + "/", local, recursive=True)
            try:
                return load_model(Path(local))
            except ArtefactError as error:
                # name the stored file, not its temporary copy
                stored = path.joinpath(*Path(error.path).relative_to(local).parts)
                raise ArtefactError(stored, error.problem, error.remedy) from error


class ParquetIOManager(ConfigurableIOManagerFactory):
    """Parquet tables under ``root`` (a local path or an fsspec URL)."""

    root: str

    def create_io_manager(self, context) -> PartitionedParquetIOManager:
        return PartitionedParquetIOManager(UPath(self.root))


class ModelIOManager(ConfigurableIOManagerFactory):
    """Model artefact folders under ``root``/models."""

    root: str

    def create_io_manager(self, context) -> ModelArtefactIOManager:
        return ModelArtefactIOManager(UPath(self.root) / "models")
