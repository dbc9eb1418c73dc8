"""The console's order exports, in the reader's language so that Excel shows Chinese labels: the
cells of a row (streamed as CSV by ``shared.exports``) and the .xlsx workbook."""

import io
from typing import Any

from openpyxl import Workbook

from services.console.i18n import Language
from shared.exports import Row

COLUMNS = ("order_no", "customer", "status", "amount", "currency", "region", "created_at", "tags")


def export_row(row: Row, lang: Language) -> list[Any]:
    """An order's list row (the read model's) in the reader's language: labels, not machine
    names."""
    return [
        row["order_no"],
        row.get("customer_name") or row.get("customer_id"),
        lang.labels["statuses"].get(row.get("status", ""), row.get("status")),
        row["amount"],
        row.get("currency"),
        lang.labels["regions"].get(row.get("region") or "", row.get("region")),
        row["created_at"].isoformat(),
        "，".join(lang.tag_label(t) for t in row.get("tag_names", [])),
    ]


def header(lang: Language) -> list[str]:
    return [lang.t(f"col.{c}") for c in COLUMNS]


def xlsx_bytes(head: list[str], rows: list[list[Any]]) -> bytes:
    """A one-sheet workbook (write-only mode: rows stream into the file, little memory)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("orders")
    sheet.append(head)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
