"""The verdict in words: who wins on the headline segment, by how much, and whether the difference is real.

Every number comes from the metrics and significance tables (never written by hand), so the report, the
metrics asset's metadata and ``recpipeline run`` all say the same thing. The verdict reads ndcg at one
cut-off ``k`` on the headline segment (``protocol.headline_segment``: ``with_history``, or ``all`` for
tables without it):

* the winner, with its family (a simple baseline winning is said plainly);
* each family's best model and its difference, absolute and relative, to the best non-neural model (the
  best model outside ``NOT_BASELINE_FAMILIES``: the default significance baseline);
* the best neural model against that model: mean per-user difference, its 95% bootstrap interval and the
  Holm-adjusted p of the significance table, then one plain sentence;
* the share of evaluated users (``new_users`` over ``all``) served by the cold-start fallback.

A segment with fewer than ``evaluation.min_segment_users`` users (column ``flagged``) is named as such.
Columns ``served_by`` and ``flagged`` may be absent (tables written before they existed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from recpipeline.evaluation.protocol import NOT_BASELINE_FAMILIES, headline_segment, list_families
from recpipeline.evaluation.sessions import PREFIX_SEGMENTS

#: the evaluated users without history, served by the fallback unless a model serves them itself
FALLBACK_SEGMENT = "new_users"
NEURAL = "neural"
BASELINE_FAMILY = "baseline"


def evaluated_families(models: Iterable[str], configured: Sequence[str]) -> dict[str, str]:
    """The family of every evaluated list: the configured models' own, ``external`` for the others."""
    return list_families(configured, [m for m in dict.fromkeys(models) if m not in configured])


def verdict_lines(
    metrics: pd.DataFrame, significance: pd.DataFrame, families: Mapping[str, str], k: int
) -> list[str]:
    """The verdict as sentences (one per Markdown bullet or printed line); ``families``: model -> family."""
    segment = headline_segment(metrics)
    rows = _ndcg_rows(metrics, segment, k)
    scores = rows.set_index("model")["value"]
    if scores.empty:
        return [f"No ndcg@{k} on segment {segment}: nothing to judge."]
    missing = sorted(set(scores.index) - set(families))
    if missing:
        raise ValueError(f"no family for the evaluated lists {missing}")
    n_users = int(rows["n_users"].max())
    flagged = "flagged" in rows and bool(rows["flagged"].any())
    lines = [_winner(scores, families, segment, n_users, k, flagged)]
    if len(scores) > 1:
        reference = _best_of(scores, [m for m in scores.index if families[m] not in NOT_BASELINE_FAMILIES])
        lines += _family_lines(scores, families, reference, k)
        lines.append(_neural_line(scores, families, reference, significance, segment, k, flagged))
    if metrics["segment"].isin(list(PREFIX_SEGMENTS)).any():
        # the session protocol: every position has a prefix, nobody is served by the fallback
        lines.append(f"Session protocol: {n_users} positions of test sessions, each scored from its prefix.")
    else:
        lines.append(_fallback_line(metrics, k))
    return lines


def verdict_markdown(lines: Sequence[str]) -> str:
    """The verdict as a Markdown bullet list."""
    return "\n".join(f"- {line}" for line in lines)


def _ndcg_rows(metrics: pd.DataFrame, segment: str, k: int) -> pd.DataFrame:
    """ndcg@k rows of a segment, best first (ties by model name, as the baseline choice), NaN left out."""
    rows = metrics[(metrics["segment"] == segment) & (metrics["metric"] == "ndcg") & (metrics["k"] == k)]
    return rows.dropna(subset=["value"]).sort_values(["value", "model"], ascending=[False, True])


def _best_of(scores: pd.Series, models: Sequence[str]) -> str | None:
    """The best-scoring of ``models`` (``scores`` is sorted best first), None when there are none."""
    return next((m for m in scores.index if m in models), None)


