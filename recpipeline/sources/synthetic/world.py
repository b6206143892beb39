"""The synthetic shop's world: catalogue, users, tastes and latent vectors, a function of the spec alone.

Each part draws from its own stream (``world_rng(spec, stream)``), so the world never depends on the days
generated from it; one world per spec is cached for the process.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from recpipeline.sources.synthetic.sampling import POP_POWER, TEMPERATURE, Affinity, ItemSampler, block_rows
from recpipeline.sources.synthetic.text import numbered_ids, string_column

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
REGIONS = ("North", "South", "East", "West", "Central", "Islands")

_AGE_P = np.array([0.16, 0.30, 0.24, 0.17, 0.13])
_REGION_P = np.array([0.20, 0.18, 0.17, 0.17, 0.20, 0.08])
# name, nouns for titles, median price
_CATEGORIES: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("electronics", ("Headphones", "Speaker", "Charger", "Tablet", "Camera", "Smartwatch"), 90.0),
    ("books", ("Novel", "Cookbook", "Biography", "Atlas", "Guide", "Anthology"), 14.0),
    ("clothing", ("Jacket", "Sweater", "Jeans", "Dress", "Shirt", "Scarf"), 35.0),
    ("home", ("Lamp", "Cushion", "Rug", "Vase", "Blanket", "Mirror"), 40.0),
    ("beauty", ("Serum", "Lipstick", "Shampoo", "Perfume", "Cream", "Mascara"), 18.0),
    ("sports", ("Yoga Mat", "Dumbbell", "Racket", "Helmet", "Bottle", "Backpack"), 30.0),
    ("toys", ("Puzzle", "Robot", "Doll", "Board Game", "Kite", "Blocks"), 22.0),
    ("grocery", ("Coffee", "Tea", "Olive Oil", "Chocolate", "Granola", "Honey"), 8.0),
    ("garden", ("Planter", "Hose", "Shears", "Seeds", "Lantern", "Bench"), 28.0),
    ("automotive", ("Wiper", "Car Mat", "Dash Cam", "Polish", "Jump Starter", "Seat Cover"), 45.0),
    ("pets", ("Leash", "Pet Bed", "Cat Toy", "Bowl", "Collar", "Treats"), 16.0),
    ("music", ("Guitar Strings", "Vinyl", "Ukulele", "Metronome", "Capo", "Drumsticks"), 25.0),
)
_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Smart", "Premium", "Lite", "Urban", "Vintage",
    "Pro", "Ultra", "Soft", "Bold", "Nordic", "Everyday",
)  # fmt: skip
_BRAND_HEADS = (
    "Nor", "Vel", "Ast", "Kor", "Lum", "Zen", "Bri", "Cal", "Dra", "Evo", "Fen", "Gal", "Hal", "Ori",
)  # fmt: skip
_BRAND_TAILS = ("ix", "ora", "tech", "wave", "line", "co", "ly", "ara", "on")

# --- behaviour knobs (tuned so ALS clearly beats popularity, while popularity stays a real baseline) ---
_LATENT_DIM = 16
_GROUP_TASTE_SHARE = 0.35  # category taste = share * group Dirichlet + (1 - share) * individual Dirichlet
_INDIVIDUAL_ALPHA = 0.15  # concentration of the individual category taste
_GROUP_LATENT_SHARE = 0.4  # user latent vector = share * group vector + rest individual
_ACTIVITY_SIGMA = 1.1  # lognormal sigma of user activity (heavy tail)
_N_FAVOURITES = 8
_N_FAV_CANDIDATES = 32  # systematic candidates per user for the favourites' Gumbel top-k


@dataclass(frozen=True)
class SyntheticSpec:
    """Settings of the synthetic shop; the world is a pure function of these."""

    seed: int = 42
    start_date: dt.date = dt.date(2026, 10, 1)  # the shop's first day; users/items have first_seen >= this
    n_users: int = 3000  # users that will ever exist
    n_items: int = 1500  # items that will ever exist
    n_categories: int = 12
    n_brands: int = 60
    sessions_per_day: int = 1500  # mean; the actual count varies a little by day (weekday effect)
    arrival_days: int = 60  # new users/items keep arriving over this many days after start_date
    initial_user_share: float = 0.6  # share of users present on start_date
    initial_item_share: float = 0.8  # share of items present on start_date
    dirty_share: float = 0.01  # extra dirty rows per day, as a share of the day's clean rows
    zipf_exponent: float = 1.1  # long-tail item popularity


@dataclass(frozen=True)
class World:
    items: pd.DataFrame
    users: pd.DataFrame
    item_ids: pa.Array  # large_string: a day's id columns are Arrow takes, no Python strings per row
    user_ids: pa.Array
    item_category: np.ndarray  # int
    item_order: np.ndarray  # item indices grouped by category
    category_bounds: np.ndarray  # (n_categories + 1,) category c at item_order[bounds[c]:bounds[c + 1]]
    item_first_day: np.ndarray  # days after start_date
    item_log_pop: np.ndarray
    item_log_price_rel: np.ndarray  # log(price / category median)
    user_first_day: np.ndarray
    user_taste: np.ndarray  # (n_users, n_categories), rows sum to 1
    affinity: Affinity  # the unit user and item latent vectors (float32), laid out for fast u.v
    user_activity: np.ndarray
    user_favourites: np.ndarray  # (n_users, k) item indices (repeats only when a shop has too few items)


def world_rng(spec: SyntheticSpec, stream: int) -> np.random.Generator:
    """A world stream: depends on the seed only, never collides with the per-day streams."""
    return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(7919, stream)))


def _arrival_days(rng: np.random.Generator, n: int, initial_share: float, arrival_days: int) -> np.ndarray:
    """Days after start: ``initial_share`` on day 0, the rest spread evenly over days 1..arrival_days."""
    first = np.zeros(n, dtype=np.int64)
    n_initial = int(round(np.clip(initial_share, 0.0, 1.0) * n))
    late = rng.permutation(n)[n_initial:]
    if arrival_days > 0:
        first[late] = rng.integers(1, arrival_days + 1, size=late.size)
    return first


def _midnights(spec: SyntheticSpec, offsets: np.ndarray) -> pd.DatetimeIndex:
    start = pd.Timestamp(spec.start_date, tz="UTC")
    return (start + pd.to_timedelta(offsets, unit="D")).as_unit("us")


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@functools.lru_cache(maxsize=8)
def build_world(spec: SyntheticSpec) -> World:
    if spec.n_users < 1 or spec.n_items < 1 or spec.n_categories < 1 or spec.n_brands < 1:
        raise ValueError("SyntheticSpec needs at least one user, item, category and brand")
    n_categories, latent_dim = spec.n_categories, _LATENT_DIM

    # categories
    category_rng = world_rng(spec, 0)
    category_names, category_nouns, category_median = [], [], []
    for category in range(n_categories):
        if category < len(_CATEGORIES):
            name, nouns, median = _CATEGORIES[category]
        else:
            name, nouns, median = (
                f"category{category + 1}",
                ("Item", "Kit", "Set"),
                float(category_rng.lognormal(3.2, 0.6)),
            )
        category_names.append(name)
        category_nouns.append(nouns)
        category_median.append(median)
    category_median_array = np.array(category_median)

    # brands: a primary category each (round robin), sometimes a second one
    brand_rng = world_rng(spec, 1)
    combos = [h + t for h in _BRAND_HEADS for t in _BRAND_TAILS]
    picked = brand_rng.permutation(len(combos))
    brand_names = [
        combos[picked[b % len(combos)]] + ("" if b < len(combos) else str(b // len(combos) + 1))
        for b in range(spec.n_brands)
    ]
    brand_primary = brand_rng.permutation(spec.n_brands) % n_categories
    brand_secondary = np.where(
        brand_rng.random(spec.n_brands) < 0.3, brand_rng.integers(0, n_categories, spec.n_brands), -1
    )
    brand_strength = brand_rng.lognormal(0.0, 0.7, spec.n_brands)

    # items
    item_rng = world_rng(spec, 2)
    category_share = item_rng.dirichlet(np.full(n_categories, 6.0))
    item_category = item_rng.choice(n_categories, size=spec.n_items, p=category_share)
    item_brand = np.empty(spec.n_items, dtype=np.int64)
    item_log_pop = np.empty(spec.n_items)
    for category in range(n_categories):
        members = np.flatnonzero(item_category == category)
        if members.size == 0:
            continue
        brands = np.flatnonzero((brand_primary == category) | (brand_secondary == category))
        if brands.size == 0:  # more categories than brands
            brands = np.array([category % spec.n_brands])
        brand_weights = brand_strength[brands] / brand_strength[brands].sum()
        item_brand[members] = item_rng.choice(brands, size=members.size, p=brand_weights)
        ranks = item_rng.permutation(members.size) + 1
        item_log_pop[members] = -spec.zipf_exponent * np.log(ranks)
    item_log_pop += 0.3 * np.log(brand_strength[item_brand])
    price = np.round(category_median_array[item_category] * item_rng.lognormal(0.0, 0.5, spec.n_items), 2)
    price = np.maximum(price, 0.99)
    adjectives = np.array(_ADJECTIVES, dtype=object)[item_rng.integers(0, len(_ADJECTIVES), spec.n_items)]
    noun_pick = item_rng.integers(0, 1_000_000, spec.n_items)
    nouns = np.array(
        [
            category_nouns[category][pick % len(category_nouns[category])]
            for category, pick in zip(item_category, noun_pick, strict=True)
        ]
    )
    letters = np.array(list("ABCDEFGHKMNPRSTVXZ"))[item_rng.integers(0, 18, spec.n_items)]
    numbers = item_rng.integers(1, 1000, spec.n_items)
    brand_arr = np.array(brand_names, dtype=object)
    parts = zip(brand_arr[item_brand], adjectives, nouns, letters, numbers, strict=True)
    titles = [f"{b} {a} {n} {letter}{num}" for b, a, n, letter, num in parts]
    item_first_day = _arrival_days(item_rng, spec.n_items, spec.initial_item_share, spec.arrival_days)
    # latent item vectors: a category direction plus an item-specific one
    category_direction = item_rng.normal(0.0, 1.0, (n_categories, latent_dim))
    item_vec = 0.5 * category_direction[item_category] + item_rng.normal(0.0, 1.0, (spec.n_items, latent_dim))
    item_vec /= np.linalg.norm(item_vec, axis=1, keepdims=True)

    item_ids = numbered_ids("I", spec.n_items)
    items = pd.DataFrame(
        {
            "item_id": string_column(item_ids),
            "title": np.array(titles, dtype=object),
            "category": np.array(category_names, dtype=object)[item_category],
            "brand": brand_arr[item_brand],
            "price": price.astype(np.float64),
            "first_seen": _midnights(spec, item_first_day),
        }
    )

    # users: demographic groups shape category taste and latent taste
    user_rng = world_rng(spec, 3)
    age = user_rng.choice(len(AGE_BANDS), size=spec.n_users, p=_AGE_P)
    region = user_rng.choice(len(REGIONS), size=spec.n_users, p=_REGION_P)
    age_effect = user_rng.normal(0.0, 0.9, (len(AGE_BANDS), n_categories))
    region_effect = user_rng.normal(0.0, 0.5, (len(REGIONS), n_categories))
    group_logits = age_effect[:, None, :] + region_effect[None, :, :] + np.log(category_share)[None, None, :]
    group_pref = _softmax(group_logits)  # (age, region, cat)
    group_alpha = 20.0 * group_pref[age, region]
    group_taste = np.maximum(user_rng.gamma(group_alpha), 1e-12)
    group_taste /= group_taste.sum(axis=1, keepdims=True)
    individual_taste = np.maximum(
        user_rng.gamma(np.full((spec.n_users, n_categories), _INDIVIDUAL_ALPHA)), 1e-12
    )
    individual_taste /= individual_taste.sum(axis=1, keepdims=True)
    user_taste = _GROUP_TASTE_SHARE * group_taste + (1.0 - _GROUP_TASTE_SHARE) * individual_taste
    group_vec = user_rng.normal(0.0, 1.0, (len(AGE_BANDS), len(REGIONS), latent_dim))
    user_vec = _GROUP_LATENT_SHARE * group_vec[age, region] + (1 - _GROUP_LATENT_SHARE) * user_rng.normal(
        0.0, 1.0, (spec.n_users, latent_dim)
    )
    user_vec /= np.linalg.norm(user_vec, axis=1, keepdims=True)
    activity = user_rng.lognormal(0.0, _ACTIVITY_SIGMA, spec.n_users)
    user_first_day = _arrival_days(user_rng, spec.n_users, spec.initial_user_share, spec.arrival_days)
    # favourites: a few items each user keeps coming back to (Gumbel top-k of their overall preference)
    item_order = np.argsort(item_category, kind="stable")
    bounds = np.searchsorted(item_category[item_order], np.arange(n_categories + 1))
    affinity = Affinity.build(item_vec, user_vec)
    favourites = _favourites(
        spec,
        user_rng.random(spec.n_users),
        user_taste,
        affinity,
        item_category,
        item_log_pop,
        item_order,
        bounds,
    )

    user_ids = numbered_ids("U", spec.n_users)
    users = pd.DataFrame(
        {
            "user_id": string_column(user_ids),
            "age_band": np.array(AGE_BANDS, dtype=object)[age],
            "region": np.array(REGIONS, dtype=object)[region],
            "first_seen": _midnights(spec, user_first_day),
        }
    )
    arrays = (item_category, item_order, bounds, item_first_day, item_log_pop, user_first_day, user_taste)
    for array in (*arrays, activity, favourites):
        array.flags.writeable = False
    return World(
        items=items,
        users=users,
        item_ids=item_ids,
        user_ids=user_ids,
        item_category=item_category,
        item_order=item_order,
        category_bounds=bounds,
        item_first_day=item_first_day,
        item_log_pop=item_log_pop,
        item_log_price_rel=np.log(price / category_median_array[item_category]),
        user_first_day=user_first_day,
        user_taste=user_taste,
        affinity=affinity,
        user_activity=activity,
        user_favourites=favourites,
    )


def _favourites(
    spec: SyntheticSpec,
    offsets: np.ndarray,
    taste: np.ndarray,
    affinity: Affinity,
    item_category: np.ndarray,
    item_log_pop: np.ndarray,
    item_order: np.ndarray,
    bounds: np.ndarray,
) -> np.ndarray:
    """Gumbel top-k of ``taste[cat] * popularity**a * exp(u.v / T)`` per user, over sampled candidates.

    Candidates are drawn systematically (evenly spaced uniforms ``(j + offset) / m``) by inverse CDF from
    the proposal ``taste[cat] * popularity**a``, so repeats of an item sit next to each other; an item drawn
    ``n`` times enters the top-k with log-weight ``log(n) + u.v / T``, the importance-weighted estimate.
    """
    n_users, n_categories = taste.shape
    n_favourites = min(_N_FAVOURITES, spec.n_items)  # k
    n_candidates = max(_N_FAV_CANDIDATES, n_favourites)  # m
    pop = np.exp(POP_POWER * item_log_pop)
    sampler = ItemSampler.build(item_order, bounds, pop)
    # a category's share of the proposal: the user's taste times the category's total popularity weight
    category_mass = np.bincount(item_category, weights=pop, minlength=n_categories)
    # its own stream, drawn block by block in order: blocks never change results
    noise_rng = world_rng(spec, 4)
    favourites = np.empty((n_users, n_favourites), dtype=np.int64)
    step = block_rows(n_candidates)
    for low in range(0, n_users, step):
        high = min(low + step, n_users)
        rows = high - low
        cum = np.cumsum(taste[low:high] * category_mass, axis=1)
        cum /= cum[:, -1:]  # exactly 1.0 at the end; a category without items adds exactly nothing
        below = np.hstack([np.zeros((rows, 1)), cum[:, :-1]])
        # systematic sampling: category c gets the slots j with (j + offset) / m in [below[c], cum[c])
        user_offsets = offsets[low:high]
        ends = np.clip(np.ceil(n_candidates * cum - user_offsets[:, None]), 0, n_candidates).astype(np.int64)
        # the (user, category) cell of each candidate slot
        cell = np.repeat(np.arange(rows * n_categories), np.diff(ends, prepend=0, axis=1).ravel())
        slots = np.tile(np.arange(n_candidates), rows) + np.repeat(user_offsets, n_candidates)
        uniforms = slots / n_candidates
        # where in the category's own CDF
        uniforms = (uniforms - below.ravel()[cell]) / (cum - below).ravel()[cell]
        uniforms = np.clip(uniforms, 0.0, np.nextafter(1.0, 0.0))
        items = sampler.draw(cell % n_categories, uniforms).reshape(rows, n_candidates)
        # the first of a run of repeats enters with log-weight log(run length), the others not at all
        first = np.ones((rows, n_candidates), dtype=bool)
        first[:, 1:] = items[:, 1:] != items[:, :-1]
        starts = np.flatnonzero(first)
        weight = np.full(rows * n_candidates, -np.inf, dtype=np.float32)
        weight[starts] = np.log(np.diff(np.append(starts, rows * n_candidates)))
        logit = weight.reshape(rows, n_candidates) + affinity.dots(np.arange(low, high), items) / np.float32(
            TEMPERATURE
        )
        logit -= np.log(
            np.maximum(noise_rng.standard_exponential((rows, n_candidates), dtype=np.float32), 1e-30)
        )
        top = np.argpartition(-logit, n_favourites - 1, axis=1)[:, :n_favourites]
        fav = np.take_along_axis(items, top, axis=1)
        # fewer than n_favourites distinct candidates (tiny shops): repeat the best one
        best = items[np.arange(rows), np.argmax(logit, axis=1)]
        favourites[low:high] = np.where(
            np.isfinite(np.take_along_axis(logit, top, axis=1)), fav, best[:, None]
        )
    return favourites


def generate_items(spec: SyntheticSpec) -> pd.DataFrame:
    """Item catalogue: item_id, title, category, brand, price, first_seen (UTC midnight)."""
    return build_world(spec).items.copy()


def generate_users(spec: SyntheticSpec) -> pd.DataFrame:
    """User profiles: user_id, age_band, region, first_seen (UTC midnight)."""
    return build_world(spec).users.copy()
