import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recpipeline.encoding import encode_interactions, extend_id_map, interaction_matrix, stored_entries
from recpipeline.splitting import temporal_split, unseen_relevant, users_with_unseen

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


def test_unseen_relevant_drops_items_seen_before():
    history = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [1, 2, 1]})
    target = pd.DataFrame({"user_idx": [0, 0, 0, 1, 1], "item_idx": [1, 3, 3, 2, 1]})
    out = unseen_relevant(target, history)
    assert sorted(map(tuple, out.to_numpy())) == [(0, 3), (1, 2)]


@pytest.mark.parametrize("user_scale", [1, 10**9])  # a table over the pair keys; a hash lookup
def test_unseen_relevant_keeps_the_first_occurrence_order(user_scale: int) -> None:
    rng = np.random.default_rng(user_scale)
    history = pd.DataFrame(
        {"user_idx": rng.integers(0, 30, 400) * user_scale, "item_idx": rng.integers(0, 20, 400)}
    )
    target = pd.DataFrame(
        {"user_idx": rng.integers(0, 30, 300) * user_scale, "item_idx": rng.integers(0, 25, 300)}
    )
    seen = set(zip(history["user_idx"], history["item_idx"], strict=True))
    pairs = target.drop_duplicates()
    unseen = [pair not in seen for pair in zip(pairs["user_idx"], pairs["item_idx"], strict=True)]
    pd.testing.assert_frame_equal(unseen_relevant(target, history), pairs[unseen].reset_index(drop=True))


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


def test_users_with_unseen_are_the_users_unseen_relevant_keeps():
    rng = np.random.default_rng(8)
    history = pd.DataFrame({"user_idx": rng.integers(0, 50, 800), "item_idx": rng.integers(0, 40, 800)})
    target = pd.DataFrame({"user_idx": rng.integers(0, 60, 300), "item_idx": rng.integers(0, 40, 300)})
    matrix = interaction_matrix(history.assign(weight=1.0), 60, 40)
    expected = np.unique(unseen_relevant(target, history)["user_idx"])
    np.testing.assert_array_equal(users_with_unseen(target, matrix), expected)
