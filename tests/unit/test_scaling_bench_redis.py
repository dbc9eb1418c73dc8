"""The scaling bench's last step: Redis compacting its append-only file, which Redis may be
doing already of its own accord (the bench of 2026-11-28 04:48 stopped there)."""

import pytest
from redis.exceptions import ResponseError

from bench.scaling_bench import compact_append_only_file


class _Redis:
    def __init__(self, answer: BaseException | None) -> None:
        self.answer = answer
        self.asked = 0

    async def bgrewriteaof(self) -> bool:
        self.asked += 1
        if self.answer is not None:
            raise self.answer
        return True


async def test_a_rewrite_already_under_way_is_no_failure() -> None:
    redis = _Redis(ResponseError("Background append only file rewriting already in progress"))
    await compact_append_only_file(redis)  # type: ignore[arg-type]
    assert redis.asked == 1


async def test_other_refusals_still_fail_the_bench() -> None:
    with pytest.raises(ResponseError, match="NOPERM"):
        await compact_append_only_file(_Redis(ResponseError("NOPERM no permissions")))  # type: ignore[arg-type]
    await compact_append_only_file(_Redis(None))  # type: ignore[arg-type]
