import numpy as np
import pandas as pd
import pytest

from recpipeline.preparation.filtering import NOTHING_REMOVED, KCoreCounts, k_core


def pairs(*rows: tuple[int, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_idx", "item_idx"])


def test_k_core_iterates_until_every_user_and_item_has_enough():
    # users 0 and 1 rate items 0 and 1; user 2 rates item 0 and item 2, which nobody else rates.
    # pass 1 drops item 2 (one user); then user 2 has one item left and goes in pass 2; pass 3 is stable
    frame = pairs((0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 2))
    kept, counts = k_core(frame, 2, 2)
    assert kept.tolist() == [True, True, True, True, False, False]
    assert counts == KCoreCounts(removed_rows=2, removed_users=1, removed_items=1, iterations=2)


def test_k_core_counts_distinct_partners_and_drops_every_repeat():
    # user 1 viewed item 0 three times: one distinct item, below 2; all three rows go, counted as rows
    frame = pairs((0, 0), (0, 1), (1, 0), (1, 0), (1, 0))
    kept, counts = k_core(frame, 2, 1)
    assert kept.tolist() == [True, True, False, False, False]
    assert counts == KCoreCounts(removed_rows=3, removed_users=1, removed_items=0, iterations=1)


def test_minimums_of_one_keep_every_row():
    frame = pairs((0, 0), (1, 1))
    kept, counts = k_core(frame, 1, 1)
    assert kept.all() and counts == NOTHING_REMOVED
    assert k_core(frame.iloc[:0], 3, 3)[0].shape == (0,)


def test_a_core_left_empty_is_an_error_naming_the_settings():
    with pytest.raises(ValueError, match="preparation.min_user_interactions"):
        k_core(pairs((0, 0), (0, 1), (1, 1)), 3, 1)


def test_the_result_is_a_k_core_whatever_the_order():
    rng = np.random.default_rng(3)
    frame = pairs(*zip(rng.integers(0, 60, 800), np.minimum(rng.geometric(0.05, 800), 90), strict=True))
    kept, counts = k_core(frame, 5, 4)
    core = frame[kept].drop_duplicates()
    assert core.groupby("user_idx").size().min() >= 5 and core.groupby("item_idx").size().min() >= 4
    assert counts.removed_rows == (~kept).sum() > 0 and counts.iterations >= 1
    shuffled = frame.sample(frac=1, random_state=0)
    again, _ = k_core(shuffled, 5, 4)
    assert shuffled[again].sort_index().equals(frame[kept])
