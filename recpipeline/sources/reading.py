"""Reading source files: a file, a glob or a folder, local or an fsspec URL; CSV, Parquet or JSON Lines.

Rows come back as given: CSV and JSON Lines cells as their text (so ids never pass through float), Parquet
columns in their stored types; plus the lineage columns ``_source_file`` (the file's path or URL) and
``_row`` (the 0-based record number in that file, header excluded).
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import re
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from recpipeline.config import FILE_FORMATS
from recpipeline.sources.mapping import id_strings

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


class SourceUnavailable(SourceError):
    """A file that could not be read for a reason that may pass (a network or storage error): worth a retry,
    unlike every other ``SourceError``, which would repeat."""


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
    if local:
        dangling = next((p for p in found if os.path.islink(p) and not os.path.exists(p)), None)
        if dangling is not None:
            raise SourceError(
                f"{dangling}: a symbolic link to {os.readlink(dangling)}, which does not exist; restore the "
                "file or remove the link"
            )
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
    frame = frame[columns] if columns is not None else frame
    _require_scalar_ids(table, file, fmt, frame, required)
    _ids_as_text(file, fmt, frame, required)
    if fmt == "jsonl":
        frame = _json_text(frame)
    elif fmt == "csv":
        _require_one_line_records(file, frame)
    return with_lineage(frame, file)


def read_files(
    table: FileTable, required: Mapping[str, str] | None = None, only_required: bool = False
) -> pd.DataFrame:
    """Every file of ``table`` as one frame, in file order (lineage tells the files apart)."""
    frames = [read_file(table, file, required, only_required) for file in table_files(table)]
    return pd.concat(_one_schema(frames), ignore_index=True) if len(frames) > 1 else frames[0]


def _one_schema(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The files' frames with one type per column, so that their rows can be stored as one table.

    A column typed differently across the files (``user_id`` int64 in one Parquet file, text in another or
    in a CSV file) becomes text in all of them, whole numbers without '.0' (as the mapping writes ids);
    numeric columns of different widths are left to pandas, which widens them losslessly enough.
    """
    columns = dict.fromkeys(column for frame in frames for column in frame.columns)
    for column in columns:
        present = [frame for frame in frames if column in frame]
        dtypes = {frame[column].dtype for frame in present}
        numeric = all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in dtypes)
        if len(dtypes) > 1 and not numeric:
            for frame in present:
                frame[column] = id_strings(frame[column])
    return frames


#: what an id column is for; its values must be text or numbers
_ID_KEYS = ("user_id", "item_id", "session_id", "anonymous_id")


def _ids_as_text(file: str, fmt: str, frame: pd.DataFrame, required: Mapping[str, str]) -> None:
    """Id columns as text, in every format, so that reading never changes an id: a folder whose files type
    an id column differently (int64 in one Parquet file, float64 in another) keeps each id as written.

    A float column stands for integer ids with gaps (17850.0 is 17850) only where each value is a whole
    number below 2**53; a fraction or a larger number means the file no longer holds the exact id (a float
    has no room for 9007199254741015), so it is refused rather than guessed."""
    for key in _ID_KEYS:
        column = required.get(key)
        if column is None or column not in frame or frame[column].dtype == object:
            continue
        values = frame[column]
        if pd.api.types.is_float_dtype(values.dtype):
            finite = values.dropna()
            inexact = ~np.isfinite(finite) | (finite != np.round(finite)) | (finite.abs() >= 2.0**53)
            if inexact.any():
                row = int(np.flatnonzero(values.notna().to_numpy())[np.flatnonzero(inexact.to_numpy())[0]])
                meant = f" (mapped to {key})" if key != column else ""
                raise SourceError(
                    f"{file}: row {row}: column {column!r}{meant} is floating point and holds "
                    f"{float(finite[inexact].iloc[0])!r}, not an exact integer id ({int(inexact.sum())} such "
                    "row(s)): the exact id is lost in the file; write the ids as integers or text"
                )
        frame[column] = id_strings(values).astype(object).where(values.notna(), None)


#: pandas' inferred types of an object column that hold only text and numbers
_SCALAR_KINDS = {"string", "empty", "integer", "floating", "mixed-integer-float", "decimal"}


def _require_scalar_ids(
    table: FileTable, file: str, fmt: str, frame: pd.DataFrame, required: Mapping[str, str]
) -> None:
    """Stop at the first id that is not text or a number (a JSON ``true``, list or object, a Parquet
    list or boolean column): as an id it would be meaningless, and it cannot be stored as one."""
    for key in _ID_KEYS:
        column = required.get(key)
        if column is None or column not in frame:
            continue
        bad = ~_is_text_or_number(frame[column])
        if not bad.any():
            continue
        rows = np.flatnonzero(bad.to_numpy())
        value = frame[column].iloc[rows[0]]
        where = f"line {_jsonl_line(table, file, rows[0])}" if fmt == "jsonl" else f"row {rows[0]}"
        meant = f" (mapped to {key})" if key != column else ""
        raise SourceError(
            f"{file}: {where}: column {column!r}{meant} holds {_shown(value)}, not text or a number "
            f"({len(rows)} such row(s) in the file); fix or remove those rows"
        )


