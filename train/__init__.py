"""Training pipeline (installed as ``thinkjson_edge.train``).

Needs the ``train`` extra (torch, transformers, trl, peft). Nothing in the
runtime imports this package.
"""
