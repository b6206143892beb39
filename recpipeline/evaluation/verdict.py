"""The verdict in words: who wins on the headline segment, by how much, and whether the difference is real.

Every number comes from the metrics and significance tables (never written by hand), so the report, the
metrics asset's metadata and ``recpipeline run`` all say the same thing. The verdict reads ndcg at one
cut-off ``k`` on the headline segment (``protocol.headline_segment``: ``with_history``, or ``all`` for
tables without it):

* the winner, with its family (a simple baseline winning is said plainly) — only when its lead is tested
  and significant: over every other model when it is the significance baseline, else over the runner-up
  when that is the baseline, else over the baseline it is tested against (its lead over the runner-up is
  then said to be untested). A lead that is not significant, or not tested, is "No decision", with the
  test's numbers and its smallest detectable difference (``mde``);
* "No signal", naming no winner, when every model scores 0 or the segment is ``flagged`` (fewer than
  ``evaluation.min_segment_users`` users, so not tested);
* each family's best model and its difference, absolute and relative, to the best non-neural model (the
  best model outside ``NOT_BASELINE_FAMILIES``: the default significance baseline), each said to be
  significant, not significant or not tested;
* the best neural model against that model: mean per-user difference, its 95% bootstrap interval, the
  Holm-adjusted p and the smallest detectable difference of the significance table, then one plain sentence;
* with a costs table (``costs.COST_COLUMNS``), what the best neural model and a winner other than the
  reference cost against the reference: the ratio of fit CPU time (wall time where a CPU time is missing);
* the share of evaluated users (``new_users`` over ``all``) served by the cold-start fallback.

Columns ``served_by`` and ``flagged`` of the metrics table and ``mde`` of the significance table may be
absent (tables written before they existed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from recpipeline.evaluation.costs import cost_phrase
from recpipeline.evaluation.protocol import NOT_BASELINE_FAMILIES, headline_segment, list_families
from recpipeline.evaluation.sessions import PREFIX_SEGMENTS

#: the evaluated users without history, served by the fallback unless a model serves them itself
FALLBACK_SEGMENT = "new_users"
NEURAL = "neural"
BASELINE_FAMILY = "baseline"


def evaluated_families(models: Iterable[str], configured: Sequence[str]) -> dict[str, str]:
    """The family of every evaluated list: the configured models' own, ``external`` for the others."""
    return list_families(configured, [m for m in dict.fromkeys(models) if m not in configured])


@dataclass(frozen=True)
class _Headline:
    """What every line of the verdict reads: ndcg@k on the headline segment and its tests."""

    scores: pd.Series  # model -> ndcg@k, best first
    families: Mapping[str, str]
    segment: str
    n_users: int
    unit: str  # "users", or "positions" under the session protocol
    k: int
    tests: pd.DataFrame  # the significance rows of the segment at ndcg@k
    costs: pd.DataFrame | None

    @property
    def where(self) -> str:
        return f"on {self.segment} ({self.n_users} {self.unit}), by ndcg@{self.k}"


@dataclass(frozen=True)
class _Test:
    """One significance row, read as ``model`` minus ``other`` (whichever of the two was the baseline)."""

    model: str
    other: str
    diff: float
    ci_low: float
    ci_high: float
    p_holm: float
    significant: bool
    mde: float  # NaN in tables written before the column existed

    @property
    def favours_model(self) -> bool:
        return self.significant and self.diff > 0


def verdict_lines(
    metrics: pd.DataFrame,
    significance: pd.DataFrame,
    families: Mapping[str, str],
    k: int,
    costs: pd.DataFrame | None = None,
    validation: str | None = None,
) -> list[str]:
    """The verdict as sentences (one per Markdown bullet or printed line); ``families``: model -> family;
    ``costs``: the optional costs table (``costs.COST_COLUMNS``, one row per model); ``validation``: how the
    validation that early stopping and tuning chose on was drawn (``splitting.validation_drawn``)."""
    segment = headline_segment(metrics)
    rows = _ndcg_rows(metrics, segment, k)
    scores = rows.set_index("model")["value"]
    if scores.empty:
        return [f"No ndcg@{k} on segment {segment}: nothing to judge."]
    missing = sorted(set(scores.index) - set(families))
    if missing:
        raise ValueError(f"no family for the evaluated lists {missing}")
    sessions = bool(metrics["segment"].isin(list(PREFIX_SEGMENTS)).any())
    tests = significance[
        (significance["segment"] == segment) & (significance["metric"] == "ndcg") & (significance["k"] == k)
    ]
    headline = _Headline(
        scores=scores,
        families=families,
        segment=segment,
        n_users=int(rows["n_users"].max()),
        unit="positions" if sessions else "users",
        k=k,
        tests=tests,
        costs=costs,
    )
    flagged = "flagged" in rows and bool(rows["flagged"].any())
    silent = bool((scores == 0).all())
    reference = None
    if len(scores) > 1:
        reference = _best_of(scores, [m for m in scores.index if families[m] not in NOT_BASELINE_FAMILIES])
    if silent or flagged:
        lines = [_no_signal(headline, silent, flagged)]
    elif len(scores) == 1:
        lines = [_only_one(headline)]
    else:
        lines = [_winner(headline, reference)]
    if len(scores) > 1 and not silent:  # every score 0: no difference to report
        lines += _family_lines(headline, reference)
        lines.append(_neural_line(headline, reference, significance, flagged))
    if sessions:
        # the session protocol: every position has a prefix, nobody is served by the fallback
        lines.append(
            f"Session protocol: {headline.n_users} positions of test sessions, each scored from its prefix."
        )
    else:
        lines.append(_fallback_line(metrics, k))
    if validation is not None:
        lines.append(f"Early stopping and tuning chose on {validation}.")
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


