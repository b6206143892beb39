"""The verdict over time: a rolling-origin backtest's cuts, each model against the baseline cut by cut, and
what each cut's fits cost.

Per cut the tables are the single run's (metrics, significance against that cut's baseline, costs). Across
cuts, per model and comparison (metric, K on the headline segment): significant wins, ties and losses against
the baseline, the mean difference with a 95% t-interval over the cuts (each cut one observation: the cuts'
test windows do not overlap when they are at least ``split.test_days`` apart), and the trend — the slope of
the difference per cut by least squares, with its p-value.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from recpipeline.evaluation.protocol import headline_segment

#: the backtest's table under the storage root (``backtest.parquet``), and its costs
BACKTEST_TABLE = "backtest"
BACKTEST_COSTS_TABLE = "backtest_costs"
BACKTEST_COLUMNS = (
    "cut_date",
    "model",
    "family",
    "metric",
    "k",
    "segment",
    "value",
    "n_users",
    "baseline",
    "diff",
    "ci_low",
    "ci_high",
    "p_holm",
    "significant",
    "mde",
)
SUMMARY_COLUMNS = (
    "model",
    "family",
    "metric",
    "k",
    "segment",
    "n_cuts",
    "wins",
    "ties",
    "losses",
    "mean_diff",
    "ci_low",
    "ci_high",
    "trend_per_cut",
    "trend_p",
)
TESTED = ("ndcg", "recall")


def backtest_table(
    cuts: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], families: Mapping[str, str]
) -> pd.DataFrame:
    """One row per cut, model, tested metric and K on each cut's headline segment: the value and, against
    the cut's baseline, the difference, its interval and Holm-adjusted p (NaN for the baseline itself and
    for untested segments). ``cuts``: cut date -> (metrics, significance) of that cut."""
    frames = []
    for cut, (metrics, significance) in sorted(cuts.items()):
        segment = headline_segment(metrics)
        rows = metrics[(metrics["segment"] == segment) & metrics["metric"].isin(TESTED)]
        rows = rows[["model", "metric", "k", "segment", "value", "n_users"]].copy()
        tests = significance[significance["segment"] == segment]
        tests = tests.rename(columns={"mean_diff": "diff"})
        keep = ["model", "metric", "k", "baseline", "diff", "ci_low", "ci_high", "p_holm", "significant"]
        keep += ["mde"] if "mde" in tests else []
        rows = rows.merge(tests[keep], on=["model", "metric", "k"], how="left")
        rows["baseline"] = rows["baseline"].fillna(tests["baseline"].iloc[0] if len(tests) else "")
        rows.insert(0, "cut_date", cut)
        frames.append(rows)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(BACKTEST_COLUMNS))
    table["family"] = table["model"].map(families)
    for column in BACKTEST_COLUMNS:
        if column not in table:
            table[column] = np.nan
    table["significant"] = table["significant"].astype("boolean")
    table["k"] = table["k"].astype(np.int64)
    return table[list(BACKTEST_COLUMNS)].sort_values(["cut_date", "metric", "k", "model"], ignore_index=True)


def backtest_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and comparison, across the cuts where it was tested against the baseline
    (SUMMARY_COLUMNS)."""
    tested = table.dropna(subset=["diff"])
    rows = []
    for (model, metric, k, segment), group in tested.groupby(["model", "metric", "k", "segment"], sort=True):
        group = group.sort_values("cut_date")
        diff = group["diff"].to_numpy(dtype=np.float64)
        significant = group["significant"].fillna(False).to_numpy(dtype=bool)
        n = len(diff)
        low = high = slope = trend_p = np.nan
        if n >= 2:
            half = stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n)
            low, high = diff.mean() - half, diff.mean() + half
        if n >= 3:
            fit = stats.linregress(np.arange(n), diff)
            slope, trend_p = fit.slope, fit.pvalue
        rows.append(
            {
                "model": model,
                "family": group["family"].iloc[0],
                "metric": metric,
                "k": int(k),
                "segment": segment,
                "n_cuts": n,
                "wins": int((significant & (diff > 0)).sum()),
                "ties": int((~significant).sum()),
                "losses": int((significant & (diff < 0)).sum()),
                "mean_diff": float(diff.mean()),
                "ci_low": low,
                "ci_high": high,
                "trend_per_cut": slope,
                "trend_p": trend_p,
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def verdict_over_time(table: pd.DataFrame, summary: pd.DataFrame, k: int) -> list[str]:
    """The verdict over time in sentences, on ndcg@k: the span, how often anything beat the baseline, then
    each model's record against it."""
    rows = table[(table["metric"] == "ndcg") & (table["k"] == k)]
    cuts = sorted(rows["cut_date"].unique())
    if not cuts:
        return ["No backtest cut has been evaluated yet."]
    baselines = sorted(set(rows["baseline"].dropna()) - {""})
    against = baselines[0] if len(baselines) == 1 else f"each cut's baseline ({', '.join(baselines)})"
    segment = rows["segment"].mode().iloc[0]
    lines = [f"{len(cuts)} cut(s) from {cuts[0]} to {cuts[-1]}, ndcg@{k} on {segment}, against {against}."]
    better = rows[rows["significant"].fillna(False) & (rows["diff"] > 0)]
    winning = sorted(better["cut_date"].unique())
    lines.append(
        f"Some model beat {against} significantly in {len(winning)} of {len(cuts)} cut(s)"
        + (f" ({', '.join(winning)})." if winning and len(winning) <= 6 else ".")
    )
    best = rows.sort_values(["value", "model"], ascending=[False, True]).drop_duplicates("cut_date")
    leaders = best["model"].value_counts()
    lines.append(
        "Highest ndcg per cut: " + ", ".join(f"{model} {count}×" for model, count in leaders.items()) + "."
    )
    means = rows.groupby("model")["value"].mean().sort_values(ascending=False)
    lines.append(
        f"Mean ndcg@{k} over the cuts: "
        + ", ".join(f"{model} {value:.4f}" for model, value in means.items())
        + "."
    )
    if len(baselines) > 1:
        lines.append(
            "The baseline changed between cuts (the best non-neural model of each): set "
            "evaluation.baseline to compare every cut with the same model."
        )
    picked = summary[(summary["metric"] == "ndcg") & (summary["k"] == k)]
    for record in picked.sort_values("mean_diff", ascending=False).itertuples():
        line = (
            f"{record.model} ({record.family}): {record.wins} significant win(s), {record.ties} tie(s), "
            f"{record.losses} loss(es) in {record.n_cuts} cut(s); mean difference {record.mean_diff:+.4f}"
        )
        if np.isfinite(record.ci_low):
            verdict = (
                "above"
                if record.ci_low > 0
                else "below"
                if record.ci_high < 0
                else "not distinguishable from"
            )
            line += f" (95% CI over cuts [{record.ci_low:+.4f}, {record.ci_high:+.4f}]: {verdict} {against})"
        if np.isfinite(record.trend_per_cut):
            drift = "a significant" if record.trend_p < 0.05 else "no significant"
            line += f"; {drift} trend ({record.trend_per_cut:+.4f} per cut, p {record.trend_p:.2f})"
        lines.append(line + ".")
    return lines


def costs_over_time(cuts: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every cut's cost table, with its cut date first."""
    frames = [frame.assign(cut_date=cut) for cut, frame in sorted(cuts.items())]
    if not frames:
        return pd.DataFrame(columns=["cut_date"])
    table = pd.concat(frames, ignore_index=True)
    return table[["cut_date", *[c for c in table.columns if c != "cut_date"]]]
