"""The synthetic source: an embedded e-commerce shop with an item catalogue, users and daily raw event logs.

The shop is a persistent *world* (catalogue, users, tastes, latent vectors) derived from ``spec.seed`` alone,
plus one independent random stream per day (``np.random.default_rng([spec.seed, day.toordinal()])``), so any
daily partition can be (re)generated on its own and always comes out identical.

How a day is made (vectorised; Python loops run only over categories and bounded blocks of rows):

* sessions: a Poisson number around ``sessions_per_day`` (weekday effect); each belongs to a user drawn by a
  heavy-tailed activity weight among the users that exist by then;
* each session browses a geometric number of items; it stays in one category drawn from the user's taste
  (a mix of an (age band, region) group preference and an individual one) and switches now and then;
* within a category an item is drawn with probability ``popularity**a * exp(u.v / T) * novelty``: Zipf-like
  popularity, low-dimensional user/item latent vectors, and a short boost for newly arrived items; now and
  then a user revisits one of a few persistent favourites instead;
* to scale to millions of users and items nothing is dense over users x items: an item choice is made by
  sampling-importance-resampling (a few dozen candidates drawn by ``popularity**a * novelty`` through an
  inverse-CDF guide table, one kept by Gumbel-max on ``u.v / T``), and favourites likewise (a Gumbel top-k
  over a candidate set drawn systematically from the user's category taste and item popularity);
* a view may lead to a cart (~30 %) and a cart to a purchase (~40 %), both likelier for items the user likes;
* dirty rows (``dirty_share`` of the clean rows) are added: missing ids, unparseable timestamps, unknown
  event types and exact duplicates.

Modules: ``world`` (catalogue, users, tastes, latent vectors), ``events`` (daily sessions and events),
``dirt`` (the injected bad rows), ``sampling`` and ``text`` (the fast draws and Arrow string columns).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import pandas as pd

from recpipeline.config import ConfigError, RunConfig
from recpipeline.sources.reading import SourceError, with_lineage
from recpipeline.sources.synthetic.events import generate_events
from recpipeline.sources.synthetic.world import (
    AGE_BANDS,
    REGIONS,
    SyntheticSpec,
    generate_items,
    generate_users,
)

__all__ = [
    "AGE_BANDS",
    "REGIONS",
    "SyntheticSource",
    "SyntheticSpec",
    "generate_events",
    "generate_items",
    "generate_users",
    "synthetic_source",
]


@dataclass(frozen=True)
class SyntheticSource:
    """The generator as a ``Source``: rows already in the contract's columns, no files behind them."""

    spec: SyntheticSpec
    start_date: dt.date | None  # configured partition window; None start: the shop's first day
    end_date: dt.date | None  # None: up to yesterday (a live feed)
    lineage_prefix: str  # ``_source_file`` of a day's rows: this plus "/YYYY-MM-DD"

    def days(self) -> tuple[dt.date, dt.date | None]:
        return self.start_date or self.spec.start_date, self.end_date

    def events_of_day(self, day: dt.date) -> pd.DataFrame:
        return with_lineage(generate_events(self.spec, day), f"{self.lineage_prefix}/{day.isoformat()}")

    def to_contract(self, raw: pd.DataFrame) -> pd.DataFrame:
        return raw  # the generator writes the contract's columns

    def items(self) -> pd.DataFrame:
        return generate_items(self.spec)

    def users(self) -> pd.DataFrame:
        return generate_users(self.spec)

    def row_counts(self) -> dict[str, int]:
        return {}  # nothing outside the window: every generated row belongs to its day

    def split_file_rows(self, path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        raise SourceError(
            f"{path}: the synthetic source reads no files; a predefined split needs a file source"
        )


def synthetic_source(config: RunConfig) -> SyntheticSource:
    """The generator settings: the run's seed and start date, overridden by ``source.synthetic``."""
    overrides = dict(config.source.synthetic)
    known = {f.name for f in fields(SyntheticSpec)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"{config.config_file}: source.synthetic.{unknown[0]}: unknown setting; "
            f"expected one of {sorted(known)}"
        )
    overrides.setdefault("seed", config.seed)
    if config.source.start_date is not None:
        overrides.setdefault("start_date", config.source.start_date)
    return SyntheticSource(
        spec=SyntheticSpec(**overrides),
        start_date=config.source.start_date,
        end_date=config.source.end_date,
        lineage_prefix=f"synthetic://seed={config.seed}",
    )
