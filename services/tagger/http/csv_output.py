"""CSV answers, in one place: a table answered whole, or rows streamed one by one."""

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi.responses import Response, StreamingResponse

CSV = "text/csv"
CSV_CONTENT: dict[str, Any] = {CSV: {"schema": {"type": "string"}}}


def csv_line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def csv_table(table: list[dict[str, Any]], columns: list[str]) -> Response:
    lines = [csv_line(columns)] + [csv_line([row[c] for c in columns]) for row in table]
    return Response("".join(lines), media_type=CSV)


def csv_stream(
    rows: AsyncIterator[dict[str, Any]],
    columns: list[str],
    cells: Callable[[dict[str, Any]], list[Any]],
    filename: str,
) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        yield csv_line(columns)
        async for row in rows:
            yield csv_line(cells(row))

    return StreamingResponse(
        lines(),
        media_type=CSV,
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )
