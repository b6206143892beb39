import datetime as dt
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipeline.config import EVENT_TYPES, parse_config
from recpipeline.preparation.cleaning import REASONS, clean_and_account, clean_events, reason_counts
from recpipeline.sources import open_source, with_lineage
from recpipeline_tests.conftest import SHOP_EVENT_TYPES, shop_source

DAY = dt.date(2026, 10, 5)
NOW = pd.Timestamp("2026-10-05T20:00:00Z")


def raw_frame(rows):
    frame = pd.DataFrame(
        rows, columns=["user_id", "item_id", "event_type", "timestamp", "value", "session_id"]
    )
    return with_lineage(frame, "crafted.csv")


def test_each_dirty_row_gets_its_reason_and_every_row_is_accounted_for():
    good = ["U1", "I1", "view", "2026-10-05T10:00:00Z", 1.0, "s1"]
    raw = raw_frame(
        [
            good,
            ["U2", "I2", "purchase", "2026-10-05T11:00:00+02:00", 2.0, "s2"],
            [None, "I1", "view", "2026-10-05T10:00:00Z", 1.0, "s1"],
            ["  ", "I1", "view", "2026-10-05T10:00:00Z", 1.0, "s1"],
            ["U1", "", "view", "2026-10-05T10:00:00Z", 1.0, "s1"],
            ["U1", "I1", "view", "not-a-time", 1.0, "s1"],
            ["U1", "I1", "view", "2026-10-04T23:59:59Z", 1.0, "s1"],
            ["U1", "I1", "view", "2026-10-05T21:00:00Z", 1.0, "s1"],
            ["U1", "I1", "click??", "2026-10-05T10:00:00Z", 1.0, "s1"],
            ["U1", "I1", "cart", "2026-10-05T10:00:00Z", "lots", "s1"],
            ["U1", "I1", "cart", "2026-10-05T10:00:00Z", float("inf"), "s1"],
            good,
        ]
    )
    cleaned, quarantine = clean_events(raw, DAY, now=NOW)
    assert len(raw) == len(cleaned) + len(quarantine)
    assert list(quarantine["reason"]) == [
        "missing_user_id",
        "missing_user_id",
        "missing_item_id",
        "bad_timestamp",
        "timestamp_outside_partition",
        "timestamp_in_future",
        "unknown_event_type",
        "bad_value",
        "bad_value",
        "duplicate",
    ]
    assert list(quarantine["_row"]) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert list(cleaned["user_id"]) == ["U2", "U1"]  # sorted by time: 09:00 UTC before 10:00 UTC
    assert str(cleaned["timestamp"].dtype) == "datetime64[us, UTC]"
    assert cleaned["timestamp"].iloc[0] == pd.Timestamp("2026-10-05T09:00:00Z")
    assert list(cleaned["event_type"].cat.categories) == ["view", "cart", "purchase", "rating"]
    assert reason_counts(quarantine)["bad_value"] == 2


def test_odd_but_valid_ids_survive_intact():
    ids = ["ユーザー", 'a,b;"c"', "123456789012345678901234567890", "  padded  "]
    raw = raw_frame([[u, u, "view", "2026-10-05T10:00:00Z", 1.0, None] for u in ids])
    cleaned, quarantine = clean_events(raw, DAY, now=NOW)
    assert quarantine.empty
    assert sorted(cleaned["user_id"]) == sorted(ids)
    assert sorted(cleaned["item_id"]) == sorted(ids)


cell = st.one_of(st.none(), st.text(max_size=4), st.sampled_from(["U1", "I1", "view", "purchase", "cart"]))
stamp = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.datetimes(min_value=dt.datetime(2026, 10, 4), max_value=dt.datetime(2026, 10, 6)).map(
        lambda d: d.isoformat() + "Z"
    ),
)
value = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3))
row = st.tuples(
    cell, cell, st.one_of(cell, st.sampled_from(["view", "cart", "purchase"])), stamp, value, cell
)


@settings(max_examples=150, deadline=None)
@given(st.lists(row, max_size=30))
def test_malformed_rows_are_all_accounted_for(rows):
    rows = rows + rows[:3]  # force some exact duplicates
    raw = raw_frame([list(r) for r in rows])
    cleaned, quarantine = clean_events(raw, DAY, now=NOW)
    assert len(cleaned) + len(quarantine) == len(raw)
    assert set(quarantine["reason"]) <= set(REASONS)
    assert sorted([*cleaned["_row"], *quarantine["_row"]]) == list(range(len(raw)))
    assert not cleaned[["user_id", "item_id", "event_type", "timestamp", "value"]].isna().any().any()
    if len(cleaned):
        assert cleaned["timestamp"].min() >= pd.Timestamp(DAY, tz="UTC")
        assert cleaned["timestamp"].max() <= NOW
    kept_raw = raw.set_index("_row").loc[cleaned["_row"]].drop(columns="_source_file")
    assert not kept_raw.astype(str).duplicated().any()


# --- the file path: a CSV written with a column mapping, read, mapped and cleaned as the pipeline does ---

FILE_DAY = dt.date(2026, 6, 10)  # no daylight-saving change near it in any of ZONES
FILE_NOW = pd.Timestamp("2026-06-10T18:00:00Z")
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata")
id_text = st.one_of(
    st.none(),
    st.sampled_from(["u1", "u2", "NA", "0017"]),
    st.text(st.characters(categories=("L", "N", "P", "S")) | st.just(" "), max_size=5),
)
instant = st.datetimes(min_value=dt.datetime(2026, 6, 9, 12), max_value=dt.datetime(2026, 6, 11, 12)).map(
    lambda d: d.replace(microsecond=0, tzinfo=dt.UTC)
)
file_row = st.tuples(
    id_text,
    id_text,
    instant,
    st.sampled_from(["epoch_s", "epoch_ms", "iso_z", "iso_offset", "iso_local", "garbage"]),
    st.sampled_from(["ansicht", " kauf ", "korb", "view", "Kauf", "click"]),
    st.sampled_from(["1", "-2", "1.5", "", "x", "inf", "nan"]),
)


