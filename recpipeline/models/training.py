"""Fit one configured model on the run's splits: the domain step behind each model asset."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import scipy.sparse as sp

from recpipeline.models.base import Logger, Recommender, RunSettings, no_log
from recpipeline.models.context import FitContext, ScoreContext, align_rows, id_map_version
from recpipeline.models.holdout import holdout_ndcg
from recpipeline.models.registry import create_model, model_class
from recpipeline.models.tuning import tune
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
class TrainedModel:
    model: Recommender
    #: wall time of the fit on train (all trials when tuned); None when validation had nothing to choose and
    #: the model was fitted once, on train + validation (``refit_seconds``)
    seconds: float | None
    #: one entry per tuning trial ({"params", "ndcg", "seconds"}); None when not tuned
    trials: list[dict[str, Any]] | None = None
    #: NDCG@k on validation of the fit on train (the chosen trial's when tuned)
    validation_ndcg: float = float("nan")
    #: the epochs early stopping kept (torch models), None for models without epochs
    epochs: int | None = None
    #: wall time of the refit on train + validation; None without refit (``model`` is then the fit on train)
    refit_seconds: float | None = None


def train_model(
    name: str,
    params: dict[str, Any] | None,
    settings: RunSettings,
    data: TrainingData,
    tuning_trials: int = 0,
    log: Logger = no_log,
    refit: bool = False,
) -> TrainedModel:
    """Fit model ``name`` with ``params`` plus the run ``settings`` it declares; with ``tuning_trials`` > 0
    the parameters not set in ``params`` are searched on validation NDCG@k (``recpipeline.models.tuning``).

    With ``refit`` the model so chosen (parameters, and epochs where it stops early) is fitted afresh on
    train + validation without early stopping, and that model is returned: it has seen the newest data. An
    untuned model that chooses nothing on validation (``chooses_on_validation``) is fitted only that once:
    the same model, without a fit on train that would be thrown away.
    """
    params = settings.apply(model_class(name), params)
    shape = (len(data.user_id_map), len(data.item_id_map))
    context = FitContext(
        item_features=align_rows(data.item_catalog, data.item_id_map, "item_id"),
        user_features=align_rows(data.user_profiles, data.user_id_map, "user_id"),
        train_events=data.train,
        validation_events=data.validation,
        id_map_version=id_map_version(data.user_id_map, data.item_id_map),
    )
    train, validation = interaction_matrix(data.train, *shape), interaction_matrix(data.validation, *shape)
    if refit and tuning_trials == 0 and not model_class(name).chooses_on_validation:
        log(f"{name}: nothing to choose on validation: one fit, on train + validation")
        final, seconds = _refit(name, params, train + validation, data, context, log)
        return TrainedModel(final, None, refit_seconds=seconds)
    score_context = ScoreContext(history_events=data.train, user_features=context.user_features)
    started = time.perf_counter()
    trials = None
    if tuning_trials > 0:
        result = tune(
            name,
            params,
            train,
            validation,
            trials=tuning_trials,
            k=settings.k,
            seed=settings.seed,
            context=context,
            score_context=score_context,
            log=log,
        )
        model, trials, ndcg = result.model, result.trials, result.ndcg
    else:
        model = create_model(name, params)
        model.fit(train, validation, context=context, log=log)
    seconds = time.perf_counter() - started
    if trials is None:
        ndcg = holdout_ndcg(model, train, validation, settings.k, score_context)
    epochs = getattr(model, "best_epoch_", None)
    if not refit:
        return TrainedModel(model, seconds, trials, ndcg, epochs)
    chosen = model.refit_params()
    fixed = {key: value for key, value in chosen.items() if model.get_params().get(key) != value}
    log(f"{name}: refit on train + validation{f' with {fixed}' if fixed else ''}")
    final, refit_seconds = _refit(name, chosen, train + validation, data, context, log)
    return TrainedModel(final, seconds, trials, ndcg, epochs, refit_seconds)


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
