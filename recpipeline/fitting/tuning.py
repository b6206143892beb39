"""Hyperparameter search (Optuna) over a model's ``search_space``, scored by NDCG@k on the validation split.

TPE, seeded with the run's seed, proposes from each searched parameter's listed values (its default among
them). The first trial is always the configured / default parameters, so tuning can only keep or improve the
validation figure. Parameters set explicitly in the configuration are fixed, never searched. A model that
validates per epoch (the torch models, through ``FitContext.validate``) reports each epoch's figure, and a
median pruner stops a trial whose best figure so far, after a warm-up, is below the median of the finished
trials' at that epoch: it is recorded as pruned and never chosen. A proposal already tried is not fitted
again (its result is told to the sampler once more); the search ends early once every combination was tried.
The study lives in memory only. Models that early-stop on validation see it twice (stopping and selection),
the usual practice for small searches.

With ``trial_epochs`` the search runs at a lower fidelity: every later trial of a model that trains in epochs
stops after at most that many, a deterministic budget (a wall-clock one would make the choice depend on the
machine's load). The first trial, the configured parameters, still trains its own epochs, and the search
compares its best figure within the budget. Where another trial wins, its parameters are fitted once more
with their own epochs, early-stopped as usual, and kept only if that fit beats the configured parameters'
on validation: a search at low fidelity can favour settings that start fast and end worse, and tuning must
still only keep or improve the figure.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
import scipy.sparse as sp

from recpipeline.fitting.holdout import validation_scorer
from recpipeline.models.base import Logger, Recommender, no_log
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.registry import create_model

#: TPE's seeded random proposals before it models the results (the configured parameters are the first)
RANDOM_TRIALS = 4
#: finished trials the pruner compares with: the first trials always run to the end
PRUNE_AFTER_TRIALS = 2
#: no trial is pruned before this epoch: early epochs say little about where a curve ends
WARMUP_EPOCHS = 5
#: proposals asked per trial of the budget at most: TPE may keep proposing parameters already tried
ASKS_PER_TRIAL = 10


@dataclass
class TuningResult:
    model: Recommender  # fitted with the best parameters
    params: dict[str, Any]
    #: one entry per trial, in the order tried: {"params": the searched values unlike the defaults, "ndcg":
    #: its validation NDCG@k (a pruned trial's last epoch's), "seconds", "epochs": epochs validated (None for
    #: a model without epochs), "state": "complete" or "pruned"}
    trials: list[dict[str, Any]] = field(default_factory=list)
    ndcg: float = float("nan")  # the chosen parameters' validation NDCG@k


def searched_space(model_class: type[Recommender], fixed: dict[str, Any]) -> dict[str, list[Any]]:
    """The model's ``search_space`` less the ``fixed`` parameters, each parameter's default (given ``fixed``)
    first among its values where the list lacks it."""
    defaults = model_class(**fixed).get_params()
    return {
        name: values if defaults[name] in values else [defaults[name], *values]
        for name, values in model_class.search_space.items()
        if name not in fixed
    }


class _Pruned(Exception):
    """Raised from a trial's per-epoch validation to stop its fit."""


@dataclass
class _Outcome:
    """One fitted proposal: its model (None when pruned), validation NDCG and per-epoch figures."""

    model: Recommender | None
    ndcg: float
    curve: list[float]

    def entry(self, searched: dict[str, Any], seconds: float) -> dict[str, Any]:
        """The trial's entry in ``TuningResult.trials``."""
        return {
            "params": searched,
            "ndcg": self.ndcg,
            "seconds": round(seconds, 3),
            "epochs": len(self.curve) or None,
            "state": "pruned" if self.model is None else "complete",
        }

    def within(self, epochs: int) -> _Outcome:
        """The outcome as a trial capped at ``epochs`` would have reported it (its best figure by then)."""
        if len(self.curve) <= epochs:
            return self
        return _Outcome(self.model, max(self.curve[:epochs]), self.curve[:epochs])

    def summary(self, k: int) -> str:
        """The trial's figure for its log line."""
        figure = f"val ndcg@{k} {self.ndcg:.4f}"
        return figure if self.model is not None else f"{figure}, pruned after epoch {len(self.curve)}"


def _fit(
    name: str,
    params: dict[str, Any],
    train: sp.csr_matrix,
    validation: sp.csr_matrix,
    context: FitContext,
    trial: optuna.Trial,
    k: int,
    score_context: ScoreContext | None,
) -> _Outcome:
    """One trial's fit and validation NDCG@``k``; its per-epoch figures reported to ``trial``, which the
    pruner may stop (a pruned trial keeps its last epoch's figure)."""
    validate = context.validate
    if validate is None:
        return _Outcome(create_model(name, params).fit(train, validation, context=context), math.nan, [])
    curve: list[float] = []

    def reporting(model: Recommender, k: int, score_context: ScoreContext | None) -> float:
        ndcg = validate(model, k, score_context)
        curve.append(ndcg)
        trial.report(ndcg, len(curve))
        if trial.should_prune():
            raise _Pruned
        return ndcg

    try:
        model = create_model(name, params).fit(
            train, validation, context=replace(context, validate=reporting)
        )
    except _Pruned:
        return _Outcome(None, curve[-1], curve)
    return _Outcome(model, validate(model, k, score_context), curve)


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: _Outcome) -> None:
    """Close ``trial`` with ``outcome``."""
    if outcome.model is None:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    elif math.isnan(outcome.ndcg):  # nothing validated: nothing for the sampler to learn
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        study.tell(trial, outcome.ndcg)


