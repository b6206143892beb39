"""A small seeded random search over a model's ``search_space``, scored by NDCG@k on the validation split.

The first trial is always the configured / default parameters, so tuning can only keep or improve the
validation figure. Parameters set explicitly in the configuration are fixed, never searched. Models that
early-stop on validation see it twice (stopping and selection), the usual practice for small searches.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from recpipeline.fitting.holdout import validation_scorer
from recpipeline.models.base import Logger, Recommender, no_log
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.registry import create_model


@dataclass
class TuningResult:
    model: Recommender  # fitted with the best parameters
    params: dict[str, Any]
    #: one entry per trial: {"params": ..., "ndcg": ..., "seconds": ...}, in the order tried
    trials: list[dict[str, Any]] = field(default_factory=list)
    ndcg: float = float("nan")  # the chosen parameters' validation NDCG@k


def candidate_params(
    model_class: type[Recommender], fixed: dict[str, Any], trials: int, seed: int
) -> list[dict]:
    """``fixed`` first, then up to ``trials - 1`` distinct seeded draws from the unfixed part of the space."""
    space = {name: values for name, values in model_class.search_space.items() if name not in fixed}
    defaults = model_class(**fixed).get_params()
    grid = [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]
    grid = [combo for combo in grid if any(defaults.get(k) != v for k, v in combo.items())]
    picks = np.random.default_rng(seed).permutation(len(grid))[: max(trials - 1, 0)]
    return [dict(fixed)] + [{**fixed, **grid[i]} for i in picks]


def tune(
    name: str,
    fixed: dict[str, Any],
    train: sp.csr_matrix,
    validation: sp.csr_matrix,
    *,
    trials: int,
    k: int,
    seed: int,
    context: FitContext | None = None,
    score_context: ScoreContext | None = None,
    log: Logger = no_log,
) -> TuningResult:
    """Fit model ``name`` for each candidate and keep the one with the best validation NDCG@``k``.

    ``score_context`` is what validation scoring sees (train events as history for sequence models);
    ``context.validate`` scores each trial and stops torch trials early.
    """
    context = context or FitContext()
    if context.validate is None:  # called alone: the default scorer (``train_model`` hands in the run's)
        context = replace(context, validate=validation_scorer(train, validation, seed=seed))
    validate = context.validate
    model_class = type(create_model(name, fixed))
    best: TuningResult | None = None
    best_ndcg = -np.inf
    results = []
    for number, params in enumerate(candidate_params(model_class, fixed, trials, seed), start=1):
        started = time.perf_counter()
        model = create_model(name, params).fit(train, validation, context=context)
        ndcg = validate(model, k, score_context) if validate else float("nan")
        seconds = time.perf_counter() - started
        searched = {key: value for key, value in params.items() if key not in fixed}
        results.append({"params": searched, "ndcg": ndcg, "seconds": round(seconds, 3)})
        log(f"{name} trial {number}: {searched or 'defaults'} val ndcg@{k} {ndcg:.4f} ({seconds:.1f}s)")
        if best is None or ndcg > best_ndcg:
            best, best_ndcg = TuningResult(model, params, ndcg=ndcg), ndcg
    best.trials = results
    log(f"{name}: chose {best.params} (val ndcg@{k} {best_ndcg:.4f})")
    return best
