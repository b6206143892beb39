"""`recpipeline datasets`: the registry, fetching from a loopback HTTP server started here (never the
internet), registering copies with --from, and configurations naming ``${RECPIPELINE_DATA}``."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from recpipeline import datasets
from recpipeline.cli import main
from recpipeline.config import ConfigError, parse_config
from recpipeline.datasets import DATASETS, PLACEHOLDER, Dataset, DatasetError, TableCheck, fetch
from recpipeline_tests.conftest import REPO_ROOT, public_dataset

RATINGS = b"user,item,rating\n1,10,5\n2,10,3\n"
#: the toy archive has one top folder, as GroupLens' have (ml-100k/u.data)
ARCHIVE_MEMBERS = {"toy-1.0/ratings.csv": RATINGS, "toy-1.0/README": b"toy terms\n"}


def _zip(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name in links:  # a symbolic link member, as `zip --symlinks` writes one
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "../../outside")
    return buffer.getvalue()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ARCHIVE = _zip(ARCHIVE_MEMBERS)


def toy(url: str, **settings) -> Dataset:
    """A registry entry like MovieLens': a zip with a pinned MD5; one file's sha256 known, one not."""
    entry = Dataset(
        name="toy",
        title="Toy ratings",
        url=url,
        licence="test terms",
        size="1 kB",
        files={"ratings.csv": _sha256(RATINGS), "README": None},
        checksum=f"md5:{_md5(ARCHIVE)}",
    )
    return replace(entry, **settings)


@dataclass
class Server:
    """A loopback HTTP server of in-memory files; ``ranges`` False: it ignores Range headers."""

    base: str
    files: dict[str, bytes]
    ranges: bool = True
    #: (path, Range header or None, status) of every request
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        state: Server = self.server.state
        body = state.files.get(self.path)
        asked = self.headers.get("Range")
        if body is None:
            state.requests.append((self.path, asked, 404))
            self.send_error(404)
            return
        start = int(asked.removeprefix("bytes=").split("-")[0]) if asked and state.ranges else 0
        status = 200 if not (asked and state.ranges) else 206 if start < len(body) else 416
        state.requests.append((self.path, asked, status))
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        payload = b"" if status == 416 else body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}", files={"/toy.zip": ARCHIVE})
    httpd.state = state
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _installed(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _leftovers(location: Path) -> list[str]:
    return sorted(path.name for path in location.iterdir()) if location.exists() else []


# --- downloading ------------------------------------------------------------------------------------------


def test_download_verifies_then_unpacks_without_the_top_folder(server: Server, tmp_path: Path):
    notes: list[str] = []
    folder = fetch(toy(server.url("/toy.zip")), tmp_path, progress=False, notify=notes.append)
    assert folder == tmp_path / "toy"
    assert _installed(folder) == {"ratings.csv": RATINGS, "README": b"toy terms\n"}
    assert _leftovers(tmp_path) == ["toy"]  # no .part, no staging folder
    assert any("md5 of toy.zip verified" in note for note in notes)
    assert any("sha256 of 1 file(s) verified" in note for note in notes)
    # present: a second fetch asks the server nothing
    asked = len(server.requests)
    assert fetch(toy(server.url("/toy.zip")), tmp_path, progress=False) == folder
    assert len(server.requests) == asked


def test_download_resumes_from_the_part_file(server: Server, tmp_path: Path):
    half = len(ARCHIVE) // 2
    (tmp_path / "toy.zip.part").write_bytes(ARCHIVE[:half])
    fetch(toy(server.url("/toy.zip")), tmp_path, progress=False)
    assert server.requests == [("/toy.zip", f"bytes={half}-", 206)]
    assert _installed(tmp_path / "toy")["ratings.csv"] == RATINGS


def test_a_whole_part_file_is_not_downloaded_again(server: Server, tmp_path: Path):
    (tmp_path / "toy.zip.part").write_bytes(ARCHIVE)
    fetch(toy(server.url("/toy.zip")), tmp_path, progress=False)
    assert [status for _, _, status in server.requests] == [416]
    assert (tmp_path / "toy" / "ratings.csv").read_bytes() == RATINGS


def test_a_server_ignoring_range_is_downloaded_from_scratch(server: Server, tmp_path: Path):
    server.ranges = False
    (tmp_path / "toy.zip.part").write_bytes(b"\0" * 100)  # appending the whole body to it would fail the MD5
    fetch(toy(server.url("/toy.zip")), tmp_path, progress=True)
    assert server.requests == [("/toy.zip", "bytes=100-", 200)]
    assert (tmp_path / "toy" / "ratings.csv").read_bytes() == RATINGS


def test_a_checksum_mismatch_is_refused_before_unpacking(server: Server, tmp_path: Path):
    entry = toy(server.url("/toy.zip"), checksum="md5:" + "0" * 32)
    with pytest.raises(DatasetError) as info:
        fetch(entry, tmp_path, progress=False)
    message = str(info.value)
    assert "md5 checksum mismatch" in message and "nothing was unpacked" in message and "\n" not in message
    assert _leftovers(tmp_path) == []  # the part deleted, nothing unpacked


@pytest.mark.parametrize(
    ("members", "links"),
    [
        ({"toy/ratings.csv": RATINGS, "../evil.txt": b"x"}, ()),
        ({"toy/ratings.csv": RATINGS, "/evil.txt": b"x"}, ()),
        ({"toy/ratings.csv": RATINGS, "C:/evil.txt": b"x"}, ()),
        ({"toy/ratings.csv": RATINGS}, ("toy/README",)),
    ],
    ids=["dot-dot", "absolute", "drive", "symlink"],
)
def test_an_archive_with_a_path_leaving_the_folder_is_refused_whole(
    server: Server, tmp_path: Path, members: dict[str, bytes], links: tuple[str, ...]
):
    archive = _zip(members, links)
    server.files["/toy.zip"] = archive
    location = tmp_path / "location"
    with pytest.raises(DatasetError, match="refused: member .* outside the dataset folder"):
        fetch(toy(server.url("/toy.zip"), checksum=f"md5:{_md5(archive)}"), location, progress=False)
    assert _leftovers(location) == []  # nothing unpacked, not even the member before the bad one
    assert not (tmp_path / "evil.txt").exists()


def test_offline_names_the_url_and_from(tmp_path: Path):
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/toy.zip"
    with pytest.raises(DatasetError) as info:
        fetch(toy(url), tmp_path, progress=False)
    message = str(info.value)
    assert f"cannot download {url}" in message and "\n" not in message
    assert "`recpipeline datasets fetch toy --from FILE`" in message


def test_a_published_checksum_file_is_read_and_applied(server: Server, tmp_path: Path):
    entry = toy(server.url("/toy.zip"), checksum=None, checksum_url=server.url("/toy.zip.md5"))
    server.files["/toy.zip.md5"] = f"MD5 (toy.zip) = {_md5(ARCHIVE)}\n".encode()  # GroupLens' format
    fetch(entry, tmp_path / "good", progress=False)
    assert (tmp_path / "good" / "toy" / "ratings.csv").read_bytes() == RATINGS

    server.files["/toy.zip.md5"] = f"{_md5(b'another archive')}  toy.zip\n".encode()  # md5sum's format
    with pytest.raises(DatasetError, match="md5 checksum mismatch"):
        fetch(entry, tmp_path / "bad", progress=False)
    assert _leftovers(tmp_path / "bad") == []


# --- registering a copy with --from -----------------------------------------------------------------------


def test_from_an_archive_verifies_it_and_keeps_the_file(server: Server, tmp_path: Path):
    archive = tmp_path / "downloaded.zip"
    archive.write_bytes(ARCHIVE)
    fetch(toy(server.url("/toy.zip")), tmp_path / "data", source=archive)
    assert (tmp_path / "data" / "toy" / "ratings.csv").read_bytes() == RATINGS
    assert server.requests == []  # a pinned checksum needs no network

    other = tmp_path / "other.zip"
    other.write_bytes(_zip({"toy/ratings.csv": RATINGS, "toy/README": b"changed"}))
    with pytest.raises(DatasetError, match="not the published toy.zip; nothing was unpacked"):
        fetch(toy(server.url("/toy.zip")), tmp_path / "elsewhere", source=other)
    assert other.exists() and not (tmp_path / "elsewhere" / "toy").exists()


def test_from_an_archive_offline_warns_with_its_md5(tmp_path: Path):
    archive = tmp_path / "toy.zip"
    archive.write_bytes(ARCHIVE)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{probe.getsockname()[1]}"
    entry = toy(f"{base}/toy.zip", checksum=None, checksum_url=f"{base}/toy.zip.md5")
    notes: list[str] = []
    fetch(entry, tmp_path / "data", source=archive, notify=notes.append)
    (warning,) = [note for note in notes if note.startswith("warning:")]
    assert "NOT verified" in warning and _md5(ARCHIVE) in warning and f"{base}/toy.zip.md5" in warning


def test_from_a_folder_checks_the_known_sha256(server: Server, tmp_path: Path):
    folder = tmp_path / "unpacked"
    folder.mkdir()
    (folder / "ratings.csv").write_bytes(RATINGS)
    (folder / "README").write_bytes(b"anything")  # no sha256 known: only its presence is checked
    fetch(toy(server.url("/toy.zip")), tmp_path / "data", source=folder)
    assert _installed(tmp_path / "data" / "toy") == {"ratings.csv": RATINGS, "README": b"anything"}

    (folder / "ratings.csv").write_bytes(RATINGS + b"3,10,1\n")
    with pytest.raises(DatasetError, match=r"unpacked: ratings.csv: sha256 mismatch"):
        fetch(toy(server.url("/toy.zip")), tmp_path / "other", source=folder)
    (folder / "README").unlink()
    with pytest.raises(DatasetError, match="no README: not the Toy ratings layout"):
        fetch(toy(server.url("/toy.zip")), tmp_path / "other", source=folder)
    assert not (tmp_path / "other" / "toy").exists()


def test_from_the_one_file_of_a_one_file_dataset(server: Server, tmp_path: Path):
    entry = toy(server.url("/views.csv"), checksum=None, files={"views.csv": _sha256(RATINGS)})
    copy = tmp_path / "views (1).csv"  # as a browser names a second download
    copy.write_bytes(RATINGS)
    fetch(entry, tmp_path / "data", source=copy)
    assert _installed(tmp_path / "data" / "toy") == {"views.csv": RATINGS}
    with pytest.raises(DatasetError, match="expected the toy.zip archive or the folder it unpacks to"):
        fetch(toy(server.url("/toy.zip")), tmp_path / "data", source=copy)


def test_from_the_dataset_folder_itself_verifies_in_place(server: Server, tmp_path: Path):
    fetch(toy(server.url("/toy.zip")), tmp_path, progress=False)
    before = _installed(tmp_path / "toy")
    assert fetch(toy(server.url("/toy.zip")), tmp_path, source=tmp_path / "toy") == tmp_path / "toy"
    assert _installed(tmp_path / "toy") == before


# --- converting a table -----------------------------------------------------------------------------------

LINES = (
    "Invoice,Item,Quantity,When\n"
    "536365,00417,1,12/1/2010 8:26\n"
    "C536379,85123A,2,12/1/2010 9:41\n"
    "536380,D,3,12/2/2010 10:00\n"
)
TABLE = TableCheck(
    file="lines.parquet",
    columns=("Invoice", "Item", "Quantity", "When"),
    text_columns=("Invoice", "Item"),
    timestamp_column="When",
    rows=3,
    sums={"Quantity": 6},
)


def shop(url: str) -> Dataset:
    """A registry entry like Online Retail's: a zip without a published checksum, holding a table."""
    return Dataset("shop", "Toy shop", url, "test terms", "1 kB", files={TABLE.file: None}, table=TABLE)


