"""The console's order and customer exports, in the reader's language so that Excel shows
Chinese labels: the cells of a row (streamed as CSV by ``shared.exports``) and the .xlsx
workbook."""

import contextlib
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from services.console.i18n import Language
from shared.exports import Row, as_text_for_spreadsheets
from shared.reader_zone import ReaderZone

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
        tags_joined(lang, row.get("tag_names", [])),
    ]


def header(lang: Language) -> list[str]:
    return [lang.t(f"col.{c}") for c in COLUMNS]


# a customer's columns (the Tag API's ``EXPORT_COLUMNS``), each by its message's key
CUSTOMER_COLUMNS = {
    "customer_id": "col.customer_id",
    "name": "col.name",
    "company": "col.company",
    "vip": "col.vip",
    "orders": "customers.orders",
    "spend": "customers.spend",
    "spend_365d": "customers.spend_365d",
    "first_order_at": "customers.first_order",
    "last_order_at": "customers.last_order",
    "top_category": "customers.top_category",
    "tags": "col.tags",
}


def customer_header(lang: Language) -> list[str]:
    return [lang.t(key) for key in CUSTOMER_COLUMNS.values()]


def customer_row(row: Row, lang: Language) -> list[Any]:
    """A customer of a segment (``customers.stored.listed``) in the reader's language: yes or
    no, the category and the tags by their labels."""
    return [
        row["customer_id"],
        row.get("name"),
        row.get("company"),
        lang.word("col.vip.", "true" if row.get("vip") else "false"),
        row.get("orders"),
        row.get("spend"),
        row.get("spend_365d"),
        row.get("first_order_at"),
        row.get("last_order_at"),
        lang.value_label("categories", row.get("top_category")),
        tags_joined(lang, row.get("tag_names", [])),
    ]


def tags_joined(lang: Language, names: list[str]) -> str:
    """A row's tags by their labels, joined as the reader's language lists things."""
    return ("，" if lang.code.startswith("zh") else ", ").join(lang.tag_label(n) for n in names)


def xlsx_header(lang: Language, reader: ReaderZone, moments: Sequence[datetime]) -> list[str]:
    """The header, its time column naming the clock its wall-clock times are on."""
    names = header(lang)
    names[COLUMNS.index("created_at")] += f" ({clock_name(reader, moments)})"
    return names


def clock_name(reader: ReaderZone, moments: Sequence[datetime]) -> str:
    """The times' clock as a reader checks it: ``UTC+08:00`` when every row has that offset
    (a fixed offset sent, or a zone without daylight saving: Asia/Shanghai reads as before),
    the zone's name when the rows straddle a change (Europe/London: +00:00 and +01:00)."""
    if reader.fixed:
        return f"UTC{reader.given}"
    offsets = {reader.offset_at(moment) for moment in moments or [datetime.now(UTC)]}
    return f"UTC{offsets.pop()}" if len(offsets) == 1 else reader.given


def xlsx_row(row: Row, lang: Language, reader: ReaderZone) -> list[Any]:
    """``export_row`` as Excel sums and sorts it: the amount a number, the time a date-time on
    the reader's clock at that moment (Excel's have no time zone; ``xlsx_header`` names it)."""
    cells = export_row(row, lang)
    with contextlib.suppress(InvalidOperation):  # else kept as the text the read model holds
        cells[COLUMNS.index("amount")] = Decimal(str(row["amount"]))
    cells[COLUMNS.index("created_at")] = reader.clock(row["created_at"])
    return cells


_FORMATS = {Decimal: "#,##0.00", datetime: "yyyy-mm-dd hh:mm:ss"}


def xlsx_bytes(head: list[str], rows: list[list[Any]]) -> bytes:
    """A one-sheet workbook (write-only mode: rows stream into the file, little memory);
    amounts and times formatted as numbers and dates."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("orders")
    sheet.append(head)
    for row in rows:
        sheet.append([_cell(sheet, value) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _cell(sheet: Any, value: Any) -> Any:
    """A workbook cell: a number or a date in its format; text that starts as a formula would
    as text (openpyxl writes ``=...`` as a live formula), as a cell, not with a ``'``."""
    number_format = _FORMATS.get(type(value))
    if number_format is None and as_text_for_spreadsheets(value) is value:
        return value
    cell = WriteOnlyCell(sheet, value)
    if number_format is None:
        cell.data_type = "s"
    else:
        cell.number_format = number_format
    return cell
