"""The one export helper every export goes through: what the file holds, its headers, and that an
outage is raised before the answer starts (so it becomes a 503, not a cut-off 200)."""

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from fastapi.responses import StreamingResponse
from pymongo.errors import ServerSelectionTimeoutError

from shared.exports import BOM, csv_export, jsonl_export


async def rows_of(rows: Iterable[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Rows as an export reads them from a cursor."""
    for row in rows:
        yield row


async def body_of(answer: StreamingResponse) -> bytes:
    """The whole streamed body, as the client receives it."""
    chunks = [c if isinstance(c, bytes) else str(c).encode() async for c in answer.body_iterator]
    return b"".join(chunks)


def cells(row: dict[str, Any]) -> list[Any]:
    return [row["order_no"], row.get("note"), " ".join(row["tags"])]


ROWS = [
    {"order_no": "SO-1", "note": "送货上门, 请先电话", "tags": ["urgent", "vip"]},
    {"order_no": "SO-2", "note": None, "tags": []},
]


async def test_a_csv_for_excel_starts_with_a_bom_and_holds_every_row() -> None:
    answer = await csv_export(rows_of(ROWS), ["order_no", "note", "tags"], cells, "orders.csv")

    content = await body_of(answer)
    assert content.startswith(BOM.encode())
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows == [
        ["order_no", "note", "tags"],
        ["SO-1", "送货上门, 请先电话", "urgent vip"],
        ["SO-2", "", ""],
    ]
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == "attachment; filename=orders.csv"


async def test_a_csv_for_programs_has_no_bom() -> None:
    answer = await csv_export(
        rows_of(ROWS), ["order_no"], lambda r: [r["order_no"]], "o.csv", bom=False
    )

    assert (await body_of(answer)).decode() == "order_no\r\nSO-1\r\nSO-2\r\n"


async def test_no_rows_is_the_header_alone() -> None:
    answer = await csv_export(rows_of([]), ["order_no"], lambda r: [r["order_no"]], "o.csv")

    assert (await body_of(answer)).decode() == BOM + "order_no\r\n"


async def test_json_lines_keep_chinese_and_shape_each_row() -> None:
    answer = await jsonl_export(
        rows_of(ROWS), lambda r: {"order_no": r["order_no"], "note": r["note"]}, "o.jsonl"
    )

    lines = (await body_of(answer)).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"order_no": "SO-1", "note": "送货上门, 请先电话"},
        {"order_no": "SO-2", "note": None},
    ]
    assert "送货上门" in lines[0]  # not \\u escapes
    assert answer.headers["content-type"] == "application/x-ndjson"
    assert answer.headers["content-disposition"] == "attachment; filename=o.jsonl"


async def test_an_outage_on_the_first_read_is_raised_before_the_answer_starts() -> None:
    async def down() -> AsyncIterator[dict[str, Any]]:
        raise ServerSelectionTimeoutError("no server")
        yield {}  # an async generator, like a cursor's

    with pytest.raises(ServerSelectionTimeoutError):
        await csv_export(down(), ["order_no"], lambda r: [r["order_no"]], "o.csv")
    with pytest.raises(ServerSelectionTimeoutError):
        await jsonl_export(down(), dict, "o.jsonl")
