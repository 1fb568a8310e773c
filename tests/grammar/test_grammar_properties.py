"""Property tests of the compiled grammar: whatever a schema allows, its grammar admits.

Hypothesis draws a realistic object schema (nested objects, optional properties, arrays
with item bounds, strings with length bounds, integers with bounds, enums, type lists,
anyOf of types), then instances built from that schema; jsonschema confirms each instance
is valid, and llama.cpp's grammar sampler (``Engine.grammar_accepts``) must admit its
compact JSON text. Instances list properties in declared order, as the grammar writes them.

A second group checks strings: any text ``json.dumps`` writes is admitted, and a raw control
character inside a string is refused.

Where the model's vocabulary cannot write a text, the drawing strategy steers round it in
the open (named constants, kept exact by test_vocabulary_gaps_are_as_listed). Two examples
Hypothesis once found (a raw DEL, a double with 17 fraction digits) stay as plain tests.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thinkjson_edge import Extractor
from thinkjson_edge.engine.llama import Engine
from thinkjson_edge.grammar.compiler import GrammarLimits, compile_schema
from thinkjson_edge.schema import check_schema

pytestmark = pytest.mark.model

# Modest and reproducible: a fixed seed per test on CI, no example database in the tree.
settings.register_profile(
    "grammar-properties",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROPERTY_SETTINGS = settings.get_profile("grammar-properties")

LIMITS = GrammarLimits()
# Unbounded integers stay well inside the 18 digits the grammar writes for an open side.
INTEGER_SPAN = 10**15

# Text the default model cannot write: its vocabulary has no token for these bytes, and the
# tokenizer drops them, so grammar_accepts would judge another text (``spelled`` refuses to).
# The planes 4-11 (UTF-8 lead bytes F1, F2; unassigned by Unicode) are left out of drawn text;
# the raw control characters only matter to the refusal test, which can only try the others.
# test_vocabulary_gaps_are_as_listed keeps both lists honest.
UNSPELLABLE_PLANES = (0x40000, 0xBFFFF)
UNSPELLABLE_CONTROLS = "\x04\x06\x13\x14\x16\x1d"
# Any code point a UTF-8 JSON text can carry (no lone surrogates) that the model can write.
CHARACTERS = st.characters(max_codepoint=UNSPELLABLE_PLANES[0] - 1, exclude_categories=["Cs"]) | (
    st.characters(min_codepoint=UNSPELLABLE_PLANES[1] + 1)
)
RAW_DEL = "\x7f"  # JSON allows it unescaped, and json.dumps(ensure_ascii=False) writes it so


def spelled(engine: Engine, gbnf: str, text: str) -> bool:
    """``grammar_accepts``, once sure the text's tokens spell exactly that text."""
    tokens = engine.encode_plain(text)
    assert b"".join(map(engine.piece, tokens)) == text.encode(), "the vocabulary cannot write it"
    return engine.grammar_accepts(gbnf, text)


# -- schemas -------------------------------------------------------------------------------

LITERAL_CHARACTERS = CHARACTERS
# Property names: mostly identifiers, sometimes any text (quotes, backslashes, non-ASCII).
NAMES = st.one_of(
    st.from_regex(r"[a-z_][a-zA-Z0-9_]{0,11}", fullmatch=True),
    st.text(LITERAL_CHARACTERS, min_size=1, max_size=8),
)
SCALARS = st.one_of(
    st.text(LITERAL_CHARACTERS, max_size=12),
    st.integers(-1000, 1000),
    st.booleans(),
    st.none(),
)