def _winner(
    scores: pd.Series, families: Mapping[str, str], segment: str, n_users: int, k: int, flagged: bool
) -> str:
    model, value = scores.index[0], scores.iloc[0]
    if len(scores) == 1:
        line = (
            f"Only one model in the race: {model} ({families[model]}), ndcg@{k} {value:.4f} on {segment} "
            f"({n_users} users); nothing to compare it with."
        )
    else:
        line = (
            f"Winner on {segment} ({n_users} users), by ndcg@{k}: {model} ({families[model]}) at {value:.4f}."
        )
        if families[model] == BASELINE_FAMILY:
            line += " A simple baseline wins: no other model scores higher on this data."
    if flagged:
        line += (
            f" Only {n_users} users: the segment is flagged (below evaluation.min_segment_users), "
            "so read this as indicative."
        )
    return line


def _family_lines(scores: pd.Series, families: Mapping[str, str], reference: str | None, k: int) -> list[str]:
    """Each family's best model (best family first) and its difference to ``reference``."""
    lines = []
    seen: set[str] = set()
    for model, value in scores.items():
        family = families[model]
        if family in seen:  # scores are sorted: the first model of a family is its best
            continue
        seen.add(family)
        line = f"Best {family}: {model}, ndcg@{k} {value:.4f}"
        if reference is None:
            lines.append(line + ".")
        elif model == reference:
            lines.append(line + " — the best non-neural model, the reference.")
        else:
            lines.append(line + f", {_difference(value, scores[reference])} against {reference}.")
    return lines


def _difference(value: float, reference: float) -> str:
    """``+0.0100 (+2.3%)``; no relative figure against a reference of 0."""
    relative = f" ({(value - reference) / reference:+.1%})" if reference > 0 else ""
    return f"{value - reference:+.4f}{relative}"


def _neural_line(
    scores: pd.Series,
    families: Mapping[str, str],
    reference: str | None,
    significance: pd.DataFrame,
    segment: str,
    k: int,
    flagged: bool,
) -> str:
    """The best neural model against the best non-neural one, from the significance table."""
    neural = _best_of(scores, [m for m in scores.index if families[m] == NEURAL])
    if neural is None:
        return "No neural model in the race: there is no neural model to set against the simple ones."
    if reference is None:
        return f"No non-neural model in the race: {neural} has no simple model to beat."
    tests = significance[
        (significance["segment"] == segment)
        & (significance["model"] == neural)
        & (significance["baseline"] == reference)
        & (significance["metric"] == "ndcg")
        & (significance["k"] == k)
    ]
    if tests.empty:
        if flagged:
            why = ": the segment is too small (flagged) to be tested"
        elif len(significance):
            why = f" (the tests compare every model with {significance['baseline'].iloc[0]})"
        else:
            why = " (no significance table)"
        return f"No significance test of {neural} against {reference} on {segment} at ndcg@{k}{why}."
    test = tests.iloc[0]
    if not test["significant"]:
        plain = "no significant difference"
    elif test["mean_diff"] > 0:
        plain = f"{neural} beats it significantly"
    else:
        plain = f"{neural} is significantly worse"
    return (
        f"{neural} (best neural) against {reference} (best non-neural), ndcg@{k} on {segment}: mean "
        f"difference {test['mean_diff']:+.4f}, 95% CI [{test['ci_low']:+.4f}, {test['ci_high']:+.4f}], "
        f"Holm-adjusted p {_p_value(test['p_holm'])}: {plain}."
    )


def _p_value(p: float) -> str:
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _fallback_line(metrics: pd.DataFrame, k: int) -> str:
    """The share of evaluated users (segment all) without history, and who serves them."""
    n_all = int(_ndcg_rows(metrics, "all", k)["n_users"].max())
    new = _ndcg_rows(metrics, FALLBACK_SEGMENT, k)
    if new.empty:
        return f"All {n_all} evaluated users have history: the fallback serves none of them."
    n_new = int(new["n_users"].max())
    share = f"{n_new} of {n_all} evaluated users ({n_new / n_all:.1%}) have no history"
    if "served_by" not in new:
        return f"{share} and are served by the cold-start fallback."
    fallbacks = sorted(set(new.loc[new["served_by"] != new["model"], "served_by"]))
    if not fallbacks:
        return f"{share}; every model serves them itself."
    return (
        f"{share} and are served by the fallback ({', '.join(fallbacks)}) in every model that does not "
        "serve new users itself."
    )
