"""The verdict in words, on hand-built metrics and significance tables: the exact sentences."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from recpipeline.evaluation.costs import COST_COLUMNS, cost_phrase, format_ratio
from recpipeline.evaluation.significance import SIGNIFICANCE_COLUMNS
from recpipeline.evaluation.verdict import evaluated_families, verdict_lines, verdict_markdown

FAMILIES = {"mult_vae": "neural", "ease": "linear", "als": "factorisation", "popularity": "baseline"}
FALLBACK = (
    "40 of 100 evaluated users (40.0%) have no history and are served by the fallback (popularity) in every "
    "model that does not serve new users itself."
)


def _metrics(scores: dict[str, float], with_history_users: int = 60, flagged: bool = False) -> pd.DataFrame:
    """ndcg@10 per model (``scores`` on with_history, half on all), plus rows the verdict must ignore."""
    rows = []
    for model, score in scores.items():
        for segment, value, n_users in (
            ("all", score / 2, 100),
            ("with_history", score, with_history_users),
            ("new_users", 0.05, 40),
        ):
            served_by = "popularity" if segment == "new_users" and model != "ease" else model
            small = flagged and segment == "with_history"
            rows += [
                (model, segment, "ndcg", 10, value, n_users, served_by, small),
                (model, segment, "recall", 10, 0.9, n_users, served_by, small),
                (model, segment, "ndcg", 5, 0.9, n_users, served_by, small),
            ]
    columns = ["model", "segment", "metric", "k", "value", "n_users", "served_by", "flagged"]
    return pd.DataFrame(rows, columns=columns)


def _significance(rows: list[tuple], baseline: str = "ease") -> pd.DataFrame:
    """(model, mean_diff, ci_low, ci_high, p_holm, significant[, mde]) against ``baseline``, ndcg@10 on
    with_history; mde NaN when not given."""
    table = pd.DataFrame(
        [
            ("with_history", model, baseline, "ndcg", 10, 60, diff, low, high, p, p, significant, *mde)
            for model, diff, low, high, p, significant, *mde in ((*row, math.nan)[:7] for row in rows)
        ],
        columns=list(SIGNIFICANCE_COLUMNS),
    )
    # the same models on segment all and at another K, with other numbers: the verdict must not read these
    others = table.assign(segment="all", mean_diff=9.0)
    return pd.concat([others, table, table.assign(k=5, mean_diff=9.0)], ignore_index=True)


SCORES = {"mult_vae": 0.30, "ease": 0.25, "als": 0.20, "popularity": 0.10}
NEURAL_WIN = (
    "mult_vae (best neural) against ease (best non-neural), ndcg@10 on with_history: mean difference "
)


def test_a_significant_neural_win_in_words() -> None:
    significance = _significance(
        [
            ("mult_vae", 0.05, 0.02, 0.08, 0.003, True, 0.03),
            ("als", -0.05, -0.07, -0.03, 0.01, True, 0.025),
            ("popularity", -0.15, -0.31, 0.01, 0.08, False, 0.16),
        ]
    )
    assert verdict_lines(_metrics(SCORES), significance, FAMILIES, 10) == [
        "Winner on with_history (60 users), by ndcg@10: mult_vae (neural) at 0.3000, significantly ahead of "
        "the runner-up ease (+0.0500, Holm-adjusted p 0.0030).",
        "Best neural: mult_vae, ndcg@10 0.3000, +0.0500 (+20.0%) against ease, significant (Holm-adjusted "
        "p 0.0030).",
        "Best linear: ease, ndcg@10 0.2500 — the best non-neural model, the reference.",
        "Best factorisation: als, ndcg@10 0.2000, -0.0500 (-20.0%) against ease, significant (Holm-adjusted "
        "p 0.0100).",
        # every line with a difference says whether it is significant
        "Best baseline: popularity, ndcg@10 0.1000, -0.1500 (-60.0%) against ease, not significant "
        "(Holm-adjusted p 0.0800, smallest detectable difference 0.1600).",
        NEURAL_WIN + "+0.0500, 95% CI [+0.0200, +0.0800], Holm-adjusted p 0.0030, smallest detectable "
        "difference 0.0300: mult_vae beats it significantly.",
        FALLBACK,
    ]


def test_a_lead_that_is_not_significant_is_no_decision() -> None:
    significance = _significance([("mult_vae", 0.05, -0.01, 0.11, 0.2, False, 0.06)])
    lines = verdict_lines(_metrics(SCORES), significance, FAMILIES, 10)
    assert lines[0] == (
        "No decision on with_history (60 users), by ndcg@10: mult_vae (neural) leads at 0.3000, but its lead "
        "of +0.0500 over ease is not significant (95% CI [-0.0100, +0.1100], Holm-adjusted p 0.2000, "
        "smallest detectable difference 0.0600)."
    )
    assert lines[1] == (
        "Best neural: mult_vae, ndcg@10 0.3000, +0.0500 (+20.0%) against ease, not significant "
        "(Holm-adjusted p 0.2000, smallest detectable difference 0.0600)."
    )
    assert lines[3] == "Best factorisation: als, ndcg@10 0.2000, -0.0500 (-20.0%) against ease, not tested."
    assert lines[-2] == (
        NEURAL_WIN + "+0.0500, 95% CI [-0.0100, +0.1100], Holm-adjusted p 0.2000, smallest detectable "
        "difference 0.0600: no significant difference."
    )
    # a table written before mde existed: the same words without it
    older = significance.drop(columns="mde")
    assert verdict_lines(_metrics(SCORES), older, FAMILIES, 10)[-2] == (
        NEURAL_WIN + "+0.0500, 95% CI [-0.0100, +0.1100], Holm-adjusted p 0.2000: no significant difference."
    )


def test_the_baseline_leads_only_when_every_other_model_is_significantly_behind() -> None:
    scores = {"ease": 0.25, "als": 0.20, "popularity": 0.10}
    behind = [("als", -0.05, -0.07, -0.03, 0.01, True, 0.02), ("popularity", -0.15, -0.2, -0.1, 0.001, True)]
    lines = verdict_lines(_metrics(scores), _significance(behind), FAMILIES, 10)
    assert lines[0] == (
        "Winner on with_history (60 users), by ndcg@10: ease (linear) at 0.2500, significantly ahead of "
        "every other model (the runner-up, als, by +0.0500, Holm-adjusted p 0.0100)."
    )
    # the runner-up is significantly behind, a model further down is not: no decision
    noisy = [behind[0], ("popularity", -0.15, -0.35, 0.05, 0.3, False, 0.2)]
    assert verdict_lines(_metrics(scores), _significance(noisy), FAMILIES, 10)[0] == (
        "No decision on with_history (60 users), by ndcg@10: ease (linear) leads at 0.2500, but its lead of "
        "+0.1500 over popularity is not significant (95% CI [-0.0500, +0.3500], Holm-adjusted p 0.3000, "
        "smallest detectable difference 0.2000)."
    )
    # significant, but the signed-rank test disagrees with the sign of the mean difference
    odd = [("als", 0.01, -0.01, 0.03, 0.04, True, 0.02), behind[1]]
    assert verdict_lines(_metrics(scores), _significance(odd), FAMILIES, 10)[0] == (
        "No decision on with_history (60 users), by ndcg@10: ease (linear) leads at 0.2500, but its lead of "
        "+0.0500 over als is not significant in its favour (the signed-rank test favours als: mean "
        "difference -0.0100, Holm-adjusted p 0.0400)."
    )


def test_two_models_ahead_of_the_baseline_leave_the_lead_over_the_runner_up_untested() -> None:
    scores = {"mult_vae": 0.30, "sasrec": 0.29, "ease": 0.25}
    families = {**FAMILIES, "sasrec": "neural"}
    significance = _significance(
        [("mult_vae", 0.05, 0.02, 0.08, 0.003, True), ("sasrec", 0.04, 0.01, 0.07, 0.01, True)]
    )
    assert verdict_lines(_metrics(scores), significance, families, 10)[0] == (
        "Winner on with_history (60 users), by ndcg@10: mult_vae (neural) at 0.3000, significantly ahead of "
        "ease (+0.0500, Holm-adjusted p 0.0030); its lead of +0.0100 over the runner-up sasrec is not tested."
    )
    significance = _significance([("mult_vae", 0.05, -0.02, 0.12, 0.09, False, 0.07)])
    assert verdict_lines(_metrics(scores), significance, families, 10)[0] == (
        "No decision on with_history (60 users), by ndcg@10: mult_vae (neural) leads at 0.3000, but its lead "
        "of +0.0500 over ease is not significant (95% CI [-0.0200, +0.1200], Holm-adjusted p 0.0900, "
        "smallest detectable difference 0.0700)."
    )


def test_a_loss_in_words_with_a_baseline_winner() -> None:
    scores = {"popularity": 0.40, "ease": 0.25, "mult_vae": 0.20}
    # popularity is the significance baseline: its lead over each model is read from that model's row
    significance = _significance(
        [("mult_vae", -0.2, -0.25, -0.15, 0.00001, True), ("ease", -0.15, -0.2, -0.1, 0.002, True)],
        baseline="popularity",
    )
    lines = verdict_lines(_metrics(scores), significance, FAMILIES, 10)
    assert lines[0] == (
        "Winner on with_history (60 users), by ndcg@10: popularity (baseline) at 0.4000, significantly ahead "
        "of every other model (the runner-up, ease, by +0.1500, Holm-adjusted p 0.0020). A simple baseline "
        "wins: no other model scores higher on this data."
    )
    # the best non-neural model is the winner itself, the reference of every difference
    assert lines[1] == "Best baseline: popularity, ndcg@10 0.4000 — the best non-neural model, the reference."
    assert lines[2] == (
        "Best linear: ease, ndcg@10 0.2500, -0.1500 (-37.5%) against popularity, significant (Holm-adjusted "
        "p 0.0020)."
    )
    # the verdict's reference (best non-neural) and the table's baseline differ: the neural line says so
    mismatched = _significance([("mult_vae", -0.05, -0.08, -0.02, 0.00001, True)])
    lines = verdict_lines(_metrics(scores), mismatched, FAMILIES, 10)
    assert lines[-2] == (
        "No significance test of mult_vae against popularity on with_history at ndcg@10 (the tests compare "
        "every model with ease)."
    )
    # and no row pairs popularity with ease: its lead is untested
    assert lines[0] == (
        "No decision on with_history (60 users), by ndcg@10: popularity (baseline) leads at 0.4000, +0.1500 "
        "ahead of ease, but the lead is not tested (no significance test of it on with_history at ndcg@10)."
    )
    # evaluation.baseline: mult_vae — the neural line reads ease's row against it the other way round
    reverse = _significance([("ease", 0.05, 0.02, 0.08, 0.00001, True)], baseline="mult_vae")
    lines = verdict_lines(_metrics({"ease": 0.25, "mult_vae": 0.20}), reverse, FAMILIES, 10)
    assert lines[-2] == (
        NEURAL_WIN
        + "-0.0500, 95% CI [-0.0800, -0.0200], Holm-adjusted p < 0.0001: mult_vae is significantly worse."
    )
    lines = verdict_lines(_metrics({"ease": 0.25, "mult_vae": 0.20}), mismatched, FAMILIES, 10)
    assert lines[-2] == (
        NEURAL_WIN
        + "-0.0500, 95% CI [-0.0800, -0.0200], Holm-adjusted p < 0.0001: mult_vae is significantly "
        "worse."
    )


def test_no_neural_model_in_the_race() -> None:
    scores = {"ease": 0.25, "popularity": 0.10}
    lines = verdict_lines(_metrics(scores), _significance([]), FAMILIES, 10)
    assert lines == [
        "No decision on with_history (60 users), by ndcg@10: ease (linear) leads at 0.2500, +0.1500 ahead of "
        "popularity, but the lead is not tested (no significance test of it on with_history at ndcg@10).",
        "Best linear: ease, ndcg@10 0.2500 — the best non-neural model, the reference.",
        "Best baseline: popularity, ndcg@10 0.1000, -0.1500 (-60.0%) against ease, not tested.",
        "No neural model in the race: there is no neural model to set against the simple ones.",
        # ease and popularity rank their new users themselves (served_by = the model)
        "40 of 100 evaluated users (40.0%) have no history; every model serves them itself.",
    ]


def test_only_one_model_and_only_neural_models() -> None:
    lines = verdict_lines(_metrics({"mult_vae": 0.3}), _significance([]), FAMILIES, 10)
    assert lines == [
        "Only one model in the race: mult_vae (neural), ndcg@10 0.3000 on with_history (60 users); nothing "
        "to compare it with.",
        FALLBACK,
    ]
    families = {"mult_vae": "neural", "sasrec": "neural"}
    lines = verdict_lines(_metrics({"mult_vae": 0.3, "sasrec": 0.2}), _significance([]), families, 10)
    assert lines[1:3] == [
        "Best neural: mult_vae, ndcg@10 0.3000.",
        "No non-neural model in the race: mult_vae has no simple model to beat.",
    ]


def test_a_flagged_small_headline_segment_is_no_signal() -> None:
    significance = _significance([]).iloc[0:0]  # small segments are left out of significance
    lines = verdict_lines(_metrics(SCORES, with_history_users=12, flagged=True), significance, FAMILIES, 10)
    assert lines[0] == (
        "No signal on with_history (12 users), by ndcg@10: 12 users are fewer than "
        "evaluation.min_segment_users (the segment is flagged and not tested), so no winner is named."
    )
    assert lines[1] == "Best neural: mult_vae, ndcg@10 0.3000, +0.0500 (+20.0%) against ease, not tested."
    assert lines[-2] == (
        "No significance test of mult_vae against ease on with_history at ndcg@10: the segment is too small "
        "(flagged) to be tested."
    )
    one = verdict_lines(
        _metrics({"ease": 0.3}, with_history_users=12, flagged=True), significance, FAMILIES, 10
    )
    assert one == [
        "No signal on with_history (12 users), by ndcg@10: 12 users are fewer than "
        "evaluation.min_segment_users (the segment is flagged and not tested), so there is nothing to judge.",
        "40 of 100 evaluated users (40.0%) have no history; every model serves them itself.",
    ]


def test_every_score_zero_is_no_signal() -> None:
    scores = {"mult_vae": 0.0, "ease": 0.0, "popularity": 0.0}
    significance = _significance([("mult_vae", 0.0, 0.0, 0.0, 1.0, False, 0.0)])
    assert verdict_lines(_metrics(scores), significance, FAMILIES, 10) == [
        "No signal on with_history (60 users), by ndcg@10: every model scores 0.0000 (no top-10 list holds a "
        "relevant test item), so no winner is named.",
        FALLBACK,
    ]
    assert verdict_lines(_metrics({"ease": 0.0}), significance, FAMILIES, 10)[0] == (
        "No signal on with_history (60 users), by ndcg@10: ease, the only model, scores 0.0000 (no top-10 "
        "list holds a relevant test item), so there is nothing to judge."
    )


def test_a_thin_session_log_is_no_signal_in_positions() -> None:
    """The bad case: three test positions, every score 0 — once read "Winner … item_knn at 0.0000"."""
    rows = [
        (model, segment, "ndcg", 10, 0.0, n, model, True)
        for model in ("item_knn", "gru4rec")
        for segment, n in (("all", 3), ("prefix_1", 2), ("prefix_2_4", 1))
    ]
    columns = ["model", "segment", "metric", "k", "value", "n_users", "served_by", "flagged"]
    families = {"item_knn": "neighbourhood", "gru4rec": "neural"}
    lines = verdict_lines(pd.DataFrame(rows, columns=columns), _significance([]).iloc[0:0], families, 10)
    assert lines == [
        "No signal on all (3 positions), by ndcg@10: every model scores 0.0000 (no top-10 list holds a "
        "relevant test item); 3 positions are fewer than evaluation.min_segment_users (the segment is "
        "flagged and not tested), so no winner is named.",
        "Session protocol: 3 positions of test sessions, each scored from its prefix.",
    ]


def _costs(rows: list[tuple]) -> pd.DataFrame:
    """(model, fit_s, cpu_s) with the other cost columns filled in."""
    return pd.DataFrame(
        [(model, fit, cpu, 10, None, 1.5, 1_000_000, 300.0) for model, fit, cpu in rows],
        columns=list(COST_COLUMNS),
    )


def test_the_cost_beside_the_accuracy() -> None:
    significance = _significance([("mult_vae", 0.05, 0.02, 0.08, 0.003, True, 0.03)])
    costs = _costs([("mult_vae", 14.0, 12.3), ("ease", 3.0, 2.4), ("als", 5.0, 9.0)])
    lines = verdict_lines(_metrics(SCORES), significance, FAMILIES, 10, costs=costs)
    cost = " Cost: +0.0500 ndcg@10 at 5.1× ease's CPU time (fit 12.3 s vs 2.4 s)."
    assert lines[0].endswith("(+0.0500, Holm-adjusted p 0.0030)." + cost)
    assert lines[-2].endswith("mult_vae beats it significantly." + cost)
    assert sum(cost in line for line in lines) == 2  # the winner's and the neural line, no other
    # a CPU time not measured: both models' wall times instead, said so
    costs = _costs([("mult_vae", 14.0, float("nan")), ("ease", 3.0, 2.4)])
    lines = verdict_lines(_metrics(SCORES), significance, FAMILIES, 10, costs=costs)
    assert lines[-2].endswith(" Cost: +0.0500 ndcg@10 at 4.7× ease's wall time (fit 14.0 s vs 3.0 s).")
    # the reference winning: its line has no cost; a neural model behind it still does
    scores = {"ease": 0.25, "mult_vae": 0.20}
    significance = _significance([("mult_vae", -0.05, -0.08, -0.02, 0.00001, True)])
    costs = _costs([("mult_vae", 300.0, 1234.0), ("ease", 3.0, 2.5)])
    lines = verdict_lines(_metrics(scores), significance, FAMILIES, 10, costs=costs)
    assert "Cost" not in lines[0]
    assert lines[-2].endswith(" Cost: -0.0500 ndcg@10 at 494× ease's CPU time (fit 1,234 s vs 2.5 s).")
    # a model without a cost row: no cost sentence
    lines = verdict_lines(_metrics(scores), significance, FAMILIES, 10, costs=_costs([("ease", 3.0, 2.5)]))
    assert "Cost" not in " ".join(lines)


def test_cost_ratios_read_at_their_size() -> None:
    assert [format_ratio(r) for r in (0.456, 0.0123, 1.0, 5.26, 34.4, 1234.6)] == [
        "0.46×",
        "0.012×",
        "1.0×",
        "5.3×",
        "34×",
        "1,235×",
    ]
    assert format_ratio(float("nan")) == format_ratio(float("inf")) == "n/a"
    # a reference that took no measurable time: the times, no ratio
    costs = _costs([("mult_vae", 14.0, 12.3), ("popularity", 0.0, 0.0)])
    assert cost_phrase(costs, "mult_vae", "popularity", 0.2, 10) == (
        "+0.2000 ndcg@10 against popularity, CPU time fit 12.3 s vs 0 s"
    )
    assert cost_phrase(None, "mult_vae", "popularity", 0.2, 10) is None


def test_older_tables_without_the_headline_segment_or_new_columns() -> None:
    table = _metrics({"ease": 0.25, "popularity": 0.0})
    table = table[table["segment"] != "with_history"].drop(columns=["served_by", "flagged"])
    lines = verdict_lines(table, _significance([]).iloc[0:0], FAMILIES, 10)
    assert lines == [
        "No decision on all (100 users), by ndcg@10: ease (linear) leads at 0.1250, +0.1250 ahead of "
        "popularity, but the lead is not tested (no significance test of it on all at ndcg@10).",
        "Best linear: ease, ndcg@10 0.1250 — the best non-neural model, the reference.",
        "Best baseline: popularity, ndcg@10 0.0000, -0.1250 (-100.0%) against ease, not tested.",
        "No neural model in the race: there is no neural model to set against the simple ones.",
        "40 of 100 evaluated users (40.0%) have no history and are served by the cold-start fallback.",
    ]
    no_new_users = table[table["segment"] != "new_users"]
    assert verdict_lines(no_new_users, _significance([]), FAMILIES, 10)[-1] == (
        "All 100 evaluated users have history: the fallback serves none of them."
    )


def test_relative_difference_left_out_against_zero_and_every_list_needs_a_family() -> None:
    lines = verdict_lines(_metrics({"ease": 0.0, "mult_vae": 0.1}), _significance([]), FAMILIES, 10)
    assert lines[1] == "Best neural: mult_vae, ndcg@10 0.1000, +0.1000 against ease, not tested."
    with pytest.raises(ValueError, match="no family for the evaluated lists \\['mine'\\]"):
        verdict_lines(_metrics({"mine": 0.1}), _significance([]), FAMILIES, 10)


def test_markdown_bullets_and_families_of_configured_and_external_lists() -> None:
    assert verdict_markdown(["One.", "Two."]) == "- One.\n- Two."
    families = evaluated_families(["ease", "mine", "ease", "mult_vae"], ["ease", "mult_vae"])
    assert families == {"ease": "linear", "mult_vae": "neural", "mine": "external"}
