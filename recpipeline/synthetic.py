"""A synthetic e-commerce shop: item catalogue, users and daily raw event logs.

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
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value", "session_id")
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
# per-weekday (Mon..Sun) session volume factor
_WEEKDAY = np.array([0.96, 0.94, 0.95, 0.98, 1.04, 1.10, 1.03])
# per-hour (UTC) session start weight: quiet nights, lunchtime bump, evening peak
_HOURLY = np.array(
    [0.3, 0.2, 0.15, 0.12, 0.12, 0.2, 0.4, 0.7, 0.9, 1.0, 1.0, 1.1, 1.3, 1.2, 1.0, 1.0, 1.1, 1.2, 1.4, 1.7,
     1.9, 1.8, 1.3, 0.7]
)  # fmt: skip

# --- behaviour knobs (tuned so ALS clearly beats popularity, while popularity stays a real baseline) ---
_LATENT_DIM = 16
_TEMPERATURE = 0.25  # softmax temperature of u.v within a category
_POP_POWER = 0.8  # exponent a on the Zipf popularity in item choice
_GROUP_TASTE_SHARE = 0.35  # category taste = share * group Dirichlet + (1 - share) * individual Dirichlet
_INDIVIDUAL_ALPHA = 0.15  # concentration of the individual category taste
_GROUP_LATENT_SHARE = 0.4  # user latent vector = share * group vector + rest individual
_ACTIVITY_SIGMA = 1.1  # lognormal sigma of user activity (heavy tail)
_MEAN_VIEWS = 4.5  # mean views per session (geometric)
_MAX_VIEWS = 40
_P_SWITCH = 0.12  # chance a further view switches (re-draws) the session's category
_P_REVISIT = 0.12  # chance a view revisits one of the user's favourites in the current category
_N_FAVOURITES = 8
_N_VIEW_CANDIDATES = 32  # SIR candidates per view: enough for u.v to shape the choice, still fast
_N_FAV_CANDIDATES = 32  # systematic candidates per user for the favourites' Gumbel top-k
_GUIDE_PER_ITEM = 2  # guide-table buckets per item of the largest category (inverse-CDF steps ~1)
_BLOCK_CELLS = 1 << 17  # candidates per block: cache-sized temporaries (faster), never changes results
_NOVELTY_BOOST = 3.0  # popularity multiplier 1 + boost * exp(-age_days / tau) for new arrivals
_NOVELTY_TAU = 4.0
_P_CART = 0.30
_P_PURCHASE = 0.40
_VIEW_GAP_S = 45.0
_CART_GAP_S = 20.0
_PURCHASE_GAP_S = 60.0
_DAY_US = 86_400 * 1_000_000

_BAD_TIMESTAMPS = ("not-a-time", "{y}-13-45T99:00", "31/02/{y} 25:61", "??", "{y}-10-03T")
_BAD_EVENT_TYPES = ("click??", "", "add_to_wishlist", "unknown", "vue")


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
class _ItemSampler:
    """Draws an item of a given category with probability proportional to fixed weights (inverse CDF).

    A guide table (Chen & Asau) maps equal slices of a category's [0, 1) to the first candidate position, so a
    draw is a lookup plus a step or two instead of a binary search over the catalogue.
    """

    items: np.ndarray  # item indices grouped by category
    cum: np.ndarray  # cumulative weight share within the category, aligned with items; exactly 1.0 at its end
    guide: np.ndarray  # (n_categories * buckets,) first position whose cum exceeds the slice's lower edge
    buckets: int

    @classmethod
    def build(cls, order: np.ndarray, bounds: np.ndarray, weights: np.ndarray) -> _ItemSampler:
        """``order``: item indices grouped by category, category c at ``order[bounds[c]:bounds[c + 1]]``."""
        n_cat = bounds.size - 1
        buckets = max(1, _GUIDE_PER_ITEM * int(np.diff(bounds).max()))
        w = weights[order]
        cum = np.ones(order.size)  # a weightless category is never drawn from; ones keep walks bounded
        guide = np.empty(n_cat * buckets, dtype=np.int64)
        edges = np.arange(buckets) / buckets
        for c in range(n_cat):
            lo, hi = int(bounds[c]), int(bounds[c + 1])
            seg = np.cumsum(w[lo:hi])
            if hi > lo and seg[-1] > 0:
                cum[lo:hi] = seg / seg[-1]  # exactly 1.0 at the end: a walk stops there at the latest, u < 1
            guide[c * buckets : (c + 1) * buckets] = lo + np.searchsorted(cum[lo:hi], edges, side="right")
        return cls(order, cum, guide, buckets)

    def draw(self, cat: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Item for each (category, uniform in [0, 1)); monotone in u within a category."""
        slot = np.minimum((u * self.buckets).astype(np.int64), self.buckets - 1)
        pos = self.guide[cat * self.buckets + slot]
        todo = np.flatnonzero(self.cum[pos] <= u)
        while todo.size:  # a few rounds: a guide slice spans ~1 item
            pos[todo] += 1
            todo = todo[self.cum[pos[todo]] <= u[todo]]
        return self.items[pos]


