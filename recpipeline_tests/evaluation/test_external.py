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
            "user_id": ["u1", "u1", "u1", "u1", "u1", "u2", "u2", "ghost", "u2", "u2"],
            "item_id": ["b", "a", "b", "c", "d", "zzz", "a", "a", "c", "a"],
            "rank": [2, 1, 3, 4, 5, 1, 2, 1, 3, 2],
        }
    )
    path = _write(tmp_path / "lists.csv", frame)
    table, issues = clean_recommendations(read_recommendations(path), "lists", 3, USERS, ITEMS)
    assert issues.repeated_rows == 1  # u2's "a" at rank 2 twice: one slot
    assert issues.duplicates == 1  # u1's second "b", kept in its slot
    assert issues.truncated_lists == 1 and issues.truncated_rows == 2  # u1: a, b, b kept; c, d cut
    assert issues.unknown_user_rows == 1 and issues.unknown_item_rows == 1
    got = table.groupby("user_id")["item_id"].apply(list).to_dict()
    assert got == {"u1": ["a", "b", "b"], "u2": ["zzz", "a", "c"]}  # every slot keeps its rank
    assert table["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    assert table["item_idx"].tolist() == [0, 1, 1, 4, 0, 2]  # zzz: past the item map, never relevant
    assert list(table.columns) == ["model", "user_id", "item_id", "user_idx", "item_idx", "rank", "score"]
    messages = issues.messages(str(path), 3)
    assert len(messages) == 6 and all(str(path) in m for m in messages)


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
    metrics, warnings = evaluate_files(
        files["train"], files["test"], files["recommendations"], [1, 2], item_features=files["item_features"]
    )
    assert warnings == []
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
    assert list(written.columns) == [
        *("model", "segment", "metric", "k", "value", "n_users", "served_by", "flagged"),
        *("run_id", "as_of"),
    ]
    assert (written["served_by"] == "my_model").all()  # a list from a file served its new users itself

    _write(files["recommendations"], pd.DataFrame({"user_id": ["u1"], "item_id": ["c"]}))
    assert main([*argv[:-2]]) == 2
    assert "my_model.csv: missing column 'rank'" in capsys.readouterr().err


def _one_user_case(tmp_path: Path, items: list[str]) -> float:
    """ndcg@3 of the list ``items`` for u1, whose relevant test items are b and c (train: a)."""
    _write(tmp_path / "train.csv", pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "a"]}))
    _write(tmp_path / "test.csv", pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["b", "c"]}))
    recs = _write(tmp_path / "recs.csv", pd.DataFrame({"user_id": "u1", "item_id": items, "rank": [1, 2, 3]}))
    metrics, _ = evaluate_files(tmp_path / "train.csv", tmp_path / "test.csv", recs, [3])
    return _metric(metrics, "ndcg", 3)


def _metric(metrics: pd.DataFrame, name: str, k: int) -> float:
    row = metrics[(metrics["segment"] == "all") & (metrics["metric"] == name) & (metrics["k"] == k)]
    return float(row["value"].iloc[0])


def test_unknown_and_repeated_items_are_misses_at_their_rank(tmp_path) -> None:
    ideal = 1 + 1 / np.log2(3)  # two relevant items: IDCG@3 = 1/log2(2) + 1/log2(3) = 1.6309
    assert _one_user_case(tmp_path, ["b", "c", "a"]) == pytest.approx(1.0)
    # unknown zzz at rank 1: b and c stay at ranks 2 and 3 (0.6309 + 0.5) / 1.6309 = 0.6934, not 1.0
    assert _one_user_case(tmp_path, ["zzz", "b", "c"]) == pytest.approx((1 / np.log2(3) + 0.5) / ideal)
    assert _one_user_case(tmp_path, ["zzz", "b", "c"]) == pytest.approx(0.693426, abs=1e-6)
    # b repeated at rank 2: only its first slot can hit, c stays at rank 3: (1 + 0.5) / 1.6309 = 0.9197
    assert _one_user_case(tmp_path, ["b", "b", "c"]) == pytest.approx(1.5 / ideal)
    # the same rule as the engine's on indices (items a, b, c, zzz -> 0, 1, 2, 3)
    recs = pd.DataFrame({"user_idx": [0, 0, 0], "item_idx": [3, 1, 2], "rank": [1, 2, 3]})
    train = pd.DataFrame({"user_idx": [0, 1], "item_idx": [0, 0]})
    test = pd.DataFrame({"user_idx": [0, 0], "item_idx": [1, 2]})
    item_map = pd.DataFrame({"id": ["a", "b", "c"], "idx": np.arange(3)})
    data = prepare_evaluation(train, train.iloc[:0], test, None, item_map, 5)
    assert _metric(evaluate_models({"m": recs}, data, [3]), "ndcg", 3) == pytest.approx(0.693426, abs=1e-6)


