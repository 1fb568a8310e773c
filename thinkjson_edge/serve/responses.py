"""An extraction result as ``/v1/extract`` answers it: the object, its validity, the findings
with the confidence and offsets of the value each is about, and the full ``--report`` record.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from thinkjson_edge.pipeline.result import ExtractionResult, value_dict


def extraction_body(result: ExtractionResult) -> dict[str, Any]:
    return {
        "object": result.value,
        "valid": result.valid,
        "findings": findings_with_places(result),
        "report": result.to_dict(),
    }


def findings_with_places(result: ExtractionResult) -> list[dict[str, Any]]:
    """The kept attempt's findings; a finding about a value also gets that value's confidence,
    whether it was copied, and where it is in the document (when it is there)."""
    chosen = result.chosen
    values = {entry["path"]: entry for entry in map(value_dict, chosen.values)}
    spans = {g.path: g.span for g in chosen.grounding if g.span is not None}
    findings = []
    for finding in chosen.findings:
        entry = dataclasses.asdict(finding)
        value = values.get(finding.path)
        if value is not None:
            entry["confidence"] = value["confidence"]
            entry["copied"] = value["copied"]
        span = spans.get(finding.path)
        if span is not None:
            entry["start"], entry["end"] = span.start, span.end
        findings.append(entry)
    return findings


def usage(result: ExtractionResult) -> dict[str, int]:
    """Tokens of every attempt together, as OpenAI's ``usage`` counts them."""
    generations = [attempt.generation for attempt in result.attempts]
    prompt = sum(g.prompt_tokens for g in generations)
    completion = sum(g.generated_tokens for g in generations)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
