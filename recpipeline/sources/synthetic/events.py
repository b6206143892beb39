"""The synthetic shop's daily event logs: sessions, their views, carts and purchases, then dirty rows.

Each day draws from its own streams (``np.random.default_rng([spec.seed, day.toordinal()])`` and two
sub-streams), so any daily partition can be (re)generated on its own and always comes out identical.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from recpipeline.contracts import CLEANED_COLUMNS
from recpipeline.sources.synthetic.dirt import add_dirty_rows
from recpipeline.sources.synthetic.sampling import POP_POWER, TEMPERATURE, Affinity, ItemSampler, block_rows
from recpipeline.sources.synthetic.text import iso_stamps, numbered, string_column
from recpipeline.sources.synthetic.world import SyntheticSpec, build_world

# per-weekday (Mon..Sun) session volume factor
_WEEKDAY = np.array([0.96, 0.94, 0.95, 0.98, 1.04, 1.10, 1.03])
# per-hour (UTC) session start weight: quiet nights, lunchtime bump, evening peak
_HOURLY = np.array(
    [0.3, 0.2, 0.15, 0.12, 0.12, 0.2, 0.4, 0.7, 0.9, 1.0, 1.0, 1.1, 1.3, 1.2, 1.0, 1.0, 1.1, 1.2, 1.4, 1.7,
     1.9, 1.8, 1.3, 0.7]
)  # fmt: skip

_MEAN_VIEWS = 4.5  # mean views per session (geometric)
_MAX_VIEWS = 40
_P_SWITCH = 0.12  # chance a further view switches (re-draws) the session's category
_P_REVISIT = 0.12  # chance a view revisits one of the user's favourites in the current category
_N_VIEW_CANDIDATES = 32  # SIR candidates per view: enough for u.v to shape the choice, still fast
_NOVELTY_BOOST = 3.0  # popularity multiplier 1 + boost * exp(-age_days / tau) for new arrivals
_NOVELTY_TAU = 4.0
_P_CART = 0.30
_P_PURCHASE = 0.40
_VIEW_GAP_S = 45.0
_CART_GAP_S = 20.0
_PURCHASE_GAP_S = 60.0
_DAY_US = 86_400 * 1_000_000


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series([], dtype=np.float64 if c == "value" else "str") for c in CLEANED_COLUMNS}
    )


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    uniforms = rng.random(probs.shape[0]) * cum[:, -1]
    return np.minimum((cum < uniforms[:, None]).sum(axis=1), probs.shape[1] - 1)


def _resample(
    sampler: ItemSampler,
    affinity: Affinity,
    users: np.ndarray,
    categories: np.ndarray,
    pick_rng: np.random.Generator,
    noise_rng: np.random.Generator,
) -> np.ndarray:
    """One item per (user, category), with probability about ``weight * exp(u.v / T)`` within the category.

    Sampling-importance-resampling: ``_N_VIEW_CANDIDATES`` candidates drawn by the sampler's weights, one
    kept by Gumbel-max on ``u.v / T``; the cost does not grow with the catalogue.
    """
    n_candidates = _N_VIEW_CANDIDATES
    out = np.empty(users.size, dtype=np.int64)
    step = block_rows(n_candidates)
    for low in range(0, users.size, step):
        high = min(low + step, users.size)
        candidates = sampler.draw(
            np.repeat(categories[low:high], n_candidates), pick_rng.random((high - low) * n_candidates)
        ).reshape(high - low, n_candidates)
        logit = affinity.dots(users[low:high], candidates) / np.float32(TEMPERATURE)
        logit -= np.log(
            np.maximum(noise_rng.standard_exponential((high - low, n_candidates), dtype=np.float32), 1e-30)
        )
        out[low:high] = candidates[np.arange(high - low), np.argmax(logit, axis=1)]
    return out


def generate_events(spec: SyntheticSpec, day: dt.date) -> pd.DataFrame:
    """The raw event rows of one day, as a source file would hold them (strings, some dirty rows).

    Columns: user_id, item_id, event_type, timestamp (ISO-8601 with "Z"), value (float64), session_id.
    Deterministic per (spec, day); independent of any other day.
    """
    world = build_world(spec)
    rng = np.random.default_rng([spec.seed, day.toordinal()])
    day_index = (day - spec.start_date).days
    users_now = (
        np.flatnonzero(world.user_first_day <= day_index) if day_index >= 0 else np.array([], dtype=np.int64)
    )
    items_now = world.item_first_day <= day_index if day_index >= 0 else np.zeros(spec.n_items, dtype=bool)
    n_categories = spec.n_categories
    category_open = np.bincount(world.item_category[items_now], minlength=n_categories) > 0
    mean_sessions = max(spec.sessions_per_day, 0) * _WEEKDAY[day.weekday()]
    n_sessions = int(rng.poisson(mean_sessions)) if mean_sessions > 0 else 0
    if users_now.size == 0 or not category_open.any() or n_sessions == 0:
        return _empty_events()

    # sessions and their views
    activity = world.user_activity[users_now]
    session_user = users_now[rng.choice(users_now.size, size=n_sessions, p=activity / activity.sum())]
    n_views = np.minimum(rng.geometric(1.0 / _MEAN_VIEWS, n_sessions), _MAX_VIEWS)
    view_session = np.repeat(np.arange(n_sessions), n_views)
    view_user = session_user[view_session]
    starts = np.concatenate([[0], np.cumsum(n_views)[:-1]])
    view_position = np.arange(view_session.size) - starts[view_session]
    n_view_rows = view_session.size

    # category per view: drawn at the session start and at occasional switches, carried forward otherwise
    switch = (view_position == 0) | (rng.random(n_view_rows) < _P_SWITCH)
    taste = world.user_taste[view_user[switch]] * category_open
    view_category = _sample_rows(rng, taste / taste.sum(axis=1, keepdims=True))[np.cumsum(switch) - 1]

    # now and then a view revisits one of the user's favourites in its category, when one is available
    view_item = np.full(n_view_rows, -1, dtype=np.int64)
    asked = np.flatnonzero(rng.random(n_view_rows) < _P_REVISIT)
    favourites = world.user_favourites[view_user[asked]]
    favourite_fits = (world.item_category[favourites] == view_category[asked, None]) & items_now[favourites]
    favourite_pick = np.argmax(np.where(favourite_fits, rng.random(favourite_fits.shape), -1.0), axis=1)
    hit = favourite_fits.any(axis=1)
    view_item[asked[hit]] = favourites[hit, favourite_pick[hit]]

    # any other view: an item drawn with popularity^a * exp(u.v / T) * novelty within the category, by
    # sampling-importance-resampling: candidates drawn by popularity^a * novelty, one kept by Gumbel-max on
    # u.v / T (approximates the dense softmax over the category, at a cost independent of its size)
    item_age = day_index - world.item_first_day
    novelty = np.where(world.item_first_day > 0, 1.0 + _NOVELTY_BOOST * np.exp(-item_age / _NOVELTY_TAU), 1.0)
    base = np.where(items_now, np.exp(POP_POWER * world.item_log_pop) * novelty, 0.0)
    sampler = ItemSampler.build(world.item_order, world.category_bounds, base)
    # own sub-streams, drawn block by block in order, so the block size never changes the result
    day_key = [spec.seed, day.toordinal()]
    pick_rng = np.random.default_rng(np.random.SeedSequence(day_key, spawn_key=(1,)))
    noise_rng = np.random.default_rng(np.random.SeedSequence(day_key, spawn_key=(2,)))
    fresh = np.flatnonzero(view_item < 0)
    view_item[fresh] = _resample(
        sampler, world.affinity, view_user[fresh], view_category[fresh], pick_rng, noise_rng
    )

    # funnel: views -> carts -> purchases, likelier for items the user likes, purchases less for pricey ones
    liking = np.tanh(world.affinity.dots(view_user, view_item[:, None])[:, 0].astype(np.float64) / 0.3)
    lift = 1.0 + 0.5 * liking
    carted = np.flatnonzero(rng.random(n_view_rows) < _P_CART * lift / lift.mean())
    lift = (1.0 + 0.3 * liking[carted]) * (1.0 - 0.2 * np.tanh(world.item_log_price_rel[view_item[carted]]))
    p_purchase = _P_PURCHASE * lift / lift.mean() if carted.size else lift
    purchased = carted[rng.random(carted.size) < p_purchase]
    quantity = np.minimum(rng.geometric(0.75, purchased.size), 10).astype(np.float64)

    # timestamps (microseconds since midnight): views spaced within the session, carts/purchases after
    gaps = np.where(view_position == 0, 0.0, rng.exponential(_VIEW_GAP_S, n_view_rows))
    view_offset = np.cumsum(gaps)
    view_offset = (
        np.round((view_offset - view_offset[starts][view_session]) * 1e6).astype(np.int64) + view_position
    )
    cart_offset = (
        view_offset[carted] + 1 + np.round(rng.exponential(_CART_GAP_S, carted.size) * 1e6).astype(np.int64)
    )
    cart_of_purchase = np.searchsorted(carted, purchased)
    purchase_offset = (
        cart_offset[cart_of_purchase]
        + 1
        + np.round(rng.exponential(_PURCHASE_GAP_S, purchased.size) * 1e6).astype(np.int64)
    )
    hour = rng.choice(24, size=n_sessions, p=_HOURLY / _HOURLY.sum())
    session_start = ((hour + rng.random(n_sessions)) * 3600e6).astype(np.int64)
    span = np.zeros(n_sessions, dtype=np.int64)
    np.maximum.at(span, view_session, view_offset)
    np.maximum.at(span, view_session[carted], cart_offset)
    np.maximum.at(span, view_session[purchased], purchase_offset)
    session_start = np.maximum(np.minimum(session_start, _DAY_US - 1 - span), 0)

    # assemble clean rows, sorted by time (ties: views, carts, purchases in generation order)
    view_of_row = np.concatenate([np.arange(n_view_rows), carted, purchased])
    event_kind = np.repeat(np.array([0, 1, 2]), [n_view_rows, carted.size, purchased.size])
    offset = (
        np.concatenate([view_offset, cart_offset, purchase_offset]) + session_start[view_session[view_of_row]]
    )
    offset = np.minimum(offset, _DAY_US - 1)
    order = np.argsort(offset, kind="stable")
    view_of_row, event_kind, offset = view_of_row[order], event_kind[order], offset[order]
    value = np.ones(view_of_row.size)
    value[event_kind == 2] = quantity[order[event_kind == 2] - (n_view_rows + carted.size)]
    session_ids = numbered(f"S{day:%Y%m%d}-", n_sessions, 5)
    columns: dict[str, pa.Array] = {
        "user_id": world.user_ids.take(view_user[view_of_row]),
        "item_id": world.item_ids.take(view_item[view_of_row]),
        "event_type": pa.array(["view", "cart", "purchase"], type=pa.large_string()).take(event_kind),
        "timestamp": iso_stamps(day, offset),
        "value": pa.array(value),
        "session_id": session_ids.take(view_session[view_of_row]),
    }
    columns = add_dirty_rows(rng, columns, spec.dirty_share, day)
    return pd.DataFrame(
        {c: columns[c].to_numpy() if c == "value" else string_column(columns[c]) for c in CLEANED_COLUMNS}
    )
