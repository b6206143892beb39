"""IO managers: Parquet tables and model artefact folders under one storage root (local path or fsspec URL).

Paths are ``<root>/<asset key>/<partition key>.parquet`` (partitioned) or ``<root>/<asset key>.parquet``.
Writes are atomic: the file is written next to its destination under a temporary name and then moved into
place, so a crashed step never leaves a half-written file where a reader looks.

Partitioned assets hand over ``dict[partition_key, DataFrame]`` — one entry per partition of the run, so a
single-run backfill over a date range writes one file per day. Loading a partitioned upstream likewise always
gives a dict, whether the run covers one partition or many. Both are built on Dagster's public ``IOManager``
interface alone (``handle_output`` / ``load_input``), so a Dagster upgrade does not reach into them.

An IO manager can only attach metadata to the whole output, i.e. to every partition of the run alike; so for a
partitioned output it reports run-level figures (``folder``, ``rows_in_run``) and the asset itself gives each
partition its own file, row count and schema with ``partition_metadata`` and
``AssetExecutionContext.add_asset_metadata(..., partition_key=...)``.
"""

from __future__ import annotations

import tempfile
import uuid
from abc import abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    AssetKey,
    ConfigurableIOManagerFactory,
    InputContext,
    IOManager,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from upath import UPath

from recpipeline.contracts import column_description
from recpipeline.fitting.training import TrainingData
from recpipeline.models import ArtefactError, Recommender, load_model

#: a metadata entry holding an asset's column schema where the canonical key would show it too early (the
#: metrics asset: orchestration.catalog)
SCHEMA_ENTRY = "columns"


def contained_path(base: UPath, relative: str) -> UPath:
    """``base / relative`` that cannot leave ``base``: a leading ``/`` and every ``..`` segment are
    escaped (``%2F``, ``%2E%2E``) rather than dropped, so distinct keys keep distinct paths."""
    escaped = "%2F" + relative[1:] if relative.startswith("/") else relative
    return base / "/".join("%2E%2E" if segment == ".." else segment for segment in escaped.split("/"))


def partition_file(folder: UPath, partition_key: str, extension: str) -> UPath:
    """Where one partition of the asset stored in ``folder`` lies."""
    path = contained_path(folder, partition_key)
    return path.with_name(path.name + extension)


def table_metadata(frame: pd.DataFrame, schema_key: str = "dagster/column_schema") -> dict[str, Any]:
    """Dagster's standard table metadata (row count, column schema with the dtypes and the contracts'
    descriptions), shown in the asset's UI page; ``schema_key``: where the schema goes."""
    return {
        "dagster/row_count": len(frame),
        schema_key: TableSchema(
            columns=[
                TableColumn(name=str(c), type=str(t), description=column_description(str(c)))
                for c, t in frame.dtypes.items()
            ]
        ),
    }


def partition_metadata(
    root: str, asset_key: str, frames: Mapping[str, pd.DataFrame]
) -> dict[str, dict[str, Any]]:
    """Each partition's own metadata — its Parquet file under ``root`` (where ``ParquetIOManager(root=root)``
    writes it), row count and schema — for ``add_asset_metadata(..., partition_key=...)``."""
    folder = UPath(root).joinpath(*AssetKey.from_user_string(asset_key).path)
    return {
        key: {
            "path": MetadataValue.path(
                str(partition_file(folder, key, PartitionedParquetIOManager.extension))
            ),
            **table_metadata(frame),
        }
        for key, frame in frames.items()
    }


