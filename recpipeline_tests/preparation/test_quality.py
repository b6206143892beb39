import pandas as pd

from recpipeline.preparation.quality import (
    empty_days,
    null_counts,
    quarantine_breaches,
    quarantine_shares,
    rows_outside_their_day,
)


def day(*stamps: str, user_ids: list | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {"timestamp": pd.to_datetime(list(stamps), utc=True), "user_id": user_ids or ["u"] * len(stamps)}
    )


def test_day_measures():
    cleaned = {
        "2026-10-02": day("2026-10-02T00:00", "2026-10-03T00:00", user_ids=[None, "u"]),
        "2026-10-01": day(),
        "2026-10-03": day("2026-10-02T23:59", "2026-10-03T12:00"),
    }
    assert empty_days(cleaned) == ["2026-10-01"]
    assert null_counts(cleaned, ["user_id", "timestamp"]) == {"user_id": 1, "timestamp": 0}
    # the end of a day belongs to the next one
    assert rows_outside_their_day(cleaned) == {"2026-10-02": 1, "2026-10-01": 0, "2026-10-03": 1}


def test_quarantine_shares_put_the_worst_day_first_and_survive_empty_days():
    counts = pd.DataFrame({"partition": ["a", "b", "c"], "raw": [10, 0, 4], "quarantined": [1, 0, 2]})
    shares = quarantine_shares(counts)
    assert shares["partition"].tolist() == ["c", "a", "b"]
    assert shares["share"].tolist() == [0.5, 0.1, 0.0]


def test_quarantine_breaches_name_each_day_over_the_ceiling_with_its_top_reasons():
    counts = pd.DataFrame(
        {
            "partition": ["a", "b", "c", "d"],
            "raw": [10, 100, 4, 0],
            "cleaned": [9, 70, 1, 0],
            "quarantined": [1, 30, 3, 0],
            "missing_user_id": [1, 5, 0, 0],
            "bad_timestamp": [0, 20, 3, 0],
            "duplicate": [0, 4, 0, 0],
            "bad_value": [0, 1, 0, 0],
        }
    )
    # a share equal to the ceiling passes; reasons by rows, at most three, none with zero rows
    assert quarantine_breaches(counts, 0.1) == [
        "c: 75.0% quarantined (3 of 4 rows; bad_timestamp 3)",
        "b: 30.0% quarantined (30 of 100 rows; bad_timestamp 20, missing_user_id 5, duplicate 4)",
    ]
    assert quarantine_breaches(counts, 0.75) == []
