"""Human-readable summaries of metric tables: Markdown for the Dagster UI and the CLI, and the HTML report.

The report is one self-contained page (plots embedded as base64 PNGs, drawn with matplotlib's Agg canvas):
bars of mean ndcg / recall with bootstrap confidence intervals, the accuracy vs novelty / coverage
trade-off, the ndcg trend over past runs, the significance table and the metrics of every segment.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recpipeline.contracts import headline_k
from recpipeline.evaluation.backtest import backtest_summary, verdict_over_time
from recpipeline.evaluation.costs import COST_COLUMN_DOCS, costs_summary
from recpipeline.evaluation.history import run_order
from recpipeline.evaluation.protocol import NO_K, USER_SEGMENTS, WITH_HISTORY, headline_segment
from recpipeline.evaluation.verdict import verdict_lines, verdict_markdown

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


#: how a table shows a figure that is not available (NaN: e.g. diversity without item categories)
NOT_AVAILABLE = "n/a"


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency); NaN shows as NOT_AVAILABLE, never as 0."""

    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return NOT_AVAILABLE if np.isnan(value) else float_format.format(value)
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def metrics_summary(
    metrics: pd.DataFrame, segment: str = "all", ks: Sequence[int] | None = None
) -> pd.DataFrame:
    """One row per model for a segment: n_users, then one column per ``metric@k`` (just ``metric`` for
    metrics without a cut-off such as rmse), optionally only at ``ks``; sorted by ndcg at the largest K.
    """
    rows = metrics[metrics["segment"] == segment]
    if ks is not None:
        rows = rows[rows["k"].isin([*ks, NO_K])]
    # pivot keeps NaN values (e.g. diversity without item categories): the tables show them as n/a
    wide = rows.pivot(index="model", columns=["metric", "k"], values="value")
    wide = wide[pd.MultiIndex.from_frame(rows[["metric", "k"]].drop_duplicates())]  # the table's metric order
    wide.columns = [metric if k == NO_K else f"{metric}@{k}" for metric, k in wide.columns]
    ndcg = rows[rows["metric"] == "ndcg"]
    if len(ndcg):
        top = ndcg[ndcg["k"] == ndcg["k"].max()].set_index("model")
        wide.insert(0, "n_users", top["n_users"].reindex(wide.index))
        wide = wide.sort_values(f"ndcg@{ndcg['k'].max()}", ascending=False)
    return wide.reset_index()


# -- the metrics asset as the UI shows it --------------------------------------------------------------------

HEADLINE_METRICS: tuple[str, ...] = ("ndcg", "recall", "precision", "catalog_coverage")
DIGITS = 4  # values shown in the UI: four decimals tell the models apart, sixteen hide them


@dataclass(frozen=True)
class MetricsOverview:
    """The metrics table as the UI shows it: Markdown entries in display order, then the few numbers the UI
    plots across runs (one per key, so one per model)."""

    markdown: dict[str, str]  # verdict, headline table, full table, costs (when given), comparison charts
    numbers: dict[str, float]  # "<model>/ndcg@<k>" on the headline segment, rounded
    #: the headline chart, (title, PNG): the UI shows it inline with the verdict where it can fetch it by URL
    headline_chart: tuple[str, bytes] | None = None


def headline_table(metrics: pd.DataFrame, k: int, segment: str) -> pd.DataFrame:
    """model, n_users and the HEADLINE_METRICS at cut-off ``k`` on ``segment``, best ndcg first, rounded."""
    wide = metrics_summary(metrics, segment, ks=(k,))
    columns = ["model", "n_users", *(f"{metric}@{k}" for metric in HEADLINE_METRICS)]
    return wide.reindex(columns=columns).round(DIGITS)  # a metric not computed shows as n/a


def full_table(metrics: pd.DataFrame, k: int, segment: str) -> pd.DataFrame:
    """Every metric at cut-off ``k`` on ``segment``, one row per metric and one column per model (best
    first): as many columns as models, so the UI does not cut it off after a few metrics; rounded."""
    wide = (
        metrics_summary(metrics, segment, ks=(k,)).set_index("model").drop(columns="n_users", errors="ignore")
    )
    return wide.T.rename_axis("metric").reset_index().rename_axis(columns=None).round(DIGITS)