def test_a_downloaded_csv_is_converted_once_and_checked_by_its_figures(server: Server, tmp_path: Path):
    server.files["/shop.zip"] = _zip({"Shop Lines.csv": LINES.encode()})
    notes: list[str] = []
    folder = fetch(shop(server.url("/shop.zip")), tmp_path, progress=False, notify=notes.append)
    assert sorted(_installed(folder)) == ["lines.parquet"]  # the CSV is not kept
    lines = pd.read_parquet(folder / "lines.parquet")
    assert lines["Item"].tolist() == ["00417", "85123A", "D"]  # ids stay text
    assert lines["When"].tolist() == ["2010-12-01 08:26:00", "2010-12-01 09:41:00", "2010-12-02 10:00:00"]
    assert any("no published checksum" in note and "published figures" in note for note in notes)


def test_a_parquet_table_is_taken_as_it_is_and_a_short_one_refused(tmp_path: Path):
    csv = tmp_path / "lines.csv"
    csv.write_text(LINES)
    made = fetch(shop("http://127.0.0.1:9/shop.zip"), tmp_path / "a", source=csv) / "lines.parquet"
    fetch(shop("http://127.0.0.1:9/shop.zip"), tmp_path / "b", source=made)
    assert (tmp_path / "b" / "shop" / "lines.parquet").read_bytes() == made.read_bytes()

    csv.write_text(LINES.rsplit("\n", 2)[0] + "\n")  # the last line lost
    with pytest.raises(DatasetError, match="lines.parquet has 2 rows, the published table 3"):
        fetch(shop("http://127.0.0.1:9/shop.zip"), tmp_path / "c", source=csv)


