"""One run's evaluation, end to end: metrics, per-user values, significance against the baseline, history.

The ``metrics`` asset calls ``evaluate_run`` once; everything it shows (summaries, users per segment, the
significance shown) comes back in ``RunEvaluation``. Metric definitions: ``docs/metrics.md``.

The headline — summary, default baseline, the significance shown — is on the users with
history before the test window (segment ``with_history``); users without history get the same fallback list
from every model that does not serve them itself, so counting them would only dilute the differences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from recpipeline.contracts import headline_k
from recpipeline.evaluation.history import append_history
from recpipeline.evaluation.protocol import (
    WITH_HISTORY,
    evaluate_models,
    headline_segment,
    list_families,
    new_users_served_by,
    per_user_values,
    prepare_evaluation,
    rating_errors,
)
from recpipeline.evaluation.reports import markdown_table, metrics_summary, significance_summary
from recpipeline.evaluation.sessions import evaluate_sessions
from recpipeline.evaluation.significance import TESTED_METRICS, choose_baseline, significance_table
from recpipeline.models.base import Recommender
from recpipeline.preparation.splitting import as_of
from recpipeline.scoring.relevance import RelevanceRule


@dataclass(frozen=True)
class EvaluationSettings:
    """The run settings the evaluation reads (from ``RunConfig`` and its ``evaluation`` section)."""

    ks: Sequence[int]
    seed: int
    cold_max_interactions: int
    rating_weight: float  # weight of a rating event per rating point; 0: no rating errors
    baseline: str | None
    bootstrap_samples: int
    alpha: float
    min_segment_users: int  # segments with fewer users are flagged and not tested
    relevant_event_types: tuple[str, ...] | None  # only test interactions of these types are relevant
    min_rating: float | None  # rating interactions below it are not relevant
    #: split.kind sessions: next | rest (``evaluation.sessions``); None: the per-user protocol
    session_targets: str | None = None
    session_recommend_seen: bool = True  # sessions: items already in the history may be recommended

    @property
    def k(self) -> int:
        """The headline cut-off: summaries, the significance summary, the default baseline's ndcg."""
        return headline_k(self.ks)


