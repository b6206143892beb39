import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from dagster import (
    AssetExecutionContext,
    AssetIn,
    DailyPartitionsDefinition,
    PartitionKeyRange,
    asset,
    build_asset_context,
    materialize,
)
from upath import UPath

from recpipeline.models import ArtefactError, Recommender, create_model
from recpipeline.orchestration.io_managers import (
    ModelIOManager,
    ParquetIOManager,
    contained_path,
    partition_metadata,
)

DAYS = DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-05")


@asset(partitions_def=DAYS)
def daily(context: AssetExecutionContext) -> dict[str, pd.DataFrame]:
    return {
        key: pd.DataFrame({"day": [key] * 2, "n": [1, 2], "id": ['ü,"x', "9007199254740993"]})
        for key in context.partition_keys
    }


@asset
def summary(daily: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(daily.values(), ignore_index=True)


@asset(partitions_def=DAYS)
def same_day(daily: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {key: frame.assign(n=frame["n"] * 10) for key, frame in daily.items()}


@asset(ins={"daily": AssetIn(metadata={"columns": ["id"]})})
def ids_only(daily: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(daily.values(), ignore_index=True)


def resources(root):
    return {"io_manager": ParquetIOManager(root=str(root))}


def test_partitioned_and_unpartitioned_round_trip(tmp_path):
    for key in DAYS.get_partition_keys():
        materialize([daily, same_day], partition_key=key, resources=resources(tmp_path))
    files = sorted(p.name for p in (tmp_path / "daily").iterdir())
    assert files == ["2026-10-01.parquet", "2026-10-02.parquet", "2026-10-03.parquet", "2026-10-04.parquet"]
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files
    result = materialize([daily.to_source_asset(), summary], resources=resources(tmp_path))
    table = result.output_for_node("summary")
    assert len(table) == 8 and set(table["day"]) == set(DAYS.get_partition_keys())
    assert table["id"].tolist()[:2] == ['ü,"x', "9007199254740993"]
    assert pd.read_parquet(tmp_path / "same_day" / "2026-10-02.parquet")["n"].tolist() == [10, 20]


def test_a_single_run_over_a_range_writes_one_file_per_day(tmp_path):
    materialize(
        [daily, same_day],
        resources=resources(tmp_path),
        tags={
            "dagster/asset_partition_range_start": "2026-10-02",
            "dagster/asset_partition_range_end": "2026-10-04",
        },
    )
    assert sorted(p.stem for p in (tmp_path / "same_day").iterdir()) == [
        "2026-10-02",
        "2026-10-03",
        "2026-10-04",
    ]


@asset(partitions_def=DAYS)
def mixed(context: AssetExecutionContext) -> dict[str, pd.DataFrame]:
    """Days of different lengths and dtypes (a categorical, an empty day, one day's ids as integers)."""
    kind = pd.CategoricalDtype(["view", "cart", "purchase"])
    frames = {
        key: pd.DataFrame(
            {
                "id": [f"{key}-{i}" for i in range(n)],
                "event_type": pd.Series(["cart", "view", "purchase"] * n, dtype=kind)[:n].to_numpy(),
                "value": np.arange(n, dtype=np.float64) / 3,
            }
        )
        for n, key in enumerate(context.partition_keys)
    }
    frames["2026-10-03"] = frames["2026-10-03"].assign(id=[7, 8])
    return frames


@asset(partitions_def=DAYS)
def mixed_again(mixed: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return mixed


def test_a_range_run_converts_its_days_together_but_each_file_is_its_own_day(tmp_path):
    """Days converted to Arrow in one go (per dtype set) and sliced: each file holds exactly its day's
    frame, with its own dtypes, and reads back as that frame."""
    tags = {
        "dagster/asset_partition_range_start": "2026-10-01",
        "dagster/asset_partition_range_end": "2026-10-04",
    }
    result = materialize([mixed, mixed_again], resources=resources(tmp_path), tags=tags)
    expected = mixed(build_asset_context(partition_key_range=PartitionKeyRange("2026-10-01", "2026-10-04")))
    passed_on = result.output_for_node("mixed_again")
    for key, frame in expected.items():
        for folder in ("mixed", "mixed_again"):
            pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / folder / f"{key}.parquet"), frame)
        pd.testing.assert_frame_equal(passed_on[key], frame)  # the loaded days, split apart again
    assert pd.read_parquet(tmp_path / "mixed" / "2026-10-03.parquet")["id"].dtype == np.int64


def test_a_range_run_names_run_totals_apart_from_each_partitions_file_and_rows(tmp_path):
    result = materialize(
        [daily],
        resources=resources(tmp_path),
        tags={
            "dagster/asset_partition_range_start": "2026-10-02",
            "dagster/asset_partition_range_end": "2026-10-04",
        },
    )
    events = result.get_asset_materialization_events()
    assert sorted(event.partition for event in events) == ["2026-10-02", "2026-10-03", "2026-10-04"]
    # what the IO manager adds holds for the whole run: nothing under a per-partition name
    for event in events:
        metadata = {key: value.value for key, value in event.materialization.metadata.items()}
        assert metadata == {"folder": str(tmp_path / "daily"), "rows_in_run": 6}
    # the asset adds each partition's own: a file the IO manager wrote, and its rows
    frames = {
        key: pd.read_parquet(tmp_path / "daily" / f"{key}.parquet") for key in ("2026-10-02", "2026-10-03")
    }
    own = partition_metadata(str(tmp_path), "daily", frames)
    assert {key: value["path"].value for key, value in own.items()} == {
        key: str(tmp_path / "daily" / f"{key}.parquet") for key in frames
    }
    assert {value["dagster/row_count"] for value in own.values()} == {2}
    assert partition_metadata(str(tmp_path), "daily", {"../x": frames["2026-10-02"]})["../x"][
        "path"
    ].value == str(tmp_path / "daily" / "%2E%2E" / "x.parquet")


def test_rematerializing_a_partition_replaces_it(tmp_path):
    materialize([daily], partition_key="2026-10-01", resources=resources(tmp_path))
    materialize([daily], partition_key="2026-10-01", resources=resources(tmp_path))
    assert len(pd.read_parquet(tmp_path / "daily" / "2026-10-01.parquet")) == 2


def test_missing_upstream_partition_names_the_file(tmp_path):
    materialize([daily], partition_key="2026-10-01", resources=resources(tmp_path))
    with pytest.raises(Exception, match="2026-10-02.parquet"):
        materialize([daily.to_source_asset(), summary], resources=resources(tmp_path))


def test_fsspec_url_storage(tmp_path):
    root = f"file://{tmp_path}/remote"
    materialize([daily], partition_key="2026-10-03", resources=resources(root))
    assert (tmp_path / "remote" / "daily" / "2026-10-03.parquet").exists()


def test_an_input_reads_only_the_columns_its_metadata_names(tmp_path):
    materialize(
        [daily],
        resources=resources(tmp_path),
        tags={
            "dagster/asset_partition_range_start": "2026-10-01",
            "dagster/asset_partition_range_end": "2026-10-04",
        },
    )
    result = materialize([daily.to_source_asset(), ids_only], resources=resources(tmp_path))
    assert result.output_for_node("ids_only").columns.tolist() == ["id"]


@pytest.mark.parametrize("key", ["../outside", "a/../../b", "/absolute", ".."])
def test_a_partition_key_cannot_leave_the_asset_folder(tmp_path, key):
    folder = UPath(tmp_path) / "daily"
    path = contained_path(folder, key)
    assert path.resolve().is_relative_to(folder.resolve())
    assert contained_path(folder, "my..backup/2026-10-01") == folder / "my..backup" / "2026-10-01"


@asset(io_manager_key="model_io_manager")
def fitted() -> Recommender:
    train = sp.csr_matrix(np.eye(4, 6, dtype=np.float32) + np.eye(4, 6, k=1, dtype=np.float32))
    return create_model("ease", {"regularization": 1.0}).fit(train)


@asset
def top_items(fitted: Recommender) -> pd.DataFrame:
    items, _ = fitted.recommend(np.arange(2), sp.csr_matrix((2, fitted.n_items_), dtype=np.float32), 3)
    return pd.DataFrame(items)


def model_resources(root):
    return {**resources(root), "model_io_manager": ModelIOManager(root=str(root))}


def test_a_damaged_model_artefact_is_refused_naming_the_stored_file(tmp_path):
    materialize([fitted], resources=model_resources(tmp_path))
    good = materialize([fitted.to_source_asset(), top_items], resources=model_resources(tmp_path))
    assert good.output_for_node("top_items").shape == (2, 3)
    stored = tmp_path / "models" / "fitted" / "state.npz"
    stored.write_bytes(stored.read_bytes()[:100])  # truncated
    with pytest.raises(Exception) as caught:
        materialize([fitted.to_source_asset(), top_items], resources=model_resources(tmp_path))
    error = caught.value
    while error is not None and not isinstance(error, ArtefactError):
        error = error.__cause__
    # the stored file, not the temporary copy the IO manager loads from
    assert isinstance(error, ArtefactError) and error.path == str(stored)
