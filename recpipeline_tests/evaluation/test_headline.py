"""The fair headline: users with history, who served the new users, small segments flagged and untested."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recpipeline.evaluation.history import append_history, regression_report
from recpipeline.evaluation.protocol import new_users_served_by
from recpipeline.evaluation.run import EvaluationSettings, EvaluationSplits, evaluate_run
from recpipeline.evaluation.significance import choose_baseline

DAY = pd.Timestamp("2026-10-01", tz="UTC")


def _events(rows: list[tuple[int, int]], day: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_idx": np.array([u for u, _ in rows], dtype=np.int32),
            "item_idx": np.array([i for _, i in rows], dtype=np.int32),
            "weight": np.ones(len(rows), np.float32),
            "timestamp": DAY + pd.Timedelta(days=day),
            "event_type": "view",
        }
    )


def _lists(top: dict[int, int]) -> pd.DataFrame:
    """One-item lists: user_idx -> item_idx."""
    return pd.DataFrame({"user_idx": list(top), "item_idx": list(top.values()), "rank": 1})


# ---------------------------------------------------------------------------------------------------------
# users 0, 1: one training row each (cold, so with history); users 2, 3, 4: no history (new_users);
# user 9: background traffic. Relevant test items: 0 -> 2, 1 -> 3, 2/3/4 -> 4.
# popularity misses both users with history (item 5) and hits the three new users (item 4):
#   ndcg@1 on all = 3/5, on with_history = 0
# als hits both users with history and misses the new users (its fallback list, item 5):
#   ndcg@1 on all = 2/5, on with_history = 1
# so the best non-neural model is popularity on all, als on the users with history.
# ---------------------------------------------------------------------------------------------------------
TRAIN = _events([(0, 0), (1, 1), (9, 0), (9, 1), (9, 2), (9, 3), (9, 4), (9, 5)], 0)
TEST = _events([(0, 2), (1, 3), (2, 4), (3, 4), (4, 4)], 8)
ITEM_MAP = pd.DataFrame({"id": [f"i{i}" for i in range(6)], "idx": np.arange(6, dtype=np.int32)})
LISTS = {
    "popularity": _lists({0: 5, 1: 5, 2: 4, 3: 4, 4: 4}),
    "als": _lists({0: 2, 1: 3, 2: 5, 3: 5, 4: 5}),
}


def _evaluate(test: pd.DataFrame = TEST, min_segment_users: int = 3, history: pd.DataFrame | None = None):
    settings = EvaluationSettings(
        ks=(1,),
        seed=0,
        cold_max_interactions=5,
        rating_weight=0.0,
        baseline=None,
        bootstrap_samples=50,
        alpha=0.05,
        min_segment_users=min_segment_users,
        relevant_event_types=None,
        min_rating=None,
    )
    splits = EvaluationSplits(TRAIN, TRAIN.iloc[:0], test, None, ITEM_MAP)
    return evaluate_run(splits, LISTS, None, {}, settings, "r1", history)


def _rows(metrics: pd.DataFrame, segment: str, metric: str = "ndcg") -> pd.DataFrame:
    return metrics[(metrics["segment"] == segment) & (metrics["metric"] == metric)].set_index("model")


def test_the_headline_excludes_new_users_and_picks_its_baseline_there() -> None:
    result = _evaluate()
    metrics = result.metrics
    assert _rows(metrics, "all")["value"].to_dict() == pytest.approx({"popularity": 0.6, "als": 0.4})
    assert _rows(metrics, "with_history")["value"].to_dict() == {"popularity": 0.0, "als": 1.0}
    assert result.headline_segment == "with_history"
    assert "`with_history`" in result.summary and "| als | 2 |" in result.summary
    # the baseline is chosen on the users with history; on all it would have been popularity
    assert result.baseline == "als"
    families = {"popularity": "baseline", "als": "factorisation"}
    assert choose_baseline(metrics[metrics["segment"] != "with_history"], 1, families) == "popularity"
    assert result.users_per_segment == {
        "all": 5,
        "with_history": 2,
        "cold": 2,
        "new_users": 3,
        "light": 2,  # one row each: both at the terciles, so no medium or heavy users
    }


def test_without_users_with_history_the_headline_falls_back_to_all() -> None:
    result = _evaluate(TEST[TEST["user_idx"] >= 2])  # only the new users have relevant items
    assert "with_history" not in set(result.metrics["segment"])
    assert result.headline_segment == "all" and "none has history" in result.summary
    assert result.baseline == "popularity" and _rows(result.metrics, "all")["value"]["popularity"] == 1.0


def test_small_segments_are_flagged_and_not_tested() -> None:
    result = _evaluate(min_segment_users=3)
    ndcg = result.metrics[result.metrics["metric"] == "ndcg"]
    flagged = ndcg.groupby("segment")["flagged"].agg(["all", "any"])
    # with_history, cold and light have 2 users (< 3): flagged; all (5) and new_users (3): not
    assert flagged["all"].to_dict() == {
        "all": False,
        "cold": True,
        "new_users": False,
        "with_history": True,
        "light": True,
    }
    assert flagged["all"].equals(flagged["any"])  # one flag per segment here (same users for every row)
    assert set(result.significance["segment"]) == {"all", "new_users"}
    # the headline segment is too small to test: nothing is shown, nothing is significantly better
    assert "| als |" not in result.significance_shown and result.significantly_better == []
    # with the bar at 2 every user segment is tested
    tested = set(_evaluate(min_segment_users=2).significance["segment"])
    assert tested == {"all", "with_history", "cold", "new_users"}


def test_new_users_rows_name_who_served_them() -> None:
    served = new_users_served_by(["als", "popularity", "random"], ["my_lists"])
    assert served == {
        "als": "popularity",
        "popularity": "popularity",
        "random": "random",
        "my_lists": "my_lists",
    }
    metrics = _evaluate().metrics
    assert _rows(metrics, "new_users")["served_by"].to_dict() == {
        "popularity": "popularity",
        "als": "popularity",
    }
    # every other row was served by the model itself
    others = metrics[metrics["segment"] != "new_users"]
    assert (others["served_by"] == others["model"]).all()
    per_user = _evaluate().per_user
    als = per_user[per_user["model"] == "als"].set_index("user_idx")["served_by"]
    assert als.to_dict() == {0: "als", 1: "als", 2: "popularity", 3: "popularity", 4: "popularity"}


def test_history_fills_served_by_of_older_runs_and_gates_on_users_with_history() -> None:
    # a run from before served_by and with_history: segment all only
    old = pd.DataFrame(
        {
            "run_id": "r0",
            "as_of": "2026-10-01",
            "model": ["als", "popularity"],
            "segment": "all",
            "metric": "ndcg",
            "k": 1,
            "value": [0.4, 0.6],
        }
    )
    earlier = _evaluate(history=old).history
    assert earlier.loc[earlier["run_id"] == "r0", "served_by"].tolist() == ["als", "popularity"]
    # a later run: als falls on the users with history (1.0 -> 0.5), its all value is unchanged (0.4)
    later = _evaluate().metrics.assign(run_id="r2")
    drop = (later["model"] == "als") & (later["segment"] == "with_history") & (later["metric"] == "ndcg")
    later.loc[drop, "value"] = 0.5
    history = append_history(earlier, later)
    assert history["run_id"].unique().tolist() == ["r0", "r1", "r2"]
    report = regression_report(history, "ndcg", 1, tolerance=0.1, n_runs=3).set_index("model")
    # r0 has no with_history rows: the median is r1's alone
    assert report.loc["als", "median"] == 1.0 and report.loc["als", "regressed"]
    assert report["n_runs"].tolist() == [1, 1] and not report.loc["popularity", "regressed"]
    assert not regression_report(history, "ndcg", 1, 0.1, 3, segment="all")["regressed"].any()
