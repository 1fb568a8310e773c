"""Batch folders on a Ray cluster (``thinkjson-edge batch ... --ray``), exactly once as locally.

The driver keeps everything a local batch owns: the folder's lock, the job database and
every result file, written by the local runner's own code. Workers are Ray actors that
each hold one loaded model; documents travel to them as bytes and results come back as
records, so no node needs a shared filesystem.

Only this package imports ``ray`` (the ``cluster`` extra), and only ``pool`` and
``connection`` do so at import: ``import thinkjson_edge`` and the local batch never load it.
"""