@dataclass(frozen=True)
class EvaluationSplits:
    """The encoded splits plus what the segments need (the catalogue may be empty of categories)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    item_catalog: pd.DataFrame | None
    item_id_map: pd.DataFrame
    user_id_map: pd.DataFrame | None = None  # sessions: tells anonymous visitors apart


@dataclass(frozen=True)
class RunEvaluation:
    metrics: pd.DataFrame  # METRICS_COLUMNS plus run_id, as_of
    per_user: pd.DataFrame
    significance: pd.DataFrame
    history: pd.DataFrame
    baseline: str
    n_evaluated_users: int
    headline_segment: str  # with_history; all when no evaluated user has history
    summary: str  # Markdown: the headline segment at the headline k
    users_per_segment: dict[str, int]
    significance_shown: str  # Markdown: the headline segment at the headline k
    significantly_better: list[str]  # models significantly better than the baseline there
    #: sessions: model -> folds_in | ignores_prefix | cannot_serve (those are not evaluated)
    prefix_support: dict[str, str] = field(default_factory=dict)


def evaluated_lists(
    model_lists: Mapping[str, pd.DataFrame], external: pd.DataFrame | None
) -> dict[str, pd.DataFrame]:
    """Every list to evaluate by name: the configured models', then each external file's (column model)."""
    lists = dict(model_lists)
    if external is not None:
        lists.update({str(m): frame for m, frame in external.groupby("model", sort=True)})
    return lists


def evaluate_run(
    splits: EvaluationSplits,
    model_lists: Mapping[str, pd.DataFrame],
    external: pd.DataFrame | None,
    models: Mapping[str, Recommender],
    settings: EvaluationSettings,
    run_id: str,
    previous_history: pd.DataFrame | None,
) -> RunEvaluation:
    """Evaluate the configured models' lists (``model_lists``, fitted ``models``) and the external lists on
    the test window, test each against the baseline and append the metrics to ``previous_history``.

    With ``settings.session_targets`` (split.kind sessions) the fitted models replay the test sessions
    instead (``evaluation.sessions``): metrics over (session, position) pairs, significance paired by session
    on segment ``all``; external lists cannot be evaluated so."""
    lists = evaluated_lists(model_lists, external)
    external_names = [name for name in lists if name not in model_lists]
    minimum = settings.min_segment_users
    support: dict[str, str] = {}
    tested_metrics = TESTED_METRICS
    if settings.session_targets is None:
        table, per_user, n_evaluated = _per_user_protocol(splits, lists, external_names, models, settings)
    else:
        if external_names:
            raise ValueError(
                "external lists cannot be evaluated under the session protocol (split.kind sessions); "
                "evaluate lists per session position with `recpipeline evaluate`"
            )
        sessions = evaluate_sessions(
            models,
            splits.train,
            splits.validation,
            splits.test,
            splits.item_catalog,
            splits.item_id_map,
            splits.user_id_map,
            settings.ks,
            settings.session_targets,
            settings.session_recommend_seen,
            minimum,
        )
        table, per_user, n_evaluated = sessions.metrics, sessions.per_session, sessions.n_positions
        support = sessions.prefix_support
        tested_metrics = (*TESTED_METRICS, "hit_rate", "mrr")
    table["run_id"] = run_id
    table["as_of"] = str(as_of(splits.test["timestamp"]).date())

    families = list_families(model_lists, external_names)
    baseline = choose_baseline(table, settings.k, families, settings.baseline)
    tests = significance_table(
        per_user,
        baseline,
        settings.ks,
        settings.bootstrap_samples,
        settings.alpha,
        settings.seed,
        metrics=tested_metrics,
        min_segment_users=minimum,
    )
    if settings.session_targets is not None:
        # per-session values carry the visitor kind as their segment: only `all` is a tested segment
        tests = tests[tests["segment"] == "all"].reset_index(drop=True)
    segment = headline_segment(table)
    shown = significance_summary(tests, settings.k, segment)
    better = shown.loc[shown["significant"] & (shown["mean_diff"] > 0), "model"].unique()
    return RunEvaluation(
        metrics=table,
        per_user=per_user,
        significance=tests,
        history=append_history(previous_history, table),
        baseline=baseline,
        n_evaluated_users=n_evaluated,
        headline_segment=segment,
        summary=(
            headline_summary(table, settings.k, segment)
            if settings.session_targets is None
            else f"Segment `all` ({n_evaluated} positions of the test sessions).\n\n"
            + markdown_table(metrics_summary(table, segment, ks=(settings.k,)))
        ),
        users_per_segment=users_per_segment(table),
        significance_shown=markdown_table(shown),
        significantly_better=[str(m) for m in better],
        prefix_support=support,
    )


def _per_user_protocol(
    splits: EvaluationSplits,
    lists: Mapping[str, pd.DataFrame],
    external_names: Sequence[str],
    models: Mapping[str, Recommender],
    settings: EvaluationSettings,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(metrics, per-user values, evaluated users) of the lists on the test window's users."""
    data = prepare_evaluation(
        splits.train,
        splits.validation,
        splits.test,
        splits.item_catalog,
        splits.item_id_map,
        settings.cold_max_interactions,
        RelevanceRule(settings.relevant_event_types, settings.min_rating, settings.rating_weight),
    )
    served_by = new_users_served_by([name for name in lists if name not in external_names], external_names)
    minimum = settings.min_segment_users
    table = pd.concat(
        [
            evaluate_models(lists, data, settings.ks, served_by, minimum),
            rating_errors(
                models, splits.train, splits.validation, splits.test, settings.rating_weight, minimum
            ),
        ],
        ignore_index=True,
    )
    per_user = per_user_values(lists, data, settings.ks, served_by)
    return table, per_user, len(data.user_segment)


def headline_summary(metrics: pd.DataFrame, k: int, segment: str) -> str:
    """Markdown: the headline segment's table at cut-off ``k``, under a line naming the segment (and, when
    no evaluated user has history, saying the headline falls back to ``all``)."""
    if segment == WITH_HISTORY:
        users = "users with history before the test window"
    else:
        users = f"all evaluated users: none has history before the test window (no `{WITH_HISTORY}` segment)"
    return f"Segment `{segment}` ({users}).\n\n" + markdown_table(metrics_summary(metrics, segment, ks=(k,)))


def users_per_segment(metrics: pd.DataFrame) -> dict[str, int]:
    """Evaluated users per segment (the largest ndcg n_users of any list)."""
    segments = metrics[metrics["metric"] == "ndcg"].groupby("segment")["n_users"].max()
    return {str(s): int(n) for s, n in segments.items()}
