"""The shared mapping of bad input to answers (``shared/http.py``), on a small app of its own."""

import httpx
import pytest
from fastapi import FastAPI

from shared.http import install_error_handlers
from shared.models import StrictModel


class Thing(StrictModel):
    name: str
    count: int


def small_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def post(thing: Thing) -> Thing:
        return thing

    return app


async def post(body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=small_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        return await client.post(
            "/things", content=body, headers={"content-type": "application/json"}
        )


async def test_a_body_that_is_not_json_is_named_body_with_where_it_breaks() -> None:
    answer = await post(b'{"name": "a",\n "count": }')

    assert answer.status_code == 422
    assert answer.json() == {
        "detail": "the body is not valid JSON",
        "errors": [
            {
                "field": "body",
                "problem": "not valid JSON: Expecting value at line 2, column 11 (character 24)",
            }
        ],
    }


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"not json", "line 1, column 1 (character 0)"),
        (b'{"name": "a", "count": 1', "line 1, column 25 (character 24)"),
        (b"{'name': 'a'}", "line 1, column 2 (character 1)"),
    ],
)
async def test_no_position_reads_as_a_field_name(body: bytes, where: str) -> None:
    answer = await post(body)

    [error] = answer.json()["errors"]
    assert answer.status_code == 422
    assert error["field"] == "body"
    assert error["problem"].startswith("not valid JSON: ")
    assert error["problem"].endswith(where)


async def test_valid_json_with_a_bad_field_still_names_the_field() -> None:
    answer = await post(b'{"name": "a", "count": "many"}')

    assert answer.status_code == 422
    assert answer.json()["detail"] == "invalid request"
    assert [e["field"] for e in answer.json()["errors"]] == ["count"]
