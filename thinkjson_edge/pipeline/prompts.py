"""The one prompt format, used by the runtime and by training alike.

A model is trained on exactly what the runtime sends it, so every message the
model sees is built here. The instruction and the schema come before the
document, so that a batch over one schema shares the longest possible prompt
prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

SYSTEM_PROMPT = (
    "You are a careful data-extraction assistant. You read a document and fill in a "
    "JSON object that matches a given JSON Schema. You copy values exactly as they are "
    "written in the document and never invent values."
)

_THINK_INSTRUCTION = (
    "First think briefly inside <think> </think>: for each field of the schema, say where "
    "the document gives its value. Then write the JSON object."
)
_ANSWER_INSTRUCTION = "Answer with the JSON object only."

Message = dict[str, str]


def extraction_messages(schema_text: str, document_text: str, *, think: bool) -> list[Message]:
    """The conversation for a first attempt."""
    user = (
        "Extract the information from the document below into one JSON object that matches "
        f"this JSON Schema.\n\nJSON Schema:\n{schema_text}\n\n"
        f"Document:\n{document_text}\n\n"
        "Copy each value exactly as it is written in the document. "
        f"{_THINK_INSTRUCTION if think else _ANSWER_INSTRUCTION}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def correction_messages(
    schema_text: str,
    document_text: str,
    first_output: str,
    problems: Sequence[str],
    *,
    think: bool,
) -> list[Message]:
    """The conversation for a second attempt: the first, its problems, and a request to fix them."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    correction = (
        "Your answer has these problems:\n"
        f"{listed}\n"
        "Correct them. Use only values written in the document and follow the JSON Schema. "
        f"{_THINK_INSTRUCTION if think else _ANSWER_INSTRUCTION}"
    )
    return [
        *extraction_messages(schema_text, document_text, think=think),
        {"role": "assistant", "content": first_output},
        {"role": "user", "content": correction},
    ]
