"""Pseudonymous user ids (privacy.pseudonymise) and dropping raw rows once cleaned (privacy.keep_raw)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from pathlib import Path

import pandas as pd
import pytest
from dagster import materialize

from recpipeline.config import PSEUDONYM_KEY_ENV_VAR, ConfigError, parse_config
from recpipeline.contracts import ANONYMOUS_USER_PREFIX
from recpipeline.preparation.cleaning import clean_and_account, clean_events
from recpipeline.preparation.privacy import pseudonymise, pseudonymise_raw_rows, pseudonymiser
from recpipeline.sources import open_source, with_lineage
from recpipeline_tests.conftest import TINY_RANGE, tiny_config, tiny_raw_config

KEY = "a test key, not a secret"


def _hmac(text: str) -> str:
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def test_a_pseudonym_is_the_keyed_hash_na_stays_na_and_anonymous_visitors_keep_their_id() -> None:
    ids = pd.Series(["U1", None, "U2", "U1", f"{ANONYMOUS_USER_PREFIX}s9"], dtype="string")
    got = pseudonymise(ids, KEY.encode())
    assert got.iloc[0] == got.iloc[3] == _hmac("U1") and got.iloc[2] == _hmac("U2")
    assert pd.isna(got.iloc[1]) and got.iloc[4] == f"{ANONYMOUS_USER_PREFIX}s9"
    assert pseudonymise(ids, b"another key").iloc[0] != got.iloc[0]


def test_the_key_comes_from_the_environment_and_its_absence_stops_the_config(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(PSEUDONYM_KEY_ENV_VAR, raising=False)
    raw = tiny_raw_config(str(tmp_path), privacy={"pseudonymise": True})
    with pytest.raises(ConfigError, match=PSEUDONYM_KEY_ENV_VAR) as error:
        parse_config(raw, source_name="<test>")
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="privacy.keep_raw: expected true or false"):
        parse_config(tiny_raw_config(str(tmp_path), privacy={"keep_raw": "no"}), source_name="<test>")
    assert pseudonymiser(parse_config(tiny_raw_config(str(tmp_path)), source_name="<test>")) is None
    monkeypatch.setenv(PSEUDONYM_KEY_ENV_VAR, KEY)
    config = parse_config(raw, source_name="<test>")
    assert config.privacy.pseudonymise and config.privacy.keep_raw
    assert pseudonymiser(config)(pd.Series(["U7"])).iloc[0] == _hmac("U7")


def test_cleaning_pseudonymises_cleaned_and_quarantined_rows_and_keeps_the_accounting() -> None:
    columns = ["user_id", "item_id", "event_type", "timestamp", "value", "session_id"]
    rows = [
        ["U1", "I1", "view", "2026-10-05T10:00:00Z", 1.0, "s1"],
        ["U2", "I2", "view", "2026-10-05T11:00:00Z", 1.0, "s2"],
        ["U3", "I1", "click??", "2026-10-05T10:00:00Z", 1.0, "s3"],  # quarantined, with its user id
        [None, "I1", "view", "2026-10-05T10:00:00Z", 1.0, "s1"],  # quarantined: missing_user_id
    ]
    raw = with_lineage(pd.DataFrame(rows, columns=columns), "crafted.csv")
    pseudonym = lambda ids: pseudonymise(ids, KEY.encode())  # noqa: E731
    cleaned, quarantine = clean_events(raw, dt.date(2026, 10, 5), pd.Timestamp("2026-10-06T00:00:00Z"))
    assert set(cleaned["user_id"]) == {"U1", "U2"}  # off by default
    cleaned, quarantine = clean_events(
        raw, dt.date(2026, 10, 5), pd.Timestamp("2026-10-06T00:00:00Z"), pseudonym=pseudonym
    )
    assert set(cleaned["user_id"]) == {_hmac("U1"), _hmac("U2")}
    assert quarantine["user_id"].tolist()[0] == _hmac("U3") and pd.isna(quarantine["user_id"].tolist()[1])
    assert quarantine["reason"].tolist() == ["unknown_event_type", "missing_user_id"]
    assert quarantine["item_id"].tolist() == ["I1", "I1"]  # other columns as ingested
    result = clean_and_account({"2026-10-05": raw}, lambda frame: frame, pseudonym=pseudonym)
    assert result.totals[["raw", "cleaned", "quarantined"]].tolist() == [4, 2, 2]


def test_quarantined_raw_rows_lose_the_users_column_in_the_sources_own_names() -> None:
    pseudonym = lambda ids: pseudonymise(ids, KEY.encode())  # noqa: E731
    # online retail: CustomerID 17850.0 is user "17850"
    raw = pd.DataFrame({"CustomerID": [17850.0, 13047.0], "Country": ["UK", "UK"]})
    got = pseudonymise_raw_rows(raw, pd.Series(["17850", "13047"], dtype="string"), pseudonym)
    assert (
        got["CustomerID"].tolist() == [_hmac("17850"), _hmac("13047")]
        and got["Country"].tolist() == ["UK"] * 2
    )
    # MovieLens: user 1's item 1 does not make the item column a user column
    raw = pd.DataFrame({"user": ["1", "2"], "movie": ["1", "7"]})
    got = pseudonymise_raw_rows(raw, pd.Series(["1", "2"], dtype="string"), pseudonym)
    assert got["user"].tolist() == [_hmac("1"), _hmac("2")] and got["movie"].tolist() == ["1", "7"]


def _raw_user_ids(config) -> set[str]:
    source = open_source(config)
    days = pd.date_range(config.source.start_date, config.source.end_date, freq="D")
    ids = {str(u) for day in days for u in source.events_of_day(day.date())["user_id"].dropna()}
    ids |= {str(u) for u in source.users()["user_id"]}
    return {u for u in ids if u.strip()}


@pytest.mark.integration
def test_no_raw_user_id_reaches_a_table_after_raw_events(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PSEUDONYM_KEY_ENV_VAR, KEY)
    config = tiny_config(tmp_path / "warehouse", privacy={"pseudonymise": True, "keep_raw": False})
    from recpipeline.orchestration.definitions import build_assets
    from recpipeline.orchestration.resources import build_resources

    result = materialize(build_assets(config), resources=build_resources(config), tags=TINY_RANGE)
    assert result.success
    root = Path(config.storage)
    raw_ids = _raw_user_ids(config)
    assert len(raw_ids) > 50
    pattern = re.compile("|".join(re.escape(u) for u in sorted(raw_ids, key=len, reverse=True)))
    files = [f for f in root.rglob("*.parquet") if "raw_events" not in f.relative_to(root).parts]
    assert any("cleaned_events" in f.parts for f in files) and any(
        f.name == "user_profiles.parquet" for f in files
    )
    for file in files:
        table = pd.read_parquet(file)
        for column in table.columns:
            values = table[column].dropna().astype(str)
            leaked = values[values.str.contains(pattern)]
            assert leaked.empty, (
                f"{file.relative_to(root)}:{column} holds raw user ids: {leaked.head(3).tolist()}"
            )
    # keep_raw false: the raw files are gone, the accounting is still in the cleaning metadata
    assert not list((root / "raw_events").glob("*.parquet"))
    accounted = 0
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() != "cleaned_events":
            continue
        meta = {key: value.value for key, value in materialization.metadata.items()}
        if "raw_rows" in meta:
            assert meta["raw_rows"] == meta["cleaned_rows"] + meta["quarantined_rows"] > 0
            accounted += 1
    assert accounted == 10  # one per day
