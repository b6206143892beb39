"""The summary tables and the HTML / Markdown report on a small crafted evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recpipeline.evaluation.history import append_history
from recpipeline.evaluation.reports import (
    ReportInputs,
    metrics_overview,
    metrics_summary,
    report_figures,
    report_html,
    report_markdown,
)
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
    figures = report_figures(inputs)
    page = report_html(inputs, figures)
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 3
    assert "<h3>warm</h3>" in page and "ndcg@5" in page and "p_holm" in page
    markdown = report_markdown(inputs, figures)
    # the Markdown is the report the UI shows: the same three plots as Markdown images
    assert markdown.count("](data:image/png;base64,") == 3
    assert markdown.index("## Verdict") < markdown.index("## Plots") < markdown.index("## Metrics at K=10")
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
        figures = report_figures(inputs)
        page = report_html(inputs, figures)
        verdict = page.index("<h2>Verdict</h2>")
        assert f"<li>{winner}</li>" in page and verdict < page.index("<img") < page.index("<h2>Significance")
        markdown = report_markdown(inputs, figures)
        assert markdown.index(f"## Verdict\n\n- {winner}") < markdown.index("## Metrics at K=10")


def _headline_metrics() -> pd.DataFrame:
    """Two models on with_history and all at K=10, with unrounded values and metrics beyond the headline."""
    metrics = ("ndcg", "recall", "precision", "catalog_coverage", "map", "mrr", "novelty", "gini")
    rows = [
        (model, segment, metric, 10, value + i / 1000 + 1 / 3e5, 40 if segment == "all" else 25)
        for model, value in (("popularity", 0.1), ("ease", 0.2))
        for segment in ("all", "with_history")
        for i, metric in enumerate(metrics)
    ]
    table = pd.DataFrame(rows, columns=["model", "segment", "metric", "k", "value", "n_users"])
    return table.assign(run_id="r1", as_of="2026-10-28")


def _markdown_rows(markdown: str) -> list[list[str]]:
    """The cells of the Markdown table in ``markdown``, header first, rule left out."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_metrics_overview_opens_with_the_verdict_then_a_narrow_rounded_headline() -> None:
    metrics = _headline_metrics()
    history = append_history(None, metrics)
    overview = metrics_overview(metrics, ["ease wins."], history, k=10)
    assert list(overview.markdown) == ["verdict", "headline", "all_metrics", "charts"]
    assert overview.markdown["verdict"] == "- ease wins."
    header, *rows = _markdown_rows(overview.markdown["headline"])
    assert header == ["model", "n_users", "ndcg@10", "recall@10", "precision@10", "catalog_coverage@10"]
    # headline segment with_history (25 users), best first, four decimals
    assert rows == [
        ["ease", "25", "0.2000", "0.2010", "0.2020", "0.2030"],
        ["popularity", "25", "0.1000", "0.1010", "0.1020", "0.1030"],
    ]
    assert "`with_history`" in overview.markdown["headline"]
    # every metric, one row each, one column per model
    header, *rows = _markdown_rows(overview.markdown["all_metrics"])
    assert header == ["metric", "ease", "popularity"] and len(rows) == 8 and rows[-1][0] == "gini@10"
    assert overview.markdown["charts"].count("](data:image/png;base64,") == 2
    # the only numbers: one headline ndcg per model, rounded (the UI plots each across runs)
    assert overview.numbers == {"ease/ndcg@10": 0.2, "popularity/ndcg@10": 0.1}
