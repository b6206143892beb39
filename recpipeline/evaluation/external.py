"""Bring your own recommendations: top-K lists from files, scored with the pipeline's own metric engine.

A list file (CSV or Parquet) has columns ``user_id``, ``item_id`` and ``rank`` (1 = best) or ``score``
(higher = better). Lists are cleaned the same way everywhere, with every change counted:

* rows are ordered by rank (or descending score), ties by item_id; a row repeated with the same rank (or
  score) is one slot, its copies dropped (``repeated_rows``); the n-th row of a list is then its rank n;
* lists longer than K are cut to their first K rows (``truncated_lists`` / ``truncated_rows``);
* every slot keeps its rank, as in the metric engine: a repeated (user, item) row (``duplicates``) and an
  item the evaluation does not know (``unknown_item_rows``) stay in the list as misses, so the items after
  them do not move up; an unknown item counts as a recommended item outside the item base (left out of
  coverage and gini, counted in ``exposure_share``; novelty as an item unseen in training);
* rows of users the evaluation does not know are dropped (``unknown_user_rows``): nobody is scored on them.

Interaction files (train, optional validation, test) have ``user_id`` and ``item_id``; other columns are
ignored, except that the relevance options read the test file's ``event_type`` (``relevant_event_types``)
and ``rating`` (``min_rating``; without ``event_type`` every row with a rating is a rating event). An item
features file has ``item_id`` and ``category``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from recpipeline.contracts import TABLE_SUFFIXES, headline_k, table_files
from recpipeline.evaluation.protocol import EvaluationData, evaluate_models, prepare_evaluation
from recpipeline.fitting.recommending import RECOMMENDATION_COLUMNS
from recpipeline.preparation.splitting import as_of
from recpipeline.scoring.metrics import isin_ids
from recpipeline.scoring.relevance import RelevanceRule

ID_COLUMNS = ("user_id", "item_id")


class ExternalDataError(ValueError):
    """A bad input file; the message names the file and the column."""


@dataclass
class ListIssues:
    """Rows cut, dropped or kept as misses while cleaning one recommendations file."""

    repeated_rows: int = 0
    duplicates: int = 0
    truncated_lists: int = 0
    truncated_rows: int = 0
    unknown_user_rows: int = 0
    unknown_item_rows: int = 0

    def messages(self, source: str, k: int) -> list[str]:
        text = {
            "repeated_rows": "copies of a row (same user, item and rank or score) dropped",
            "duplicates": "repeated (user, item) rows in the top K, each a miss at its rank",
            "truncated_lists": f"lists longer than K={k} truncated",
            "truncated_rows": f"rows beyond K={k} dropped",
            "unknown_user_rows": "rows of users not in the evaluation's data dropped",
            "unknown_item_rows": "rows of items not in the evaluation's data, each a miss at its rank",
        }
        return [f"{source}: {count} {text[name]}" for name, count in asdict(self).items() if count]

    def as_metadata(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


def read_table(path: Path, required: Sequence[str], what: str) -> pd.DataFrame:
    """A CSV or Parquet file with ``required`` columns and at least one row; ids are read as strings."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise ExternalDataError(f"{path}: {what} must be a .csv or .parquet file")
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS})
        else:
            frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ExternalDataError(f"{path}: cannot read {what}: {exc}") from None
    if frame.empty:
        # scored anyway, an empty file would look like a real result (every metric 0.0, or NaN)
        raise ExternalDataError(f"{path}: the {what} file has no rows; nothing to evaluate")
    for column in required:
        if column not in frame.columns:
            raise ExternalDataError(
                f"{path}: missing column {column!r} in {what} (expected {', '.join(required)}; "
                f"found {', '.join(map(str, frame.columns))})"
            )
    for column in ID_COLUMNS:
        if column in frame.columns:
            if frame[column].isna().any():
                raise ExternalDataError(
                    f"{path}: column {column!r} has {frame[column].isna().sum()} empty values"
                )
            frame[column] = frame[column].astype(str)
    return frame


def read_recommendations(path: Path) -> pd.DataFrame:
    """A recommendations file: user_id, item_id and a numeric ``rank`` or ``score`` column."""
    frame = read_table(path, ID_COLUMNS, "recommendations")
    order_by = "rank" if "rank" in frame.columns else "score" if "score" in frame.columns else None
    if order_by is None:
        raise ExternalDataError(
            f"{path}: missing column 'rank' (or 'score') in recommendations (expected user_id, item_id and "
            f"rank or score; found {', '.join(map(str, frame.columns))})"
        )
    values = pd.to_numeric(frame[order_by], errors="coerce")
    if values.isna().any():
        raise ExternalDataError(
            f"{path}: column {order_by!r} has {int(values.isna().sum())} empty or non-numeric values"
        )
    frame[order_by] = values.astype(np.float64)
    return frame