def metrics_overview(
    metrics: pd.DataFrame,
    verdict: Sequence[str],
    history: pd.DataFrame,
    k: int,
    costs: pd.DataFrame | None = None,
) -> MetricsOverview:
    """The metrics asset's metadata: the verdict, the headline table on the headline segment, the full table,
    with ``costs`` (``costs.COST_COLUMNS``) each model's costs beside its ndcg@k, charts comparing the models
    (one bar group per headline metric, ndcg@k per model over the runs of ``history``, ndcg@k against fit
    time with costs) and each model's headline ndcg@k."""
    segment = headline_segment(metrics)
    headline = headline_table(metrics, k, segment)
    models = list(headline["model"])
    charts = [
        (f"Headline metrics at K={k}, segment {segment}", _headline_chart(headline, segment, k)),
        (f"ndcg@{k} over runs", _trend_chart(history, models, k, segment)),
    ]
    markdown = {
        "verdict": verdict_markdown(verdict),
        "headline": f"Segment `{segment}`, K={k}.\n\n" + markdown_table(headline),
        "all_metrics": f"Segment `{segment}`, K={k}.\n\n" + markdown_table(full_table(metrics, k, segment)),
    }
    if costs is not None and not costs.empty:
        markdown["costs"] = _costs_markdown(costs, metrics, k)
        charts.append((_COST_CHART_TITLE, _cost_chart(costs, metrics, k)))
    title, uri = charts[0][0], _headline_chart(headline, segment, k, compact=True)
    return MetricsOverview(
        markdown={**markdown, "charts": _markdown_images(charts)},
        numbers={f"{m}/ndcg@{k}": float(v) for m, v in headline.set_index("model")[f"ndcg@{k}"].items()},
        headline_chart=(title, base64.b64decode(uri.partition(",")[2])),
    )


def _markdown_images(figures: Sequence[tuple[str, str]]) -> str:
    """Titled Markdown images; the Dagster UI renders ``data:`` image URIs in Markdown metadata."""
    return "\n\n".join(f"### {title}\n\n![{title}]({uri})" for title, uri in figures)


# -- the HTML / Markdown report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportInputs:
    """What a report shows: one run's tables plus the history of earlier runs."""

    metrics: pd.DataFrame  # METRICS_COLUMNS (+ run_id, as_of)
    significance: pd.DataFrame  # significance.SIGNIFICANCE_COLUMNS
    per_user: pd.DataFrame  # evaluation.per_user_values
    history: pd.DataFrame  # history.HISTORY_COLUMNS
    families: Mapping[str, str]  # every evaluated model -> its family (verdict.evaluated_families)
    ks: tuple[int, ...]
    n_boot: int = 1000
    seed: int = 42
    costs: pd.DataFrame | None = None  # costs.COST_COLUMNS, one row per model; None: not measured
    #: the backtest's table (``evaluation.backtest.BACKTEST_COLUMNS``) when cuts were evaluated: the report
    #: then says how the verdict held over the cut dates
    backtest: pd.DataFrame | None = None
    #: a few explanations with item titles (``explanations.explanation_examples``) and the fidelity table
    #: (``explanations.FIDELITY_COLUMNS``), when a model explains itself
    explanations: pd.DataFrame | None = None
    explanation_fidelity: pd.DataFrame | None = None
    #: how the validation early stopping and tuning chose on was drawn (``splitting.validation_drawn``)
    validation_drawn: str | None = None


def _png(fig: Figure, dpi: int = 110) -> str:
    """A figure as an embeddable data URI. Text is drawn as written: a model named after a file such as
    ``my$\\frac$model.csv`` is a name, not math text (which would fail to parse and crash the report)."""
    from matplotlib import rc_context
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
    buffer = io.BytesIO()
    with rc_context({"text.parse_math": False, "text.usetex": False}):  # also the labels drawing makes
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(n_panels: int, height: float = 3.8) -> tuple[Figure, list]:
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state: safe in a worker process

    fig = Figure(figsize=(5.2 * n_panels, height), layout="constrained")
    return fig, list(np.atleast_1d(fig.subplots(1, n_panels)))


def model_colours(models: Iterable[str]) -> dict[str, str]:
    """One colour per model, whatever order a chart lists them in: the models in name order take the
    palette's colours in turn (tab10; tab20 beyond ten models). The metrics asset's charts and the report's
    colour each model of a run alike."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    names = sorted(set(map(str, models)))
    palette = colormaps["tab10" if len(names) <= 10 else "tab20"].colors
    return {name: to_hex(palette[i % len(palette)]) for i, name in enumerate(names)}


def _colour(model: str, models: Sequence[str]) -> str:
    """``model``'s colour among ``models`` (``model_colours``)."""
    return model_colours(models)[str(model)]


def _interval_chart(inputs: ReportInputs, k: int) -> str:
    """Bars of mean ndcg@k and recall@k per model on the headline segment (``with_history`` where the table
    has it) and ndcg@k per user segment, 95% CIs."""
    from recpipeline.evaluation.significance import bootstrap_mean_ci

    models = list(pd.unique(inputs.per_user["model"]))
    everyone = list(pd.unique(inputs.metrics["model"])) + models
    headline = headline_segment(inputs.metrics)
    groups = [(headline, "ndcg"), (headline, "recall"), *((s, "ndcg") for s in USER_SEGMENTS)]
    fig, (by_metric, by_segment) = _figure(2)
    width = 0.8 / len(models)
    for m, model in enumerate(models):
        rows = inputs.per_user[inputs.per_user["model"] == model]
        means, lows, highs = [], [], []
        for segment, metric in groups:
            values = rows[f"{metric}@{k}"].to_numpy()[_users_in(rows, segment)]
            low, high = bootstrap_mean_ci(values[:, None], inputs.n_boot, inputs.seed)
            means.append(values.mean() if len(values) else np.nan)
            lows.append(low[0])
            highs.append(high[0])
        means, lows, highs = np.array(means), np.array(lows), np.array(highs)
        err = np.nan_to_num(np.vstack([means - lows, highs - means]))
        for ax, part in ((by_metric, slice(0, 2)), (by_segment, slice(2, None))):
            x = np.arange(len(means[part])) + (m - (len(models) - 1) / 2) * width
            ax.bar(
                x,
                means[part],
                width,
                yerr=err[:, part],
                capsize=3,
                label=model,
                color=_colour(model, everyone),
            )
    by_metric.set_xticks(range(2), [f"ndcg@{k}", f"recall@{k}"])
    by_metric.set_title(f"Segment {headline}, mean with 95% bootstrap CI (K={k})")
    by_segment.set_xticks(range(len(USER_SEGMENTS)), list(USER_SEGMENTS))
    by_segment.set_title(f"ndcg@{k} by user segment")
    by_metric.legend(fontsize=8)
    return _png(fig)


def _users_in(per_user: pd.DataFrame, segment: str) -> np.ndarray:
    """Which rows of ``per_user`` belong to ``segment`` (``all``, ``with_history`` or a user segment)."""
    segments = per_user["user_segment"].to_numpy()
    if segment == WITH_HISTORY:
        return segments != "new_users"
    if segment in USER_SEGMENTS:
        return segments == segment
    return np.ones(len(per_user), dtype=bool)


def _headline_chart(headline: pd.DataFrame, segment: str, k: int, compact: bool = False) -> str:
    """One bar group per headline metric, one bar per model (the rows of ``headline_table``); ``compact``:
    low and small, to fit under the verdict on the first screen of the UI's asset page."""
    metrics = [c for c in headline.columns if c not in ("model", "n_users")]
    models = list(headline["model"])
    fig, (ax,) = _figure(1, height=2.6 if compact else 3.8)
    width = 0.8 / max(len(models), 1)
    for m, (model, values) in enumerate(headline.set_index("model")[metrics].iterrows()):
        x = np.arange(len(metrics)) + (m - (len(models) - 1) / 2) * width
        ax.bar(x, values.to_numpy(dtype=float), width, label=model, color=_colour(model, models))
    ax.set_xticks(range(len(metrics)), [c.removesuffix(f"@{k}").replace("_", "\n") for c in metrics])
    ax.set_title(f"Segment {segment}, K={k}")
    _legend_outside(ax)
    return _png(fig, dpi=80 if compact else 110)


