"""Reading order files (JSON Lines or CSV) as a stream of raw orders with their line numbers.

Files are read line by line and handed on in chunks: a 1 GB file never sits in memory.
CSV holds one row per order line; consecutive rows with the same order_no form one order.
"""

import csv
import json
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any, TextIO

CSV_COLUMNS = (
    "order_no",
    "created_at",
    "status",
    "order_type",
    "channel",
    "sales_rep",
    "notes",
    "customer_id",
    "customer_name",
    "customer_email",
    "customer_phone",
    "customer_company",
    "customer_vip",
    "sku",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "currency",
    "total",
    "discount",
    "shipping_fee",
    "tax",
    "payment_method",
    "paid_at",
    "shipping_method",
    "province",
    "city",
    "address",
    "requested_delivery_at",
)
REQUIRED_CSV_COLUMNS = {
    "order_no",
    "created_at",
    "customer_id",
    "customer_name",
    "sku",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "total",
}


class FileFormatError(ValueError):
    """The file cannot be read as orders at all (as opposed to one bad order in it)."""


def read_orders(path: Path, file: TextIO) -> Iterator[tuple[int, Any]]:
    """(line number, raw order or an ``_error``) for every order in the file."""
    if path.suffix.lower() == ".csv":
        yield from _read_csv(file)
    elif path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        yield from _read_jsonl(file)
    else:
        raise FileFormatError(f"{path.name}: use a .jsonl or .csv file")


def chunks(items: Iterator[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    chunk: list[tuple[int, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _read_jsonl(file: TextIO) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(file, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            yield number, {"_error": f"not valid JSON: {error.msg} at column {error.colno}"}


def _read_csv(file: TextIO) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(file)
    missing = REQUIRED_CSV_COLUMNS - set(reader.fieldnames or ())
    if missing:
        raise FileFormatError(f"CSV header lacks the columns {', '.join(sorted(missing))}")
    rows = ((reader.line_num, row) for row in reader)
    for _, group in groupby(rows, key=lambda numbered: numbered[1]["order_no"]):
        numbered = list(group)
        yield numbered[0][0], _order_from_rows([row for _, row in numbered])


def _order_from_rows(rows: list[dict[str, str]]) -> dict[str, Any]:
    first = {k: (v if v != "" else None) for k, v in rows[0].items() if k in CSV_COLUMNS}

    def pick(*names: str) -> dict[str, Any]:
        return {name: first[name] for name in names if first.get(name) is not None}

    order: dict[str, Any] = pick(
        "order_no",
        "created_at",
        "status",
        "order_type",
        "channel",
        "sales_rep",
        "notes",
        "requested_delivery_at",
    )
    order["customer"] = {
        "id": first.get("customer_id"),
        "name": first.get("customer_name"),
        **{
            k.removeprefix("customer_"): v
            for k, v in pick("customer_email", "customer_phone", "customer_company").items()
        },
    }
    if first.get("customer_vip") is not None:
        order["customer"]["vip"] = str(first["customer_vip"]).lower() in {"1", "true", "yes", "y"}
    order["lines"] = [
        {
            "sku": row.get("sku"),
            "name": row.get("product_name"),
            "category": row.get("category"),
            "quantity": row.get("quantity"),
            "unit_price": row.get("unit_price"),
        }
        for row in rows
    ]
    order["pricing"] = {
        "total": first.get("total"),
        **pick("currency", "discount", "shipping_fee", "tax"),
    }
    if first.get("payment_method"):
        order["payment"] = {"method": first["payment_method"], **pick("paid_at")}
    shipping = {
        k.removeprefix("shipping_"): v
        for k, v in pick("shipping_method", "province", "city", "address").items()
    }
    if shipping:
        order["shipping"] = shipping
    return order