def clean_recommendations(
    frame: pd.DataFrame, model: str, k: int, user_map: pd.DataFrame, item_map: pd.DataFrame
) -> tuple[pd.DataFrame, ListIssues]:
    """Lists of ``read_recommendations`` in the recommendations contract, with the rows changed counted.

    user_map / item_map: id maps (``id`` str, ``idx`` int); rank becomes 1..K after cleaning. An unknown
    item gets an index past the item map (one per item id), which no test item has: a miss at its rank.
    """
    issues = ListIssues()
    by_rank = "rank" in frame.columns
    key = frame["rank"] if by_rank else -frame["score"]
    lists = frame.assign(_key=key.to_numpy(np.float64)).sort_values(
        ["user_id", "_key", "item_id"], kind="stable"
    )
    repeated = lists.duplicated(["user_id", "item_id", "_key"])
    issues.repeated_rows = int(repeated.sum())
    lists = lists[~repeated]
    position = lists.groupby("user_id", sort=False).cumcount().to_numpy()
    too_long = position >= k
    issues.truncated_lists = int(lists.loc[too_long, "user_id"].nunique())
    issues.truncated_rows = int(too_long.sum())
    lists, position = lists[~too_long], position[~too_long]

    user_idx = lists["user_id"].map(user_map.set_index("id")["idx"])
    item_idx = lists["item_id"].map(item_map.set_index("id")["idx"])
    known = user_idx.notna().to_numpy()
    unknown_item = item_idx.isna().to_numpy() & known
    issues.unknown_user_rows = int((~known).sum())
    issues.unknown_item_rows = int(unknown_item.sum())
    issues.duplicates = int(lists[known].duplicated(["user_id", "item_id"]).sum())
    codes, _ = pd.factorize(lists["item_id"].to_numpy()[unknown_item])
    item_idx = item_idx.to_numpy(np.float64, copy=True)
    item_idx[unknown_item] = int(np.max(item_map["idx"].to_numpy(), initial=-1)) + 1 + codes
    score = lists["score"] if "score" in lists.columns else pd.Series(np.nan, index=lists.index)
    table = pd.DataFrame(
        {
            "model": model,
            "user_id": lists["user_id"].to_numpy()[known],
            "item_id": lists["item_id"].to_numpy()[known],
            "user_idx": user_idx.to_numpy()[known].astype(np.int32),
            "item_idx": item_idx[known].astype(np.int32),
            "rank": (position[known] + 1).astype(np.int64),
            "score": score.to_numpy(np.float32)[known],
        }
    )
    return table[list(RECOMMENDATION_COLUMNS)], issues


def recommendation_files(folder: Path, reserved: Collection[str]) -> dict[str, Path]:
    """The recommendation files of a folder by model name (the file stem), which must be unique."""
    files: dict[str, Path] = {}
    for path in table_files(folder):
        if path.stem in reserved:
            raise ExternalDataError(
                f"{path}: the name {path.stem!r} is already a configured model; rename the file"
            )
        if path.stem in files:
            raise ExternalDataError(f"{path}: two files for the model name {path.stem!r}")
        files[path.stem] = path
    return files


@dataclass(frozen=True)
class ExternalLists:
    """The cleaned lists of a folder's files, with what cleaning changed."""

    table: pd.DataFrame  # RECOMMENDATION_COLUMNS; column model = the file stem
    counts: dict[str, dict[str, int]]  # model -> rows kept plus ListIssues.as_metadata()
    warnings: list[str]  # one message per kind of change, naming the file


def read_external_lists(
    folder: Path, reserved: Collection[str], k: int, user_id_map: pd.DataFrame, item_id_map: pd.DataFrame
) -> ExternalLists:
    """Every recommendation file of ``folder`` (``recommendation_files``) read and cleaned to top-``k`` lists
    over the run's id maps."""
    tables, counts, warnings = [], {}, []
    for name, path in recommendation_files(folder, reserved).items():
        table, issues = clean_recommendations(read_recommendations(path), name, k, user_id_map, item_id_map)
        warnings += issues.messages(str(path), k)
        tables.append(table)
        counts[name] = {"rows": len(table), **issues.as_metadata()}
    if not tables:
        warnings.append(f"{folder}: no .csv or .parquet recommendation files")
        tables.append(pd.DataFrame(columns=list(RECOMMENDATION_COLUMNS)))
    return ExternalLists(pd.concat(tables, ignore_index=True), counts, warnings)


def _id_map(*columns: pd.Series) -> pd.DataFrame:
    ids = pd.unique(pd.concat(columns, ignore_index=True).astype(str))
    return pd.DataFrame({"id": ids, "idx": np.arange(len(ids), dtype=np.int32)})


def _indexed(frame: pd.DataFrame, user_map: pd.DataFrame, item_map: pd.DataFrame) -> pd.DataFrame:
    """The file's rows plus user_idx / item_idx from the id maps."""
    return frame.assign(
        user_idx=frame["user_id"].map(user_map.set_index("id")["idx"]).astype(np.int32),
        item_idx=frame["item_id"].map(item_map.set_index("id")["idx"]).astype(np.int32),
    )


