"""The public event logs the docs, example configurations, tests and benchmarks use: one registry table,
where they live on this machine, and fetching them (``recpipeline datasets list | fetch NAME``).

Location: ``$RECPIPELINE_DATA`` when set, else ``data/datasets`` under the working directory (git-ignored in
the repository; a non-editable install has no repository to anchor it). Dataset ``NAME`` lives in
``<location>/NAME/`` with the files its entry lists, so ``RECPIPELINE_DATA`` may name any folder holding such
subfolders. A configuration names it as ``${RECPIPELINE_DATA}/NAME/...`` (``expand_data_location``).

Nothing unverified is installed: the download's checksum (pinned here, else the checksum file its publisher
puts beside it) is checked before anything is unpacked, then each file's sha256 where one is known; a table
converted from the publisher's spreadsheet is checked against the dataset's published figures (no checksum
can pin a file written here). What could not be verified is said, never skipped in silence. Downloads go to
``<location>/<file>.part`` and resume from its size (HTTP Range); a dataset is unpacked into a hidden
staging folder and moved into place only once verified.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlsplit
from urllib.request import Request, urlopen

#: environment variable naming the folder that holds the datasets
DATA_ENV_VAR = "RECPIPELINE_DATA"
#: the location without $RECPIPELINE_DATA, relative to the working directory
DEFAULT_LOCATION = Path("data", "datasets")
#: how a configuration's input path starts when it names a dataset: ${RECPIPELINE_DATA}/movielens-100k
PLACEHOLDER = "${" + DATA_ENV_VAR + "}"
CHUNK = 1 << 20
TIMEOUT_S = 60

#: something to tell the user (a line, without the program's name)
Notify = Callable[[str], None]


class DatasetError(Exception):
    """A dataset that cannot be fetched, verified or found; the message is one line saying what to do."""


@dataclass(frozen=True)
class TableCheck:
    """The one table a dataset is converted to (Parquet, from the publisher's spreadsheet or a CSV), checked
    against the published figures."""

    file: str
    columns: tuple[str, ...]
    #: read as text: invoice numbers such as 536365 and C536379 or stock codes such as 85123A stay as given
    text_columns: tuple[str, ...]
    #: written as ISO text ("YYYY-MM-DD HH:MM:SS"), as the reference copy has it
    timestamp_column: str
    rows: int
    #: published column totals
    sums: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """One registry entry: what to download, its terms, and the files ``<location>/<name>/`` ends up with."""

    name: str
    title: str
    url: str
    licence: str
    #: approximate download size, for ``datasets list``
    size: str
    #: the dataset folder's files (the layout sources and configurations read) -> sha256 where known
    files: Mapping[str, str | None]
    #: "md5:<hex>" or "sha256:<hex>" of the download, where its publisher gives it
    checksum: str | None = None
    #: else a checksum file the publisher puts beside the download (GroupLens' <archive>.md5)
    checksum_url: str | None = None
    table: TableCheck | None = None

    @property
    def download_name(self) -> str:
        return unquote(PurePosixPath(urlsplit(self.url).path).name)

    @property
    def is_archive(self) -> bool:
        return self.download_name.lower().endswith(".zip")

    def folder(self, location: Path | None = None) -> Path:
        return (location or data_location()) / self.name

    def present(self, location: Path | None = None) -> bool:
        folder = self.folder(location)
        return all((folder / file).is_file() for file in self.files)


_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
_GROUPLENS_TERMS = "GroupLens research use, no redistribution"
#: sha256 of the ml-100k files (the two scripts of the archive, allbut.pl and mku.sh, are not data)
_ML100K_FILES = {
    "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
}
_ONLINE_RETAIL = TableCheck(
    file="online_retail.parquet",
    columns=(
        "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
        "Country",
    ),
    text_columns=("InvoiceNo", "StockCode", "Description", "Country"),
    timestamp_column="InvoiceDate",
    rows=541_909,
    sums={"Quantity": 5_176_450},
)  # fmt: skip

#: the registry: names are the folder names (CI's shared copies use the same, so RECPIPELINE_DATA may name it)
DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        Dataset(
            "movielens-100k", "MovieLens 100K", _GROUPLENS + "ml-100k.zip", _GROUPLENS_TERMS, "5 MB",
            files=_ML100K_FILES, checksum="md5:0e33842e24a9c977be4e0107933c0723",
        ),
        Dataset(
            "movielens-1m", "MovieLens 1M", _GROUPLENS + "ml-1m.zip", _GROUPLENS_TERMS, "6 MB",
            files=dict.fromkeys(("ratings.dat", "movies.dat", "users.dat")),
            checksum_url=_GROUPLENS + "ml-1m.zip.md5",
        ),
        Dataset(
            "movielens-20m", "MovieLens 20M", _GROUPLENS + "ml-20m.zip", _GROUPLENS_TERMS, "190 MB",
            files=dict.fromkeys(("ratings.csv", "movies.csv")), checksum_url=_GROUPLENS + "ml-20m.zip.md5",
        ),
        Dataset(
            "movielens-25m", "MovieLens 25M", _GROUPLENS + "ml-25m.zip", _GROUPLENS_TERMS, "250 MB",
            files=dict.fromkeys(("ratings.csv", "movies.csv")), checksum_url=_GROUPLENS + "ml-25m.zip.md5",
        ),
        Dataset(
            "uci-online-retail", "UCI Online Retail",
            "https://archive.ics.uci.edu/static/public/352/online+retail.zip",
            "CC BY 4.0 (cite Chen 2015, doi:10.24432/C5BW33)", "23 MB",
            files={_ONLINE_RETAIL.file: None}, table=_ONLINE_RETAIL,
        ),
        Dataset(
            "diginetica-sample", "DIGINETICA item views, the SR-GNN sample",
            "https://raw.githubusercontent.com/CRIPAC-DIG/SR-GNN/master/datasets/sample_train-item-views.csv",
            "research use (CIKM Cup 2016)", "0.4 MB",
            files={
                "sample_train-item-views.csv": (
                    "98da96e05c87ef12b739e4bfd9bc7b4864106ee77371f1db9eb4413e3f78d37e"
                )
            },
        ),
    )
}  # fmt: skip


def data_location() -> Path:
    """The folder holding the datasets: ``$RECPIPELINE_DATA``, else ``./data/datasets`` (made absolute)."""
    value = os.environ.get(DATA_ENV_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else Path.cwd() / DEFAULT_LOCATION


def expand_data_location(value: str) -> str:
    """A configuration's input path with a leading ``${RECPIPELINE_DATA}`` replaced by the data location."""
    if not value.startswith(PLACEHOLDER):
        return value
    return str(data_location()) + value[len(PLACEHOLDER) :]


def dataset_named_by(value: str) -> str | None:
    """The registered dataset a configuration path ``${RECPIPELINE_DATA}/NAME/...`` reads, if any."""
    if not value.startswith(PLACEHOLDER):
        return None
    parts = PurePosixPath(value[len(PLACEHOLDER) :].replace("\\", "/")).parts
    name = next((part for part in parts if part != "/"), None)
    return name if name in DATASETS else None


def missing_message(name: str, location: Path | None = None) -> str:
    """What to do when dataset ``name`` is not at the location (configurations, tests, benchmarks say it)."""
    location = location or data_location()
    return (
        f"public dataset {name} not found in {location} (${DATA_ENV_VAR}, else ./data/datasets): "
        f"fetch it with `recpipeline datasets fetch {name}`"
    )


def dataset_folder(name: str) -> Path:
    """Where dataset ``name`` lives (``<location>/<name>``), present or not."""
    return DATASETS[name].folder()


def format_listing(location: Path | None = None) -> str:
    """``datasets list``: each dataset's name, size, whether it is present, licence and URL."""
    location = location or data_location()
    rows = [("name", "size", "present", "licence", "url")]
    for dataset in DATASETS.values():
        present = "yes" if dataset.present(location) else "no"
        rows.append((dataset.name, dataset.size, present, dataset.licence, dataset.url))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join([*map(str.ljust, row[:-1], widths), row[-1]]) for row in rows]
    header = f"datasets in {location} (${DATA_ENV_VAR}, else ./data/datasets):"
    return "\n".join([header, *lines])


