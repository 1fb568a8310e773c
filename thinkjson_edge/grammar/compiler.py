"""JSON Schema -> GBNF, the grammar llama.cpp enforces while the model writes.

Design choices, each against a failure seen with small models:

* Every string, array and open object is bounded (``GrammarLimits``), so the
  grammar's language is finite outside recursive references: a runaway value
  ("10000000...") is cut short by the grammar itself.
* Strings are always valid JSON: no raw control characters, only JSON escapes.
* Properties come in the schema's declared order; optional ones may be left
  out where they stand.
* Undeclared properties come after the declared ones, and only where the
  schema asks for them: ``patternProperties``, or ``additionalProperties``
  given as a schema. An absent or ``true`` ``additionalProperties`` writes
  nothing more: extraction fills the fields asked for.
* A subschema without ``type`` takes the type its keywords imply
  (``minLength`` a string, ``properties`` an object, ...).

``GrammarLimits.permissive`` lifts the last two choices, so that the grammar
admits every instance the schema admits as far as a grammar can; that is how
the compiler is measured against instances written by people.
* Keywords the grammar does not express are listed in
  ``CompiledGrammar.validation_only`` and enforced after generation by the
  validator; nothing is dropped silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from thinkjson_edge.errors import SchemaError
from thinkjson_edge.grammar.regex import PatternTooDeep, UnsupportedPattern, pattern_to_gbnf
from thinkjson_edge.grammar.rules import FORMAT_RULES, inclusive_integer_bounds, integer_range
from thinkjson_edge.schema import merge_schemas, resolve_local_ref

# Keywords the compiler turns into grammar rules. Annotations are ignored on purpose.
_GRAMMAR_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "$ref",
        "$defs",
        "definitions",
        "anyOf",
        "oneOf",
        "allOf",
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "format",
    }
)
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$anchor",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentMediaType",
        "contentEncoding",
        "$vocabulary",
    }
)
_RESERVED_NAMES = frozenset({"root", "think", "json"})
_ALL_TYPES = ("object", "array", "string", "number", "boolean", "null")
_INTEGER_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})

_CHAR = r'[^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_INTEGER = r'"-"? ("0" | [1-9] [0-9]{0,17})'
# A double's shortest form has up to 17 significant digits, and Python writes plain
# decimals down to 1e-4: up to 21 digits after the point.
_NUMBER = r'"-"? ("0" | [1-9] [0-9]{0,17}) ("." [0-9]{1,21})? ([eE] [-+]? [0-9]{1,3})?'
# The reasoning block of the ThinkJSON format. "<" cannot appear inside it, so
# the only way out is the closing tag.
THINK_OPEN = "<think>\n"
THINK_CLOSE = "</think>\n"
_THINK_RULE = r'"<think>\n" [^<]* "</think>\n"'


@dataclass(frozen=True)
class GrammarLimits:
    """Bounds the grammar puts on values the schema leaves unbounded."""

    max_string_length: int = 1024
    max_array_items: int = 128
    max_object_entries: int = 64
    # Admit undeclared properties where additionalProperties is absent or true, and
    # every type where a subschema names none (JSON Schema's own reading).
    permissive: bool = False


@dataclass(frozen=True)
class CompiledGrammar:
    """A schema's grammar: ``json`` is the rule for the object itself."""

    rules: dict[str, str]
    by_grammar: tuple[str, ...] = field(default=())  # "path: keyword" the grammar enforces
    validation_only: tuple[str, ...] = field(default=())  # ... that only the validator enforces

    def gbnf(self, *, think: bool) -> str:
        """The whole output grammar: the optional reasoning block, then the JSON object."""
        root = "think json" if think else "json"
        lines = [f"root ::= {root}"]
        if think:
            lines.append(f"think ::= {_THINK_RULE}")
        lines += [f"{name} ::= {body}" for name, body in self.rules.items()]
        return "\n".join(lines) + "\n"