def _is_text_or_number(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.isna()
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) in _SCALAR_KINDS:
        return pd.Series(True, index=values.index)
    return values.map(_is_scalar).astype(bool)


def _is_scalar(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    return value is None or value is pd.NA or isinstance(value, str | int | float | np.integer | np.floating)


def _shown(value: Any) -> str:
    """A value as the file would show it, shortened to fit a one-line message."""
    plain = value.tolist() if isinstance(value, np.ndarray | np.generic) else value
    text = json.dumps(plain, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


_ONE_KIND = {*_SCALAR_KINDS, "boolean"}


def _json_text(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON Lines columns that mix text with booleans, lists or objects, with those values as their JSON
    text: such a column cannot be stored, and as text cleaning judges it (a list as a timestamp or value
    is a ``bad_timestamp`` / ``bad_value``). Columns of one kind stay as they are."""
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) in {
            *_SCALAR_KINDS,
            "boolean",
        }:
            continue
        frame[column] = values.map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v))
    return frame


def _jsonl_line(table: FileTable, file: str, row: int) -> int:
    """The 1-based line of JSON Lines record ``row`` (blank lines hold no record)."""
    with fsspec.open(file, "rb", compression="infer") as handle:
        lines = handle.read().decode(table.options.get("encoding", "utf-8")).split("\n")
    return [number for number, line in enumerate(lines, start=1) if line.strip()][row]


def _require_one_line_records(file: str, frame: pd.DataFrame) -> None:
    """Stop when a record spans several lines of a CSV file: a stray quote opens a value that the next
    stray quote, maybe hundreds of lines later, closes, and every line between would be one record."""
    with fsspec.open(file, "rb", compression="infer") as handle:
        newlines = handle.read().count(b"\n")
    if newlines <= len(frame) + 1:  # header and one line per record: no record can hold a line break
        return
    breaks = pd.Series(0, index=frame.index)
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column].dtype):
            text = pa.array(frame[column], type=pa.large_string(), from_pandas=True)
            counts = pc.count_substring(text, "\n").fill_null(0).to_numpy(zero_copy_only=False)
            breaks += np.where(pc.is_null(text).to_numpy(zero_copy_only=False), 0, counts)
    folded = np.flatnonzero(breaks.to_numpy() > 0)
    if folded.size == 0:
        return
    row = int(folded[0])
    first = 2 + row + int(breaks.iloc[:row].sum())  # header on line 1
    last = first + int(breaks.iloc[row])
    raise SourceError(
        f"{file}: lines {first}-{last} were read as one record (row {row}): a quote opened on line {first} "
        f"closes only on line {last} ({folded.size} such record(s), {int(breaks.sum())} line(s) folded in "
        "all); fix the quoting, or read quotes as plain text with the source's `options: {quoting: 3}`"
    )


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
    text = text.removeprefix("\ufeff")  # a byte-order mark, as CSV accepts it
    # one JSON array of all records, parsed in one call; a comma ends each non-blank line so error line
    # numbers stay the file's. Numbers are kept as their text: ids never pass through float.
    array = "[" + re.sub(r"(\S)[ \t\r]*\n", r"\1,\n", text.rstrip()) + "]"
    try:
        records = json.loads(array, parse_int=str, parse_float=str, parse_constant=str)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{file}: line {exc.lineno}: not valid JSON Lines ({exc.msg})") from None
    wrong = next((row for row, record in enumerate(records) if not isinstance(record, dict)), None)
    if wrong is not None:
        raise SourceError(
            f"{file}: line {_jsonl_line(table, file, wrong)}: expected one JSON object per line, got "
            f"{_shown(records[wrong])}"
        )
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
            f"{file}: not {encoding} text ({_undecodable(file, encoding, exc)}); "
            "set the source's reader option `options: {encoding: ...}` (e.g. latin-1)"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, pa.ArrowException) as exc:
        raise SourceError(f"{file}: not a readable {fmt} file ({_first_line(exc)})") from None
    except TypeError as exc:  # an option the reader does not take
        raise SourceError(f"{file}: reader options {dict(table.options)} rejected ({exc})") from None
    except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise SourceError(f"{file}: damaged or truncated compressed file ({exc})") from None
    except (ConnectionError, TimeoutError) as exc:
        raise SourceUnavailable(f"{file}: cannot read ({exc})") from None
    except OSError as exc:
        raise SourceError(f"{file}: cannot read ({exc})") from None


def _undecodable(file: str, encoding: str, exc: UnicodeDecodeError) -> str:
    """Where in the file the text stops being ``encoding``: the byte offset in the whole (uncompressed)
    file and its line; the reader's own offset counts from the chunk it was decoding."""
    try:
        with fsspec.open(file, "rb", compression="infer") as handle:
            data = handle.read()
        data.decode(encoding)
    except UnicodeDecodeError as whole:
        line = data.count(b"\n", 0, whole.start) + 1
        return f"byte {whole.start}, line {line}: {data[whole.start : whole.start + 1]!r} {whole.reason}"
    except (OSError, LookupError, EOFError, zlib.error, lzma.LZMAError):
        pass
    return f"{exc.reason} at byte {exc.start} of a block"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
