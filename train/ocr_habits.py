"""Labelled documents rewritten with an OCR engine's habits, for training on scans.

Transcribed training documents (SROIE's are typed in capitals, with a space on each side
of every colon) differ from what the OCR reader gives for the same paper: the case as
printed ("Doc No."), punctuation without spaces ("TEL:07-5547360", "HQ:7,JLN"), an amount
next to or apart from its currency ("RM 82.80"), and a logo read as a line of garbage
above the name. A model trained on the transcripts alone copies less well from OCR text
(BENCHMARKS.md, "Reading scans"). ``with_ocr_habits`` rewrites a share of such examples in
those habits.

Every rewrite is a rule applied alike to the text and to the gold's strings, so a value
copied from the text stays a copy: an example where that fails is kept as it was.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from thinkjson_edge.train.data import Example

_CAPITALS_WORD = re.compile(r"\b[A-Z]{2,}\b")
_SPACED_COLON = re.compile(r"[ \t]+:[ \t]*|:[ \t]+")
_SPACED_COMMA = re.compile(r",[ \t]+")
_CURRENCY_AMOUNT = re.compile(r"(?<![A-Za-z0-9])(RM|USD|EUR|\$)[ \t]*(?=[0-9])")
_GARBAGE_CHARACTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:'-"


def with_ocr_habits(examples: list[Example], share: float, seed: int) -> list[Example]:
    """The examples, ``share`` of them (drawn by ``seed``, from a stream of their own, so
    share 0 gives them back as they went in) rewritten in OCR's habits."""
    rng = random.Random(f"ocr-habits-{seed}")
    return [ocr_styled(example, rng) if rng.random() < share else example for example in examples]


def ocr_styled(example: Example, rng: random.Random) -> Example:
    """One example in OCR's habits, each habit drawn on its own; unchanged if a value the
    text held verbatim would no longer be in it."""
    text, gold = example.text, example.gold
    if rng.random() < 0.7:
        text, gold = _printed_case(text, gold, rng)
    rules: list[Callable[[str], str]] = []
    if rng.random() < 0.5:
        rules.append(lambda value: _SPACED_COLON.sub(":", value))
    if rng.random() < 0.3:
        rules.append(lambda value: _SPACED_COMMA.sub(",", value))
    if rng.random() < 0.5:
        currency = r"\1" if rng.random() < 0.5 else r"\1 "
        rules.append(lambda value: _CURRENCY_AMOUNT.sub(currency, value))

    def rewrite(value: str) -> str:
        for rule in rules:
            value = rule(value)
        return value

    text = rewrite(text)
    gold = _map_strings(gold, rewrite)
    if not _copies_kept(example.gold, example.text, gold, text):
        return example
    if rng.random() < 0.3:
        text = f"{_garbage_line(rng)}\n{text}"
    return replace(example, text=text, gold=gold)


def _printed_case(text: str, gold: Any, rng: random.Random) -> tuple[str, Any]:
    """About half of the lines in the case of a printed title ("Doc No."), and the gold
    to match: a value copied from the text is cut from the same place in the new text (the
    change keeps every offset), any other takes its words' new case."""
    lines = text.split("\n")
    new_text = "\n".join(_titled(line) if rng.random() < 0.5 else line for line in lines)
    words: dict[str, str] = {}
    for old, new in zip(text.split(), new_text.split(), strict=True):
        words.setdefault(old, new)

    def recase(value: str) -> str:
        at = text.find(value) if value else -1
        if at >= 0:
            return new_text[at : at + len(value)]
        return re.sub(r"\S+", lambda found: words.get(found[0], found[0]), value)

    return new_text, _map_strings(gold, recase)


def _titled(line: str) -> str:
    """Words of ASCII capitals only as a title prints them (the length stays, so offsets
    do); codes such as "CS00004040" are kept."""
    return _CAPITALS_WORD.sub(lambda found: found[0].capitalize(), line)


def _garbage_line(rng: random.Random) -> str:
    """What a recogniser makes of a logo: a few short runs of letters, digits and marks."""
    pieces = [
        "".join(rng.choice(_GARBAGE_CHARACTERS) for _ in range(rng.randint(1, 5)))
        for _ in range(rng.randint(1, 4))
    ]
    return " ".join(pieces)


def _map_strings(value: Any, rewrite: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, rewrite) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, rewrite) for item in value]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _copies_kept(gold: Any, text: str, new_gold: Any, new_text: str) -> bool:
    return all(
        new in new_text
        for old, new in zip(_strings(gold), _strings(new_gold), strict=True)
        if old in text
    )
