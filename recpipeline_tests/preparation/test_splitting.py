import numpy as np
import pandas as pd
import pytest

from recpipeline.preparation.splitting import (
    Splits,
    events_in_test_and_earlier,
    in_time_order,
    split_for_run,
    temporal_split,
)

WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0, "rating": 1.0}
MAPS = (
    pd.DataFrame({"id": ["u1", "u2"], "idx": np.array([0, 1], dtype=np.int32)}),
    pd.DataFrame({"id": ["i1", "i2"], "idx": np.array([0, 1], dtype=np.int32)}),
)


def interactions(*rows: tuple[int, int, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx", "timestamp"])
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True))


def cleaned(*rows: tuple[str, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True), event_type="view", value=1.0)


def test_temporal_split_has_no_leakage():
    rng = np.random.default_rng(0)
    stamps = pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 20 * 86400, 500), unit="s")
    inter = pd.DataFrame(
        {"user_idx": rng.integers(0, 20, 500), "item_idx": rng.integers(0, 30, 500), "timestamp": stamps}
    )
    train, validation, test = temporal_split(inter, pd.Timestamp("2026-10-21", tz="UTC"), 4, 3)
    assert len(train) + len(validation) + len(test) == len(inter)
    assert train["timestamp"].max() < pd.Timestamp("2026-10-14", tz="UTC") <= validation["timestamp"].min()
    assert validation["timestamp"].max() < pd.Timestamp("2026-10-18", tz="UTC") <= test["timestamp"].min()
    with pytest.raises(ValueError, match="leaves no training data"):
        temporal_split(inter, pd.Timestamp("2026-10-21", tz="UTC"), 15, 10)


def test_a_run_without_split_files_splits_by_time_up_to_its_as_of():
    events = interactions((0, 0, "2026-10-01T08:00"), (0, 1, "2026-10-05T08:00"), (1, 1, "2026-10-06T23:00"))
    run = split_for_run(events, *MAPS, WEIGHTS, validation_days=1, test_days=1)
    assert run.as_of == pd.Timestamp("2026-10-07", tz="UTC") and run.file_rows == {}
    assert [len(frame) for frame in run.splits] == [1, 1, 1]


def test_a_run_with_split_files_encodes_them_and_accounts_for_every_row():
    quarantine = pd.DataFrame({"reason": ["missing_item_id", "missing_item_id", "timestamp_in_future"]})
    files = {
        "train": (cleaned(("u1", "i1", "2026-09-01"), ("u2", "i2", "2026-09-02")), quarantine),
        "test": (cleaned(("u1", "i2", "2026-09-03")), quarantine.iloc[:0]),
    }
    events = interactions((0, 0, "2026-10-01T08:00"))
    run = split_for_run(events, *MAPS, WEIGHTS, validation_days=1, test_days=1, split_files=files)
    assert run.as_of == pd.Timestamp("2026-10-02", tz="UTC")  # from the daily interactions
    assert run.splits.test[["user_idx", "item_idx"]].values.tolist() == [[0, 1]]
    assert len(run.splits.train) + len(run.splits.validation) == 2
    assert run.file_rows["train"].rows == 5 and run.file_rows["test"].rows == 1
    assert run.file_rows["train"].quarantined == {"missing_item_id": 2, "timestamp_in_future": 1}
    assert run.file_rows["test"].quarantined == {}


def test_splits_in_time_order_need_a_test_and_no_step_back():
    train = interactions((0, 0, "2026-10-01"))
    validation = interactions((0, 1, "2026-10-02"))
    test = interactions((1, 1, "2026-10-03"))
    assert in_time_order(Splits(train, validation, test))
    assert in_time_order(Splits(train, validation.iloc[:0], test))  # an empty window is skipped
    assert not in_time_order(Splits(train, validation, test.iloc[:0]))
    assert not in_time_order(Splits(test, validation, train))


def test_events_in_test_and_earlier_counts_distinct_shared_events():
    train = interactions((0, 0, "2026-10-01"), (0, 1, "2026-10-02"))
    validation = interactions((1, 1, "2026-10-02"))
    test = interactions(
        (0, 1, "2026-10-02"), (0, 1, "2026-10-02"), (1, 1, "2026-10-02"), (1, 0, "2026-10-02")
    )
    assert events_in_test_and_earlier(Splits(train, validation, test)) == 2
    assert events_in_test_and_earlier(Splits(train, validation, test.iloc[3:])) == 0
