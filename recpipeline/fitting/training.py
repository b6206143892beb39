"""Fit one configured model on the run's splits: the domain step behind each model asset."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import scipy.sparse as sp

from recpipeline.fitting.holdout import VALIDATION_USERS, validation_scorer
from recpipeline.fitting.metering import Usage, metered
from recpipeline.fitting.tuning import tune
from recpipeline.fitting.warm_start import Provenance, choose_warm_start, started_from
from recpipeline.models.base import Logger, Recommender, RunSettings, no_log
from recpipeline.models.context import FitContext, ScoreContext, align_rows, id_map_version
from recpipeline.models.registry import create_model, model_class
from recpipeline.preparation.encoding import interaction_matrix


@dataclass(frozen=True)
class TrainingData:
    """The encoded splits and side information a model is fitted on (string ids in catalogue / profiles)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    user_id_map: pd.DataFrame
    item_id_map: pd.DataFrame
    item_catalog: pd.DataFrame
    user_profiles: pd.DataFrame


@dataclass(frozen=True)
class CutOrigin:
    """The backtest cut a fit belongs to: its fits record it and may continue the previous cut's."""

    cut: str  # the last day before the test window, YYYY-MM-DD
    run_id: str
    validation_start: str  # the validation window's first day: the validation fit has seen nothing from it
    test_start: str  # the test window's first day: the final fit has seen nothing from it


@dataclass(frozen=True)
class WarmStarts:
    """The previous cut's fits, by lineage (``fitting.warm_start``); None starts that lineage cold."""

    validation: Recommender | None = None
    final: Recommender | None = None


