"""Tests of the synthetic shop generator (recpipeline.sources.synthetic)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recpipeline.contracts import CLEANED_COLUMNS
from recpipeline.sources.synthetic import (
    AGE_BANDS,
    SyntheticSpec,
    generate_events,
    generate_items,
    generate_users,
    sampling,
)
from recpipeline.sources.synthetic import events as synthetic_events
from recpipeline.sources.synthetic import text as synthetic_text
from recpipeline.sources.synthetic import world as synthetic_world

SPEC = SyntheticSpec()
DAY0 = SPEC.start_date
CLEAN_TYPES = {"view", "cart", "purchase"}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
SMALL = SyntheticSpec(seed=3, n_users=120, n_items=80, n_categories=4, n_brands=6, sessions_per_day=60)


def day(n: int, spec: SyntheticSpec = SPEC) -> dt.date:
    return spec.start_date + dt.timedelta(days=n)


@pytest.fixture(scope="module")
def clean_week() -> pd.DataFrame:
    """Seven consecutive clean days (dirty_share=0) of the default shop, with each view's category."""
    spec = SyntheticSpec(dirty_share=0.0)
    frames = [generate_events(spec, day(n)).assign(day=n) for n in range(7)]
    events = pd.concat(frames, ignore_index=True)
    category = generate_items(spec).set_index("item_id")["category"]
    return events.assign(category=events["item_id"].map(category))


@pytest.fixture(scope="module")
def dirty_day() -> pd.DataFrame:
    return generate_events(SPEC, day(5))


def _parsed(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts, utc=True, errors="coerce", format="ISO8601")


def _is_missing(col: pd.Series) -> pd.Series:
    return col.isna() | (col == "")


# --- schema ---------------------------------------------------------------------------------------------


def test_event_schema_and_dtypes(dirty_day: pd.DataFrame) -> None:
    assert tuple(dirty_day.columns) == CLEANED_COLUMNS
    for c in ("user_id", "item_id", "event_type", "timestamp", "session_id"):
        assert pd.api.types.is_string_dtype(dirty_day[c]), c
    assert dirty_day["value"].dtype == np.float64
    assert isinstance(dirty_day.index, pd.RangeIndex)
    assert 5_000 <= len(dirty_day) <= 15_000
    clean = dirty_day[dirty_day["event_type"].isin(CLEAN_TYPES)]
    assert clean["timestamp"].str.match(TS_RE).mean() > 0.98
    assert clean["user_id"].dropna().str.match(r"^U\d{6}$|^$").all()
    assert clean["item_id"].dropna().str.match(r"^I\d{6}$|^$").all()


def test_item_and_user_tables() -> None:
    items, users = generate_items(SPEC), generate_users(SPEC)
    assert list(items.columns) == ["item_id", "title", "category", "brand", "price", "first_seen"]
    assert list(users.columns) == ["user_id", "age_band", "region", "first_seen"]
    assert len(items) == SPEC.n_items and items["item_id"].is_unique
    assert len(users) == SPEC.n_users and users["user_id"].is_unique
    assert items["item_id"].str.match(r"^I\d{6}$").all() and users["user_id"].str.match(r"^U\d{6}$").all()
    assert items["category"].nunique() == SPEC.n_categories
    assert items["brand"].nunique() <= SPEC.n_brands
    assert items.groupby("brand")["category"].nunique().max() <= 2  # brands tied to few categories
    assert items["price"].dtype == np.float64 and (items["price"] > 0).all()
    # prices differ by category (lognormal per category)
    medians = items.groupby("category")["price"].median()
    assert medians.max() / medians.min() > 3
    assert all(b in t for b, t in zip(items["brand"], items["title"], strict=True))
    assert set(users["age_band"]) == set(AGE_BANDS)
    assert users["region"].nunique() == 6
    start = pd.Timestamp(SPEC.start_date, tz="UTC")
    for frame, share in ((items, SPEC.initial_item_share), (users, SPEC.initial_user_share)):
        seen = frame["first_seen"]
        assert isinstance(seen.dtype, pd.DatetimeTZDtype) and str(seen.dt.tz) == "UTC"
        assert (seen == seen.dt.normalize()).all()
        assert (seen >= start).all() and (seen <= start + pd.Timedelta(days=SPEC.arrival_days)).all()
        assert (seen == start).mean() == pytest.approx(share, abs=0.01)
    # tables are copies: mutating one does not change the next
    items.loc[0, "price"] = -1.0
    assert generate_items(SPEC).loc[0, "price"] > 0


