"""Tables answered as files, in one place for every service: CSV (for Excel with a BOM, since
Excel reads a UTF-8 file without one in the local code page and garbles Chinese) and JSON Lines.

An export is streamed from an async iterator of rows (a database cursor underneath): one batch in
memory at a time, whatever the row limit. Its first row is read before the answer starts, so a
database outage answers 503 with Retry-After instead of a 200 cut off mid-file.
"""

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import Response, StreamingResponse

CSV = "text/csv"  # Starlette adds "; charset=utf-8" to every text/* answer
JSONL = "application/x-ndjson"
CSV_CONTENT: dict[str, Any] = {CSV: {"schema": {"type": "string"}}}
BOM = "\ufeff"
EXPORT_MAX = 100_000
EXPORT_ROWS = 10_000  # the default of ``MaxRows``
MaxRows = Annotated[int, Query(ge=1, le=EXPORT_MAX)]

Row = dict[str, Any]


def export_responses(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a 200 that is a file of ``media_type``."""
    content = {media_type: {"schema": {"type": "string"}}}
    return {200: {"content": content, "description": description}}


# A spreadsheet takes a cell that starts with one of these as a formula: text from orders (a
# customer's name "=HYPERLINK(...)") would run in the staff member's Excel (OWASP: CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text_for_spreadsheets(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, with a ``'`` before it (Excel shows
    the text as typed); anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_line(values: Sequence[Any], *, for_spreadsheets: bool = False) -> str:
    """One CSV record (``None`` as an empty cell), with its line end; ``for_spreadsheets``:
    text that would run as a formula made plain text (``as_text_for_spreadsheets``)."""
    cells = ["" if v is None else v for v in values]
    if for_spreadsheets:
        cells = [as_text_for_spreadsheets(v) for v in cells]
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def csv_table(table: list[Row], columns: list[str]) -> Response:
    """A small table (a report) answered whole as CSV."""
    lines = [csv_line(columns)] + [csv_line([row[c] for c in columns]) for row in table]
    return Response("".join(lines), media_type=CSV)


async def csv_export(
    rows: AsyncIterator[Row],
    header: Sequence[str],
    cells: Callable[[Row], Sequence[Any]],
    filename: str,
    *,
    bom: bool = True,
) -> StreamingResponse:
    """``rows`` as a CSV download, one line per row as ``cells`` shapes it.

    ``bom=False`` only for a file read by programs rather than Excel (the BOM would become part
    of the first column's name for a plain UTF-8 reader); a file for Excel has no cell that
    runs as a formula (``as_text_for_spreadsheets``), one for programs its values as they are."""
    started = await _started(rows)

    async def lines() -> AsyncIterator[str]:
        yield (BOM if bom else "") + csv_line(header)
        async for row in started:
            yield csv_line(cells(row), for_spreadsheets=bom)

    return _download(lines(), CSV, filename)


async def jsonl_export(
    rows: AsyncIterator[Row], document: Callable[[Row], Row], filename: str
) -> StreamingResponse:
    """``rows`` as a JSON Lines download (UTF-8, Chinese kept as is), one ``document`` a line."""
    started = await _started(rows)

    async def lines() -> AsyncIterator[str]:
        async for row in started:
            yield json.dumps(document(row), ensure_ascii=False, default=str) + "\n"

    return _download(lines(), JSONL, filename)


async def _started(rows: AsyncIterator[Row]) -> AsyncIterator[Row]:
    """The same rows, the first already read: an outage raises here, before the 200 is sent."""
    first = await anext(rows, None)

    async def all_rows() -> AsyncIterator[Row]:
        if first is not None:
            yield first
            async for row in rows:
                yield row

    return all_rows()


def _download(lines: AsyncIterator[str], media_type: str, filename: str) -> StreamingResponse:
    disposition = {"Content-Disposition": f"attachment; filename={filename}"}
    return StreamingResponse(lines, media_type=media_type, headers=disposition)
