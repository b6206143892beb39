"""Source adapters on the real datasets (read in place) and on small crafted files."""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetCheckSeverity

from recpipeline.config import ConfigError, RunConfig, load_config, parse_config
from recpipeline.orchestration.checks import cleaned_check_results
from recpipeline.preparation.cleaning import clean_partitions, clean_predefined_split, reason_counts
from recpipeline.preparation.splitting import predefined_split
from recpipeline.sources import (
    files,
    open_source,
    partition_window,
    read_raw_events,
    source_row_counts,
    to_contract,
)
from recpipeline.sources.reading import SourceError, read_files
from recpipeline_tests.conftest import SHOP_COLUMNS, public_dataset, shop_source

NOW = pd.Timestamp("2030-01-01", tz="UTC")


@pytest.fixture
def ml100k() -> Path:
    return public_dataset("movielens-100k")


@pytest.fixture
def retail() -> Path:
    return public_dataset("uci-online-retail", "online_retail.parquet")


def source_config(**source) -> RunConfig:
    return parse_config({"source": source}, source_name="<test>")


def ingest(config: RunConfig, **cleaning) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """Every partition as the ingestion assets make it: {day: (raw, cleaned, quarantine)}."""
    first, last = partition_window(config)
    raws = {day.isoformat(): read_raw_events(config, day) for day in pd.date_range(first, last).date}
    results = clean_partitions(raws, partial(to_contract, config=config), **cleaning)
    return {key: (raws[key], *results[key]) for key in raws}


def totals(days: dict) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    raw = sum(len(r) for r, _, _ in days.values())
    cleaned = pd.concat([c for _, c, _ in days.values()], ignore_index=True)
    quarantine = pd.concat([q for _, _, q in days.values()], ignore_index=True)
    for key, (r, c, q) in days.items():
        assert len(r) == len(c) + len(q), key
    return raw, cleaned, quarantine


# --- MovieLens ------------------------------------------------------------------------------------------


def test_movielens_100k_has_the_published_counts(ml100k: Path):
    config = source_config(kind="movielens", path=str(ml100k))
    assert partition_window(config) == (dt.date(1997, 9, 20), dt.date(1998, 4, 22))
    raw, cleaned, quarantine = totals(ingest(config))
    assert raw == len(cleaned) == 100_000 and quarantine.empty
    assert source_row_counts(config) == {"source_rows": 100_000, "outside_window_rows": 0}
    assert cleaned["user_id"].nunique() == 943 and cleaned["item_id"].nunique() == 1_682
    assert set(cleaned["event_type"]) == {"rating"}
    assert cleaned["value"].value_counts().sort_index().tolist() == [6110, 11370, 27145, 34174, 21201]
    # u.data's first line: 196 242 3 881250949
    first = cleaned[(cleaned["user_id"] == "196") & (cleaned["item_id"] == "242")].iloc[0]
    assert first["timestamp"] == pd.Timestamp(881250949, unit="s", tz="UTC") and first["value"] == 3.0

    items = open_source(config).items()
    assert len(items) == 1_682 and items["item_id"].is_unique
    toy_story = items.set_index("item_id").loc["1"]
    assert toy_story["title"] == "Toy Story (1995)"
    assert toy_story["genres"] == "Animation|Children's|Comedy" and toy_story["category"] == "Animation"
    assert items["title"].str.contains("Misérables").any()  # latin-1 decoded
    users = open_source(config).users()
    assert len(users) == 943
    assert users.set_index("user_id").loc["1", ["age", "gender", "occupation"]].tolist() == [
        "24",
        "M",
        "technician",
    ]
    assert users["first_seen"].notna().all()