def _test(headline: _Headline, model: str, other: str) -> _Test | None:
    """The test of ``model`` against ``other`` at ndcg@k on the headline segment, in either direction of
    the table (each model is tested against the baseline); None when the table has no such row."""
    tests = headline.tests
    for a, b, sign in ((model, other, 1.0), (other, model, -1.0)):
        rows = tests[(tests["model"] == a) & (tests["baseline"] == b)]
        if len(rows):
            row = rows.iloc[0]
            low, high = sign * float(row["ci_low"]), sign * float(row["ci_high"])
            return _Test(
                model=model,
                other=other,
                diff=sign * float(row["mean_diff"]),
                ci_low=min(low, high),
                ci_high=max(low, high),
                p_holm=float(row["p_holm"]),
                significant=bool(row["significant"]),
                mde=float(row["mde"]) if "mde" in row.index else math.nan,
            )
    return None


def _words(test: _Test | None) -> str:
    """``significant (Holm-adjusted p 0.0030)``, ``not significant (…, smallest detectable difference
    0.0123)`` or ``not tested``."""
    if test is None:
        return "not tested"
    if test.significant:
        return f"significant (Holm-adjusted p {_p_value(test.p_holm)})"
    return f"not significant (Holm-adjusted p {_p_value(test.p_holm)}{_mde(test)})"


def _mde(test: _Test) -> str:
    return f", smallest detectable difference {test.mde:.4f}" if math.isfinite(test.mde) else ""


def _no_signal(headline: _Headline, silent: bool, flagged: bool) -> str:
    """No winner: every model scores 0, or the segment is too small (flagged) to be tested."""
    n, unit, k = headline.n_users, headline.unit, headline.k
    only = len(headline.scores) == 1
    reasons = []
    if silent:
        who = f"{headline.scores.index[0]}, the only model," if only else "every model"
        reasons.append(f"{who} scores 0.0000 (no top-{k} list holds a relevant test item)")
    if flagged:
        reasons.append(
            f"{n} {unit} are fewer than evaluation.min_segment_users (the segment is flagged and not tested)"
        )
    verdict = "there is nothing to judge" if only else "no winner is named"
    return f"No signal {headline.where}: {'; '.join(reasons)}, so {verdict}."


def _only_one(headline: _Headline) -> str:
    model, value = headline.scores.index[0], headline.scores.iloc[0]
    return (
        f"Only one model in the race: {model} ({headline.families[model]}), ndcg@{headline.k} {value:.4f} on "
        f"{headline.segment} ({headline.n_users} {headline.unit}); nothing to compare it with."
    )


def _winner(headline: _Headline, reference: str | None) -> str:
    """The leader named as winner when its lead is tested and significant, else "No decision"."""
    scores, families = headline.scores, headline.families
    leader, value = str(scores.index[0]), float(scores.iloc[0])
    runner_up = str(scores.index[1])
    baselines = set(headline.tests["baseline"])
    if leader in baselines:  # the significance baseline: tested against every other model
        challengers = [str(m) for m in scores.index[1:]]
    elif runner_up in baselines:
        challengers = [runner_up]
    else:  # only the leader's test against the baseline, if any; its lead over the runner-up is untested
        challengers = sorted(b for b in baselines if b in scores.index)
    tests = {other: _test(headline, leader, other) for other in challengers}
    who = f"{headline.where}: {leader} ({families[leader]})"
    if all(test is None for test in tests.values()):
        line = (
            f"No decision {who} leads at {value:.4f}, {value - float(scores.iloc[1]):+.4f} ahead of "
            f"{runner_up}, but the lead is not tested (no significance test of it on {headline.segment} at "
            f"ndcg@{headline.k})."
        )
    elif any(test is None or not test.favours_model for test in tests.values()):
        other = next(o for o, test in tests.items() if test is None or not test.favours_model)
        why = _unsettled_lead(tests[other], value - float(scores[other]), other)
        line = f"No decision {who} leads at {value:.4f}, but {why}."
    else:
        first = next(iter(tests.values()))
        assert first is not None
        numbers = f"{first.diff:+.4f}, Holm-adjusted p {_p_value(first.p_holm)}"
        line = f"Winner {who} at {value:.4f}, significantly ahead of "
        if len(tests) > 1:
            line += f"every other model (the runner-up, {first.other}, by {numbers})."
        elif first.other == runner_up:
            line += f"the runner-up {runner_up} ({numbers})."
        else:
            line += (
                f"{first.other} ({numbers}); its lead of {value - scores[runner_up]:+.4f} over the runner-up "
                f"{runner_up} is not tested."
            )
        if families[leader] == BASELINE_FAMILY:
            line += " A simple baseline wins: no other model scores higher on this data."
    if reference is not None and leader != reference:
        line += _cost_sentence(headline, leader, reference)
    return line


