"""The source kinds' table (``config.SOURCE_KINDS``): one constructor per kind, each giving a ``Source``."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest

from recpipeline.config import SOURCE_KINDS, ConfigError, parse_config
from recpipeline.sources import SourceError, open_source
from recpipeline.sources.files import FileSource
from recpipeline.sources.synthetic import SyntheticSource
from recpipeline_tests.conftest import public_dataset


def test_every_kind_names_its_constructor() -> None:
    for kind in SOURCE_KINDS.values():
        module, constructor = kind.constructor.split(":")
        assert callable(getattr(importlib.import_module(module), constructor)), kind


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("synthetic", (), SyntheticSource),
        ("movielens", ("movielens-100k",), FileSource),
        ("online_retail", ("uci-online-retail", "online_retail.parquet"), FileSource),
    ],
)
def test_open_source_builds_the_kinds_source(kind: str, data: tuple[str, ...], expected: type) -> None:
    source = {"kind": kind, **({"path": str(public_dataset(*data))} if data else {})}
    assert isinstance(open_source(parse_config({"source": source}, source_name="<test>")), expected)


def test_synthetic_window_and_settings() -> None:
    config = parse_config(
        {"source": {"kind": "synthetic", "start_date": "2026-10-02", "synthetic": {"seed": 5}}},
        source_name="<t>",
    )
    source = open_source(config)
    assert source.days() == (dt.date(2026, 10, 2), None)
    assert source.spec.seed == 5 and source.spec.start_date == dt.date(2026, 10, 2)
    assert source.row_counts() == {}
    with pytest.raises(SourceError, match="reads no files"):
        source.split_file_rows("train.csv")


def test_unknown_synthetic_setting_names_the_key() -> None:
    config = parse_config({"source": {"kind": "synthetic", "synthetic": {"n_user": 5}}}, source_name="<t>")
    with pytest.raises(ConfigError, match=r"source\.synthetic\.n_user"):
        open_source(config)
