"""A corpus of malformed input files, each read and cleaned as ingestion does.

Every case ends either in one clear line (``SourceError`` / ``ConfigError``) naming the file, key or column,
or in rows cleaned and quarantined with a reason, with every physical data line accounted for:
data lines = cleaned + quarantined + rows outside the window. Raw and quarantined rows must also be
storable as Parquet (the raw write is where mixed types used to crash).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, Failure

from recpipeline.cli import main
from recpipeline.config import ConfigError, parse_config
from recpipeline.orchestration.assets.ingestion import retry_only_transient
from recpipeline.preparation.cleaning import clean_and_account
from recpipeline.sources import open_source
from recpipeline.sources.reading import SourceError, SourceUnavailable

DAY = "2026-06-02"
HEADER = "user_id,item_id,timestamp,event_type,value"
EPOCH_S = 1780394400  # 2026-06-02T10:00:00Z


def rows(n: int, start: int = 0, value: str = "1") -> list[str]:
    """``n`` good CSV lines of DAY, all different."""
    return [f"u{i},i{i},{DAY}T10:{i % 60:02d}:{i // 60:02d}Z,view,{value}" for i in range(start, start + n)]


def csv(*lines: str, header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def jsonl(*records: str) -> str:
    return "\n".join(records) + "\n"


def record(
    user: str = '"u1"', item: str = '"i1"', stamp: str = f'"{DAY}T10:00:00Z"', value: str = "1"
) -> str:
    fields = {"user_id": user, "item_id": item, "timestamp": stamp, "event_type": '"view"', "value": value}
    return "{" + ", ".join(f'"{name}": {text}' for name, text in fields.items()) + "}"


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def shop(n: int, user: Callable[[int], object] = lambda i: f"u{i}", start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [user(i) for i in range(start, start + n)],
            "item_id": [f"i{i}" for i in range(start, start + n)],
            "timestamp": [f"{DAY}T11:{i % 60:02d}:00Z" for i in range(start, start + n)],
            "event_type": "view",
            "value": 1.0,
        }
    )


@dataclass(frozen=True)
class Case:
    """Files to write (name -> text or bytes), where the source points, and what must come out."""

    files: dict[str, str | bytes]
    error: tuple[str, ...] = ()  # words the one-line error must hold (the file name is always checked)
    reasons: dict[str, int] = field(default_factory=dict)  # quarantine reasons and their rows
    outside: int = 0  # rows on days outside the configured window
    path: str | None = None  # default: the only file
    settings: dict = field(default_factory=dict)  # source settings added
    cleaning: dict = field(default_factory=dict)


STRAY = [*rows(2), 'u2,"i2,2026-06-02T10:02:00Z,view,1', *rows(98, 3), 'u101,i101",x', *rows(3, 102)]
LATIN = "u1,café,2026-06-02T10:00:00Z,view,1\n".encode("latin-1")

CASES: dict[str, Case] = {
    # --- CSV structure
    "stray_quotes_100_lines_apart": Case({"a.csv": csv(*STRAY)}, error=("lines 4-103", "quoting")),
    "unclosed_quote": Case({"a.csv": csv(*rows(3), 'u9,"i9,2026-06-02T10:00:00Z,view,1')}, error=("csv",)),
    "wrong_delimiter": Case({"a.csv": csv(*rows(3)).replace(",", ";")}, error=("'user_id'",)),
    "tab_separated_named_csv": Case({"a.csv": csv(*rows(3)).replace(",", "\t")}, error=("'user_id'",)),
    "missing_item_id_column": Case(
        {"a.csv": csv("u1,2026-06-02T10:00:00Z,view,1", header="user_id,timestamp,event_type,value")},
        error=("'item_id'",),
    ),
    "empty_file": Case({"a.csv": ""}, error=("csv",)),
    "header_only": Case({"a.csv": csv()}),
    "too_many_fields": Case(
        {"a.csv": csv(*rows(3), "u9,i9,2026-06-02T10:00:00Z,view,1,extra,more")}, error=("line 5",)
    ),
    "too_few_fields": Case(
        {"a.csv": csv(*rows(3), "u8,i8,2026-06-02T10:00:00Z,view", "u9,i9")},
        reasons={"bad_timestamp": 1, "bad_value": 1},
    ),
    "header_repeated_mid_file": Case(
        {"a.csv": csv(*rows(2), HEADER, *rows(2, 5))}, reasons={"bad_timestamp": 1}
    ),
    "blank_lines_and_crlf": Case({"a.csv": csv(*rows(2), "", *rows(2, 5), "").replace("\n", "\r\n")}),
    "no_final_newline": Case({"a.csv": csv(*rows(3)).rstrip("\n")}),
    "quote_inside_a_value": Case({"a.csv": csv(*rows(2), 'u"7,i7,2026-06-02T10:00:00Z,view,1')}),
    # --- encodings and junk
    "binary_junk": Case({"a.csv": bytes(range(256)) * 8}, error=("a.csv",)),
    "utf8_bom": Case({"a.csv": "\ufeff" + csv(*rows(3))}),
    "latin1_file": Case({"a.csv": (HEADER + "\n").encode() + LATIN}, error=("encoding",)),
    "latin1_with_encoding_option": Case(
        {"a.csv": (HEADER + "\n").encode() + LATIN}, settings={"options": {"encoding": "latin-1"}}
    ),
    "mixed_encodings": Case({"a.csv": csv(*rows(3)).encode() + LATIN}, error=("encoding",)),
    "truncated_gzip": Case({"a.csv.gz": gzip.compress(csv(*rows(50)).encode())[:-30]}, error=("a.csv.gz",)),
    "unknown_suffix": Case({"a.txt": csv(*rows(3))}, error=("format",)),
    "no_such_file": Case({}, path="missing.csv", error=("no such file",)),
    "folder_without_data_files": Case({"d/README.md": "hello"}, path="d", error=("no ",)),
    # --- JSON Lines
    "jsonl_true_user_id": Case(
        {"a.jsonl": jsonl(record(), record(user="true"))}, error=("line 2", "'user_id'", "true")
    ),
    "jsonl_list_item_id": Case({"a.jsonl": jsonl(record(item="[1, 2]"))}, error=("line 1", "'item_id'")),
    "jsonl_object_user_id": Case(
        {"a.jsonl": jsonl(record(), "", record(user='{"id": 7}'))}, error=("line 3", "'user_id'")
    ),
    "jsonl_non_scalar_timestamp_and_value": Case(
        {"a.jsonl": jsonl(record(), record(stamp="true"), record(value="[1]"), record(value='{"n": 2}'))},
        reasons={"bad_timestamp": 1, "bad_value": 2},
    ),
    "jsonl_broken_line": Case({"a.jsonl": jsonl(record(), '{"user_id": "u2", ')}, error=("line 2",)),
    "jsonl_not_objects": Case({"a.jsonl": jsonl("[1, 2, 3]", "4")}, error=("line 1", "JSON object")),
    # --- Parquet
    "truncated_parquet": Case({"a.parquet": parquet_bytes(shop(20))[:-40]}, error=("parquet",)),
    "parquet_boolean_user_id": Case(
        {"a.parquet": parquet_bytes(shop(3, user=lambda i: i % 2 == 0))}, error=("'user_id'", "row 0")
    ),
    "parquet_list_user_id": Case(
        {"a.parquet": parquet_bytes(shop(3, user=lambda i: [i, i + 1]))}, error=("'user_id'", "[0, 1]")
    ),
    "parquet_user_id_int_and_text": Case(
        {
            "d/a.parquet": parquet_bytes(shop(5, user=lambda i: i)),
            "d/b.parquet": parquet_bytes(shop(5, start=5)),
        },
        path="d",
    ),
    "folder_mixing_csv_and_parquet": Case(
        {"d/a.csv": csv(*rows(4)), "d/b.parquet": parquet_bytes(shop(4, user=lambda i: 1000 + i))}, path="d"
    ),
    "parquet_datetime_and_csv_text_timestamps": Case(
        {
            "d/a.csv": csv(*rows(3)),
            "d/b.parquet": parquet_bytes(shop(3, start=3).assign(timestamp=pd.Timestamp(f"{DAY}T12:00Z"))),
        },
        path="d",
    ),
    "parquet_text_values": Case(
        {"a.parquet": parquet_bytes(shop(3).assign(value=["1", "lots", ""]))}, reasons={"bad_value": 2}
    ),
    # --- timestamps
    "unparseable_timestamps": Case(
        {"a.csv": csv(*rows(2), "u8,i8,soon,view,1", "u9,i9,2026-13-45T99:00,view,1", "u7,i7,,view,1")},
        reasons={"bad_timestamp": 3},
    ),
    "timestamps_in_the_future": Case(
        {"a.csv": csv(*rows(2), "u8,i8,2099-01-01T00:00:00Z,view,1")}, reasons={"timestamp_in_future": 1}
    ),
    "epoch_seconds_and_milliseconds": Case(
        {
            "a.csv": csv(
                f"u1,i1,{EPOCH_S},view,1", f"u2,i2,{EPOCH_S * 1000},view,1", f"u3,i3,{EPOCH_S}.5,view,1"
            )
        }
    ),
    "timestamps_outside_the_window": Case(
        {"a.csv": csv(*rows(2), "u8,i8,1970-01-01T00:00:00Z,view,1", "u9,i9,0,view,1")}, outside=2
    ),
    # --- values and rows
    "negative_value": Case({"a.csv": csv(*rows(2), *rows(1, 5, value="-5"))}, reasons={"bad_value": 1}),
    "huge_values": Case(
        {"a.csv": csv(*rows(1), *rows(1, 1, "1e38"), *rows(1, 2, "1e300"), *rows(1, 3, "-1e300"))},
        reasons={"bad_value": 3},
    ),
    "a_few_huge_values_among_many": Case(
        {"a.csv": csv(*rows(40), *rows(1, 40, "1e38"), *rows(1, 41, "-5"))}, reasons={"bad_value": 2}
    ),
    "nan_and_inf_values": Case(
        {
            "a.csv": csv(
                *rows(1), *rows(1, 1, "NaN"), *rows(1, 2, "inf"), *rows(1, 3, "-inf"), *rows(1, 4, "")
            )
        },
        reasons={"bad_value": 4},
    ),
    "negative_value_inside_a_configured_range": Case(
        {"a.csv": csv(*rows(2), *rows(1, 5, value="-5"))}, cleaning={"value_range": [-10, 10]}
    ),
    "duplicate_rows": Case({"a.csv": csv(*rows(3), *rows(2))}, reasons={"duplicate": 2}),
    "missing_ids": Case(
        {"a.csv": csv(*rows(2), ",i8,2026-06-02T10:00:00Z,view,1", "u9, ,2026-06-02T10:00:00Z,view,1")},
        reasons={"missing_user_id": 1, "missing_item_id": 1},
    ),
    "unknown_event_type": Case(
        {"a.csv": csv(*rows(2), "u9,i9,2026-06-02T10:00:00Z,click??,1")}, reasons={"unknown_event_type": 1}
    ),
    # --- configuration of the range
    "value_range_upside_down": Case(
        {"a.csv": csv(*rows(2))}, cleaning={"value_range": [5, 1]}, error=("cleaning.value_range",)
    ),
    "value_range_not_a_pair": Case(
        {"a.csv": csv(*rows(2))}, cleaning={"value_range": "high"}, error=("cleaning.value_range",)
    ),
}


def write_case(case: Case, folder: Path) -> Path:
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="")
        else:
            path.write_bytes(content)
    return folder / (case.path or next(iter(case.files)))


def case_config(case: Case, path: Path) -> dict:
    columns = {name: name for name in ("user_id", "item_id", "timestamp", "event_type", "value")}
    source = {"kind": "files", "path": str(path), "columns": columns, "start_date": DAY, "end_date": DAY}
    return {"source": {**source, **case.settings}, "cleaning": case.cleaning}


def data_lines(folder: Path, case: Case) -> int:
    """Records the files hold: non-blank lines after a CSV header, non-blank JSON lines, Parquet rows."""
    total = 0
    for name in case.files:
        path = folder / name
        if name.endswith(".parquet"):
            total += pq.ParquetFile(path).metadata.num_rows
        elif name.endswith((".csv", ".jsonl")):
            lines = [line for line in path.read_bytes().decode("latin-1").splitlines() if line.strip()]
            total += len(lines) - (name.endswith(".csv") and len(lines) > 0)
    return total


def storable(frame: pd.DataFrame) -> None:
    frame.to_parquet(io.BytesIO())  # raises as the raw / quarantine write would


@pytest.mark.parametrize("name", list(CASES))
def test_a_malformed_input_ends_in_one_clear_line_or_in_quarantine(name: str, tmp_path: Path):
    check_case(name, CASES[name], tmp_path, write_case(CASES[name], tmp_path))


def check_case(name: str, case: Case, tmp_path: Path, path: Path) -> list[pd.DataFrame]:
    """Read and clean ``case`` (written under ``tmp_path``, the source at ``path``) as ingestion does and
    check its outcome: the one-line error, or the quarantine reasons and every data line accounted for.
    Returns the cleaned days' frames (none after an error)."""
    try:
        config = parse_config(case_config(case, path), source_name="corpus.yaml")
        source = open_source(config)
        first, last = source.days()
        raw = {day.isoformat(): source.events_of_day(day) for day in pd.date_range(first, last).date}
        result = clean_and_account(raw, source.to_contract, config.cleaning.value_range)
        outside = source.row_counts()["outside_window_rows"]
    except (SourceError, ConfigError) as exc:
        message = str(exc)
        assert case.error, f"{name}: unexpected error: {message}"
        assert "\n" not in message and "Traceback" not in message, message
        named = "corpus.yaml" if isinstance(exc, ConfigError) else case.path or Path(path).name
        for word in (named, *case.error):
            assert word in message, (word, message)
        return []
    assert not case.error, f"{name}: expected an error holding {case.error}"
    totals = result.totals
    reasons = {reason: int(n) for reason, n in totals.drop(["raw", "cleaned", "quarantined"]).items() if n}
    assert reasons == case.reasons
    assert outside == case.outside
    lines = data_lines(tmp_path, case)
    assert int(totals["cleaned"] + totals["quarantined"]) + outside == lines  # no line lost
    for frame in [*raw.values(), *result.quarantined.values(), *result.cleaned.values()]:
        storable(frame)
    return list(result.cleaned.values())


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30