def _study(seed: int) -> optuna.Study:
    """An in-memory study: TPE seeded with ``seed``, the median pruner after its warm-up."""
    return optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=RANDOM_TRIALS),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_TRIALS, n_warmup_steps=WARMUP_EPOCHS),
    )


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
    trial_epochs: int | None = None,
) -> TuningResult:
    """Fit model ``name`` for up to ``trials`` proposals and keep the one with the best validation
    NDCG@``k``.

    ``score_context`` is what validation scoring sees (train events as history for sequence models);
    ``context.validate`` scores each trial, stops torch trials early and prunes them. ``trial_epochs`` caps
    the epochs of every trial after the first (module docstring).
    """
    context = context or FitContext()
    if context.validate is None:  # called alone: the default scorer (``train_model`` hands in the run's)
        context = replace(context, validate=validation_scorer(train, validation, seed=seed))
    validate = context.validate
    model_class = type(create_model(name, fixed))
    space = searched_space(model_class, fixed)
    defaults = model_class(**fixed).get_params()
    own_epochs = defaults.get("epochs")
    capped = trial_epochs is not None and own_epochs is not None and own_epochs > trial_epochs
    budget_params = {"epochs": trial_epochs} if capped else {}
    # nothing to validate, nothing to choose by: the configured parameters alone
    budget = min(trials if validate else 1, math.prod(len(values) for values in space.values()))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial
    try:
        study = _study(seed)
        # the choices are positions in each value list: values may be lists (CFGAN's layers) or None
        study.enqueue_trial({param: values.index(defaults[param]) for param, values in space.items()})
        tried: dict[tuple[int, ...], _Outcome] = {}
        results: list[dict[str, Any]] = []
        best: TuningResult | None = None
        configured: _Outcome | None = None  # the first trial's, at full fidelity
        for _ in range(budget * ASKS_PER_TRIAL):
            if len(tried) == budget:
                break
            trial = study.ask()
            key = tuple(
                trial.suggest_categorical(param, list(range(len(values)))) for param, values in space.items()
            )
            if key in tried:  # a repeat: the first one's figures, not another fit
                for epoch, ndcg in enumerate(tried[key].curve, start=1):
                    trial.report(ndcg, epoch)
                _tell(study, trial, tried[key])
                continue
            chosen = {param: values[i] for (param, values), i in zip(space.items(), key, strict=True)}
            searched = {param: value for param, value in chosen.items() if defaults[param] != value}
            params = {**fixed, **searched}
            started = time.perf_counter()
            trial_params = params if configured is None else {**params, **budget_params}
            outcome = _fit(name, trial_params, train, validation, context, trial, k, score_context)
            seconds = time.perf_counter() - started
            configured = configured or outcome
            results.append(outcome.entry(searched, seconds))
            number = len(tried) + 1
            log(f"{name} trial {number}: {searched or 'defaults'} {outcome.summary(k)} ({seconds:.1f}s)")
            if capped:  # every trial compared at the budget's fidelity
                outcome = outcome.within(trial_epochs)
            tried[key] = outcome
            _tell(study, trial, outcome)
            if outcome.model is not None and (best is None or outcome.ndcg > best.ndcg):
                best = TuningResult(outcome.model, params, ndcg=outcome.ndcg)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if len(tried) < budget:
        log(f"{name}: the sampler kept proposing tried parameters: {len(tried)} of {budget} trials")
    assert best is not None and configured is not None  # the first trial is never pruned
    if capped:  # the configured parameters' full fit, unless the winner's own beats it
        kept = TuningResult(configured.model, fixed, ndcg=configured.ndcg)
        if best.model is not configured.model:
            log(f"{name}: {best.params} won within {trial_epochs} epochs: fitting it with its own")
            model = create_model(name, best.params).fit(train, validation, context=context, log=log)
            ndcg = validate(model, k, score_context)
            if ndcg > kept.ndcg:
                kept = TuningResult(model, best.params, ndcg=ndcg)
            else:
                log(
                    f"{name}: it scores {ndcg:.4f} at full length, the configured {kept.ndcg:.4f}: kept those"
                )
        best = kept
    best.trials = results
    log(f"{name}: chose {best.params} (val ndcg@{k} {best.ndcg:.4f})")
    return best
