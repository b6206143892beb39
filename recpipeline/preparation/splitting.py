"""Train / validation / test splits over interactions, as plain functions over tables (LensKit style)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from recpipeline.config import PreparationConfig, SplitConfig
from recpipeline.contracts import SESSION_COLUMN
from recpipeline.preparation.cleaning import reason_counts
from recpipeline.preparation.encoding import encode_interactions
from recpipeline.preparation.filtering import NOTHING_REMOVED, KCoreCounts, k_core

#: without a validation file, this share of each user's training interactions is validation
VALIDATION_SHARE = 0.1
#: ``split.validation_rule: auto`` draws validation at random when more than this share of the test events
#: (of users with train events) are older than the same user's latest train event: a test file cut by time
#: has (almost) none, a random draw most (a user with n train events: about n / (n + 1))
RANDOM_TEST_THRESHOLD = 0.5
#: an event: rows sharing these (a view and a cart in the same second) always land in the same split
EVENT_KEYS = ["user_idx", "item_idx", "timestamp"]
#: a row's split, as the row-assigning splits label it
TRAIN, VALIDATION, TEST = 0, 1, 2


class Splits(NamedTuple):
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def as_of(timestamps: pd.Series) -> pd.Timestamp | None:
    """The end of the data a run covers: midnight (UTC) after the day of the newest timestamp, so the run
    covers whole days; splits end there and metrics are dated by it. ``None`` without a timestamp."""
    last = pd.to_datetime(timestamps, utc=True, errors="coerce").max()
    return None if pd.isna(last) else last.normalize() + pd.Timedelta(days=1)


def temporal_split(
    interactions: pd.DataFrame, as_of: pd.Timestamp, validation_days: int, test_days: int
) -> Splits:
    """The last ``test_days`` days up to ``as_of`` (exclusive end) are test, the ``validation_days`` before
    them validation, everything earlier train. Boundaries are whole UTC days, so no event is in two splits.
    """
    test_start = as_of - pd.Timedelta(days=test_days)
    validation_start = test_start - pd.Timedelta(days=validation_days)
    ts = interactions["timestamp"]
    if (ts >= as_of).any():
        raise ValueError(f"interactions contain timestamps at or after the split end {as_of}")
    train = interactions[ts < validation_start]
    if train.empty:
        raise ValueError(
            f"the temporal split leaves no training data: all events are after {validation_start} "
            f"(validation_days={validation_days}, test_days={test_days}); add days or shorten the windows"
        )
    return Splits(
        train.reset_index(drop=True),
        interactions[(ts >= validation_start) & (ts < test_start)].reset_index(drop=True),
        interactions[ts >= test_start].reset_index(drop=True),
    )


def session_split(
    interactions: pd.DataFrame, as_of: pd.Timestamp, validation_days: int, test_days: int
) -> Splits:
    """Whole sessions (``session_idx``) by the day they start: those starting in the last ``test_days`` days
    up to ``as_of`` are test, those starting in the ``validation_days`` before validation, earlier ones
    train. A session is never cut, so one that starts before midnight of a window boundary keeps its later
    events in the earlier split (train's last events may be later than test's first)."""
    test_start = as_of - pd.Timedelta(days=test_days)
    validation_start = test_start - pd.Timedelta(days=validation_days)
    ts = interactions["timestamp"]
    if (ts >= as_of).any():
        raise ValueError(f"interactions contain timestamps at or after the split end {as_of}")
    start = ts.groupby(interactions[SESSION_COLUMN].to_numpy()).transform("min")
    train = interactions[start < validation_start]
    if train.empty:
        raise ValueError(
            f"the session split leaves no training data: every session starts after {validation_start} "
            f"(validation_days={validation_days}, test_days={test_days}); add days or shorten the windows"
        )
    return Splits(
        train.reset_index(drop=True),
        interactions[(start >= validation_start) & (start < test_start)].reset_index(drop=True),
        interactions[start >= test_start].reset_index(drop=True),
    )


class ValidationRule(NamedTuple):
    """How a predefined split's validation was drawn, as the split's metadata records it."""

    #: file (the validation file), latest or random
    rule: str
    #: the ``split.validation_rule`` configured (auto, latest, random)
    configured: str
    #: the detection statistic (``earlier_test_share``); None when no test user has train events
    earlier_test_share: float | None = None


def earlier_test_share(train: pd.DataFrame, test: pd.DataFrame) -> float | None:
    """The share of test events (of users with train events) strictly older than the same user's latest
    train event: 0 for a test file cut by time (globally or per user), most of them for a random draw.
    None when no test user has a train event."""
    last = train.groupby("user_idx")["timestamp"].max()
    known = test[test["user_idx"].isin(last.index)]
    if known.empty:
        return None
    return float(np.mean(known["timestamp"].to_numpy() < last.loc[known["user_idx"]].to_numpy()))


def validation_rule(train: pd.DataFrame, test: pd.DataFrame, configured: str) -> ValidationRule:
    """The rule that draws a predefined split's validation from its train file: the configured one, or for
    ``auto`` the rule the test file follows (random above ``RANDOM_TEST_THRESHOLD``, else latest)."""
    statistic = earlier_test_share(train, test)
    if configured != "auto":
        return ValidationRule(configured, configured, statistic)
    drawn_at_random = statistic is not None and statistic > RANDOM_TEST_THRESHOLD
    return ValidationRule("random" if drawn_at_random else "latest", configured, statistic)


def predefined_split(
    train: pd.DataFrame,
    validation: pd.DataFrame | None,
    test: pd.DataFrame,
    share: float = VALIDATION_SHARE,
    rule: str = "latest",
    seed: int = 0,
) -> Splits:
    """A split given as files (e.g. MovieLens u1.base / u1.test). Without a validation file, ``share`` of
    each user's training interactions (rounded down, so users with fewer than 1 / share interactions keep
    all of theirs in train) becomes validation: with ``rule`` latest the user's latest by time (like the
    temporal split, it holds out what the user did last), with random a draw seeded by ``seed`` (rows of
    one event share a draw), so validation resembles a test file drawn at random."""
    if validation is None:
        ordered = train.sort_values(["user_idx", "timestamp"], kind="stable")
        users = ordered.groupby("user_idx", sort=False)["user_idx"]
        if rule not in ("latest", "random"):
            raise ValueError(f"unknown validation rule {rule!r}: latest or random")
        if rule == "latest":
            rank = users.cumcount(ascending=False)
        else:
            event = ordered.groupby(EVENT_KEYS, sort=False).ngroup().to_numpy()
            draw = pd.Series(np.random.default_rng(seed).random(len(event))[event], index=ordered.index)
            rank = draw.groupby(ordered["user_idx"].to_numpy()).rank(method="first") - 1
        held_out = rank < np.floor(users.transform("size") * share)
        train, validation = ordered[~held_out], ordered[held_out]
    return Splits(*(frame.reset_index(drop=True) for frame in (train, validation, test)))


def random_split(interactions: pd.DataFrame, test_ratio: float, validation_ratio: float, seed: int) -> Splits:
    """A seeded shuffle of all events: ``round(test_ratio * n)`` to test, ``round(validation_ratio *``
    the rest``)`` to validation, the others to train."""

    def assign(events: pd.DataFrame) -> np.ndarray:
        n = len(events)
        order = np.random.default_rng(seed).permutation(n)
        n_test = round(test_ratio * n)
        n_validation = round(validation_ratio * (n - n_test))
        labels = np.full(n, TRAIN)
        labels[order[:n_test]] = TEST
        labels[order[n_test : n_test + n_validation]] = VALIDATION
        return labels

    return _split_by_event(interactions, assign)


def stratified_split(
    interactions: pd.DataFrame, by: str, test_ratio: float, validation_ratio: float, seed: int
) -> Splits:
    """Each user's (``by="user"``) or item's events split by the ratios, as the Microsoft Recommenders
    ``python_stratified_split`` and ``benchmarks/movielens_models.py``: a seeded shuffle of the group's n
    events, the first ``round((1 - test_ratio) * n)`` kept, the rest to test; then, with seed + 1, the first
    ``round((1 - validation_ratio) * m)`` of the m kept to train, the rest to validation. A group keeps at
    least one event in train, so one with a single event stays whole in train."""
    column = f"{by}_idx"

    def assign(events: pd.DataFrame) -> np.ndarray:
        groups = events[column].to_numpy()
        kept = _first_share(groups, 1 - test_ratio, seed)
        labels = np.where(kept, TRAIN, TEST)
        fit = np.flatnonzero(kept)
        labels[fit[~_first_share(groups[fit], 1 - validation_ratio, seed + 1)]] = VALIDATION
        return labels

    return _split_by_event(interactions, assign)


def leave_last_out_split(interactions: pd.DataFrame, leave_last: int) -> Splits:
    """Each user's last ``leave_last`` events by time to test, the ``leave_last`` before them to validation,
    the rest to train; events of the same second are ordered by item index. A user keeps at least one event
    in train: with at most ``leave_last`` events all stay in train, with at most ``2 * leave_last`` none go
    to validation."""

    def assign(events: pd.DataFrame) -> np.ndarray:
        users = events["user_idx"].to_numpy()
        time = events["timestamp"].rank(method="dense").to_numpy()
        order = np.lexsort((events["item_idx"].to_numpy(), time, users))
        _, starts, sizes = np.unique(users[order], return_index=True, return_counts=True)
        size = np.repeat(sizes, sizes)
        from_end = np.repeat(starts + sizes, sizes) - 1 - np.arange(len(order))
        labels = np.full(len(events), TRAIN)
        labels[order[(from_end < leave_last) & (size > leave_last)]] = TEST
        in_validation = (from_end >= leave_last) & (from_end < 2 * leave_last) & (size > 2 * leave_last)
        labels[order[in_validation]] = VALIDATION
        return labels

    return _split_by_event(interactions, assign)


def _first_share(groups: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """Per group, a seeded shuffle of its rows; the first ``max(round(ratio * n), 1)`` are marked."""
    keys = np.random.default_rng(seed).random(len(groups))
    order = np.lexsort((keys, groups))
    _, starts, sizes = np.unique(groups[order], return_index=True, return_counts=True)
    position = np.arange(len(order)) - np.repeat(starts, sizes)
    marked = np.zeros(len(groups), dtype=bool)
    marked[order] = position < np.repeat(np.maximum(np.round(ratio * sizes), 1), sizes)
    return marked


def _split_by_event(interactions: pd.DataFrame, assign: Callable[[pd.DataFrame], np.ndarray]) -> Splits:
    """Labels (TRAIN / VALIDATION / TEST) from ``assign`` over the distinct events, in time order (ties in
    row order), applied to every row of each event. Time order makes the split independent of how the
    rows were read; one label per event keeps a double-logged event out of two splits."""
    ordered = interactions.sort_values("timestamp", kind="stable")
    event = ordered.groupby(EVENT_KEYS, sort=False).ngroup().to_numpy()
    labels = assign(ordered[~ordered.duplicated(EVENT_KEYS)])[event]
    return Splits(*(ordered[labels == label].reset_index(drop=True) for label in (TRAIN, VALIDATION, TEST)))


class FileRows(NamedTuple):
    """Every row of a split file: ``rows`` read, of which ``quarantined[reason]`` were set aside."""

    rows: int
    quarantined: dict[str, int]


class RunSplits(NamedTuple):
    splits: Splits
    #: the end of the run's data (``as_of``): splits end there and outputs are dated by it
    as_of: pd.Timestamp
    #: per split file of a predefined split (empty for the other kinds)
    file_rows: dict[str, FileRows]
    #: what k-core filtering removed before the split
    kcore: KCoreCounts = NOTHING_REMOVED
    #: how a predefined split's validation was drawn (None for the other kinds)
    validation_rule: ValidationRule | None = None


class SplitKind(NamedTuple):
    """What a ``split.kind`` means, wherever the pipeline asks."""

    #: (interactions after k-core filtering, the settings, the end of the data, the seed) -> the splits;
    #: None: the splits are read from files
    split: Callable[[pd.DataFrame, SplitConfig, pd.Timestamp, int], Splits] | None
    #: the asset check (``recpipeline.orchestration.checks``) of the invariant its splits keep
    check: str
    #: its splits are files (split.train, validation, test), read and cleaned with the source's settings
    needs_files: bool = False
    #: evaluated with the session protocol (test sessions replayed prefix by prefix), not per user
    sessions: bool = False
    #: its test window is the last days before a cut, so a backtest can roll it over cut dates
    rolls: bool = False
    #: test takes a share (split.test_ratio) of the interactions, which may round to none
    by_ratio: bool = False


#: every split kind (the configuration's ``SplitKindName`` names them); only a temporal split is ordered in
#: time as a whole: a predefined one (MovieLens u1.base / u1.test) and the random kinds are not by design,
#: leave-last-out is per user, a session split by session start
SPLIT_KINDS: dict[str, SplitKind] = {
    "temporal": SplitKind(
        lambda rows, split, end, seed: temporal_split(rows, end, split.validation_days, split.test_days),
        "splits_are_ordered_in_time",
        rolls=True,
    ),
    "predefined": SplitKind(None, "predefined_splits_do_not_overlap", needs_files=True),
    "random": SplitKind(
        lambda rows, split, end, seed: random_split(rows, split.test_ratio, split.validation_ratio, seed),
        "splits_do_not_share_events",
        by_ratio=True,
    ),
    "stratified": SplitKind(
        lambda rows, split, end, seed: stratified_split(
            rows, split.stratify_by, split.test_ratio, split.validation_ratio, seed
        ),
        "splits_do_not_share_events",
        by_ratio=True,
    ),
    "leave_last_out": SplitKind(
        lambda rows, split, end, seed: leave_last_out_split(rows, split.leave_last),
        "splits_are_ordered_per_user",
    ),
    "sessions": SplitKind(
        lambda rows, split, end, seed: session_split(rows, end, split.validation_days, split.test_days),
        "sessions_are_whole_and_ordered",
        sessions=True,
    ),
}


def validation_drawn(split: SplitConfig, rule: ValidationRule | None = None) -> str:
    """How the validation that early stopping and tuning choose on was drawn (``rule``: a predefined split's,
    ``RunSplits.validation_rule``), for the split's metadata and the verdict: a sceptic checks that it was
    drawn the way the test was."""
    share = f"{split.validation_ratio:.0%}"
    described = {
        "temporal": f"the {split.validation_days} days before the test window (the test: the latest days)",
        "sessions": f"the sessions of the {split.validation_days} days before the test window",
        "random": f"a seeded random {share} of the events left after test, as the test was drawn",
        "stratified": f"a seeded random {share} of each {split.stratify_by}'s events left after test, "
        "as the test was drawn",
        "leave_last_out": f"each user's {split.leave_last} interactions before the test's (the test: the "
        "latest)",
    }
    if split.kind != "predefined":
        return described[split.kind]
    if rule is None or rule.rule == "file":
        return "the split's validation file"
    measured = ""
    if rule.earlier_test_share is not None:
        measured = (
            f"; {rule.earlier_test_share:.1%} of test events are older than the user's latest train event"
        )
    how = {"random": "a seeded random", "latest": "the latest (by time)"}[rule.rule]
    rule_note = f"validation_rule {rule.configured}{measured}"
    return f"{how} {VALIDATION_SHARE:.0%} of each user's train file ({rule_note})"


def split_for_run(
    interactions: pd.DataFrame,
    user_id_map: pd.DataFrame,
    item_id_map: pd.DataFrame,
    event_weights: Mapping[str, float],
    split: SplitConfig,
    *,
    seed: int,
    preparation: PreparationConfig,
    split_files: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]] | None = None,
    end: pd.Timestamp | None = None,
) -> RunSplits:
    """The run's splits of the kind ``split.kind``, after k-core filtering by ``preparation``.

    Filtering runs here, on what is split, rather than on the ``interactions`` asset: that asset stays the
    whole encoded log, and a predefined split's files (``split_files``: ``{name: (cleaned, quarantine)}``,
    encoded with the run's id maps) are filtered as one log, each row staying in its file's split.
    ``as_of`` (the day after the newest interaction, unless ``end`` gives it: a backtest cut's test window
    ends where its calendar says) does not move with filtering."""
    end = as_of(interactions["timestamp"]) if end is None else end
    minimums = (preparation.min_user_interactions, preparation.min_item_interactions)
    if split_files is not None:
        return _predefined_for_run(
            split_files, user_id_map, item_id_map, event_weights, minimums, end, split.validation_rule, seed
        )
    rows, kcore = k_core(interactions, *minimums)
    kept = interactions[rows]
    kind = SPLIT_KINDS[split.kind]
    if kind.split is None:
        raise ValueError(f"split kind {split.kind!r} needs split files")
    splits = kind.split(kept, split, end, seed)
    if kind.by_ratio and len(kept) and splits.test.empty:
        from recpipeline.config import ConfigError

        raise ConfigError(
            f"split.test_ratio: test is empty: {split.test_ratio:g} of {len(kept)} interactions rounds to no "
            "test interaction; raise split.test_ratio"
        )
    return RunSplits(splits, end, {}, kcore)


def _predefined_for_run(
    split_files: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    user_id_map: pd.DataFrame,
    item_id_map: pd.DataFrame,
    event_weights: Mapping[str, float],
    minimums: tuple[int, int],
    end: pd.Timestamp,
    configured_rule: str,
    seed: int,
) -> RunSplits:
    encoded = {
        name: encode_interactions(cleaned, user_id_map, item_id_map, event_weights)
        for name, (cleaned, _) in split_files.items()
    }
    # the files are filtered as one log (an item rated only in test has too few users like any other)
    rows, kcore = k_core(
        pd.concat([frame[["user_idx", "item_idx"]] for frame in encoded.values()]), *minimums
    )
    bounds = np.cumsum([len(frame) for frame in encoded.values()])[:-1]
    kept = {
        name: frame[part] for (name, frame), part in zip(encoded.items(), np.split(rows, bounds), strict=True)
    }
    if "validation" in kept:
        rule = ValidationRule("file", configured_rule)
    else:
        rule = validation_rule(kept["train"], kept["test"], configured_rule)
    splits = predefined_split(kept["train"], kept.get("validation"), kept["test"], rule=rule.rule, seed=seed)
    file_rows = {
        name: FileRows(
            len(cleaned) + len(quarantine), {r: n for r, n in reason_counts(quarantine).items() if n}
        )
        for name, (cleaned, quarantine) in split_files.items()
    }
    return RunSplits(splits, end, file_rows, kcore, rule)


def in_time_order(splits: Splits) -> bool:
    """Test is not empty and every non-empty split ends before the next one starts: nothing leaks back."""
    stamps = [frame["timestamp"] for frame in splits if len(frame)]
    return len(splits.test) > 0 and all(a.max() < b.min() for a, b in zip(stamps, stamps[1:], strict=False))


def users_out_of_time_order(splits: Splits) -> int:
    """Users with a validation event before one of their train events, or a test event before one of their
    train or validation events (events of the same second are in order either way)."""
    train, validation, test = (frame[["user_idx", "timestamp"]] for frame in splits)
    late = set()
    for earlier, later in ((train, validation), (pd.concat([train, validation]), test)):
        last = earlier.groupby("user_idx")["timestamp"].max()
        first = later.groupby("user_idx")["timestamp"].min()
        both = last.index.intersection(first.index)
        late |= set(both[(last[both] > first[both]).to_numpy()])
    return len(late)


def sessions_out_of_order(splits: Splits) -> dict[str, int]:
    """Sessions in more than one split, and sessions of a later split (validation, test) that start before
    the latest session start of an earlier one: both zero for a session split."""
    starts = [frame.groupby(SESSION_COLUMN)["timestamp"].min() for frame in splits]
    index = pd.concat([start.index.to_series() for start in starts])
    late = 0
    for earlier, later in zip(starts, starts[1:], strict=False):
        if len(earlier) and len(later):
            late += int((later < earlier.max()).sum())
    return {"sessions_in_two_splits": int(index.duplicated().sum()), "sessions_out_of_order": late}


def events_in_two_splits(splits: Splits) -> int:
    """Distinct events (user, item, timestamp) that are in more than one split."""
    distinct = pd.concat([frame[EVENT_KEYS].drop_duplicates() for frame in splits])
    return len(distinct[distinct.duplicated()].drop_duplicates())


def events_in_test_and_earlier(splits: Splits) -> int:
    """Distinct test events (user, item, timestamp) that are also in train or validation."""
    keys = ["user_idx", "item_idx", "timestamp"]
    known = pd.concat([splits.train[keys], splits.validation[keys]]).drop_duplicates()
    return len(splits.test[keys].drop_duplicates().merge(known, on=keys))
