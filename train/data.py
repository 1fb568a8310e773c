"""Synthetic schema / document / gold triples, deterministic by seed.

``generate(count, options)`` draws, for each example, a domain (batch records,
deviations, certificates of analysis, invoices, contracts), a schema made of a
subset of that domain's fields, a gold object for it (optional fields sometimes
left out), and the document text rendered from the gold in one layout (prose,
key: value list, table, email, form, OCR-like noise) with distractor lines.
Each example also carries a reasoning trace for SFT.

Example ``i`` of seed ``s`` depends on ``(s, i)`` only, so a larger set extends
a smaller one, and a held-out set is simply another seed.

Rows (:meth:`Example.to_row`) use the published ThinkJSON dataset's columns:
``text`` (the unstructured document), ``schema`` and ``object`` (JSON texts),
plus ``reasoning`` and provenance columns (``id``, ``domain``, ``layout``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from typing import Any

from thinkjson_edge.train.domains import (
    ARRAY,
    BOOLEAN,
    DATE,
    DOMAIN_NAMES,
    ENUM,
    INTEGER,
    NUMBER,
    OBJECT,
    Domain,
    Field,
    domain_named,
)
from thinkjson_edge.train.layouts import LAYOUTS, render
from thinkjson_edge.train.traces import synthetic_trace


@dataclass(frozen=True)
class Example:
    """One training or held-out example."""

    id: str
    schema: dict[str, Any]
    text: str
    gold: dict[str, Any]
    reasoning: str | None = None
    domain: str = ""
    layout: str = ""

    @property
    def schema_text(self) -> str:
        """The schema as the runtime shows it to the model (``Schema.text``: compact JSON)."""
        return json.dumps(self.schema, ensure_ascii=False, separators=(",", ":"))

    @property
    def gold_text(self) -> str:
        return json.dumps(self.gold, ensure_ascii=False)

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "schema": self.schema_text,
            "object": self.gold_text,
            "reasoning": self.reasoning or "",
            "domain": self.domain,
            "layout": self.layout,
        }


@dataclass(frozen=True)
class GeneratorOptions:
    """What the generator may draw from, and how big examples get."""

    seed: int = 0
    domains: tuple[str, ...] = DOMAIN_NAMES
    layouts: tuple[str, ...] = LAYOUTS
    max_fields: int = 8  # top-level properties of a schema
    max_items: int = 3  # elements of an array
    present_rate: float = 0.7  # chance an optional field of the schema is in the gold
    distractor_rate: float = 0.5  # chance a document gets distractor lines
    # Chance a schema's fields, and independently a document's, are not in the domain's order.
    reorder_share: float = 0.0
    # Chance a field with aliases is asked for, and labelled, under one of them instead.
    alias_share: float = 0.0

    def __post_init__(self) -> None:
        for name in self.domains:
            domain_named(name)  # raises with the known names
        unknown = set(self.layouts) - set(LAYOUTS)
        if unknown:
            raise ValueError(f"unknown layouts {sorted(unknown)}; choose from {', '.join(LAYOUTS)}")
        if not self.domains or not self.layouts:
            raise ValueError("data needs at least one domain and one layout")
        if self.max_fields < 1 or self.max_items < 1:
            raise ValueError("max_fields and max_items must be at least 1")
        for name in ("reorder_share", "alias_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")


def generate(count: int, options: GeneratorOptions | None = None) -> list[Example]:
    """``count`` examples; the same options always give the same examples."""
    options = options or GeneratorOptions()
    return [example_at(index, options) for index in range(count)]


def example_at(index: int, options: GeneratorOptions) -> Example:
    """Example ``index`` of the options' seed (independent of every other index)."""
    rng = random.Random(f"{options.seed}:{index}")
    domain = domain_named(rng.choice(options.domains))
    share = options.reorder_share
    chosen = _maybe_renamed(_choose_fields(domain, rng, options.max_fields), options, rng)
    fields = _maybe_reordered(chosen, share, rng)
    schema = _object_schema(fields, options.max_items)
    gold = _object_value(fields, rng, options)
    layout = rng.choice(options.layouts)
    distractors = rng.randint(1, 2) if rng.random() < options.distractor_rate else 0
    document_order = _maybe_reordered(fields, share, rng)
    rendered = render(domain, document_order, gold, layout, rng, distractors=distractors)
    return Example(
        id=f"{domain.name}-{options.seed}-{index}",
        schema=schema,
        text=rendered.text,
        gold=gold,
        reasoning=synthetic_trace(schema, gold, rendered.surfaces),
        domain=domain.name,
        layout=layout,
    )


