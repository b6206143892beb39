"""The torch threads a step gets: the executor's concurrency, capped for model fits by the training pool."""

from __future__ import annotations

import pytest
import yaml
from dagster import instance_for_test

from recpipeline.config import parse_config
from recpipeline.models import threads
from recpipeline.orchestration.assets.modeling import use_threads
from recpipeline.orchestration.instance import DAGSTER_YAML, training_pool_limit


@pytest.fixture(autouse=True)
def four_cores(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    yield
    threads.configure(1, 0)


@pytest.mark.parametrize(
    ("pools", "fit_threads"),
    [({"default_limit": 1}, 4), ({"default_limit": 2}, 2), ({}, 2)],
)
def test_a_fit_shares_the_cores_only_with_the_fits_its_pool_lets_run(pools, fit_threads) -> None:
    """multiprocess with two steps at once: a fit limited to one at a time by its pool gets every core,
    a step outside the pool (no instance given) half of them."""
    config = parse_config({"execution": {"executor": "multiprocess", "max_concurrent": 2}})
    with instance_for_test(overrides={"concurrency": {"pools": pools}}) as instance:
        use_threads(config, instance)
        assert threads.resolve_threads(0) == fit_threads
    use_threads(config)
    assert threads.resolve_threads(0) == 2


def test_the_instance_recpipeline_creates_runs_one_fit_at_a_time() -> None:
    concurrency = yaml.safe_load(DAGSTER_YAML)["concurrency"]
    with instance_for_test(overrides={"concurrency": concurrency}) as instance:
        assert training_pool_limit(instance) == 1
    with instance_for_test() as instance:  # Dagster's own default: no limit
        assert training_pool_limit(instance) is None
