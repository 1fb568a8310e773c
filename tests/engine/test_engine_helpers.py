"""Pure helpers of the decoding loop, tested without a model."""

from __future__ import annotations

import pytest

from thinkjson_edge.engine.llama import loop_span

ITEM = b'{"id":"Steriliser","description":"Steriliser 2024-09-17"},'


@pytest.mark.parametrize(
    "text",
    [
        b'{"total":"1' + b"0" * 40,
        b'{"batch":"Batch record ' + b"2024-03-02, " * 4,
        b'{"deviations":[' + ITEM * 4,
    ],
)
def test_loops_are_detected(text: bytes) -> None:
    assert loop_span(text) >= 32


@pytest.mark.parametrize(
    "text",
    [
        b'{"total":"1' + b"0" * 20,  # a long number is not a loop yet
        b'{"lines":"1.00 1.00 1.00 ',  # a short legitimate repeat
        b'{"deviations":[' + ITEM * 3,  # three identical items may be real
        b'{"company":"SOON HUAT MACHINERY ENTERPRISE","date":"11/01/2019"',
        b"",
    ],
)
def test_ordinary_text_is_not_a_loop(text: bytes) -> None:
    assert loop_span(text) == 0