def fetch(
    dataset: Dataset,
    location: Path | None = None,
    source: Path | None = None,
    *,
    progress: bool = True,
    notify: Notify | None = None,
) -> Path:
    """Put ``dataset`` into ``<location>/<name>`` (default location: ``data_location()``) and return that
    folder: downloaded from its URL, or registered from ``source`` (the downloaded archive or file, or an
    unpacked folder) when given. Already present and no ``source``: nothing is done."""
    notify = notify or (lambda line: None)
    location = Path(location or data_location()).resolve()
    target = dataset.folder(location)
    if source is None and dataset.present(location):
        notify(f"{dataset.name}: already in {target}")
        return target
    if source is not None and Path(source).resolve() == target:
        _verify_folder(dataset, target, str(target), notify)  # registered in place: nothing to copy
        return target
    location.mkdir(parents=True, exist_ok=True)
    staging = location / f".{dataset.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if source is None:
            label = _download_into(dataset, location, staging, progress, notify)
        else:
            label = _register(dataset, Path(source), staging, notify)
        if dataset.table is not None and not (staging / dataset.table.file).exists():
            _convert(dataset.table, staging, label, notify)
        _verify_folder(dataset, staging, label, notify)
        _install(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# --- downloading ------------------------------------------------------------------------------------------


def _download_into(dataset: Dataset, location: Path, staging: Path, progress: bool, notify: Notify) -> str:
    """Download, verify, and unpack (or place) into ``staging``; the download's URL, for messages."""
    expected = _expected_checksum(dataset, notify)  # first: a checksum file fails fast when offline
    part = location / f"{dataset.download_name}.part"
    _download(dataset, part, progress)
    mismatch = None if expected is None else _mismatch(part, expected)
    if mismatch is not None:
        part.unlink()  # resuming would only append to the same wrong bytes
        raise DatasetError(
            f"{dataset.url}: {mismatch}; nothing was unpacked and the download was deleted: run the command "
            "again, and report it if it repeats"
        )
    if expected is not None:
        notify(f"{dataset.name}: {expected[0]} of {dataset.download_name} verified")
    try:
        _place(dataset, part, staging)
    except DatasetError:
        part.unlink()  # an archive refused as a whole is not worth resuming
        raise
    part.unlink()
    return dataset.url


def _download(dataset: Dataset, part: Path, progress: bool) -> None:
    """``dataset.url`` into ``part``, resumed from the size it has (a server ignoring Range: from scratch)."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    # 416 after a Range request: nothing left to send, the part is whole (its checksum will tell)
    response = _open(dataset, dataset.url, headers, accept=(416,) if offset else ())
    if response is None:
        return
    with response:
        resumed = bool(offset) and response.status == 206
        offset = offset if resumed else 0
        length = response.headers.get("Content-Length", "")
        total = offset + int(length) if length.isdigit() else None
        bar = tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=dataset.name,
            disable=not progress, leave=False,
        )  # fmt: skip
        with bar, part.open("ab" if resumed else "wb") as out:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise DatasetError(
                    f"{dataset.url}: the download broke off after {out.tell()} bytes ({exc}); run the same "
                    "command again to resume it"
                ) from None


def _open(
    dataset: Dataset, url: str, headers: Mapping[str, str] | None = None, accept: tuple[int, ...] = ()
) -> http.client.HTTPResponse | None:
    """The response to GET ``url``; None for an HTTP error status in ``accept``; any other failure (offline,
    refused, an error status) is one line naming the URL to fetch by hand and ``--from``."""
    try:
        return urlopen(Request(url, headers=dict(headers or {})), timeout=TIMEOUT_S)
    except HTTPError as exc:
        if exc.code in accept:
            return None
        reason: object = f"HTTP {exc.code} {exc.reason}"
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
    raise DatasetError(
        f"cannot download {url} ({reason}); download {dataset.url} by hand and register it with "
        f"`recpipeline datasets fetch {dataset.name} --from FILE`"
    )


def _expected_checksum(dataset: Dataset, notify: Notify) -> tuple[str, str] | None:
    """(algorithm, hex digest) the download must have: pinned, the file's own sha256 when the download is
    the dataset's one file, else read from the publisher's checksum file; None when none is published."""
    if dataset.checksum is not None:
        algorithm, _, digest = dataset.checksum.partition(":")
        return algorithm, digest.lower()
    known = dataset.files.get(dataset.download_name)
    if not dataset.is_archive and known is not None:
        return "sha256", known
    if dataset.checksum_url is not None:
        algorithm = _published_algorithm(dataset)
        with _open(dataset, dataset.checksum_url) as response:  # no accepted error: never None
            text = response.read(1 << 16).decode("utf-8", "replace")
        # GroupLens writes "MD5 (ml-1m.zip) = <hex>"; md5sum writes "<hex>  ml-1m.zip"
        width = hashlib.new(algorithm).digest_size * 2
        found = re.search(rf"\b[0-9a-fA-F]{{{width}}}\b", text)
        if found is None:
            raise DatasetError(f"{dataset.checksum_url}: no {algorithm} checksum in the published file")
        return algorithm, found.group().lower()
    notify(
        f"{dataset.name}: {dataset.download_name} has no published checksum; "
        + (
            f"{dataset.table.file} is checked against the published figures instead"
            if dataset.table is not None
            else "its files' sha256 are checked where known"
        )
    )
    return None


def _published_algorithm(dataset: Dataset) -> str:
    """The hash of the publisher's checksum file, named by its suffix (``ml-1m.zip.md5``)."""
    return PurePosixPath(urlsplit(str(dataset.checksum_url)).path).suffix.lstrip(".") or "md5"


def _mismatch(path: Path, expected: tuple[str, str]) -> str | None:
    """How ``path`` differs from the ``(algorithm, digest)`` it must have; None when it has it."""
    algorithm, digest = expected
    actual = _digest(path, algorithm)
    return None if actual == digest else f"{algorithm} checksum mismatch (expected {digest}, got {actual})"


def _digest(path: Path, algorithm: str) -> str:
    hasher = hashlib.new(algorithm)
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


# --- registering a file or folder downloaded elsewhere ----------------------------------------------------


def _register(dataset: Dataset, source: Path, staging: Path, notify: Notify) -> str:
    """Copy (or unpack) ``source`` into ``staging``, verifying an archive's checksum first."""
    label = str(source)
    if source.is_dir():
        if dataset.table is None:
            _require_files(dataset, source, label)  # before copying: a wrong folder is refused at once
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if dataset.table is None and not any(dataset.files.values()):
            notify(
                f"warning: {dataset.name}: no checksum is known for its unpacked files, so {source} is NOT "
                f"verified; register the {dataset.download_name} archive instead to check it"
            )
    elif not source.is_file():
        raise DatasetError(f"{source}: no such file or folder")
    elif dataset.is_archive and source.suffix.lower() == ".zip":
        try:
            expected = _expected_checksum(dataset, notify)
        except DatasetError as exc:  # offline with a file at hand: say it, show what to compare by hand
            algorithm = _published_algorithm(dataset)
            notify(
                f"warning: {source} NOT verified against its published checksum ({exc}); its "
                f"{algorithm} is {_digest(source, algorithm)}: compare it with {dataset.checksum_url}"
            )
            expected = None
        if expected is not None:
            mismatch = _mismatch(source, expected)
            if mismatch is not None:
                raise DatasetError(
                    f"{source}: {mismatch}: not the published {dataset.download_name}; nothing was unpacked"
                )
            notify(f"{dataset.name}: {expected[0]} of {source.name} verified")
        _unpack(source, staging)
    elif dataset.table is not None or not dataset.is_archive:
        # the table to convert (a spreadsheet, CSV or Parquet file), or a one-file dataset's file
        name = dataset.download_name if not dataset.is_archive else source.name
        shutil.copy2(source, staging / name)
    else:
        raise DatasetError(
            f"{source}: expected the {dataset.download_name} archive or the folder it unpacks to "
            f"(with {', '.join(dataset.files)})"
        )
    return label


# --- unpacking, converting, verifying, installing ---------------------------------------------------------


def _place(dataset: Dataset, download: Path, staging: Path) -> None:
    if dataset.is_archive:
        _unpack(download, staging)
    else:
        shutil.copy2(download, staging / dataset.download_name)


def _unpack(archive: Path, staging: Path) -> None:
    """Every member of the zip ``archive`` under ``staging``, without the archive's one top folder
    (``ml-100k/``) if it has one; refused as a whole, before anything is written, when a member's path
    would leave ``staging`` (absolute, ``..``, a drive) or is a symbolic link."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [info for info in zipped.infolist() if not info.is_dir()]
            paths = [_member_path(info, archive) for info in members]
            tops = {path.parts[0] for path in paths}
            strip = len(tops) == 1 and all(len(path.parts) > 1 for path in paths)
            for info, path in zip(members, paths, strict=True):
                destination = staging.joinpath(*path.parts[1 if strip else 0 :])
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as member, destination.open("wb") as out:
                    shutil.copyfileobj(member, out, CHUNK)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{archive}: not a readable zip archive ({exc})") from None


def _member_path(info: zipfile.ZipInfo, archive: Path) -> PurePosixPath:
    path = PurePosixPath(info.filename.replace("\\", "/"))
    is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
    if path.is_absolute() or ".." in path.parts or ":" in path.parts[0] or is_link:
        raise DatasetError(
            f"{archive}: refused: member {info.filename!r} would be written outside the dataset folder "
            "(or is a link); nothing was unpacked"
        )
    return path


def _convert(table: TableCheck, staging: Path, label: str, notify: Notify) -> None:
    """The spreadsheet, CSV or Parquet file in ``staging`` as ``table.file`` (Parquet is taken as it is)."""
    import pandas as pd

    found = sorted(
        path for path in staging.rglob("*") if path.suffix.lower() in {".xlsx", ".csv", ".parquet"}
    )
    if not found:
        raise DatasetError(f"{label}: no .xlsx, .csv or .parquet file to make {table.file} from")
    source, target = found[0], staging / table.file
    if source.suffix.lower() == ".parquet":
        source.replace(target)
        return
    text = dict.fromkeys(table.text_columns, str)
    notify(f"converting {source.name} to {table.file} (once)")
    if source.suffix.lower() == ".xlsx":
        try:
            import openpyxl  # noqa: F401 -- pandas reads .xlsx through it
        except ImportError:
            raise DatasetError(
                f"{label}: reading {source.name} needs openpyxl: pip install 'recpipeline[datasets]' (or "
                "convert it to CSV or Parquet yourself and pass that with --from)"
            ) from None
        frame = pd.read_excel(source, dtype=text)
    else:
        try:
            frame = pd.read_csv(source, dtype=text)
        except UnicodeDecodeError:  # copies made on Windows are often latin-1
            frame = pd.read_csv(source, dtype=text, encoding="latin-1")
    _require_columns(table, frame.columns, f"{label}: {source.name}")
    frame = frame[list(table.columns)]
    try:
        stamps = pd.to_datetime(frame[table.timestamp_column])
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"{label}: {source.name}: column {table.timestamp_column!r}: {exc}") from None
    frame[table.timestamp_column] = stamps.dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.to_parquet(target, index=False)
    source.unlink()


def _verify_folder(dataset: Dataset, folder: Path, label: str, notify: Notify) -> None:
    """Every file of the layout is there, with its sha256 where known; the table has the published figures."""
    _require_files(dataset, folder, label)
    known = {file: digest for file, digest in dataset.files.items() if digest is not None}
    for file, digest in known.items():
        actual = _digest(folder / file, "sha256")
        if actual != digest:
            raise DatasetError(
                f"{label}: {file}: sha256 mismatch (expected {digest}, got {actual}): not the published "
                f"{dataset.title}"
            )
    if known:
        notify(f"{dataset.name}: sha256 of {len(known)} file(s) verified")
    if dataset.table is not None:
        _check_table(dataset.table, folder / dataset.table.file, label)
        notify(f"{dataset.name}: {dataset.table.file} has the published {dataset.table.rows:,} rows, totals")


def _require_files(dataset: Dataset, folder: Path, label: str) -> None:
    missing = [file for file in dataset.files if not (folder / file).is_file()]
    if missing:
        raise DatasetError(
            f"{label}: no {missing[0]}: not the {dataset.title} layout (expected {', '.join(dataset.files)})"
        )


def _check_table(table: TableCheck, path: Path, label: str) -> None:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise DatasetError(f"{label}: {path.name} is not a readable Parquet file ({exc})") from None
    _require_columns(table, parquet.schema_arrow.names, f"{label}: {path.name}")
    rows = parquet.metadata.num_rows
    if rows != table.rows:
        raise DatasetError(f"{label}: {path.name} has {rows:,} rows, the published table {table.rows:,}")
    if table.sums:
        frame = parquet.read(columns=list(table.sums)).to_pandas()
        for column, expected in table.sums.items():
            total = frame[column].sum()
            if total != expected:
                raise DatasetError(
                    f"{label}: {path.name}: {column} sums to {total}, the published table to {expected}"
                )


def _require_columns(table: TableCheck, names: Iterable[str], where: str) -> None:
    present = set(names)
    missing = [column for column in table.columns if column not in present]
    if missing:
        raise DatasetError(f"{where}: no column {missing[0]!r}; expected {list(table.columns)}")


def _install(staging: Path, target: Path) -> None:
    """Move the verified files into ``target`` (replacing what is there under the same names)."""
    for file in sorted(path for path in staging.rglob("*") if path.is_file()):
        destination = target / file.relative_to(staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, destination)
