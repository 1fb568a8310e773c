"""Copy constraints: string values that may only be spans of the document.

``automaton`` indexes a document's text (whitespace runs collapsed to one space, case
kept) in a suffix automaton; ``cursor`` follows one JSON string value through that
index as the model writes it, JSON escapes decoded. The engine consults both while
decoding, beside the grammar.
"""