def compile_schema(schema: dict[str, Any], limits: GrammarLimits | None = None) -> CompiledGrammar:
    """Compile a checked schema (local references only) to grammar rules."""
    compiler = _Compiler(schema, limits or GrammarLimits())
    try:
        compiler.rules["json"] = compiler.visit(schema, "object", "")
    except RecursionError as exc:  # e.g. allOf chains that refer back to themselves
        raise SchemaError("the schema nests too deeply, or combines itself in a cycle") from exc
    return CompiledGrammar(
        rules=compiler.rules,
        by_grammar=tuple(dict.fromkeys(compiler.by_grammar)),
        validation_only=tuple(dict.fromkeys(compiler.validation_only)),
    )


def gbnf_literal(text: str) -> str:
    """A GBNF string literal matching ``text`` exactly."""
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def json_literal(value: Any) -> str:
    """A GBNF literal for one JSON value, written compactly."""
    return gbnf_literal(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


class _Compiler:
    def __init__(self, root: dict[str, Any], limits: GrammarLimits) -> None:
        self.root = root
        self.limits = limits
        # "json" first, so the object's rule leads the grammar; "root" and "think" are
        # taken by CompiledGrammar.gbnf.
        self.rules: dict[str, str] = {"json": "", "ws": '" "?'}
        self._rule_by_body: dict[str, str] = {}
        self._ref_rules: dict[str, str] = {}
        self._last_counter: dict[str, int] = {}  # per name base, the number it last took
        self.by_grammar: list[str] = []
        self.validation_only: list[str] = []

    # -- rules -------------------------------------------------------------

    def add_rule(self, hint: str, body: str) -> str:
        """Add a rule (or reuse an identical one) and return its name."""
        if body in self._rule_by_body:
            return self._rule_by_body[body]
        name = self._fresh_name(hint)
        self.rules[name] = body
        self._rule_by_body[body] = name
        return name

    def _fresh_name(self, hint: str) -> str:
        """``hint`` as a rule name, numbered (-2, -3, ...) after the names already taken.

        Names are never released, so the search for a base resumes where it last stopped:
        naming stays linear in the number of rules, with the names a search from 1 gives.
        """
        base = re.sub(r"[^a-zA-Z0-9]+", "-", hint).strip("-").lower() or "value"
        if base[0].isdigit():
            base = "r-" + base
        counter = self._last_counter.get(base, 1)
        name = base if counter == 1 else f"{base}-{counter}"
        while name in self.rules or name in _RESERVED_NAMES:
            counter += 1
            name = f"{base}-{counter}"
        self._last_counter[base] = counter
        return name

    # -- schemas -----------------------------------------------------------

    def visit(self, schema: Any, hint: str, path: str) -> str:
        """Return a grammar expression for ``schema`` (a rule name or an inline body)."""
        if schema is True or schema == {}:
            return self.any_value()
        if schema is False:
            raise SchemaError(f"the schema at {path or '(root)'} is `false`: no value can match")
        if not isinstance(schema, dict):
            raise SchemaError(f"the schema at {path or '(root)'} is not an object")
        self._note_keywords(schema, path)

        if "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k != "$ref" and k not in _ANNOTATIONS}
            rest.pop("$defs", None)
            rest.pop("definitions", None)
            if not rest:
                return self.reference(schema["$ref"], path)
            return self.visit(merge_schemas(rest, self.resolve(schema["$ref"], path)), hint, path)
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = merge_schemas(merged, self.dereference(part, path))
            return self.visit(merged, hint, path)
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                base = {k: v for k, v in schema.items() if k != keyword}
                merged = [
                    (i, merge_schemas(base, self.dereference(branch, path)))
                    for i, branch in enumerate(schema[keyword])
                ]
                branches = [
                    self.visit(branch, f"{hint}-{i}", f"{path}/{keyword}/{i}")
                    for i, branch in merged
                    if branch is not False  # a branch nothing matches adds nothing
                ]
                if not branches:
                    raise SchemaError(f"no branch of {keyword} at {path or '(root)'} can match")
                return self.add_rule(hint, " | ".join(branches))
        if "const" in schema:
            return json_literal(schema["const"])
        if "enum" in schema:
            return self.add_rule(hint, " | ".join(json_literal(v) for v in schema["enum"]))

        types = _declared_types(schema, infer=not self.limits.permissive)
        alternatives = [self.typed(t, schema, hint, path) for t in types]
        if len(alternatives) == 1:
            return alternatives[0]
        return self.add_rule(hint, " | ".join(alternatives))

    def typed(self, type_name: str, schema: dict[str, Any], hint: str, path: str) -> str:
        if type_name == "object":
            return self.object(schema, hint, path)
        if type_name == "array":
            return self.array(schema, hint, path)
        if type_name == "string":
            return self.string(schema, path)
        if type_name == "integer":
            return self.integer(schema, path)
        if type_name == "number":
            return self.add_rule("number", _NUMBER)
        if type_name == "boolean":
            return self.add_rule("boolean", '"true" | "false"')
        if type_name == "null":
            return '"null"'
        raise SchemaError(f"unknown type {type_name!r} at {path or '(root)'}")

    def object(self, schema: dict[str, Any], hint: str, path: str) -> str:
        properties: dict[str, Any] = dict(schema.get("properties") or {})
        required = set(schema.get("required") or [])
        extra = schema.get("additionalProperties", True)
        for name in schema.get("required") or []:
            if name not in properties:  # required but only allowed by additionalProperties
                properties[name] = extra if isinstance(extra, dict) else {}
        pairs = []
        for name, subschema in properties.items():
            value = self.visit(subschema, f"{hint}-{name}", f"{path}/properties/{name}")
            pairs.append(
                (
                    self.add_rule(f"{hint}-{name}-kv", f'{json_literal(name)} ":" ws {value}'),
                    name in required,
                )
            )
        declared, may_be_empty = self.property_sequence(pairs, hint)
        entry = self.undeclared_entry(schema, hint, path)
        limit = self.limits.max_object_entries
        if entry is None and not declared:
            return '"{" ws "}"'
        if entry is None:
            body = " | ".join(declared)
            if may_be_empty:
                body = f"({body})?"
            elif len(declared) > 1:
                body = f"({body})"
        else:
            # Undeclared entries follow the declared ones; with nothing declared written
            # (all optional), the first of them opens the object.
            more = self.add_rule(f"{hint}-more", self.repeat_tail(entry, 0, limit))
            alternatives = [f"{d} {more}" for d in declared]
            if may_be_empty:
                alternatives.append(f"{entry} {self.repeat_tail(entry, 0, limit - 1)}".strip())
            body = " | ".join(alternatives)
            body = f"({body})" + ("?" if may_be_empty else "")
        return self.add_rule(hint, f'"{{" ws {body} "}}"')

    def undeclared_entry(self, schema: dict[str, Any], hint: str, path: str) -> str | None:
        """The rule for one property the schema does not name, or None when none is written."""
        entries = []
        for pattern, subschema in (schema.get("patternProperties") or {}).items():
            where = f"{path}/patternProperties/{pattern}"
            try:
                key = pattern_to_gbnf(pattern, max_repeat=self.limits.max_string_length)
            except PatternTooDeep as exc:
                raise SchemaError(f"{path or '(root)'}/patternProperties: {exc}") from exc
            except UnsupportedPattern:
                self.validation_only.append(f"{where}: pattern of the key")
                key = f"char{{0,{self.limits.max_string_length}}}"
            self.rules.setdefault("char", _CHAR)
            value = self.visit(subschema, f"{hint}-pattern-value", where)
            entries.append(f'"\\"" {key} "\\"" ":" ws {value}')
        extra = schema.get("additionalProperties", True)
        explicit = isinstance(extra, dict) and extra != {}
        # An object that names no property at all says nothing of its contents: a free map.
        unnamed = not schema.get("properties") and not entries
        if explicit or (extra in (True, {}) and (self.limits.permissive or unnamed)):
            value = self.visit(extra, f"{hint}-value", f"{path}/additionalProperties")
            entries.append(f'{self.string({})} ":" ws {value}')
        if not entries:
            return None
        return self.add_rule(f"{hint}-entry", " | ".join(entries))

    def property_sequence(self, pairs: list[tuple[str, bool]], hint: str) -> tuple[list[str], bool]:
        """Properties in declared order, optional ones skippable in place, commas right.

        Returns the non-empty alternatives and whether writing nothing is allowed.
        ``rest[i]`` is what may follow once something has been written: each
        later property with its leading comma. The sequence starts at the first
        property actually written, which is any optional one before the first
        required one, or the first required one.
        """
        rest = [""] * (len(pairs) + 1)
        for i in range(len(pairs) - 1, 0, -1):
            kv, is_required = pairs[i]
            item = f'"," ws {kv}' if is_required else f'("," ws {kv})?'
            body = f"{item} {rest[i + 1]}".strip()
            rest[i] = self.add_rule(f"{hint}-rest", body) if rest[i + 1] else body
        starts = []
        for i, (kv, is_required) in enumerate(pairs):
            starts.append(f"{kv} {rest[i + 1]}".strip())
            if is_required:
                return starts, False
        return starts, True  # every property optional: the empty object is allowed

    def array(self, schema: dict[str, Any], hint: str, path: str) -> str:
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", not prefix)
        min_items = int(schema.get("minItems", 0))  # drafts allow 2.0 for 2
        max_items = None if "maxItems" not in schema else int(schema["maxItems"])
        elements = [
            self.visit(s, f"{hint}-{i}", f"{path}/prefixItems/{i}") for i, s in enumerate(prefix)
        ]
        if prefix:
            # Tuple form: the prefix in order; further items only where "items" allows.
            body = ' "," ws '.join(elements)
            if items is not False:
                item = self.visit(items, f"{hint}-item", f"{path}/items")
                extra_max = self.limits.max_array_items - len(prefix)
                if max_items is not None:
                    extra_max = min(extra_max, max_items - len(prefix))
                if extra_max > 0:
                    body += f' ("," ws {item}){{0,{extra_max}}}'
            if min_items == 0:
                body = f"({body})?"
            return self.add_rule(hint, f'"[" ws {body} "]"')
        item = self.visit(items, f"{hint}-item", f"{path}/items")
        upper = self.limits.max_array_items if max_items is None else max_items
        upper = max(min(upper, self.limits.max_array_items), min_items)
        return self.add_rule(hint, f'"[" ws {self.repeat(item, min_items, upper)} "]"')

    def repeat(self, item: str, low: int, high: int) -> str:
        """``low``..``high`` comma-separated repetitions of ``item``."""
        if high == 0:
            return ""
        tail = self.repeat_tail(item, max(low - 1, 0), high - 1)
        sequence = f"{item} {tail}".strip()
        return sequence if low > 0 else f"({sequence})?"

    @staticmethod
    def repeat_tail(item: str, low: int, high: int) -> str:
        """``low``..``high`` repetitions of ``item``, each after a comma."""
        return f'("," ws {item}){{{low},{high}}}' if high > 0 else ""

    def integer(self, schema: dict[str, Any], path: str) -> str:
        low, high = inclusive_integer_bounds(schema)
        if low is None and high is None:
            return self.add_rule("integer", _INTEGER)
        try:
            body = integer_range(low, high)
        except ValueError as exc:
            raise SchemaError(f"no integer lies within the bounds at {path or '(root)'}") from exc
        return self.add_rule(f"integer-{low}-{high}".replace("None", "any"), body)

    def string(self, schema: dict[str, Any], path: str = "") -> str:
        if "pattern" in schema and (patterned := self.patterned_string(schema, path)):
            return patterned
        fmt = schema.get("format")
        if fmt is not None:
            enforced_by = self.by_grammar if fmt in FORMAT_RULES else self.validation_only
            enforced_by.append(f"{path or '(root)'}: format {fmt}")
        if fmt in FORMAT_RULES:
            return self.add_rule(f"{fmt}-string", f'"\\"" ({FORMAT_RULES[fmt]}) "\\""')
        self.rules.setdefault("char", _CHAR)
        low = int(schema.get("minLength", 0))
        high = min(
            int(schema.get("maxLength", self.limits.max_string_length)),
            self.limits.max_string_length,
        )
        high = max(high, low)
        return self.add_rule(f"string-{low}-{high}", f'"\\"" char{{{low},{high}}} "\\""')

    def patterned_string(self, schema: dict[str, Any], path: str) -> str | None:
        """A string rule from ``pattern``, or None when the pattern is beyond the grammar.

        A compiled pattern takes the place of the length and format rules; those keywords
        are then left to the validator.
        """
        where = path or "(root)"
        self.rules.setdefault("char", _CHAR)
        try:
            body = pattern_to_gbnf(schema["pattern"], max_repeat=self.limits.max_string_length)
        except PatternTooDeep as exc:
            raise SchemaError(f"{path}/pattern: {exc}") from exc
        except UnsupportedPattern:
            self.validation_only.append(f"{where}: pattern")
            return None
        self.by_grammar.append(f"{where}: pattern")
        for keyword in ("minLength", "maxLength", "format"):
            if keyword in schema:
                self.validation_only.append(f"{where}: {keyword} (beside a pattern)")
        return self.add_rule("pattern-string", f'"\\"" {body} "\\""')

    def any_value(self) -> str:
        """Any JSON value, with the same bounds as everything else."""
        if "any-value" not in self.rules:
            self.rules["any-value"] = ""  # reserve the name: the body refers to itself
            string = self.string({})
            integer, number = self.typed("integer", {}, "", ""), self.typed("number", {}, "", "")
            entry = self.add_rule("any-entry", f'{string} ":" ws any-value')
            limit = self.limits
            self.rules["any-value"] = " | ".join(
                [
                    f'"{{" ws {self.repeat(entry, 0, limit.max_object_entries)} "}}"',
                    f'"[" ws {self.repeat("any-value", 0, limit.max_array_items)} "]"',
                    string,
                    number,
                    integer,
                    '"true"',
                    '"false"',
                    '"null"',
                ]
            )
        return "any-value"

    # -- references --------------------------------------------------------

    def reference(self, ref: str, path: str) -> str:
        """A rule for a referenced definition; recursion refers back to the same rule."""
        if ref not in self._ref_rules:
            name = self._fresh_name("ref-" + ref.rsplit("/", 1)[-1])
            self._ref_rules[ref] = name
            self.rules[name] = ""  # reserve the name before visiting: recursive schemas
            self.rules[name] = self.visit(self.resolve(ref, path), name, ref)
        return self._ref_rules[ref]

    def resolve(self, ref: str, path: str) -> Any:
        try:
            return resolve_local_ref(self.root, ref)
        except SchemaError as exc:
            raise SchemaError(f"{exc} (at {path or '(root)'})") from exc

    def dereference(self, schema: Any, path: str) -> Any:
        """Follow ``$ref`` chains until a schema without one (for merging)."""
        seen: set[str] = set()
        while isinstance(schema, dict) and "$ref" in schema and schema["$ref"] not in seen:
            seen.add(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = merge_schemas(rest, self.resolve(schema["$ref"], path))
        return schema

    def _note_keywords(self, schema: dict[str, Any], path: str) -> None:
        """Record for each keyword here whether the grammar or the validator enforces it."""
        where = path or "(root)"
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword in ("$defs", "definitions", "pattern"):
                continue  # "pattern" is recorded where it is compiled (patterned_string)
            if keyword == "format":
                if "string" not in _declared_types(schema):  # strings record it in string()
                    self.validation_only.append(f"{where}: format {value}")
            elif keyword == "oneOf":
                self.by_grammar.append(f"{where}: oneOf (each branch)")
                self.validation_only.append(f"{where}: oneOf (exactly one branch)")
            elif keyword in _GRAMMAR_KEYWORDS or (
                keyword in _INTEGER_BOUNDS and schema.get("type") == "integer"
            ):
                self.by_grammar.append(f"{where}: {keyword}")
            else:
                self.validation_only.append(f"{where}: {keyword}")


def _declared_types(schema: dict[str, Any], *, infer: bool = True) -> list[str]:
    types = schema.get("type") or (_infer_types(schema) if infer else list(_ALL_TYPES))
    return [types] if isinstance(types, str) else list(types)


def _infer_types(schema: dict[str, Any]) -> list[str]:
    if {"properties", "required", "additionalProperties", "patternProperties"} & schema.keys():
        return ["object"]
    if {"items", "prefixItems", "minItems", "maxItems"} & schema.keys():
        return ["array"]
    if {"minLength", "maxLength", "pattern", "format"} & schema.keys():
        return ["string"]
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"} & schema.keys():
        return ["number"]
    return list(_ALL_TYPES)