def test_a_spreadsheet_without_openpyxl_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # import openpyxl raises ImportError
    sheet = tmp_path / "Online Retail.xlsx"
    sheet.write_bytes(b"not read")
    with pytest.raises(DatasetError, match=r"needs openpyxl: pip install 'recpipeline\[datasets\]'"):
        fetch(shop("http://127.0.0.1:9/shop.zip"), tmp_path / "data", source=sheet)


def test_a_spreadsheet_is_converted_with_openpyxl(tmp_path: Path):
    pytest.importorskip("openpyxl", reason="the optional extra recpipeline[datasets]")
    sheet = tmp_path / "Online Retail.xlsx"
    frame = pd.read_csv(io.StringIO(LINES), dtype={"Invoice": str, "Item": str})
    frame.assign(When=pd.to_datetime(frame["When"])).to_excel(sheet, index=False)
    folder = fetch(shop("http://127.0.0.1:9/shop.zip"), tmp_path / "data", source=sheet)
    assert pd.read_parquet(folder / "lines.parquet")["When"].iloc[0] == "2010-12-01 08:26:00"


# --- the registry, configurations, the command --------------------------------------------------------------


def test_every_registered_dataset_is_verifiable():
    for dataset in DATASETS.values():
        download_known = not dataset.is_archive and dataset.files.get(dataset.download_name) is not None
        assert dataset.checksum or dataset.checksum_url or download_known or dataset.table, dataset.name


