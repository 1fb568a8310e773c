"""Document -> attempt 1 -> findings -> attempt 2 -> result.

``extractor`` runs it; ``documents`` reads files, ``chunking`` and ``chunk_merge`` handle long
documents, ``prompts`` is the one prompt format (shared with training), ``grounding`` and
``findings`` check values against the document and the schema, ``assessment`` judges an
attempt, ``result`` holds what comes back.
"""
