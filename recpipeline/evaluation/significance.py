"""Is a model really better than the baseline? Paired tests on per-user metric values.

For each model against the baseline, per (user segment, metric, K): the mean per-user difference, a paired
bootstrap 95% confidence interval of it (users resampled with replacement, the same resamples for every
model so the comparisons stay paired), a two-sided Wilcoxon signed-rank test (zero differences dropped, as in
``scipy.stats.wilcoxon``'s default; p = 1 when every difference is zero) and Holm's step-down correction
across the models compared within one segment, metric and K. ``significant`` = Holm-adjusted p < alpha.
Segments of fewer than ``min_segment_users`` users are not tested (the metrics table flags them).

``mde``, the minimum detectable effect: the smallest true mean difference the comparison would find with
80% power, by the two-sided normal approximation on the per-user differences,
``(z(1 - a / 2) + z(0.80)) * sd(diff) / sqrt(n)`` with ``a = alpha / m``, m the comparisons in its Holm
family (the models compared within one segment, metric and K): Holm's strictest per-comparison level, the
one a comparison must pass whatever the other comparisons' p-values, so at least 80% power under Holm
(``docs/evaluation.md``, Significance, says why not the unadjusted alpha nor the level of its observed rank).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import norm, wilcoxon

from recpipeline.evaluation.protocol import (
    MIN_SEGMENT_USERS,
    NOT_BASELINE_FAMILIES,
    USER_SEGMENTS,
    WITH_HISTORY,
    headline_segment,
)

SIGNIFICANCE_COLUMNS = (
    "segment",
    "model",
    "baseline",
    "metric",
    "k",
    "n_users",
    "mean_diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "significant",
    "mde",
)
#: the power at which ``mde`` is the smallest detectable difference
MDE_POWER = 0.80
TESTED_METRICS = ("ndcg", "recall")
#: bound on the resample-count block (resamples x users) held in memory at once
_BOOTSTRAP_BLOCK = 4_000_000
#: resample counts bincounted at once: small enough for the counts to stay in cache
_COUNT_BLOCK = 1 << 17


def choose_baseline(
    metrics: pd.DataFrame, k: int, families: Mapping[str, str], configured: str | None = None
) -> str:
    """The configured baseline, else the best model by ndcg@k on the headline segment (``with_history``, or
    ``all`` when no user has history) whose family (``families``: model -> family, every model of
    ``metrics``) is not in NOT_BASELINE_FAMILIES."""
    models = metrics["model"].unique()
    if configured is not None:
        if configured not in models:
            raise ValueError(
                f"evaluation.baseline: {configured!r} is not among the evaluated models {sorted(models)}"
            )
        return configured
    segment = headline_segment(metrics)
    rows = metrics[(metrics["segment"] == segment) & (metrics["metric"] == "ndcg") & (metrics["k"] == k)]
    missing = sorted(set(rows["model"]) - set(families))
    if missing:
        raise ValueError(f"no family for the evaluated lists {missing}")
    eligible = rows[[families[m] not in NOT_BASELINE_FAMILIES for m in rows["model"]]]
    if eligible.empty:
        eligible = rows  # only neural or external lists: compare against the best of them
    if eligible.empty:
        raise ValueError(f"no ndcg@{k} rows on segment {segment!r} to choose a baseline from")
    return str(eligible.sort_values(["value", "model"], ascending=[False, True])["model"].iloc[0])


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count as tests)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out


def minimum_detectable_effect(
    sd: ArrayLike, n: ArrayLike, alpha: float, comparisons: ArrayLike = 1, power: float = MDE_POWER
) -> np.ndarray:
    """The smallest mean difference a two-sided test at level ``alpha / comparisons`` detects with ``power``
    on ``n`` paired differences of standard deviation ``sd`` (normal approximation, elementwise):
    ``(z(1 - alpha / (2 * comparisons)) + z(power)) * sd / sqrt(n)``; NaN for fewer than two pairs."""
    n = np.asarray(n, dtype=np.float64)
    z = norm.ppf(1.0 - alpha / (2.0 * np.asarray(comparisons, dtype=np.float64))) + norm.ppf(power)
    with np.errstate(invalid="ignore", divide="ignore"):
        mde = z * np.asarray(sd, dtype=np.float64) / np.sqrt(n)
    return np.where(n >= 2, mde, np.nan)


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of each column's mean (rows = users, resampled together)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return np.full(values.shape[1], np.nan), np.full(values.shape[1], np.nan)
    rng = np.random.default_rng(seed)
    means = np.empty((n_boot, values.shape[1]))
    step = max(1, min(n_boot, _BOOTSTRAP_BLOCK // n))
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        means[start : start + b] = _resample_counts(rng.integers(0, n, size=(b, n)), n) @ values / n
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail], axis=0)
    return low, high


def _resample_counts(draws: np.ndarray, n: int) -> np.ndarray:
    """How often each of the ``n`` rows occurs in each resample (row of ``draws``), as float64.

    Bincounted a few resamples at a time: one bincount over the whole block scatters into an array far
    larger than the cache and is several times slower.
    """
    counts = np.empty(draws.shape, dtype=np.float64)
    rows = max(1, _COUNT_BLOCK // n)
    offsets = (np.arange(rows) * n)[:, None]  # resample j of a group counts into [j * n, (j + 1) * n)
    for first in range(0, len(draws), rows):
        part = draws[first : first + rows]
        keys = (part + offsets[: len(part)]).ravel()
        counts[first : first + len(part)] = np.bincount(keys, minlength=part.size).reshape(part.shape)
    return counts


def _wilcoxon_p(diffs: np.ndarray) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p-value per column; 1 where every difference is zero."""
    p = np.ones(diffs.shape[1])
    varies = np.any(diffs != 0, axis=0)
    if varies.any() and len(diffs):
        p[varies] = np.atleast_1d(wilcoxon(diffs[:, varies], axis=0).pvalue)
    return p