def delete_partitions(root: str, asset_key: str, keys: Iterable[str]) -> list[str]:
    """Delete the Parquet files of partitions ``keys`` of ``asset_key`` under ``root`` (where
    ``ParquetIOManager(root=root)`` wrote them); the paths deleted (a file already gone is skipped)."""
    folder = UPath(root).joinpath(*AssetKey.from_user_string(asset_key).path)
    deleted = []
    for key in keys:
        path = partition_file(folder, key, PartitionedParquetIOManager.extension)
        if path.exists():
            path.unlink()
            deleted.append(str(path))
    return deleted


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
            # one log line per output, not per file: each line is a stored event, hundreds in a long backfill
            folder = paths[min(paths)].parent
            context.log.debug(f"Writing {len(paths)} partition(s) under {folder} using {type(self).__name__}")
            for key, value in self.encode_partitions(context, obj).items():
                self._write(context, value, paths[key])
            # shared by every partition of the run: the folder, not a file (see the module docstring)
            location = {"folder": MetadataValue.path(str(folder))}
        else:
            where = self._asset_path(context)
            context.log.debug(f"Writing {where} using {type(self).__name__}")
            self._write(context, obj, where)
            location = {"path": MetadataValue.path(str(where))}
        context.add_output_metadata({**location, **self.get_metadata(context, obj)})

    def load_input(self, context: InputContext) -> Any:
        if not context.has_asset_partitions:
            path = self._asset_path(context)
            context.log.debug(f"Loading {path} using {type(self).__name__}")
            return self.load_from_path(context, path)
        paths = self._partition_paths(context)
        context.log.debug(
            f"Loading {len(paths)} partition(s) from {paths[min(paths)].parent} using {type(self).__name__}"
        )
        return self.load_partitions(context, paths)

    def encode_partitions(self, context: OutputContext, values: dict[str, Any]) -> dict[str, Any]:
        """The run's partitions as ``dump_to_path`` writes them (here: as they are)."""
        return values

    def load_partitions(self, context: InputContext, paths: dict[str, UPath]) -> dict[str, Any]:
        """Each partition's value, read from its path."""
        return {key: self.load_from_path(context, path) for key, path in paths.items()}

    def _asset_path(self, context: InputContext | OutputContext) -> UPath:
        parts = context.asset_key.path if context.has_asset_key else context.get_identifier()
        path = self.base_path.joinpath(*parts)
        return path.with_name(path.name + self.extension)

    def _partition_paths(self, context: InputContext | OutputContext) -> dict[str, UPath]:
        folder = self.base_path.joinpath(*context.asset_key.path)
        return {key: partition_file(folder, key, self.extension) for key in context.asset_partition_keys}

    def _write(self, context: OutputContext, obj: Any, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        self.dump_to_path(context, obj, tmp)
        if path.exists() and path.is_dir():
            path.fs.rm(path.path, recursive=True)
        path.fs.mv(tmp.path, path.path, recursive=True)


class PartitionedParquetIOManager(_AtomicIOManager):
    """Converting between pandas and Arrow costs milliseconds per call whatever the size, hundreds of times in
    a long backfill of small days: the partitions of a run that share their columns and dtypes are converted
    in one call and sliced apart (zero-copy), each still written to and read from its own file."""

    extension = ".parquet"

    def encode_partitions(self, context: OutputContext, values: dict[str, Any]) -> dict[str, pa.Table]:
        groups: dict[tuple, list[str]] = {}
        for key, frame in values.items():
            groups.setdefault(tuple(_checked_frame(context, frame).dtypes.items()), []).append(key)
        tables = {}
        for keys in groups.values():
            frames = [values[key] for key in keys]
            whole = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
            starts = np.cumsum([0, *(len(frame) for frame in frames[:-1])])
            for key, start, frame in zip(keys, starts, frames, strict=True):
                tables[key] = whole.slice(start, len(frame))
        return tables

    def dump_to_path(self, context: OutputContext, obj: pd.DataFrame | pa.Table, path: UPath) -> None:
        if not isinstance(obj, pa.Table):
            obj = pa.Table.from_pandas(_checked_frame(context, obj), preserve_index=False)
        pq.write_table(obj, path.path, filesystem=path.fs)

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        return self._read(context, path).to_pandas()

    def load_partitions(self, context: InputContext, paths: dict[str, UPath]) -> dict[str, pd.DataFrame]:
        tables = {key: self._read(context, path) for key, path in paths.items()}
        groups: dict[pa.Schema, list[str]] = {}
        for key, table in tables.items():
            groups.setdefault(table.schema, []).append(key)
        frames = {}
        for keys in groups.values():
            whole = pa.concat_tables([tables[key] for key in keys]).to_pandas()
            starts = np.cumsum([0, *(tables[key].num_rows for key in keys[:-1])])
            frames |= {
                key: whole.iloc[start : start + tables[key].num_rows].reset_index(drop=True)
                for key, start in zip(keys, starts, strict=True)
            }
        return {key: frames[key] for key in paths}

    def _read(self, context: InputContext, path: UPath) -> pa.Table:
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no materialization of {context.upstream_output.asset_key.to_user_string()}"
                if context.upstream_output and context.upstream_output.has_asset_key
                else f"{path}: not found"
            )
        # an input's metadata may name the columns it needs: Parquet then reads only those
        columns = (context.definition_metadata or {}).get("columns")
        return pq.read_table(path.path, filesystem=path.fs, columns=columns)

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        if isinstance(obj, dict):
            # a run-level total, named so that it is not read as one partition's row count
            return {"rows_in_run": sum(len(frame) for frame in obj.values())}
        # the schema goes where the asset's definition keeps its own (orchestration.catalog)
        defined = context.definition_metadata or {}
        keys = [key for key in (SCHEMA_ENTRY, "dagster/column_schema") if key in defined]
        return table_metadata(obj, *keys[:1])


