"""The only importer of ``llama_cpp``: loading a GGUF, evaluating prompts, constrained decoding.

``llama`` holds the engine, ``generation`` what one generation returns.
"""
