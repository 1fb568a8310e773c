"""Packaged training configs (YAML), loaded by name: ``--config cpu-smoke``."""
