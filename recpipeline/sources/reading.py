"""Reading source files: a file, a glob or a folder, local or an fsspec URL; CSV, Parquet or JSON Lines.

Rows come back as given: CSV and JSON Lines cells as their text (so ids never pass through float), Parquet
columns in their stored types; plus the lineage columns ``_source_file`` (the file's path or URL) and
``_row`` (the 0-based record number in that file, header excluded).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from recpipeline.config import FILE_FORMATS

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip")
_GLOB_CHARS = re.compile(r"[*?\[]")


class SourceError(ValueError):
    """Unreadable or mis-shaped input; the message names the file, the column and what was expected."""


@dataclass(frozen=True)
class FileTable:
    """Files to read as one table: ``path`` is a file, a glob or a folder (local or fsspec URL)."""

    path: str
    format: str | None = None  # csv | parquet | jsonl; None = from the file suffixes
    options: Mapping[str, Any] = field(default_factory=dict)  # passed to the reader


def with_lineage(frame: pd.DataFrame, source_file: str) -> pd.DataFrame:
    """``frame`` with the lineage columns: every row from ``source_file``, numbered from 0."""
    frame = frame.reset_index(drop=True)
    frame["_source_file"] = source_file
    frame["_row"] = np.arange(len(frame), dtype=np.int64)
    return frame


def table_files(table: FileTable) -> list[str]:
    """The files behind ``table.path``, sorted; a folder is searched recursively for the format's suffixes."""
    fs, root = fsspec.core.url_to_fs(table.path)
    if _GLOB_CHARS.search(root):
        found = [p for p in fs.glob(root) if fs.isfile(p)]
    elif fs.isdir(root):
        # a folder holds other things too (README, _SUCCESS, .crc): take only files of a known data format
        found = [
            p
            for p in fs.find(root)
            if not PurePosixPath(p).name.startswith((".", "_")) and _suffix_format(p) is not None
        ]
        if table.format is not None:
            found = [p for p in found if _suffix_format(p) == table.format]
    elif fs.isfile(root):
        found = [root]
    else:
        raise SourceError(f"{table.path}: no such file or folder")
    if not found:
        raise SourceError(f"{table.path}: no {table.format or 'CSV, Parquet or JSON Lines'} files found")
    local = isinstance(fs, LocalFileSystem)
    return sorted(p if local else fs.unstrip_protocol(p) for p in found)


def file_format(table: FileTable, file: str) -> str:
    fmt = table.format or _suffix_format(file)
    if fmt is None:
        raise SourceError(
            f"{file}: cannot tell the format from the file name; set the source's `format` ({FILE_FORMATS})"
        )
    return fmt


def file_key(file: str) -> str:
    """Changes when the file does (size / modification time), for caches keyed on file contents."""
    fs, path = fsspec.core.url_to_fs(file)
    return fs.ukey(path)


def read_file(
    table: FileTable, file: str, required: Mapping[str, str] | None = None, only_required: bool = False
) -> pd.DataFrame:
    """One file's rows with lineage columns.

    ``required`` maps what a column is for (e.g. ``user_id``) to the source column that must be in the file;
    ``only_required`` reads just those columns (a cheap projection for Parquet and CSV).
    """
    fmt = file_format(table, file)
    required = dict(required or {})
    columns = list(dict.fromkeys(required.values())) if only_required else None
    if columns is not None and fmt != "jsonl":  # the readers' own errors would not name the column
        require_columns(file, _header(table, file, fmt), required)
    with _clear_errors(table, file, fmt):
        if fmt == "parquet":
            fs, path = fsspec.core.url_to_fs(file)
            frame = pq.read_table(path, filesystem=fs, columns=columns, **table.options).to_pandas()
        elif fmt == "csv" and columns is not None and "usecols" not in table.options:
            frame = _read_csv(table, file, usecols=columns)
        elif fmt == "csv":
            frame = _read_csv(table, file)
        else:
            frame = _read_jsonl(table, file)
    require_columns(file, [str(c) for c in frame.columns], required)
    return with_lineage(frame[columns] if columns is not None else frame, file)


def read_files(
    table: FileTable, required: Mapping[str, str] | None = None, only_required: bool = False
) -> pd.DataFrame:
    """Every file of ``table`` as one frame, in file order (lineage tells the files apart)."""
    frames = [read_file(table, file, required, only_required) for file in table_files(table)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _header(table: FileTable, file: str, fmt: str) -> list[str]:
    """The column names of a CSV or Parquet file, without reading its rows."""
    with _clear_errors(table, file, fmt):
        if fmt == "parquet":
            fs, path = fsspec.core.url_to_fs(file)
            with fs.open(path, "rb") as handle:
                return list(pq.read_schema(handle).names)
        return [str(c) for c in _read_csv(table, file, nrows=0).columns]


def require_columns(file: str, present: list[str], mapping: Mapping[str, str]) -> None:
    """Stop with a clear message when a mapped source column is not in ``file``."""
    for target, column in mapping.items():
        if column not in present:
            meant = f" (mapped to {target})" if target != column else ""
            raise SourceError(f"{file}: column {column!r}{meant} not found; the file has columns {present}")


def _suffix_format(path: str) -> str | None:
    suffixes = PurePosixPath(path.lower()).suffixes
    if suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    return _SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None


def _read_csv(table: FileTable, file: str, **extra: Any) -> pd.DataFrame:
    # every cell as text, and only empty cells missing: "NA", "null" or "nan" can be real ids
    defaults: dict[str, Any] = {"dtype": str, "keep_default_na": False, "na_values": [""]}
    if file.lower().endswith((".tsv", ".tsv.gz")):
        defaults["sep"] = "\t"
    with fsspec.open(file, "rb", compression="infer") as handle:
        return pd.read_csv(handle, **{**defaults, **table.options, **extra})


def _read_jsonl(table: FileTable, file: str) -> pd.DataFrame:
    encoding = table.options.get("encoding", "utf-8")
    with fsspec.open(file, "rb", compression="infer") as handle:
        text = handle.read().decode(encoding)
    # one JSON array of all records, parsed in one call; a comma ends each non-blank line so error line
    # numbers stay the file's. Numbers are kept as their text: ids never pass through float.
    array = "[" + re.sub(r"(\S)[ \t\r]*\n", r"\1,\n", text.rstrip()) + "]"
    try:
        records = json.loads(array, parse_int=str, parse_float=str, parse_constant=str)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{file}: line {exc.lineno}: not valid JSON Lines ({exc.msg})") from None
    try:
        return pd.DataFrame.from_records(records) if records else pd.DataFrame()
    except (TypeError, ValueError, AttributeError):
        raise SourceError(f"{file}: expected one JSON object per line") from None


@contextmanager
def _clear_errors(table: FileTable, file: str, fmt: str) -> Iterator[None]:
    """Reader failures as one ``SourceError`` naming the file and what was expected."""
    try:
        yield
    except SourceError:
        raise
    except UnicodeDecodeError as exc:
        encoding = table.options.get("encoding", "utf-8")
        raise SourceError(
            f"{file}: not {encoding} text ({exc.reason} at byte {exc.start}); "
            "set the source's `options: {encoding: ...}` (e.g. latin-1)"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, pa.ArrowException) as exc:
        raise SourceError(f"{file}: not a readable {fmt} file ({_first_line(exc)})") from None
    except TypeError as exc:  # an option the reader does not take
        raise SourceError(f"{file}: reader options {dict(table.options)} rejected ({exc})") from None
    except OSError as exc:
        raise SourceError(f"{file}: cannot read ({exc})") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
