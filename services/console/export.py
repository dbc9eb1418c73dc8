"""Order exports that open correctly in Excel with Chinese text: CSV in UTF-8 with a BOM, .xlsx."""

import csv
import io
from collections.abc import Iterable
from typing import Any

from openpyxl import Workbook

from services.console.i18n import Language

COLUMNS = ("order_no", "customer", "status", "amount", "currency", "region", "created_at", "tags")
BOM = "\ufeff"


def export_rows(documents: Iterable[dict[str, Any]], lang: Language) -> Iterable[list[Any]]:
    """One row per order in the reader's language (labels, not machine names)."""
    for doc in documents:
        yield [
            doc["order_no"],
            doc.get("order", {}).get("customer", {}).get("name") or doc.get("customer_id"),
            lang.labels["statuses"].get(doc.get("status", ""), doc.get("status")),
            f"{doc.get('amount_cents', 0) / 100:.2f}",
            doc.get("currency"),
            lang.labels["regions"].get(doc.get("region") or "", doc.get("region")),
            doc["created_at"].isoformat(),
            "，".join(lang.tag_label(t) for t in doc.get("tag_names", [])),
        ]


def header(lang: Language) -> list[str]:
    return [lang.t(f"col.{c}") for c in COLUMNS]


def csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


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
