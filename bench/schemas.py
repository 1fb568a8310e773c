"""How well the JSON Schema -> GBNF compiler does on a folder of schemas with labelled instances.

    python bench/schemas.py DIR [DIR ...] [--json] [--limit N] [--no-stock] [--extraction-grammar]

DIR holds either MaskBench files (``{"schema": ..., "tests": [{"valid": ..., "data": ...}]}``,
one schema per file, the subset being the first folder below DIR) or JSON-Schema-Test-Suite
files (a list of ``{"schema": ..., "tests": [...]}`` groups, the subset being the file name,
which is the keyword under test). For our compiler and for llama-cpp-python's built-in
converter side by side, per subset and in total:

- compiled: schemas turned into a grammar that llama.cpp's grammar engine loads;
- valid accepted: valid instances (compact JSON) that the grammar admits, over compiled schemas,
  as written and with each object's keys put in the schema's declared order (the grammar
  writes properties in that order; a JSON object's key order carries no meaning);
- invalid rejected: invalid instances refused by the grammar, and by grammar + our validator;
- compile time p50 / p99: schema to GBNF text (ours: our compiler; stock: its converter);
- check time p50 / p99 (ours only): checking the schema against its draft's metaschema, which
  ``extract`` does once per schema before compiling.

Each compiler first compiles a small schema untimed, so that no figure includes an import.

Instances written by people carry properties their schema does not name wherever
``additionalProperties`` is absent or true, and values of any type where a subschema names
none, so by default our grammar is measured with ``GrammarLimits(permissive=True)``;
``--extraction-grammar`` measures the extraction default instead, which writes only the
properties the schema asks for and infers a missing type from the keywords.

Acceptance goes through llama.cpp's own grammar engine (``Engine.grammar_accepts``) with the
default model's vocabulary; no text is generated.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from thinkjson_edge.engine.llama import Engine
from thinkjson_edge.errors import ThinkJsonError
from thinkjson_edge.grammar.compiler import GrammarLimits, compile_schema
from thinkjson_edge.models.choice import choose_model
from thinkjson_edge.schema import Schema, check_schema, merge_schemas, resolve_local_ref


@dataclass
class Case:
    subset: str
    schema: Any
    tests: list[tuple[bool, Any]]  # (valid, instance)


@dataclass
class Tally:
    schemas: int = 0
    compiled: int = 0
    valid: int = 0
    valid_accepted: int = 0
    valid_accepted_in_order: int = 0
    invalid: int = 0
    invalid_rejected_by_grammar: int = 0
    invalid_rejected: int = 0
    compile_ms: list[float] = field(default_factory=list)
    check_ms: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "schemas": self.schemas,
            "compiled": _share(self.compiled, self.schemas),
            "valid_accepted": _share(self.valid_accepted, self.valid),
            "valid_accepted_in_order": _share(self.valid_accepted_in_order, self.valid),
            "invalid_rejected_by_grammar": _share(self.invalid_rejected_by_grammar, self.invalid),
            "invalid_rejected_with_validator": _share(self.invalid_rejected, self.invalid),
            "compile_ms_p50": _percentile(self.compile_ms, 0.5),
            "compile_ms_p99": _percentile(self.compile_ms, 0.99),
            "check_ms_p50": _percentile(self.check_ms, 0.5),
            "check_ms_p99": _percentile(self.check_ms, 0.99),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--limit", type=int, help="at most N schemas per subset")
    parser.add_argument("--no-stock", action="store_true", help="skip llama-cpp-python's converter")
    parser.add_argument(
        "--extraction-grammar",
        action="store_true",
        help="measure the extraction default, not the permissive grammar (see above)",
    )
    args = parser.parse_args(argv)
    limits = GrammarLimits(permissive=not args.extraction_grammar)

    engine = Engine(choose_model().path, device="cpu")
    compilers = {"ours": partial(_ours, limits=limits)} | (
        {} if args.no_stock else {"stock": _stock}
    )
    for compile_one in compilers.values():
        compile_one({"type": "object", "properties": {"warm": {"type": "string"}}})
    results: dict[str, dict[str, Tally]] = {name: defaultdict(Tally) for name in compilers}
    count: dict[str, int] = defaultdict(int)
    for directory in args.dirs:
        for case in load_cases(directory):
            if args.limit and count[case.subset] >= args.limit:
                continue
            count[case.subset] += 1
            for name, compile_one in compilers.items():
                measure(engine, compile_one, case, results[name][case.subset])
    report = {name: _summarise(tallies) for name, tallies in results.items()}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report)
    return 0


def load_cases(directory: Path) -> Iterator[Case]:
    """Every schema with its labelled instances, from either layout."""
    for path in sorted(directory.rglob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(document, dict) and "schema" in document and "tests" in document:
            subset = path.relative_to(directory).parts[0] if path.parent != directory else "."
            yield Case(subset, document["schema"], _labelled(document["tests"]))
        elif isinstance(document, list):
            for group in document:
                if isinstance(group, dict) and "schema" in group and "tests" in group:
                    yield Case(path.stem, group["schema"], _labelled(group["tests"]))


def measure(engine: Engine, compile_one: Any, case: Case, tally: Tally) -> None:
    tally.schemas += 1
    try:
        compiled = compile_one(case.schema)
    except Exception:  # any failure to compile counts as not compiled, whatever its kind
        return
    gbnf, validator = compiled.gbnf, compiled.validator
    texts = [(valid, _compact(instance)) for valid, instance in case.tests]
    try:
        verdicts = [engine.grammar_accepts(gbnf, text) for _, text in texts]
    except ThinkJsonError:  # llama.cpp refused to load the grammar
        return
    tally.compiled += 1
    tally.compile_ms.append(compiled.compile_ms)
    if compiled.check_ms is not None:
        tally.check_ms.append(compiled.check_ms)
    for (valid, _), accepted, (_, instance) in zip(texts, verdicts, case.tests, strict=True):
        if valid:
            tally.valid += 1
            tally.valid_accepted += accepted
            if not accepted:
                reordered = _compact(in_declared_order(instance, case.schema, case.schema))
                accepted = engine.grammar_accepts(gbnf, reordered)
            tally.valid_accepted_in_order += accepted
        else:
            tally.invalid += 1
            tally.invalid_rejected_by_grammar += not accepted
            flagged = validator is not None and bool(validator.errors(instance))
            tally.invalid_rejected += (not accepted) or flagged


@dataclass
class Compiled:
    gbnf: str
    validator: Schema | None
    compile_ms: float
    check_ms: float | None


def _ours(schema: Any, limits: GrammarLimits) -> Compiled:
    started = time.perf_counter()
    checked = check_schema(schema, object_root=False)
    checked_at = time.perf_counter()
    gbnf = compile_schema(checked.schema, limits).gbnf(think=False)
    done = time.perf_counter()
    return Compiled(gbnf, checked, (done - checked_at) * 1000, (checked_at - started) * 1000)


def in_declared_order(instance: Any, schema: Any, root: Any) -> Any:
    """``instance`` with each object's keys in its schema's declared order, undeclared ones last.

    Where ``anyOf``/``oneOf`` branch, the branch naming most of the object's keys gives the
    order; this only rearranges keys, it never changes a value.
    """
    schema = _flatten(schema, root)
    if isinstance(instance, dict):
        branches = [_flatten(b, root) for b in schema.get("anyOf", []) + schema.get("oneOf", [])]
        if branches:
            best = max(branches, key=lambda b: len(instance.keys() & (b.get("properties") or {})))
            schema = merge_schemas(schema, best)
        declared = list(schema.get("properties") or {})
        rank = {name: i for i, name in enumerate(declared)}
        keys = sorted(instance, key=lambda k: rank.get(k, len(declared)))
        return {k: in_declared_order(instance[k], _property_schema(schema, k), root) for k in keys}
    if isinstance(instance, list):
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        return [
            in_declared_order(v, prefix[i] if i < len(prefix) else items, root)
            for i, v in enumerate(instance)
        ]
    return instance


def _flatten(schema: Any, root: Any) -> dict[str, Any]:
    """The schema with its ``$ref`` chain followed and ``allOf`` merged in (for key order only)."""
    seen: set[str] = set()
    while isinstance(schema, dict) and ("$ref" in schema or "allOf" in schema):
        rest = {k: v for k, v in schema.items() if k not in ("$ref", "allOf")}
        for part in schema.get("allOf", []):
            rest = merge_schemas(rest, _flatten(part, root))
        ref = schema.get("$ref")
        if ref is not None and ref not in seen:
            seen.add(ref)
            with contextlib.suppress(ThinkJsonError):  # a broken $ref: keep what we have
                rest = merge_schemas(rest, resolve_local_ref(root, ref))
        schema = rest
    return schema if isinstance(schema, dict) else {}


def _property_schema(schema: dict[str, Any], name: str) -> Any:
    properties = schema.get("properties") or {}
    if name in properties:
        return properties[name]
    for pattern, subschema in (schema.get("patternProperties") or {}).items():
        with contextlib.suppress(re.error):
            if re.search(pattern, name):
                return subschema
    extra = schema.get("additionalProperties", {})
    return extra if isinstance(extra, dict) else {}


def _stock(schema: Any) -> Compiled:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    started = time.perf_counter()
    gbnf = json_schema_to_gbnf(json.dumps(schema))
    return Compiled(gbnf, None, (time.perf_counter() - started) * 1000, None)


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 2)


def _labelled(tests: list[Any]) -> list[tuple[bool, Any]]:
    return [(bool(t["valid"]), t["data"]) for t in tests if isinstance(t, dict) and "data" in t]


def _compact(instance: Any) -> str:
    return json.dumps(instance, ensure_ascii=False, separators=(",", ":"))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _summarise(tallies: dict[str, Tally]) -> dict[str, Any]:
    total = Tally()
    for tally in tallies.values():
        for name in (
            "schemas",
            "compiled",
            "valid",
            "valid_accepted",
            "valid_accepted_in_order",
            "invalid",
            "invalid_rejected_by_grammar",
            "invalid_rejected",
        ):
            setattr(total, name, getattr(total, name) + getattr(tally, name))
        total.compile_ms += tally.compile_ms
        total.check_ms += tally.check_ms
    return {"total": total.row(), "subsets": {k: v.row() for k, v in sorted(tallies.items())}}


def print_tables(report: dict[str, Any]) -> None:
    columns = (
        "schemas",
        "compiled",
        "valid_accepted",
        "valid_accepted_in_order",
        "invalid_rejected_by_grammar",
        "invalid_rejected_with_validator",
        "compile_ms_p50",
        "compile_ms_p99",
        "check_ms_p50",
        "check_ms_p99",
    )
    for name, summary in report.items():
        print(f"\n## {name}\n")
        print("| subset | " + " | ".join(columns) + " |")
        print("| --- " * (len(columns) + 1) + "|")
        rows = {**summary["subsets"], "**total**": summary["total"]}
        for subset, row in rows.items():
            print(f"| {subset} | " + " | ".join(_cell(c, row[c]) for c in columns) + " |")


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "schemas" or column.endswith(("_p50", "_p99")):
        return str(value)
    return f"{value:.1%}"


if __name__ == "__main__":
    sys.exit(main())