def _legend_outside(ax: Axes) -> None:
    """The legend right of the axes, where it hides no bar or line."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))


def _tradeoff_chart(metrics: pd.DataFrame, k: int) -> str:
    """Accuracy (ndcg@k) against novelty@k and catalog_coverage@k, one point per model, on the headline
    segment (the verdict's)."""
    models = list(pd.unique(metrics["model"]))
    segment = headline_segment(metrics)
    wide = metrics_summary(metrics, segment)
    fig, axes = _figure(2)
    for ax, other in zip(axes, ("novelty", "catalog_coverage"), strict=True):
        x, y = wide.get(f"{other}@{k}"), wide.get(f"ndcg@{k}")
        if x is None or y is None:
            continue
        ax.scatter(x, y, c=[_colour(m, models) for m in wide["model"]])
        ax.margins(0.15)
        for name, xi, yi in zip(wide["model"], x, y, strict=True):
            ax.annotate(str(name), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(f"{other}@{k}")
        ax.set_ylabel(f"ndcg@{k}")
        ax.set_title(f"Accuracy vs {other.replace('_', ' ')}, segment {segment}")
    return _png(fig)


def _trend_chart(history: pd.DataFrame, models: Sequence[str], k: int, segment: str) -> str:
    """ndcg@k on ``segment`` per model of this run across the runs of the history (oldest first)."""
    rows = history[(history["metric"] == "ndcg") & (history["k"] == k) & (history["segment"] == segment)]
    runs = run_order(rows)
    position = {run: i for i, run in enumerate(runs)}
    fig, (ax,) = _figure(1)
    for model in models:
        group = rows[rows["model"] == model]
        ax.plot(
            group["run_id"].map(position),
            group["value"],
            marker="o",
            label=model,
            color=_colour(model, models),
        )
    labels = rows.drop_duplicates("run_id").set_index("run_id")["as_of"].reindex(runs)
    ax.set_xticks(range(len(runs)), [f"{a}\n{r[:8]}" for r, a in labels.items()], fontsize=7)
    ax.set_ylabel(f"ndcg@{k}")
    ax.set_title(f"ndcg@{k} on {segment} over the last {len(runs)} run(s)")
    if len(rows):
        _legend_outside(ax)
    return _png(fig)


# -- costs beside accuracy -----------------------------------------------------------------------------------

_COST_CHART_TITLE = "Accuracy against fit time"
#: how each cost column reads in a table (``model_mb`` is ``model_bytes`` in MB)
_COST_FORMATS = {
    "fit_s": "{:.2f}",
    "cpu_s": "{:.2f}",
    "epochs_run": "{:.0f}",
    "score_ms_per_1k_users": "{:.1f}",
    "model_mb": "{:.2f}",
    "peak_rss_mb": "{:.0f}",
}


def costs_table(costs: pd.DataFrame, metrics: pd.DataFrame, k: int) -> pd.DataFrame:
    """Each model's costs beside its ndcg@k on the headline segment, best ndcg first, as display strings
    (seconds to two decimals, memory to whole MB; NOT_AVAILABLE where a cost was not measured)."""
    segment = headline_segment(metrics)
    rows = metrics[(metrics["segment"] == segment) & (metrics["metric"] == "ndcg") & (metrics["k"] == k)]
    ndcg = rows.drop_duplicates("model").set_index("model")["value"].sort_values(ascending=False)
    table = costs_summary(costs, order=[str(m) for m in ndcg.index])
    table.insert(1, f"ndcg@{k}", table["model"].map(ndcg))
    formats = {f"ndcg@{k}": "{:.4f}", **_COST_FORMATS}
    for column, text in formats.items():
        if column in table:
            values = pd.to_numeric(table[column], errors="coerce")
            table[column] = [NOT_AVAILABLE if np.isnan(v) else text.format(v) for v in values]
    return table


def _costs_markdown(costs: pd.DataFrame, metrics: pd.DataFrame, k: int) -> str:
    segment = headline_segment(metrics)
    return f"ndcg@{k} on segment `{segment}` and what each model cost.\n\n" + markdown_table(
        costs_table(costs, metrics, k)
    )


def _cost_chart(costs: pd.DataFrame, metrics: pd.DataFrame, k: int) -> str:
    """ndcg@k on the headline segment against fit CPU seconds (wall seconds when any CPU time is missing),
    one point per model; a log scale when the times span more than a factor of 20."""
    segment = headline_segment(metrics)
    rows = metrics[(metrics["segment"] == segment) & (metrics["metric"] == "ndcg") & (metrics["k"] == k)]
    ndcg = rows.drop_duplicates("model").set_index("model")["value"]
    table = costs.drop_duplicates("model", keep="last").set_index("model")
    models = [m for m in pd.unique(metrics["model"]) if m in table.index and m in ndcg.index]
    cpu = "cpu_s" in table and pd.to_numeric(table.loc[models, "cpu_s"], errors="coerce").notna().all()
    column, label = ("cpu_s", "fit CPU seconds") if cpu else ("fit_s", "fit wall seconds")
    seconds = pd.to_numeric(table.loc[models, column], errors="coerce") if column in table else None
    fig, (ax,) = _figure(1)
    if seconds is not None and seconds.notna().any():
        shown = [m for m in models if np.isfinite(seconds[m])]
        x, y = seconds[shown].to_numpy(float), ndcg[shown].to_numpy(float)
        ax.scatter(x, y, c=[_colour(m, list(pd.unique(metrics["model"]))) for m in shown])
        for name, xi, yi in zip(shown, x, y, strict=True):
            ax.annotate(str(name), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if len(x) and x.min() > 0 and x.max() / x.min() > 20:
            ax.set_xscale("log")
        ax.margins(0.15)
    ax.set_xlabel(label)
    ax.set_ylabel(f"ndcg@{k}")
    ax.set_title(f"ndcg@{k} on {segment} against {label}")
    return _png(fig)


def significance_summary(significance: pd.DataFrame, k: int, segment: str) -> pd.DataFrame:
    """The significance rows of ``segment`` (the headline segment) at cut-off ``k``."""
    rows = significance[(significance["segment"] == segment) & (significance["k"] == k)]
    return rows.drop(columns=["segment"])


def report_figures(inputs: ReportInputs) -> list[tuple[str, str]]:
    """The report's plots as (title, PNG data URI), at the largest K; drawn once for the HTML page and the
    Markdown."""
    k = headline_k(inputs.ks)
    models = list(pd.unique(inputs.metrics["model"]))
    figures = [
        ("Accuracy with confidence intervals", _interval_chart(inputs, k)),
        ("Accuracy against novelty and coverage", _tradeoff_chart(inputs.metrics, k)),
        ("Trend over runs", _trend_chart(inputs.history, models, k, headline_segment(inputs.metrics))),
    ]
    if _has_costs(inputs):
        figures.append((_COST_CHART_TITLE, _cost_chart(inputs.costs, inputs.metrics, k)))
    if _has_backtest(inputs):
        figures.append((_BACKTEST_CHART_TITLE, over_time_chart(inputs.backtest, k)))
    return figures


_BACKTEST_CHART_TITLE = "The verdict over time: ndcg per backtest cut"


def _has_backtest(inputs: ReportInputs) -> bool:
    return inputs.backtest is not None and not inputs.backtest.empty


def _over_time(inputs: ReportInputs) -> list[str]:
    """The backtest's verdict over time (empty without a backtest)."""
    if not _has_backtest(inputs):
        return []
    return verdict_over_time(inputs.backtest, backtest_summary(inputs.backtest), headline_k(inputs.ks))


def _has_costs(inputs: ReportInputs) -> bool:
    return inputs.costs is not None and not inputs.costs.empty


#: what the significance table's mde column means, under the table
MDE_NOTE = (
    "mde: the smallest mean difference the comparison detects with 80% power (two-sided normal "
    "approximation on the per-user differences, at Holm's strictest level: alpha over the models compared)."
)


#: what the popularity-bias metrics and the activity segments mean, under the metrics tables
POPULARITY_NOTE = (
    "Who gets exposure. arp@K: mean over users with a list of the mean popularity of their top-K items, "
    "popularity = an item's train + validation rows (0 for an item first seen later). aplt@K: mean over "
    "users with a list of the share of their top-K slots holding a long-tail item; items sorted by "
    "popularity, the short head is every item at least as popular as the one at which the cumulative share "
    "of rows reaches 80% (ties join the head), the long tail every other item. Segments light / medium / "
    "heavy: the users with history split at the terciles of their train + validation rows; ndcg_gap@K "
    "(segment with_history) = heavy users' ndcg@K minus light users' ndcg@K, its n_users the smaller group."
)


def report_markdown(inputs: ReportInputs, figures: Sequence[tuple[str, str]]) -> str:
    """The report as Markdown (what the UI shows of it): the verdict, the plots, metrics at the largest K
    per segment, significance on the headline segment, costs when given."""
    k = headline_k(inputs.ks)
    headline = headline_segment(inputs.metrics)
    parts = [_heading(inputs), "## Verdict", verdict_markdown(_verdict(inputs))]
    if _has_backtest(inputs):
        parts += ["## The verdict over time (backtest)", verdict_markdown(_over_time(inputs))]
    parts += ["## Plots", _markdown_images(figures), f"## Metrics at K={k}"]
    for segment in pd.unique(inputs.metrics["segment"]):
        table = metrics_summary(inputs.metrics, segment, ks=(k,))
        parts += [f"### {segment}", markdown_table(table)]
    parts.append(POPULARITY_NOTE)
    parts += [
        f"## Significance against the baseline (segment {headline}, K={k})",
        markdown_table(significance_summary(inputs.significance, k, headline)),
    ]
    if "mde" in inputs.significance:
        parts.append(MDE_NOTE)
    if _has_costs(inputs):
        parts += [f"## Costs (fit and scoring, K={k})", _costs_markdown(inputs.costs, inputs.metrics, k)]
    return "\n\n".join(parts)


def _verdict(inputs: ReportInputs) -> list[str]:
    return verdict_lines(
        inputs.metrics,
        inputs.significance,
        inputs.families,
        headline_k(inputs.ks),
        costs=inputs.costs,
        validation=inputs.validation_drawn,
    )


def _heading(inputs: ReportInputs) -> str:
    run_id = inputs.metrics["run_id"].iloc[0] if "run_id" in inputs.metrics and len(inputs.metrics) else ""
    as_of = inputs.metrics["as_of"].iloc[0] if "as_of" in inputs.metrics and len(inputs.metrics) else ""
    baseline = inputs.significance["baseline"].iloc[0] if len(inputs.significance) else "none"
    return f"# Recommender evaluation, as of {as_of}\n\nRun `{run_id}`; significance baseline: `{baseline}`."


#: the style of the report's HTML pages
PAGE_STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.8em; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f2f2f2; } img { max-width: 100%; } .tables { overflow-x: auto; }
</style>"""


def report_html(inputs: ReportInputs, figures: Sequence[tuple[str, str]]) -> str:
    """A self-contained HTML page: the verdict, plots as embedded PNGs, significance (with what mde means),
    costs when given, metrics per segment at every K."""
    verdict = "".join(f"<li>{html.escape(line)}</li>" for line in _verdict(inputs))
    over_time = "".join(f"<li>{html.escape(line)}</li>" for line in _over_time(inputs))
    if over_time:
        over_time = f'<h2>The verdict over time (backtest)</h2><ul class="verdict">{over_time}</ul>'
    tables = "".join(
        f"<h3>{html.escape(str(segment))}</h3>{_html_table(metrics_summary(inputs.metrics, segment))}"
        for segment in pd.unique(inputs.metrics["segment"])
    )
    images = "".join(f'<h2>{title}</h2><img alt="{title}" src="{uri}">' for title, uri in figures)
    heading = _heading(inputs).replace("# ", "", 1).split("\n\n")
    mde = f"<p>{html.escape(MDE_NOTE)}</p>" if "mde" in inputs.significance else ""
    costs = ""
    if _has_costs(inputs):
        k = headline_k(inputs.ks)
        notes = "".join(
            f"<li>{html.escape(column)}: {html.escape(doc)}</li>"
            for column, doc in COST_COLUMN_DOCS.items()
            if column != "model"
        )
        costs = (
            f"<h2>Costs</h2><p>ndcg@{k} on segment {html.escape(headline_segment(inputs.metrics))} and what "
            f'each model cost (model_mb: model_bytes in MB).</p><div class="tables">'
            f"{_html_table(costs_table(inputs.costs, inputs.metrics, k))}</div><ul>{notes}</ul>"
        )
    explained = _explanations_html(inputs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading[0])}</title>
{PAGE_STYLE}</head><body>
<h1>{html.escape(heading[0])}</h1><p>{html.escape(heading[1]).replace("`", "")}</p>
<h2>Verdict</h2><ul class="verdict">{verdict}</ul>
{over_time}
{images}
<h2>Significance against the baseline</h2>
<div class="tables">{_html_table(inputs.significance)}</div>{mde}
{costs}
{explained}
<h2>Metrics per segment</h2><div class="tables">{tables}</div>
<p>{html.escape(POPULARITY_NOTE)}</p>
</body></html>
"""


def _explanations_html(inputs: ReportInputs) -> str:
    """Why a few items were recommended, and whether each model's reasons are true (empty without them)."""
    if inputs.explanations is None or inputs.explanation_fidelity is None:
        return ""
    return (
        "<h2>Why these items (explanations)</h2><p>A few users' top items with the history items that "
        "contributed most to their scores (contribution by the model's method). Fidelity: the strongest "
        "reason removed from the history, how often the item leaves the top-K and how far it falls, against "
        "a random history item removed (docs/metrics.md).</p>"
        f'<div class="tables">{_html_table(inputs.explanation_fidelity)}</div>'
        f'<div class="tables">{_html_table(inputs.explanations)}</div>'
    )


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep=NOT_AVAILABLE, border=0)


# -- the backtest: the verdict over time ------------------------------------------------------------------


def over_time_chart(table: pd.DataFrame, k: int) -> str:
    """ndcg@k on the headline segment per model over the cut dates, as a PNG data URI."""
    rows = table[(table["metric"] == "ndcg") & (table["k"] == k)].sort_values("cut_date")
    models = sorted(rows["model"].unique())
    fig, (ax,) = _figure(1)
    for model in models:
        group = rows[rows["model"] == model]
        ax.plot(
            pd.to_datetime(group["cut_date"]),
            group["value"],
            marker="o",
            label=model,
            color=_colour(model, models),
        )
    segment = rows["segment"].mode().iloc[0] if len(rows) else ""
    ax.set_ylabel(f"ndcg@{k}")
    ax.set_title(f"ndcg@{k} on {segment} per cut date")
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    if len(rows):
        _legend_outside(ax)
    return _png(fig)


def backtest_html(lines: list[str], summary: pd.DataFrame, costs: pd.DataFrame, chart: str, k: int) -> str:
    """A self-contained HTML page of the backtest: the verdict over time, the chart, each model's record
    across the cuts and the costs per cut."""
    verdict = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    mean_costs = (
        costs.groupby("model", sort=True)[[c for c in costs.columns if c not in ("cut_date", "model")]]
        .mean(numeric_only=True)
        .reset_index()
        if len(costs)
        else costs
    )

    def table(frame: pd.DataFrame) -> str:
        return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="n/a", border=0)

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Verdict over time</title>
{PAGE_STYLE}</head><body>
<h1>Verdict over time</h1>
<ul class="verdict">{verdict}</ul>
<img alt="ndcg@{k} per cut date" src="{chart}">
<h2>Each model against the baseline, across the cuts</h2>{table(summary)}
<h2>Mean cost per cut</h2>{table(mean_costs)}
<h2>Costs per cut</h2>{table(costs)}
</body></html>
"""
