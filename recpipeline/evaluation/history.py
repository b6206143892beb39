"""Metric history across runs, and the regression gate over it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recpipeline.evaluation.protocol import headline_segment

HISTORY_COLUMNS = ("run_id", "as_of", "model", "segment", "metric", "k", "value", "served_by")
REGRESSION_COLUMNS = ("model", "value", "median", "floor", "n_runs", "regressed")


def _with_served_by(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of runs from before column ``served_by`` existed were labelled with the model alone: that."""
    if "served_by" in table.columns:
        return table
    return table.assign(served_by=table["model"])


def append_history(previous: pd.DataFrame | None, metrics: pd.DataFrame) -> pd.DataFrame:
    """``previous`` history plus this run's metric rows; rows of the same run_id are replaced (idempotent)."""
    current = _with_served_by(metrics)[list(HISTORY_COLUMNS)]
    if previous is None or previous.empty:
        return current.reset_index(drop=True)
    kept = _with_served_by(previous[~previous["run_id"].isin(current["run_id"].unique())])
    return pd.concat([kept[list(HISTORY_COLUMNS)], current], ignore_index=True)


def run_order(history: pd.DataFrame) -> list[str]:
    """Run ids in the order they were appended (the latest last)."""
    return list(pd.unique(history["run_id"]))


def regression_report(
    history: pd.DataFrame, metric: str, k: int, tolerance: float, n_runs: int, segment: str | None = None
) -> pd.DataFrame:
    """The latest run's ``metric@k`` per model against its median over up to ``n_runs`` earlier runs.

    ``segment``: None = the latest run's headline segment (``with_history``, else ``all``); runs from
    before that segment existed have no rows in it, so they do not count. ``regressed`` when the value is
    below ``(1 - tolerance) * median``; models without earlier runs pass.
    """
    if segment is None:
        runs = run_order(history)
        segment = headline_segment(history[history["run_id"] == runs[-1]]) if runs else "all"
    rows = history[(history["metric"] == metric) & (history["k"] == k) & (history["segment"] == segment)]
    runs = run_order(rows)
    if not runs:
        return pd.DataFrame(columns=list(REGRESSION_COLUMNS))
    latest = rows[rows["run_id"] == runs[-1]].set_index("model")["value"]
    earlier = rows[rows["run_id"].isin(runs[-1 - n_runs : -1])]
    median = earlier.groupby("model")["value"].median().reindex(latest.index)
    count = earlier.groupby("model")["run_id"].nunique().reindex(latest.index).fillna(0).astype(np.int64)
    floor = (1.0 - tolerance) * median
    report = pd.DataFrame(
        {"value": latest, "median": median, "floor": floor, "n_runs": count, "regressed": latest < floor}
    )
    return report.rename_axis("model").reset_index()[list(REGRESSION_COLUMNS)]