def test_folded_lines_are_located_exactly(tmp_path: Path):
    """The reported range is the lines between the two stray quotes, as an editor numbers them."""
    path = write_case(CASES["stray_quotes_100_lines_apart"], tmp_path)
    lines = path.read_text().splitlines()
    with pytest.raises(SourceError, match="lines 4-103") as raised:
        open_source(parse_config(case_config(CASES["stray_quotes_100_lines_apart"], path))).row_counts()
    assert lines[3].startswith('u2,"i2') and lines[102].startswith('u101,i101"'), raised.value


def test_mixed_id_types_become_the_same_text_as_one_file_would_give(tmp_path: Path):
    case = CASES["parquet_user_id_int_and_text"]
    source = open_source(parse_config(case_config(case, write_case(case, tmp_path))))
    contract = source.to_contract(source.events_of_day(pd.Timestamp(DAY).date()))
    assert sorted(contract["user_id"]) == sorted(f"{i}" for i in range(5)) + [f"u{i}" for i in range(5, 10)]
    assert np.isin(["0", "u9"], contract["user_id"]).all()


# --- through the command line: exit 2 with one line, or exit 0 -----------------------------------------

CLI_CASES = {
    "jsonl_true_user_id": (2, "line 2"),
    "stray_quotes_100_lines_apart": (2, "lines 4-103"),
    "parquet_user_id_int_and_text": (0, None),
    "a_few_huge_values_among_many": (0, None),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", list(CLI_CASES))
def test_backfill_on_a_malformed_input(name: str, tmp_path: Path, monkeypatch, capsys):
    case = CASES[name]
    expected_code, words = CLI_CASES[name]
    path = write_case(case, tmp_path / "data")
    settings = tmp_path / "settings.yaml"
    raw = {**case_config(case, path), "storage": str(tmp_path / "warehouse")}
    settings.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    code = main(
        ["backfill", "--config", str(settings), "--start", DAY, "--end", DAY, "--no-train", "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == expected_code, err
    if expected_code == 2:
        assert len(err) == 1 and err[0].startswith("recpipeline: "), err
        assert path.name in err[0] and words in err[0], err[0]
    with DagsterInstance.get() as instance:  # an error in the data would repeat: no retry
        runs = instance.get_runs()
        assert runs and not any(
            instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY) for run in runs
        )


def test_only_transient_read_errors_are_retried():
    with pytest.raises(Failure) as failed, retry_only_transient():
        raise SourceError("a.csv: column 'user_id' not found")
    assert failed.value.allow_retries is False and "a.csv" in failed.value.description
    with pytest.raises(SourceUnavailable), retry_only_transient():
        raise SourceUnavailable("s3://bucket/a.csv: cannot read (connection reset)")
