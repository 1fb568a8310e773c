"""Rendering a gold object as the text of a document, in one of several layouts.

Every value of the gold appears in the text (dates, numbers, enums and booleans
possibly written another way: ``12 March 2024`` for ``2024-03-12``,
``1,234.50`` for ``1234.5``, ``Major`` for ``major``, ``yes`` for ``true``);
fields the gold leaves out are not mentioned. Layout noise (OCR-like character
errors, stray marks) touches labels and filler only, never a value, so every
string of the gold stays findable in the text, as the runtime's grounding
expects. Distractors are extra lines with values that no field asks for.

:class:`Rendered` also records, per leaf path, the exact text standing for the
value (``surfaces``), from which reasoning traces are written.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from thinkjson_edge.train.domains import (
    ARRAY,
    BOOLEAN,
    DATE,
    ENUM,
    INTEGER,
    NUMBER,
    OBJECT,
    Domain,
    Field,
)

LAYOUTS = ("prose", "key_value", "table", "email", "form", "ocr")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_OCR_SWAPS = {"l": "1", "O": "0", "o": "0", "i": "l", "e": "c", "S": "5", "a": "o"}


@dataclass
class Rendered:
    """A document's text and, per leaf path (``items[0].price``), the text of its value."""

    text: str
    surfaces: dict[str, str] = field(default_factory=dict)


