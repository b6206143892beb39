"""What each model cost to fit and to serve, beside what it scored: the costs table and its words.

The table has one row per model (COST_COLUMNS, each described in COST_COLUMN_DOCS). The verdict sets a
model's accuracy gain against its cost relative to the best non-neural model (``cost_phrase``): the ratio
of CPU time, or of wall time where either model's CPU time was not measured (NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from recpipeline.contracts import COLUMNS

#: the costs table's columns, in order (what each holds: ``contracts.COLUMNS``)
COST_COLUMNS: tuple[str, ...] = (
    "model",
    "fit_s",
    "cpu_s",
    "epochs_run",
    "warm_start_from",
    "score_ms_per_1k_users",
    "model_bytes",
    "peak_rss_mb",
)
#: every column of the costs table, with what it holds
COST_COLUMN_DOCS: dict[str, str] = {column: COLUMNS[column][1] for column in COST_COLUMNS}


@dataclass(frozen=True)
class FitCost:
    """A model's fit time against a reference model's: CPU seconds when both have them, else wall seconds."""

    seconds: float
    reference_seconds: float
    cpu: bool  # False: wall time (a CPU time was not measured)

    @property
    def ratio(self) -> float:
        """seconds / reference_seconds; NaN when the reference took no measurable time."""
        if not self.reference_seconds > 0:
            return math.nan
        return self.seconds / self.reference_seconds

    @property
    def kind(self) -> str:
        return "CPU time" if self.cpu else "wall time"


def format_ratio(ratio: float) -> str:
    """A cost ratio for a sentence: ``0.45×``, ``5.2×``, ``34×``, ``n/a`` when it cannot be computed."""
    if not math.isfinite(ratio) or ratio < 0:
        return "n/a"
    if ratio < 1:
        return f"{ratio:.2g}×"
    if ratio < 10:
        return f"{ratio:.1f}×"
    return f"{ratio:,.0f}×"


def format_seconds(seconds: float) -> str:
    """``0.04 s``, ``2.4 s``, ``123 s``."""
    if seconds < 1:
        return f"{seconds:.2g} s"
    if seconds < 100:
        return f"{seconds:.1f} s"
    return f"{seconds:,.0f} s"


def fit_cost(costs: pd.DataFrame | None, model: str, reference: str) -> FitCost | None:
    """``model``'s fit time against ``reference``'s: CPU seconds when both are measured, else wall seconds;
    None without a costs table, a row for either model, or a fit time for both."""
    if costs is None or costs.empty:
        return None
    rows = costs.drop_duplicates("model", keep="last").set_index("model")
    if model not in rows.index or reference not in rows.index:
        return None
    pair = rows.loc[[model, reference]]
    for column, cpu in (("cpu_s", True), ("fit_s", False)):
        if column in pair and pd.to_numeric(pair[column], errors="coerce").notna().all():
            seconds, reference_seconds = (float(v) for v in pair[column])
            return FitCost(seconds, reference_seconds, cpu)
    return None


def cost_phrase(
    costs: pd.DataFrame | None, model: str, reference: str, difference: float, k: int
) -> str | None:
    """``+0.0100 ndcg@10 at 5.2× ease's CPU time (fit 12.3 s vs 2.4 s)``; ``wall time`` where a CPU time is
    missing; no ratio against a reference that took no measurable time; None when the costs table cannot
    say (no table, no row for either model)."""
    cost = fit_cost(costs, model, reference)
    if cost is None:
        return None
    times = f"fit {format_seconds(cost.seconds)} vs {format_seconds(cost.reference_seconds)}"
    if not math.isfinite(cost.ratio):  # the reference took no measurable time: no ratio to give
        return f"{difference:+.4f} ndcg@{k} against {reference}, {cost.kind} {times}"
    return f"{difference:+.4f} ndcg@{k} at {format_ratio(cost.ratio)} {reference}'s {cost.kind} ({times})"


def costs_summary(costs: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """The costs table as the report shows it: the COST_COLUMNS present, model size in MB instead of bytes,
    rows in ``order`` (the models' accuracy order) when given, then the others."""
    table = costs[[c for c in COST_COLUMNS if c in costs]].drop_duplicates("model", keep="last").copy()
    if "model_bytes" in table:
        table.insert(
            list(table.columns).index("model_bytes"),
            "model_mb",
            pd.to_numeric(table.pop("model_bytes"), errors="coerce") / 1e6,
        )
    if "warm_start_from" in table:
        table["warm_start_from"] = table["warm_start_from"].astype("string").fillna("").astype(str)
    if order is not None:
        rank = {m: i for i, m in enumerate(order)}
        table = table.sort_values(
            "model", key=lambda s: s.map(lambda m: rank.get(m, len(rank))), kind="stable"
        )
    return table.reset_index(drop=True)