def test_the_example_configurations_name_registered_datasets():
    named = {
        name
        for file in (REPO_ROOT / "data").glob("*.yaml")
        for name in re.findall(rf"{re.escape(PLACEHOLDER)}/([^/\s]+)", file.read_text())
    }
    assert named and named <= set(DATASETS)


def test_a_configuration_reads_the_data_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    retail = {"kind": "online_retail", "path": "${RECPIPELINE_DATA}/uci-online-retail/online_retail.parquet"}
    monkeypatch.setenv("RECPIPELINE_DATA", str(tmp_path / "shared"))
    with pytest.raises(ConfigError) as info:
        parse_config({"source": retail}, source_name="run.yaml")
    assert str(info.value) == (
        f"run.yaml: source.path: public dataset uci-online-retail not found in {tmp_path / 'shared'} "
        "($RECPIPELINE_DATA, else ./data/datasets): "
        "fetch it with `recpipeline datasets fetch uci-online-retail`"
    )
    for location in (tmp_path / "shared", tmp_path / "data" / "datasets"):
        (location / "uci-online-retail").mkdir(parents=True)
        (location / "uci-online-retail" / "online_retail.parquet").touch()
    config = parse_config({"source": retail}, source_name="run.yaml", base_dir=tmp_path / "elsewhere")
    assert config.source.path == str(tmp_path / "shared" / "uci-online-retail" / "online_retail.parquet")

    monkeypatch.delenv("RECPIPELINE_DATA")
    monkeypatch.chdir(tmp_path)  # without the variable: ./data/datasets
    config = parse_config({"source": retail}, source_name="run.yaml", base_dir=tmp_path / "elsewhere")
    assert config.source.path == str(
        tmp_path / "data" / "datasets" / "uci-online-retail" / "online_retail.parquet"
    )

    with pytest.raises(ConfigError, match="no such file or folder"):  # not a registered dataset
        parse_config({"source": {**retail, "path": "${RECPIPELINE_DATA}/mine/x.parquet"}})


