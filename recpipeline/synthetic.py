"""A synthetic e-commerce shop: item catalogue, users and daily raw event logs.

The shop is a persistent *world* (catalogue, users, tastes, latent vectors) derived from ``spec.seed`` alone,
plus one independent random stream per day (``np.random.default_rng([spec.seed, day.toordinal()])``), so any
daily partition can be (re)generated on its own and always comes out identical.

How a day is made (vectorised; the only Python loops run over categories):

* sessions: a Poisson number around ``sessions_per_day`` (weekday effect); each belongs to a user drawn by a
  heavy-tailed activity weight among the users that exist by then;
* each session browses a geometric number of items; it stays in one category drawn from the user's taste
  (a mix of an (age band, region) group preference and an individual one) and switches now and then;
* within a category an item is drawn with probability ``popularity**a * exp(u.v / T) * novelty``: Zipf-like
  popularity, low-dimensional user/item latent vectors, and a short boost for newly arrived items; now and
  then a user revisits one of a few persistent favourites instead;
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
class _World:
    items: pd.DataFrame
    users: pd.DataFrame
    item_ids: np.ndarray  # object array of str
    user_ids: np.ndarray
    item_category: np.ndarray  # int
    item_first_day: np.ndarray  # days after start_date
    item_log_pop: np.ndarray
    item_log_price_rel: np.ndarray  # log(price / category median)
    item_vec: np.ndarray  # (n_items, d)
    user_first_day: np.ndarray
    user_taste: np.ndarray  # (n_users, n_categories), rows sum to 1
    user_vec: np.ndarray  # (n_users, d)
    user_activity: np.ndarray
    user_favourites: np.ndarray  # (n_users, k) item indices


def _rng(spec: SyntheticSpec, stream: int) -> np.random.Generator:
    """A world stream: depends on the seed only, never collides with the per-day streams."""
    return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(7919, stream)))


def _ids(prefix: str, n: int) -> np.ndarray:
    width = max(6, len(str(max(n - 1, 0))))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=object)


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
            "item_id": item_ids,
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
    fav_logits = (user_vec.astype(np.float32) @ (item_vec.T / _TEMPERATURE).astype(np.float32)) + (
        _POP_POWER * item_log_pop
    ).astype(np.float32)
    fav_logits += np.log(user_taste).astype(np.float32)[:, item_cat]
    noise = urng.standard_exponential((spec.n_users, spec.n_items), dtype=np.float32)
    fav_logits -= np.log(np.maximum(noise, np.float32(1e-30), out=noise), out=noise)
    k = min(_N_FAVOURITES, spec.n_items)
    favourites = np.argpartition(-fav_logits, k - 1, axis=1)[:, :k]

    user_ids = _ids("U", spec.n_users)
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "age_band": np.array(AGE_BANDS, dtype=object)[age],
            "region": np.array(REGIONS, dtype=object)[region],
            "first_seen": _midnights(spec, user_first_day),
        }
    )
    arrays = (item_cat, item_first_day, item_log_pop, item_vec, user_first_day, user_taste, user_vec)
    for a in (*arrays, activity, favourites, item_ids, user_ids):
        a.flags.writeable = False
    return _World(
        items=items,
        users=users,
        item_ids=item_ids,
        user_ids=user_ids,
        item_category=item_cat,
        item_first_day=item_first_day,
        item_log_pop=item_log_pop,
        item_log_price_rel=np.log(price / cat_median_arr[item_cat]),
        item_vec=item_vec,
        user_first_day=user_first_day,
        user_taste=user_taste,
        user_vec=user_vec,
        user_activity=activity,
        user_favourites=favourites,
    )


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
    taste = w.user_taste[v_user] * cat_open
    candidate = _sample_rows(rng, taste / taste.sum(axis=1, keepdims=True))
    switch = (v_pos == 0) | (rng.random(n_v) < _P_SWITCH)
    v_cat = candidate[np.maximum.accumulate(np.where(switch, np.arange(n_v), 0))]

    # item per view: popularity^a * exp(u.v / T) * novelty within the category (Gumbel-max draws)
    item_age = age - w.item_first_day
    novelty = np.where(
        (w.item_first_day > 0) & items_now, np.log1p(_NOVELTY_BOOST * np.exp(-item_age / _NOVELTY_TAU)), 0.0
    )
    base_logit = _POP_POWER * w.item_log_pop + novelty
    v_item = np.empty(n_v, dtype=np.int64)
    for c in np.flatnonzero(cat_open):
        rows = np.flatnonzero(v_cat == c)
        if rows.size == 0:
            continue
        cand = np.flatnonzero(items_now & (w.item_category == c))
        logits = base_logit[cand][None, :] + (w.user_vec[v_user[rows]] @ w.item_vec[cand].T) / _TEMPERATURE
        logits -= np.log(rng.exponential(1.0, logits.shape))
        v_item[rows] = cand[np.argmax(logits, axis=1)]
    # revisits of a favourite in the same category, when the user has one available
    favs = w.user_favourites[v_user]
    fav_ok = (w.item_category[favs] == v_cat[:, None]) & items_now[favs]
    revisit = (rng.random(n_v) < _P_REVISIT) & fav_ok.any(axis=1)
    fav_pick = np.argmax(np.where(fav_ok, rng.random(fav_ok.shape), -1.0), axis=1)
    v_item = np.where(revisit, favs[np.arange(n_v), fav_pick], v_item)

    # funnel: views -> carts -> purchases, likelier for items the user likes, purchases less for pricey ones
    affinity = np.tanh(np.einsum("ij,ij->i", w.user_vec[v_user], w.item_vec[v_item]) / 0.3)
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
    stamps = np.datetime64(day, "us") + off.astype("timedelta64[us]")
    ts = np.char.add(np.datetime_as_string(stamps, unit="us"), "Z").astype(object)
    day_tag = f"S{day:%Y%m%d}-"
    session_ids = np.char.add(day_tag, np.char.zfill(np.arange(n_sessions).astype(str), 5)).astype(object)
    cols: dict[str, np.ndarray] = {
        "user_id": w.user_ids[v_user[src]].copy(),
        "item_id": w.item_ids[v_item[src]].copy(),
        "event_type": np.array(["view", "cart", "purchase"], dtype=object)[kind],
        "timestamp": ts,
        "value": value,
        "session_id": session_ids[v_sess[src]],
    }
    cols = _add_dirty_rows(rng, cols, spec.dirty_share, day)
    return pd.DataFrame(cols)


def _add_dirty_rows(
    rng: np.random.Generator, cols: dict[str, np.ndarray], dirty_share: float, day: dt.date
) -> dict[str, np.ndarray]:
    """Copies of random clean rows, each broken one way, inserted at random positions."""
    n_clean = cols["value"].size
    if dirty_share <= 0 or n_clean == 0:
        return cols
    n_dirty = max(1, int(round(dirty_share * n_clean)))
    src = rng.integers(0, n_clean, n_dirty)
    kinds = rng.permutation(np.resize(np.arange(5), n_dirty))  # every kind present once n_dirty >= 5
    dirty = {name: col[src].copy() for name, col in cols.items()}
    blank = np.where(rng.random(n_dirty) < 0.5, None, "")
    pick = rng.integers(0, 1000, n_dirty)
    year = f"{day.year:04d}"
    bad_ts = np.array([t.format(y=year) for t in _BAD_TIMESTAMPS], dtype=object)
    bad_types = np.array(_BAD_EVENT_TYPES, dtype=object)
    dirty["user_id"] = np.where(kinds == 0, blank, dirty["user_id"])
    dirty["item_id"] = np.where(kinds == 1, blank, dirty["item_id"])
    dirty["timestamp"] = np.where(kinds == 2, bad_ts[pick % bad_ts.size], dirty["timestamp"])
    dirty["event_type"] = np.where(kinds == 3, bad_types[pick % bad_types.size], dirty["event_type"])
    # kind 4: an exact duplicate, left as is
    position = rng.integers(0, n_clean + 1, n_dirty)
    key = np.concatenate([np.arange(n_clean, dtype=np.float64), position - 0.5])
    order = np.argsort(key, kind="stable")
    return {name: np.concatenate([cols[name], dirty[name]])[order] for name in cols}