def test_movielens_predefined_split_reads_u1_with_the_source_settings(ml100k: Path):
    config = parse_config(
        {
            "source": {"kind": "movielens", "path": str(ml100k)},
            "split": {
                "kind": "predefined",
                "train": str(ml100k / "u1.base"),
                "test": str(ml100k / "u1.test"),
            },
        }
    )
    files = clean_predefined_split(config)
    assert clean_predefined_split(config) is files  # read and cleaned once: encoding and splitting share it
    assert set(files) == {"train", "test"}
    assert [len(files[n][0]) for n in ("train", "test")] == [80_000, 20_000]
    assert all(q.empty for _, q in files.values())

    # carve validation: each user's latest 10 % (rounded down) of train
    train = files["train"][0].rename(columns={"user_id": "user_idx", "item_id": "item_idx"})
    splits = predefined_split(train, None, files["test"][0])
    assert len(splits.train) + len(splits.validation) == 80_000
    sizes = train.groupby("user_idx").size()
    assert len(splits.validation) == int(np.floor(sizes * 0.1).sum())
    last_train = splits.train.groupby("user_idx")["timestamp"].max()
    first_validation = splits.validation.groupby("user_idx")["timestamp"].min()
    assert (last_train.reindex(first_validation.index) <= first_validation).all()