@dataclass(frozen=True)
class FitCost:
    """What fitting a model cost, fit and refit together."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    #: epochs trained (torch models), None for models without epochs
    epochs_run: int | None = None
    #: the cut the final fit continued, None for a cold start
    warm_start_from: str | None = None
    #: why the final fit started cold, in a backtest
    cold_reason: str | None = None


@dataclass(frozen=True)
class TrainedModel:
    model: Recommender
    #: wall time of the fit on train (all trials when tuned); None when validation had nothing to choose and
    #: the model was fitted once, on train + validation (``refit_seconds``)
    seconds: float | None
    #: one entry per tuning trial ({"params", "ndcg", "seconds", "epochs", "state"}); None when not tuned
    trials: list[dict[str, Any]] | None = None
    #: NDCG@k on validation of the fit on train (the chosen trial's when tuned)
    validation_ndcg: float = float("nan")
    #: the epochs early stopping kept (torch models), None for models without epochs
    epochs: int | None = None
    #: wall time of the refit on train + validation; None without refit (``model`` is then the fit on train)
    refit_seconds: float | None = None
    #: the fit on train when ``model`` is its refit (a backtest's validation lineage continues it)
    validation_fit: Recommender | None = None
    cost: FitCost | None = None


def train_model(
    name: str,
    params: dict[str, Any] | None,
    settings: RunSettings,
    data: TrainingData,
    tuning_trials: int = 0,
    log: Logger = no_log,
    refit: bool = False,
    *,
    max_epochs: int | None = None,
    trial_epochs: int | None = None,
    cut: CutOrigin | None = None,
    warm: WarmStarts | None = None,
    validation_users: int | None = VALIDATION_USERS,
) -> TrainedModel:
    """Fit model ``name`` with ``params`` plus the run ``settings`` it declares; with ``tuning_trials`` > 0
    the parameters not set in ``params`` are searched on validation NDCG@k (``recpipeline.fitting.tuning``).

    With ``refit`` the model so chosen (parameters, and epochs where it stops early) is fitted afresh on
    train + validation without early stopping, and that model is returned: it has seen the newest data. An
    untuned model that chooses nothing on validation (``chooses_on_validation``) is fitted only that once:
    the same model, without a fit on train that would be thrown away.

    ``max_epochs`` caps a torch model's epochs (a nightly budget), ``trial_epochs`` those of every tuning
    trial after the first (a winner is then refitted at full length, ``fitting.tuning``). In a backtest,
    ``cut`` names the cut the fits record, and each fit continues ``warm``'s fit of its lineage where the
    rule of ``fitting.warm_start`` allows (tuned fits start cold: every trial would need its own lineage).
    Early stopping and tuning score at most ``validation_users`` validation users (``fitting.holdout``).
    """
    params = capped_epochs(name, settings.apply(model_class(name), params), max_epochs)
    shape = (len(data.user_id_map), len(data.item_id_map))
    train, validation = interaction_matrix(data.train, *shape), interaction_matrix(data.validation, *shape)
    context = FitContext(
        item_features=align_rows(data.item_catalog, data.item_id_map, "item_id"),
        user_features=align_rows(data.user_profiles, data.user_id_map, "user_id"),
        train_events=data.train,
        validation_events=data.validation,
        id_map_version=id_map_version(data.user_id_map, data.item_id_map),
        validate=validation_scorer(train, validation, validation_users, settings.seed, log),
    )
    starts = _Starts(name, data, cut, warm or WarmStarts(), tuning_trials, log)
    with metered() as usage:
        if refit and tuning_trials == 0 and not model_class(name).chooses_on_validation:
            log(f"{name}: nothing to choose on validation: one fit, on train + validation")
            final, seconds = _refit(
                name, params, train + validation, data, starts.context(context, "final", params), log
            )
            starts.record(final, "final")
            trained = TrainedModel(final, None, refit_seconds=seconds)
        else:
            trained = _fit_and_refit(
                name,
                params,
                settings,
                data,
                train,
                validation,
                context,
                (tuning_trials, trial_epochs),
                log,
                refit,
                starts,
            )
    return replace(trained, cost=starts.cost(trained, usage))


def _fit_and_refit(
    name: str,
    params: dict[str, Any],
    settings: RunSettings,
    data: TrainingData,
    train: sp.csr_matrix,
    validation: sp.csr_matrix,
    context: FitContext,
    search: tuple[int, int | None],
    log: Logger,
    refit: bool,
    starts: _Starts,
) -> TrainedModel:
    """The fit on train (tuned or not), scored on validation, then its refit on train + validation.
    ``search``: the tuning trials (0: none) and their epoch cap."""
    score_context = ScoreContext(history_events=data.train, user_features=context.user_features)
    started = time.perf_counter()
    trials = None
    tuning_trials, trial_epochs = search
    if tuning_trials > 0:
        result = tune(
            name,
            params,
            train,
            validation,
            trials=tuning_trials,
            k=settings.k,
            seed=settings.seed,
            context=starts.context(context, "validation", params),  # tuned fits start cold, and say so
            score_context=score_context,
            log=log,
            trial_epochs=trial_epochs,
        )
        model, trials, ndcg = result.model, result.trials, result.ndcg
    else:
        model = create_model(name, params)
        model.fit(train, validation, context=starts.context(context, "validation", params), log=log)
    starts.record(model, "validation")
    seconds = time.perf_counter() - started
    if trials is None:  # the figure early stopping saw: the same users
        ndcg = context.validate(model, settings.k, score_context) if context.validate else float("nan")
    epochs = getattr(model, "best_epoch_", None)
    if not refit:
        return TrainedModel(model, seconds, trials, ndcg, epochs)
    chosen = model.refit_params()
    fixed = {key: value for key, value in chosen.items() if model.get_params().get(key) != value}
    log(f"{name}: refit on train + validation{f' with {fixed}' if fixed else ''}")
    final_context = starts.context(context, "final", chosen)
    final, refit_seconds = _refit(name, chosen, train + validation, data, final_context, log)
    starts.record(final, "final")
    return TrainedModel(final, seconds, trials, ndcg, epochs, refit_seconds, validation_fit=model)


def capped_epochs(name: str, params: dict[str, Any], max_epochs: int | None) -> dict[str, Any]:
    """``params`` with ``epochs`` at most ``max_epochs`` for a model that trains in epochs."""
    if max_epochs is None:
        return params
    own = params.get("epochs", _default(model_class(name), "epochs"))
    return params if own is None else {**params, "epochs": min(int(own), max_epochs)}


def _default(cls: type[Recommender], setting: str) -> Any:
    """The declared default of ``setting`` (None where the model has no such setting)."""
    field = cls.Settings.model_fields.get(setting)
    return None if field is None else field.get_default(call_default_factory=True)


class _Starts:
    """The warm starts of one model's fits in a cut, and the provenance each fit records (nothing of either
    outside a backtest)."""

    def __init__(
        self, name: str, data: TrainingData, cut: CutOrigin | None, warm: WarmStarts, trials: int, log: Logger
    ) -> None:
        self.name, self.data, self.cut, self.warm, self.trials, self.log = name, data, cut, warm, trials, log
        self.origins: dict[str, tuple[str | None, str | None]] = {}

    def context(self, context: FitContext, lineage: str, params: dict[str, Any]) -> FitContext:
        """``context`` with the fit to continue in ``lineage``, where there is one that may be used."""
        if self.cut is None:
            return context
        if self.trials > 0:
            previous, reason = None, "tuned: every trial starts cold"
        else:
            previous, reason = choose_warm_start(
                getattr(self.warm, lineage),
                self.name,
                create_model(self.name, params).get_params(),  # every setting, defaults included
                lineage,
                self._trained_until(lineage),
                self._prefix_version,
            )
        if previous is None:
            self.log(f"{self.name}: {lineage} fit starts cold: {reason}")
            self.origins[lineage] = (None, reason)
            return context
        origin = started_from(previous)
        self.log(f"{self.name}: {lineage} fit continues cut {origin}")
        self.origins[lineage] = (origin, None)
        return replace(context, warm_start=previous)

    def record(self, model: Recommender, lineage: str) -> None:
        if self.cut is None:
            return
        origin, reason = self.origins.get(lineage, (None, None))
        model.provenance_ = Provenance(
            lineage, self.cut.cut, self.cut.run_id, self._trained_until(lineage), origin, reason
        ).as_dict()

    def cost(self, trained: TrainedModel, usage: Usage) -> FitCost:
        fits = [trained.model] + ([trained.validation_fit] if trained.validation_fit is not None else [])
        epochs = [len(fit.epoch_seconds_) for fit in fits if hasattr(fit, "epoch_seconds_")]
        lineage = "final" if "final" in self.origins else "validation"
        origin, reason = self.origins.get(lineage, (None, None))
        return FitCost(
            usage.wall_s, usage.cpu_s, usage.peak_rss_mb, sum(epochs) if epochs else None, origin, reason
        )

    def _trained_until(self, lineage: str) -> str:
        return self.cut.validation_start if lineage == "validation" else self.cut.test_start

    def _prefix_version(self, n_users: int, n_items: int) -> str:
        users, items = self.data.user_id_map, self.data.item_id_map
        return id_map_version(users[users["idx"] < n_users], items[items["idx"] < n_items])


def _refit(
    name: str,
    params: dict[str, Any],
    matrix: sp.csr_matrix,
    data: TrainingData,
    context: FitContext,
    log: Logger,
) -> tuple[Recommender, float]:
    """A fresh model fitted on train + validation (``matrix``; events joined in time order), no early
    stopping; and its fit's wall seconds."""
    started = time.perf_counter()
    events = pd.concat([data.train, data.validation], ignore_index=True)
    if "timestamp" in events.columns:
        events = events.sort_values("timestamp", kind="stable", ignore_index=True)
    refit_context = replace(context, train_events=events, validation_events=None)
    model = create_model(name, params).fit(matrix, None, context=refit_context, log=log)
    return model, time.perf_counter() - started