def _with_relevance_columns(
    test: pd.DataFrame, path: Path, event_types: Sequence[str] | None, min_rating: float | None
) -> tuple[pd.DataFrame, RelevanceRule]:
    """The test rows with the event_type and weight columns a RelevanceRule reads (the weight is the file's
    rating, so its rating weight is 1), and that rule."""
    rule = RelevanceRule(None if event_types is None else tuple(event_types), min_rating)
    for column, needed in (("event_type", event_types is not None), ("rating", min_rating is not None)):
        if needed and column not in test.columns:
            raise ExternalDataError(
                f"{path}: missing column {column!r} in test interactions, needed by the relevance options"
            )
    if "rating" in test.columns:
        rating = pd.to_numeric(test["rating"], errors="coerce")
    else:
        rating = pd.Series(np.nan, index=test.index)
    if "event_type" in test.columns:
        event_type = test["event_type"].astype(str)
    else:
        event_type = pd.Series(np.where(rating.notna(), "rating", ""), index=test.index)
    return test.assign(event_type=event_type, weight=rating), rule


def evaluate_files(
    train: Path,
    test: Path,
    recommendations: Path,
    ks: Sequence[int],
    item_features: Path | None = None,
    validation: Path | None = None,
    cold_max_interactions: int = 5,
    relevant_event_types: Sequence[str] | None = None,
    min_rating: float | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The metrics table of one recommendations file, as the pipeline computes it (docs/metrics.md), and
    the warnings about its lists (``ListIssues``, users without a list, items the user already had).

    Relevant items are the test items a user had not interacted with in train or validation, among the test
    rows the relevance options keep (``relevant_event_types``, ``min_rating``: see the module docstring);
    novelty counts come from train, the item base of coverage and gini from train and validation. The model
    name is the recommendations file's stem. Empty files, lists of no known user and a test window without
    a relevant item raise ``ExternalDataError``.
    """
    frames = {
        name: read_table(path, ID_COLUMNS, f"{name} interactions")
        for name, path in (("train", train), ("validation", validation), ("test", test))
        if path is not None
    }
    frames.setdefault("validation", frames["train"].iloc[:0])
    catalog = read_table(item_features, ("item_id", "category"), "item features") if item_features else None
    user_map = _id_map(*(f["user_id"] for f in frames.values()))
    item_ids = [f["item_id"] for f in frames.values()] + ([catalog["item_id"]] if catalog is not None else [])
    item_map = _id_map(*item_ids)
    splits = {name: _indexed(frame, user_map, item_map) for name, frame in frames.items()}
    test_rows, rule = _with_relevance_columns(splits["test"], test, relevant_event_types, min_rating)

    data = prepare_evaluation(
        splits["train"], splits["validation"], test_rows, catalog, item_map, cold_max_interactions, rule
    )
    model = Path(recommendations).stem
    if data.user_segment.empty:
        raise ExternalDataError(
            f"{test}: no test row is an item its user had not already had in train or validation; "
            "nothing is relevant, so nothing can be scored"
        )
    recs, issues = clean_recommendations(
        read_recommendations(recommendations), model, headline_k(ks), user_map, item_map
    )
    if recs.empty:
        raise ExternalDataError(
            f"{recommendations}: no list is for a user of train, validation or test; check the user ids"
        )
    warnings = issues.messages(str(recommendations), headline_k(ks))
    warnings += list_warnings(recs, data, pd.concat([splits["train"], splits["validation"]]), recommendations)
    metrics = evaluate_models({model: recs}, data, ks)
    metrics["run_id"] = uuid.uuid4().hex
    end = as_of(frames["test"]["timestamp"]) if "timestamp" in frames["test"].columns else None
    metrics["as_of"] = "" if end is None else str(end.date())
    return metrics, warnings


def list_warnings(recs: pd.DataFrame, data: EvaluationData, known: pd.DataFrame, source: Path) -> list[str]:
    """Counts the metrics hide: evaluated users without a list (scored as zero) and list rows holding an
    item the user already had before the test window (``known``: user_idx, item_idx), never relevant."""
    users = data.user_segment.index.to_numpy(np.int64)
    listed = recs["user_idx"].to_numpy(np.int64)
    without = int((~isin_ids(users, listed)).sum())
    width = int(max(recs["item_idx"].max(), known["item_idx"].max())) + 1
    pairs = listed * width + recs["item_idx"].to_numpy(np.int64)
    seen = known["user_idx"].to_numpy(np.int64) * width + known["item_idx"].to_numpy(np.int64)
    n_seen = int(isin_ids(pairs, seen).sum())
    warnings = []
    if without:
        warnings.append(
            f"{source}: {without} of {len(users)} evaluated users (with a relevant test item) have no list; "
            "each is scored as zero"
        )
    if n_seen:
        warnings.append(
            f"{source}: {n_seen} list rows hold an item the user already had in train or validation "
            "(never relevant: each is a miss)"
        )
    return warnings


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a table as CSV or Parquet, by the file's suffix."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise ExternalDataError(f"{path}: the output must be a .csv or .parquet file")
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
