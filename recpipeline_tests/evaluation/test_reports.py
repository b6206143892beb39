"""The summary tables and the HTML / Markdown report on a small crafted evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recpipeline.evaluation.history import append_history
from recpipeline.evaluation.reports import ReportInputs, metrics_summary, report_html, report_markdown
from recpipeline.evaluation.significance import significance_table


def _metrics(run_id: str, scale: float) -> pd.DataFrame:
    rows = [
        (model, segment, metric, k, value * scale, 40)
        for model, value in (("popularity", 0.1), ("als", 0.2))
        for segment in ("all", "warm")
        for metric in ("ndcg", "recall", "novelty", "catalog_coverage")
        for k in (5, 10)
    ]
    rows += [("als", "all", "rmse", 0, 0.9, 30)]
    table = pd.DataFrame(rows, columns=["model", "segment", "metric", "k", "value", "n_users"])
    return table.assign(run_id=run_id, as_of="2026-10-28")


def _per_user() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for model, shift in (("popularity", 0.0), ("als", 0.1)):
        values = rng.uniform(0, 0.4, (40, 4)) + shift
        frame = pd.DataFrame(values, columns=["ndcg@5", "ndcg@10", "recall@5", "recall@10"])
        segment = np.where(np.arange(40) < 30, "warm", "cold")
        frames.append(frame.assign(model=model, user_idx=np.arange(40), user_segment=segment))
    return pd.concat(frames, ignore_index=True)


def test_metrics_summary_names_cutoff_free_metrics_and_counts_users() -> None:
    summary = metrics_summary(_metrics("r1", 1.0), ks=(10,))
    assert list(summary["model"]) == ["als", "popularity"]  # by ndcg@10, best first
    expected = {"model", "n_users", "ndcg@10", "recall@10", "novelty@10", "catalog_coverage@10", "rmse"}
    assert set(summary.columns) == expected and summary.columns[:2].tolist() == ["model", "n_users"]
    assert summary["n_users"].tolist() == [40, 40]


def test_report_embeds_plots_tables_and_history() -> None:
    history = append_history(append_history(None, _metrics("r1", 1.1)), _metrics("r2", 1.0))
    per_user = _per_user()
    inputs = ReportInputs(
        metrics=_metrics("r2", 1.0),
        significance=significance_table(per_user, "popularity", (5, 10), n_boot=100, alpha=0.05, seed=0),
        per_user=per_user,
        history=history,
        families={"popularity": "baseline", "als": "factorisation"},
        ks=(5, 10),
        n_boot=100,
    )
    page = report_html(inputs)
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 3
    assert "<h3>warm</h3>" in page and "ndcg@5" in page and "p_holm" in page
    markdown = report_markdown(inputs)
    assert "### all" in markdown and "| als | 40 |" in markdown and "ndcg@10" in markdown
    assert "baseline: `popularity`" in markdown


def test_the_verdict_opens_the_report_with_or_without_the_new_columns() -> None:
    per_user = _per_user()
    metrics = _metrics("r1", 1.0)
    newer = metrics.assign(served_by=metrics["model"], flagged=False)
    for table in (metrics, newer):  # history rows written before served_by / flagged existed lack them
        inputs = ReportInputs(
            metrics=table,
            significance=significance_table(per_user, "popularity", (5, 10), n_boot=100, alpha=0.05, seed=0),
            per_user=per_user,
            history=append_history(None, metrics),
            families={"popularity": "baseline", "als": "factorisation"},
            ks=(5, 10),
            n_boot=100,
        )
        winner = "Winner on all (40 users), by ndcg@10: als (factorisation) at 0.2000."
        page = report_html(inputs)
        verdict = page.index("<h2>Verdict</h2>")
        assert f"<li>{winner}</li>" in page and verdict < page.index("<img") < page.index("<h2>Significance")
        markdown = report_markdown(inputs)
        assert markdown.index(f"## Verdict\n\n- {winner}") < markdown.index("## Metrics at K=10")