@pytest.mark.parametrize("empty", ["train", "test", "recommendations"])
def test_empty_inputs_are_refused_naming_the_file(tmp_path, capsys, empty) -> None:
    files = _interaction_files(tmp_path)
    header_only = (
        pd.read_csv(files[empty]) if files[empty].suffix == ".csv" else pd.read_parquet(files[empty])
    )
    _write(files[empty], header_only.iloc[:0])
    with pytest.raises(ExternalDataError, match=rf"{files[empty].name}: the .* file has no rows"):
        evaluate_files(files["train"], files["test"], files["recommendations"], [2])
    argv = ["evaluate", "--train", str(files["train"]), "--test", str(files["test"])]
    assert main([*argv, "--recommendations", str(files["recommendations"]), "--k", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"recpipeline: {files[empty]}: the ") and err.count("\n") == 1


def test_nothing_to_score_is_refused(tmp_path) -> None:
    files = _interaction_files(tmp_path)
    # every test item already seen in train: nobody has a relevant item
    _write(files["test"], pd.DataFrame({"user_id": ["u1"], "item_id": ["a"]}))
    with pytest.raises(ExternalDataError, match="test.parquet: no test row is an item its user had not"):
        evaluate_files(files["train"], files["test"], files["recommendations"], [2])
    files = _interaction_files(tmp_path)
    _write(files["recommendations"], pd.DataFrame({"user_id": ["x", "y"], "item_id": ["a", "b"], "rank": 1}))
    with pytest.raises(ExternalDataError, match="my_model.csv: no list is for a user of train"):
        evaluate_files(files["train"], files["test"], files["recommendations"], [2])


def test_cli_evaluate_warns_with_counts(tmp_path, capsys) -> None:
    files = _interaction_files(tmp_path)
    # evaluated users u1 (test c), u2 (test b), u4 (test a); u2 gets no list; u1's list holds a (train),
    # an unknown item and c twice
    recs = pd.DataFrame(
        {"user_id": ["u1"] * 4 + ["u4"], "item_id": ["a", "zzz", "c", "c", "a"], "rank": [1, 2, 3, 4, 1]}
    )
    _write(files["recommendations"], recs)
    argv = ["evaluate", "--train", str(files["train"]), "--test", str(files["test"])]
    assert main([*argv, "--recommendations", str(files["recommendations"]), "--k", "4"]) == 0
    captured = capsys.readouterr()
    path = files["recommendations"]
    warnings = [line.removeprefix(f"recpipeline: warning: {path}: ") for line in captured.err.splitlines()]
    assert warnings == [
        "1 repeated (user, item) rows in the top K, each a miss at its rank",
        "1 rows of items not in the evaluation's data, each a miss at its rank",
        "1 of 3 evaluated users (with a relevant test item) have no list; each is scored as zero",
        "1 list rows hold an item the user already had in train or validation "
        "(never relevant: each is a miss)",
    ]
    # u1: c hits at rank 3 (not 2), u2 scores zero, u4: a hits at 1 -> mean mrr@4 = (1/3 + 0 + 1) / 3
    assert "| my_model |" in captured.out
    metrics, _ = evaluate_files(files["train"], files["test"], path, [4])
    assert _metric(metrics, "mrr", 4) == pytest.approx((1 / 3 + 0 + 1) / 3)
    # no test item is new: segment new_items has no users, so only its exposure row (over all users)
    assert set(metrics.loc[metrics["segment"] == "new_items", "metric"]) == {"exposure_share"}
    assert (metrics["n_users"] > 0).all()