def render_time(moment: dt.datetime, form: str, zone: str) -> str:
    return {
        "epoch_s": str(int(moment.timestamp())),
        "epoch_ms": str(int(moment.timestamp()) * 1000),
        "iso_z": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "iso_offset": moment.astimezone(ZoneInfo("Asia/Tokyo")).isoformat(),
        "iso_local": moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S"),
        "garbage": "soon",
    }[form]


def expected_reason(user, item, moment, form, kind, qty) -> str | None:
    """The first reason that applies, worked out row by row (the oracle the vectorised code must match)."""
    mapped = SHOP_EVENT_TYPES.get(kind.strip(), kind.strip()).lower()
    try:
        bad_value = not 0 <= float(qty) <= 1e6  # the default cleaning.value_range; NaN compares false
    except ValueError:
        bad_value = True
    checks = [
        ("missing_user_id", user is None or not user.strip()),
        ("missing_item_id", item is None or not item.strip()),
        ("bad_timestamp", form == "garbage"),
        ("timestamp_in_future", form != "garbage" and moment > FILE_NOW),
        ("unknown_event_type", mapped not in EVENT_TYPES),
        ("bad_value", bad_value),
    ]
    return next((name for name, applies in checks if applies), None)


@settings(max_examples=60, deadline=None)
@given(st.lists(file_row, min_size=1, max_size=25), st.sampled_from(ZONES))
def test_mapped_file_rows_are_accounted_for_with_the_right_reason(rows, zone):
    rows = rows + rows[:2]  # force some exact duplicates
    table = pd.DataFrame(
        [[u, i, render_time(m, f, zone), k, q] for u, i, m, f, k, q in rows],
        columns=["Kunde", "Artikel", "Zeit", "Aktion", "Menge"],
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shop.csv"
        table.to_csv(path, sep=";", index=False)
        day = FILE_DAY.isoformat()
        settings = shop_source(path, timezone=zone, start_date=day, end_date=day)
        source = open_source(parse_config({"source": settings}))
        raw = source.events_of_day(FILE_DAY)
        counts = source.row_counts()
    cleaned, quarantine = clean_events(source.to_contract(raw), FILE_DAY, now=FILE_NOW, raw=raw)

    # rows of other days belong to no partition; unparseable times go to the (only, first) partition
    in_day = [n for n, r in enumerate(rows) if r[3] == "garbage" or r[2].date() == FILE_DAY]
    assert counts == {"source_rows": len(rows), "outside_window_rows": len(rows) - len(in_day)}
    assert sorted(raw["_row"]) == in_day
    assert len(raw) == len(cleaned) + len(quarantine)
    expected, seen = {}, set()
    for n in in_day:
        user, item, moment, form, kind, qty = rows[n]
        content = tuple(table.iloc[n].fillna("").astype(str))
        expected[n] = expected_reason(*rows[n]) or ("duplicate" if content in seen else None)
        seen.add(content)
    got = dict(zip(quarantine["_row"], quarantine["reason"], strict=True))
    assert {n: got.get(n) for n in in_day} == expected
    for n, user_id, item_id, timestamp in cleaned[["_row", "user_id", "item_id", "timestamp"]].values:
        user, item, moment, *_ = rows[n]
        assert (user_id, item_id) == (user, item)  # odd ids intact through CSV
        assert timestamp == pd.Timestamp(moment)  # every format and zone lands on the same instant


def test_clean_and_account_counts_every_raw_row_per_partition():
    source = open_source(
        parse_config({"source": {"kind": "synthetic", "synthetic": {"sessions_per_day": 40}}})
    )
    first = source.days()[0]
    days = [first, first + dt.timedelta(days=1)]
    raw = {day.isoformat(): source.events_of_day(day) for day in days}
    result = clean_and_account(raw, source.to_contract)
    table = result.accounting
    assert list(table["partition"]) == list(raw)
    assert (table["raw"] == table["cleaned"] + table["quarantined"]).all()
    assert (table[list(REASONS)].sum(axis=1) == table["quarantined"]).all()
    assert int(result.totals["raw"]) == sum(len(frame) for frame in raw.values())
    for key, frame in raw.items():
        assert len(result.cleaned[key]) + len(result.quarantined[key]) == len(frame)


def test_values_outside_the_range_are_bad_values_bounds_included():
    values = [0.0, 1e6, -5.0, 1e38, -1e300, float("nan"), 1e6 + 1]
    raw = raw_frame(
        [[f"U{n}", "I1", "rating", "2026-10-05T10:00:00Z", v, None] for n, v in enumerate(values)]
    )
    cleaned, quarantine = clean_events(raw, DAY, now=NOW)
    assert list(cleaned["value"]) == [0.0, 1e6]
    assert list(quarantine["_row"]) == [2, 3, 4, 5, 6] and set(quarantine["reason"]) == {"bad_value"}
    cleaned, quarantine = clean_events(raw, DAY, now=NOW, value_range=(-10.0, 10.0))
    assert list(cleaned["value"]) == [0.0, -5.0] and list(quarantine["_row"]) == [1, 3, 4, 5, 6]