def _choose_fields(domain: Domain, rng: random.Random, limit: int) -> tuple[Field, ...]:
    """Required fields, then a random share of optional ones; in the domain's order."""
    required = [f for f in domain.fields if f.required]
    optional = [f for f in domain.fields if not f.required]
    chosen = required[:limit] + rng.sample(optional, rng.randint(0, len(optional)))
    chosen = chosen[:limit]
    return tuple(f for f in domain.fields if f in chosen)


def _maybe_renamed(
    fields: tuple[Field, ...], options: GeneratorOptions, rng: random.Random
) -> tuple[Field, ...]:
    """Each field with aliases, with chance ``alias_share``, under one of them.

    At share 0 nothing is drawn, so the examples stay those of the generator before the
    option.
    """
    if options.alias_share <= 0:
        return fields
    renamed = []
    for spec in fields:
        if spec.aliases and rng.random() < options.alias_share:
            name, label = rng.choice(spec.aliases)
            spec = replace(spec, name=name, label=label)
        renamed.append(spec)
    return tuple(renamed)


def _maybe_reordered(
    fields: tuple[Field, ...], share: float, rng: random.Random
) -> tuple[Field, ...]:
    """The fields shuffled, with chance ``share``, so that no field is always first or last.

    A model that only ever saw a domain's fields in one order learns to close the object
    after the usual last field, even when the schema asks for more. At share 0 nothing is
    drawn, so the examples stay those of the generator before the option.
    """
    if share <= 0 or rng.random() >= share:
        return fields
    return tuple(rng.sample(fields, len(fields)))


def _object_schema(fields: tuple[Field, ...], max_items: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: _field_schema(f, max_items) for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }


def _field_schema(spec: Field, max_items: int) -> dict[str, Any]:
    if spec.kind == OBJECT:
        return _object_schema(spec.children, max_items)
    if spec.kind == ARRAY:
        return {
            "type": "array",
            "items": _object_schema(spec.children, max_items),
            "minItems": 1,
            "maxItems": min(spec.max_items, max_items),
        }
    if spec.kind == DATE:
        return {"type": "string", "format": "date"}
    if spec.kind == ENUM:
        return {"type": "string", "enum": list(spec.choices)}
    if spec.kind == INTEGER:
        return {"type": "integer", "minimum": 0}
    if spec.kind == NUMBER:
        return {"type": "number", "minimum": 0}
    if spec.kind == BOOLEAN:
        return {"type": "boolean"}
    return {"type": "string"}


def _object_value(
    fields: tuple[Field, ...], rng: random.Random, options: GeneratorOptions
) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for spec in fields:
        if not spec.required and rng.random() >= options.present_rate:
            continue
        value[spec.name] = _field_value(spec, rng, options)
    return value


def _field_value(spec: Field, rng: random.Random, options: GeneratorOptions) -> Any:
    if spec.kind == OBJECT:
        return _object_value(spec.children, rng, options)
    if spec.kind == ARRAY:
        count = rng.randint(1, min(spec.max_items, options.max_items))
        return [_object_value(spec.children, rng, options) for _ in range(count)]
    if spec.kind == ENUM:
        return rng.choice(spec.choices)
    assert spec.make is not None, f"field {spec.name} has no value maker"
    return spec.make(rng)


@dataclass
class Split:
    """A training set and a held-out set drawn from disjoint seeds."""

    train: list[Example] = field(default_factory=list)
    heldout: list[Example] = field(default_factory=list)


def train_and_heldout(train: int, heldout: int, options: GeneratorOptions) -> Split:
    """Training examples from ``options.seed``; held-out ones from a seed no run trains on."""
    held = GeneratorOptions(**{**options.__dict__, "seed": heldout_seed(options.seed)})
    return Split(generate(train, options), generate(heldout, held))


def heldout_seed(seed: int) -> int:
    return 1_000_003 + seed
