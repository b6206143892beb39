"""Shared fixtures: a tiny synthetic configuration and paths to the public datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from recpipeline.config import RunConfig, parse_config
from recpipeline.datasets import DATASETS, data_location, missing_message

REPO_ROOT = Path(__file__).resolve().parents[1]


def public_dataset(name: str, *parts: str) -> Path:
    """A file or folder of public dataset ``name`` where ``recpipeline datasets`` keeps it ($RECPIPELINE_DATA,
    else ./data/datasets; CI points the variable at its shared copies); the test is skipped without it."""
    location = data_location()
    if not DATASETS[name].present(location):
        pytest.skip(missing_message(name, location))
    return location.joinpath(name, *parts)


def tiny_raw_config(storage: str, **overrides) -> dict:
    """Ten days of a small synthetic shop; quick models so a whole-graph run takes seconds (YAML-ready)."""
    raw = {
        "source": {
            "kind": "synthetic",
            "start_date": "2026-10-01",
            "end_date": "2026-10-10",
            "synthetic": {"n_users": 300, "n_items": 150, "sessions_per_day": 150},
        },
        "split": {"validation_days": 2, "test_days": 2},
        "models": [
            "popularity",
            {"als": {"iterations": 5}},
            {"mult_vae": {"epochs": 3, "hidden": 32, "latent": 8}},
        ],
        "k": 5,
        "storage": storage,
    }
    raw.update(overrides)
    return raw


#: run tags that ingest the tiny configuration's whole window as one range run
TINY_RANGE = {
    "dagster/asset_partition_range_start": "2026-10-01",
    "dagster/asset_partition_range_end": "2026-10-10",
}


def tiny_config(storage: Path, **overrides) -> RunConfig:
    """The tiny configuration, parsed."""
    return parse_config(tiny_raw_config(str(storage), **overrides), source_name="<test>")


@pytest.fixture
def tiny(tmp_path: Path) -> RunConfig:
    return tiny_config(tmp_path / "warehouse")


#: a German shop's log, as tests write it (`;`-separated CSV), mapped onto the contract
SHOP_COLUMNS = {
    "user_id": "Kunde",
    "item_id": "Artikel",
    "timestamp": "Zeit",
    "event_type": "Aktion",
    "value": "Menge",
}
SHOP_EVENT_TYPES = {"ansicht": "view", "korb": "cart", "kauf": "purchase"}


def shop_source(path: str | Path, **settings) -> dict:
    """A `files` source section for such a log; ``settings`` add to or replace its keys."""
    source = {
        "kind": "files",
        "path": str(path),
        "options": {"sep": ";"},
        "columns": SHOP_COLUMNS,
        "event_types": SHOP_EVENT_TYPES,
    }
    return {**source, **settings}
