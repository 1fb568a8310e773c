"""Adapter merging and GGUF export (installed as ``thinkjson_edge.convert``).

Needs the ``train`` extra. Nothing in the runtime imports this package.
"""
