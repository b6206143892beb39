"""The summary tables and the HTML / Markdown report on a small crafted evaluation."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from recpipeline.evaluation.costs import COST_COLUMNS
from recpipeline.evaluation.history import append_history
from recpipeline.evaluation.reports import (
    MDE_NOTE,
    POPULARITY_NOTE,
    ReportInputs,
    metrics_overview,
    metrics_summary,
    model_colours,
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


def _inputs(metrics: pd.DataFrame, history: pd.DataFrame, costs: pd.DataFrame | None = None) -> ReportInputs:
    """A report on ``metrics`` with the crafted per-user values, popularity the significance baseline."""
    per_user = _per_user()
    return ReportInputs(
        metrics=metrics,
        significance=significance_table(per_user, "popularity", (5, 10), n_boot=100, alpha=0.05, seed=0),
        per_user=per_user,
        history=history,
        families={"popularity": "baseline", "als": "factorisation"},
        ks=(5, 10),
        n_boot=100,
        costs=costs,
    )


def test_report_embeds_plots_tables_and_history() -> None:
    history = append_history(append_history(None, _metrics("r1", 1.1)), _metrics("r2", 1.0))
    inputs = _inputs(_metrics("r2", 1.0), history)
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
    # the significance table ends in mde, with a line saying what it is; no costs given, no costs section
    significance_part = markdown[markdown.index("## Significance") :]
    assert "| significant | mde |" in significance_part and MDE_NOTE in significance_part
    assert html.escape(MDE_NOTE) in page and "Costs" not in markdown and "<h2>Costs</h2>" not in page
    # the popularity-bias metrics and activity segments are defined under the metrics tables
    assert POPULARITY_NOTE in markdown and html.escape(POPULARITY_NOTE) in page


def _costs() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("als", 12.3456, 40.0, 15, "cold", 2.25, 3_500_000, 512.4),
            ("popularity", 0.5, float("nan"), float("nan"), None, 0.8, 1_000, 300.0),
        ],
        columns=list(COST_COLUMNS),
    )


def test_costs_beside_accuracy_in_the_report_and_the_overview() -> None:
    metrics = _metrics("r1", 1.0)
    inputs = _inputs(metrics, append_history(None, metrics), costs=_costs())
    figures = report_figures(inputs)
    assert [title for title, _ in figures][-1] == "Accuracy against fit time" and len(figures) == 4
    markdown = report_markdown(inputs, figures)
    header, *rows = _markdown_rows(markdown[markdown.index("## Costs") :])
    assert header == [
        "model",
        "ndcg@10",
        "fit_s",
        "cpu_s",
        "epochs_run",
        "warm_start_from",
        "score_ms_per_1k_users",
        "model_mb",
        "peak_rss_mb",
    ]
    # best ndcg first; a cost not measured shows as n/a, never as 0
    assert rows == [
        ["als", "0.2000", "12.35", "40.00", "15", "cold", "2.2", "3.50", "512"],
        ["popularity", "0.1000", "0.50", "n/a", "n/a", "", "0.8", "0.00", "300"],
    ]
    page = report_html(inputs, figures)
    assert "<h2>Costs</h2>" in page and "peak_rss_mb: Peak resident memory" in page
    assert page.count("data:image/png;base64,") == 4
    # the winner is the reference (als) and no model is neural: no cost sentence in the verdict
    assert "Cost:" not in markdown[: markdown.index("## Plots")]
    overview = metrics_overview(metrics, ["als wins."], inputs.history, k=10, costs=_costs())
    assert list(overview.markdown) == ["verdict", "headline", "all_metrics", "costs", "charts"]
    assert overview.markdown["costs"].startswith("ndcg@10 on segment `all` and what each model cost.")
    assert overview.markdown["charts"].count("](data:image/png;base64,") == 3


def test_the_verdict_opens_the_report_with_or_without_the_new_columns() -> None:
    metrics = _metrics("r1", 1.0)
    newer = metrics.assign(served_by=metrics["model"], flagged=False)
    for table in (metrics, newer):  # history rows written before served_by / flagged existed lack them
        inputs = _inputs(table, append_history(None, metrics))
        winner = (
            "Winner on all (40 users), by ndcg@10: als (factorisation) at 0.2000, significantly ahead of "
        )
        figures = report_figures(inputs)
        page = report_html(inputs, figures)
        verdict = page.index("<h2>Verdict</h2>")
        assert f"<li>{winner}" in page and verdict < page.index("<img") < page.index("<h2>Significance")
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


def _legend_colours(fig) -> dict[str, str]:
    """model -> colour of each legend entry (bars, lines) and annotated point of a figure."""
    from matplotlib.colors import to_hex

    found = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            artist = handle.patches[0] if hasattr(handle, "patches") else handle
            found[label] = to_hex(
                artist.get_facecolor() if hasattr(artist, "get_facecolor") else artist.get_color()
            )
        for collection in ax.collections:  # scatter points, annotated with their model
            names = [text.get_text() for text in ax.texts]
            for name, colour in zip(names, collection.get_facecolors(), strict=False):
                found[name] = to_hex(colour)
    return found


def test_charts_name_the_headline_segment_and_give_each_model_one_colour(monkeypatch) -> None:
    import recpipeline.evaluation.reports as reports

    drawn = []
    monkeypatch.setattr(reports, "_png", lambda fig, dpi=110: drawn.append(fig) or "data:image/png;base64,")
    metrics = _metrics("r1", 1.0)
    metrics = pd.concat([metrics, metrics[metrics["segment"] == "all"].assign(segment="with_history")])
    per_user = _per_user()
    inputs = ReportInputs(
        metrics=metrics,
        significance=significance_table(per_user, "popularity", (5, 10), n_boot=50, alpha=0.05, seed=0),
        per_user=per_user,
        history=append_history(None, metrics),
        families={"popularity": "baseline", "als": "factorisation"},
        ks=(5, 10),
        n_boot=50,
    )
    report_figures(inputs)
    metrics_overview(metrics, ["als wins."], inputs.history, k=10)
    titles = [ax.get_title() for fig in drawn for ax in fig.axes]
    # the confidence intervals are drawn for the headline segment, as the verdict reads it
    assert "Segment with_history, mean with 95% bootstrap CI (K=10)" in titles
    assert not any(title.startswith("Segment all") for title in titles)
    assert "Accuracy vs novelty, segment with_history" in titles
    # one colour per model in every chart, the report's and the metrics asset's alike
    expected = model_colours(["popularity", "als"])
    assert expected == {"als": "#1f77b4", "popularity": "#ff7f0e"}
    seen = [_legend_colours(fig) for fig in drawn]
    assert sum(1 for colours in seen if colours) >= 4
    for colours in seen:
        assert colours == {model: expected[model] for model in colours}, colours
    assert len(model_colours([f"m{i}" for i in range(15)]).values()) == 15  # tab20 beyond ten
    assert len(set(model_colours([f"m{i}" for i in range(15)]).values())) == 15


def test_the_report_says_how_the_verdict_held_over_the_backtest_cuts() -> None:
    from dataclasses import replace

    from recpipeline.evaluation.backtest import backtest_table
    from recpipeline_tests.evaluation.test_backtest_verdict import CUTS, FAMILIES

    history = append_history(None, _metrics("r1", 1.0))
    inputs = replace(_inputs(_metrics("r1", 1.0), history), backtest=backtest_table(CUTS, FAMILIES))
    figures = report_figures(inputs)
    assert figures[-1][0] == "The verdict over time: ndcg per backtest cut"
    markdown = report_markdown(inputs, figures)
    assert markdown.index("## Verdict") < markdown.index("## The verdict over time (backtest)")
    assert "4 cut(s) from 2026-10-05 to 2026-10-26" in markdown
    assert "The verdict over time (backtest)</h2>" in report_html(inputs, figures)


def test_the_verdict_ends_with_how_validation_was_drawn() -> None:
    """A sceptic's first question of a tuned model: was it chosen on a validation set drawn like the test?"""
    from dataclasses import replace

    metrics = _metrics("r1", 1.0)
    drawn = "a seeded random 10% of each user's train file (validation_rule auto)"
    inputs = replace(_inputs(metrics, append_history(None, metrics)), validation_drawn=drawn)
    markdown = report_markdown(inputs, report_figures(inputs))
    verdict = markdown[markdown.index("## Verdict") : markdown.index("## Plots")]
    assert verdict.rstrip().endswith(f"- Early stopping and tuning chose on {drawn}.")