def _checked_frame(context: OutputContext, obj: Any) -> pd.DataFrame:
    if not isinstance(obj, pd.DataFrame):
        raise TypeError(f"{context.asset_key.to_user_string()}: expected a pandas DataFrame, got {type(obj)}")
    return obj


class ModelArtefactIOManager(_AtomicIOManager):
    """A fitted ``Recommender`` as a folder: ``params.json`` plus npz / safetensors — never pickle.

    Loading checks every file (``Recommender.load``); an ``ArtefactError`` names the stored file.
    """

    def dump_to_path(self, context: OutputContext, obj: Recommender, path: UPath) -> None:
        with tempfile.TemporaryDirectory() as local:
            obj.save(Path(local))
            size = sum(file.stat().st_size for file in Path(local).rglob("*") if file.is_file())
            path.fs.put(local.rstrip("/") + "/", path.path, recursive=True)
        context.add_output_metadata({"model_bytes": size})

    def load_from_path(self, context: InputContext | None, path: UPath) -> Recommender:
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


def read_model(root: str, asset_name: str, partition: str) -> Recommender | None:
    """A partition of a model asset stored under ``root`` (where ``ModelIOManager(root=root)`` writes it), or
    None when it was never written."""
    path = partition_file(UPath(root) / "models" / asset_name, partition, "")
    return (
        ModelArtefactIOManager(UPath(root) / "models").load_from_path(None, path) if path.exists() else None
    )


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


#: the tables the models read, bundled as one upstream asset (``model_inputs``) in the graph
MODEL_INPUT_TABLES = ("train", "validation", "user_id_map", "item_id_map", "item_catalog", "user_profiles")
#: of those, the interactions: read with the columns an input's metadata names (the others whole)
INTERACTION_TABLES = ("train", "validation")


class ModelInputsReader(IOManager):
    """Loads an input on ``model_inputs`` as the ``TrainingData`` it stands for: each bundled table read from
    where ``ParquetIOManager`` wrote it, exactly as an input on that table would read it."""

    def __init__(self, base_path: UPath) -> None:
        self.base_path = base_path

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        raise NotImplementedError("model_inputs_loader only loads inputs; model_inputs is stored as Parquet")

    def load_input(self, context: InputContext) -> TrainingData:
        columns = (context.definition_metadata or {}).get("columns")
        tables = {}
        for name in MODEL_INPUT_TABLES:
            path = self.base_path / f"{name}{PartitionedParquetIOManager.extension}"
            if not path.exists():
                raise FileNotFoundError(f"{path}: no materialization of {name}")
            chosen = columns if name in INTERACTION_TABLES else None
            tables[name] = pq.read_table(path.path, filesystem=path.fs, columns=chosen).to_pandas()
        context.log.debug(f"Loading {', '.join(MODEL_INPUT_TABLES)} from {self.base_path}")
        return TrainingData(**tables)


class ModelInputsLoader(ConfigurableIOManagerFactory):
    """The input manager of ``model_inputs`` (an ``AssetIn``'s ``input_manager_key``); tables under
    ``root``."""

    root: str

    def create_io_manager(self, context) -> ModelInputsReader:
        return ModelInputsReader(UPath(self.root))
