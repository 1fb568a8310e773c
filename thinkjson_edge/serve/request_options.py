"""A client's extraction options, checked against what the server allows.

A client may choose the shape of its extraction (reasoning, self-correction, copying, asking
for labelled keys, sampling) but never more budget than the server gives: a budget over the
server's cap is refused with the cap in the message rather than lowered behind the client's
back.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from thinkjson_edge.pipeline.extractor import ExtractOptions
from thinkjson_edge.serve.problems import ApiError
from thinkjson_edge.serve.settings import ServeSettings

MAX_TEMPERATURE = 2.0
_SWITCHES = ("think", "self_correct", "copy", "ask_labelled")
_MAX_SEED = 2**32 - 1


def request_options(given: Any, settings: ServeSettings) -> ExtractOptions:
    """The options of one request: the server's defaults with the client's choices."""
    options = settings.request_defaults()
    if given is None:
        return options
    if not isinstance(given, dict):
        raise _invalid('"options" must be a JSON object')
    unknown = sorted(set(given) - set(_ALLOWED))
    if unknown:
        raise _invalid(
            f"unknown option(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(_ALLOWED)}"
        )
    chosen = {name: _ALLOWED[name](name, value, settings) for name, value in given.items()}
    return replace(options, **chosen)


def _switch(name: str, value: Any, settings: ServeSettings) -> bool:
    if not isinstance(value, bool):
        raise _invalid(f'option "{name}" must be true or false')
    return value


def _review_below(name: str, value: Any, settings: ServeSettings) -> float:
    return _number(name, value, 0.0, 1.0)


def _temperature(name: str, value: Any, settings: ServeSettings) -> float:
    return _number(name, value, 0.0, MAX_TEMPERATURE)


def _seed(name: str, value: Any, settings: ServeSettings) -> int:
    return _whole(name, value, 0, _MAX_SEED, "")


def _think_tokens(name: str, value: Any, settings: ServeSettings) -> int:
    cap = settings.options.max_think_tokens
    return _whole(name, value, 0, cap, " (the server's cap, --max-think-tokens)")


def _json_tokens(name: str, value: Any, settings: ServeSettings) -> int:
    cap = settings.options.max_json_tokens
    return _whole(name, value, 1, cap, " (the server's cap, --max-json-tokens)")


def _attempt_seconds(name: str, value: Any, settings: ServeSettings) -> float:
    cap = settings.attempt_seconds_cap
    seconds = _number(name, value, 0.0, cap, cap_note=" (the server's cap)")
    if seconds == 0:
        raise _invalid(f'option "{name}" must be above 0: the server always bounds an attempt')
    return seconds


def _number(name: str, value: Any, low: float, high: float, cap_note: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f'option "{name}" must be a number')
    if not low <= value <= high:
        raise _invalid(f'option "{name}" must lie between {low:g} and {high:g}{cap_note}')
    return float(value)


def _whole(name: str, value: Any, low: int, high: int, cap_note: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f'option "{name}" must be a whole number')
    if not low <= value <= high:
        raise _invalid(f'option "{name}" must lie between {low} and {high}{cap_note}')
    return value


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_option", message)


_ALLOWED = {
    **{name: _switch for name in _SWITCHES},
    "review_below": _review_below,
    "temperature": _temperature,
    "seed": _seed,
    "max_think_tokens": _think_tokens,
    "max_json_tokens": _json_tokens,
    "attempt_seconds": _attempt_seconds,
}