def test_datasets_list_shows_each_and_whether_it_is_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("RECPIPELINE_DATA", str(tmp_path))
    (tmp_path / "diginetica-sample").mkdir()
    (tmp_path / "diginetica-sample" / "sample_train-item-views.csv").touch()
    assert main(["datasets", "list"]) == 0
    header, columns, *rows = capsys.readouterr().out.splitlines()
    assert str(tmp_path) in header and columns.split() == ["name", "size", "present", "licence", "url"]
    assert [row.split()[0] for row in rows] == list(DATASETS)
    present = columns.index("present")
    for row, dataset in zip(rows, DATASETS.values(), strict=True):
        assert dataset.licence in row and row.endswith(dataset.url) and dataset.size in row
        assert row[present:].split()[0] == ("yes" if dataset.name == "diginetica-sample" else "no")


def test_datasets_fetch_end_to_end(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setitem(datasets.DATASETS, "toy", toy(server.url("/toy.zip")))
    monkeypatch.setenv("RECPIPELINE_DATA", str(tmp_path / "data"))
    assert main(["datasets", "fetch", "toy", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "data" / "toy")
    assert "recpipeline: toy: md5 of toy.zip verified" in err and "RECPIPELINE_DATA=" not in err

    assert main(["datasets", "fetch", "toy", "--to", str(tmp_path / "other"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "other" / "toy" / "ratings.csv").read_bytes() == RATINGS
    assert f"RECPIPELINE_DATA={tmp_path / 'other'}" in err  # configurations look elsewhere: say how

    monkeypatch.setitem(datasets.DATASETS, "toy", toy(server.url("/missing.zip")))
    assert main(["datasets", "fetch", "toy", "--to", str(tmp_path / "third"), "--no-progress"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("recpipeline: cannot download") and "HTTP 404" in line and "--from FILE" in line


def test_the_public_movielens_100k_folder_registers_with_every_sha256(tmp_path: Path):
    notes: list[str] = []
    folder = fetch(
        DATASETS["movielens-100k"], tmp_path, source=public_dataset("movielens-100k"), notify=notes.append
    )
    assert DATASETS["movielens-100k"].present(tmp_path) and folder == tmp_path / "movielens-100k"
    assert "movielens-100k: sha256 of 21 file(s) verified" in notes