def test_demographics_shape_category_taste(clean_week: pd.DataFrame) -> None:
    users = generate_users(SPEC).set_index("user_id")
    views = clean_week[clean_week["event_type"] == "view"]
    share = pd.crosstab(views["user_id"].map(users["age_band"]), views["category"], normalize="index")
    # age bands prefer clearly different categories
    assert (share.max() - share.min()).max() > 0.05


# --- determinism ---------------------------------------------------------------------------------------


def test_deterministic_per_seed_and_day() -> None:
    spec = replace(SPEC, seed=1234, n_users=600, n_items=300, sessions_per_day=300)  # a world not built yet
    alone = generate_events(spec, day(4, spec))  # the first thing generated in a fresh world
    for n in (0, 6, 2):
        generate_events(spec, day(n, spec))
    after = generate_events(replace(spec), day(4, spec))  # an equal spec object, after other days
    pd.testing.assert_frame_equal(alone, after)
    rebuilt = synthetic_world.build_world.__wrapped__(replace(spec))  # bypassing the cache
    pd.testing.assert_frame_equal(generate_items(spec), rebuilt.items)
    pd.testing.assert_frame_equal(generate_users(spec), rebuilt.users)


def test_days_and_seeds_differ() -> None:
    a, b = generate_events(SMALL, day(3, SMALL)), generate_events(SMALL, day(4, SMALL))
    assert not a["session_id"].isin(b["session_id"]).any()  # session ids are unique across days
    parsed = _parsed(a["timestamp"]).notna()  # dirty placeholders such as "??" may recur on any day
    assert not a.loc[parsed, "timestamp"].isin(b["timestamp"]).any()
    other = replace(SMALL, seed=4)
    assert not a[["user_id", "item_id"]].equals(generate_events(other, day(3, SMALL))[["user_id", "item_id"]])
    pd.testing.assert_frame_equal(generate_items(SMALL), generate_items(replace(SMALL)))
    assert not generate_items(SMALL)["price"].equals(generate_items(other)["price"])


def test_before_start_is_empty() -> None:
    empty = generate_events(SPEC, DAY0 - dt.timedelta(days=1))
    assert empty.empty and tuple(empty.columns) == CLEANED_COLUMNS
    assert empty["value"].dtype == np.float64
    assert pd.api.types.is_string_dtype(empty["user_id"])
    assert generate_events(replace(SMALL, sessions_per_day=0), DAY0).empty


# --- arrivals ------------------------------------------------------------------------------------------


def test_only_existing_users_and_items_appear(clean_week: pd.DataFrame) -> None:
    users = generate_users(SPEC).set_index("user_id")["first_seen"]
    items = generate_items(SPEC).set_index("item_id")["first_seen"]
    start = pd.Timestamp(DAY0, tz="UTC")
    on_day = start + pd.to_timedelta(clean_week["day"], unit="D")
    assert (clean_week["user_id"].map(users) <= on_day).all()
    assert (clean_week["item_id"].map(items) <= on_day).all()
    # newcomers do show up once they exist, and new items get a novelty boost
    assert (clean_week["user_id"].map(users) > start).sum() > 0
    new_items = clean_week["item_id"].map(items) > start
    assert new_items.sum() > 0
    views = clean_week[clean_week["event_type"] == "view"]
    per_item = views.groupby("item_id").size()
    arrived = (per_item.index.map(items) - start).days.to_numpy()
    rate = per_item.to_numpy() / np.where(arrived > 0, 7 - arrived, 7)  # views per day present
    assert np.median(rate[arrived > 0]) > 1.5 * np.median(rate[arrived == 0])


def test_first_day_has_only_initial_population() -> None:
    events = generate_events(SyntheticSpec(dirty_share=0.0), DAY0)
    users = generate_users(SPEC).set_index("user_id")["first_seen"]
    start = pd.Timestamp(DAY0, tz="UTC")
    items = generate_items(SPEC).set_index("item_id")["first_seen"]
    assert (events["user_id"].map(users) == start).all()
    assert (events["item_id"].map(items) == start).all()


# --- dirty rows -----------------------------------------------------------------------------------------


