"""A corpus of bad inputs (issue #27): the malformed-file corpus of ``sources/test_malformed_inputs.py`` plus
the second round's cases, each read and cleaned as ingestion does (no Dagster run per case).

Every case ends in one clear line (``SourceError`` / ``ConfigError``) naming the file, key or column, or in
rows cleaned and quarantined with their reason, every data line accounted for (raw = cleaned + quarantined
+ outside the window: ``check_case``), ids exactly as written and timestamps as the standard reads them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recpipeline_tests.sources.test_malformed_inputs import (
    CASES as MALFORMED,
)
from recpipeline_tests.sources.test_malformed_inputs import (
    DAY,
    EPOCH_S,
    HEADER,
    Case,
    check_case,
    csv,
    jsonl,
    parquet_bytes,
    record,
    rows,
    shop,
    write_case,
)

BIG = 9007199254741015  # above 2**53: a float64 cannot hold it
LATIN = "u1,café,2026-06-02T10:00:00Z,view,1\n".encode("latin-1")


@dataclass(frozen=True)
class Input(Case):
    """A ``Case`` with what the second round checks besides: user ids that must come out exactly so, the
    first timestamp, and symbolic links to make (name -> target)."""

    users: tuple[str, ...] = ()
    first: str | None = None
    links: dict[str, str] = field(default_factory=dict)


def stamped(*stamps: object, users: object = None) -> pd.DataFrame:
    """A shop frame whose timestamp column holds ``stamps`` (and user ids ``users``)."""
    frame = shop(len(stamps)).assign(timestamp=list(stamps))
    return frame if users is None else frame.assign(user_id=list(users))


NEW: dict[str, Input] = {
    # --- ISO 8601 as the standard reads it
    "iso_nanoseconds_z": Input(
        {"a.csv": csv(f"u1,i1,{DAY}T10:00:00.123456789Z,view,1")}, first=f"{DAY}T10:00:00.123456Z"
    ),
    "iso_seven_digits_with_offset": Input(
        {"a.csv": csv(f"u1,i1,{DAY}T12:00:00.1234567+02:00,view,1")}, first=f"{DAY}T10:00:00.123456Z"
    ),
    "iso_basic_format_z": Input({"a.csv": csv("u1,i1,20260602T100000Z,view,1")}, first=f"{DAY}T10:00:00Z"),
    "iso_basic_format_offset": Input(
        {"a.csv": csv("u1,i1,20260602T120000+0200,view,1")}, first=f"{DAY}T10:00:00Z"
    ),
    "iso_basic_format_naive": Input({"a.csv": csv("u1,i1,20260602T100000,view,1")}, first=f"{DAY}T10:00:00Z"),
    "iso_mixed_precisions": Input(
        {"a.csv": csv(f"u1,i1,{DAY}T10:00:00Z,view,1", f"u2,i2,{DAY}T10:00:00.000000001Z,view,1")},
        first=f"{DAY}T10:00:00Z",
    ),
    "iso_nanoseconds_in_jsonl": Input(
        {"a.jsonl": jsonl(record(stamp=f'"{DAY}T10:00:00.987654321Z"'))}, first=f"{DAY}T10:00:00.987654Z"
    ),
    # --- compact dates and epoch units: chosen, never guessed into 1970
    "compact_dates_refused_with_candidates": Input(
        {"a.csv": csv("u1,i1,20260602,view,1", "u2,i2,20260602,view,1")},
        error=("'timestamp'", "1970-08-23", "timestamp_format '%Y%m%d': 2026-06-02"),
        settings={"start_date": None, "end_date": None},
    ),
    "compact_dates_with_a_format": Input(
        {"a.csv": csv("u1,i1,20260602,view,1")},
        settings={"timestamp_format": "%Y%m%d"},
        first=f"{DAY}T00:00Z",
    ),
    "compact_dates_with_a_format_and_a_bad_row": Input(
        {"a.csv": csv("u1,i1,20260602,view,1", "u2,i2,2026-06-02,view,1")},
        settings={"timestamp_format": "%Y%m%d"},
        reasons={"bad_timestamp": 1},
    ),
    "day_first_format": Input(
        {"a.csv": csv("u1,i1,02/06/2026 10:00,view,1")},
        settings={"timestamp_format": "%d/%m/%Y %H:%M"},
        first=f"{DAY}T10:00:00Z",
    ),
    "parquet_microseconds_refused_under_auto": Input(
        {"a.parquet": parquet_bytes(stamped(EPOCH_S * 10**6, EPOCH_S * 10**6))},
        error=("'timestamp'", "us: 2026-06-02", "timestamp_unit"),
    ),
    "parquet_nanoseconds_refused_under_auto": Input(
        {"a.parquet": parquet_bytes(stamped(EPOCH_S * 10**9, EPOCH_S * 10**9))}, error=("ns: 2026-06-02",)
    ),
    "parquet_microseconds_with_unit": Input(
        {"a.parquet": parquet_bytes(stamped(EPOCH_S * 10**6))},
        settings={"timestamp_unit": "us"},
        first=f"{DAY}T10:00:00Z",
    ),
    "parquet_nanoseconds_with_unit": Input(
        {"a.parquet": parquet_bytes(stamped(EPOCH_S * 10**9 + 7))},
        settings={"timestamp_unit": "ns"},
        first=f"{DAY}T10:00:00Z",
    ),
    "csv_milliseconds_with_unit": Input(
        {"a.csv": csv(f"u1,i1,{EPOCH_S * 1000},view,1")},
        settings={"timestamp_unit": "ms"},
        first=f"{DAY}T10:00Z",
    ),
    "small_epoch_numbers_refused": Input(
        {"a.csv": csv("u1,i1,86400,view,1", "u2,i2,90000,view,1")}, error=("1970-01-02", "timestamp_unit")
    ),
    # --- ids never change while reading
    "parquet_folder_int64_and_float64_ids": Input(
        {
            "d/a.parquet": parquet_bytes(shop(2, user=lambda i: BIG + i)),
            "d/b.parquet": parquet_bytes(shop(2, user=lambda i: float(i), start=2)),
        },
        path="d",
        users=(str(BIG), str(BIG + 1), "2", "3"),
    ),
    "parquet_float_ids_above_2_53": Input(
        {"a.parquet": parquet_bytes(shop(2, user=lambda i: float(BIG + i)))}, error=("'user_id'", "exact")
    ),
    "parquet_fractional_ids": Input(
        {"a.parquet": parquet_bytes(shop(2, user=lambda i: i + 0.5))}, error=("'user_id'", "row 0", "0.5")
    ),
    "parquet_float_item_ids_fractional": Input(
        {"a.parquet": parquet_bytes(shop(2).assign(item_id=[1.0, 2.25]))}, error=("'item_id'", "row 1")
    ),
    "parquet_float_ids_with_gaps": Input(
        {"a.parquet": parquet_bytes(shop(3, user=lambda i: [17850.0, np.nan, 3.0][i]))},
        reasons={"missing_user_id": 1},
        users=("17850", "3"),
    ),
    "parquet_large_int64_ids": Input(
        {"a.parquet": parquet_bytes(shop(2, user=lambda i: BIG + i))}, users=(str(BIG), str(BIG + 1))
    ),
    "csv_ids_with_leading_zeros_and_points": Input(
        {"a.csv": csv(*(f"{u},i{n},{DAY}T10:00:0{n}Z,view,1" for n, u in enumerate(["007", "1.0", "1e3"])))},
        users=("007", "1.0", "1e3"),
    ),
    "jsonl_ids_above_2_53": Input(
        {"a.jsonl": jsonl(record(user=str(BIG)), record(user=str(BIG + 1), item='"i2"'))},
        users=(str(BIG), str(BIG + 1)),
    ),
    # --- values
    "parquet_boolean_values": Input(
        {"a.parquet": parquet_bytes(shop(3).assign(value=[True, False, True]))}, reasons={"bad_value": 3}
    ),
    "jsonl_boolean_values": Input(
        {"a.jsonl": jsonl(record(value="true"), record(item='"i2"', value="false"), record(item='"i3"'))},
        reasons={"bad_value": 2},
    ),
    "csv_boolean_text_values": Input(
        {"a.csv": csv(*rows(2), *rows(1, 5, value="true"))}, reasons={"bad_value": 1}
    ),
    # --- files
    "dangling_symlink_in_a_folder": Input(
        {"d/a.csv": csv(*rows(2))},
        path="d",
        links={"d/b.csv": "gone.csv"},
        error=("b.csv", "link", "gone.csv"),
    ),
    "jsonl_with_a_byte_order_mark": Input({"a.jsonl": "\ufeff" + jsonl(record(), record(item='"i2"'))}),
    "latin1_line_named": Input(
        {"a.csv": (HEADER + "\n").encode() + LATIN}, error=("line 2", "byte", "encoding", "latin-1")
    ),
    "latin1_deep_in_a_large_file": Input(
        {"a.csv": csv(*rows(3000)).encode() + LATIN},
        error=("line 3002", "encoding"),
    ),
    "latin1_jsonl": Input(
        {"a.jsonl": jsonl(record(), record(item='"caf\u00e9"')).encode("latin-1")},
        error=("line 2", "encoding"),
    ),
    "start_date_a_century_before_the_data": Input(
        {"a.csv": csv(*rows(2))},
        settings={"start_date": "1900-01-01", "end_date": None},
        error=("start_date",),
    ),
    # --- reader options that would drop lines uncounted
    "on_bad_lines_skip": Input(
        {"a.csv": csv(*rows(2))}, settings={"options": {"on_bad_lines": "skip"}}, error=("on_bad_lines",)
    ),
    "nrows": Input({"a.csv": csv(*rows(5))}, settings={"options": {"nrows": 2}}, error=("nrows",)),
    "skiprows": Input({"a.csv": csv(*rows(5))}, settings={"options": {"skiprows": [1]}}, error=("skiprows",)),
    "comment_character": Input(
        {"a.csv": csv(*rows(5))}, settings={"options": {"comment": "#"}}, error=("comment",)
    ),
}

CASES: dict[str, Case] = {**MALFORMED, **NEW}


def _write(case: Case, folder: Path) -> Path:
    path = write_case(case, folder)
    for name, target in getattr(case, "links", {}).items():
        os.symlink(folder / target, folder / name)
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_ends_in_one_clear_line_or_is_accounted_for(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    cleaned = check_case(name, case, tmp_path, _write(case, tmp_path))
    if not isinstance(case, Input) or case.error:
        return
    events = pd.concat(cleaned, ignore_index=True)
    if case.users:  # ids exactly as written
        assert sorted(events["user_id"].astype(str)) == sorted(case.users)
    if case.first:  # timestamps as the standard reads them
        assert pd.to_datetime(events["timestamp"], utc=True).min() == pd.Timestamp(case.first)


def test_the_input_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60 and len(NEW) >= 30
