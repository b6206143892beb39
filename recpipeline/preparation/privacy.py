"""Pseudonymous user ids (``privacy.pseudonymise``).

A user id becomes ``HMAC-SHA256(key, id)`` as 64 hex digits, the key read from the environment variable
``RECPIPELINE_PSEUDONYM_KEY`` (never written anywhere). The same id under the same key always gives the same
pseudonym, so the id maps stay append-only across runs; without the key nobody can recompute or reverse it.
Anonymous visitors (``~anonymous:<session>``, no user id) keep their id: it names a session, not a person,
and the session protocol reads the prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from recpipeline.config import PSEUDONYM_KEY_ENV_VAR, ConfigError, RunConfig
from recpipeline.contracts import ANONYMOUS_USER_PREFIX

#: ids (strings, NA allowed) -> their pseudonyms, same index
Pseudonymiser = Callable[[pd.Series], pd.Series]


def pseudonym_key() -> bytes:
    """The key from the environment; a one-line ``ConfigError`` naming the variable when it is not set."""
    key = os.environ.get(PSEUDONYM_KEY_ENV_VAR)
    if not key:
        raise ConfigError(
            f"privacy.pseudonymise is on but the environment variable {PSEUDONYM_KEY_ENV_VAR} (the pseudonym "
            "key) is not set"
        )
    return key.encode("utf-8")


def pseudonymise(ids: pd.Series, key: bytes) -> pd.Series:
    """Each id's pseudonym (hex HMAC-SHA256 under ``key``); NA stays NA, anonymous visitors keep their id.

    Each distinct id is hashed once (a hash per distinct value: HMAC has no vectorised form)."""
    values = ids.astype("string")
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    hashed = np.array(
        [
            text
            if text.startswith(ANONYMOUS_USER_PREFIX)
            else hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
            for text in distinct.astype(str)
        ],
        dtype=object,
    )
    out = pd.Series(pd.NA, index=ids.index, dtype="string")
    known = codes >= 0
    out[known] = hashed[codes[known]]
    return out


def pseudonymiser(config: RunConfig) -> Pseudonymiser | None:
    """The run's pseudonymiser (the key read now), or None when ``privacy.pseudonymise`` is off."""
    if not config.privacy.pseudonymise:
        return None
    key = pseudonym_key()
    return lambda ids: pseudonymise(ids, key)


def pseudonymised_users(users: pd.DataFrame, pseudonym: Pseudonymiser | None) -> pd.DataFrame:
    """The user profiles with their ``user_id`` pseudonymised (unchanged without a pseudonymiser)."""
    if pseudonym is None or "user_id" not in users:
        return users
    return users.assign(user_id=pseudonym(users["user_id"]).astype(str))


def _without_point_zero(values: pd.Series) -> pd.Series:
    """Ids as strings, a float's trailing ``.0`` dropped (17850.0 -> "17850", as sources map them)."""
    return values.astype("string").str.replace(r"\.0$", "", regex=True)


def pseudonymise_raw_rows(
    raw: pd.DataFrame, user_id: pd.Series, pseudonym: Pseudonymiser, skip: Iterable[str] = ()
) -> pd.DataFrame:
    """Raw rows (quarantine: the rows as ingested, in the source's column names) with their user ids
    pseudonymised.

    ``user_id``: each row's contract user id (same index; NA where it had none). A column holds user ids
    when every row with both a user id and a value there has that user id in it (as a string, a float's
    ``.0`` dropped); each of its non-blank values is replaced by the pseudonym of the row's user id, or of
    the value itself where the row has none. Columns in ``skip`` (lineage) stay as they are.
    """
    out = raw.copy()
    has_user = user_id.notna().to_numpy()
    for column in raw.columns:
        if column in skip:
            continue
        text = raw[column].astype("string")
        present = (text.notna() & (text.str.strip() != "")).fillna(False).to_numpy(bool)
        both = present & has_user
        if not both.any():
            continue
        same = (text == user_id) | (_without_point_zero(raw[column]) == user_id)
        if not same.fillna(False).to_numpy(bool)[both].all():
            continue
        source = user_id.where(has_user, _without_point_zero(raw[column]))
        replaced = pseudonym(source[present])
        column_values = out[column].astype(object)
        column_values[present] = replaced.astype(object).to_numpy()
        out[column] = column_values
    return out
