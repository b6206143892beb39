import datetime as dt

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipeline.cleaning import REASONS, clean_events, reason_counts
from recpipeline.sources import with_lineage

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