def write_ml1m(folder: Path) -> None:
    (folder / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    )
    (folder / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::"
        "Animation|Children's|Musical\n".encode("latin-1")
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")


def test_movielens_1m_and_latest_layouts_are_detected(tmp_path: Path):
    ml1m, latest = tmp_path / "ml-1m", tmp_path / "ml-latest-small"
    ml1m.mkdir()
    latest.mkdir()
    write_ml1m(ml1m)
    (latest / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,3,0.5,965714835\n"
    )
    (latest / "movies.csv").write_text(
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
        '3,"Heat, The (1995)",(no genres listed)\n'
    )

    config = source_config(kind="movielens", path=str(ml1m))
    raw, cleaned, _ = totals(ingest(config))
    assert raw == 3 and sorted(cleaned["value"]) == [3.0, 4.0, 5.0]
    items = open_source(config).items().set_index("item_id")
    assert items.loc["661", "category"] == "Animation" and items.loc["1193", "genres"] == "Drama"
    users = open_source(config).users().set_index("user_id")
    assert users.loc["2", ["gender", "age", "zip_code"]].tolist() == ["M", "56", "70072"]

    config = source_config(kind="movielens", path=str(latest))
    raw, cleaned, _ = totals(ingest(config))
    assert raw == 3 and sorted(cleaned["value"]) == [0.5, 4.0, 4.5]
    items = open_source(config).items().set_index("item_id")
    assert items.loc["3", "title"] == "Heat, The (1995)" and pd.isna(items.loc["3", "category"])
    users = open_source(config).users()  # ml-latest ships no user file: the users seen in the ratings
    assert sorted(users["user_id"]) == ["1", "2"] and users["first_seen"].notna().all()


def test_a_folder_without_a_movielens_layout_is_a_clear_error(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match="no MovieLens layout found.*u.data"):
        partition_window(source_config(kind="movielens", path=str(tmp_path)))


# --- Online Retail --------------------------------------------------------------------------------------


def test_online_retail_accounts_for_every_line_with_its_reason(retail: Path):
    config = source_config(kind="online_retail", path=str(retail))
    assert partition_window(config) == (dt.date(2010, 12, 1), dt.date(2011, 12, 9))
    raw, cleaned, quarantine = totals(ingest(config))
    assert raw == 541_909 == len(cleaned) + len(quarantine)
    assert source_row_counts(config) == {"source_rows": 541_909, "outside_window_rows": 0}
    assert {k: v for k, v in reason_counts(quarantine).items() if v} == {
        "cancellation": 9_288,  # every "C" invoice line
        "return": 1_336,  # negative quantities on ordinary invoices
        "non_product": 2_362,  # postage, fees, manual entries, vouchers, ...
        "missing_user_id": 132_549,
        "duplicate": 5_187,
    }
    assert set(cleaned["event_type"]) == {"purchase"} and (cleaned["value"] > 0).all()
    assert "17850" in set(cleaned["user_id"]) and not cleaned["user_id"].str.contains(r"\.").any()
    assert cleaned["user_id"].nunique() == 4_335  # of 4,372: 37 customers only ever cancelled
    # InvoiceDate is UK local time: 2011-06-01 12:00 BST is 11:00 UTC
    june = cleaned[cleaned["timestamp"].dt.month == 6]
    raw_june = pd.read_parquet(retail).set_index(np.arange(541_909)).loc[june["_row"], "InvoiceDate"]
    assert (
        pd.to_datetime(raw_june.to_numpy()) - june["timestamp"].dt.tz_localize(None).to_numpy()
        == pd.Timedelta(hours=1)
    ).all()

    items = open_source(config).items().set_index("item_id")
    assert items.index.is_unique and "POST" not in items.index
    assert items.loc["85123A", "title"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert not items["title"].str.contains("Â£", na=False).any()
    users = open_source(config).users().set_index("user_id")
    assert users.loc["12347", "country"] == "Iceland" and len(users) == 4_372


def test_cleaning_in_batches_of_days_gives_the_same_partitions(retail: Path):
    """The clean step bounds its memory by cleaning ~1M raw rows at a time: batches must not change a row."""
    config = source_config(kind="online_retail", path=str(retail))
    whole = ingest(config)
    batched = ingest(config, batch_rows=40_000)  # about 25 batches of whole days
    assert whole.keys() == batched.keys()
    for key, (_, cleaned, quarantine) in whole.items():
        pd.testing.assert_frame_equal(batched[key][1], cleaned)
        pd.testing.assert_frame_equal(batched[key][2], quarantine)


# --- files ----------------------------------------------------------------------------------------------

UIT = {"user_id": "u", "item_id": "i", "timestamp": "t"}


def files_config(path: Path, **settings) -> RunConfig:
    return source_config(**shop_source(path, timezone="Europe/Paris", **settings))


def uit_config(path: Path, **settings) -> RunConfig:
    """A log of single-kind events with columns u, i, t."""
    return source_config(kind="files", path=str(path), columns=UIT, event_type_default="view", **settings)


def test_files_source_maps_columns_event_types_and_local_times(tmp_path: Path):
    (tmp_path / "shop.csv").write_text(
        "Kunde;Artikel;Zeit;Aktion;Menge\n"
        "u1;i1;2026-03-02 10:00:00;ansicht;1\n"
        "u1;i1;2026-03-02 10:05:00;kauf;2\n"
        "u2;i2;2026-03-03 00:30:00;korb;1\n"  # Paris 00:30 is 23:30 UTC the day before
        "u2;i2;2026-03-03T09:00:00Z;kauf;1\n"  # an explicit UTC time stays UTC
        ";i3;2026-03-03 11:00:00;kauf;1\n"
        "u3;i3;soon;kauf;1\n"
        "u3;i3;2026-03-03 12:00:00;click;1\n"
        "u3;i3;2026-03-03 12:00:00;kauf;many\n"
        "u1;i1;2026-03-02 10:05:00;kauf;2\n"
    )
    config = files_config(tmp_path / "shop.csv")
    assert partition_window(config) == (dt.date(2026, 3, 2), dt.date(2026, 3, 3))
    days = ingest(config)
    raw, cleaned, quarantine = totals(days)
    assert raw == 9
    assert list(days["2026-03-02"][1]["event_type"]) == ["view", "purchase", "cart"]
    assert days["2026-03-02"][1]["timestamp"].iloc[-1] == pd.Timestamp("2026-03-02T23:30:00Z")
    assert days["2026-03-03"][1]["timestamp"].iloc[0] == pd.Timestamp("2026-03-03T09:00:00Z")
    assert days["2026-03-02"][1]["value"].tolist() == [1.0, 2.0, 1.0]
    assert sorted(quarantine["reason"]) == [
        "bad_timestamp",  # unparseable: kept in the first partition so that it is accounted for
        "bad_value",
        "duplicate",
        "missing_user_id",
        "unknown_event_type",
    ]
    assert {"Kunde", "Zeit", "Menge", "_source_file", "_row"} <= set(quarantine.columns)  # raw rows
    assert set(quarantine["_source_file"]) == {str(tmp_path / "shop.csv")}


def test_epoch_timestamps_seconds_and_milliseconds(tmp_path: Path):
    (tmp_path / "log.csv").write_text(
        "u,i,t\na,x,1772445600\nb,y,1772445600000\nc,z,1772445600.5\n"  # 2026-03-02 10:00:00 UTC
    )
    cleaned = ingest(uit_config(tmp_path / "log.csv"))["2026-03-02"][1]
    assert cleaned["timestamp"].dt.floor("s").eq(pd.Timestamp("2026-03-02T10:00:00Z")).all()
    assert set(cleaned["event_type"]) == {"view"} and set(cleaned["value"]) == {1.0}
    config = uit_config(
        tmp_path / "log.csv", timestamp_unit="ms", start_date="2026-03-02", end_date="2026-03-02"
    )
    days = ingest(config)
    # as milliseconds, 1772445600 is in January 1970: outside the configured dates, so in no partition
    assert len(days["2026-03-02"][0]) == 1
    assert source_row_counts(config) == {"source_rows": 3, "outside_window_rows": 2}


def test_odd_ids_survive_csv_jsonl_and_parquet(tmp_path: Path):
    odd = ["ユーザー", 'a;b,"c"', "123456789012345678901234567890", "NA", " padded "]
    frame = pd.DataFrame({"u": odd, "i": odd, "t": "2026-03-02T10:00:00Z"})
    frame.to_csv(tmp_path / "log.csv", sep=";", index=False)
    config = uit_config(tmp_path / "log.csv", options={"sep": ";"})
    assert sorted(ingest(config)["2026-03-02"][1]["user_id"]) == sorted(odd)

    # JSON Lines: an id written as a bare number longer than any int64 keeps its digits
    lines = [{"u": "x", "i": "y", "t": "2026-03-02T10:00:00Z"}, {"u": 7, "i": "y", "t": 1772445600}]
    text = (
        "\n".join(json.dumps(r) for r in lines)
        + '\n\n{"u": 123456789012345678901234567890, "i": 1.0, "t": "?"}\n'
    )
    (tmp_path / "log.jsonl").write_text(text)
    days = ingest(uit_config(tmp_path / "log.jsonl"))
    raw, cleaned, quarantine = totals(days)
    assert raw == 3 and sorted(cleaned["user_id"]) == ["7", "x"]
    assert quarantine["u"].tolist() == ["123456789012345678901234567890"]  # the raw row, digits intact
    assert quarantine[["reason", "_row"]].values.tolist() == [["bad_timestamp", 2]]  # blank line not counted

    # Parquet: a float id column (integer ids with gaps) loses its ".0", never its digits
    pd.DataFrame({"u": [17850.0, np.nan], "i": ["a", "b"], "t": ["2026-03-02T10:00:00Z"] * 2}).to_parquet(
        tmp_path / "log.parquet"
    )
    raw, cleaned, quarantine = totals(ingest(uit_config(tmp_path / "log.parquet")))
    assert cleaned["user_id"].tolist() == ["17850"] and quarantine["reason"].tolist() == ["missing_user_id"]


def test_a_glob_or_folder_reads_every_file_with_its_own_lineage(tmp_path: Path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.csv").write_text("u,i,t\nu1,i1,2026-03-02T10:00:00Z\nu2,i2,2026-03-03T10:00:00Z\n")
    (folder / "b.csv").write_text("u,i,t\nu3,i3,2026-03-02T11:00:00Z\n")
    (folder / "README.md").write_text("not data")
    for path in (folder, folder / "*.csv"):
        config = uit_config(path)
        first_day = read_raw_events(config, dt.date(2026, 3, 2))
        assert list(zip(first_day["_source_file"], first_day["_row"], strict=True)) == [
            (str(folder / "a.csv"), 0),
            (str(folder / "b.csv"), 0),
        ]
        assert len(read_raw_events(config, dt.date(2026, 3, 3))) == 1


def test_side_tables_with_their_own_mapping(tmp_path: Path):
    (tmp_path / "log.csv").write_text("u,i,t\nu1,sku-1,2026-03-02T10:00:00Z\nu2,sku-9,2026-03-02T11:00:00Z\n")
    (tmp_path / "items.csv").write_text(
        "sku|name|dept|colour\nsku-1|Lamp|home|red\nsku-1|Dup|x|y\nsku-2|Mug|kitchen|\n"
    )
    (tmp_path / "users.csv").write_text("id,region\nu1,North\n")
    config = uit_config(
        tmp_path / "log.csv",
        items={
            "path": str(tmp_path / "items.csv"),
            "options": {"sep": "|"},
            "columns": {"item_id": "sku", "title": "name", "category": "dept"},
        },
        users={"path": str(tmp_path / "users.csv"), "columns": {"user_id": "id"}},
    )
    items = open_source(config).items().set_index("item_id")
    assert list(items.columns[:4]) == ["title", "category", "brand", "price"]
    assert items.loc["sku-1", "title"] == "Lamp" and items.loc["sku-1", "colour"] == "red"  # first row per id
    assert items.loc["sku-1", "first_seen"] == pd.Timestamp("2026-03-02T10:00:00Z")
    assert pd.isna(items.loc["sku-2", "first_seen"])  # in the catalogue, never in the events
    users = open_source(config).users()
    assert users.to_dict("records")[0]["region"] == "North"


# --- clear errors ---------------------------------------------------------------------------------------


def test_a_missing_mapped_column_names_the_file_and_the_column(tmp_path: Path):
    (tmp_path / "log.csv").write_text("Kunde;Artikel;Zeit\nu1;i1;2026-03-02 10:00:00\n")
    columns = {k: v for k, v in SHOP_COLUMNS.items() if k != "event_type"}
    config = files_config(tmp_path / "log.csv", columns=columns, event_types={}, event_type_default="view")
    assert partition_window(config)  # reads only the timestamp column
    with pytest.raises(SourceError) as info:
        read_raw_events(files_config(tmp_path / "log.csv"), dt.date(2026, 3, 2))
    message = str(info.value)
    assert str(tmp_path / "log.csv") in message and "'Aktion' (mapped to event_type) not found" in message
    assert "['Kunde', 'Artikel', 'Zeit']" in message


@pytest.mark.parametrize(
    ("name", "content", "options", "expected"),
    [
        ("log.parquet", b"not a parquet file", {}, "not a readable parquet file"),
        ("log.csv", "u;i;t\nJosé;x;2026\n".encode("latin-1"), {"sep": ";"}, "not utf-8 text.*encoding"),
        ("log.jsonl", b'{"u": 1}\n{"u": \n', {}, "line 2: not valid JSON Lines"),
        ("log.csv", b"u;i;t\nx;y;1\n", {"sep": ";", "no_such_option": 1}, "reader options"),
    ],
)
def test_an_unreadable_file_is_named(tmp_path: Path, name, content, options, expected):
    (tmp_path / name).write_bytes(content)
    config = uit_config(tmp_path / name, options=options, start_date="2026-03-02", end_date="2026-03-02")
    with pytest.raises(SourceError, match=expected) as info:
        read_raw_events(config, dt.date(2026, 3, 2))
    assert str(tmp_path / name) in str(info.value)


def test_a_stray_date_does_not_make_decades_of_partitions(tmp_path: Path):
    (tmp_path / "log.csv").write_text("u,i,t\na,x,2026-03-02T10:00:00Z\nb,y,0\n")
    with pytest.raises(SourceError, match="1970-01-01 .. 2026-03-02.*Set source.start_date and end_date"):
        partition_window(uit_config(tmp_path / "log.csv"))
    config = uit_config(tmp_path / "log.csv", start_date="2026-03-01", end_date="2026-03-02")
    assert partition_window(config) == (dt.date(2026, 3, 1), dt.date(2026, 3, 2))
    assert source_row_counts(config) == {"source_rows": 2, "outside_window_rows": 1}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"kind": "kafka"},
            "source.kind: expected one of ('synthetic', 'files', 'movielens', 'online_retail'), got 'kafka'",
        ),
        ({"kind": "files", "path": "nowhere.csv"}, "source.path: no such file or folder"),
        ({"kind": "files", "path": "*.nothing"}, "source.path: no file matches"),
        ({"kind": "movielens"}, "source.path: kind 'movielens' needs the path"),
        (
            {"kind": "movielens", "path": ".", "columns": {}},
            "source.columns: not a setting of kind 'movielens'",
        ),
        ({"kind": "synthetic", "path": "x"}, "source.path: not a setting of kind 'synthetic'"),
        (
            {"kind": "files", "path": ".", "columns": {"user_id": "u", "item_id": "i"}},
            "columns.timestamp: required",
        ),
        (
            {"kind": "files", "path": ".", "columns": {"user_id": "u", "item_id": "i", "timestamp": "t"}},
            "exactly one of the two",
        ),
        (
            {
                "kind": "files",
                "path": ".",
                "columns": {"user_id": "u", "item_id": "i", "timestamp": "t", "event_type": "e"},
                "event_types": {"k": "like"},
            },
            "source.event_types.k: expected one of ('view', 'cart', 'purchase', 'rating'), got 'like'",
        ),
        (
            {"kind": "online_retail", "path": ".", "timezone": "Mars/Olympus"},
            "unknown time zone 'Mars/Olympus'",
        ),
        ({"kind": "files", "path": ".", "format": "xlsx"}, "source.format: expected one of"),
    ],
)
def test_bad_source_settings_name_file_and_key(tmp_path: Path, monkeypatch, source, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="my.yaml") as info:
        parse_config({"source": source}, source_name="my.yaml", base_dir=tmp_path)
    assert message in str(info.value)


