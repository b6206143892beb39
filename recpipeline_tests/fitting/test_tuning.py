"""Tuning (``fitting.tuning``): the configured parameters first, fixed ones never searched, seeded and
deterministic, repeats not refitted, torch trials pruned on their per-epoch validation and never chosen."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recpipeline.fitting.holdout import holdout_ndcg
from recpipeline.fitting.tuning import WARMUP_EPOCHS, searched_space, tune
from recpipeline.models import EASE, ItemKNN, MultVAE


def test_the_configured_parameters_come_first_and_fixed_ones_never_vary(blocks) -> None:
    train, held, context, _ = blocks
    fixed = {"binarize": True, "popularity_exponent": 0.0}  # only the regularization is left to search
    lines: list[str] = []
    result = tune("ease", fixed, train, held, trials=4, k=5, seed=3, context=context, log=lines.append)
    assert [trial["state"] for trial in result.trials] == ["complete"] * 4
    assert result.trials[0]["params"] == {} and lines[0].startswith("ease trial 1: defaults")
    searched = [trial["params"] for trial in result.trials[1:]]
    assert all(set(params) == {"regularization"} for params in searched)  # changed, and only that
    assert len({params["regularization"] for params in searched}) == 3  # distinct, never the default again
    assert (
        result.model.get_params()["binarize"] is True
        and result.model.get_params()["popularity_exponent"] == 0
    )
    best = max(result.trials, key=lambda trial: trial["ndcg"])
    assert result.params == {**fixed, **best["params"]} and result.ndcg == best["ndcg"]
    assert holdout_ndcg(result.model, train, held, 5) == pytest.approx(best["ndcg"])
    assert all(trial["epochs"] is None for trial in result.trials)  # EASE has no epochs


def test_the_same_seed_gives_the_same_trials_and_choice(blocks) -> None:
    train, held, context, _ = blocks
    runs = [tune("item_knn", {}, train, held, trials=5, k=5, seed=7, context=context) for _ in range(2)]
    assert runs[0].trials[0]["params"] == {}
    strip = [
        [{key: value for key, value in t.items() if key != "seconds"} for t in run.trials] for run in runs
    ]
    assert strip[0] == strip[1] and runs[0].params == runs[1].params
    assert len({str(trial["params"]) for trial in runs[0].trials}) == 5


def test_a_small_space_is_tried_once_each_and_the_search_ends(blocks) -> None:
    """Two candidates, eight trials asked: the sampler's repeats are not refitted, the search stops."""
    train, held, context, _ = blocks
    fixed = {"neighbours": 50, "weighting": "none", "shrinkage": 0.0}  # binarize: True or False
    lines: list[str] = []
    result = tune("item_knn", fixed, train, held, trials=8, k=5, seed=0, context=context, log=lines.append)
    assert [trial["params"] for trial in result.trials] == [{}, {"binarize": False}]
    assert sum(" trial " in line for line in lines) == 2


def test_a_default_missing_from_the_listed_values_is_searched_too(monkeypatch) -> None:
    monkeypatch.setattr(EASE, "search_space", {"regularization": [100.0, 200.0], "binarize": [True, False]})
    assert searched_space(EASE, {"binarize": False}) == {"regularization": [500.0, 100.0, 200.0]}
    assert searched_space(ItemKNN, {})["neighbours"] == ItemKNN.search_space["neighbours"]


def test_a_torch_trial_below_the_median_is_pruned_and_never_chosen(blocks) -> None:
    """A scorer that sees the default Mult-VAE at 0.5 every epoch and any other at 0.1: the first two trials
    run to the end (the pruner needs two finished), the later ones stop at the warm-up's end."""
    train, held, context, _ = blocks

    def scorer(model, k, score_context) -> float:
        params = model.get_params()
        return 0.5 if (params["dropout"], params["beta_max"]) == (0.5, 0.2) else 0.1

    fixed = {"hidden": 16, "latent": 8, "epochs": WARMUP_EPOCHS + 1, "patience": 50, "num_threads": 1}
    lines: list[str] = []
    scored = replace(context, validate=scorer)
    result = tune("mult_vae", fixed, train, held, trials=4, k=5, seed=0, context=scored, log=lines.append)
    states = [(trial["state"], trial["epochs"], trial["ndcg"]) for trial in result.trials]
    full, cut = WARMUP_EPOCHS + 1, WARMUP_EPOCHS
    assert states == [
        ("complete", full, 0.5),
        ("complete", full, 0.1),
        ("pruned", cut, 0.1),
        ("pruned", cut, 0.1),
    ]
    assert sum(f"pruned after epoch {cut}" in line for line in lines) == 2
    assert result.params == fixed and result.ndcg == 0.5 and isinstance(result.model, MultVAE)


@pytest.mark.parametrize("winner_at_full_length", [0.3, 0.7])
def test_trials_train_at_most_their_budget_and_the_winner_must_beat_the_configured_at_full_length(
    blocks, winner_at_full_length
) -> None:
    """``trial_epochs`` 2 against Mult-VAE's 4: the configured trial trains all 4, the others stop at 2. A
    scorer puts the other settings above the configured 0.5 within 2 epochs (0.6); fitted with all 4
    epochs the winner scores ``winner_at_full_length`` and is kept only above 0.5."""
    train, held, context, _ = blocks

    def scorer(model, k, score_context) -> float:
        params = model.get_params()
        if params["dropout"] == 0.5:
            return 0.5
        return 0.6 if params["epochs"] == 2 else winner_at_full_length

    fixed = {"hidden": 16, "latent": 8, "epochs": 4, "patience": 50, "num_threads": 1}
    lines: list[str] = []
    scored = replace(context, validate=scorer)
    result = tune(
        "mult_vae",
        fixed,
        train,
        held,
        trials=3,
        k=5,
        seed=0,
        context=scored,
        log=lines.append,
        trial_epochs=2,
    )
    assert [trial["epochs"] for trial in result.trials] == [4, 2, 2]
    assert sum("won within 2 epochs: fitting it with its own" in line for line in lines) == 1
    assert result.model.get_params()["epochs"] == 4 and len(result.model.validation_curve_) == 4
    if winner_at_full_length > 0.5:
        assert result.params != fixed and result.ndcg == winner_at_full_length
    else:
        assert result.params == fixed and result.ndcg == 0.5
        assert any("the configured 0.5000: kept those" in line for line in lines)


def test_a_model_without_epochs_ignores_the_trial_budget(blocks) -> None:
    train, held, context, _ = blocks
    lines: list[str] = []
    tune("ease", {}, train, held, trials=2, k=5, seed=0, context=context, log=lines.append, trial_epochs=2)
    assert not any("won within" in line for line in lines)