def _unsettled_lead(test: _Test | None, lead: float, other: str) -> str:
    """Why a lead (of ndcg ``lead``) over ``other`` decides nothing: untested, not significant, or significant
    the other way."""
    lead_over = f"its lead of {lead:+.4f} over {other}"
    if test is None:
        return f"{lead_over} is not tested"
    p = _p_value(test.p_holm)
    if test.significant:  # the signed-rank test can disagree with the sign of the mean difference
        return (
            f"{lead_over} is not significant in its favour (the signed-rank test favours {other}: mean "
            f"difference {test.diff:+.4f}, Holm-adjusted p {p})"
        )
    return (
        f"{lead_over} is not significant (95% CI [{test.ci_low:+.4f}, {test.ci_high:+.4f}], Holm-adjusted p "
        f"{p}{_mde(test)})"
    )


def _cost_sentence(headline: _Headline, model: str, reference: str) -> str:
    """`` Cost: +0.0100 ndcg@10 at 5.2× ease's CPU time (fit 12.3 s vs 2.4 s).``; empty without costs."""
    difference = float(headline.scores[model] - headline.scores[reference])
    phrase = cost_phrase(headline.costs, model, reference, difference, headline.k)
    return f" Cost: {phrase}." if phrase else ""


def _family_lines(headline: _Headline, reference: str | None) -> list[str]:
    """Each family's best model (best family first), its difference to ``reference`` and whether that
    difference is significant."""
    scores, k = headline.scores, headline.k
    lines = []
    seen: set[str] = set()
    for model, value in scores.items():
        family = headline.families[model]
        if family in seen:  # scores are sorted: the first model of a family is its best
            continue
        seen.add(family)
        line = f"Best {family}: {model}, ndcg@{k} {value:.4f}"
        if reference is None:
            lines.append(line + ".")
        elif model == reference:
            lines.append(line + " — the best non-neural model, the reference.")
        else:
            difference = _difference(value, scores[reference])
            words = _words(_test(headline, str(model), reference))
            lines.append(line + f", {difference} against {reference}, {words}.")
    return lines


def _difference(value: float, reference: float) -> str:
    """``+0.0100 (+2.3%)``; no relative figure against a reference of 0."""
    relative = f" ({(value - reference) / reference:+.1%})" if reference > 0 else ""
    return f"{value - reference:+.4f}{relative}"


def _neural_line(
    headline: _Headline, reference: str | None, significance: pd.DataFrame, flagged: bool
) -> str:
    """The best neural model against the best non-neural one, from the significance table; its cost."""
    scores, families, segment, k = headline.scores, headline.families, headline.segment, headline.k
    neural = _best_of(scores, [m for m in scores.index if families[m] == NEURAL])
    if neural is None:
        return "No neural model in the race: there is no neural model to set against the simple ones."
    if reference is None:
        return f"No non-neural model in the race: {neural} has no simple model to beat."
    cost = _cost_sentence(headline, neural, reference)
    test = _test(headline, neural, reference)
    if test is None:
        if flagged:
            why = ": the segment is too small (flagged) to be tested"
        elif len(significance):
            why = f" (the tests compare every model with {significance['baseline'].iloc[0]})"
        else:
            why = " (no significance table)"
        return f"No significance test of {neural} against {reference} on {segment} at ndcg@{k}{why}.{cost}"
    if not test.significant:
        plain = "no significant difference"
    elif test.diff > 0:
        plain = f"{neural} beats it significantly"
    else:
        plain = f"{neural} is significantly worse"
    return (
        f"{neural} (best neural) against {reference} (best non-neural), ndcg@{k} on {segment}: mean "
        f"difference {test.diff:+.4f}, 95% CI [{test.ci_low:+.4f}, {test.ci_high:+.4f}], "
        f"Holm-adjusted p {_p_value(test.p_holm)}{_mde(test)}: {plain}.{cost}"
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
