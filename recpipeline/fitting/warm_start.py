"""Warm starts: a fit that continues from an earlier cut's weights, and the rule that keeps them honest.

A backtest (or a nightly run) fits every model twice per cut: on train, where early stopping and tuning read
validation (lineage ``validation``), and on train + validation for test (lineage ``final``). A warm start
continues the same lineage of the previous cut: the validation fit from the previous validation fit, the final
fit from the previous final fit. The rule is about data, not names: the weights a fit starts from must have
seen nothing at or after the start of what that fit is judged on — the validation window for a validation fit,
the test window for a final fit. A start that breaks it is refused (``WarmStartRefused``), never used; a start
that is merely impossible (no previous cut, other settings, a model without weights to carry) is a cold start
with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from recpipeline.models.base import Recommender

LINEAGES = ("validation", "final")
#: settings that only say how long a fit trains: a fit may continue one that differed in them
TRAINING_LENGTH = ("epochs", "patience", "total_anneal_steps")


class WarmStartRefused(ValueError):
    """A warm start that would let a fit see the data it is judged on (or cross lineages)."""


@dataclass(frozen=True)
class Provenance:
    """Where a fitted model comes from; saved with it (``params.json``, key ``provenance``)."""

    #: validation: fitted on train (validation chose on it); final: fitted on the data before the test window
    lineage: str
    #: the cut date (the last day before the test window), YYYY-MM-DD
    cut: str
    run_id: str
    #: the first day the fit has not seen (YYYY-MM-DD): its training data ends before it
    trained_until: str
    #: "<cut> (run <id>)" of the fit it continued; None for a cold start
    warm_start_from: str | None = None
    #: why it started cold (None when warm)
    cold_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_model(cls, model: Recommender) -> Provenance | None:
        return None if model.provenance_ is None else cls(**model.provenance_)


def choose_warm_start(
    previous: Recommender | None,
    name: str,
    params: dict[str, Any],
    lineage: str,
    trained_until: str,
    id_map_version_of_prefix: Callable[[int, int], str],
) -> tuple[Recommender | None, str | None]:
    """The model a fit of ``name`` with ``params`` in ``lineage`` may continue from — ``previous`` (the
    previous cut's fit of that lineage) or None — and, for a cold start, why.

    ``trained_until``: the first day this fit must not have seen (validation fit: the validation window's
    first day; final fit: the test window's). ``id_map_version_of_prefix(n_users, n_items)``: the digest of
    the current id maps' first rows, which must be the maps ``previous`` was fitted with (append-only maps).
    Raises ``WarmStartRefused`` when ``previous`` belongs to another lineage or has seen data this fit is
    judged on.
    """
    if lineage not in LINEAGES:
        raise ValueError(f"lineage: expected one of {LINEAGES}, got {lineage!r}")
    if previous is None:
        return None, "no earlier cut of this model"
    origin = Provenance.from_model(previous)
    if origin is None:
        return None, "the earlier fit records no cut (fitted outside a backtest)"
    if origin.lineage != lineage:
        raise WarmStartRefused(
            f"{name}: a {lineage} fit cannot continue the {origin.lineage} fit of cut {origin.cut} "
            f"(run {origin.run_id}): each lineage continues only itself"
        )
    if origin.trained_until > trained_until:
        raise WarmStartRefused(
            f"{name}: the {lineage} fit of cut {origin.cut} (run {origin.run_id}) has seen data up to "
            f"{origin.trained_until}, after {trained_until} where this fit's evaluation window starts"
        )
    if previous.name != name:
        return None, f"the earlier fit is a {previous.name} model"
    if not hasattr(previous, "id_axes"):
        return None, f"{name} has no weights to continue from: it is fitted afresh"
    changed = sorted(
        key
        for key in set(params) | set(previous.get_params())
        if key not in TRAINING_LENGTH and params.get(key) != previous.get_params().get(key)
    )
    if changed:
        return None, f"settings changed since cut {origin.cut}: {', '.join(changed)}"
    if previous.id_map_version_ != id_map_version_of_prefix(previous.n_users_, previous.n_items_):
        return None, f"the id maps of cut {origin.cut} are not a prefix of this cut's"
    return previous, None


def started_from(previous: Recommender) -> str:
    """How a warm-started fit names the fit it continued."""
    origin = Provenance.from_model(previous)
    return f"{origin.cut} (run {origin.run_id})" if origin is not None else "an unnamed fit"
