"""The verdict in words, on hand-built metrics and significance tables: the exact sentences."""

from __future__ import annotations

import pandas as pd
import pytest

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


def _significance(rows: list[tuple[str, float, float, float, float, bool]]) -> pd.DataFrame:
    """(model, mean_diff, ci_low, ci_high, p_holm, significant) against ease, ndcg@10 on with_history."""
    table = pd.DataFrame(
        [
            ("with_history", model, "ease", "ndcg", 10, 60, diff, low, high, p, p, significant)
            for model, diff, low, high, p, significant in rows
        ],
        columns=list(SIGNIFICANCE_COLUMNS),
    )
    # the same models on segment all and at another K, with other numbers: the verdict must not read these
    others = table.assign(segment="all", mean_diff=9.0)
    return pd.concat([others, table, table.assign(k=5, mean_diff=9.0)], ignore_index=True)


SCORES = {"mult_vae": 0.30, "ease": 0.25, "als": 0.20, "popularity": 0.10}


def test_a_significant_neural_win_in_words() -> None:
    significance = _significance(
        [("mult_vae", 0.05, 0.02, 0.08, 0.003, True), ("als", -0.05, -0.07, -0.03, 0.01, True)]
    )
    assert verdict_lines(_metrics(SCORES), significance, FAMILIES, 10) == [
        "Winner on with_history (60 users), by ndcg@10: mult_vae (neural) at 0.3000.",
        "Best neural: mult_vae, ndcg@10 0.3000, +0.0500 (+20.0%) against ease.",
        "Best linear: ease, ndcg@10 0.2500 — the best non-neural model, the reference.",
        "Best factorisation: als, ndcg@10 0.2000, -0.0500 (-20.0%) against ease.",
        "Best baseline: popularity, ndcg@10 0.1000, -0.1500 (-60.0%) against ease.",
        "mult_vae (best neural) against ease (best non-neural), ndcg@10 on with_history: mean difference "
        "+0.0500, 95% CI [+0.0200, +0.0800], Holm-adjusted p 0.0030: mult_vae beats it significantly.",
        FALLBACK,
    ]


def test_a_tie_in_words() -> None:
    significance = _significance([("mult_vae", 0.05, -0.01, 0.11, 0.2, False)])
    sentence = verdict_lines(_metrics(SCORES), significance, FAMILIES, 10)[-2]
    assert sentence == (
        "mult_vae (best neural) against ease (best non-neural), ndcg@10 on with_history: mean difference "
        "+0.0500, 95% CI [-0.0100, +0.1100], Holm-adjusted p 0.2000: no significant difference."
    )


def test_a_loss_in_words_with_a_baseline_winner() -> None:
    scores = {"popularity": 0.40, "ease": 0.25, "mult_vae": 0.20}
    significance = _significance([("mult_vae", -0.05, -0.08, -0.02, 0.00001, True)])
    lines = verdict_lines(_metrics(scores), significance, FAMILIES, 10)
    assert lines[0] == (
        "Winner on with_history (60 users), by ndcg@10: popularity (baseline) at 0.4000. A simple baseline "
        "wins: no other model scores higher on this data."
    )
    # the best non-neural model is the winner itself, the reference of every difference
    assert lines[1] == "Best baseline: popularity, ndcg@10 0.4000 — the best non-neural model, the reference."
    assert lines[2] == "Best linear: ease, ndcg@10 0.2500, -0.1500 (-37.5%) against popularity."
    assert lines[-2] == (
        "No significance test of mult_vae against popularity on with_history at ndcg@10 (the tests compare "
        "every model with ease)."
    )
    lines = verdict_lines(_metrics({"ease": 0.25, "mult_vae": 0.20}), significance, FAMILIES, 10)
    assert lines[-2] == (
        "mult_vae (best neural) against ease (best non-neural), ndcg@10 on with_history: mean difference "
        "-0.0500, 95% CI [-0.0800, -0.0200], Holm-adjusted p < 0.0001: mult_vae is significantly worse."
    )


def test_no_neural_model_in_the_race() -> None:
    scores = {"ease": 0.25, "popularity": 0.10}
    lines = verdict_lines(_metrics(scores), _significance([]), FAMILIES, 10)
    assert lines == [
        "Winner on with_history (60 users), by ndcg@10: ease (linear) at 0.2500.",
        "Best linear: ease, ndcg@10 0.2500 — the best non-neural model, the reference.",
        "Best baseline: popularity, ndcg@10 0.1000, -0.1500 (-60.0%) against ease.",
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


def test_a_flagged_small_headline_segment() -> None:
    significance = _significance([]).iloc[0:0]  # small segments are left out of significance
    lines = verdict_lines(_metrics(SCORES, with_history_users=12, flagged=True), significance, FAMILIES, 10)
    assert lines[0] == (
        "Winner on with_history (12 users), by ndcg@10: mult_vae (neural) at 0.3000. Only 12 users: the "
        "segment is flagged (below evaluation.min_segment_users), so read this as indicative."
    )
    assert lines[-2] == (
        "No significance test of mult_vae against ease on with_history at ndcg@10: the segment is too small "
        "(flagged) to be tested."
    )


def test_older_tables_without_the_headline_segment_or_new_columns() -> None:
    table = _metrics({"ease": 0.25, "popularity": 0.0})
    table = table[table["segment"] != "with_history"].drop(columns=["served_by", "flagged"])
    lines = verdict_lines(table, _significance([]).iloc[0:0], FAMILIES, 10)
    assert lines == [
        "Winner on all (100 users), by ndcg@10: ease (linear) at 0.1250.",
        "Best linear: ease, ndcg@10 0.1250 — the best non-neural model, the reference.",
        "Best baseline: popularity, ndcg@10 0.0000, -0.1250 (-100.0%) against ease.",
        "No neural model in the race: there is no neural model to set against the simple ones.",
        "40 of 100 evaluated users (40.0%) have no history and are served by the cold-start fallback.",
    ]
    no_new_users = table[table["segment"] != "new_users"]
    assert verdict_lines(no_new_users, _significance([]), FAMILIES, 10)[-1] == (
        "All 100 evaluated users have history: the fallback serves none of them."
    )


def test_relative_difference_left_out_against_zero_and_every_list_needs_a_family() -> None:
    lines = verdict_lines(_metrics({"ease": 0.0, "mult_vae": 0.1}), _significance([]), FAMILIES, 10)
    assert lines[1] == "Best neural: mult_vae, ndcg@10 0.1000, +0.1000 against ease."
    with pytest.raises(ValueError, match="no family for the evaluated lists \\['mine'\\]"):
        verdict_lines(_metrics({"mine": 0.1}), _significance([]), FAMILIES, 10)


def test_markdown_bullets_and_families_of_configured_and_external_lists() -> None:
    assert verdict_markdown(["One.", "Two."]) == "- One.\n- Two."
    families = evaluated_families(["ease", "mine", "ease", "mult_vae"], ["ease", "mult_vae"])
    assert families == {"ease": "linear", "mult_vae": "neural", "mine": "external"}
