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


def csv_line(values: Sequence[Any]) -> str:
    """One CSV record (``None`` as an empty cell), with its line end."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if v is None else v for v in values])
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
    of the first column's name for a plain UTF-8 reader)."""
    started = await _started(rows)

    async def lines() -> AsyncIterator[str]:
        yield (BOM if bom else "") + csv_line(header)
        async for row in started:
            yield csv_line(cells(row))

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