def significance_table(
    per_user: pd.DataFrame,
    baseline: str,
    ks: Sequence[int],
    n_boot: int,
    alpha: float,
    seed: int,
    metrics: Collection[str] = TESTED_METRICS,
    min_segment_users: int = MIN_SEGMENT_USERS,
) -> pd.DataFrame:
    """Every other model against ``baseline`` on segments ``all``, ``with_history`` and each user segment
    of at least ``min_segment_users`` users (SIGNIFICANCE_COLUMNS; ``mde`` at Holm's strictest level,
    ``alpha`` over the comparisons of its segment, metric and K: ``minimum_detectable_effect``).

    per_user: the per-user table of ``evaluation.per_user_values`` (model, user_idx, user_segment,
    metric@k columns), the same users for every model.
    """
    evaluated = list(per_user["model"].unique())  # not set(column): iterating string rows is slow
    models = [m for m in evaluated if m != baseline]
    if baseline not in evaluated:
        raise ValueError(f"baseline {baseline!r} has no per-user values")
    tested = [(metric, k) for metric in metrics for k in sorted(ks)]
    columns = [f"{metric}@{k}" for metric, k in tested]
    wide = per_user.pivot(index="user_idx", columns="model", values=columns)
    # one column per (metric@k, model): that model's per-user value minus the baseline's, for every user
    all_diffs = np.concatenate(
        [wide[col][models].to_numpy() - wide[col][[baseline]].to_numpy() for col in columns], axis=1
    )
    segment_of = per_user.drop_duplicates("user_idx").set_index("user_idx")["user_segment"]
    segment_of = segment_of.reindex(wide.index).to_numpy()
    frames = []
    in_segment = {"all": np.ones(len(wide), bool), WITH_HISTORY: segment_of != "new_users"}
    for segment in ("all", WITH_HISTORY, *USER_SEGMENTS):
        rows = in_segment.get(segment, segment_of == segment)
        # too few users for a test to mean much (and no users: nothing to test)
        if not models or rows.sum() < max(min_segment_users, 1):
            continue
        diffs = all_diffs[rows]
        low, high = bootstrap_mean_ci(diffs, n_boot, seed)
        frames.append(
            pd.DataFrame(
                {
                    "segment": segment,
                    "model": models * len(columns),
                    "baseline": baseline,
                    "metric": [metric for metric, _ in tested for _ in models],
                    "k": [k for _, k in tested for _ in models],
                    "n_users": int(rows.sum()),
                    "mean_diff": diffs.mean(axis=0),
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": _wilcoxon_p(diffs),
                    "sd_diff": diffs.std(axis=0, ddof=1) if len(diffs) > 1 else np.nan,
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=list(SIGNIFICANCE_COLUMNS))
    table = pd.concat(frames, ignore_index=True)
    table["p_holm"] = table.groupby(["segment", "metric", "k"])["p_value"].transform(
        lambda p: holm(p.to_numpy())
    )
    table["significant"] = table["p_holm"] < alpha
    # the size of each comparison's Holm family (NaN p-values are no test, as in holm)
    family = table.groupby(["segment", "metric", "k"])["p_value"].transform("count").clip(lower=1)
    table["mde"] = minimum_detectable_effect(table["sd_diff"], table["n_users"], alpha, family)
    return table[list(SIGNIFICANCE_COLUMNS)]
