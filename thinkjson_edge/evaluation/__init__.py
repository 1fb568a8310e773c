"""Evaluation on a labelled folder: the dataset, the run, the summary, the report, and the metrics.

``metrics`` is the one scoring code, used by evaluation and by training rewards alike.
"""