def render(
    domain: Domain,
    fields: tuple[Field, ...],
    gold: dict[str, Any],
    layout: str,
    rng: random.Random,
    *,
    distractors: int = 0,
) -> Rendered:
    """The document text of ``gold`` (whose keys are among ``fields``) in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    writer = _Writer(rng, ocr=layout == "ocr")
    present = [f for f in fields if f.name in gold]
    if layout == "prose":
        lines = writer.prose(domain, present, gold)
    elif layout == "table":
        lines = writer.table(domain, present, gold)
    elif layout == "email":
        lines = writer.email(domain, present, gold)
    elif layout == "form":
        lines = writer.form(domain, present, gold)
    else:  # key_value, and ocr (key: value with noisy labels)
        lines = writer.key_value(domain, present, gold)
    for _ in range(distractors):
        extra = rng.choice(domain.distractors)(rng) if domain.distractors else ""
        if extra:
            lines.insert(rng.randint(1, len(lines)), writer.label(extra))
    return Rendered("\n".join(lines).strip() + "\n", writer.surfaces)


class _Writer:
    """Formats values and labels for one document, remembering each value's surface text."""

    def __init__(self, rng: random.Random, *, ocr: bool) -> None:
        self.rng = rng
        self.ocr = ocr
        self.surfaces: dict[str, str] = {}

    # -- values and labels ---------------------------------------------------

    def value(self, spec: Field, value: Any, path: str) -> str:
        text = _surface(spec, value, self.rng)
        self.surfaces[path] = text
        return text

    def label(self, text: str) -> str:
        """A label or filler text, with OCR errors in an OCR layout."""
        if not self.ocr:
            return text
        chars = [_OCR_SWAPS.get(c, c) if self.rng.random() < 0.12 else c for c in text]
        noisy = "".join(chars)
        if self.rng.random() < 0.3:
            noisy = noisy.upper()
        if self.rng.random() < 0.3:
            noisy = noisy.replace(" ", "  ", 1)
        return noisy

    def pairs(self, specs: list[Field], values: dict[str, Any], prefix: str) -> list[str]:
        """``Label: value`` for the scalar children of an object (objects inside flattened)."""
        out = []
        for spec in specs:
            if spec.name not in values:
                continue
            path = f"{prefix}{spec.name}"
            if spec.kind == OBJECT:
                inner = self.pairs(list(spec.children), values[spec.name], f"{path}.")
                out += [f"{self.label(spec.label)} {item}" for item in inner]
            else:
                out.append(f"{self.label(spec.label)}: {self.value(spec, values[spec.name], path)}")
        return out

    # -- layouts -------------------------------------------------------------

    def key_value(self, domain: Domain, specs: list[Field], gold: dict[str, Any]) -> list[str]:
        lines = [self.label(domain.title.upper()), ""]
        for spec in specs:
            value = gold[spec.name]
            if spec.kind == OBJECT:
                lines.append(self.label(spec.label))
                lines += [
                    f"  {pair}" for pair in self.pairs(list(spec.children), value, f"{spec.name}.")
                ]
            elif spec.kind == ARRAY:
                lines.append(self.label(spec.label))
                for index, item in enumerate(value):
                    pairs = self.pairs(list(spec.children), item, f"{spec.name}[{index}].")
                    lines.append(f"  {index + 1}. " + "; ".join(pairs))
            else:
                lines += self.pairs([spec], gold, "")
        if self.ocr:
            lines.insert(self.rng.randint(1, len(lines)), self.rng.choice(("|", "~ ~", "..", "'")))
        return lines

    def prose(self, domain: Domain, specs: list[Field], gold: dict[str, Any]) -> list[str]:
        sentences = [f"{domain.title}."]
        for spec in specs:
            value = gold[spec.name]
            if spec.kind == OBJECT:
                pairs = self.pairs(list(spec.children), value, f"{spec.name}.")
                sentences.append(f"{spec.label}: " + ", ".join(pairs) + ".")
            elif spec.kind == ARRAY and self.unlabelled_items(spec):
                sentences.append(self.items_in_passing(spec, value))
            elif spec.kind == ARRAY:
                items = [
                    ", ".join(self.pairs(list(spec.children), item, f"{spec.name}[{i}]."))
                    for i, item in enumerate(value)
                ]
                listed = "; ".join(f"({i + 1}) {text}" for i, text in enumerate(items))
                sentences.append(f"The {spec.label.lower()} are: {listed}.")
            else:
                shown = self.value(spec, value, spec.name)
                template = self.rng.choice(
                    (
                        "The {label} is {value}.",
                        "{Label}: {value}.",
                        "It records {value} as {label}.",
                    )
                )
                sentences.append(
                    template.format(label=spec.label.lower(), Label=spec.label, value=shown)
                )
        return [" ".join(sentences)]

    def unlabelled_items(self, spec: Field) -> bool:
        """Whether to write the items of an array without labels, as prose often does; not
        for items with a yes/no child, which a bare ``yes`` would leave ambiguous."""
        plain = all(child.kind not in (BOOLEAN, OBJECT, ARRAY) for child in spec.children)
        return plain and self.rng.random() < 0.5

    def items_in_passing(self, spec: Field, items: list[dict[str, Any]]) -> str:
        """``Deviations: 2 recorded (DEV-1234, a free-text note); (DEV-5678, ...).``"""
        written = []
        for index, item in enumerate(items):
            values = [
                self.value(child, item[child.name], f"{spec.name}[{index}].{child.name}")
                for child in spec.children
                if child.name in item
            ]
            written.append(f"({', '.join(values)})")
        count = "one was" if len(items) == 1 else f"{len(items)} were"
        return f"{spec.label}: {count} recorded " + "; ".join(written) + "."

    def table(self, domain: Domain, specs: list[Field], gold: dict[str, Any]) -> list[str]:
        lines = [domain.title, "", "| Field | Value |", "| --- | --- |"]
        arrays = []
        for spec in specs:
            if spec.kind == ARRAY:
                arrays.append(spec)
                continue
            for pair in self.pairs([spec], gold, ""):
                label, _, shown = pair.rpartition(": ")
                lines.append(f"| {label} | {shown} |")
        for spec in arrays:
            children = list(spec.children)
            lines += ["", spec.label, "| " + " | ".join(c.label for c in children) + " |"]
            lines.append("|" + " --- |" * len(children))
            for index, item in enumerate(gold[spec.name]):
                cells = [
                    self.value(c, item[c.name], f"{spec.name}[{index}].{c.name}")
                    if c.name in item
                    else ""
                    for c in children
                ]
                lines.append("| " + " | ".join(cells) + " |")
        return lines

    def email(self, domain: Domain, specs: list[Field], gold: dict[str, Any]) -> list[str]:
        body = self.prose(domain, specs, gold)[0].split(". ", 1)[-1]
        sender = self.rng.choice(("qa.desk", "documents", "office", "records"))
        return [
            f"From: {sender}@example.com",
            "To: team@example.com",
            f"Subject: {domain.title}",
            "",
            "Hello,",
            "",
            f"please find the details of the {domain.title.lower()} below.",
            body,
            "",
            "Best regards,",
            "Document office",
        ]

    def form(self, domain: Domain, specs: list[Field], gold: dict[str, Any]) -> list[str]:
        lines = [f"== {domain.title.upper()} FORM ==", ""]
        for spec in specs:
            value = gold[spec.name]
            if spec.kind == ENUM:
                boxes = " ".join(
                    f"[{'x' if choice == value else ' '}] {choice}" for choice in spec.choices
                )
                self.surfaces[spec.name] = f"[x] {value}"
                lines.append(f"{spec.label}: {boxes}")
            elif spec.kind == BOOLEAN:
                self.surfaces[spec.name] = f"[{'x' if value else ' '}] {spec.label}"
                lines.append(self.surfaces[spec.name])
            elif spec.kind in (OBJECT, ARRAY):
                lines += self.key_value(domain, [spec], gold)[2:]
            else:
                shown = self.value(spec, value, spec.name)
                lines.append(f"{spec.label} {'.' * max(3, 28 - len(spec.label))} {shown}")
        return lines


def _surface(spec: Field, value: Any, rng: random.Random) -> str:
    """How a document writes ``value``; gold keeps the canonical form."""
    if spec.kind == DATE:
        year, month, day = (int(part) for part in value.split("-"))
        return rng.choice(
            (
                value,
                f"{day} {_MONTHS[month - 1]} {year}",
                f"{day:02d}.{month:02d}.{year}",
                f"{_MONTHS[month - 1]} {day}, {year}",
            )
        )
    if spec.kind == NUMBER:
        return rng.choice((f"{value:,.2f}", f"{value:.2f}", repr(value)))
    if spec.kind == INTEGER:
        return rng.choice((f"{value:,}", str(value)))
    if spec.kind == BOOLEAN:
        return rng.choice(("yes", "true")) if value else rng.choice(("no", "false"))
    if spec.kind == ENUM:
        return rng.choice((value, value.capitalize(), value.upper()))
    return str(value)
