"""The session protocol: test sessions replayed prefix by prefix, scored through the ordinary interface."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recpipeline.evaluation.sessions import (
    CANNOT_SERVE,
    FOLDS_IN,
    IGNORES_PREFIX,
    evaluate_sessions,
    prefix_support,
    session_lists,
    session_positions,
)
from recpipeline.models.base import Recommender
from recpipeline.models.context import FitContext
from recpipeline.models.registry import model_class
from recpipeline.preparation.encoding import interaction_matrix

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def events(rows: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    """(user_idx, item_idx, session_idx, minute) rows as interactions."""
    user, item, session, minute = (np.array(column) for column in zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "user_idx": user,
            "item_idx": item,
            "weight": np.float32(1.0),
            "timestamp": T0 + pd.to_timedelta(minute, unit="min"),
            "event_type": "view",
            "session_idx": session.astype(np.int64),
        }
    )


def test_positions_replay_each_session_with_collapsed_repeats_and_earlier_visits() -> None:
    known = events([(0, 7, 0, 0), (0, 8, 0, 1), (1, 9, 1, 2)])
    # user 0 (logged in) views 1, 1, 2, 3; user 2 (anonymous) views 4, 5; a one-step session gives nothing
    test = events([(0, 1, 5, 10), (0, 1, 5, 11), (0, 2, 5, 12), (0, 3, 5, 13), (2, 4, 6, 20), (2, 5, 6, 21)])
    test = pd.concat([test, events([(3, 6, 7, 30)])], ignore_index=True)
    positions = session_positions(known, test, n_users=4, n_items=10, anonymous_users=np.array([2]))
    table = positions.table
    assert table["user_idx"].tolist() == [4, 5, 6]
    assert table["session_idx"].tolist() == [5, 5, 6]
    assert table["position"].tolist() == [1, 2, 1]
    assert table["anonymous"].tolist() == [False, False, True]
    rows = [sorted(positions.history[r].indices.tolist()) for r in range(3)]
    assert rows == [[1, 7, 8], [1, 2, 7, 8], [4]]  # earlier visits of the logged-in user only
    assert positions.targets.values.tolist() == [[4, 2], [5, 3], [6, 5]]
    rest = session_positions(known, test, 4, 10, np.array([2]), targets="rest").targets
    assert sorted(map(tuple, rest.values.tolist())) == [(4, 2), (4, 3), (5, 3), (6, 5)]


class Spy(Recommender):
    """Records every history row and history event it is given; scores nothing in particular."""

    name = "spy"
    family = "baseline"
    event_columns = ("user_idx", "item_idx", "timestamp", "session_idx")

    def fit(self, train, validation=None, *, context=None, log=None) -> Spy:
        self._start_fit(train, context)
        self.seen_: list[tuple[np.ndarray, sp.csr_matrix, pd.DataFrame]] = []
        return self

    def score(self, users, history, context=None) -> np.ndarray:
        self.seen_.append((np.asarray(users), history.copy(), context.history_events.copy()))
        return np.zeros((len(users), self.n_items_), dtype=np.float32)


def test_no_model_sees_a_test_sessions_future() -> None:
    rng = np.random.default_rng(3)
    train = events([(u, int(rng.integers(20)), u, u) for u in range(10)])
    rows = []
    for s in range(20):
        user = int(rng.integers(10))
        items = rng.choice(20, size=int(rng.integers(2, 6)), replace=False)  # no repeats to collapse
        rows += [(user, int(item), 100 + s, 1000 + 10 * s + j) for j, item in enumerate(items)]
    test = events(rows)
    spy = Spy().fit(sp.csr_matrix((10, 20), dtype=np.float32))
    positions = session_positions(train, test, 10, 20, np.empty(0, np.int64))
    session_lists(spy, "spy", positions, 5)
    table = positions.table.set_index("user_idx")
    steps = test.sort_values(["session_idx", "timestamp"])
    scored = 0
    for users, history, seen in spy.seen_:
        for row, user in enumerate(users):
            session, position = table.loc[user, ["session_idx", "position"]]
            own = steps[steps["session_idx"] == session]
            target_time = own["timestamp"].iloc[position]
            given = seen[seen["user_idx"] == user]
            # nothing at or after the target's time, and the prefix is exactly the session's first steps
            assert (given["timestamp"] < target_time).all()
            prefix = given[given["session_idx"] == session]["item_idx"].tolist()
            assert prefix == own["item_idx"].iloc[:position].tolist()
            assert set(history[row].indices) == set(given["item_idx"])
            scored += 1
    assert scored == len(positions.table) > 0


def chain_sessions(n_sessions: int, first_session: int, n_items: int, seed: int) -> pd.DataFrame:
    """Planted next-item structure: a session walks item i -> i + 1 (mod n_items) from a random start."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(first_session, first_session + n_sessions):
        start, length = int(rng.integers(n_items)), int(rng.integers(3, 7))
        rows += [(s, (start + j) % n_items, s, 10 * s + j) for j in range(length)]
    return events(rows)


