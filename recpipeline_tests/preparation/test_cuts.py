"""Cut dates of a backtest and what one cut sees."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from recpipeline.config import BacktestConfig, SplitConfig
from recpipeline.preparation.cuts import cut_data, cut_range, cut_windows, select_cuts

SPLIT = SplitConfig(validation_days=2, test_days=3)
D = dt.date.fromisoformat


def test_a_cut_is_the_last_day_before_its_test_window():
    windows = cut_windows(D("2026-10-10"), SPLIT)
    assert windows == (D("2026-10-10"), D("2026-10-09"), D("2026-10-11"), D("2026-10-14"))


def test_the_first_cut_keeps_the_minimum_training_days_and_the_last_a_whole_test_window():
    first, last = cut_range(D("2026-10-01"), D("2026-10-31"), SPLIT, BacktestConfig(min_train_days=5))
    # training 10-01 .. 10-05 (five days), validation 10-06 .. 10-07, test from 10-08
    assert first == D("2026-10-07")
    assert (cut_windows(first, SPLIT).validation_start - D("2026-10-01")).days == 5
    assert last == D("2026-10-28") and cut_windows(last, SPLIT).end == D("2026-11-01")
    with pytest.raises(ValueError, match="min_train_days"):
        cut_range(D("2026-10-01"), D("2026-10-05"), SPLIT, BacktestConfig(min_train_days=5))


def test_select_cuts_takes_every_n_days_from_the_first_in_range():
    keys = [f"2026-10-{day:02d}" for day in range(1, 29)]
    assert select_cuts(keys, "2026-10-03", "2026-10-20", 7) == ["2026-10-03", "2026-10-10", "2026-10-17"]
    assert select_cuts(keys, "2026-11-01", "2026-11-05", 1) == []


def _interactions() -> pd.DataFrame:
    # user u and item u first appear on day u (append-only maps number them in that order)
    days = pd.date_range("2026-10-01", periods=12, freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "user_idx": np.arange(12, dtype=np.int32),
            "item_idx": np.arange(12, dtype=np.int32),
            "timestamp": days + pd.Timedelta(hours=12),
        }
    )


def test_a_cut_sees_the_interactions_and_id_maps_as_they_were_when_its_test_window_ended():
    ids = pd.DataFrame({"id": [f"x{i}" for i in range(12)], "idx": np.arange(12, dtype=np.int32)})
    data = cut_data(_interactions(), ids, ids, D("2026-10-05"), SPLIT)
    assert data.interactions["timestamp"].max() < pd.Timestamp("2026-10-09", tz="UTC")
    assert len(data.interactions) == 8  # 10-01 .. 10-08
    assert data.user_id_map["id"].tolist() == [f"x{i}" for i in range(8)]
    with pytest.raises(ValueError, match="no interactions in its test window"):
        cut_data(_interactions(), ids, ids, D("2026-10-20"), SPLIT)
