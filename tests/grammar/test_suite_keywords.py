"""The compiler, keyword by keyword, against the official JSON-Schema-Test-Suite (draft 2020-12).

The suite's files live in ``tests/fixtures/json-schema-test-suite`` (see its README). For every
case (one schema) and every test in it (one instance, labelled valid or not):

* the case must compile and llama.cpp must load its grammar, unless ``COMPILE_GAPS`` says why
  not; the instance tests of such a case are skipped with that reason;
* every valid instance, written compactly, must be admitted by the grammar;
* every invalid instance must be refused by the grammar, when the compiler claims to enforce
  every keyword of the case (``CompiledGrammar.validation_only`` is empty). Cases with a
  keyword left to the validator are skipped for refusal, with the keywords as the reason.

What fails today is listed, test by test, in ``KNOWN_GAPS`` with the reason, and marked
``xfail(strict=True)``: a gap that closes fails the run until its entry is removed.

Roots. Extraction wants an object at the root, but that rule lives in ``check_schema``
(``object_root=True``), not in ``compile_schema``, which compiles any root type. Most suite
schemas have no object root, so each case goes through ``check_schema(..., object_root=False)``
and ``compile_schema`` with the default ``GrammarLimits``, exactly as ``bench/schemas.py`` does,
rather than being wrapped in an object (which would break references to ``#``).

Acceptance goes through llama.cpp's own grammar sampler (``Engine.grammar_accepts``) with the
default model's vocabulary; no text is generated, so a thousand tests take seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from thinkjson_edge import Extractor
from thinkjson_edge.grammar.compiler import CompiledGrammar, compile_schema
from thinkjson_edge.schema import check_schema

pytestmark = pytest.mark.model

SUITE = Path(__file__).parent.parent / "fixtures" / "json-schema-test-suite" / "draft2020-12"


@dataclass(frozen=True)
class Case:
    file: str  # the keyword file, relative to the draft folder, without ".json"
    index: int  # position in the file, for the compile cache
    description: str
    schema: Any


@dataclass(frozen=True)
class Instance:
    case: Case
    description: str
    data: Any
    valid: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.case.file, self.case.description, self.description)

    @property
    def id(self) -> str:
        return "/".join(self.key)


def _load() -> list[Case]:
    cases = []
    for path in sorted(SUITE.rglob("*.json")):
        file = path.relative_to(SUITE).with_suffix("").as_posix()
        for index, group in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            cases.append(Case(file, index, group["description"], group["schema"]))
    return cases


def _instances(case: Case) -> list[Instance]:
    path = SUITE / f"{case.file}.json"
    group = json.loads(path.read_text(encoding="utf-8"))[case.index]
    return [Instance(case, t["description"], t["data"], t["valid"]) for t in group["tests"]]


CASES = _load()
INSTANCES = [instance for case in CASES for instance in _instances(case)]


@cache
def _compiled(file: str, index: int) -> CompiledGrammar:
    schema = next(c.schema for c in CASES if (c.file, c.index) == (file, index))
    return compile_schema(check_schema(schema, object_root=False).schema)


def compiled(case: Case) -> CompiledGrammar:
    return _compiled(case.file, case.index)


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- what the compiler does not do today, and why -----------------------------------------

# Cases that do not compile, or whose grammar llama.cpp refuses: (file, case) -> reason.
REMOTE = "refers outside the schema (an $id base, a URN or the metaschema): refused by design"
FALSE_SUBSCHEMA = "a `false` subschema that nothing gets round: refused as unsatisfiable"
COMPILE_GAPS: dict[tuple[str, str], str] = {
    ("defs", "validate definition against metaschema"): REMOTE,
    ("enum", "empty enum"): "an empty enum matches nothing: refused by the schema check",
    ("items", "items with boolean schema (false)"): FALSE_SUBSCHEMA,
    ("prefixItems", "prefixItems with boolean schemas"): FALSE_SUBSCHEMA,
    ("properties", "properties with boolean schema"): FALSE_SUBSCHEMA,
    ("ref", "$ref to boolean schema false"): FALSE_SUBSCHEMA,
    ("pattern", "pattern with Unicode property escape requires unicode mode"): (
        "\\p{Letter} is not a Python regex, so the metaschema check refuses the schema"
    ),
    ("allOf", "allOf with boolean schemas, some false"): FALSE_SUBSCHEMA,
    ("allOf", "allOf with boolean schemas, all false"): FALSE_SUBSCHEMA,
    ("anyOf", "anyOf with boolean schemas, all false"): FALSE_SUBSCHEMA,
    ("oneOf", "oneOf with boolean schemas, all false"): FALSE_SUBSCHEMA,
    **{
        ("ref", case): REMOTE
        for case in (
            "remote ref, containing refs itself",
            "Recursive references between schemas",
            "refs with relative uris and defs",
            "relative refs with absolute uris and defs",
            "$id must be resolved against nearest parent, not just immediate parent",
            "order of evaluation: $id and $ref",
            "order of evaluation: $id and $ref on nested schema",
            "simple URN base URI with $ref via the URN",
            "URN base URI with URN and JSON pointer ref",
            "URN base URI with URN and anchor ref",
            "URN ref with nested pointer ref",
            "ref to if",
            "ref to then",
            "ref to else",
            "ref with absolute-path-reference",
        )
    },
}

# Instances the grammar gets wrong today: (file, case, test) -> reason.
INFERRED_TYPE = (
    'no "type": the schema is narrowed to the one type its keywords apply to '
    "(_infer_types), so a value of another type is not written"
)
UNDECLARED = (
    "only declared properties are written (the extraction default); the instance has another"
)
ORDER = "properties are written in declared (merged) order; the instance lists them otherwise"
LITERAL = (
    "const/enum admit the value's compact JSON text only: an equal value spelled otherwise "
    "(1.0 for 1, -2 for -2.0, other key order) is not written"
)
INTEGER_FRACTION = "an integer is written without a fraction: 1.0 is an integer to JSON Schema"
TUPLE_WHOLE = "prefixItems: the tuple is written whole (or empty where minItems is 0), not cut"
TUPLE_CLOSED = "prefixItems without items: nothing is written after the tuple"
ALL_OF_MERGED = (
    "allOf parts are merged into one schema, so additionalProperties sees their properties "
    "as declared"
)
UNDECLARED_KEYS = (
    "BUG (patternProperties/additionalProperties entries): an undeclared entry's key may be a "
    "declared name, so a declared property is also written with the pattern's (or "
    "additionalProperties') schema instead of its own, and a declared name that matches a "
    "pattern does not get the pattern's schema as well"
)
LEAP_SECOND = "time/date-time: the grammar writes seconds 00-59, not the leap second 60"
LOWERCASE_T_Z = "time/date-time: the grammar writes upper-case T and Z only"
LONG_FRACTION = "time/date-time: the grammar writes at most 6 digits of a second's fraction"
EMAIL_SUBSET = (
    "email: the grammar writes a dot-atom local part and a host name; quoted local parts "
    "and address literals are not written"
)
EMAIL_DOTS = "email: leading, trailing or doubled dots in the local part are not refused"
DATE_DAYS = "date: days 01-31 in every month; month lengths and leap years are not checked"
URI_SYNTAX = "uri: after the scheme any URI characters; userinfo, port and IP literals unchecked"


def _gaps(reason: str, file: str, case: str, *tests: str) -> dict[tuple[str, str, str], str]:
    return {(file, case, test): reason for test in tests}


_NON_STRINGS = tuple(
    f"all string formats ignore {kind}"
    for kind in ("integers", "floats", "objects", "arrays", "booleans", "nulls")
)
_FORMAT_CASES = {
    "date": "validation of date strings",
    "date-time": "validation of date-time strings",
    "email": "validation of e-mail addresses",
    "ipv4": "validation of IP addresses",
    "ipv6": "validation of IPv6 addresses",
    "time": "validation of time strings",
    "uri": "validation of URIs",
    "uuid": "uuid format",
}

KNOWN_GAPS: dict[tuple[str, str, str], str] = {
    # A format without "type" is taken as a string.
    **{
        key: reason
        for fmt, case in _FORMAT_CASES.items()
        for key, reason in _gaps(
            INFERRED_TYPE, f"optional/format/{fmt}", case, *_NON_STRINGS
        ).items()
    },
    **_gaps(
        INFERRED_TYPE,
        "additionalProperties",
        "additionalProperties being false does not allow other properties",
        "ignores arrays",
        "ignores strings",
        "ignores other non-objects",
    ),
    **_gaps(
        INFERRED_TYPE, "exclusiveMaximum", "exclusiveMaximum validation", "ignores non-numbers"
    ),
    **_gaps(
        INFERRED_TYPE, "exclusiveMinimum", "exclusiveMinimum validation", "ignores non-numbers"
    ),
    **_gaps(
        INFERRED_TYPE,
        "items",
        "a schema given for items",
        "ignores non-arrays",
        "JavaScript pseudo-array is valid",
    ),
    **_gaps(INFERRED_TYPE, "maxItems", "maxItems validation", "ignores non-arrays"),
    **_gaps(INFERRED_TYPE, "maxLength", "maxLength validation", "ignores non-strings"),
    **_gaps(INFERRED_TYPE, "maximum", "maximum validation", "ignores non-numbers"),
    **_gaps(INFERRED_TYPE, "minItems", "minItems validation", "ignores non-arrays"),
    **_gaps(INFERRED_TYPE, "minLength", "minLength validation", "ignores non-strings"),
    **_gaps(INFERRED_TYPE, "minimum", "minimum validation", "ignores non-numbers"),
    **_gaps(
        INFERRED_TYPE, "minimum", "minimum validation with signed integer", "ignores non-numbers"
    ),
    **_gaps(
        INFERRED_TYPE,
        "pattern",
        "pattern validation",
        "ignores booleans",
        "ignores integers",
        "ignores floats",
        "ignores objects",
        "ignores arrays",
        "ignores null",
    ),
    **_gaps(
        INFERRED_TYPE,
        "prefixItems",
        "a schema given for prefixItems",
        "JavaScript pseudo-array is valid",
    ),
    **_gaps(
        INFERRED_TYPE,
        "properties",
        "object properties validation",
        "ignores arrays",
        "ignores other non-objects",
    ),
    **_gaps(
        INFERRED_TYPE,
        "properties",
        "properties whose names are Javascript object property names",
        "ignores arrays",
        "ignores other non-objects",
    ),
    # {"properties": {"foo": {"$ref": "#"}}}: the root, and so "foo", is taken as an object.
    **_gaps(INFERRED_TYPE, "ref", "root pointer ref", "match", "recursive match"),
    **_gaps(
        INFERRED_TYPE,
        "required",
        "required validation",
        "ignores arrays",
        "ignores strings",
        "ignores other non-objects",
        "ignores null",
        "ignores boolean",
    ),
    **_gaps(
        INFERRED_TYPE,
        "required",
        "required properties whose names are Javascript object property names",
        "ignores arrays",
        "ignores other non-objects",
    ),
    # Objects.
    **_gaps(
        UNDECLARED,
        "additionalProperties",
        "additionalProperties are allowed by default",
        "additional properties are allowed",
    ),
    **_gaps(UNDECLARED, "anyOf", "anyOf complex types", "both anyOf valid (complex)"),
    **_gaps(
        UNDECLARED,
        "properties",
        "object properties validation",
        "doesn't invalidate other properties",
    ),
    **_gaps(ORDER, "allOf", "allOf", "allOf"),
    **_gaps(ORDER, "allOf", "allOf with base schema", "valid"),
    **_gaps(
        ALL_OF_MERGED,
        "additionalProperties",
        "additionalProperties does not look in applicators",
        "properties defined in allOf are not examined",
    ),
    **_gaps(
        UNDECLARED_KEYS,
        "properties",
        "properties, patternProperties, additionalProperties interaction",
        "property invalidates property",
        "patternProperty invalidates property",
    ),
    # Literals and numbers.
    **_gaps(
        LITERAL,
        "const",
        "const with object",
        "same object with different property order is valid",
    ),
    **_gaps(
        LITERAL, "const", "const with 0 does not match other zero-like types", "float zero is valid"
    ),
    **_gaps(LITERAL, "const", "const with 1 does not match true", "float one is valid"),
    **_gaps(
        LITERAL, "const", "const with -2.0 matches integer and float types", "integer -2 is valid"
    ),
    **_gaps(
        LITERAL,
        "const",
        "float and integers are equal up to 64-bit representation limits",
        "float is valid",
    ),
    **_gaps(LITERAL, "enum", "enum with 0 does not match false", "float zero is valid"),
    **_gaps(LITERAL, "enum", "enum with [0] does not match [false]", "[0.0] is valid"),
    **_gaps(LITERAL, "enum", "enum with 1 does not match true", "float one is valid"),
    **_gaps(LITERAL, "enum", "enum with [1] does not match [true]", "[1.0] is valid"),
    **_gaps(
        INTEGER_FRACTION,
        "type",
        "integer type matches integers",
        "a float with zero fractional part is an integer",
    ),
    # Arrays.
    **_gaps(TUPLE_WHOLE, "items", "items and subitems", "fewer items is valid"),
    **_gaps(
        TUPLE_WHOLE,
        "items",
        "prefixItems with no additional items allowed",
        "fewer number of items present (1)",
        "fewer number of items present (2)",
    ),
    **_gaps(
        TUPLE_WHOLE, "prefixItems", "a schema given for prefixItems", "incomplete array of items"
    ),
    **_gaps(
        TUPLE_CLOSED, "prefixItems", "a schema given for prefixItems", "array with additional items"
    ),
    **_gaps(
        TUPLE_CLOSED,
        "prefixItems",
        "additional items are allowed by default",
        "only the first item is validated",
    ),
    # Combinators.
    # Formats.
    **_gaps(
        LEAP_SECOND,
        "optional/format/date-time",
        "validation of date-time strings",
        "a valid date-time with a leap second, UTC",
        "a valid date-time with a leap second, with minus offset",
    ),
    **_gaps(
        LEAP_SECOND,
        "optional/format/time",
        "validation of time strings",
        "a valid time string with leap second, Zulu",
        "valid leap second, zero time-offset",
        "valid leap second, positive time-offset",
        "valid leap second, large positive time-offset",
        "valid leap second, negative time-offset",
        "valid leap second, large negative time-offset",
    ),
    **_gaps(
        LOWERCASE_T_Z,
        "optional/format/date-time",
        "validation of date-time strings",
        "case-insensitive T and Z",
    ),
    **_gaps(
        LOWERCASE_T_Z,
        "optional/format/time",
        "validation of time strings",
        "a valid time string with case-insensitive Z",
    ),
    **_gaps(
        LONG_FRACTION,
        "optional/format/date-time",
        "validation of date-time strings",
        "a second fraction of fifteen nines is valid",
    ),
    **_gaps(
        DATE_DAYS,
        "optional/format/date-time",
        "validation of date-time strings",
        "an invalid day in date-time string",
    ),
    **_gaps(
        DATE_DAYS,
        "optional/format/date",
        "validation of date strings",
        "a invalid date string with 30 days in February (leap)",
        "a invalid date string with 31 days in April",
        "a invalid date string with 31 days in June",
        "a invalid date string with 31 days in September",
        "a invalid date string with 31 days in November",
        "2021 is not a leap year",
        "century year 0100 is not a leap year",
        "century year 2100 is not a leap year",
    ),
    **_gaps(
        EMAIL_SUBSET,
        "optional/format/email",
        "validation of e-mail addresses",
        "a quoted string with a space in the local part is valid",
        "a quoted string with a double dot in the local part is valid",
        "a quoted string with a @ in the local part is valid",
        "an IPv4-address-literal after the @ is valid",
        "an IPv6-address-literal after the @ is valid",
    ),
    **_gaps(
        EMAIL_DOTS,
        "optional/format/email",
        "validation of e-mail addresses",
        "dot before local part is not valid",
        "dot after local part is not valid",
        "two subsequent dots inside local part are not valid",
    ),
    **_gaps(
        URI_SYNTAX,
        "optional/format/uri",
        "validation of URIs",
        "invalid userinfo",
        "non-numeric port is invalid",
        "leading zero in an embedded IPv4 address is invalid",
        "square brackets are not allowed in a path segment",
    ),
}


# -- parameters ----------------------------------------------------------------------------


def _skip_reason(instance: Instance) -> str | None:
    """Why an instance test cannot run, or None."""
    case = instance.case
    if (case.file, case.description) in COMPILE_GAPS:
        return f"the schema does not compile: {COMPILE_GAPS[case.file, case.description]}"
    if instance.valid:
        return None
    try:
        left = compiled(case).validation_only
    except Exception:  # compiling is tested (and fails loudly) in test_case_compiles
        return None
    if left:
        return "keywords left to the validator: " + "; ".join(left)
    return None


def _instance_params(valid: bool) -> list[Any]:
    params = []
    for instance in INSTANCES:
        if instance.valid is not valid:
            continue
        marks: list[Any] = []
        if reason := _skip_reason(instance):
            marks.append(pytest.mark.skip(reason=reason))
        elif instance.key in KNOWN_GAPS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[instance.key]))
        params.append(pytest.param(instance, id=instance.id, marks=marks))
    return params


def _case_params() -> list[Any]:
    params = []
    for case in CASES:
        key = (case.file, case.description)
        marks = (
            [pytest.mark.xfail(strict=True, reason=COMPILE_GAPS[key])]
            if key in COMPILE_GAPS
            else []
        )
        params.append(pytest.param(case, id=f"{case.file}/{case.description}", marks=marks))
    return params


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _case_params())
def test_case_compiles(extractor: Extractor, case: Case) -> None:
    grammar = extractor.engine.new_grammar(compiled(case).gbnf(think=False))
    grammar.close()


@pytest.mark.parametrize("instance", _instance_params(valid=True))
def test_valid_instance_is_admitted(extractor: Extractor, instance: Instance) -> None:
    gbnf = compiled(instance.case).gbnf(think=False)
    assert extractor.engine.grammar_accepts(gbnf, compact(instance.data))


@pytest.mark.parametrize("instance", _instance_params(valid=False))
def test_invalid_instance_is_refused(extractor: Extractor, instance: Instance) -> None:
    gbnf = compiled(instance.case).gbnf(think=False)
    assert not extractor.engine.grammar_accepts(gbnf, compact(instance.data))


def test_gap_lists_name_real_tests() -> None:
    """Stale entries would hide nothing but still count as gaps: each must name a live test."""
    cases = {(c.file, c.description) for c in CASES}
    assert sorted(set(COMPILE_GAPS) - cases) == []
    live = {i.key for i in INSTANCES if _skip_reason(i) is None}
    assert sorted(set(KNOWN_GAPS) - live) == []
