"""Human-readable summaries of metric tables (Markdown for the Dagster UI and the CLI)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""

    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else float_format.format(value)
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def metrics_summary(metrics: pd.DataFrame, segment: str = "all") -> pd.DataFrame:
    """One row per model, one column per ``metric@k``, for a segment; sorted by the first ndcg column."""
    rows = metrics[metrics["segment"] == segment]
    wide = rows.pivot_table(index="model", columns=["metric", "k"], values="value", sort=False)
    wide.columns = [f"{metric}@{k}" for metric, k in wide.columns]
    ndcg = [c for c in wide.columns if c.startswith("ndcg@")]
    if ndcg:
        wide = wide.sort_values(ndcg[0], ascending=False)
    return wide.reset_index()
