import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recpipeline.preparation.encoding import (
    encode_days,
    encode_interactions,
    extend_id_map,
    interaction_matrix,
    stored_entries,
)

WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0, "rating": 1.0}


def events(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp", "value"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def test_id_maps_keep_old_indices_when_new_ids_arrive():
    first = extend_id_map(None, pd.Series(["b", "a", "b"]))
    assert list(first["id"]) == ["b", "a"] and list(first["idx"]) == [0, 1]
    second = extend_id_map(first, pd.Series(["c", "a", "d"]))
    assert dict(zip(second["id"], second["idx"], strict=True)) == {"b": 0, "a": 1, "c": 2, "d": 3}
    assert second["idx"].dtype == np.int32


def test_encoding_weights_and_dtypes():
    ev = events(
        [
            ["u1", "i1", "view", "2026-10-01T10:00Z", 1.0],
            ["u1", "i2", "purchase", "2026-10-01T11:00Z", 2.0],
            ["u2", "i1", "rating", "2026-10-01T12:00Z", 4.0],
        ]
    )
    users = extend_id_map(None, ev["user_id"])
    items = extend_id_map(None, ev["item_id"])
    out = encode_interactions(ev, users, items, WEIGHTS)
    assert out["user_idx"].dtype == np.int32 and out["item_idx"].dtype == np.int32
    assert out["weight"].dtype == np.float32
    assert out["weight"].tolist() == [1.0, 5.0, 4.0]  # purchase weight; rating = weight x rating value
    matrix = interaction_matrix(pd.concat([out, out]), 2, 2)
    assert matrix[0, 1] == 10.0 and matrix.shape == (2, 2)


def test_encoding_an_unmapped_id_is_an_error():
    ev = events([["u1", "i1", "view", "2026-10-01T10:00Z", 1.0]])
    with pytest.raises(ValueError, match="item_id 'i1' is not in the id map"):
        encode_interactions(
            ev, extend_id_map(None, ev["user_id"]), extend_id_map(None, pd.Series(["x"])), WEIGHTS
        )


def test_stored_entries_finds_exactly_the_stored_pairs():
    """Binary search over canonical CSR keys: stored zeros count, duplicates and unsorted input are fine."""
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, 40, 600), rng.integers(0, 30, 600)
    weights = rng.choice([0.0, 1.0, 2.5], 600).astype(np.float32)
    # built from raw arrays: unsorted column indices and repeated pairs (not canonical); row 40 is empty
    by_row = np.argsort(rows, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=41))])
    matrix = sp.csr_matrix((weights[by_row], cols[by_row], indptr), shape=(41, 30))
    assert not matrix.has_canonical_format
    query_rows, query_cols = rng.integers(0, 41, 2000), rng.integers(0, 30, 2000)
    expected = pd.MultiIndex.from_arrays([query_rows, query_cols]).isin(
        pd.MultiIndex.from_arrays([rows, cols])
    )
    np.testing.assert_array_equal(stored_entries(matrix, query_rows, query_cols), expected)
    empty = sp.csr_matrix((3, 4), dtype=np.float32)
    assert not stored_entries(empty, np.array([0, 2]), np.array([1, 3])).any()


def test_encoding_days_extends_the_previous_maps_with_every_known_id():
    day1 = events([["u1", "i1", "view", "2026-10-01T10:00Z", 1.0]])
    day2 = events([["u2", "i2", "cart", "2026-10-02T10:00Z", 1.0]])
    split_file = events([["u3", "i1", "rating", "2026-09-01T10:00Z", 5.0]])
    previous_users = extend_id_map(None, pd.Series(["u0"]))
    interactions, users, items = encode_days(
        {"2026-10-02": day2, "2026-10-01": day1}, previous_users, None, WEIGHTS, also_known=[split_file]
    )
    assert list(users["id"]) == ["u0", "u1", "u2", "u3"] and list(items["id"]) == ["i1", "i2"]
    # days in day order, whatever the order of the mapping; the split file's events are only mapped
    assert interactions["user_idx"].tolist() == [1, 2] and interactions["weight"].tolist() == [1.0, 3.0]
