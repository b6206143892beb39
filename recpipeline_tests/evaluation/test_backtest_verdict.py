"""The verdict over time from per-cut tables: wins / ties / losses, the interval over cuts, the trend."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from recpipeline.evaluation.backtest import backtest_summary, backtest_table, verdict_over_time

FAMILIES = {"ease": "linear", "mult_vae": "neural"}


def _cut(vae: float, diff: float, significant: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = pd.DataFrame(
        {
            "model": ["ease", "mult_vae"],
            "segment": "with_history",
            "metric": "ndcg",
            "k": 10,
            "value": [vae - diff, vae],
            "n_users": 100,
        }
    )
    significance = pd.DataFrame(
        {
            "segment": ["with_history"],
            "model": ["mult_vae"],
            "baseline": ["ease"],
            "metric": ["ndcg"],
            "k": [10],
            "n_users": [100],
            "mean_diff": [diff],
            "ci_low": [diff - 0.01],
            "ci_high": [diff + 0.01],
            "p_value": [0.001 if significant else 0.5],
            "p_holm": [0.001 if significant else 0.5],
            "significant": [significant],
            "mde": [0.02],
        }
    )
    return metrics, significance


CUTS = {
    "2026-10-05": _cut(0.30, 0.03, True),
    "2026-10-12": _cut(0.31, 0.01, False),
    "2026-10-19": _cut(0.29, -0.02, True),
    "2026-10-26": _cut(0.33, 0.04, True),
}


def test_the_summary_counts_each_cut_and_puts_an_interval_over_the_cuts():
    table = backtest_table(CUTS, FAMILIES)
    assert sorted(table["cut_date"].unique()) == sorted(CUTS)
    (row,) = backtest_summary(table).itertuples()
    assert (row.model, row.wins, row.ties, row.losses, row.n_cuts) == ("mult_vae", 2, 1, 1, 4)
    diffs = np.array([0.03, 0.01, -0.02, 0.04])
    half = stats.t.ppf(0.975, 3) * diffs.std(ddof=1) / 2
    assert np.isclose(row.mean_diff, diffs.mean()) and np.isclose(row.ci_low, diffs.mean() - half)
    assert np.isclose(row.trend_per_cut, stats.linregress(np.arange(4), diffs).slope)


def test_the_words_say_how_often_anything_beat_the_baseline():
    table = backtest_table(CUTS, FAMILIES)
    lines = verdict_over_time(table, backtest_summary(table), 10)
    assert lines[0] == "4 cut(s) from 2026-10-05 to 2026-10-26, ndcg@10 on with_history, against ease."
    assert lines[1].startswith("Some model beat ease significantly in 2 of 4 cut(s)")
    assert lines[3] == "Mean ndcg@10 over the cuts: mult_vae 0.3075, ease 0.2925."
    assert "mult_vae (neural): 2 significant win(s), 1 tie(s), 1 loss(es) in 4 cut(s)" in lines[4]
    assert "not distinguishable from ease" in lines[4]
