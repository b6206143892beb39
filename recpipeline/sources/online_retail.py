"""UCI Online Retail (Chen 2015) invoice lines as a source of purchase events.

Mapping: ``CustomerID`` -> user_id (17850.0 -> "17850"), ``StockCode`` -> item_id, ``InvoiceDate`` (UK local
time, so ``timezone`` defaults to Europe/London) -> timestamp, ``Quantity`` -> value, ``InvoiceNo`` ->
session_id (the basket). Every kept line is a ``purchase``.

Lines that are not purchases of a product are quarantined with their own reason (first that applies):

* ``cancellation`` -- the invoice number starts with "C" (the cancelled purchase itself stays a purchase:
  the contract has no negative event type, and the interest it showed was real);
* ``return`` -- a negative quantity on an ordinary invoice (in this dataset: stock write-offs, none of which
  has a customer);
* ``non_product`` -- postage, fees, manual entries, discounts, samples, bad-debt adjustments, gift vouchers.

Lines without a customer are quarantined as ``missing_user_id`` by cleaning. Items: the stock code's most
frequent description as ``title`` (trimmed, "Â£" mojibake of this copy fixed) and median positive unit price
as ``price``; the dataset has no categories. Users: their most frequent ``country``.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from recpipeline.config import RunConfig
from recpipeline.sources.files import FileSource
from recpipeline.sources.mapping import EventMapping, most_frequent
from recpipeline.sources.reading import FileTable

#: stock codes that are not products (compared upper-case); gift vouchers start with GIFT_
NON_PRODUCT_CODES = frozenset({"POST", "DOT", "C2", "M", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"})
MAPPING = EventMapping(
    columns={
        "user_id": "CustomerID",
        "item_id": "StockCode",
        "timestamp": "InvoiceDate",
        "value": "Quantity",
        "session_id": "InvoiceNo",
    },
    event_type_default="purchase",
    timezone="Europe/London",
    timestamp_unit="iso",
)


def online_retail_source(config: RunConfig) -> FileSource:
    """The invoice lines at ``source.path`` (``timezone`` overrides Europe/London)."""
    source = config.source
    mapping = MAPPING if source.timezone is None else replace(MAPPING, timezone=source.timezone)
    return FileSource(
        FileTable(source.path, source.format, source.options),
        mapping,
        start_date=source.start_date,
        end_date=source.end_date,
        refine=_refine,
        item_table=_items,
        user_table=_users,
    )


def _refine(raw: pd.DataFrame, contract: pd.DataFrame) -> pd.DataFrame:
    invoice = raw["InvoiceNo"].astype("string").str.strip()
    quantity = pd.to_numeric(raw["Quantity"], errors="coerce")
    reason = pd.Series(pd.NA, index=raw.index, dtype="string")
    # later masks win: cancellation before return before non_product
    reason = reason.mask(_non_product(raw), "non_product")
    reason = reason.mask(quantity < 0, "return")
    reason = reason.mask(invoice.str.upper().str.startswith("C").fillna(False).astype(bool), "cancellation")
    return contract.assign(
        source_reason=reason,
        # the CSV export writes customer ids as text "17850.0" (Parquet's float column is handled by mapping)
        user_id=contract["user_id"].str.replace(r"\.0$", "", regex=True),
    )


def _non_product(raw: pd.DataFrame) -> pd.Series:
    code = raw["StockCode"].astype("string").str.strip().str.upper()
    return (code.isin(NON_PRODUCT_CODES) | code.str.startswith("GIFT_")).fillna(False).astype(bool)


def _items(raw: pd.DataFrame, contract: pd.DataFrame) -> pd.DataFrame:
    product = contract["item_id"].notna() & ~_non_product(raw)
    lines = pd.DataFrame(
        {
            "item_id": contract["item_id"],
            "title": raw["Description"].str.replace("Â£", "£", regex=False).str.strip().replace("", pd.NA),
            "price": pd.to_numeric(raw["UnitPrice"], errors="coerce"),
        }
    )[product]
    ids = pd.Index(lines["item_id"].unique(), name="item_id")
    return pd.DataFrame(
        {
            "title": most_frequent(lines.dropna(subset="title"), "item_id", "title").reindex(ids),
            "category": pd.Series(pd.NA, index=ids, dtype="string"),
            "brand": pd.Series(pd.NA, index=ids, dtype="string"),
            "price": lines[lines["price"] > 0].groupby("item_id")["price"].median().reindex(ids),
        }
    ).reset_index()


def _users(raw: pd.DataFrame, contract: pd.DataFrame) -> pd.DataFrame:
    lines = pd.DataFrame({"user_id": contract["user_id"], "country": raw["Country"]}).dropna()
    return most_frequent(lines, "user_id", "country").reset_index()
