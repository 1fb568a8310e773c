"""Regular expressions in validation, bounded in time.

jsonschema matches ``pattern``, ``patternProperties`` (and the names ``additionalProperties``
must leave to them) with Python's ``re``, which backtracks without limit: one pattern with
a lookahead and a nested quantifier took minutes on a 40-character value. These keywords
are replaced here by versions that match with the ``regex`` package, which takes a timeout
(and avoids much of that backtracking on its own). A match that runs out of time is a
validation error saying so, never a hang. ``regex`` rather than RE2: the patterns left to
the validator are mostly those the grammar cannot express (lookarounds, backreferences),
which RE2 does not support at all.

Each match gets ``MATCH_SECONDS``; one validation (``time_budget``) gets ``BUDGET_SECONDS``
for all of its matches, after which the remaining ones are reported as not checked.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from jsonschema import ValidationError, validators

MATCH_SECONDS = 0.5
BUDGET_SECONDS = 2.0

_deadline: ContextVar[float | None] = ContextVar("pattern_deadline", default=None)


@contextlib.contextmanager
def time_budget(seconds: float = BUDGET_SECONDS) -> Iterator[None]:
    """Give every match made inside the block ``seconds`` in all."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


@functools.cache
def bounded_validator_class(validator_class: type) -> type:
    """``validator_class`` with its regular-expression keywords matched under a time bound."""
    keywords = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    }
    format_checker = copy.copy(validator_class.FORMAT_CHECKER)
    format_checker.checkers = dict(format_checker.checkers)
    format_checker.checks("regex")(_is_regex)
    extended = validators.extend(validator_class, keywords, format_checker=format_checker)
    extended.__name__ = extended.__qualname__ = validator_class.__name__
    return extended


def compiles(pattern: str) -> str | None:
    """None when ``pattern`` compiles for validation, else why not."""
    import regex

    try:
        _compiled(pattern)
    except (regex.error, RecursionError, OverflowError) as exc:
        return str(exc) or type(exc).__name__
    return None


def search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches somewhere in ``text``; None when time ran out first."""
    deadline = _deadline.get()
    seconds = MATCH_SECONDS
    if deadline is not None:
        seconds = min(seconds, deadline - time.monotonic())
        if seconds <= 0:
            return None
    try:
        return _compiled(pattern).search(text, timeout=seconds) is not None
    except TimeoutError:
        return None


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    import regex

    return regex.compile(pattern)


def _not_checked(text: str, pattern: str) -> ValidationError:
    return ValidationError(
        f"{text!r} was not checked against {pattern!r}: matching ran out of time "
        f"({MATCH_SECONDS} s per value, {BUDGET_SECONDS} s per object)"
    )


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    found = search(pattern, instance)
    if found is None:
        yield _not_checked(instance, pattern)
    elif not found:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            found = search(pattern, name)
            if found is None:
                yield _not_checked(name, pattern)
            elif found:
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    """Names that neither ``properties`` nor a ``patternProperties`` pattern covers."""
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = []
    for name in instance:
        if name in declared:
            continue
        results = [search(pattern, name) for pattern in patterns]
        if True in results:
            continue
        if None in results:
            yield _not_checked(name, patterns[results.index(None)])
            continue
        extras.append(name)
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif additional is False and extras:
        listed = ", ".join(repr(name) for name in sorted(extras))
        if patterns:
            yield ValidationError(
                f"{listed} {'does' if len(extras) == 1 else 'do'} not match any of the regexes: "
                + ", ".join(repr(pattern) for pattern in sorted(patterns))
            )
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({listed} {verb} unexpected)"
            )


def _is_regex(instance: object) -> bool:
    """The ``regex`` format: a string that compiles (a pattern too deep to parse does not)."""
    return not isinstance(instance, str) or compiles(instance) is None
