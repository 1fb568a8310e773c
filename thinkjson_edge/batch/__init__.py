"""Batch folders: the runner, the SQLite job database, and the output folder's layout.

``layout`` is what other readers of a batch folder (the TUI) need; it imports no runner.
"""