def test_planted_next_items_are_recovered_by_a_sequence_model_and_sknn() -> None:
    torch.set_num_threads(1)
    n_items = 40
    train = chain_sessions(800, 0, n_items, seed=1)
    validation = chain_sessions(50, 800, n_items, seed=2)
    test = chain_sessions(100, 850, n_items, seed=3)
    n_users = 950  # each session its own (anonymous) visitor
    fitted = {}
    for name, params in [
        ("popularity", {}),
        ("sknn", {}),
        ("gru4rec", {"epochs": 8, "device": "cpu", "num_threads": 1, "patience": 8}),
    ]:
        model = model_class(name)(**params)
        model.fit(
            interaction_matrix(train, n_users, n_items),
            interaction_matrix(validation, n_users, n_items),
            context=FitContext(train_events=train, validation_events=validation),
        )
        fitted[name] = model
    item_map = pd.DataFrame({"id": [str(i) for i in range(n_items)], "idx": np.arange(n_items)})
    user_map = pd.DataFrame({"id": [f"~anonymous:{u}" for u in range(n_users)], "idx": np.arange(n_users)})
    result = evaluate_sessions(fitted, train, validation, test, None, item_map, user_map, [1, 5])
    hit = result.metrics.query("segment == 'all' and metric == 'hit_rate'").set_index(["model", "k"])["value"]
    assert hit[("gru4rec", 1)] > 0.8
    assert hit[("sknn", 5)] > 0.8
    assert hit[("popularity", 5)] < 0.3
    assert result.prefix_support["popularity"] == IGNORES_PREFIX
    assert result.prefix_support["gru4rec"] == result.prefix_support["sknn"] == FOLDS_IN
    segments = set(result.metrics["segment"])
    assert {"all", "prefix_1", "prefix_2_4", "prefix_5_plus", "anonymous"} <= segments
    assert "logged_in" not in segments
    # one per-session row per model: significance is paired by session
    assert len(result.per_session) == 3 * result.n_sessions == 3 * 100


class UserFactors(Spy):
    """Reads a stored vector per user: cannot serve a pseudo-user beyond the fitted ones."""

    def score(self, users, history, context=None) -> np.ndarray:
        factors = np.ones((self.n_users_, self.n_items_), dtype=np.float32)
        return factors[np.asarray(users)]


def test_a_model_that_cannot_fold_in_a_prefix_is_reported_not_scored() -> None:
    train = events([(0, 1, 0, 0), (1, 2, 1, 1)])
    test = events([(0, 1, 2, 10), (0, 2, 2, 11), (0, 3, 2, 12)])
    model = UserFactors().fit(sp.csr_matrix((2, 4), dtype=np.float32))
    positions = session_positions(train, test, 2, 4, np.empty(0, np.int64))
    assert prefix_support(model, positions) == CANNOT_SERVE
    item_map = pd.DataFrame({"id": list("abcd"), "idx": np.arange(4)})
    result = evaluate_sessions(
        {"factors": model, "spy": Spy().fit(sp.csr_matrix((2, 4)))},
        train,
        train.iloc[:0],
        test,
        None,
        item_map,
        None,
        [2],
    )
    assert result.prefix_support["factors"] == CANNOT_SERVE
    assert set(result.metrics["model"]) == {"spy"}


def test_seen_items_are_left_out_only_when_asked() -> None:
    train = events([(0, 0, 0, 0), (0, 1, 0, 1)])
    test = events([(1, 2, 1, 10), (1, 3, 1, 11)])

    class Favours(Spy):
        def score(self, users, history, context=None) -> np.ndarray:
            return np.tile(np.array([0, 0, 5, 1], np.float32), (len(users), 1))

    model = Favours().fit(sp.csr_matrix((2, 4)))
    positions = session_positions(train, test, 2, 4, np.empty(0, np.int64))
    assert session_lists(model, "m", positions, 1)["item_idx"].tolist() == [2]
    assert session_lists(model, "m", positions, 1, recommend_seen=False)["item_idx"].tolist() == [3]


@pytest.mark.parametrize("targets", ["next", "rest"])
def test_targets_setting_is_validated(targets: str) -> None:
    from recpipeline.config import ConfigError, parse_config

    assert parse_config({"evaluation": {"session_targets": targets}}).evaluation.session_targets == targets
    with pytest.raises(ConfigError, match="session_targets"):
        parse_config({"evaluation": {"session_targets": "all"}})


def test_evaluate_command_scores_lists_per_session_position(tmp_path, capsys) -> None:
    from recpipeline.cli import main

    pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": ["2026-01-01T00:00:00Z"]}).to_csv(
        tmp_path / "train.csv", index=False
    )
    # one anonymous session a, a, b, c: positions 1 (after a) -> b and 2 (after a, b) -> c
    pd.DataFrame(
        {
            "session_id": ["s1"] * 4,
            "item_id": ["a", "a", "b", "c"],
            "timestamp": [f"2026-01-02T00:0{m}:00Z" for m in range(4)],
        }
    ).to_csv(tmp_path / "test.csv", index=False)
    # position 1: b at rank 1 (hit); position 2: c at rank 2 (reciprocal rank 1/2)
    pd.DataFrame(
        {"session_id": "s1", "position": [1, 1, 2, 2], "item_id": ["b", "c", "a", "c"], "rank": [1, 2, 1, 2]}
    ).to_csv(tmp_path / "lists.csv", index=False)
    out = tmp_path / "metrics.csv"
    args = [
        "evaluate",
        "--sessions",
        "--train",
        str(tmp_path / "train.csv"),
        "--test",
        str(tmp_path / "test.csv"),
    ]
    args += ["--recommendations", str(tmp_path / "lists.csv"), "--k", "2", "--output", str(out)]
    assert main(args) == 0
    metrics = pd.read_csv(out).query("segment == 'all'").set_index("metric")["value"]
    assert metrics["hit_rate"] == 1.0
    assert metrics["mrr"] == pytest.approx(0.75)
    assert "anonymous" in capsys.readouterr().out
