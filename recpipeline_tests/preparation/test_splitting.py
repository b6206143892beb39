from typing import get_args

import numpy as np
import pandas as pd
import pytest

from recpipeline.config import ConfigError, PreparationConfig, SplitConfig, SplitKindName, parse_config
from recpipeline.preparation.filtering import KCoreCounts
from recpipeline.preparation.splitting import (
    RANDOM_TEST_THRESHOLD,
    SPLIT_KINDS,
    RunSplits,
    Splits,
    ValidationRule,
    earlier_test_share,
    events_in_test_and_earlier,
    events_in_two_splits,
    in_time_order,
    leave_last_out_split,
    random_split,
    split_for_run,
    stratified_split,
    temporal_split,
    users_out_of_time_order,
    validation_rule,
)

WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0, "rating": 1.0}
MAPS = (
    pd.DataFrame({"id": ["u1", "u2"], "idx": np.array([0, 1], dtype=np.int32)}),
    pd.DataFrame({"id": ["i1", "i2"], "idx": np.array([0, 1], dtype=np.int32)}),
)


def interactions(*rows: tuple[int, int, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx", "timestamp"])
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True))


def random_log(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A log of ``n`` events over 20 days, 50 users and 80 items, with event types (for the row identity)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-10-01", tz="UTC")
    return pd.DataFrame(
        {
            "user_idx": rng.integers(0, 50, n),
            "item_idx": rng.integers(0, 80, n),
            "timestamp": start + pd.to_timedelta(rng.integers(0, 20 * 86400, n), unit="s"),
            "event_type": rng.choice(["view", "cart", "purchase"], n),
        }
    )


def same_rows(splits: Splits, frame: pd.DataFrame) -> bool:
    """The splits' rows together are exactly ``frame``'s (as a multiset)."""
    columns = list(frame.columns)
    union = pd.concat(splits).sort_values(columns).reset_index(drop=True)
    return union.equals(frame.sort_values(columns).reset_index(drop=True))


def per_user_counts(splits: Splits, column: str = "user_idx") -> pd.DataFrame:
    return pd.DataFrame(
        {name: frame[column].value_counts() for name, frame in splits._asdict().items()}
    ).fillna(0)


def run_split(events: pd.DataFrame, preparation: PreparationConfig | None = None, **split) -> RunSplits:
    split_config = SplitConfig(**split)
    return split_for_run(
        events, *MAPS, WEIGHTS, split_config, seed=42, preparation=preparation or PreparationConfig()
    )


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
    run = run_split(events, validation_days=1, test_days=1)
    assert run.as_of == pd.Timestamp("2026-10-07", tz="UTC") and run.file_rows == {}
    assert [len(frame) for frame in run.splits] == [1, 1, 1]


def test_a_run_with_split_files_encodes_them_and_accounts_for_every_row():
    quarantine = pd.DataFrame({"reason": ["missing_item_id", "missing_item_id", "timestamp_in_future"]})
    files = {
        "train": (cleaned(("u1", "i1", "2026-09-01"), ("u2", "i2", "2026-09-02")), quarantine),
        "test": (cleaned(("u1", "i2", "2026-09-03")), quarantine.iloc[:0]),
    }
    events = interactions((0, 0, "2026-10-01T08:00"))
    split = SplitConfig(kind="predefined")
    run = split_for_run(
        events, *MAPS, WEIGHTS, split, seed=42, preparation=PreparationConfig(), split_files=files
    )
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


def test_random_split_takes_the_ratios_of_all_events_seeded():
    log = random_log()
    splits = random_split(log, 0.2, 0.1, seed=7)
    # 2000 events: round(0.2 * 2000) = 400 to test, round(0.1 * 1600) = 160 to validation
    assert [len(frame) for frame in splits] == [1440, 160, 400]
    assert same_rows(splits, log) and events_in_two_splits(splits) == 0
    assert random_split(log.sample(frac=1, random_state=1), 0.2, 0.1, seed=7).test.equals(splits.test)
    assert not random_split(log, 0.2, 0.1, seed=8).test.equals(splits.test)


def test_rows_of_one_event_land_in_one_split():
    # a view and a cart of the same item in the same second, ten times over: each pair stays together
    stamps = pd.date_range("2026-10-01", periods=10, freq="h", tz="UTC")
    log = pd.DataFrame(
        {
            "user_idx": 0,
            "item_idx": np.arange(20) // 2,
            "timestamp": stamps.repeat(2),
            "event_type": ["view", "cart"] * 10,
        }
    )
    for splits in (random_split(log, 0.3, 0.3, seed=0), stratified_split(log, "user", 0.3, 0.3, seed=0)):
        assert events_in_two_splits(splits) == 0 and same_rows(splits, log)
        assert all(len(frame) % 2 == 0 for frame in splits) and len(splits.test) == 6


def test_stratified_split_takes_each_users_share_and_keeps_small_users_in_train():
    stamps = pd.date_range("2026-10-01", periods=10, freq="D", tz="UTC")
    # user 0: 10 events, user 1: 5, user 2: 2, user 3: 1
    log = pd.concat(
        pd.DataFrame({"user_idx": user, "item_idx": np.arange(n), "timestamp": stamps[:n]})
        for user, n in ((0, 10), (1, 5), (2, 2), (3, 1))
    )
    counts = per_user_counts(stratified_split(log, "user", 0.2, 0.1, seed=42))
    # n = 10: round(8.0) = 8 kept, 2 test; of 8, round(7.2) = 7 train, 1 validation
    # n = 5: round(4.0) = 4 kept, 1 test; of 4, round(3.6) = 4 train.  n = 2: round(1.6) = 2, all train
    expected = {0: [7, 1, 2], 1: [4, 0, 1], 2: [2, 0, 0], 3: [1, 0, 0]}
    assert {user: row.astype(int).tolist() for user, row in counts.iterrows()} == expected


def test_stratified_split_by_item_follows_the_recommenders_protocol():
    log = random_log(4000)
    splits = stratified_split(log, "item", 0.25, 0.1, seed=42)
    assert same_rows(splits, log) and events_in_two_splits(splits) == 0
    counts = per_user_counts(splits, "item_idx")
    n = counts.sum(axis=1)
    # each item: the first round(0.75 n) of a seeded shuffle kept, then round(0.9 m) of those for training
    kept = np.maximum(np.round(0.75 * n), 1)
    assert (counts["test"] == n - kept).all()
    assert (counts["train"] == np.maximum(np.round(0.9 * kept), 1)).all()
    assert stratified_split(log, "item", 0.25, 0.1, seed=42).test.equals(splits.test)
    assert not stratified_split(log, "item", 0.25, 0.1, seed=43).test.equals(splits.test)


def test_leave_last_out_holds_out_each_users_last_events():
    day = pd.Timestamp("2026-10-01", tz="UTC")
    rows = [(0, item, day + pd.Timedelta(days=item)) for item in range(5)]  # 5 events, one a day
    rows += [(1, 8, day), (1, 9, day + pd.Timedelta(days=1))]  # 2 events
    rows += [(2, 3, day)]  # 1 event
    rows += [(3, 1, day), (3, 7, day + pd.Timedelta(days=2)), (3, 4, day + pd.Timedelta(days=2))]  # a tie
    log = pd.DataFrame(rows, columns=["user_idx", "item_idx", "timestamp"])
    train, validation, test = leave_last_out_split(log, 1)
    assert sorted(zip(test["user_idx"], test["item_idx"], strict=True)) == [(0, 4), (1, 9), (3, 7)]
    # the tie is broken by item index: item 7 counts as later than item 4
    assert sorted(zip(validation["user_idx"], validation["item_idx"], strict=True)) == [(0, 3), (3, 4)]
    assert sorted(train["user_idx"]) == [0, 0, 0, 1, 2, 3]
    train, validation, test = leave_last_out_split(log, 2)
    assert sorted(zip(test["user_idx"], test["item_idx"], strict=True)) == [(0, 3), (0, 4), (3, 4), (3, 7)]
    assert validation["item_idx"].tolist() == [1, 2] and (validation["user_idx"] == 0).all()


def test_leave_last_out_has_no_test_event_before_a_train_event_of_its_user():
    log = random_log()
    splits = leave_last_out_split(log, 2)
    assert same_rows(splits, log) and events_in_two_splits(splits) == 0
    assert users_out_of_time_order(splits) == 0
    counts = per_user_counts(splits)
    assert (counts["test"] == 2).all() and (counts["validation"] == 2).all()


def test_users_out_of_time_order_counts_each_late_user_once():
    train = interactions((0, 0, "2026-10-05"), (1, 0, "2026-10-01"), (2, 0, "2026-10-03"))
    validation = interactions((1, 1, "2026-10-02"), (2, 1, "2026-10-02"))
    test = interactions((0, 1, "2026-10-04"), (1, 2, "2026-10-02"), (2, 2, "2026-10-01"))
    # user 0: test before train; user 1: in order (a tie with validation is not a leak); user 2: both
    assert users_out_of_time_order(Splits(train, validation, test)) == 2
    assert users_out_of_time_order(Splits(train.iloc[1:2], validation.iloc[:1], test.iloc[1:2])) == 0


def test_events_in_two_splits_counts_distinct_shared_events():
    train = interactions((0, 0, "2026-10-01"), (0, 1, "2026-10-02"))
    validation = interactions((0, 1, "2026-10-02"), (1, 1, "2026-10-03"))
    test = interactions((0, 1, "2026-10-02"), (1, 1, "2026-10-04"))
    assert events_in_two_splits(Splits(train, validation, test)) == 1
    assert events_in_two_splits(Splits(train, validation.iloc[1:], test.iloc[1:])) == 0


@pytest.mark.parametrize(
    ("split", "rows"),
    [
        ({"kind": "temporal", "validation_days": 3, "test_days": 5}, None),
        ({"kind": "random"}, [1440, 160, 400]),
        ({"kind": "stratified", "stratify_by": "item"}, None),
        ({"kind": "leave_last_out", "leave_last": 1}, [1900, 50, 50]),
    ],
)
def test_every_split_kind_is_dated_by_the_day_after_the_newest_event(split, rows):
    log = random_log()
    run = run_split(log, **split)
    assert run.as_of == pd.Timestamp("2026-10-21", tz="UTC") and run.kcore == KCoreCounts(0, 0, 0, 0)
    assert same_rows(run.splits, log) and len(run.splits.test) > 0
    assert rows is None or [len(frame) for frame in run.splits] == rows


def test_k_core_filters_before_the_split_and_reports_what_it_removed():
    log = random_log()
    # user 49 loses all but one event, item 79 is rated once: both fall below the minimums of 2
    log = log[(log["user_idx"] != 49) | (log.index == log.index[log["user_idx"] == 49][0])]
    log = pd.concat([log[log["item_idx"] != 79], log[log["item_idx"] == 79].iloc[:1]])
    preparation = PreparationConfig(min_user_interactions=2, min_item_interactions=2)
    run = run_split(log, preparation, kind="leave_last_out")
    assert run.kcore.removed_users >= 1 and run.kcore.removed_items >= 1
    assert sum(len(frame) for frame in run.splits) == len(log) - run.kcore.removed_rows
    kept = pd.concat(run.splits)
    assert 49 not in set(kept["user_idx"]) and 79 not in set(kept["item_idx"])
    assert run.as_of == run_split(log, kind="leave_last_out").as_of


def test_every_configurable_split_kind_has_its_line():
    assert list(SPLIT_KINDS) == list(get_args(SplitKindName))
    # the one kind whose settings are files (the configuration checks split.train / test for it)
    assert [name for name, kind in SPLIT_KINDS.items() if kind.needs_files] == ["predefined"]
    assert all((kind.split is None) == kind.needs_files for kind in SPLIT_KINDS.values())


def split_files(log: pd.DataFrame, is_test: np.ndarray) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """``log`` (random_log) as predefined split files of user_id / item_id strings, for MAPS_50."""
    rows = log.assign(
        user_id="u" + log["user_idx"].astype(str), item_id="i" + log["item_idx"].astype(str), value=1.0
    )[["user_id", "item_id", "timestamp", "event_type", "value"]]
    no_quarantine = pd.DataFrame({"reason": pd.Series([], dtype=str)})
    return {"train": (rows[~is_test], no_quarantine), "test": (rows[is_test], no_quarantine)}


MAPS_50 = (
    pd.DataFrame({"id": [f"u{i}" for i in range(50)], "idx": np.arange(50, dtype=np.int32)}),
    pd.DataFrame({"id": [f"i{i}" for i in range(80)], "idx": np.arange(80, dtype=np.int32)}),
)


def predefined_run(log: pd.DataFrame, is_test: np.ndarray, seed: int = 42, **split) -> RunSplits:
    return split_for_run(
        log,
        *MAPS_50,
        WEIGHTS,
        SplitConfig(kind="predefined", **split),
        seed=seed,
        preparation=PreparationConfig(),
        split_files=split_files(log, is_test),
    )


def per_user_cut(log: pd.DataFrame) -> np.ndarray:
    """Each user's latest fifth by time as test, as a leave-last-out or temporal protocol writes its files."""
    rank = log.groupby("user_idx")["timestamp"].rank(method="first", ascending=False)
    return (rank <= np.floor(log.groupby("user_idx")["timestamp"].transform("size") * 0.2)).to_numpy()


def test_a_random_test_file_is_told_from_one_cut_by_time():
    log = random_log()
    drawn = np.random.default_rng(1).random(len(log)) < 0.2
    cut = per_user_cut(log)
    random_share = earlier_test_share(log[~drawn], log[drawn])
    assert random_share > 0.9 > RANDOM_TEST_THRESHOLD  # users of ~40 events: ~n / (n + 1) are earlier
    assert earlier_test_share(log[~cut], log[cut]) == 0.0
    assert validation_rule(log[~drawn], log[drawn], "auto") == ValidationRule("random", "auto", random_share)
    assert validation_rule(log[~cut], log[cut], "auto") == ValidationRule("latest", "auto", 0.0)
    # nothing to measure (no test user has train events): the time rule
    assert validation_rule(log[log.user_idx < 25], log[log.user_idx >= 25], "auto").rule == "latest"


def test_a_run_draws_validation_by_the_test_files_rule_and_records_it():
    log = random_log()
    drawn = np.random.default_rng(1).random(len(log)) < 0.2
    run = predefined_run(log, drawn)
    assert run.validation_rule.rule == "random" and run.validation_rule.configured == "auto"
    assert run.validation_rule.earlier_test_share > RANDOM_TEST_THRESHOLD
    # random: not each user's latest, yet each user's share (rounded down), seeded by the run's seed
    train, validation = run.splits.train, run.splits.validation
    sizes = (train["user_idx"].value_counts() + validation["user_idx"].value_counts()).fillna(0)
    counts = validation["user_idx"].value_counts().reindex(sizes.index, fill_value=0)
    assert (counts == np.floor(sizes * 0.1)).all()
    assert users_out_of_time_order(Splits(train, validation, validation.iloc[:0])) > 0
    assert predefined_run(log, drawn).splits.validation.equals(validation)
    assert not predefined_run(log, drawn, seed=7).splits.validation.equals(validation)

    cut = per_user_cut(log)
    temporal = predefined_run(log, cut)
    assert temporal.validation_rule == ValidationRule("latest", "auto", 0.0)
    assert users_out_of_time_order(temporal.splits) == 0


def test_a_configured_validation_rule_overrides_detection():
    log = random_log()
    drawn = np.random.default_rng(1).random(len(log)) < 0.2
    latest = predefined_run(log, drawn, validation_rule="latest")
    assert latest.validation_rule.rule == "latest" and latest.validation_rule.configured == "latest"
    # each user's latest: no validation event before one of the user's train events
    assert users_out_of_time_order(latest.splits._replace(test=latest.splits.test.iloc[:0])) == 0
    random = predefined_run(log, per_user_cut(log), validation_rule="random")
    assert random.validation_rule == ValidationRule("random", "random", 0.0)


def test_the_validation_rule_is_checked_by_key():
    with pytest.raises(ConfigError, match=r"split\.validation_rule") as error:
        parse_config(
            {"split": {"kind": "predefined", "train": ".", "test": ".", "validation_rule": "newest"}}
        )
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=r"split\.validation_rule.*only for split.kind predefined"):
        parse_config({"split": {"kind": "temporal", "validation_rule": "random"}})
    assert (
        parse_config({"split": {"kind": "temporal", "validation_rule": "auto"}}).split.validation_rule
        == "auto"
    )


def test_the_verdict_says_how_validation_was_drawn_for_every_split_kind():
    """One sentence per kind; a predefined split's names its rule and the statistic ``auto`` decided on."""
    from recpipeline.config import SplitConfig
    from recpipeline.preparation.splitting import SPLIT_KINDS, ValidationRule, validation_drawn

    for kind in SPLIT_KINDS:
        assert validation_drawn(SplitConfig(kind=kind))
    assert validation_drawn(SplitConfig(kind="stratified", stratify_by="item", validation_ratio=0.1)) == (
        "a seeded random 10% of each item's events left after test, as the test was drawn"
    )
    predefined = SplitConfig(kind="predefined")
    assert validation_drawn(predefined, ValidationRule("file", "auto")) == "the split's validation file"
    assert validation_drawn(predefined, ValidationRule("random", "auto", 0.975)) == (
        "a seeded random 10% of each user's train file (validation_rule auto; 97.5% of test events are "
        "older than the user's latest train event)"
    )
    assert validation_drawn(predefined, ValidationRule("latest", "latest")).startswith("the latest (by time)")