@dataclass(frozen=True)
class _Affinity:
    """``u.v`` for many sampled (user, item) pairs.

    Item vectors are kept as 32-byte records (8 float32s), one array per 8 dimensions: numpy's ``take``
    copies such records on a fast path, several times quicker than 64-byte rows or 2-D fancy indexing,
    which would otherwise dominate a large day.
    """

    item_parts: tuple[np.ndarray, ...]
    user_vec: np.ndarray  # (n_users, 8 * len(item_parts)) float32, zero-padded

    @classmethod
    def build(cls, item_vec: np.ndarray, user_vec: np.ndarray) -> _Affinity:
        d = item_vec.shape[1]
        width = -(-d // 8) * 8

        def padded(vec: np.ndarray) -> np.ndarray:
            return np.pad(vec.astype(np.float32), ((0, 0), (0, width - d)))

        items = padded(item_vec)
        record = np.dtype((np.void, 32))
        parts = tuple(
            np.ascontiguousarray(items[:, k : k + 8]).view(record).ravel() for k in range(0, width, 8)
        )
        for part in parts:
            part.flags.writeable = False
        user = padded(user_vec)
        user.flags.writeable = False
        return cls(parts, user)

    def dots(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(n, m) float32: ``u.v`` of user ``users[i]`` with each item of ``items[i]``."""
        n, m = items.shape
        flat = items.ravel()
        u = self.user_vec[users]
        out = np.zeros((n, m, 1), dtype=np.float32)
        for k, part in enumerate(self.item_parts):
            vecs = part.take(flat).view(np.float32).reshape(n, m, 8)
            out += np.matmul(vecs, u[:, 8 * k : 8 * k + 8, None])
        return out[:, :, 0]


@dataclass(frozen=True)
class _World:
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
    affinity: _Affinity  # the unit user and item latent vectors (float32), laid out for fast u.v
    user_activity: np.ndarray
    user_favourites: np.ndarray  # (n_users, k) item indices (repeats only when a shop has too few items)


def _rng(spec: SyntheticSpec, stream: int) -> np.random.Generator:
    """A world stream: depends on the seed only, never collides with the per-day streams."""
    return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(7919, stream)))


def _ids(prefix: str, n: int) -> pa.Array:
    return _numbered(prefix, n, max(6, len(str(max(n - 1, 0)))))


def _text(block: np.ndarray) -> pa.Array:
    """Rows of a (n, width) uint8 block of ASCII as an Arrow large_string array over the same bytes."""
    n, width = block.shape
    offsets = np.arange(n + 1, dtype=np.int64) * width
    data = np.ascontiguousarray(block).ravel()
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _numbered(prefix: str, n: int, width: int) -> pa.Array:
    """``f"{prefix}{k:0{width}d}"`` for k in range(n), built as ASCII digit blocks."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    parts = [pa.array([], type=pa.large_string())]
    lo = 0
    while lo < n:  # one block per digit count: numbers past 10**width simply grow wider
        digits = max(width, len(str(lo)))
        hi = min(n, 10**digits)
        block = np.empty((hi - lo, head.size + digits), dtype=np.uint8)
        block[:, : head.size] = head
        rest = np.arange(lo, hi, dtype=np.int64)
        for p in range(digits):  # right to left
            block[:, -1 - p] = 48 + rest % 10
            rest //= 10
        parts.append(_text(block))
        lo = hi
    return pa.concat_arrays(parts)


def _iso_stamps(day: dt.date, offsets_us: np.ndarray) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` for microseconds after midnight of ``day``, built from integer parts
    (formatting datetimes one by one is the slowest step of a large day)."""
    template = np.frombuffer(f"{day.isoformat()}T00:00:00.000000Z".encode(), dtype=np.uint8)
    block = np.empty((offsets_us.size, template.size), dtype=np.uint8)
    block[:] = template
    fields = (
        (11, 2, offsets_us // 3_600_000_000),
        (14, 2, offsets_us // 60_000_000 % 60),
        (17, 2, offsets_us // 1_000_000 % 60),
        (20, 6, offsets_us % 1_000_000),
    )
    for start, width, value in fields:
        for p in range(width):
            block[:, start + width - 1 - p] = 48 + value // 10**p % 10
    return _text(block)


def _str_column(values: pa.Array) -> pd.api.extensions.ExtensionArray:
    """The column pandas would build from these strings (None: missing) with its default string dtype; with
    pandas 3 an Arrow-backed ``str`` array that shares the Arrow buffers, so no Python string per row."""
    return values.to_pandas().array


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


def _block_rows(width: int) -> int:
    """Rows per block so that a block of ``width`` candidates per row stays under ``_BLOCK_CELLS``."""
    return max(1, _BLOCK_CELLS // max(width, 1))


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@functools.lru_cache(maxsize=8)
def _world(spec: SyntheticSpec) -> _World:
    if spec.n_users < 1 or spec.n_items < 1 or spec.n_categories < 1 or spec.n_brands < 1:
        raise ValueError("SyntheticSpec needs at least one user, item, category and brand")
    n_cat, d = spec.n_categories, _LATENT_DIM

    # categories
    crng = _rng(spec, 0)
    cat_names, cat_nouns, cat_median = [], [], []
    for c in range(n_cat):
        if c < len(_CATEGORIES):
            name, nouns, median = _CATEGORIES[c]
        else:
            name, nouns, median = f"category{c + 1}", ("Item", "Kit", "Set"), float(crng.lognormal(3.2, 0.6))
        cat_names.append(name)
        cat_nouns.append(nouns)
        cat_median.append(median)
    cat_median_arr = np.array(cat_median)

    # brands: a primary category each (round robin), sometimes a second one
    brng = _rng(spec, 1)
    combos = [h + t for h in _BRAND_HEADS for t in _BRAND_TAILS]
    picked = brng.permutation(len(combos))
    brand_names = [
        combos[picked[b % len(combos)]] + ("" if b < len(combos) else str(b // len(combos) + 1))
        for b in range(spec.n_brands)
    ]
    brand_primary = brng.permutation(spec.n_brands) % n_cat
    brand_secondary = np.where(brng.random(spec.n_brands) < 0.3, brng.integers(0, n_cat, spec.n_brands), -1)
    brand_strength = brng.lognormal(0.0, 0.7, spec.n_brands)

    # items
    irng = _rng(spec, 2)
    cat_share = irng.dirichlet(np.full(n_cat, 6.0))
    item_cat = irng.choice(n_cat, size=spec.n_items, p=cat_share)
    item_brand = np.empty(spec.n_items, dtype=np.int64)
    item_log_pop = np.empty(spec.n_items)
    for c in range(n_cat):
        members = np.flatnonzero(item_cat == c)
        if members.size == 0:
            continue
        brands = np.flatnonzero((brand_primary == c) | (brand_secondary == c))
        if brands.size == 0:  # more categories than brands
            brands = np.array([c % spec.n_brands])
        w = brand_strength[brands] / brand_strength[brands].sum()
        item_brand[members] = irng.choice(brands, size=members.size, p=w)
        ranks = irng.permutation(members.size) + 1
        item_log_pop[members] = -spec.zipf_exponent * np.log(ranks)
    item_log_pop += 0.3 * np.log(brand_strength[item_brand])
    price = np.round(cat_median_arr[item_cat] * irng.lognormal(0.0, 0.5, spec.n_items), 2)
    price = np.maximum(price, 0.99)
    adjectives = np.array(_ADJECTIVES, dtype=object)[irng.integers(0, len(_ADJECTIVES), spec.n_items)]
    noun_pick = irng.integers(0, 1_000_000, spec.n_items)
    nouns = np.array([cat_nouns[c][k % len(cat_nouns[c])] for c, k in zip(item_cat, noun_pick, strict=True)])
    letters = np.array(list("ABCDEFGHKMNPRSTVXZ"))[irng.integers(0, 18, spec.n_items)]
    numbers = irng.integers(1, 1000, spec.n_items)
    brand_arr = np.array(brand_names, dtype=object)
    parts = zip(brand_arr[item_brand], adjectives, nouns, letters, numbers, strict=True)
    titles = [f"{b} {a} {n} {letter}{num}" for b, a, n, letter, num in parts]
    item_first_day = _arrival_days(irng, spec.n_items, spec.initial_item_share, spec.arrival_days)
    # latent item vectors: a category direction plus an item-specific one
    cat_dir = irng.normal(0.0, 1.0, (n_cat, d))
    item_vec = 0.5 * cat_dir[item_cat] + irng.normal(0.0, 1.0, (spec.n_items, d))
    item_vec /= np.linalg.norm(item_vec, axis=1, keepdims=True)

    item_ids = _ids("I", spec.n_items)
    items = pd.DataFrame(
        {
            "item_id": _str_column(item_ids),
            "title": np.array(titles, dtype=object),
            "category": np.array(cat_names, dtype=object)[item_cat],
            "brand": brand_arr[item_brand],
            "price": price.astype(np.float64),
            "first_seen": _midnights(spec, item_first_day),
        }
    )

    # users: demographic groups shape category taste and latent taste
    urng = _rng(spec, 3)
    age = urng.choice(len(AGE_BANDS), size=spec.n_users, p=_AGE_P)
    region = urng.choice(len(REGIONS), size=spec.n_users, p=_REGION_P)
    age_effect = urng.normal(0.0, 0.9, (len(AGE_BANDS), n_cat))
    region_effect = urng.normal(0.0, 0.5, (len(REGIONS), n_cat))
    group_logits = age_effect[:, None, :] + region_effect[None, :, :] + np.log(cat_share)[None, None, :]
    group_pref = _softmax(group_logits)  # (age, region, cat)
    group_alpha = 20.0 * group_pref[age, region]
    group_taste = np.maximum(urng.gamma(group_alpha), 1e-12)
    group_taste /= group_taste.sum(axis=1, keepdims=True)
    indiv = np.maximum(urng.gamma(np.full((spec.n_users, n_cat), _INDIVIDUAL_ALPHA)), 1e-12)
    indiv /= indiv.sum(axis=1, keepdims=True)
    user_taste = _GROUP_TASTE_SHARE * group_taste + (1.0 - _GROUP_TASTE_SHARE) * indiv
    group_vec = urng.normal(0.0, 1.0, (len(AGE_BANDS), len(REGIONS), d))
    user_vec = _GROUP_LATENT_SHARE * group_vec[age, region] + (1 - _GROUP_LATENT_SHARE) * urng.normal(
        0.0, 1.0, (spec.n_users, d)
    )
    user_vec /= np.linalg.norm(user_vec, axis=1, keepdims=True)
    activity = urng.lognormal(0.0, _ACTIVITY_SIGMA, spec.n_users)
    user_first_day = _arrival_days(urng, spec.n_users, spec.initial_user_share, spec.arrival_days)
    # favourites: a few items each user keeps coming back to (Gumbel top-k of their overall preference)
    item_order = np.argsort(item_cat, kind="stable")
    bounds = np.searchsorted(item_cat[item_order], np.arange(n_cat + 1))
    affinity = _Affinity.build(item_vec, user_vec)
    favourites = _favourites(
        spec, urng.random(spec.n_users), user_taste, affinity, item_cat, item_log_pop, item_order, bounds
    )

    user_ids = _ids("U", spec.n_users)
    users = pd.DataFrame(
        {
            "user_id": _str_column(user_ids),
            "age_band": np.array(AGE_BANDS, dtype=object)[age],
            "region": np.array(REGIONS, dtype=object)[region],
            "first_seen": _midnights(spec, user_first_day),
        }
    )
    arrays = (item_cat, item_order, bounds, item_first_day, item_log_pop, user_first_day, user_taste)
    for a in (*arrays, activity, favourites):
        a.flags.writeable = False
    return _World(
        items=items,
        users=users,
        item_ids=item_ids,
        user_ids=user_ids,
        item_category=item_cat,
        item_order=item_order,
        category_bounds=bounds,
        item_first_day=item_first_day,
        item_log_pop=item_log_pop,
        item_log_price_rel=np.log(price / cat_median_arr[item_cat]),
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
    affinity: _Affinity,
    item_cat: np.ndarray,
    item_log_pop: np.ndarray,
    item_order: np.ndarray,
    bounds: np.ndarray,
) -> np.ndarray:
    """Gumbel top-k of ``taste[cat] * popularity**a * exp(u.v / T)`` per user, over sampled candidates.

    Candidates are drawn systematically (evenly spaced uniforms ``(j + offset) / m``) by inverse CDF from
    the proposal ``taste[cat] * popularity**a``, so repeats of an item sit next to each other; an item drawn
    ``n`` times enters the top-k with log-weight ``log(n) + u.v / T``, the importance-weighted estimate.
    """
    n_users, n_cat = taste.shape
    k = min(_N_FAVOURITES, spec.n_items)
    m = max(_N_FAV_CANDIDATES, k)
    pop = np.exp(_POP_POWER * item_log_pop)
    sampler = _ItemSampler.build(item_order, bounds, pop)
    # a category's share of the proposal: the user's taste times the category's total popularity weight
    cat_mass = np.bincount(item_cat, weights=pop, minlength=n_cat)
    noise_rng = _rng(spec, 4)  # its own stream, drawn block by block in order: blocks never change results
    favourites = np.empty((n_users, k), dtype=np.int64)
    step = _block_rows(m)
    for lo in range(0, n_users, step):
        hi = min(lo + step, n_users)
        rows = hi - lo
        cum = np.cumsum(taste[lo:hi] * cat_mass, axis=1)
        cum /= cum[:, -1:]  # exactly 1.0 at the end; a category without items adds exactly nothing
        below = np.hstack([np.zeros((rows, 1)), cum[:, :-1]])
        # systematic sampling: category c gets the slots j with (j + offset) / m in [below[c], cum[c])
        off = offsets[lo:hi]
        ends = np.clip(np.ceil(m * cum - off[:, None]), 0, m).astype(np.int64)
        cell = np.repeat(np.arange(rows * n_cat), np.diff(ends, prepend=0, axis=1).ravel())  # (user, cat)
        u = (np.tile(np.arange(m), rows) + np.repeat(off, m)) / m
        u = (u - below.ravel()[cell]) / (cum - below).ravel()[cell]  # where in the category's own CDF
        items = sampler.draw(cell % n_cat, np.clip(u, 0.0, np.nextafter(1.0, 0.0))).reshape(rows, m)
        # the first of a run of repeats enters with log-weight log(run length), the others not at all
        first = np.ones((rows, m), dtype=bool)
        first[:, 1:] = items[:, 1:] != items[:, :-1]
        starts = np.flatnonzero(first)
        weight = np.full(rows * m, -np.inf, dtype=np.float32)
        weight[starts] = np.log(np.diff(np.append(starts, rows * m)))
        logit = weight.reshape(rows, m) + affinity.dots(np.arange(lo, hi), items) / np.float32(_TEMPERATURE)
        logit -= np.log(np.maximum(noise_rng.standard_exponential((rows, m), dtype=np.float32), 1e-30))
        top = np.argpartition(-logit, k - 1, axis=1)[:, :k]
        fav = np.take_along_axis(items, top, axis=1)
        # fewer than k distinct candidates (tiny shops): repeat the best one
        best = items[np.arange(rows), np.argmax(logit, axis=1)]
        favourites[lo:hi] = np.where(np.isfinite(np.take_along_axis(logit, top, axis=1)), fav, best[:, None])
    return favourites


def generate_items(spec: SyntheticSpec) -> pd.DataFrame:
    """Item catalogue: item_id, title, category, brand, price, first_seen (UTC midnight)."""
    return _world(spec).items.copy()


def generate_users(spec: SyntheticSpec) -> pd.DataFrame:
    """User profiles: user_id, age_band, region, first_seen (UTC midnight)."""
    return _world(spec).users.copy()


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series([], dtype=np.float64 if c == "value" else "str") for c in EVENT_COLUMNS}
    )


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), probs.shape[1] - 1)


def _resample(
    sampler: _ItemSampler,
    affinity: _Affinity,
    users: np.ndarray,
    cats: np.ndarray,
    pick_rng: np.random.Generator,
    noise_rng: np.random.Generator,
) -> np.ndarray:
    """One item per (user, category), with probability about ``weight * exp(u.v / T)`` within the category.

    Sampling-importance-resampling: ``_N_VIEW_CANDIDATES`` candidates drawn by the sampler's weights, one
    kept by Gumbel-max on ``u.v / T``; the cost does not grow with the catalogue.
    """
    m = _N_VIEW_CANDIDATES
    out = np.empty(users.size, dtype=np.int64)
    step = _block_rows(m)
    for lo in range(0, users.size, step):
        hi = min(lo + step, users.size)
        cand = sampler.draw(np.repeat(cats[lo:hi], m), pick_rng.random((hi - lo) * m)).reshape(hi - lo, m)
        logit = affinity.dots(users[lo:hi], cand) / np.float32(_TEMPERATURE)
        logit -= np.log(np.maximum(noise_rng.standard_exponential((hi - lo, m), dtype=np.float32), 1e-30))
        out[lo:hi] = cand[np.arange(hi - lo), np.argmax(logit, axis=1)]
    return out


def generate_events(spec: SyntheticSpec, day: dt.date) -> pd.DataFrame:
    """The raw event rows of one day, as a source file would hold them (strings, some dirty rows).

    Columns: user_id, item_id, event_type, timestamp (ISO-8601 with "Z"), value (float64), session_id.
    Deterministic per (spec, day); independent of any other day.
    """
    w = _world(spec)
    rng = np.random.default_rng([spec.seed, day.toordinal()])
    age = (day - spec.start_date).days
    users_now = np.flatnonzero(w.user_first_day <= age) if age >= 0 else np.array([], dtype=np.int64)
    items_now = w.item_first_day <= age if age >= 0 else np.zeros(spec.n_items, dtype=bool)
    n_cat = spec.n_categories
    cat_open = np.bincount(w.item_category[items_now], minlength=n_cat) > 0
    mean_sessions = max(spec.sessions_per_day, 0) * _WEEKDAY[day.weekday()]
    n_sessions = int(rng.poisson(mean_sessions)) if mean_sessions > 0 else 0
    if users_now.size == 0 or not cat_open.any() or n_sessions == 0:
        return _empty_events()

    # sessions and their views
    act = w.user_activity[users_now]
    s_user = users_now[rng.choice(users_now.size, size=n_sessions, p=act / act.sum())]
    n_views = np.minimum(rng.geometric(1.0 / _MEAN_VIEWS, n_sessions), _MAX_VIEWS)
    v_sess = np.repeat(np.arange(n_sessions), n_views)
    v_user = s_user[v_sess]
    starts = np.concatenate([[0], np.cumsum(n_views)[:-1]])
    v_pos = np.arange(v_sess.size) - starts[v_sess]
    n_v = v_sess.size

    # category per view: drawn at the session start and at occasional switches, carried forward otherwise
    switch = (v_pos == 0) | (rng.random(n_v) < _P_SWITCH)
    taste = w.user_taste[v_user[switch]] * cat_open
    v_cat = _sample_rows(rng, taste / taste.sum(axis=1, keepdims=True))[np.cumsum(switch) - 1]

    # now and then a view revisits one of the user's favourites in its category, when one is available
    v_item = np.full(n_v, -1, dtype=np.int64)
    asked = np.flatnonzero(rng.random(n_v) < _P_REVISIT)
    favs = w.user_favourites[v_user[asked]]
    fav_ok = (w.item_category[favs] == v_cat[asked, None]) & items_now[favs]
    fav_pick = np.argmax(np.where(fav_ok, rng.random(fav_ok.shape), -1.0), axis=1)
    hit = fav_ok.any(axis=1)
    v_item[asked[hit]] = favs[hit, fav_pick[hit]]

    # any other view: an item drawn with popularity^a * exp(u.v / T) * novelty within the category, by
    # sampling-importance-resampling: candidates drawn by popularity^a * novelty, one kept by Gumbel-max on
    # u.v / T (approximates the dense softmax over the category, at a cost independent of its size)
    item_age = age - w.item_first_day
    novelty = np.where(w.item_first_day > 0, 1.0 + _NOVELTY_BOOST * np.exp(-item_age / _NOVELTY_TAU), 1.0)
    base = np.where(items_now, np.exp(_POP_POWER * w.item_log_pop) * novelty, 0.0)
    sampler = _ItemSampler.build(w.item_order, w.category_bounds, base)
    # own sub-streams, drawn block by block in order, so the block size never changes the result
    day_key = [spec.seed, day.toordinal()]
    pick_rng = np.random.default_rng(np.random.SeedSequence(day_key, spawn_key=(1,)))
    noise_rng = np.random.default_rng(np.random.SeedSequence(day_key, spawn_key=(2,)))
    fresh = np.flatnonzero(v_item < 0)
    v_item[fresh] = _resample(sampler, w.affinity, v_user[fresh], v_cat[fresh], pick_rng, noise_rng)

    # funnel: views -> carts -> purchases, likelier for items the user likes, purchases less for pricey ones
    affinity = np.tanh(w.affinity.dots(v_user, v_item[:, None])[:, 0].astype(np.float64) / 0.3)
    lift = 1.0 + 0.5 * affinity
    carted = rng.random(n_v) < _P_CART * lift / lift.mean()
    c_idx = np.flatnonzero(carted)
    lift = (1.0 + 0.3 * affinity[c_idx]) * (1.0 - 0.2 * np.tanh(w.item_log_price_rel[v_item[c_idx]]))
    p_buy = _P_PURCHASE * lift / lift.mean() if c_idx.size else lift
    p_idx = c_idx[rng.random(c_idx.size) < p_buy]
    quantity = np.minimum(rng.geometric(0.75, p_idx.size), 10).astype(np.float64)

    # timestamps (microseconds since midnight): views spaced within the session, carts/purchases after
    gaps = np.where(v_pos == 0, 0.0, rng.exponential(_VIEW_GAP_S, n_v))
    v_off = np.cumsum(gaps)
    v_off = np.round((v_off - v_off[starts][v_sess]) * 1e6).astype(np.int64) + v_pos
    c_off = v_off[c_idx] + 1 + np.round(rng.exponential(_CART_GAP_S, c_idx.size) * 1e6).astype(np.int64)
    c_of_p = np.searchsorted(c_idx, p_idx)
    p_off = c_off[c_of_p] + 1 + np.round(rng.exponential(_PURCHASE_GAP_S, p_idx.size) * 1e6).astype(np.int64)
    hour = rng.choice(24, size=n_sessions, p=_HOURLY / _HOURLY.sum())
    s_start = ((hour + rng.random(n_sessions)) * 3600e6).astype(np.int64)
    span = np.zeros(n_sessions, dtype=np.int64)
    np.maximum.at(span, v_sess, v_off)
    np.maximum.at(span, v_sess[c_idx], c_off)
    np.maximum.at(span, v_sess[p_idx], p_off)
    s_start = np.maximum(np.minimum(s_start, _DAY_US - 1 - span), 0)

    # assemble clean rows, sorted by time (ties: views, carts, purchases in generation order)
    src = np.concatenate([np.arange(n_v), c_idx, p_idx])
    kind = np.repeat(np.array([0, 1, 2]), [n_v, c_idx.size, p_idx.size])
    off = np.concatenate([v_off, c_off, p_off]) + s_start[v_sess[src]]
    off = np.minimum(off, _DAY_US - 1)
    order = np.argsort(off, kind="stable")
    src, kind, off = src[order], kind[order], off[order]
    value = np.ones(src.size)
    value[kind == 2] = quantity[order[kind == 2] - (n_v + c_idx.size)]
    session_ids = _numbered(f"S{day:%Y%m%d}-", n_sessions, 5)
    cols: dict[str, pa.Array] = {
        "user_id": w.user_ids.take(v_user[src]),
        "item_id": w.item_ids.take(v_item[src]),
        "event_type": pa.array(["view", "cart", "purchase"], type=pa.large_string()).take(kind),
        "timestamp": _iso_stamps(day, off),
        "value": pa.array(value),
        "session_id": session_ids.take(v_sess[src]),
    }
    cols = _add_dirty_rows(rng, cols, spec.dirty_share, day)
    return pd.DataFrame(
        {c: cols[c].to_numpy() if c == "value" else _str_column(cols[c]) for c in EVENT_COLUMNS}
    )


def _add_dirty_rows(
    rng: np.random.Generator, cols: dict[str, pa.Array], dirty_share: float, day: dt.date
) -> dict[str, pa.Array]:
    """Copies of random clean rows, each broken one way, inserted at random positions."""
    n_clean = len(cols["value"])
    if dirty_share <= 0 or n_clean == 0:
        return cols
    n_dirty = max(1, int(round(dirty_share * n_clean)))
    src = rng.integers(0, n_clean, n_dirty)
    kinds = rng.permutation(np.resize(np.arange(5), n_dirty))  # every kind present once n_dirty >= 5
    dirty = {name: col.take(src) for name, col in cols.items()}
    blank = np.where(rng.random(n_dirty) < 0.5, None, "")
    pick = rng.integers(0, 1000, n_dirty)
    year = f"{day.year:04d}"
    bad_ts = np.array([t.format(y=year) for t in _BAD_TIMESTAMPS], dtype=object)
    bad_types = np.array(_BAD_EVENT_TYPES, dtype=object)

    def broken(kind: int, values: np.ndarray, column: str) -> pa.Array:
        return pc.if_else(pa.array(kinds == kind), pa.array(values, type=pa.large_string()), dirty[column])

    dirty["user_id"] = broken(0, blank, "user_id")
    dirty["item_id"] = broken(1, blank, "item_id")
    dirty["timestamp"] = broken(2, bad_ts[pick % bad_ts.size], "timestamp")
    dirty["event_type"] = broken(3, bad_types[pick % bad_types.size], "event_type")
    # kind 4: an exact duplicate, left as is
    position = rng.integers(0, n_clean + 1, n_dirty)
    key = np.concatenate([np.arange(n_clean, dtype=np.float64), position - 0.5])
    order = np.argsort(key, kind="stable")
    return {name: pa.concat_arrays([cols[name], dirty[name]]).take(order) for name in cols}
