"""JSON Schema -> GBNF: the compiler, its regex subset (``regex``) and rule helpers (``rules``).

Pure Python; nothing here loads llama.cpp.
"""
