"""How well the JSON Schema -> GBNF compiler does on a folder of schemas with labelled instances.

    python bench/schemas.py DIR [DIR ...] [--json] [--limit N] [--no-stock]

DIR holds either MaskBench files (``{"schema": ..., "tests": [{"valid": ..., "data": ...}]}``,
one schema per file, the subset being the first folder below DIR) or JSON-Schema-Test-Suite
files (a list of ``{"schema": ..., "tests": [...]}`` groups, the subset being the file name,
which is the keyword under test). For our compiler and for llama-cpp-python's built-in
converter side by side, per subset and in total:

- compiled: schemas turned into a grammar that llama.cpp's grammar engine loads;
- valid accepted: valid instances (compact JSON) that the grammar admits, over compiled schemas;
- invalid rejected: invalid instances refused by the grammar, and by grammar + our validator;
- compile time p50 / p99 (ours: schema check + compilation; stock: its converter).

Acceptance goes through llama.cpp's own grammar engine (``Engine.grammar_accepts``) with the
default model's vocabulary; no text is generated.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkjson_edge.engine import Engine
from thinkjson_edge.errors import ThinkJsonError
from thinkjson_edge.grammar import compile_schema
from thinkjson_edge.models import choose_model
from thinkjson_edge.schema import Schema, check_schema


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
    invalid: int = 0
    invalid_rejected_by_grammar: int = 0
    invalid_rejected: int = 0
    compile_ms: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        ms = sorted(self.compile_ms)
        return {
            "schemas": self.schemas,
            "compiled": _share(self.compiled, self.schemas),
            "valid_accepted": _share(self.valid_accepted, self.valid),
            "invalid_rejected_by_grammar": _share(self.invalid_rejected_by_grammar, self.invalid),
            "invalid_rejected_with_validator": _share(self.invalid_rejected, self.invalid),
            "compile_ms_p50": round(statistics.median(ms), 2) if ms else None,
            "compile_ms_p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2) if ms else None,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--limit", type=int, help="at most N schemas per subset")
    parser.add_argument("--no-stock", action="store_true", help="skip llama-cpp-python's converter")
    args = parser.parse_args(argv)

    engine = Engine(choose_model().path, device="cpu")
    compilers = {"ours": _ours} | ({} if args.no_stock else {"stock": _stock})
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
    started = time.perf_counter()
    try:
        gbnf, validator = compile_one(case.schema)
    except Exception:  # any failure to compile counts as not compiled, whatever its kind
        return
    elapsed = (time.perf_counter() - started) * 1000
    texts = [(valid, _compact(instance)) for valid, instance in case.tests]
    try:
        verdicts = [engine.grammar_accepts(gbnf, text) for _, text in texts]
    except ThinkJsonError:  # llama.cpp refused to load the grammar
        return
    tally.compiled += 1
    tally.compile_ms.append(elapsed)
    for (valid, _), accepted, (_, instance) in zip(texts, verdicts, case.tests, strict=True):
        if valid:
            tally.valid += 1
            tally.valid_accepted += accepted
        else:
            tally.invalid += 1
            tally.invalid_rejected_by_grammar += not accepted
            flagged = validator is not None and bool(validator.errors(instance))
            tally.invalid_rejected += (not accepted) or flagged


def _ours(schema: Any) -> tuple[str, Schema]:
    checked = check_schema(schema, object_root=False)
    return compile_schema(checked.schema).gbnf(think=False), checked


def _stock(schema: Any) -> tuple[str, None]:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(json.dumps(schema)), None


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
            "invalid",
            "invalid_rejected_by_grammar",
            "invalid_rejected",
        ):
            setattr(total, name, getattr(total, name) + getattr(tally, name))
        total.compile_ms += tally.compile_ms
    return {"total": total.row(), "subsets": {k: v.row() for k, v in sorted(tallies.items())}}


def print_tables(report: dict[str, Any]) -> None:
    columns = (
        "schemas",
        "compiled",
        "valid_accepted",
        "invalid_rejected_by_grammar",
        "invalid_rejected_with_validator",
        "compile_ms_p50",
        "compile_ms_p99",
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
    if column in ("schemas",) or column.startswith("compile_ms"):
        return str(value)
    return f"{value:.1%}"


if __name__ == "__main__":
    sys.exit(main())
