"""Sessions in preparation: session ids or inactivity gaps -> session_idx, anonymous visitors, the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recpipeline.contracts import ANONYMOUS_USER_PREFIX
from recpipeline.preparation.encoding import session_codes
from recpipeline.preparation.splitting import Splits, session_split, sessions_out_of_order
from recpipeline.sources.mapping import EventMapping, apply_mapping


def stamps(*texts: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(texts), utc=True))


def test_session_ids_win_and_the_rest_is_cut_by_the_gap_in_time_order() -> None:
    times = stamps(
        "2026-01-01 10:00", "2026-01-01 10:10", "2026-01-01 11:00", "2026-01-01 09:00", "2026-01-01 09:05"
    )
    ids = pd.Series(["a", None, None, "a", "b"], dtype="string")
    # a (09:00 first), b (09:05), user 0's 10:10 alone, then 11:00 after a 50-minute pause
    assert session_codes(np.array([0, 0, 0, 1, 1]), times, ids, 30).tolist() == [0, 2, 3, 0, 1]
    # without ids: user 1's two events are one session (first), user 0 pauses 50 minutes once
    assert session_codes(np.array([0, 0, 0, 1, 1]), times, None, 30).tolist() == [1, 1, 2, 0, 0]
    assert session_codes(np.array([0, 0, 0, 1, 1]), times, None, 60).tolist() == [1, 1, 1, 0, 0]


def test_time_offset_orders_views_and_missing_users_become_one_visitor_per_session() -> None:
    raw = pd.DataFrame(
        {
            "sid": ["1", "1", "2"],
            "uid": [None, None, "42"],
            "item": ["x", "y", "z"],
            "day": ["2016-05-09", "2016-05-09", "2016-05-10"],
            "ms": ["526309", "1031018", "0"],
        }
    )
    mapping = EventMapping(
        columns={
            "user_id": "uid",
            "item_id": "item",
            "timestamp": "day",
            "session_id": "sid",
            "anonymous_id": "sid",
            "time_offset": "ms",
        },
        event_type_default="view",
    )
    contract = apply_mapping(raw, mapping)
    assert contract["user_id"].tolist() == [ANONYMOUS_USER_PREFIX + "1", ANONYMOUS_USER_PREFIX + "1", "42"]
    expected = pd.Timestamp("2016-05-09", tz="UTC") + pd.Timedelta(milliseconds=526309)
    assert contract["timestamp"].iloc[0] == expected
    assert contract["timestamp"].iloc[1] - contract["timestamp"].iloc[0] == pd.Timedelta(milliseconds=504709)


def test_session_split_keeps_sessions_whole_by_their_start() -> None:
    # session 0 starts in train and runs past midnight into the validation window; 1 validation; 2, 3 test
    frame = pd.DataFrame(
        {
            "user_idx": [0, 0, 1, 2, 3],
            "item_idx": [0, 1, 2, 3, 4],
            "timestamp": stamps(
                "2026-01-05 23:50",
                "2026-01-06 00:10",
                "2026-01-06 12:00",
                "2026-01-07 01:00",
                "2026-01-07 02:00",
            ),
            "session_idx": [0, 0, 1, 2, 3],
        }
    )
    splits = session_split(frame, pd.Timestamp("2026-01-08", tz="UTC"), validation_days=1, test_days=1)
    assert [s["session_idx"].tolist() for s in splits] == [[0, 0], [1], [2, 3]]
    assert sessions_out_of_order(splits) == {"sessions_in_two_splits": 0, "sessions_out_of_order": 0}
    broken = Splits(splits.train, pd.concat([splits.validation, splits.train.iloc[1:]]), splits.test)
    assert sessions_out_of_order(broken)["sessions_in_two_splits"] == 1
    with pytest.raises(ValueError, match="no training data"):
        session_split(frame, pd.Timestamp("2026-01-08", tz="UTC"), validation_days=1, test_days=3)