@st.composite
def string_schemas(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    low = draw(st.none() | st.integers(0, 8))
    if low is not None:
        schema["minLength"] = low
    if draw(st.booleans()):
        schema["maxLength"] = draw(st.integers(low or 0, 24))
    return schema


@st.composite
def integer_schemas(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    low = draw(st.none() | st.integers(-(10**6), 10**6))
    high = draw(st.none() | st.integers(low if low is not None else -(10**6), 10**6 + 10))
    if low is not None:
        # exclusiveMinimum n admits n + 1 upwards: keep the range non-empty
        exclusive = high is None or high > low
        schema["exclusiveMinimum" if exclusive and draw(st.booleans()) else "minimum"] = low
    if high is not None:
        room = low is None or high - low >= 2
        schema["exclusiveMaximum" if room and draw(st.booleans()) else "maximum"] = high
    return schema


@st.composite
def enum_schemas(draw: st.DrawFn) -> dict[str, Any]:
    values = draw(st.lists(SCALARS, min_size=1, max_size=5, unique_by=lambda v: (type(v), v)))
    if len(values) == 1 and draw(st.booleans()):
        return {"const": values[0]}
    return {"enum": values}


LEAVES = st.one_of(
    string_schemas(),
    integer_schemas(),
    enum_schemas(),
    st.sampled_from(
        [
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
            {"type": ["string", "null"]},
            {"type": ["integer", "string"]},
            # Free values, as real schemas leave a field open.
            {},
            {"type": "object"},
            {"type": "array"},
        ]
    ),
)


@st.composite
def object_schemas(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    properties = {name: draw(children) for name in names}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [name for name in names if draw(st.booleans())]
    if required:
        schema["required"] = required
    if draw(st.booleans()):
        schema["additionalProperties"] = False
    return schema


@st.composite
def array_schemas(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": draw(children)}
    low = draw(st.none() | st.integers(0, 3))
    if low is not None:
        schema["minItems"] = low
    if draw(st.booleans()):
        schema["maxItems"] = draw(st.integers(max(low or 0, 1), 6))
    return schema


@st.composite
def any_of_schemas(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    return {"anyOf": draw(st.lists(children, min_size=2, max_size=3))}


def _containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(object_schemas(children), array_schemas(children), any_of_schemas(children))


# Nesting stays shallow, as in real extraction schemas (and keeps grammars small).
VALUE_SCHEMAS = st.recursive(LEAVES, _containers, max_leaves=8)
ROOT_SCHEMAS = object_schemas(VALUE_SCHEMAS)

# -- instances -----------------------------------------------------------------------------


NUMBERS = st.integers(-1000, 1000) | st.floats(allow_nan=False, allow_infinity=False)


# Any JSON value, small: what a schema without "type" (or an object or array without
# "properties" or "items") allows.
ANY_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-INTEGER_SPAN, INTEGER_SPAN)
    | NUMBERS
    | st.text(CHARACTERS, max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(CHARACTERS, max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def instances(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under ``schema`` (one drawn by the generators above)."""
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([instances(branch) for branch in schema["anyOf"]])
    kind = schema.get("type")
    if kind is None:
        return ANY_VALUES
    if isinstance(kind, list):
        return st.one_of([instances({**schema, "type": k}) for k in kind])
    if kind == "object":
        if "properties" not in schema:
            return st.dictionaries(st.text(CHARACTERS, max_size=8), ANY_VALUES, max_size=4)
        return object_instances(schema)
    if kind == "array":
        if "items" not in schema:
            return st.lists(ANY_VALUES, max_size=4)
        low = schema.get("minItems", 0)
        return st.lists(
            instances(schema["items"]), min_size=low, max_size=schema.get("maxItems", low + 3)
        )
    if kind == "string":
        low = schema.get("minLength", 0)
        return st.text(CHARACTERS, min_size=low, max_size=schema.get("maxLength", low + 24))
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -INTEGER_SPAN - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", INTEGER_SPAN + 1) - 1)
        return st.integers(low, high)
    if kind == "number":
        return NUMBERS
    if kind == "boolean":
        return st.booleans()
    return st.none()


@st.composite
def object_instances(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    required = set(schema.get("required", []))
    value = {}
    for name, subschema in schema["properties"].items():  # declared order
        if name in required or draw(st.booleans()):
            value[name] = draw(instances(subschema))
    return value


def compact(value: Any) -> str:
    """Compact JSON with raw non-ASCII, as a model writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- properties ----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=st.data())
def test_every_valid_instance_is_admitted(extractor: Extractor, data: st.DataObject) -> None:
    schema = data.draw(ROOT_SCHEMAS, label="schema")
    gbnf = compile_schema(check_schema(schema).schema, LIMITS).gbnf(think=False)
    validator = jsonschema.Draft202012Validator(schema)
    for instance in data.draw(st.lists(instances(schema), min_size=1, max_size=3), "instances"):
        validator.validate(instance)  # the strategy's own check: only valid instances count
        assert spelled(extractor.engine, gbnf, compact(instance))


STRING_SCHEMA = {"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]}
# Text rich in what JSON strings must escape, mixed with any other code point.
AWKWARD_TEXT = st.text(
    st.sampled_from(['"', "\\", "/", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", RAW_DEL])
    | CHARACTERS,
    max_size=LIMITS.max_string_length // 4,
)


@PROPERTY_SETTINGS
@given(text=AWKWARD_TEXT, ascii_only=st.booleans())
def test_any_string_json_writes_is_admitted(
    extractor: Extractor, text: str, ascii_only: bool
) -> None:
    gbnf = compile_schema(STRING_SCHEMA, LIMITS).gbnf(think=False)
    written = json.dumps({"s": text}, ensure_ascii=ascii_only, separators=(",", ":"))
    assert spelled(extractor.engine, gbnf, written)


@PROPERTY_SETTINGS
@given(
    before=AWKWARD_TEXT,
    control=st.characters(max_codepoint=0x1F, exclude_characters=UNSPELLABLE_CONTROLS),
    after=AWKWARD_TEXT,
)
def test_raw_control_character_in_a_string_is_refused(
    extractor: Extractor, before: str, control: str, after: str
) -> None:
    gbnf = compile_schema(STRING_SCHEMA, LIMITS).gbnf(think=False)
    inside = compact(before)[1:-1] + control + compact(after)[1:-1]
    assert not spelled(extractor.engine, gbnf, f'{{"s":"{inside}"}}')


def test_raw_del_is_admitted(extractor: Extractor) -> None:
    gbnf = compile_schema(STRING_SCHEMA, LIMITS).gbnf(think=False)
    assert spelled(extractor.engine, gbnf, '{"s":"\x7f"}')


def test_long_fraction_is_admitted(extractor: Extractor) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    gbnf = compile_schema(schema, LIMITS).gbnf(think=False)
    assert spelled(extractor.engine, gbnf, compact({"x": 0.1 + 0.2}))  # 0.30000000000000004


def test_vocabulary_gaps_are_as_listed(extractor: Extractor) -> None:
    """What UNSPELLABLE_* leave out is exactly what the default model cannot write."""
    engine = extractor.engine

    def writable(text: str) -> bool:
        return b"".join(map(engine.piece, engine.encode_plain(text))) == text.encode()

    controls = [chr(c) for c in range(0x20) if not writable(f"a{chr(c)}b")]
    assert "".join(controls) == UNSPELLABLE_CONTROLS
    assert writable(f"a{RAW_DEL}b")  # so test_raw_del_is_admitted tests the grammar alone
    low, high = UNSPELLABLE_PLANES
    assert not writable(chr(low)) and not writable(chr(high))
    assert writable(chr(low - 1)) and writable(chr(high + 1))
