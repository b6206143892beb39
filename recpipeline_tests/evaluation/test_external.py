"""Bring-your-own recommendations: list cleaning, clear errors, and `recpipeline evaluate` on files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recpipeline.cli import main
from recpipeline.evaluation.external import (
    ExternalDataError,
    clean_recommendations,
    evaluate_files,
    read_recommendations,
    recommendation_files,
)
from recpipeline.evaluation.protocol import evaluate_models, prepare_evaluation

USERS = pd.DataFrame({"id": ["u1", "u2"], "idx": np.array([0, 1], np.int32)})
ITEMS = pd.DataFrame({"id": ["a", "b", "c", "d"], "idx": np.array([0, 1, 2, 3], np.int32)})


def _write(path: Path, frame: pd.DataFrame) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def test_bad_lists_are_cleaned_and_counted(tmp_path) -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1", "u1", "u2", "u2", "ghost", "u2"],
            "item_id": ["b", "a", "b", "c", "d", "zzz", "a", "a", "c"],
            "rank": [2, 1, 3, 4, 5, 1, 2, 1, 3],
        }
    )
    path = _write(tmp_path / "lists.csv", frame)
    table, issues = clean_recommendations(read_recommendations(path), "lists", 3, USERS, ITEMS)
    assert issues.duplicates == 1  # u1's second "b"
    assert issues.truncated_lists == 1 and issues.truncated_rows == 1  # u1: a, b, c kept; d cut
    assert issues.unknown_user_rows == 1 and issues.unknown_item_rows == 1
    got = table.groupby("user_id")["item_id"].apply(list).to_dict()
    assert got == {"u1": ["a", "b", "c"], "u2": ["a", "c"]}  # u2's unknown first item dropped, rest move up
    assert table["rank"].tolist() == [1, 2, 3, 2, 3]
    assert list(table.columns) == ["model", "user_id", "item_id", "user_idx", "item_idx", "rank", "score"]
    messages = issues.messages(str(path), 3)
    assert len(messages) == 5 and all(str(path) in m for m in messages)


def test_score_only_lists_rank_by_descending_score(tmp_path) -> None:
    frame = pd.DataFrame({"user_id": ["u1"] * 3, "item_id": ["c", "a", "b"], "score": [0.5, 0.9, 0.5]})
    path = _write(tmp_path / "scored.parquet", frame)
    table, issues = clean_recommendations(read_recommendations(path), "scored", 10, USERS, ITEMS)
    assert table["item_id"].tolist() == ["a", "b", "c"]  # tie at 0.5 broken by item_id
    assert table["score"].dtype == np.float32 and not any(issues.as_metadata().values())


@pytest.mark.parametrize(
    ("columns", "missing"),
    [(["item_id", "rank"], "user_id"), (["user_id", "rank"], "item_id"), (["user_id", "item_id"], "rank")],
)
def test_missing_column_names_file_and_column(tmp_path, columns, missing) -> None:
    path = _write(tmp_path / "bad.csv", pd.DataFrame({c: ["x"] for c in columns}))
    with pytest.raises(ExternalDataError, match=rf"bad\.csv: missing column '{missing}'"):
        read_recommendations(path)


def test_non_numeric_rank_and_wrong_suffix(tmp_path) -> None:
    path = _write(
        tmp_path / "bad.csv", pd.DataFrame({"user_id": ["u1"], "item_id": ["a"], "rank": ["first"]})
    )
    with pytest.raises(ExternalDataError, match="bad.csv: column 'rank' has 1 empty or non-numeric"):
        read_recommendations(path)
    with pytest.raises(ExternalDataError, match=r"lists\.json: recommendations must be a \.csv or \.parquet"):
        read_recommendations(tmp_path / "lists.json")


def test_folder_listing_rejects_name_clashes(tmp_path) -> None:
    frame = pd.DataFrame({"user_id": ["u1"], "item_id": ["a"], "rank": [1]})
    _write(tmp_path / "mine.csv", frame)
    (tmp_path / "notes.txt").write_text("ignored")
    assert list(recommendation_files(tmp_path, reserved=["als"])) == ["mine"]
    with pytest.raises(ExternalDataError, match="already a configured model"):
        recommendation_files(tmp_path, reserved=["mine"])
    _write(tmp_path / "mine.parquet", frame)
    with pytest.raises(ExternalDataError, match="two files"):
        recommendation_files(tmp_path, reserved=[])


def _interaction_files(tmp_path: Path) -> dict[str, Path]:
    train = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3", "u3"], "item_id": ["a", "b", "a", "c", "d"]})
    test = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u4"],
            "item_id": ["c", "a", "b", "a"],
            "timestamp": ["2026-10-09T10:00:00Z"] * 4,
        }
    )
    features = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "category": ["x", "x", "y", "y"]})
    recs = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u4"],
            "item_id": ["c", "d", "c", "b", "a"],
            "rank": [1, 2, 1, 2, 1],
        }
    )
    return {
        "train": _write(tmp_path / "train.csv", train),
        "test": _write(tmp_path / "test.parquet", test),
        "item_features": _write(tmp_path / "items.csv", features),
        "recommendations": _write(tmp_path / "my_model.csv", recs),
    }


def test_evaluate_files_matches_the_engine_on_indices(tmp_path) -> None:
    files = _interaction_files(tmp_path)
    metrics, issues = evaluate_files(
        files["train"], files["test"], files["recommendations"], [1, 2], item_features=files["item_features"]
    )
    assert not any(issues.as_metadata().values())
    assert set(metrics["model"]) == {"my_model"} and (metrics["as_of"] == "2026-10-10").all()
    # the same case by hand, on indices: users u1..u4 -> 0..3, items a..d -> 0..3
    train = pd.DataFrame({"user_idx": [0, 0, 1, 2, 2], "item_idx": [0, 1, 0, 2, 3]})
    test = pd.DataFrame({"user_idx": [0, 0, 1, 3], "item_idx": [2, 0, 1, 0]})
    recs = pd.DataFrame({"user_idx": [0, 0, 1, 1, 3], "item_idx": [2, 3, 2, 1, 0], "rank": [1, 2, 1, 2, 1]})
    catalog = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "category": ["x", "x", "y", "y"]})
    item_map = pd.DataFrame({"id": ["a", "b", "c", "d"], "idx": np.arange(4)})
    data = prepare_evaluation(train, train.iloc[:0], test, catalog, item_map, 5)
    expected = evaluate_models({"my_model": recs}, data, [1, 2])
    columns = ["model", "segment", "metric", "k", "value", "n_users"]
    pd.testing.assert_frame_equal(metrics[columns], expected[columns])
    hits = metrics[(metrics["segment"] == "all") & (metrics["metric"] == "hit_rate") & (metrics["k"] == 1)]
    assert hits["value"].iloc[0] == pytest.approx(2 / 3)  # u1 (c), u4 (a) hit at rank 1; u2 misses b@1


def test_cli_evaluate_prints_writes_and_fails_clearly(tmp_path, capsys) -> None:
    files = _interaction_files(tmp_path)
    out = tmp_path / "metrics.csv"
    argv = ["evaluate", "--train", str(files["train"]), "--test", str(files["test"])]
    argv += ["--recommendations", str(files["recommendations"]), "--k", "2", "--output", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "## all" in printed and "ndcg@2" in printed and "my_model" in printed
    written = pd.read_csv(out)
    assert list(written.columns) == ["model", "segment", "metric", "k", "value", "n_users", "run_id", "as_of"]

    _write(files["recommendations"], pd.DataFrame({"user_id": ["u1"], "item_id": ["c"]}))
    assert main([*argv[:-2]]) == 2
    assert "my_model.csv: missing column 'rank'" in capsys.readouterr().err