def test_split_settings_are_validated(tmp_path: Path):
    (tmp_path / "train.csv").write_text("x")
    base = {"source": {"kind": "movielens", "path": str(tmp_path)}}
    with pytest.raises(ConfigError, match="split.test: a predefined split needs its test file"):
        parse_config({**base, "split": {"kind": "predefined", "train": "train.csv"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="split.train: only for split.kind predefined"):
        parse_config({**base, "split": {"train": "train.csv"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="need a file source"):
        parse_config(
            {"split": {"kind": "predefined", "train": "train.csv", "test": "train.csv"}}, base_dir=tmp_path
        )


def test_source_paths_are_relative_to_the_config_file(tmp_path: Path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "u.data").write_text("1\t2\t3\t881250949\n")
    (tmp_path / "datasets" / "u1.test").write_text("1\t2\t3\t881250949\n")
    file = tmp_path / "conf" / "run.yaml"
    file.write_text(
        "source: {kind: movielens, path: ../datasets}\n"
        "split: {kind: predefined, train: ../datasets/u.data, test: ../datasets/u1.test}\n"
    )
    config = load_config(file)
    assert config.source.path == str(tmp_path / "datasets")
    assert config.split.test == str(tmp_path / "datasets" / "u1.test")


# --- asset checks on cleaned data -----------------------------------------------------------------------


def test_cleaned_checks_warn_on_an_empty_day_and_fail_on_nulls_or_strays():
    day = pd.DataFrame(
        {
            "user_id": ["u1"],
            "item_id": ["i1"],
            "event_type": ["view"],
            "timestamp": pd.to_datetime(["2026-03-02T10:00:00Z"]),
            "value": [1.0],
        }
    )
    results = {
        r.check_name: r for r in cleaned_check_results({"2026-03-02": day, "2026-03-03": day.iloc[:0]})
    }
    assert not results["partitions_not_empty"].passed
    assert results["partitions_not_empty"].severity == AssetCheckSeverity.WARN
    assert results["contract_columns_not_null"].passed and results["timestamps_inside_partition"].passed

    broken = day.assign(value=np.nan)
    results = {r.check_name: r for r in cleaned_check_results({"2026-03-03": broken})}
    assert not results["contract_columns_not_null"].passed
    assert not results["timestamps_inside_partition"].passed
    empty = cleaned_check_results({"2026-03-02": day.iloc[:0]})[0]
    assert empty.severity == AssetCheckSeverity.ERROR


def test_the_days_are_read_once_while_the_files_stay_the_same(tmp_path: Path, monkeypatch):
    """Building a run's definitions asks for the source's days several times: one read of the files."""
    reads = []

    def counted(*args, **kwargs):
        reads.append(1)
        return read_files(*args, **kwargs)

    monkeypatch.setattr(files, "read_files", counted)
    (tmp_path / "log.csv").write_text("u,i,t\na,x,2026-03-02 10:00:00\nb,y,2026-03-04 10:00:00\n")
    config = uit_config(tmp_path / "log.csv")
    assert [open_source(config).days() for _ in range(3)] == [(dt.date(2026, 3, 2), dt.date(2026, 3, 4))] * 3
    assert len(reads) == 1
    (tmp_path / "log.csv").write_text("u,i,t\na,x,2026-03-01 10:00:00\nb,y,2026-03-04 10:00:00\n")
    os.utime(tmp_path / "log.csv", (0, 1_000_000))  # a new modification time: the file has changed
    assert open_source(config).days() == (dt.date(2026, 3, 1), dt.date(2026, 3, 4)) and len(reads) == 2