def test_dirty_rows_present_and_mixed(dirty_day: pd.DataFrame) -> None:
    bad_ts = _parsed(dirty_day["timestamp"]).isna()
    missing_user = _is_missing(dirty_day["user_id"])
    missing_item = _is_missing(dirty_day["item_id"])
    unknown_type = ~dirty_day["event_type"].isin(CLEAN_TYPES)
    duplicates = dirty_day.duplicated(keep="first")
    for name, mask in {
        "bad timestamp": bad_ts,
        "missing user": missing_user,
        "missing item": missing_item,
        "unknown type": unknown_type,
        "duplicate": duplicates,
    }.items():
        assert mask.sum() > 0, name
    dirty = bad_ts | missing_user | missing_item | unknown_type | duplicates
    clean_count = len(dirty_day) - dirty.sum()
    assert dirty.sum() == pytest.approx(SPEC.dirty_share * clean_count, abs=2)
    # dirty rows are scattered through the file, not appended at the end
    positions = np.flatnonzero(dirty.to_numpy())
    assert positions.min() < len(dirty_day) / 2 < positions.max()


def test_no_dirty_rows_without_dirty_share() -> None:
    spec = SyntheticSpec(dirty_share=0.0)
    clean = generate_events(spec, day(5))
    assert _parsed(clean["timestamp"]).notna().all()
    assert not _is_missing(clean["user_id"]).any() and not _is_missing(clean["item_id"]).any()
    assert clean["event_type"].isin(CLEAN_TYPES).all()
    assert not clean.duplicated().any()
    assert clean["timestamp"].str.match(TS_RE).all()
    # dirty rows are extra rows on top of the very same clean rows
    dirty = generate_events(SPEC, day(5))
    assert len(dirty) - len(clean) == round(SPEC.dirty_share * len(clean))
    key = list(CLEANED_COLUMNS)
    merged = clean.merge(dirty.drop_duplicates(), on=key, how="left", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_at_least_one_dirty_row_on_a_tiny_day() -> None:
    tiny = replace(SMALL, sessions_per_day=3)
    clean = generate_events(replace(tiny, dirty_share=0.0), DAY0)
    assert len(clean) > 0
    assert len(generate_events(tiny, DAY0)) == len(clean) + 1


# --- behaviour ------------------------------------------------------------------------------------------


def test_values_and_funnel(clean_week: pd.DataFrame) -> None:
    e = clean_week
    assert (e.loc[e["event_type"] != "purchase", "value"] == 1.0).all()
    purchases = e.loc[e["event_type"] == "purchase", "value"]
    assert (purchases >= 1).all() and (purchases == np.floor(purchases)).all() and (purchases > 1).any()
    counts = e["event_type"].value_counts()
    assert counts["cart"] / counts["view"] == pytest.approx(0.30, abs=0.05)
    assert counts["purchase"] / counts["cart"] == pytest.approx(0.40, abs=0.06)
    # every purchase follows a cart, and every cart a view, of the same item in the same session
    first = e.assign(t=_parsed(e["timestamp"])).groupby(["session_id", "item_id", "event_type"])["t"].min()
    first = first.unstack("event_type")
    carts = first[first["cart"].notna()]
    assert (carts["view"] < carts["cart"]).all()
    bought = first[first["purchase"].notna()]
    assert (bought["cart"] < bought["purchase"]).all()


def test_timestamps_sorted_within_day(clean_week: pd.DataFrame) -> None:
    for n, frame in clean_week.groupby("day"):
        t = _parsed(frame["timestamp"])
        assert t.is_monotonic_increasing
        start = pd.Timestamp(day(int(n)), tz="UTC")
        assert (t >= start).all() and (t < start + pd.Timedelta(days=1)).all()
    # some sessions at night, most in the day/evening
    hours = _parsed(clean_week["timestamp"]).dt.hour
    assert hours.between(18, 22).mean() > hours.between(1, 5).mean() * 3


def test_long_tail_popularity(clean_week: pd.DataFrame) -> None:
    views = clean_week.loc[clean_week["event_type"] == "view", "item_id"].value_counts()
    top = int(np.ceil(0.1 * SPEC.n_items))
    assert views.iloc[:top].sum() / views.sum() > 0.35
    assert (views <= 3).sum() > 0  # and a tail of rarely seen items


def test_heavy_tailed_user_activity(clean_week: pd.DataFrame) -> None:
    sessions = clean_week.drop_duplicates("session_id")["user_id"].value_counts()
    top = int(0.1 * len(sessions))
    assert sessions.iloc[:top].sum() / sessions.sum() > 0.25
    assert sessions.max() >= 10 * sessions.median()


def test_sessions_are_category_coherent(clean_week: pd.DataFrame) -> None:
    views = clean_week[clean_week["event_type"] == "view"]  # already in time order within each day
    views = views.sort_values(["session_id"], kind="stable")
    same_session = views["session_id"].to_numpy()[1:] == views["session_id"].to_numpy()[:-1]
    same_category = views["category"].to_numpy()[1:] == views["category"].to_numpy()[:-1]
    assert same_category[same_session].mean() > 0.8
    assert same_category[same_session].mean() < 1.0  # occasional switches
    assert views.groupby("session_id").size().mean() == pytest.approx(4.5, rel=0.15)
    per_day = clean_week.groupby("day")["session_id"].nunique()
    assert per_day.between(0.85 * SPEC.sessions_per_day, 1.15 * SPEC.sessions_per_day).all()


def test_persistent_personal_taste(clean_week: pd.DataFrame) -> None:
    """A user's days 4-6 are predicted by their own days 0-3 far better than by another user's."""
    early = clean_week[clean_week["day"] <= 3]
    late = clean_week[clean_week["day"] >= 4]
    early_top = pd.crosstab(early["user_id"], early["category"]).idxmax(axis=1)
    late_top = pd.crosstab(late["user_id"], late["category"]).idxmax(axis=1)
    common = early_top.index.intersection(late_top.index)
    assert len(common) > 500
    own = (early_top[common].to_numpy() == late_top[common].to_numpy()).mean()
    shuffled = (early_top[common].to_numpy() == np.roll(late_top[common].to_numpy(), 1)).mean()
    assert own > 0.25 and own > 2.5 * shuffled
    # revisits: users come back to items they interacted with before
    pairs_early = set(zip(early["user_id"], early["item_id"], strict=True))
    late_pairs = list(zip(late["user_id"], late["item_id"], strict=True))
    assert np.mean([p in pairs_early for p in late_pairs]) > 0.05


# --- scalable sampling (no users x items block anywhere) -------------------------------------------------


def _sampler(cat: np.ndarray, weights: np.ndarray) -> sampling.ItemSampler:
    order = np.argsort(cat, kind="stable")
    bounds = np.searchsorted(cat[order], np.arange(cat.max() + 2))
    return sampling.ItemSampler.build(order, bounds, weights)


def test_item_sampler_is_an_exact_inverse_cdf() -> None:
    rng = np.random.default_rng(0)
    cat = rng.integers(0, 4, 3000)
    weights = rng.pareto(1.0, cat.size) * (rng.random(cat.size) > 0.1)  # heavy tail, some weightless items
    sampler = _sampler(cat, weights)
    for c in range(4):
        members = np.flatnonzero(cat == c)
        u = np.concatenate([[0.0, np.nextafter(1.0, 0.0)], rng.random(20_000)])
        got = sampler.draw(np.full(u.size, c), u)
        # the same as a binary search of the category's cumulative weights
        cum = np.cumsum(weights[members]) / weights[members].sum()
        expected = members[np.minimum(np.searchsorted(cum, u, side="right"), members.size - 1)]
        np.testing.assert_array_equal(got, expected)
        assert (weights[got] > 0).all()


def test_item_sampler_frequencies() -> None:
    cat = np.array([1, 0, 2, 1, 1, 0, 2, 2, 2, 1, 3])
    weights = np.array([0.0, 1.0, 5.0, 2.0, 0.0, 3.0, 1.0, 0.0, 4.0, 6.0, 0.0])  # category 3: weightless
    sampler = _sampler(cat, weights)
    u = np.random.default_rng(1).random(100_000)
    for c in range(3):
        freq = np.bincount(sampler.draw(np.full(u.size, c), u), minlength=cat.size) / u.size
        expected = np.where(cat == c, weights, 0.0) / weights[cat == c].sum()
        np.testing.assert_allclose(freq, expected, atol=0.01)


def test_resampling_approximates_the_softmax_target() -> None:
    """SIR picks items close to popularity**a * exp(u.v / T), far closer than popularity alone."""
    shop = synthetic_world.build_world(SPEC)
    base = np.exp(sampling.POP_POWER * shop.item_log_pop)
    sampler = sampling.ItemSampler.build(shop.item_order, shop.category_bounds, base)
    items = np.flatnonzero(shop.item_category == 2)
    n = 60_000
    for user in range(3):
        uv = shop.affinity.dots(np.array([user]), items[None, :])[0].astype(np.float64)
        target = base[items] * np.exp(uv / sampling.TEMPERATURE)
        target /= target.sum()
        prior = base[items] / base[items].sum()
        rngs = np.random.default_rng([user, 1]), np.random.default_rng([user, 2])
        got = synthetic_events._resample(sampler, shop.affinity, np.full(n, user), np.full(n, 2), *rngs)
        assert np.isin(got, items).all()
        freq = np.bincount(np.searchsorted(items, got), minlength=items.size) / n
        tv = 0.5 * np.abs(freq - target).sum()
        assert tv < 0.06 and tv < 0.25 * (0.5 * np.abs(prior - target).sum())


def test_favourites_reflect_taste_and_affinity() -> None:
    shop = synthetic_world.build_world(SPEC)
    fav = shop.user_favourites
    assert fav.shape == (SPEC.n_users, synthetic_world._N_FAVOURITES)
    assert ((fav >= 0) & (fav < SPEC.n_items)).all()
    assert (np.sort(fav, axis=1)[:, 1:] != np.sort(fav, axis=1)[:, :-1]).all()  # distinct per user
    own = shop.affinity.dots(np.arange(SPEC.n_users), fav).mean()
    other = shop.affinity.dots(np.roll(np.arange(SPEC.n_users), 1), fav).mean()
    assert own > other + 0.1
    taste = np.take_along_axis(shop.user_taste, shop.item_category[fav], axis=1)
    assert taste.mean() > 2.0 / SPEC.n_categories


def test_block_size_never_changes_results(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = replace(SMALL, seed=77, n_users=700, n_items=400, n_categories=6, sessions_per_day=250)
    events = generate_events(spec, day(9, spec))
    favourites = synthetic_world.build_world(spec).user_favourites
    monkeypatch.setattr(sampling, "_BLOCK_CELLS", 97)
    pd.testing.assert_frame_equal(generate_events(spec, day(9, spec)), events)
    np.testing.assert_array_equal(synthetic_world.build_world.__wrapped__(spec).user_favourites, favourites)


def test_text_columns_match_python_formatting() -> None:
    for n, width in ((0, 5), (7, 5), (100_012, 5), (1500, 6)):
        expected = [f"S20261005-{k:0{width}d}" for k in range(n)]
        assert synthetic_text.numbered("S20261005-", n, width).to_pylist() == expected
    d = dt.date(2026, 10, 5)
    offsets = np.concatenate(
        [[0, 1, 86_400_000_000 - 1], np.random.default_rng(2).integers(0, 86_400 * 10**6, 999)]
    )
    stamps = np.datetime64(d, "us") + offsets.astype("timedelta64[us]")
    expected = [s + "Z" for s in np.datetime_as_string(stamps, unit="us")]
    assert synthetic_text.iso_stamps(d, offsets).to_pylist() == expected


# --- properties over small random shops ------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    offset=st.integers(-2, 40),
    n_categories=st.integers(1, 15),
    n_brands=st.integers(1, 8),
    dirty_share=st.sampled_from([0.0, 0.05]),
    arrival_days=st.integers(0, 30),
)
def test_invariants_on_small_shops(
    seed: int, offset: int, n_categories: int, n_brands: int, dirty_share: float, arrival_days: int
) -> None:
    spec = SyntheticSpec(
        seed=seed, n_users=40, n_items=30, n_categories=n_categories, n_brands=n_brands, sessions_per_day=25,
        arrival_days=arrival_days, dirty_share=dirty_share,
    )  # fmt: skip
    d = day(offset, spec)
    events = generate_events(spec, d)
    assert tuple(events.columns) == CLEANED_COLUMNS
    pd.testing.assert_frame_equal(events, generate_events(spec, d))
    if offset < 0:
        assert events.empty
        return
    users = generate_users(spec).set_index("user_id")["first_seen"]
    items = generate_items(spec).set_index("item_id")["first_seen"]
    on_day = pd.Timestamp(d, tz="UTC")
    assert (events["user_id"].dropna().replace("", np.nan).dropna().map(users) <= on_day).all()
    assert (events["item_id"].dropna().replace("", np.nan).dropna().map(items) <= on_day).all()
    good = events["event_type"].isin(CLEAN_TYPES) & events["timestamp"].str.match(TS_RE).fillna(False)
    good &= ~_is_missing(events["user_id"]) & ~_is_missing(events["item_id"])
    if dirty_share == 0:
        assert good.all()
    elif len(events):
        assert (~good | events.duplicated()).sum() >= 1
    assert _parsed(events.loc[good & ~events.duplicated(keep=False), "timestamp"]).is_monotonic_increasing
