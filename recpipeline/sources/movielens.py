"""MovieLens (GroupLens) folders as a source: ratings become ``rating`` events with the rating as ``value``.

The layout is told from the folder's files:

* ml-100k: ``u.data`` (tab-separated ``user item rating timestamp``), ``u.item`` (latin-1, ``|``-separated,
  19 genre flags in the order of ``u.genre``), ``u.user`` (``user|age|gender|occupation|zip``);
* ml-1m (and ml-10m): ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``-separated; ml-10m has no users);
* ml-latest, ml-latest-small, ml-20m, ml-25m: ``ratings.csv``, ``movies.csv`` (with headers; no users).

Items get ``genres`` (all of a movie's genres, ``|``-joined, in the dataset's order) and ``category`` (the
first of them), so category one-hot diversity sees one genre per movie. User attributes come along as text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recpipeline.config import RunConfig
from recpipeline.contracts import LINEAGE_COLUMNS
from recpipeline.sources.files import FileSource
from recpipeline.sources.mapping import EventMapping
from recpipeline.sources.reading import FileTable, SourceError, read_file

RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]  # the GroupLens README's names
#: the 19 genre flags of u.item, in the order of u.genre
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_NO_GENRES = "(no genres listed)"


def movielens_source(config: RunConfig) -> FileSource:
    """The GroupLens folder ``source.path``; raises ``SourceError`` when no known layout is there."""
    folder = config.source.path
    window = {"start_date": config.source.start_date, "end_date": config.source.end_date}
    root = Path(folder)
    if (root / "u.data").is_file():
        events = FileTable(
            str(root / "u.data"), "csv", {"sep": "\t", "header": None, "names": RATING_COLUMNS}
        )
        mapping = _mapping("user_id", "item_id")
        return FileSource(events, mapping, **window, item_table=_ml100k_items, user_table=_ml100k_users)
    if (root / "ratings.dat").is_file():
        # "::" needs pandas' slow python engine; every field here is a number, so split on ":" and take
        # every other field with the fast C parser
        options = {"sep": ":", "header": None, "usecols": [0, 2, 4, 6], "names": RATING_COLUMNS}
        events = FileTable(str(root / "ratings.dat"), "csv", options)
        mapping = _mapping("user_id", "item_id")
        return FileSource(events, mapping, **window, item_table=_ml1m_items, user_table=_ml1m_users)
    if (root / "ratings.csv").is_file():
        events = FileTable(str(root / "ratings.csv"), "csv", {})
        return FileSource(events, _mapping("userId", "movieId"), **window, item_table=_latest_items)
    raise SourceError(
        f"{folder}: no MovieLens layout found; expected u.data (ml-100k), ratings.dat (ml-1m, ml-10m) "
        "or ratings.csv (ml-latest, ml-20m, ml-25m) in the folder"
    )


def _mapping(user: str, item: str) -> EventMapping:
    return EventMapping(
        columns={"user_id": user, "item_id": item, "timestamp": "timestamp", "value": "rating"},
        event_type_default="rating",
        timestamp_unit="s",
    )


def _folder(raw: pd.DataFrame) -> Path:
    return Path(raw["_source_file"].iloc[0]).parent


def _ml100k_items(raw: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    names = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES]
    items = _read(_folder(raw) / "u.item", sep="|", header=None, names=names, encoding="latin-1")
    flags = items[list(ML100K_GENRES)].astype("int8").to_numpy().astype(bool)
    joined = pd.Series("", index=items.index)
    for position, genre in enumerate(ML100K_GENRES):  # 19 columns, not rows
        joined = joined + np.where(flags[:, position], genre + "|", "")
    genres = joined.str.rstrip("|").replace("", pd.NA)
    return _catalogue(items, genres, items["release_date"].rename("release_date"))


def _ml1m_items(raw: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    items = _read(
        _folder(raw) / "movies.dat", sep="::", engine="python", header=None,
        names=["item_id", "title", "genres"], encoding="latin-1",
    )  # fmt: skip
    return _catalogue(items, items["genres"])


def _latest_items(raw: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    items = _read(_folder(raw) / "movies.csv").rename(columns={"movieId": "item_id"})
    return _catalogue(items, items["genres"].replace(_NO_GENRES, pd.NA))


def _ml100k_users(raw: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    names = ["user_id", "age", "gender", "occupation", "zip_code"]
    return _read(_folder(raw) / "u.user", sep="|", header=None, names=names)


def _ml1m_users(raw: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame | None:
    file = _folder(raw) / "users.dat"
    if not file.is_file():  # ml-10m ships no user attributes
        return None
    names = ["user_id", "gender", "age", "occupation", "zip_code"]
    return _read(file, sep="::", engine="python", header=None, names=names)


def _catalogue(items: pd.DataFrame, genres: pd.Series, *extra: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": items["item_id"],
            "title": items["title"],
            "category": genres.str.split("|").str[0],
            "genres": genres,
            "brand": pd.Series(pd.NA, index=items.index, dtype="string"),
            "price": np.nan,
            **{column.name: column for column in extra},
        }
    )


def _read(file: Path, **options) -> pd.DataFrame:
    return read_file(FileTable(str(file), "csv", options), str(file)).drop(columns=list(LINEAGE_COLUMNS))
